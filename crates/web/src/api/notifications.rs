//! Who hears what, over HTTP: webhook endpoints and their delivery log,
//! the workspace's Slack and partner-manager settings, partner contacts'
//! mail preferences, and the outbox (every side effect, its attempts,
//! retry of a dead-lettered one).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use partnerloop_app::notifications::{self, EndpointInput, SettingsInput};
use partnerloop_app::outbox::{Attempt, Channel, OutboxFilter, OutboxItem, OutboxStatus, Preference, Topic, WebhookEndpoint};
use partnerloop_domain::ids::{ContactId, PartnerId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::list_of;
use crate::AppState;
use crate::extract::{ApiJson, Auth, ListParams};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(get_endpoint, put_endpoint, delete_endpoint))
        .routes(routes!(endpoint_deliveries))
        .routes(routes!(put_settings, get_settings))
        .routes(routes!(put_preferences, get_preferences))
        .routes(routes!(list_outbox))
        .routes(routes!(get_outbox_item))
        .routes(routes!(retry_outbox_item))
        .routes(routes!(announce))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AnnouncementIn {
    pub subject: String,
    /// Plain text; blank lines separate paragraphs.
    pub body: String,
    /// Only partners of this tier (slug); absent: every active partner.
    pub tier: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnnouncementOut {
    pub id: String,
    /// Mails queued (contacts who opted out of announcements are skipped).
    pub mails: u64,
}

/// Mail an announcement to all active partners, or one tier (admin).
#[utoipa::path(post, path = "/api/v1/announcements", tag = "notifications", request_body = AnnouncementIn,
    responses((status = 201, body = AnnouncementOut), (status = 422, body = Problem)))]
async fn announce(State(s): State<AppState>, Auth(ctx): Auth, ApiJson(b): ApiJson<AnnouncementIn>) -> Result<Response, ApiError> {
    let a = notifications::Announcement { subject: b.subject, body: b.body, tier: b.tier.filter(|t| !t.is_empty()) };
    let (id, mails) = notifications::announce(s.store.as_ref(), &s.links, &ctx, a).await?;
    Ok((StatusCode::CREATED, Json(AnnouncementOut { id, mails })).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointOut {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types it receives; empty: every event.
    pub events: Vec<String>,
    pub active: bool,
    /// The signing secret (`whsec_…`): only in the answer that made or rotated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
}

fn endpoint_out(e: WebhookEndpoint, secret: Option<String>) -> EndpointOut {
    EndpointOut {
        id: e.id,
        url: e.url,
        description: e.description,
        events: e.events,
        active: e.active,
        secret,
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EndpointIn {
    pub url: String,
    pub description: Option<String>,
    /// Event types to receive (see `GET /api/v1/webhooks` for `event_types`); empty or absent: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Default true.
    pub active: Option<bool>,
    /// On PUT: issue a new signing secret (returned once).
    #[serde(default)]
    pub rotate_secret: bool,
}

impl EndpointIn {
    fn input(self) -> (EndpointInput, bool) {
        (
            EndpointInput { url: self.url, description: self.description, events: self.events, active: self.active.unwrap_or(true) },
            self.rotate_secret,
        )
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub data: Vec<EndpointOut>,
    /// Every event type an endpoint may subscribe to.
    pub event_types: Vec<String>,
}

/// Add a webhook endpoint (admin). The answer carries its signing secret, once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "notifications", request_body = EndpointIn,
    responses((status = 201, body = EndpointOut), (status = 422, body = Problem)))]
async fn create_endpoint(State(s): State<AppState>, Auth(ctx): Auth, ApiJson(b): ApiJson<EndpointIn>) -> Result<Response, ApiError> {
    let (input, _) = b.input();
    let (e, secret) = notifications::create_endpoint(s.store.as_ref(), &s.sealer, &ctx, input).await?;
    Ok((StatusCode::CREATED, Json(endpoint_out(e, Some(secret)))).into_response())
}

/// The workspace's webhook endpoints (admin).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "notifications", responses((status = 200, body = EndpointList)))]
async fn list_endpoints(State(s): State<AppState>, Auth(ctx): Auth) -> Result<Json<EndpointList>, ApiError> {
    let all = notifications::endpoints(s.store.as_ref(), &ctx).await?;
    let event_types = partnerloop_app::notify::event_types().into_iter().map(str::to_owned).collect();
    Ok(Json(EndpointList { data: all.into_iter().map(|e| endpoint_out(e, None)).collect(), event_types }))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "notifications", responses((status = 200, body = EndpointOut), (status = 404, body = Problem)))]
async fn get_endpoint(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<EndpointOut>, ApiError> {
    Ok(Json(endpoint_out(notifications::endpoint(s.store.as_ref(), &ctx, &id).await?, None)))
}

/// Replace an endpoint's settings (admin); `rotate_secret` issues a new secret.
#[utoipa::path(put, path = "/api/v1/webhooks/{id}", tag = "notifications", request_body = EndpointIn,
    responses((status = 200, body = EndpointOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_endpoint(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<EndpointIn>,
) -> Result<Json<EndpointOut>, ApiError> {
    let (input, rotate) = b.input();
    let (e, secret) = notifications::update_endpoint(s.store.as_ref(), &s.sealer, &ctx, &id, input, rotate).await?;
    Ok(Json(endpoint_out(e, secret)))
}

/// Remove an endpoint (admin); its queued deliveries are dead-lettered.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "notifications", responses((status = 204), (status = 404, body = Problem)))]
async fn delete_endpoint(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    notifications::delete_endpoint(s.store.as_ref(), &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    pub attempt: u32,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    pub ok: bool,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxItemOut {
    pub id: String,
    /// email | slack | webhook | crm
    pub channel: String,
    /// Sent to the receiver (`webhook-id`, `X-Idempotency-Key`).
    pub idempotency_key: String,
    pub event: String,
    /// An email address, a webhook endpoint id, or `slack`.
    pub target: String,
    /// pending | delivered | dead
    pub status: String,
    pub attempts: u32,
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: jiff::Timestamp,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<jiff::Timestamp>,
    /// Every attempt (on a single item's read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptOut>>,
    /// What was (or will be) sent (on a single item's read).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
}

fn item_out(i: &OutboxItem) -> OutboxItemOut {
    OutboxItemOut {
        id: i.id.clone(),
        channel: i.channel.as_str().into(),
        idempotency_key: i.idempotency_key.clone(),
        event: i.event.clone(),
        target: i.target.clone(),
        status: i.status.as_str().into(),
        attempts: i.attempts,
        next_attempt_at: i.next_attempt_at,
        last_error: i.last_error.clone(),
        created_at: i.created_at,
        delivered_at: i.delivered_at,
        attempt_log: None,
        payload: None,
    }
}

fn attempt_out(a: Attempt) -> AttemptOut {
    AttemptOut { attempt: a.attempt, at: a.at, ok: a.ok, status_code: a.status_code, error: a.error, duration_ms: a.duration_ms }
}

list_of!(OutboxList, OutboxItemOut);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxParams {
    /// email | slack | webhook | crm
    pub channel: Option<String>,
    /// pending | delivered | dead
    pub status: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl OutboxParams {
    fn parse(self, target: Option<String>) -> Result<(OutboxFilter, partnerloop_app::store::Page), ApiError> {
        let mut errors = Vec::new();
        let channel =
            self.channel.as_deref().filter(|c| !c.is_empty()).and_then(|c| Channel::parse("channel", c).map_err(|e| errors.push(e)).ok());
        let status = self
            .status
            .as_deref()
            .filter(|c| !c.is_empty())
            .and_then(|c| OutboxStatus::parse("status", c).map_err(|e| errors.push(e)).ok());
        let page = ListParams { limit: self.limit, cursor: self.cursor }.page();
        if let Err(e) = &page {
            errors.push(e.clone());
        }
        match page {
            Ok(p) if errors.is_empty() => Ok((OutboxFilter { channel, status, target }, p)),
            _ => Err(ApiError::from(errors)),
        }
    }
}

/// The delivery log of one endpoint: its items, newest last (admin).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "notifications", params(OutboxParams),
    responses((status = 200, body = OutboxList), (status = 404, body = Problem)))]
async fn endpoint_deliveries(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Query(q): Query<OutboxParams>,
) -> Result<Json<OutboxList>, ApiError> {
    notifications::endpoint(s.store.as_ref(), &ctx, &id).await?;
    let (mut filter, page) = q.parse(Some(id))?;
    filter.channel = Some(Channel::Webhook);
    let result = notifications::outbox(s.store.as_ref(), &ctx, &filter, &page).await?;
    Ok(Json(OutboxList::from_page(result, item_out)))
}

/// Every side effect of the workspace (admin), filtered by channel and status.
#[utoipa::path(get, path = "/api/v1/outbox", tag = "notifications", params(OutboxParams), responses((status = 200, body = OutboxList)))]
async fn list_outbox(State(s): State<AppState>, Auth(ctx): Auth, Query(q): Query<OutboxParams>) -> Result<Json<OutboxList>, ApiError> {
    let (filter, page) = q.parse(None)?;
    let result = notifications::outbox(s.store.as_ref(), &ctx, &filter, &page).await?;
    Ok(Json(OutboxList::from_page(result, item_out)))
}

/// One outbox item with its payload and every attempt (admin).
#[utoipa::path(get, path = "/api/v1/outbox/{id}", tag = "notifications", responses((status = 200, body = OutboxItemOut), (status = 404, body = Problem)))]
async fn get_outbox_item(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<OutboxItemOut>, ApiError> {
    let (item, attempts) = notifications::outbox_item(s.store.as_ref(), &ctx, &id).await?;
    let mut out = item_out(&item);
    out.attempt_log = Some(attempts.into_iter().map(attempt_out).collect());
    out.payload = Some(item.payload);
    Ok(Json(out))
}

/// Try a dead-lettered item again now (admin); 409 when it is not dead.
#[utoipa::path(post, path = "/api/v1/outbox/{id}/retry", tag = "notifications", responses((status = 200, body = OutboxItemOut), (status = 409, body = Problem)))]
async fn retry_outbox_item(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<OutboxItemOut>, ApiError> {
    let item = notifications::retry(s.store.as_ref(), &ctx, &id).await?;
    Ok(Json(item_out(&item)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SettingsIn {
    /// Slack incoming webhook URL; "" removes it; absent keeps it.
    pub slack_webhook_url: Option<String>,
    /// Partner managers: review requests, disputes, stalled deals, replies.
    #[serde(default)]
    pub manager_emails: Vec<String>,
    /// Days without a stage change before a referral is stalled (default 14).
    pub stalled_days: Option<u32>,
}

/// The workspace's notification settings (admin). The Slack URL is a credential: only whether it is set is shown.
#[utoipa::path(get, path = "/api/v1/settings/notifications", tag = "notifications", responses((status = 200, body = Object)))]
async fn get_settings(State(s): State<AppState>, Auth(ctx): Auth) -> Result<Json<serde_json::Value>, ApiError> {
    let current = notifications::settings(s.store.as_ref(), &ctx).await?;
    Ok(Json(notifications::settings_view(current.as_ref())))
}

#[utoipa::path(put, path = "/api/v1/settings/notifications", tag = "notifications", request_body = SettingsIn,
    responses((status = 200, body = Object), (status = 422, body = Problem)))]
async fn put_settings(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<SettingsIn>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let input = SettingsInput {
        slack_webhook_url: b.slack_webhook_url,
        manager_emails: b.manager_emails,
        stalled_days: b.stalled_days.unwrap_or(14),
    };
    let saved = notifications::put_settings(s.store.as_ref(), &s.sealer, &ctx, input).await?;
    Ok(Json(notifications::settings_view(Some(&saved))))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PreferenceIn {
    pub contact_id: String,
    /// topic → subscribed: referral_updates, earnings, digest, announcements
    #[schema(value_type = Object)]
    pub topics: std::collections::BTreeMap<String, bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PreferencesIn {
    pub contacts: Vec<PreferenceIn>,
}

/// Each contact's mail subscriptions (admin, or that partner).
#[utoipa::path(get, path = "/api/v1/partners/{id}/notification-preferences", tag = "notifications", responses((status = 200, body = Object), (status = 404, body = Problem)))]
async fn get_preferences(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(notifications::preferences(s.store.as_ref(), &ctx, &PartnerId::from_string(id)).await?))
}

/// Change some contacts' subscriptions (admin, or that partner).
#[utoipa::path(put, path = "/api/v1/partners/{id}/notification-preferences", tag = "notifications", request_body = PreferencesIn,
    responses((status = 200, body = Object), (status = 422, body = Problem)))]
async fn put_preferences(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PreferencesIn>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut errors = Vec::new();
    let mut changes = Vec::new();
    for (i, c) in b.contacts.into_iter().enumerate() {
        for (topic, enabled) in c.topics {
            match Topic::parse(&format!("contacts[{i}].topics.{topic}"), &topic) {
                Ok(t) => changes.push(Preference { contact_id: ContactId::from_string(c.contact_id.clone()), topic: t, enabled }),
                Err(e) => errors.push(e),
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::from(errors));
    }
    Ok(Json(notifications::put_preferences(s.store.as_ref(), &ctx, &PartnerId::from_string(id), changes).await?))
}
