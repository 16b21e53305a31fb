//! Bearer-token authentication for the JSON API. The token resolves to a
//! [`Principal`] (workspace and actor) that handlers read through the
//! `Auth` extractor; a missing, unknown or revoked token is a 401.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use partnerloop_app::{Actor, AppError};
use partnerloop_domain::ids::WorkspaceId;

use crate::AppState;
use crate::problem::ApiError;

#[derive(Debug, Clone)]
pub struct Principal {
    pub workspace_id: WorkspaceId,
    pub actor: Actor,
}

impl Principal {
    /// The namespace of this caller's idempotency keys.
    pub fn scope(&self) -> String {
        format!("{}:{}", self.workspace_id, self.actor.audit_name())
    }
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Remembers resolved tokens briefly so that a busy client does not cost a
/// database read per request. Only successes are cached, keyed by the
/// token's hash (the token itself is never kept); an entry lives
/// [`AuthCache::TTL`], which bounds how long a revoked token keeps working
/// on a server that did not revoke it itself.
#[derive(Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl AuthCache {
    pub const TTL: Duration = Duration::from_secs(5);
    const MAX_ENTRIES: usize = 10_000;

    fn get(&self, token_hash: &str) -> Option<Principal> {
        let entries = self.entries.lock().ok()?;
        entries.get(token_hash).filter(|(_, at)| at.elapsed() < Self::TTL).map(|(p, _)| p.clone())
    }

    fn put(&self, token_hash: String, principal: Principal) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::MAX_ENTRIES {
                entries.retain(|_, (_, at)| at.elapsed() < Self::TTL);
                if entries.len() >= Self::MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(token_hash, (principal, Instant::now()));
        }
    }

    /// Forgets every cached token (after a revocation on this server).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

pub async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(token) = bearer(&req) else {
        return ApiError::App(AppError::Unauthorized).into_response();
    };
    let token_hash = partnerloop_app::auth::hash_secret(token);
    let principal = match state.auth_cache.get(&token_hash) {
        Some(p) => p,
        None => match partnerloop_app::auth::authenticate(state.store.as_ref(), token).await {
            Ok((workspace_id, actor)) => {
                let p = Principal { workspace_id, actor };
                state.auth_cache.put(token_hash, p.clone());
                p
            }
            Err(e) => return ApiError::App(e).into_response(),
        },
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
}
