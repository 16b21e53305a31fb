//! Outbound mail: a [`MailPayload`] becomes a MIME message (HTML and
//! plain text, threading headers, Reply-To) and goes out over SMTP, or
//! into a `.eml` file when no SMTP server is configured.
//!
//! Rules: the Message-ID derives from the outbox item's idempotency key,
//! and the key itself travels as `X-Idempotency-Key`, so a repeat after a
//! crash is recognisably the same message. A referral's first mail's
//! Message-ID is the thread's id; later mails name it in In-Reply-To and
//! References. A mail file is written whole (temporary file, then rename)
//! under a name derived from the key: a repeat overwrites, never doubles.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use partnerloop_app::notify::notice::MailPayload;
use partnerloop_app::outbox::OutboxItem;
use sha2::{Digest, Sha256};

use crate::render::render;
use crate::transport::{Delivered, Failure, Transport};

/// A header whose value is text we compose.
macro_rules! text_header {
    ($(#[$m:meta])* $name:ident, $header:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        struct $name(String);

        impl Header for $name {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($header)
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok(Self(s.to_owned()))
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(
    /// The outbox item's key, for receivers that dedupe.
    IdempotencyKey,
    "X-Idempotency-Key"
);
text_header!(
    /// `<URL>` that opts the recipient out of this mail's topic.
    ListUnsubscribe,
    "List-Unsubscribe"
);
text_header!(
    /// RFC 8058: the URL above works with a one-click POST.
    ListUnsubscribePost,
    "List-Unsubscribe-Post"
);

/// The Message-ID of a referral's thread (its first mail's own).
pub fn thread_id(referral_id: &str, domain: &str) -> String {
    format!("<referral.{referral_id}@{domain}>")
}

/// 32 hex characters naming one outbox item (Message-ID, mail file name).
fn key_digest(idempotency_key: &str) -> String {
    Sha256::digest(idempotency_key.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// A stable Message-ID for one outbox item.
pub fn message_id(idempotency_key: &str, domain: &str) -> String {
    format!("<{}@{domain}>", key_digest(idempotency_key))
}

/// Builds the message of an email item. A malformed address is permanent.
pub fn build(item: &OutboxItem, from_address: &str, domain: &str) -> Result<Message, Failure> {
    let p: MailPayload = serde_json::from_value(item.payload.clone()).map_err(|e| Failure::permanent(format!("bad mail payload: {e}")))?;
    let rendered = render(&p).map_err(|e| Failure::permanent(format!("rendering failed: {e}")))?;
    let from_addr = from_address.parse().map_err(|e| Failure::permanent(format!("PARTNERLOOP_MAIL_FROM: {e}")))?;
    let to_addr = p.to.email.parse().map_err(|e| Failure::permanent(format!("recipient {}: {e}", p.to.email)))?;
    let mut b = Message::builder()
        .from(Mailbox::new(Some(p.workspace.clone()), from_addr))
        .to(Mailbox::new(p.to.name.clone(), to_addr))
        .subject(rendered.subject)
        .header(IdempotencyKey(item.idempotency_key.clone()));
    if let Some(url) = &p.unsubscribe_url {
        b = b.header(ListUnsubscribe(format!("<{url}>"))).header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()));
    }
    if let Some(reply) = &p.reply_to {
        let addr = reply.parse().map_err(|e| Failure::permanent(format!("reply address: {e}")))?;
        b = b.reply_to(Mailbox::new(Some(p.workspace.clone()), addr));
    }
    b = match &p.referral_id {
        Some(r) if p.starts_thread => b.message_id(Some(thread_id(r, domain))),
        Some(r) => {
            b.message_id(Some(message_id(&item.idempotency_key, domain))).in_reply_to(thread_id(r, domain)).references(thread_id(r, domain))
        }
        None => b.message_id(Some(message_id(&item.idempotency_key, domain))),
    };
    b.multipart(MultiPart::alternative_plain_html(rendered.text, rendered.html))
        .map_err(|e| Failure::permanent(format!("building the message: {e}")))
}

/// Where mail goes.
pub enum MailSink {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

/// Sends email items.
pub struct Mailer {
    sink: MailSink,
    from: String,
    /// Domain of Message-IDs (the sender's).
    domain: String,
}

impl Mailer {
    /// SMTP from a `smtp://` / `smtps://` URL (lettre's syntax:
    /// `smtp://user:pass@host:port?tls=required` for STARTTLS).
    pub fn smtp(url: &str, from: &str) -> Result<Self, String> {
        let t = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("PARTNERLOOP_SMTP_URL: {e}"))?
            .timeout(Some(Duration::from_secs(30)))
            .build();
        Ok(Self { sink: MailSink::Smtp(t), from: from.to_owned(), domain: domain_of(from) })
    }

    /// `.eml` files under `dir` (created when missing).
    pub fn files(dir: PathBuf, from: &str) -> Self {
        Self { sink: MailSink::Files(dir), from: from.to_owned(), domain: domain_of(from) }
    }
}

fn domain_of(address: &str) -> String {
    address.rsplit_once('@').map(|(_, d)| d.trim_end_matches('>').to_owned()).unwrap_or_else(|| "localhost".into())
}

#[async_trait]
impl Transport for Mailer {
    async fn deliver(&self, item: &OutboxItem) -> Result<Delivered, Failure> {
        let message = build(item, &self.from, &self.domain)?;
        match &self.sink {
            MailSink::Smtp(t) => match t.send(message).await {
                Ok(r) => Ok(Some(u16::from(r.code()))),
                Err(e) => {
                    let code = e.status().map(u16::from);
                    let error = format!("SMTP: {e}");
                    if e.is_permanent() { Err(Failure::Permanent { code, error }) } else { Err(Failure::Transient { code, error }) }
                }
            },
            MailSink::Files(dir) => {
                let bytes = message.formatted();
                let name = format!("{}.eml", key_digest(&item.idempotency_key));
                write_whole(dir.clone(), name, bytes)
                    .await
                    .map_err(|e| Failure::transient(format!("mail file in {}: {e}", dir.display())))?;
                Ok(None)
            }
        }
    }
}

async fn write_whole(dir: PathBuf, name: String, bytes: Vec<u8>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, dir.join(&name))
    })
    .await
    .map_err(std::io::Error::other)?
}
