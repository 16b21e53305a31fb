//! The transactional outbox: side effects as rows.
//!
//! Rules: a state change writes its event in its own transaction (the
//! store does it with the audit row); the fan-out turns events into
//! [`NewOutboxItem`]s whose idempotency keys are derived from the event, so
//! enqueueing is exactly-once even when two servers fan out at once. A
//! dispatcher claims due items under a lease, delivers, and records every
//! attempt; a failure waits with exponential backoff, and after
//! [`MAX_ATTEMPTS`] the item is dead-lettered (kept, visible, retryable by
//! hand). Delivery is at-least-once; receivers dedupe by the key.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use partnerloop_domain::ids::{ContactId, PartnerId, WorkspaceId};

use crate::store::{AuditEntry, Page, Paged, StoreResult};

/// Attempts before an item is dead-lettered (the last waits ~17 hours).
pub const MAX_ATTEMPTS: u32 = 12;

/// How long a claimed item is hidden from other dispatchers: longer than
/// any single delivery may take (SMTP and HTTP time out well before).
pub const LEASE: SignedDuration = SignedDuration::from_secs(300);

/// The wait before attempt `n + 1` after `n` failed ones: 10 s doubling,
/// at most 6 hours, with up to a fifth of jitter from `jitter` (0..1000).
pub fn backoff(failed_attempts: u32, jitter: u32) -> SignedDuration {
    let base = 10i64.saturating_mul(1i64 << failed_attempts.saturating_sub(1).min(20));
    let capped = base.min(6 * 3600);
    let extra = capped * i64::from(jitter.min(1000)) / 5000;
    SignedDuration::from_secs(capped + extra)
}

partnerloop_domain::text_enum!(
    /// How a side effect reaches its receiver.
    Channel { Email = "email", Slack = "slack", Webhook = "webhook", Crm = "crm" }
);

partnerloop_domain::text_enum!(
    /// Where an outbox item stands.
    OutboxStatus { Pending = "pending", Delivered = "delivered", Dead = "dead" }
);

/// A side effect to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxItem {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub channel: Channel,
    /// Unique per side effect; the receiver sees it (Standard Webhooks
    /// `webhook-id`, the mail's Message-ID and `X-Idempotency-Key`).
    pub idempotency_key: String,
    /// The event type that caused it (`referral.approved`, …).
    pub event: String,
    /// Who receives it: an email address, a webhook endpoint id, `slack`.
    pub target: String,
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
}

/// An item as stored, with its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub channel: Channel,
    pub idempotency_key: String,
    pub event: String,
    pub target: String,
    pub payload: serde_json::Value,
    pub status: OutboxStatus,
    /// Attempts made, the one in progress included.
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// One delivery attempt's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub attempt: u32,
    pub at: Timestamp,
    pub ok: bool,
    /// The receiver's status (HTTP status, SMTP reply code).
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What happens to an item after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterAttempt {
    Delivered,
    RetryAt(Timestamp),
    Dead,
}

/// An event waiting for its fan-out: the audit row it was written with.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub audit_id: String,
    pub workspace_id: WorkspaceId,
    pub entry: AuditEntry,
}

#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub channel: Option<Channel>,
    pub status: Option<OutboxStatus>,
    /// Only the items of one webhook endpoint.
    pub target: Option<String>,
}

/// A webhook endpoint as stored; the signing secret is sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types it receives; empty: all.
    pub events: Vec<String>,
    pub secret_sealed: String,
    pub active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl WebhookEndpoint {
    pub fn wants(&self, event: &str) -> bool {
        self.active && (self.events.is_empty() || self.events.iter().any(|e| e == event || e == "*"))
    }
}

/// Who hears what in a workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationSettings {
    /// The Slack incoming webhook URL, sealed (the URL is the credential).
    pub slack_sealed: Option<String>,
    /// Partner managers: review requests, stalled deals, replies.
    pub manager_emails: Vec<String>,
    /// A referral with no stage change for this many days is stalled.
    pub stalled_days: u32,
    pub updated_at: Timestamp,
}

partnerloop_domain::text_enum!(
    /// A topic of partner mail a contact can opt out of: referral updates
    /// (received, decision, stage changes, won, protection), earnings
    /// (commission payable, payout sent, tier changes), the digest,
    /// announcements.
    Topic { ReferralUpdates = "referral_updates", Earnings = "earnings", Digest = "digest", Announcements = "announcements" }
);

/// One opt-in or opt-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preference {
    pub contact_id: ContactId,
    pub topic: Topic,
    pub enabled: bool,
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Up to `limit` events waiting for fan-out, oldest first, any workspace.
    async fn pending_events(&self, limit: u32) -> StoreResult<Vec<PendingEvent>>;
    /// Enqueues `items` (an item whose key exists is skipped) and removes
    /// the events `done`, in one transaction. Returns the items added.
    async fn fan_out(&self, done: &[String], items: &[NewOutboxItem]) -> StoreResult<u64>;
    /// Enqueues items not caused by a state change (scheduled mail); an
    /// item whose key exists is skipped. Returns the items added.
    async fn enqueue(&self, items: &[NewOutboxItem]) -> StoreResult<u64>;
    /// Enqueues items a person asked for (an announcement) with the audit
    /// row, in one transaction.
    async fn enqueue_audited(&self, ws: &WorkspaceId, items: &[NewOutboxItem], audit: &AuditEntry) -> StoreResult<u64>;
    /// Takes up to `limit` due pending items: each one's attempt count goes
    /// up and its next attempt moves to `lease_until`, so no other
    /// dispatcher takes it meanwhile (PostgreSQL: `SKIP LOCKED`).
    async fn claim_outbox(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> StoreResult<Vec<OutboxItem>>;
    /// Records an attempt and its consequence, if the item is still on
    /// that attempt (a late finisher after its lease lapsed changes nothing
    /// but the attempt log).
    async fn finish_outbox(&self, id: &str, attempt: &Attempt, after: AfterAttempt, error: Option<&str>) -> StoreResult<()>;
    /// The earliest time a pending item is due, if any.
    async fn next_outbox_due(&self) -> StoreResult<Option<Timestamp>>;
    async fn outbox_item(&self, ws: &WorkspaceId, id: &str) -> StoreResult<OutboxItem>;
    async fn list_outbox(&self, ws: &WorkspaceId, filter: &OutboxFilter, page: &Page) -> StoreResult<Paged<OutboxItem>>;
    async fn outbox_attempts(&self, ws: &WorkspaceId, id: &str) -> StoreResult<Vec<Attempt>>;
    /// A dead item becomes pending again, due at `now`.
    async fn retry_outbox(&self, ws: &WorkspaceId, id: &str, now: Timestamp, audit: &AuditEntry) -> StoreResult<()>;

    async fn insert_webhook_endpoint(&self, ws: &WorkspaceId, e: &WebhookEndpoint, audit: &AuditEntry) -> StoreResult<()>;
    async fn update_webhook_endpoint(&self, ws: &WorkspaceId, e: &WebhookEndpoint, audit: &AuditEntry) -> StoreResult<()>;
    async fn delete_webhook_endpoint(&self, ws: &WorkspaceId, id: &str, audit: &AuditEntry) -> StoreResult<()>;
    async fn webhook_endpoint(&self, ws: &WorkspaceId, id: &str) -> StoreResult<WebhookEndpoint>;
    async fn webhook_endpoints(&self, ws: &WorkspaceId) -> StoreResult<Vec<WebhookEndpoint>>;

    async fn notification_settings(&self, ws: &WorkspaceId) -> StoreResult<Option<NotificationSettings>>;
    async fn put_notification_settings(&self, ws: &WorkspaceId, s: &NotificationSettings, audit: &AuditEntry) -> StoreResult<()>;
    /// The opt-outs and opt-ins recorded for a partner's contacts.
    async fn preferences(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Vec<Preference>>;
    async fn put_preferences(&self, ws: &WorkspaceId, prefs: &[Preference], audit: &AuditEntry) -> StoreResult<()>;
    /// Every contact of the workspace who opted out of `topic`.
    async fn opted_out(&self, ws: &WorkspaceId, topic: Topic) -> StoreResult<Vec<ContactId>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_and_is_capped_at_six_hours() {
        assert_eq!(backoff(1, 0).as_secs(), 10);
        assert_eq!(backoff(2, 0).as_secs(), 20);
        assert_eq!(backoff(5, 0).as_secs(), 160);
        assert_eq!(backoff(30, 0).as_secs(), 6 * 3600);
        assert_eq!(backoff(1, 1000).as_secs(), 12, "jitter adds at most a fifth");
    }

    #[test]
    fn an_endpoint_without_a_filter_hears_every_event_and_an_inactive_one_none() {
        let mut e = WebhookEndpoint {
            id: "whe_1".into(),
            url: "http://x".into(),
            description: None,
            events: vec![],
            secret_sealed: String::new(),
            active: true,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
        };
        assert!(e.wants("referral.approved"));
        e.events = vec!["referral.won".into()];
        assert!(!e.wants("referral.approved") && e.wants("referral.won"));
        e.active = false;
        assert!(!e.wants("referral.won"));
    }
}
