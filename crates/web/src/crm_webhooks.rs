//! `POST /webhooks/hubspot`: deal-stage changes pushed by HubSpot.
//!
//! Rules: nothing is applied before the X-HubSpot-Signature-v3 of the raw
//! body verifies with the connection's app client secret, over the public
//! URL HubSpot called (rebuilt from the configured base URL) and within
//! 5 minutes of its timestamp. Each `eventId` is applied once. The event's
//! stage is applied at once; then a poll reads the deals' current state
//! (events arrive out of order, and carry no amount), so the referral ends
//! where the CRM's deal is.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use partnerloop_app::crm::CrmDealChange;
use partnerloop_app::crm_sync;
use partnerloop_crm::hubspot_webhook::{parse_events, verify_signature_v3};

use crate::AppState;
use crate::problem::{ApiError, problem};

pub async fn hubspot(State(s): State<AppState>, OriginalUri(uri): OriginalUri, headers: HeaderMap, body: Bytes) -> Response {
    let now = Timestamp::now();
    let events = match parse_events(&body) {
        Ok(e) => e,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "malformed", format!("not a HubSpot event array: {e}"), vec![]),
    };
    let portal = events.iter().find_map(|e| e.portal_id);
    let conn = match crm_sync::hubspot_connection_for(s.store.as_ref(), portal).await {
        Ok(Some(c)) => c,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "not-found", "no workspace is connected to this HubSpot account", vec![]),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let secret = conn.secrets(&s.sealer).ok().and_then(|x| x.client_secret).filter(|x| !x.is_empty());
    let Some(secret) = secret else {
        return problem(StatusCode::UNAUTHORIZED, "unauthorized", "the connection has no app client secret to verify webhooks", vec![]);
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/webhooks/hubspot");
    let full_url = format!("{}{path}", s.links.base_url.trim_end_matches('/'));
    let verified = verify_signature_v3(
        "POST",
        &full_url,
        &body,
        &header("x-hubspot-request-timestamp"),
        &header("x-hubspot-signature-v3"),
        &secret,
        now,
    );
    if let Err(e) = verified {
        tracing::warn!(workspace = %conn.workspace_id, reason = %e, "a HubSpot webhook was refused");
        return problem(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string(), vec![]);
    }
    let mut applied = 0u64;
    for e in &events {
        let Some((deal_id, stage)) = e.deal_stage_change() else { continue };
        match s.store.first_sight_of_crm_event(&conn.workspace_id, &format!("hubspot:{}", e.event_id), now).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(err) => return ApiError::from(err).into_response(),
        }
        let change =
            CrmDealChange { deal_id, referral_id: None, stage: stage.to_owned(), amount: None, changed_at: e.occurred_at().unwrap_or(now) };
        match crm_sync::apply_change(s.store.as_ref(), &conn, &change, now).await {
            Ok(true) => applied += 1,
            Ok(false) => {}
            Err(err) => return ApiError::from(err).into_response(),
        }
    }
    if let Some(hub) = s.crm_hub.clone() {
        let store = s.store.clone();
        tokio::spawn(async move {
            if let Err(e) = crm_sync::poll_one(store.as_ref(), &hub, &conn, Timestamp::now()).await {
                tracing::warn!(workspace = %conn.workspace_id, error = %e, "confirming a HubSpot webhook by polling failed");
            }
        });
    }
    (StatusCode::OK, axum::Json(serde_json::json!({"events": events.len(), "applied": applied}))).into_response()
}
