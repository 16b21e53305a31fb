//! Sign-in links for partners (admin) and the revocation of a referral's
//! read-only status links.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use partnerloop_app::signin;
use partnerloop_domain::ids::{ContactId, PartnerId};
use partnerloop_domain::referral::ReferralId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::extract::Auth;
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(magic_link)).routes(routes!(revoke_status_links))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct MagicLinkIn {
    /// Which contact signs in (default: the partner's first).
    pub contact_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MagicLinkOut {
    /// Single use; GET shows a button, POST signs in.
    pub url: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: jiff::Timestamp,
}

/// A single-use sign-in link for a partner contact, valid 10 minutes (admin).
#[utoipa::path(post, path = "/api/v1/partners/{id}/magic-link", tag = "partners", request_body(content = MagicLinkIn, description = "optional"),
    responses((status = 201, body = MagicLinkOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn magic_link(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let input: MagicLinkIn = if body.iter().all(u8::is_ascii_whitespace) {
        MagicLinkIn::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?
    };
    let contact = input.contact_id.map(ContactId::from_string);
    let (url, expires_at) = signin::create_link(s.store.as_ref(), &s.links, &ctx, &PartnerId::from_string(id), contact.as_ref()).await?;
    Ok((StatusCode::CREATED, Json(MagicLinkOut { url, expires_at })).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedOut {
    /// Links issued from now on carry this version; older ones no longer open.
    pub version: u32,
}

/// Revoke every read-only status link of a referral sent so far (admin).
#[utoipa::path(post, path = "/api/v1/referrals/{id}/status-links/revoke", tag = "referrals",
    responses((status = 200, body = RevokedOut), (status = 404, body = Problem)))]
async fn revoke_status_links(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<RevokedOut>, ApiError> {
    let version = signin::revoke_status_links(s.store.as_ref(), &ctx, &ReferralId::from_string(id)).await?;
    Ok(Json(RevokedOut { version }))
}
