//! The one place where errors become HTTP responses: RFC 9457 problem
//! details (`application/problem+json`). Internal errors are logged with
//! their whole source chain and answered with a generic 500; their text
//! never reaches the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use partnerloop_app::AppError;
use partnerloop_domain::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem details document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Per-field reasons, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

/// Every error an API handler can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("body too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A service partnerloop calls (the CRM) failed.
    #[error("upstream failed: {0}")]
    BadGateway(String),
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errors: Vec<FieldError>) -> Self {
        ApiError::App(AppError::Invalid(errors))
    }
}

impl From<partnerloop_app::StoreError> for ApiError {
    fn from(e: partnerloop_app::StoreError) -> Self {
        ApiError::App(e.into())
    }
}

pub fn problem(status: StatusCode, slug: &str, detail: impl Into<String>, errors: Vec<ProblemField>) -> Response {
    let body = Problem {
        problem_type: format!("/problems/{slug}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: detail.into(),
        errors,
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = (status, json).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

fn fields(errors: Vec<FieldError>) -> Vec<ProblemField> {
    errors.into_iter().map(|e| ProblemField { field: e.field, message: e.message }).collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::App(AppError::NotFound) => problem(StatusCode::NOT_FOUND, "not-found", "no such record", vec![]),
            ApiError::App(AppError::Unauthorized) => {
                let mut r = problem(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required", vec![]);
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            ApiError::App(AppError::Forbidden(why)) => problem(StatusCode::FORBIDDEN, "forbidden", why, vec![]),
            ApiError::App(AppError::Invalid(errors)) => {
                let detail = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                problem(StatusCode::UNPROCESSABLE_ENTITY, "validation", detail, fields(errors))
            }
            ApiError::App(AppError::Conflict { message, field }) => {
                let errors = field.map(|f| vec![ProblemField { field: f, message: message.clone() }]).unwrap_or_default();
                problem(StatusCode::CONFLICT, "conflict", message, errors)
            }
            ApiError::App(AppError::Store(e)) => {
                tracing::error!(error = %error_chain(&e), "storage failed");
                problem(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an internal error occurred; it has been logged", vec![])
            }
            ApiError::BadRequest(detail) => problem(StatusCode::BAD_REQUEST, "malformed", detail, vec![]),
            ApiError::PayloadTooLarge => problem(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "the request body is too large", vec![]),
            ApiError::UnsupportedMediaType => {
                problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "media-type", "the body must be application/json", vec![])
            }
            ApiError::NoRoute => problem(StatusCode::NOT_FOUND, "not-found", "no such resource", vec![]),
            ApiError::MethodNotAllowed => problem(StatusCode::METHOD_NOT_ALLOWED, "method", "method not allowed here", vec![]),
            ApiError::Unavailable(detail) => problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail, vec![]),
            ApiError::BadGateway(detail) => problem(StatusCode::BAD_GATEWAY, "upstream", detail, vec![]),
        }
    }
}

/// An error and all of its sources, for the log.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
