//! partnerloop's HTTP server.
//!
//! Rules of this crate: handlers are thin — extract, parse into domain
//! types, call one use case with the caller's `Ctx`, answer. Every failure
//! is an RFC 9457 problem response built in `problem.rs` only. Each
//! resource module owns its `router()`; the OpenAPI document is generated
//! from the handlers' annotations, so it cannot drift from the routes.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use partnerloop_app::Store;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub mod api;
pub mod auth;
pub mod console;
pub mod crm_webhooks;
pub mod extract;
pub mod idempotency;
pub mod inbound;
pub mod observe;
pub mod portal;
mod portal_pages;
pub mod preferences;
pub mod problem;
pub mod public;

use problem::{ApiError, problem};

/// Largest request body accepted (413 beyond).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<observe::Metrics>,
    pub auth_cache: Arc<auth::AuthCache>,
    /// Fuzzy company-name matching, one index per workspace.
    pub matcher: Arc<partnerloop_app::matching::NameMatcher>,
    /// Seals payout details and the payer's bank data at rest.
    pub sealer: Arc<partnerloop_app::sealing::Sealer>,
    /// Inbound mail, when `PARTNERLOOP_INBOUND_KEY` turns `POST /inbound/email` on.
    pub intake: Option<Arc<inbound::Intake>>,
    /// SHA-256 of the inbound key.
    pub inbound_key_hash: Option<Vec<u8>>,
    /// Public URL and link-signing key, for sign-in and status links.
    pub links: Arc<partnerloop_app::notify::NotifyConfig>,
    pub login_limits: Arc<portal::LoginLimits>,
    /// Staff sign-in attempts (`POST /login`), per email and client address.
    pub staff_limits: Arc<portal::LoginLimits>,
    /// CRM connectors (HubSpot, Salesforce), when the binary wires them in.
    pub crm_hub: Option<Arc<partnerloop_app::crm_sync::CrmHub>>,
    /// The public forms' (`/apply`, `/r/{code}`) rate limits and minimum fill time.
    pub public_forms: Arc<public::PublicForms>,
    /// How this server delivers mail, in words for the console (the SMTP
    /// host or the `.eml` directory, and the sender; never credentials).
    pub mail_setup: Option<Arc<str>>,
}

impl AppState {
    /// State whose sealing key derives from the instance's secret key.
    pub fn new(store: Arc<dyn Store>, secret_key: &str) -> Self {
        Self {
            store,
            metrics: Arc::new(observe::Metrics::new()),
            auth_cache: Arc::default(),
            matcher: Arc::default(),
            sealer: Arc::new(partnerloop_app::sealing::Sealer::from_secret(secret_key)),
            intake: None,
            inbound_key_hash: None,
            links: Arc::new(partnerloop_app::notify::NotifyConfig {
                base_url: String::new(),
                inbound_domain: "localhost".into(),
                link_key: partnerloop_app::notify::link_key(secret_key),
                default_slack_workspace: None,
            }),
            login_limits: Arc::default(),
            staff_limits: Arc::default(),
            crm_hub: None,
            public_forms: Arc::default(),
            mail_setup: None,
        }
    }

    /// Turns on CRM sync-now and the CRM webhooks.
    /// Describes the server's mail delivery for the console's settings page.
    pub fn with_mail_setup(mut self, words: impl Into<Arc<str>>) -> Self {
        self.mail_setup = Some(words.into());
        self
    }

    pub fn with_crm(mut self, hub: Arc<partnerloop_app::crm_sync::CrmHub>) -> Self {
        self.crm_hub = Some(hub);
        self
    }

    /// The public URL and inbound domain that links and addresses use.
    pub fn with_links(mut self, links: partnerloop_app::notify::NotifyConfig) -> Self {
        self.links = Arc::new(links);
        self
    }

    /// Turns `POST /inbound/email?key=` on.
    pub fn with_inbound(mut self, key: &str, intake: Arc<inbound::Intake>) -> Self {
        use sha2::Digest;
        self.inbound_key_hash = Some(sha2::Sha256::digest(key.as_bytes()).to_vec());
        self.intake = Some(intake);
        self
    }
}

/// The whole application: API, health, metrics, OpenAPI document.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api::router().split_for_parts();
    let openapi = Arc::new(openapi);
    let api = api
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(api)
        .route("/api/v1/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(observe::prometheus))
        .route("/portal", get(portal_pages::home))
        .route("/portal/login", axum::routing::post(portal::request_link))
        .route("/portal/logout", axum::routing::post(portal_pages::logout))
        .route("/portal/referrals/new", get(portal_pages::register_form).post(portal_pages::register))
        .route("/portal/referrals/{id}", get(portal_pages::referral))
        .route("/portal/referrals/{id}/reply", axum::routing::post(portal_pages::reply))
        .route("/portal/referrals/{id}/dispute", axum::routing::post(portal_pages::dispute))
        .route("/portal/earnings", get(portal_pages::earnings))
        .route("/portal/statements/{payout_id}", get(portal_pages::statement))
        .route("/portal/payout-details", get(portal_pages::payout_details).post(portal_pages::set_payout_details))
        .route("/portal/preferences", get(portal_pages::preferences).post(portal_pages::save_preferences))
        .route("/portal/resources", get(portal_pages::enablement::resources))
        .route("/portal/resources/{id}", get(portal_pages::enablement::open))
        .route("/portal/onboarding", get(portal_pages::enablement::checklist_page))
        .route("/portal/onboarding/{id}", axum::routing::post(portal_pages::enablement::tick))
        .route("/portal/login/{token}", get(portal::sign_in_page).post(portal::sign_in))
        .route("/status/{token}", get(portal::status))
        .merge(console::router())
        .route("/apply", get(public::apply::form).post(public::apply::submit))
        .route("/r/{code}", get(public::link::form).post(public::link::submit))
        .route("/preferences/{token}", get(preferences::page).post(preferences::save))
        .route("/unsubscribe/{token}/{topic}", get(preferences::unsubscribe_confirm).post(preferences::unsubscribe))
        .route("/webhooks/hubspot", axum::routing::post(crm_webhooks::hubspot))
        .route("/webhooks/salesforce", axum::routing::post(crm_webhooks::salesforce))
        .route("/inbound/email", axum::routing::post(inbound::receive).layer(DefaultBodyLimit::max(inbound::MAX_MESSAGE_BYTES)))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), observe::track))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), path = %observe::loggable_path(req.uri().path()), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, observe::UlidRequestId))
        .layer(CatchPanicLayer::custom(|_| {
            problem(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an internal error occurred; it has been logged", vec![])
        }))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ready", "database": state.store.engine()})).into_response(),
        Err(e) => {
            tracing::warn!(error = %problem::error_chain(&e), "database not ready");
            ApiError::Unavailable("the database does not answer".into()).into_response()
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then finishes the
/// requests in flight.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).with_graceful_shutdown(shutdown).await
}
