//! A small inbound SMTP receiver (RFC 5321 subset) that hands each message
//! to a [`MailHandler`].
//!
//! Rules:
//! - It sits behind the operator's MTA or on loopback: no TLS, no AUTH, no
//!   relaying. Every recipient is put to the handler, which says yes or no.
//! - Bounded everywhere: connections (421 beyond the cap), line length
//!   (smtp-proto's limit), recipients per message, message size (declared
//!   `SIZE=` is checked at MAIL, and DATA is counted while it is read: past
//!   the limit the rest is discarded and the answer is 552), and time (an
//!   idle timeout between commands, a command timeout inside one).
//! - Commands are parsed by smtp-proto; responses are written here, queued
//!   and flushed once per read so pipelined clients get one write.
//! - Nothing here panics on client input; every refusal is logged with why.

mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How the receiver behaves. `Default` suits a loopback listener.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// The name we greet with.
    pub hostname: String,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    pub max_connections: usize,
    /// How long a client may stay silent between commands.
    pub idle_timeout: Duration,
    /// How long a client may take to finish a command line or the next piece of DATA.
    pub command_timeout: Duration,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            hostname: "localhost".into(),
            max_message_bytes: 10 * 1024 * 1024,
            max_recipients: 100,
            max_connections: 64,
            idle_timeout: Duration::from_secs(300),
            command_timeout: Duration::from_secs(60),
        }
    }
}

/// Who sent a message to whom, as the SMTP client said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub peer: SocketAddr,
    pub helo: String,
    /// Empty for the null sender `<>` (bounces).
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Accepted,
    /// Permanent: the client should not retry (550).
    Rejected(String),
    /// The client should retry later (451).
    TempFailure(String),
}

/// What the app does with received mail.
#[async_trait::async_trait]
pub trait MailHandler: Send + Sync {
    /// Whether we take mail for this recipient (`register@…`, `reply+…@…`).
    async fn accept_rcpt(&self, rcpt: &str) -> bool;
    /// A complete message, dot-unstuffed, within the size limit.
    async fn deliver(&self, envelope: Envelope, raw: Vec<u8>) -> Delivery;
}

/// Accepts connections until `shutdown` completes, then stops accepting,
/// tells idle sessions goodbye (421) and waits for the others to finish.
pub async fn serve(listener: TcpListener, config: ReceiverConfig, handler: Arc<dyn MailHandler>, shutdown: impl Future) {
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(%error, "smtp accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::info!(%peer, reason = "too many connections", "smtp connection refused");
                    sessions.spawn(session::turn_away(stream));
                    continue;
                };
                let (config, handler, stop) = (Arc::clone(&config), Arc::clone(&handler), stop_rx.clone());
                sessions.spawn(async move {
                    session::run(stream, peer, &config, handler.as_ref(), stop).await;
                    drop(slot);
                });
            }
            // Reap finished sessions so the set does not grow with uptime.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    let _ = stop_tx.send(true);
    while sessions.join_next().await.is_some() {}
}

#[cfg(test)]
#[path = "smtp_in_tests.rs"]
mod tests;
