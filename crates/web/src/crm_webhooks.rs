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
use partnerloop_crm::salesforce_outbound;
use serde::Deserialize;
use sha2::{Digest, Sha256};

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

#[derive(Debug, Deserialize)]
pub struct KeyParam {
    key: Option<String>,
}

/// `POST /webhooks/salesforce?key=…`: Salesforce Outbound Messages about
/// Opportunities. Accepted only from the connected org (`OrganizationId`
/// must be the connection's `settings.organization_id`) with the
/// connection's outbound-message key (`secrets.client_secret`) in the URL;
/// each notification id is applied once; the answer is the SOAP `Ack`.
pub async fn salesforce(State(s): State<AppState>, axum::extract::Query(q): axum::extract::Query<KeyParam>, body: Bytes) -> Response {
    let now = Timestamp::now();
    let message = match salesforce_outbound::parse(&body) {
        Ok(m) => m,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "malformed", format!("not a Salesforce outbound message: {e}"), vec![]),
    };
    let conn = match crm_sync::salesforce_connection_for(s.store.as_ref(), &message.organization_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "not-found", "no workspace is connected to this Salesforce org", vec![]),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let expected = conn.secrets(&s.sealer).ok().and_then(|x| x.client_secret).filter(|x| !x.is_empty());
    // Compared as digests: equal length, no early exit on the secret itself.
    let given = Sha256::digest(q.key.unwrap_or_default().as_bytes());
    if expected.is_none_or(|k| Sha256::digest(k.as_bytes()) != given) {
        tracing::warn!(workspace = %conn.workspace_id, "a Salesforce outbound message without the right key was refused");
        return problem(StatusCode::UNAUTHORIZED, "unauthorized", "the outbound-message key is missing or wrong", vec![]);
    }
    let currency = match s.store.workspace(&conn.workspace_id).await {
        Ok(w) => w.currency,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let currency = partnerloop_domain::Currency::parse("currency", &currency).unwrap_or(partnerloop_domain::Currency::USD);
    for n in &message.notifications {
        let Some(change) = n.change(currency, now) else { continue };
        match s.store.first_sight_of_crm_event(&conn.workspace_id, &format!("salesforce:{}", n.id), now).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(err) => return ApiError::from(err).into_response(),
        }
        if let Err(err) = crm_sync::apply_change(s.store.as_ref(), &conn, &change, now).await {
            return ApiError::from(err).into_response();
        }
    }
    if let Some(hub) = s.crm_hub.clone() {
        let store = s.store.clone();
        tokio::spawn(async move {
            if let Err(e) = crm_sync::poll_one(store.as_ref(), &hub, &conn, Timestamp::now()).await {
                tracing::warn!(workspace = %conn.workspace_id, error = %e, "confirming a Salesforce message by polling failed");
            }
        });
    }
    (StatusCode::OK, [("content-type", "text/xml; charset=utf-8")], salesforce_outbound::ACK).into_response()
}
