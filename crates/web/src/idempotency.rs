//! `Idempotency-Key` on POST: the first request with a key runs and its
//! response (unless a 5xx) is saved; a repeat with the same key and the
//! same request gets the saved response and changes nothing; the same key
//! with another request is a 409, as is a repeat while the first still runs.
//! Keys are scoped to the caller, so two callers never share one.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use partnerloop_app::store::{IdempotencyClaim, SavedResponse};
use partnerloop_domain::FieldError;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::problem::{ApiError, problem};
use crate::{AppState, BODY_LIMIT};

pub const HEADER: &str = "idempotency-key";

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return next.run(req).await;
    }
    match run(state, req, next).await {
        Ok(r) | Err(r) => r,
    }
}

async fn run(state: AppState, req: Request, next: Next) -> Result<Response, Response> {
    let key = req.headers().get(HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::from(vec![FieldError::new("Idempotency-Key", "must be 1-255 visible ASCII characters")]).into_response());
    }
    let scope = req
        .extensions()
        .get::<Principal>()
        .map(Principal::scope)
        .ok_or_else(|| ApiError::App(partnerloop_app::AppError::Unauthorized).into_response())?;
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT).await.map_err(|_| ApiError::PayloadTooLarge.into_response())?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b" ");
    hasher.update(parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or_default());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let fingerprint: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();

    let claim = state
        .store
        .claim_idempotency_key(&scope, &key, &fingerprint, jiff::Timestamp::now())
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    match claim {
        IdempotencyClaim::Replay(saved) => Ok(replay(saved)),
        IdempotencyClaim::Mismatch => Err(problem(
            StatusCode::CONFLICT,
            "idempotency-key-reused",
            "this Idempotency-Key was already used with a different request",
            vec![],
        )),
        IdempotencyClaim::InProgress => Err(problem(
            StatusCode::CONFLICT,
            "idempotency-key-in-progress",
            "a request with this Idempotency-Key is still being processed; retry later",
            vec![],
        )),
        IdempotencyClaim::New => {
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            let (rparts, rbody) = response.into_parts();
            let body = match to_bytes(rbody, usize::MAX).await {
                Ok(b) => b,
                Err(_) => {
                    let _ = state.store.release_idempotency_key(&scope, &key).await;
                    return Err(problem(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the response could not be read", vec![]));
                }
            };
            let status = rparts.status;
            let text = String::from_utf8(body.to_vec());
            match text {
                Ok(text) if !status.is_server_error() => {
                    let saved = SavedResponse {
                        status: status.as_u16(),
                        content_type: rparts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned(),
                        body: text,
                    };
                    if let Err(e) = state.store.save_idempotent_response(&scope, &key, &saved).await {
                        tracing::error!(error = %e, "could not save an idempotent response");
                    }
                }
                _ => {
                    let _ = state.store.release_idempotency_key(&scope, &key).await;
                }
            }
            Ok(Response::from_parts(rparts, Body::from(body)))
        }
    }
}

fn replay(saved: SavedResponse) -> Response {
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    let mut r = (status, saved.body).into_response();
    if let Ok(ct) = HeaderValue::from_str(&saved.content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    r
}
