//! What a delivery attempt reports back.

use async_trait::async_trait;
use partnerloop_app::outbox::OutboxItem;

/// Why an attempt failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A timeout, a refused connection, a 5xx or 429: try again later.
    Transient { code: Option<u16>, error: String },
    /// The receiver said when to come back (a 429 with `Retry-After`):
    /// retried no sooner than that.
    Later { code: Option<u16>, error: String, after: std::time::Duration },
    /// The receiver will never take it (unknown mailbox, 410 Gone, the
    /// endpoint was deleted): dead-letter it now.
    Permanent { code: Option<u16>, error: String },
}

impl Failure {
    pub fn transient(error: impl Into<String>) -> Self {
        Failure::Transient { code: None, error: error.into() }
    }

    pub fn permanent(error: impl Into<String>) -> Self {
        Failure::Permanent { code: None, error: error.into() }
    }

    pub fn code(&self) -> Option<u16> {
        match self {
            Failure::Transient { code, .. } | Failure::Later { code, .. } | Failure::Permanent { code, .. } => *code,
        }
    }

    pub fn error(&self) -> &str {
        match self {
            Failure::Transient { error, .. } | Failure::Later { error, .. } | Failure::Permanent { error, .. } => error,
        }
    }
}

/// The receiver's status on success (HTTP status, SMTP reply code).
pub type Delivered = Option<u16>;

/// Delivers one kind of outbox item.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn deliver(&self, item: &OutboxItem) -> Result<Delivered, Failure>;
}
