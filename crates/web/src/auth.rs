//! Bearer-token authentication for the JSON API. The token resolves to a
//! [`Principal`] (workspace and actor) that handlers read through the
//! `Auth` extractor; a missing, unknown or revoked token is a 401.

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

pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(&req) else {
        return ApiError::App(AppError::Unauthorized).into_response();
    };
    match partnerloop_app::auth::authenticate(state.store.as_ref(), token).await {
        Ok((workspace_id, actor)) => {
            req.extensions_mut().insert(Principal {
                workspace_id,
                actor,
            });
            next.run(req).await
        }
        Err(e) => ApiError::App(e).into_response(),
    }
}
