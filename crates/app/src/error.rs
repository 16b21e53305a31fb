//! Errors of the use cases. Exactly one place (the web crate) maps them to
//! HTTP problem responses; the CLI prints them.

use partnerloop_domain::FieldError;

/// What a store can report. Constraint names are the same on every engine.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    #[error("the record changed since it was read")]
    Stale,
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("conflict: {message}")]
    Conflict { message: String, field: Option<String> },
    #[error("storage failed")]
    Store(#[source] StoreError),
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn conflict(field: Option<&str>, message: impl Into<String>) -> Self {
        AppError::Conflict { message: message.into(), field: field.map(str::to_owned) }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Stale => AppError::conflict(None, "the record was changed by someone else; read it again"),
            other => AppError::Store(other),
        }
    }
}

impl From<Vec<FieldError>> for AppError {
    fn from(errors: Vec<FieldError>) -> Self {
        AppError::Invalid(errors)
    }
}
