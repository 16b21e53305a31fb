//! Notifications: who hears about what, and how it reaches them.
//!
//! Rules: nothing here sends anything. A state change leaves an event in
//! the store (with its audit row, one transaction); [`fan_out_pending`]
//! turns events into outbox items; the dispatcher (an adapter) delivers
//! them. Links sent to people are signed with the instance's secret key:
//! reply addresses never expire (a reply months later still threads), the
//! read-only status link lasts [`STATUS_LINK_DAYS`].

pub mod fanout;
pub mod notice;
pub mod scheduled;
pub mod slack;

use jiff::{SignedDuration, Timestamp};
use partnerloop_domain::ids::WorkspaceId;
use partnerloop_domain::referral::ReferralId;

use crate::error::AppError;
use crate::store::Store;

pub use fanout::{event_types, is_event};

/// How long a referral's read-only status link works.
pub const STATUS_LINK_DAYS: i64 = 30;

/// The key that signs links and reply addresses, derived from the
/// instance's secret key so that it differs from the sealing key.
pub fn link_key(secret: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(format!("partnerloop links v1\0{secret}").as_bytes()).to_vec()
}

/// What the fan-out needs to know about this installation.
#[derive(Clone)]
pub struct NotifyConfig {
    /// Public URL of the server, for links in mail and Slack.
    pub base_url: String,
    /// Domain of the intake and reply addresses.
    pub inbound_domain: String,
    /// Signs reply addresses and status links.
    pub link_key: Vec<u8>,
    /// The workspace whose Slack webhook comes from the environment.
    pub default_slack_workspace: Option<WorkspaceId>,
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("base_url", &self.base_url)
            .field("inbound_domain", &self.inbound_domain)
            .finish_non_exhaustive()
    }
}

impl NotifyConfig {
    /// `reply+TOKEN@DOMAIN` for a referral's thread.
    pub fn reply_address(&self, referral: &ReferralId) -> String {
        partnerloop_domain::reply_token::reply_address(&self.link_key, referral, &self.inbound_domain)
    }

    /// The referral's read-only status page, valid for [`STATUS_LINK_DAYS`]
    /// from `now`, until the referral's link `version` moves on.
    pub fn status_url(&self, referral: &ReferralId, version: u32, now: Timestamp) -> String {
        let until = now + SignedDuration::from_hours(24 * STATUS_LINK_DAYS);
        let token = partnerloop_domain::reply_token::status_token(&self.link_key, referral, until, version);
        format!("{}/status/{token}", self.base_url)
    }
}

impl NotifyConfig {
    /// A contact's mail-preferences page (no sign-in: the token is the key).
    pub fn preferences_url(&self, contact: &partnerloop_domain::ids::ContactId) -> String {
        format!("{}/preferences/{}", self.base_url, partnerloop_domain::reply_token::preferences_token(&self.link_key, contact))
    }

    /// One-click opt-out of one topic for a contact (RFC 8058).
    pub fn unsubscribe_url(&self, contact: &partnerloop_domain::ids::ContactId, topic: crate::outbox::Topic) -> String {
        format!(
            "{}/unsubscribe/{}/{}",
            self.base_url,
            partnerloop_domain::reply_token::preferences_token(&self.link_key, contact),
            topic.as_str()
        )
    }
}

/// Fans out up to `limit` pending events. Returns how many events were
/// handled. An event whose subject is gone is dropped with a log line.
pub async fn fan_out_pending(store: &dyn Store, cfg: &NotifyConfig, now: Timestamp, limit: u32) -> Result<u64, AppError> {
    let events = store.pending_events(limit).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let mut items = Vec::new();
    let mut done = Vec::with_capacity(events.len());
    let mut views: std::collections::HashMap<WorkspaceId, fanout::WorkspaceView> = std::collections::HashMap::new();
    for ev in &events {
        if !views.contains_key(&ev.workspace_id) {
            views.insert(ev.workspace_id.clone(), fanout::WorkspaceView::read(store, &ev.workspace_id).await?);
        }
        let view = &views[&ev.workspace_id];
        match fanout::items_for(store, cfg, view, ev, now).await {
            Ok(mut v) => items.append(&mut v),
            Err(crate::StoreError::NotFound) => {
                tracing::warn!(event = %ev.entry.action, id = %ev.entry.entity_id, "event dropped: its record is gone");
            }
            Err(e) => return Err(e.into()),
        }
        done.push(ev.audit_id.clone());
    }
    store.fan_out(&done, &items).await?;
    Ok(done.len() as u64)
}
