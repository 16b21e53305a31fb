//! Partner tiers: the workspace's ladder, evaluated on schedule (hourly, see
//! the CLI's scheduler) and on demand; the partner's tier, history and
//! progress.
//!
//! Rules: only admins change the ladder or evaluate on demand; anyone of
//! the workspace reads the ladder; a partner reads only its own tier and
//! history (another partner's is "not found"). The rules of promotion and
//! demotion are the domain's (`partnerloop_domain::tier`); this module
//! feeds them the trailing-12-month measure and the stored state, and
//! writes each change — the partner's tier, a history row and an audit row
//! — in one transaction guarded against a concurrent change.
//!
//! A tier change is an event: it is recorded in the history table now; the
//! notification issue will email the partner from there later ("partner
//! told when they move up"). The commission of a win uses the partner's
//! tier at that moment (`commissions.rs` reads `partners.tier`), so a
//! promotion applies to wins from then on and never to earlier ones.

use std::collections::HashMap;

use jiff::Timestamp;
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::tier::{self, Measure, Tier, TierDecision, TierLadder};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::{AppError, StoreError};
use crate::store::{AuditEntry, Store};

/// A ladder as stored, with the time it was last replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLadder {
    pub ladder: TierLadder,
    pub updated_at: Timestamp,
}

/// One partner's current tier and trailing-12-month measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerMeasure {
    pub partner_id: PartnerId,
    pub tier: Option<String>,
    pub value: i64,
}

/// What the evaluations remember of a partner between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierState {
    pub partner_id: PartnerId,
    /// The tier this state was judged for; when `partners.tier` differs,
    /// the tier was set by hand since and its grace starts afresh.
    pub tier: Option<String>,
    pub tier_since: Timestamp,
    pub below_since: Option<Timestamp>,
    pub evaluated_at: Timestamp,
}

/// A change of a partner's tier, applied only while the partner still has
/// `from` ([`StoreError::Stale`] otherwise).
#[derive(Debug, Clone)]
pub struct TierChange {
    pub partner_id: PartnerId,
    pub from: Option<String>,
    pub to: Option<String>,
    pub measure: Measure,
    pub value: i64,
    pub reason: String,
    pub audit: AuditEntry,
}

/// One row of a partner's tier history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierHistoryEntry {
    pub seq: i64,
    pub partner_id: PartnerId,
    pub from_tier: Option<String>,
    pub to_tier: Option<String>,
    pub measure: Measure,
    pub value: i64,
    pub at: Timestamp,
    pub actor: String,
    pub reason: String,
}

/// What one evaluation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvaluationReport {
    pub evaluated: u64,
    pub promoted: u64,
    pub demoted: u64,
    /// Below their tier's threshold, inside the grace period.
    pub at_risk: u64,
    /// Held a tier that is not on the ladder and were given the one they meet.
    pub reassigned: u64,
}

impl EvaluationReport {
    fn add(&mut self, o: &EvaluationReport) {
        self.evaluated += o.evaluated;
        self.promoted += o.promoted;
        self.demoted += o.demoted;
        self.at_risk += o.at_risk;
        self.reassigned += o.reassigned;
    }

    pub fn changed(&self) -> u64 {
        self.promoted + self.demoted + self.reassigned
    }
}

/// A partner's standing on the ladder, as the partner reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierProgress {
    pub partner_id: PartnerId,
    /// The partner's tier slug (it may be off the ladder when set by hand).
    pub tier: Option<String>,
    /// That tier on the ladder, with its name and benefits.
    pub current: Option<Tier>,
    pub measure: Measure,
    pub value: i64,
    /// The next tier up and what of the measure it still lacks.
    pub next: Option<(Tier, i64)>,
    pub at_risk_since: Option<Timestamp>,
    /// When the partner loses its tier unless it requalifies first.
    pub demotion_at: Option<Timestamp>,
}

fn ladder_view(l: &TierLadder) -> Value {
    json!({
        "measure": l.measure().name(),
        "currency": l.measure().currency().map(|c| c.code().to_owned()),
        "requalification_grace_days": l.requalification_grace_days(),
        "tiers": l.tiers().iter().map(|t| json!({"slug": t.slug, "name": t.name, "threshold": t.threshold})).collect::<Vec<_>>(),
    })
}

/// Replaces the workspace's ladder (admin).
pub async fn put_ladder(store: &dyn Store, ctx: &Ctx, ladder: TierLadder) -> Result<StoredLadder, AppError> {
    ctx.require_admin()?;
    let before = store.tier_ladder(&ctx.workspace_id).await?;
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: "tier_ladder.replaced".into(),
        entity: "tier_ladder".into(),
        entity_id: ctx.workspace_id.to_string(),
        before: before.map(|b| ladder_view(&b.ladder)),
        after: Some(ladder_view(&ladder)),
    };
    let stored = StoredLadder { ladder, updated_at: ctx.now };
    store.put_tier_ladder(&ctx.workspace_id, &stored, &audit).await?;
    Ok(stored)
}

/// The workspace's ladder; partners may read it too (its benefits are for them).
pub async fn ladder(store: &dyn Store, ctx: &Ctx) -> Result<StoredLadder, AppError> {
    store.tier_ladder(&ctx.workspace_id).await?.ok_or(AppError::NotFound)
}

/// Evaluates every partner of the workspace (admin, or the scheduler).
/// Only what changed is written, so a run that changes nothing is reads only.
pub async fn evaluate_workspace(store: &dyn Store, ctx: &Ctx) -> Result<EvaluationReport, AppError> {
    ctx.require_admin()?;
    let Some(StoredLadder { ladder, .. }) = store.tier_ladder(&ctx.workspace_id).await? else {
        return Err(AppError::conflict(None, "the workspace has no tier ladder: PUT /api/v1/tiers first"));
    };
    evaluate(store, ctx, &ladder, None).await
}

/// Evaluates one partner right after a win, so that a promotion it earned
/// takes effect at once rather than at the next scheduled run. Without a
/// ladder there is nothing to do.
pub async fn evaluate_partner(store: &dyn Store, ctx: &Ctx, partner: &PartnerId) -> Result<EvaluationReport, AppError> {
    let Some(StoredLadder { ladder, .. }) = store.tier_ladder(&ctx.workspace_id).await? else { return Ok(EvaluationReport::default()) };
    evaluate(store, ctx, &ladder, Some(partner)).await
}

async fn evaluate(store: &dyn Store, ctx: &Ctx, ladder: &TierLadder, only: Option<&PartnerId>) -> Result<EvaluationReport, AppError> {
    let ws = &ctx.workspace_id;
    let now = ctx.now;
    let measures = store.tier_measures(ws, ladder.measure(), tier::window_start(now), now, only).await?;
    let states: HashMap<PartnerId, TierState> = store.tier_states(ws, only).await?.into_iter().map(|s| (s.partner_id.clone(), s)).collect();
    let mut report = EvaluationReport { evaluated: measures.len() as u64, ..Default::default() };
    let mut dirty = Vec::new();
    for m in measures {
        let stored = states.get(&m.partner_id);
        let (since, below) = judged(stored, &m, now);
        let decision = tier::evaluate(ladder, m.tier.as_deref().map(|t| (t, since)), below, m.value, now);
        let to = match decision {
            TierDecision::Keep { at_risk_since } => {
                report.at_risk += u64::from(at_risk_since.is_some());
                let next = TierState {
                    partner_id: m.partner_id.clone(),
                    tier: m.tier.clone(),
                    tier_since: since,
                    below_since: at_risk_since,
                    evaluated_at: now,
                };
                if stored.is_none_or(|s| (&s.tier, s.tier_since, s.below_since) != (&next.tier, next.tier_since, next.below_since)) {
                    dirty.push(next);
                }
                continue;
            }
            TierDecision::Promote { to } => Some(to),
            TierDecision::Demote { to, .. } | TierDecision::Replace { to } => to,
        };
        let reason = tier::reason(ladder, m.tier.as_deref(), &decision, m.value).unwrap_or_default();
        let to = to.map(|p| ladder.tiers()[p].slug.clone());
        match change_tier(store, ctx, ladder, &m, to, reason).await {
            Ok(()) => match decision {
                TierDecision::Promote { .. } => report.promoted += 1,
                TierDecision::Demote { .. } => report.demoted += 1,
                _ => report.reassigned += 1,
            },
            // Another server (or an admin) changed this partner's tier since
            // we read it: theirs stands, and the next run judges it afresh.
            Err(StoreError::Stale) => tracing::info!(partner = %m.partner_id, "tier changed concurrently; left for the next evaluation"),
            Err(e) => return Err(e.into()),
        }
    }
    if !dirty.is_empty() {
        let audit = AuditEntry {
            at: now,
            actor: ctx.actor.audit_name(),
            action: "partner_tier_state.updated".into(),
            entity: "tier_ladder".into(),
            entity_id: ws.to_string(),
            before: None,
            after: Some(json!({"partners": dirty.len(), "at_risk": report.at_risk})),
        };
        store.put_tier_states(ws, &dirty, &audit).await?;
    }
    Ok(report)
}

/// Since when the partner holds its tier and since when it is below, as
/// far as the stored state still describes its current tier.
fn judged(stored: Option<&TierState>, m: &PartnerMeasure, now: Timestamp) -> (Timestamp, Option<Timestamp>) {
    match stored {
        Some(s) if s.tier == m.tier => (s.tier_since, s.below_since),
        // Never judged, or set by hand since: its grace counts from now.
        _ => (now, None),
    }
}

async fn change_tier(
    store: &dyn Store,
    ctx: &Ctx,
    ladder: &TierLadder,
    m: &PartnerMeasure,
    to: Option<String>,
    reason: String,
) -> Result<(), StoreError> {
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: "partner.tier_changed".into(),
        entity: "partner".into(),
        entity_id: m.partner_id.to_string(),
        before: Some(json!({"tier": m.tier})),
        after: Some(json!({"tier": to, "reason": reason})),
    };
    let change =
        TierChange { partner_id: m.partner_id.clone(), from: m.tier.clone(), to, measure: ladder.measure(), value: m.value, reason, audit };
    store.change_partner_tier(&ctx.workspace_id, &change).await
}

/// The scheduler's run: every workspace that has a ladder, as the system.
/// A workspace that fails is logged and does not stop the others.
pub async fn evaluate_all(store: &dyn Store, now: Timestamp) -> Result<EvaluationReport, AppError> {
    let mut total = EvaluationReport::default();
    for ws in store.tier_ladder_workspaces().await? {
        match evaluate_workspace(store, &Ctx::system(ws.clone(), "scheduler", now)).await {
            Ok(r) => total.add(&r),
            Err(e) => tracing::error!(workspace = %ws, error = ?e, "tier evaluation failed"),
        }
    }
    Ok(total)
}

/// How many partners (not archived) hold each tier slug; `None` counts
/// those without a tier. Every staff role reads it.
pub async fn partner_counts(store: &dyn Store, ctx: &Ctx) -> Result<Vec<(Option<String>, i64)>, AppError> {
    ctx.require_workspace_reader()?;
    Ok(store.partner_counts_by_tier(&ctx.workspace_id).await?)
}

/// A partner may read only its own records; others do not exist for it.
async fn visible_partner(store: &dyn Store, ctx: &Ctx, partner: &PartnerId) -> Result<(), AppError> {
    if ctx.partner_scope().is_some_and(|own| own != partner) {
        return Err(AppError::NotFound);
    }
    store.partner(&ctx.workspace_id, partner).await.map(|_| ()).map_err(AppError::from)
}

/// A partner's tier changes, oldest first (admin or that partner).
pub async fn history(store: &dyn Store, ctx: &Ctx, partner: &PartnerId) -> Result<Vec<TierHistoryEntry>, AppError> {
    visible_partner(store, ctx, partner).await?;
    Ok(store.tier_history(&ctx.workspace_id, partner).await?)
}

/// A partner's tier, measure and progress to the next tier, as of now
/// (admin or that partner).
pub async fn progress(store: &dyn Store, ctx: &Ctx, partner: &PartnerId) -> Result<TierProgress, AppError> {
    visible_partner(store, ctx, partner).await?;
    let StoredLadder { ladder, .. } = ladder(store, ctx).await?;
    let now = ctx.now;
    let measures = store.tier_measures(&ctx.workspace_id, ladder.measure(), tier::window_start(now), now, Some(partner)).await?;
    let m = measures.into_iter().next().ok_or(AppError::NotFound)?;
    let stored = store.tier_states(&ctx.workspace_id, Some(partner)).await?;
    let (since, below) = judged(stored.first(), &m, now);
    // Judged live, so that a partner sees its risk before the next scheduled run.
    let at_risk_since = match tier::evaluate(&ladder, m.tier.as_deref().map(|t| (t, since)), below, m.value, now) {
        TierDecision::Keep { at_risk_since } => at_risk_since,
        TierDecision::Demote { below_since, .. } => Some(below_since),
        TierDecision::Promote { .. } | TierDecision::Replace { .. } => None,
    };
    let next = tier::progress(&ladder, m.tier.as_deref(), m.value).map(|(t, left)| (t.clone(), left));
    Ok(TierProgress {
        partner_id: m.partner_id,
        current: m.tier.as_deref().and_then(|t| ladder.tier(t)).cloned(),
        tier: m.tier,
        measure: ladder.measure(),
        value: m.value,
        next,
        at_risk_since,
        demotion_at: at_risk_since.map(|t| t + ladder.grace()),
    })
}
