//! Inbound mail, by HTTP (`POST /inbound/email?key=`, a raw RFC 5322
//! message) and by the built-in SMTP receiver: both hand the message to
//! one [`Intake`], which reads it within limits and acts on what it is
//! addressed to — `register@` (or `register+WORKSPACE@`) registers a
//! referral, `reply+TOKEN@` adds a reply to that referral's timeline.
//!
//! Rules: a malformed, oversized or too-deep message is refused with its
//! reason; a message from an unknown sender, or with a bad token, is
//! accepted and dropped with a logged reason (answering would feed
//! backscatter). Nothing here panics on any input.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use partnerloop_app::inbound::{self, InboundOutcome, MailedRegistration};
use partnerloop_app::matching::NameMatcher;
use partnerloop_app::notify::NotifyConfig;
use partnerloop_app::{AppError, Store};
use partnerloop_domain::reply_token;
use partnerloop_mail::inbound::{InboundMail, Limits, parse};
use partnerloop_mail::intake::read_registration;
use partnerloop_mail::smtp_in::{Delivery, Envelope, MailHandler};
use partnerloop_mail::strip::strip_reply;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::problem::{ApiError, problem};

/// Largest message taken (also the SMTP receiver's SIZE).
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// Why a message was not acted on and not merely dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeFailure {
    /// The message cannot be read (malformed, too large, too deep): refused for good.
    Unreadable(String),
    /// Our side failed (the database): the sender should try again.
    Internal(String),
}

/// Reads and acts on inbound mail.
pub struct Intake {
    store: Arc<dyn Store>,
    matcher: Arc<NameMatcher>,
    notify: NotifyConfig,
    limits: Limits,
}

/// What an address of ours asks for.
enum Purpose<'a> {
    Register { workspace: Option<&'a str> },
    Reply { token: &'a str },
}

impl Intake {
    pub fn new(store: Arc<dyn Store>, matcher: Arc<NameMatcher>, notify: NotifyConfig) -> Self {
        Self { store, matcher, notify, limits: Limits { max_bytes: MAX_MESSAGE_BYTES, ..Limits::default() } }
    }

    fn purpose<'a>(&self, address: &'a str) -> Option<Purpose<'a>> {
        let (local, domain) = address.rsplit_once('@')?;
        if !domain.trim_end_matches('>').eq_ignore_ascii_case(&self.notify.inbound_domain) {
            return None;
        }
        if let Some(token) = reply_token::token_from_address(address) {
            return Some(Purpose::Reply { token });
        }
        let local = local.trim_start_matches('<');
        if local.eq_ignore_ascii_case("register") {
            return Some(Purpose::Register { workspace: None });
        }
        let (head, slug) = local.split_once('+')?;
        head.eq_ignore_ascii_case("register").then_some(Purpose::Register { workspace: Some(slug) })
    }

    /// Acts on one message. `recipients`: the SMTP envelope's, else the
    /// message's own To and Cc.
    pub async fn handle(&self, raw: &[u8], recipients: Option<&[String]>, now: Timestamp) -> Result<InboundOutcome, IntakeFailure> {
        let mail = match parse(raw, &self.limits) {
            Ok(m) => m,
            Err(r) => {
                tracing::info!(reason = %r, "inbound mail refused");
                return Err(IntakeFailure::Unreadable(r.to_string()));
            }
        };
        let from_headers: Vec<String>;
        let recipients = match recipients {
            Some(r) => r,
            None => {
                from_headers = mail.to.iter().chain(&mail.cc).map(|a| a.email.clone()).collect();
                &from_headers
            }
        };
        let purpose = recipients.iter().find_map(|r| self.purpose(r));
        let outcome = match purpose {
            None => Ok(InboundOutcome::Dropped { reason: "not addressed to register@ or a reply address".into() }),
            Some(Purpose::Reply { token }) => {
                let text = strip_reply(&mail.text);
                inbound::reply_by_mail(self.store.as_ref(), &self.notify, token, &mail.from.email, text, now)
                    .await
                    .map_err(|e| IntakeFailure::Internal(e.to_string()))
            }
            Some(Purpose::Register { workspace }) => self.register(&mail, raw, workspace, now).await,
        };
        match &outcome {
            Ok(InboundOutcome::Dropped { reason }) => tracing::info!(from = %mail.from.email, reason, "inbound mail dropped"),
            Ok(o) => tracing::info!(from = %mail.from.email, outcome = ?o, "inbound mail"),
            Err(e) => tracing::warn!(from = %mail.from.email, error = ?e, "inbound mail failed"),
        }
        outcome
    }

    async fn register(
        &self,
        mail: &InboundMail,
        raw: &[u8],
        workspace: Option<&str>,
        now: Timestamp,
    ) -> Result<InboundOutcome, IntakeFailure> {
        let store = self.store.as_ref();
        let (ws, partner) = match inbound::sender_partner(store, &mail.from.email, workspace).await {
            Ok(found) => found,
            Err(reason) => return Ok(InboundOutcome::Dropped { reason }),
        };
        let mut domains: Vec<String> = partner.contacts.iter().map(|c| c.email.domain().to_owned()).collect();
        domains.extend(partner.website.as_ref().map(|w| w.as_str().to_owned()));
        let key = mail.message_id.clone().unwrap_or_else(|| Sha256::digest(raw).iter().take(16).map(|b| format!("{b:02x}")).collect());
        let (ws_ref, key) = (&ws, &key);
        let refuse = |reason: String| async move {
            inbound::refuse_registration(store, ws_ref, &mail.from.email, &reason, key, now)
                .await
                .map_err(|e| IntakeFailure::Internal(e.to_string()))?;
            Ok(InboundOutcome::Dropped { reason })
        };
        let req = match read_registration(mail, &self.notify.inbound_domain, &domains) {
            Ok(r) => r,
            Err(e) => return refuse(e.to_string()).await,
        };
        let m = MailedRegistration {
            company_name: req.company_name,
            company_domain: req.company_domain,
            contact_name: req.contact_name,
            contact_email: req.contact_email,
            context: req.context,
        };
        match inbound::register_by_mail(store, &self.matcher, &ws, &partner, m, now).await {
            Ok(o) => Ok(o),
            Err(AppError::Invalid(errors)) => {
                refuse(errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")).await
            }
            Err(e) => Err(IntakeFailure::Internal(e.to_string())),
        }
    }
}

#[async_trait]
impl MailHandler for Intake {
    async fn accept_rcpt(&self, rcpt: &str) -> bool {
        match self.purpose(rcpt) {
            Some(Purpose::Reply { token }) => reply_token::decode(&self.notify.link_key, token).is_ok(),
            Some(Purpose::Register { .. }) => true,
            None => false,
        }
    }

    async fn deliver(&self, envelope: Envelope, raw: Vec<u8>) -> Delivery {
        match self.handle(&raw, Some(&envelope.rcpt_to), Timestamp::now()).await {
            Ok(_) => Delivery::Accepted,
            Err(IntakeFailure::Internal(_)) => Delivery::TempFailure("try again later".into()),
            Err(IntakeFailure::Unreadable(why)) => Delivery::Rejected(why),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct KeyParam {
    pub key: Option<String>,
}

/// `POST /inbound/email?key=`: 404 when no key is configured, 401 for a
/// wrong key, 422 for a message that cannot be read.
pub async fn receive(State(s): State<AppState>, Query(q): Query<KeyParam>, body: Bytes) -> Response {
    let (Some(intake), Some(expected)) = (s.intake.as_ref(), s.inbound_key_hash.as_ref()) else {
        return ApiError::NoRoute.into_response();
    };
    // Compared as digests: equal length, no early exit on the secret itself.
    let given = Sha256::digest(q.key.unwrap_or_default().as_bytes());
    if given.as_slice() != expected.as_slice() {
        return problem(StatusCode::UNAUTHORIZED, "unauthorized", "the inbound key is missing or wrong", vec![]);
    }
    match intake.handle(&body, None, Timestamp::now()).await {
        Ok(o) => {
            let body = match o {
                InboundOutcome::Registered { referral_id, created } => {
                    serde_json::json!({"outcome": "registered", "referral_id": referral_id.as_str(), "created": created})
                }
                InboundOutcome::Replied { referral_id } => serde_json::json!({"outcome": "replied", "referral_id": referral_id.as_str()}),
                InboundOutcome::Dropped { reason } => serde_json::json!({"outcome": "dropped", "reason": reason}),
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(IntakeFailure::Unreadable(why)) => problem(StatusCode::UNPROCESSABLE_ENTITY, "unreadable-mail", why, vec![]),
        Err(IntakeFailure::Internal(_)) => ApiError::Unavailable("the message could not be stored; send it again".into()).into_response(),
    }
}
