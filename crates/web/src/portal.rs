//! The partner's way in without a password, and the read-only status page.
//!
//! - `GET /portal/login/{token}` only shows a button (mail scanners open
//!   links); `POST` to the same URL uses the link up, sets the session
//!   cookie (HttpOnly, SameSite=Lax, Secure on https) and redirects (303)
//!   to `/portal`. A used or expired link is refused.
//! - `POST /portal/login` (field `email`) answers the same for every
//!   address, mails a link when it is a partner contact's, and is
//!   rate-limited per email and per client address (429). Its form
//!   carries a CSRF token matched against a cookie; the sign-in button's
//!   form needs none (its URL holds the unguessable token).
//! - `GET /status/{token}`: one referral's status, partner-safe, no sign-in.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jiff::Timestamp;
use partnerloop_app::signin;
use serde::Deserialize;

use crate::AppState;

pub(crate) const SESSION_COOKIE: &str = "pl_session";
pub(crate) const CSRF_COOKIE: &str = "pl_csrf";

/// Sign-in requests allowed per email and per client address.
pub struct LoginLimits {
    per_email: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<std::net::IpAddr>,
}

impl Default for LoginLimits {
    fn default() -> Self {
        let five = NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN);
        let twenty = NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN);
        Self {
            // 5 at once, then one every 3 minutes, per email address.
            per_email: RateLimiter::keyed(Quota::with_period(Duration::from_secs(180)).unwrap_or(Quota::per_hour(five)).allow_burst(five)),
            // 20 at once, then one every 10 s, per client address.
            per_address: RateLimiter::keyed(
                Quota::with_period(Duration::from_secs(10)).unwrap_or(Quota::per_hour(twenty)).allow_burst(twenty),
            ),
        }
    }
}

impl LoginLimits {
    /// Counts one sign-in attempt from `address` for `email`; false when
    /// either is over its limit.
    pub(crate) fn allow(&self, address: std::net::IpAddr, email: &str) -> bool {
        self.forget_idle();
        self.per_address.check_key(&address).is_ok() && self.per_email.check_key(&email.to_owned()).is_ok()
    }

    /// Keys whose limit has fully recovered are dropped, so that a flood of
    /// made-up addresses cannot grow the maps without bound.
    fn forget_idle(&self) {
        const KEEP: usize = 10_000;
        if self.per_email.len() > KEEP {
            self.per_email.retain_recent();
        }
        if self.per_address.len() > KEEP {
            self.per_address.retain_recent();
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    text: &'a str,
    login_csrf: Option<String>,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    token: &'a str,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    workspace: String,
    company: String,
    status: String,
    protected_until: Option<String>,
    registered: String,
    events: Vec<(String, String)>,
}

pub(crate) fn html(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub(crate) fn message(status: StatusCode, title: &str, text: &str) -> Response {
    html(status, MessagePage { title, text, login_csrf: None })
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
}

pub(crate) fn secure(s: &AppState) -> &'static str {
    if s.links.base_url.starts_with("https://") { "; Secure" } else { "" }
}

fn date(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// The sign-in form, with a fresh CSRF token in a cookie and the form.
pub(crate) fn login_form(s: &AppState, status: StatusCode, title: &str, text: &str) -> Response {
    let csrf = signin::token_hash(&format!("{}{}", rand::random::<u128>(), Timestamp::now()));
    let mut r = html(status, MessagePage { title, text, login_csrf: Some(csrf.clone()) });
    let c = format!("{CSRF_COOKIE}={csrf}; Path=/portal; HttpOnly; SameSite=Strict{}", secure(s));
    if let Ok(v) = c.parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `GET /portal/login/{token}`: a button, nothing used up.
pub async fn sign_in_page(Path(token): Path<String>) -> Response {
    html(StatusCode::OK, SignInPage { token: &token })
}

/// `POST /portal/login/{token}`: uses the link up and signs in.
pub async fn sign_in(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    match signin::redeem(s.store.as_ref(), &token, Timestamp::now()).await {
        Ok(Some((session, _))) => {
            let max_age = signin::SESSION_DAYS * 24 * 3600;
            let c = format!("{SESSION_COOKIE}={session}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}", secure(&s));
            let mut r = Redirect::to("/portal").into_response();
            *r.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = c.parse() {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Ok(None) => login_form(&s, StatusCode::GONE, "This link has been used or has expired", "Ask for a fresh one below."),
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed");
            message(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong", "Please try the link again in a moment.")
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /portal/login`: the same answer for every address.
pub async fn request_link(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if f.csrf.is_empty() || cookie(&headers, CSRF_COOKIE) != Some(f.csrf.as_str()) {
        return login_form(&s, StatusCode::FORBIDDEN, "Please try again", "The form expired; send it again.");
    }
    let email = f.email.trim().to_lowercase();
    s.login_limits.forget_idle();
    if s.login_limits.per_address.check_key(&peer.ip()).is_err() || s.login_limits.per_email.check_key(&email).is_err() {
        return message(StatusCode::TOO_MANY_REQUESTS, "Too many requests", "Please wait a few minutes before asking for another link.");
    }
    if let Err(e) = signin::request_link(s.store.as_ref(), &s.links, &email, Timestamp::now()).await {
        // Logged, never shown: the answer must not tell whether the address is known.
        tracing::error!(error = %e, "sending a sign-in link failed");
    }
    message(
        StatusCode::OK,
        "Check your inbox",
        "If this address belongs to a partner, a sign-in link is on its way. It works once, for 10 minutes.",
    )
}

/// `GET /status/{token}`: one referral, read-only, partner-safe.
pub async fn status(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    let now = Timestamp::now();
    let page = async {
        let Some((ws, r)) = signin::status_referral(s.store.as_ref(), &s.links, &token, now).await? else {
            return Ok(None);
        };
        let labels = s.store.stage_labels(&ws).await?;
        let workspace = s.store.workspace(&ws).await?.name;
        let events = s
            .store
            .timeline(&ws, &r.id)
            .await?
            .into_iter()
            .filter_map(|e| partnerloop_app::pipeline::partner_event(&e.kind).map(|what| (date(e.at), what.to_owned())))
            .collect();
        Ok::<_, partnerloop_app::AppError>(Some(StatusPage {
            workspace,
            company: r.company_name.clone(),
            status: partnerloop_app::pipeline::partner_status(&r, &labels),
            protected_until: r.protection.filter(|_| r.is_active(now)).map(|p| date(p.expires_at)),
            registered: date(r.created_at),
            events,
        }))
    }
    .await;
    match page {
        Ok(Some(p)) => html(StatusCode::OK, p),
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "It may have expired or been withdrawn. The latest email about this referral has a fresh one.",
        ),
        Err(e) => {
            tracing::error!(error = %e, "status page failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Please try again in a moment.")
        }
    }
}
