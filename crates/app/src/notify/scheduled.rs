//! Mail the clock causes: protection about to end (7 days before, to the
//! partner and the deal owner), stalled deals (no change for the
//! workspace's `stalled_days`, to partner managers and the deal owner),
//! and announcements to all partners or one tier.
//!
//! Rules: a scheduled notice is a made-up event that runs through the same
//! fan-out as stored ones; its id names what it is about and when
//! (`expiring:{referral}:{expires_at}`, `stalled:{referral}:{updated_at}`),
//! so every server may run the schedule as often as it likes and each
//! notice is still enqueued once.

use std::collections::HashMap;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use partnerloop_domain::ids::WorkspaceId;
use partnerloop_domain::referral::Referral;
use serde_json::json;

use super::NotifyConfig;
use super::fanout::{WorkspaceView, items_for};
use crate::error::AppError;
use crate::outbox::PendingEvent;
use crate::store::{AuditEntry, Store, StoreResult};

/// How long before its end a protection window is announced.
pub const EXPIRY_WARNING_DAYS: i64 = 7;
/// The stalled-deal threshold of a workspace without settings.
pub const DEFAULT_STALLED_DAYS: u32 = 14;
/// Referrals looked at per run and kind.
const LIMIT: u32 = 1000;

#[async_trait]
pub trait ScheduleStore: Send + Sync {
    async fn workspace_ids(&self) -> StoreResult<Vec<WorkspaceId>>;
    /// Approved referrals whose protection ends in `(from, to]`, any workspace.
    async fn referrals_expiring(&self, from: Timestamp, to: Timestamp, limit: u32) -> StoreResult<Vec<(WorkspaceId, Referral)>>;
    /// Approved (open) referrals of a workspace unchanged since before `before`.
    async fn stalled_referrals(&self, ws: &WorkspaceId, before: Timestamp, limit: u32) -> StoreResult<Vec<Referral>>;
    /// Whether the digest of `month` (`YYYY-MM`) went out in a workspace.
    async fn digest_sent(&self, ws: &WorkspaceId, month: &str) -> StoreResult<bool>;
    async fn mark_digest_sent(&self, ws: &WorkspaceId, month: &str) -> StoreResult<()>;
}

/// A made-up event about a referral.
fn synthetic(id: String, ws: &WorkspaceId, action: &str, r: &Referral, now: Timestamp, after: serde_json::Value) -> PendingEvent {
    PendingEvent {
        audit_id: id,
        workspace_id: ws.clone(),
        entry: AuditEntry {
            at: now,
            actor: "system:scheduler".into(),
            action: action.into(),
            entity: "referral".into(),
            entity_id: r.id.to_string(),
            before: None,
            after: Some(after),
        },
    }
}

/// Runs the expiry warnings and stalled-deal alerts once; returns how many
/// outbox items were added.
pub async fn run(store: &dyn Store, cfg: &NotifyConfig, now: Timestamp) -> Result<u64, AppError> {
    let mut events = Vec::new();
    let soon = now + SignedDuration::from_hours(24 * EXPIRY_WARNING_DAYS);
    for (ws, r) in store.referrals_expiring(now, soon, LIMIT).await? {
        let Some(p) = r.protection else { continue };
        let id = format!("expiring:{}:{}", r.id, p.expires_at.as_second());
        events.push(synthetic(
            id,
            &ws,
            "referral.protection_expiring",
            &r,
            now,
            json!({"status": r.status.as_str(), "protection_expires_at": p.expires_at.to_string()}),
        ));
    }
    for ws in store.workspace_ids().await? {
        let days = store.notification_settings(&ws).await?.map_or(DEFAULT_STALLED_DAYS, |s| s.stalled_days);
        let before = now - SignedDuration::from_hours(24 * i64::from(days));
        for r in store.stalled_referrals(&ws, before, LIMIT).await? {
            let idle_days = now.duration_since(r.updated_at).as_hours() / 24;
            let id = format!("stalled:{}:{}", r.id, r.updated_at.as_microsecond());
            events.push(synthetic(id, &ws, "referral.stalled", &r, now, json!({"status": r.status.as_str(), "idle_days": idle_days})));
        }
    }
    let mut views: HashMap<WorkspaceId, WorkspaceView> = HashMap::new();
    let mut items = Vec::new();
    for ev in &events {
        if !views.contains_key(&ev.workspace_id) {
            views.insert(ev.workspace_id.clone(), WorkspaceView::read(store, &ev.workspace_id).await?);
        }
        items.extend(items_for(store, cfg, &views[&ev.workspace_id], ev, now).await?);
    }
    if items.is_empty() {
        return Ok(0);
    }
    Ok(store.enqueue(&items).await?)
}

/// The month before `now`'s: its key (`2026-10`) and its name (`October 2026`).
fn previous_month(now: Timestamp) -> (String, String) {
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let last = today.first_of_month().yesterday().unwrap_or(today);
    (last.strftime("%Y-%m").to_string(), last.strftime("%B %Y").to_string())
}

/// Sends each workspace's digest of last month once (run it hourly): to
/// every contact of an active partner who has not opted out, with a
/// one-click unsubscribe. Returns the mails queued.
pub async fn digests(store: &dyn Store, cfg: &NotifyConfig, now: Timestamp) -> Result<u64, AppError> {
    use crate::notify::notice::{MailPayload, Mailbox, Notice};
    use crate::outbox::{Channel, NewOutboxItem, Topic};
    use crate::store::{Page, PartnerFilter, ReferralFilter};
    let (month, month_name) = previous_month(now);
    let mut queued = 0;
    for ws in store.workspace_ids().await? {
        if store.digest_sent(&ws, &month).await? {
            continue;
        }
        let workspace = store.workspace(&ws).await?;
        let created = workspace.created_at.to_zoned(jiff::tz::TimeZone::UTC).date().strftime("%Y-%m").to_string();
        if created > month {
            // The workspace did not exist last month.
            store.mark_digest_sent(&ws, &month).await?;
            continue;
        }
        let opted_out: std::collections::HashSet<_> = store.opted_out(&ws, Topic::Digest).await?.into_iter().collect();
        let labels = store.stage_labels(&ws).await?;
        let ctx = crate::Ctx::system(ws.clone(), "digest", now);
        let filter = PartnerFilter { status: Some(partnerloop_domain::partner::PartnerStatus::Active), only: None };
        let mut page = Page { limit: 200, after: None };
        let mut items = Vec::new();
        loop {
            let batch = store.list_partners(&ws, &filter, &page).await?;
            for p in &batch.items {
                let referrals = store
                    .list_referrals(
                        &ws,
                        &ReferralFilter { status: None, partner_id: Some(p.id.clone()) },
                        &Page { limit: 500, after: None },
                    )
                    .await?;
                let mut pipeline: Vec<(String, u64)> = Vec::new();
                for r in &referrals.items {
                    let s = crate::pipeline::partner_status(r, &labels);
                    match pipeline.iter_mut().find(|(k, _)| *k == s) {
                        Some((_, n)) => *n += 1,
                        None => pipeline.push((s, 1)),
                    }
                }
                let earnings = store
                    .partner_balances(&ws, &p.id, now)
                    .await?
                    .into_iter()
                    .flat_map(|b| {
                        [
                            (format!("Payable ({})", b.currency), b.payable.to_string()),
                            (format!("Pending ({})", b.currency), b.pending.to_string()),
                            (format!("Paid so far ({})", b.currency), b.paid.to_string()),
                        ]
                    })
                    .collect();
                let progress = crate::tiers::progress(store, &ctx, &p.id).await.ok();
                let tier = progress.as_ref().and_then(|g| g.current.as_ref().map(|t| t.name.clone()));
                let next_tier = progress.and_then(|g| g.next.map(|(t, left)| format!("{left} more to reach {}.", t.name)));
                for c in p.contacts.iter().filter(|c| !opted_out.contains(&c.id)) {
                    let notice = Notice::Digest {
                        month: month_name.clone(),
                        pipeline: pipeline.clone(),
                        earnings: Vec::clone(&earnings),
                        tier: tier.clone(),
                        next_tier: next_tier.clone(),
                    };
                    let mut payload = MailPayload::new(
                        Mailbox { name: Some(c.name.clone()), email: c.email.as_str().to_owned() },
                        workspace.name.clone(),
                        notice,
                    );
                    payload.preferences_url = Some(cfg.preferences_url(&c.id));
                    payload.unsubscribe_url = Some(cfg.unsubscribe_url(&c.id, Topic::Digest));
                    items.push(NewOutboxItem {
                        id: crate::ids::new_id("obx", now),
                        workspace_id: ws.clone(),
                        channel: Channel::Email,
                        idempotency_key: format!("digest:{month}:{}", c.id),
                        event: "digest".into(),
                        target: c.email.as_str().to_owned(),
                        payload: serde_json::to_value(payload).unwrap_or_default(),
                        created_at: now,
                    });
                }
            }
            match batch.next_after {
                Some(after) => page.after = Some(after),
                None => break,
            }
        }
        // Enqueued before the mark: a crash in between re-sends nothing (the keys).
        queued += store.enqueue(&items).await?;
        store.mark_digest_sent(&ws, &month).await?;
    }
    Ok(queued)
}
