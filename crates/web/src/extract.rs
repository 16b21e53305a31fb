//! Request extractors whose rejections are problem responses: JSON bodies
//! (400 when malformed, 413 when too large, 422 naming the field when a
//! value has the wrong shape), the authenticated context, list parameters.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use partnerloop_app::store::Page;
use partnerloop_app::{AppError, Ctx};
use partnerloop_domain::FieldError;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::auth::Principal;
use crate::problem::ApiError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// A JSON body, parsed into `T`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or_default().trim();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(ApiError::UnsupportedMediaType);
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE { ApiError::PayloadTooLarge } else { ApiError::BadRequest(r.body_text()) }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON: syntax errors are 400, shape errors 422 with the field path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                // "missing field `x`" is reported at the parent: name the field itself.
                let field = match message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
                    Some(missing) if path == "." => missing.to_owned(),
                    Some(missing) => format!("{path}.{missing}"),
                    None => path,
                };
                ApiError::from(vec![FieldError::new(field, message)])
            }
            _ => ApiError::BadRequest(format!("the body is not valid JSON: {inner}")),
        }
    })
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The caller's context, from the principal the auth layer resolved.
pub struct Auth(pub Ctx);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let principal = parts.extensions.get::<Principal>().ok_or(ApiError::App(AppError::Unauthorized))?;
        Ok(Auth(Ctx::new(principal.workspace_id.clone(), principal.actor.clone(), jiff::Timestamp::now())))
    }
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1–500 (default 50; larger values are capped at 500).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    pub fn page(&self) -> Result<Page, FieldError> {
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_LIMIT,
            Some(s) => match s.parse::<u64>() {
                Ok(0) | Err(_) => {
                    return Err(FieldError::new("limit", "must be a whole number from 1 to 500"));
                }
                Ok(n) => u32::try_from(n.min(u64::from(MAX_LIMIT))).unwrap_or(MAX_LIMIT),
            },
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|s| s.len() < 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                    .ok_or_else(|| FieldError::new("cursor", "is not a cursor returned by this list"))?,
            ),
        };
        Ok(Page { limit, after })
    }
}

pub fn encode_cursor(after: Option<String>) -> Option<String> {
    after.map(|a| URL_SAFE_NO_PAD.encode(a))
}
