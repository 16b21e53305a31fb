//! The workspace's CRM connection over HTTP: connect (HubSpot or
//! Salesforce), read it back without secrets, disconnect, sync now; and a
//! referral's CRM sync state.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use partnerloop_app::crm_sync::{self, CrmConnectionInput, CrmLink, CrmSecrets, CrmSettings};
use partnerloop_domain::referral::ReferralId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_crm, get_crm, delete_crm)).routes(routes!(sync_crm)).routes(routes!(referral_crm))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrmIn {
    /// `hubspot` or `salesforce`.
    pub kind: String,
    /// `base_url`, `portal_id`, `pipeline`, `api_version`, `login_url`,
    /// `client_id`, `username`, `requests_per_10s`, `stage_map` (CRM stage
    /// id → partnerloop stage).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: CrmSettings,
    /// `token`, `client_secret`, `private_key_pem`; stored sealed, never
    /// shown again. Absent ones keep their stored value.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub secrets: CrmSecrets,
}

/// Connect (or reconfigure) the workspace's CRM (admin). The answer shows
/// the settings and the stage map in force, never the secrets.
#[utoipa::path(put, path = "/api/v1/settings/crm", tag = "crm", request_body = CrmIn,
    responses((status = 200, body = Object), (status = 422, body = Problem)))]
async fn put_crm(State(s): State<AppState>, Auth(ctx): Auth, ApiJson(b): ApiJson<CrmIn>) -> Result<Json<serde_json::Value>, ApiError> {
    let input = CrmConnectionInput { kind: b.kind, settings: b.settings, secrets: b.secrets };
    let c = crm_sync::connect(s.store.as_ref(), &s.sealer, &ctx, input).await?;
    Ok(Json(crm_sync::view(&c)))
}

/// The CRM connection: settings, stage map, last poll and backfill, last error (admin).
#[utoipa::path(get, path = "/api/v1/settings/crm", tag = "crm", responses((status = 200, body = Object), (status = 404, body = Problem)))]
async fn get_crm(State(s): State<AppState>, Auth(ctx): Auth) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(crm_sync::view(&crm_sync::connection(s.store.as_ref(), &ctx).await?)))
}

/// Disconnect the CRM (admin). Cached accounts and deals stay.
#[utoipa::path(delete, path = "/api/v1/settings/crm", tag = "crm", responses((status = 204), (status = 404, body = Problem)))]
async fn delete_crm(State(s): State<AppState>, Auth(ctx): Auth) -> Result<StatusCode, ApiError> {
    crm_sync::disconnect(s.store.as_ref(), &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncOut {
    /// Referrals (or cached deals) whose stage the CRM changed.
    pub changed: u64,
    /// Accounts and open deals read into the local cache.
    pub cached: u64,
}

/// Poll the CRM for stage changes and read its accounts and open deals now
/// (admin), instead of waiting for the scheduler.
#[utoipa::path(post, path = "/api/v1/settings/crm/sync", tag = "crm",
    responses((status = 200, body = SyncOut), (status = 404, body = Problem), (status = 502, body = Problem)))]
async fn sync_crm(State(s): State<AppState>, Auth(ctx): Auth) -> Result<Response, ApiError> {
    let conn = crm_sync::connection(s.store.as_ref(), &ctx).await?;
    let Some(hub) = s.crm_hub.clone() else {
        return Err(ApiError::from(partnerloop_app::AppError::conflict(None, "this server has no CRM connectors")));
    };
    let (changed, cached) = crm_sync::sync_now(s.store.as_ref(), &hub, &conn, ctx.now).await.map_err(ApiError::BadGateway)?;
    Ok((StatusCode::OK, Json(SyncOut { changed, cached })).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CrmLinkOut {
    pub kind: String,
    /// `pending` (queued or being retried), `synced`, `failed` (gave up; see `last_error`).
    pub status: String,
    pub company_id: Option<String>,
    pub contact_id: Option<String>,
    pub deal_id: Option<String>,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub synced_at: Option<jiff::Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
}

fn link_out(l: CrmLink) -> CrmLinkOut {
    CrmLinkOut {
        kind: l.kind.as_str().into(),
        status: l.status.as_str().into(),
        company_id: l.company_id,
        contact_id: l.contact_id,
        deal_id: l.deal_id,
        last_error: l.last_error,
        synced_at: l.synced_at,
        updated_at: l.updated_at,
    }
}

/// Where a referral stands in the CRM (404 until its first sync attempt).
#[utoipa::path(get, path = "/api/v1/referrals/{id}/crm", tag = "crm",
    responses((status = 200, body = CrmLinkOut), (status = 404, body = Problem)))]
async fn referral_crm(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<CrmLinkOut>, ApiError> {
    let l = crm_sync::link(s.store.as_ref(), &ctx, &ReferralId::from_string(id)).await?;
    l.map(|l| Json(link_out(l))).ok_or_else(|| ApiError::from(partnerloop_app::AppError::NotFound))
}
