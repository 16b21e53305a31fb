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
