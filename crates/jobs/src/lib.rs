//! partnerloop's background work: the outbox dispatcher and the
//! transports it delivers through (SMTP or mail files, signed webhooks,
//! Slack), and the scheduled jobs.
//!
//! Rules of this crate: a transport only delivers; whether to retry, when,
//! and what to record is the dispatcher's decision, from the transport's
//! [`transport::Failure`] (transient or permanent). Secrets (SMTP password,
//! webhook secrets, the Slack URL) are never logged.

pub mod crm;
pub mod dispatcher;
pub mod email;
pub mod http;
pub mod render;
pub mod transport;

pub use dispatcher::Dispatcher;
