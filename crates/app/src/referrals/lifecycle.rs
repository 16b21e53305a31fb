//! A referral after registration: review (approve, reject), disputes,
//! protection extensions, pipeline stages, expiry.

use jiff::{SignedDuration, Timestamp};
use partnerloop_domain::Money;
use partnerloop_domain::account::{Account, AccountStatus};
use partnerloop_domain::deal::{Deal, DealSource, Stage};
use partnerloop_domain::referral::{Decision, DisputeStatus, Outcome, Reason, Referral, ReferralId, ReferralStatus};
use partnerloop_domain::rules::RuleId;

use super::register::protection;
use super::{audit, event, get};
use crate::ctx::{Actor, Ctx};
use crate::error::{AppError, StoreError};
use crate::ids;
use crate::store::{ReferralChange, Store};

fn change(before: &Referral, after: Referral, ctx: &Ctx, action: &str) -> ReferralChange {
    ReferralChange {
        before_status: before.status,
        before_updated_at: before.updated_at,
        audit: audit(ctx, action, Some(before), &after),
        after,
        claim: false,
        release: false,
        deal_insert: None,
        deal_update: None,
        customer_account: None,
        events: Vec::new(),
        ledger: Vec::new(),
    }
}

/// Adds the person's words (a note, a reason, a message) to the audit
/// row's after-state, where notifications read them.
fn with_note(c: &mut ReferralChange, note: &str) {
    if let Some(serde_json::Value::Object(m)) = c.audit.after.as_mut() {
        m.insert("note".into(), serde_json::Value::String(note.to_owned()));
    }
}

fn claim_conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict { constraint } if constraint == "protection_claims_key_uq" => {
            AppError::conflict(None, "another partner's registration of this account is active: this one cannot hold protection now")
        }
        other => other.into(),
    }
}

fn state_conflict(r: &Referral, what: &str) -> AppError {
    AppError::conflict(Some("status"), format!("the referral is {}: {what}", r.status))
}

/// Approval by a person: the referral gets protection and a native deal.
async fn grant(
    store: &dyn Store,
    ctx: &Ctx,
    before: Referral,
    note: Option<String>,
    dispute: Option<DisputeStatus>,
) -> Result<Referral, AppError> {
    let rules = store.rules(&ctx.workspace_id).await?;
    let mut after = before.clone();
    let mut reasons = before.decision.reasons.clone();
    if let Some(n) = &note {
        reasons.push(Reason {
            rule: RuleId::NoConflict,
            detail: format!("approved by a partner manager: {n}"),
            conflicting_id: None,
            score: None,
            until: None,
        });
    }
    after.status = ReferralStatus::Approved;
    after.decision = Decision { outcome: Outcome::Approved, reasons, decided_at: ctx.now, decided_by: ctx.actor.audit_name() };
    after.protection = Some(protection(ctx.now, rules.protection_days));
    after.dispute = dispute.or(before.dispute);
    after.updated_at = ctx.now;
    let deal = Deal {
        id: ids::deal_id(ctx.now),
        name: after.company_name.clone(),
        company_name: after.company_name.clone(),
        company_domain: Some(after.company_domain.clone()),
        stage: Stage::New,
        amount: after.estimated_value.unwrap_or(Money::zero(partnerloop_domain::Currency::USD)),
        source: DealSource::Partner,
        owner_email: None,
        created_at: ctx.now,
        closed_at: None,
        updated_at: ctx.now,
    };
    after.stage = Some(Stage::New);
    after.deal_id = Some(deal.id.clone());
    let mut c = change(&before, after.clone(), ctx, "referral.approved");
    if let Some(n) = &note {
        with_note(&mut c, n);
    }
    c.claim = true;
    c.deal_insert = Some(deal);
    c.events.push(event(ctx, "approved", note.map_or("approved".to_owned(), |n| format!("approved: {n}"))));
    store.change_referral(&ctx.workspace_id, c).await.map_err(claim_conflict)?;
    Ok(after)
}

pub async fn approve(store: &dyn Store, ctx: &Ctx, id: &ReferralId, note: Option<String>) -> Result<Referral, AppError> {
    ctx.require_admin()?;
    let before = get(store, ctx, id).await?;
    if before.status != ReferralStatus::PendingReview {
        return Err(state_conflict(&before, "only a referral pending review can be approved"));
    }
    grant(store, ctx, before, note, None).await
}

pub async fn reject(store: &dyn Store, ctx: &Ctx, id: &ReferralId, reason: String) -> Result<Referral, AppError> {
    ctx.require_admin()?;
    let before = get(store, ctx, id).await?;
    if before.status != ReferralStatus::PendingReview {
        return Err(state_conflict(&before, "only a referral pending review can be rejected"));
    }
    let mut after = before.clone();
    after.status = ReferralStatus::Rejected;
    let mut reasons = before.decision.reasons.clone();
    reasons.push(Reason {
        rule: RuleId::NoConflict,
        detail: format!("rejected by a partner manager: {reason}"),
        conflicting_id: None,
        score: None,
        until: None,
    });
    after.decision = Decision { outcome: Outcome::Rejected, reasons, decided_at: ctx.now, decided_by: ctx.actor.audit_name() };
    after.updated_at = ctx.now;
    let mut c = change(&before, after.clone(), ctx, "referral.rejected");
    c.events.push(event(ctx, "rejected", format!("rejected: {reason}")));
    store.change_referral(&ctx.workspace_id, c).await?;
    Ok(after)
}

pub async fn extend(store: &dyn Store, ctx: &Ctx, id: &ReferralId, days: u32, reason: String) -> Result<Referral, AppError> {
    ctx.require_admin()?;
    if !(1..=365).contains(&days) {
        return Err(AppError::invalid("days", "must be from 1 to 365"));
    }
    let before = get(store, ctx, id).await?;
    let Some(p) = before.protection.filter(|p| before.status == ReferralStatus::Approved && p.expires_at > ctx.now) else {
        return Err(state_conflict(&before, "only an active protection can be extended"));
    };
    let mut after = before.clone();
    after.protection = Some(partnerloop_domain::referral::Protection {
        starts_at: p.starts_at,
        expires_at: p.expires_at + SignedDuration::from_hours(24 * i64::from(days)),
    });
    after.updated_at = ctx.now;
    let until = after.protection.map(|p| p.expires_at.strftime("%Y-%m-%d").to_string()).unwrap_or_default();
    let mut c = change(&before, after.clone(), ctx, "referral.extended");
    with_note(&mut c, &reason);
    c.events.push(event(ctx, "extended", format!("protection extended by {days} days to {until}: {reason}")));
    store.change_referral(&ctx.workspace_id, c).await?;
    Ok(after)
}

/// Moves the referral's deal through the native pipeline (the CRM
/// connectors drive the same transition). `closed_won` needs the amount.
pub async fn change_stage(
    store: &dyn Store,
    ctx: &Ctx,
    id: &ReferralId,
    stage: Stage,
    amount: Option<Money>,
) -> Result<Referral, AppError> {
    ctx.require_admin()?;
    let before = get(store, ctx, id).await?;
    let reopening = matches!(before.status, ReferralStatus::Won | ReferralStatus::Lost);
    if before.status != ReferralStatus::Approved && !reopening {
        return Err(state_conflict(&before, "only an approved referral moves through the pipeline"));
    }
    if stage == Stage::ClosedWon && amount.is_none() {
        return Err(AppError::invalid("amount", "is required for closed_won"));
    }
    if before.stage == Some(stage) && amount.is_none_or(|a| Some(a) == before.amount) {
        return Ok(before);
    }
    let mut after = before.clone();
    after.stage = Some(stage);
    after.updated_at = ctx.now;
    let mut c = change(&before, after.clone(), ctx, "referral.stage_changed");
    match stage {
        Stage::ClosedWon => {
            after.status = ReferralStatus::Won;
            after.amount = amount;
            after.closed_at = Some(ctx.now);
            c.release = !reopening;
            c.customer_account = Some(Account {
                id: ids::account_id(ctx.now),
                name: after.company_name.clone(),
                domain: after.company_domain.clone(),
                status: AccountStatus::Customer,
                owner_email: None,
                created_at: ctx.now,
                updated_at: ctx.now,
            });
            c.events.push(event(ctx, "won", format!("closed won: {}", amount.map(|a| a.to_string()).unwrap_or_default())));
        }
        Stage::ClosedLost => {
            after.status = ReferralStatus::Lost;
            after.closed_at = Some(ctx.now);
            if let Some(a) = amount {
                after.amount = Some(a);
            }
            c.release = !reopening;
            c.events.push(event(ctx, "lost", "closed lost"));
        }
        open => {
            if reopening {
                if before.protection.is_none_or(|p| p.expires_at <= ctx.now) {
                    return Err(state_conflict(&before, "its protection has ended, so it cannot be reopened"));
                }
                after.status = ReferralStatus::Approved;
                after.closed_at = None;
                after.amount = None;
                c.claim = before.status != ReferralStatus::Approved;
            }
            c.events.push(event(ctx, "stage_changed", format!("stage {} → {}", before.stage.map_or("none", |s| s.as_str()), open)));
        }
    }
    if let Some(deal_id) = &after.deal_id {
        let mut deal = store.deal(&ctx.workspace_id, deal_id).await?;
        deal.stage = stage;
        if let Some(a) = after.amount {
            deal.amount = a;
        }
        deal.closed_at = after.closed_at;
        deal.updated_at = ctx.now;
        c.deal_update = Some(deal);
    }
    // The money follows the deal: a win accrues, a win taken back (or
    // re-won at another amount) takes its commission back first.
    if before.status == ReferralStatus::Won {
        let why = match stage {
            Stage::ClosedWon => "the won amount was corrected".to_owned(),
            other => format!("the deal moved from closed_won to {other}"),
        };
        for (write, line) in crate::commissions::takeback_for_unwin(store, ctx, &before, &why).await? {
            c.ledger.push(write);
            c.events.push(event(ctx, "commission", line));
        }
    }
    if stage == Stage::ClosedWon {
        let (write, line) = crate::commissions::accrual_for_win(store, ctx, &after).await?;
        c.ledger.extend(write);
        c.events.push(event(ctx, "commission", line));
    }
    c.after = after.clone();
    c.audit = audit(ctx, "referral.stage_changed", Some(&before), &after);
    match store.change_referral(&ctx.workspace_id, c).await {
        Ok(()) => {
            if stage == Stage::ClosedWon {
                // A promotion the win earns applies at once; the stage change
                // stands even if this fails (the scheduled run retries it).
                if let Err(e) = crate::tiers::evaluate_partner(store, ctx, &after.partner_id).await {
                    tracing::warn!(error = ?e, partner = %after.partner_id, "tier evaluation after a win failed");
                }
            }
            Ok(after)
        }
        // Another request moved it first (two `closed_won` at once): if it
        // now stands where this one wanted it, that is this one's answer too.
        Err(StoreError::Stale | StoreError::Conflict { .. }) if stale_retry_allowed(store, ctx, id, stage, amount).await? => {
            get(store, ctx, id).await
        }
        Err(e) => Err(claim_conflict(e)),
    }
}

/// Whether the referral, re-read after a lost race, is already at `stage`
/// (with `amount`, when given).
async fn stale_retry_allowed(store: &dyn Store, ctx: &Ctx, id: &ReferralId, stage: Stage, amount: Option<Money>) -> Result<bool, AppError> {
    let now = get(store, ctx, id).await?;
    Ok(now.stage == Some(stage) && amount.is_none_or(|a| Some(a) == now.amount))
}

/// A reply by mail from the partner (or a note by anyone who may see the
/// referral): it joins the timeline and notifies partner managers and the
/// deal owner. Replies never change the referral's state.
pub async fn reply(store: &dyn Store, ctx: &Ctx, id: &ReferralId, text: String) -> Result<Referral, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AppError::invalid("text", "must not be empty"));
    }
    let text: String = text.chars().take(10_000).collect();
    let before = get(store, ctx, id).await?;
    let mut after = before.clone();
    after.updated_at = ctx.now;
    let mut c = change(&before, after.clone(), ctx, "referral.replied");
    with_note(&mut c, &text);
    c.events.push(event(ctx, "replied", text));
    store.change_referral(&ctx.workspace_id, c).await?;
    Ok(after)
}

/// A partner (or an admin for it) disputes a rejection.
pub async fn dispute(store: &dyn Store, ctx: &Ctx, id: &ReferralId, message: String) -> Result<Referral, AppError> {
    let before = get(store, ctx, id).await?;
    if before.status != ReferralStatus::Rejected || before.dispute.is_some() {
        return Err(state_conflict(&before, "only a rejection not yet disputed can be disputed"));
    }
    let mut after = before.clone();
    after.dispute = Some(DisputeStatus::Open);
    after.updated_at = ctx.now;
    let mut c = change(&before, after.clone(), ctx, "referral.disputed");
    with_note(&mut c, &message);
    c.events.push(event(ctx, "disputed", format!("disputed: {message}")));
    store.change_referral(&ctx.workspace_id, c).await?;
    Ok(after)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeResolution {
    /// The rejection stands.
    Upheld,
    /// The rejection is reversed: the referral is approved.
    Overturned,
}

pub async fn resolve_dispute(
    store: &dyn Store,
    ctx: &Ctx,
    id: &ReferralId,
    resolution: DisputeResolution,
    note: String,
) -> Result<Referral, AppError> {
    ctx.require_admin()?;
    let before = get(store, ctx, id).await?;
    if before.dispute != Some(DisputeStatus::Open) {
        return Err(AppError::conflict(Some("dispute"), "the referral has no open dispute"));
    }
    match resolution {
        DisputeResolution::Overturned => {
            grant(store, ctx, before, Some(format!("dispute upheld for the partner: {note}")), Some(DisputeStatus::Overturned)).await
        }
        DisputeResolution::Upheld => {
            let mut after = before.clone();
            after.dispute = Some(DisputeStatus::Upheld);
            after.updated_at = ctx.now;
            let mut c = change(&before, after.clone(), ctx, "referral.dispute_resolved");
            with_note(&mut c, &note);
            c.events.push(event(ctx, "dispute_resolved", format!("dispute resolved, rejection stands: {note}")));
            store.change_referral(&ctx.workspace_id, c).await?;
            Ok(after)
        }
    }
}

/// Expires approved referrals whose protection has lapsed without a close,
/// freeing their accounts. Returns how many expired. Run by the scheduler
/// (and directly by tests).
pub async fn expire_lapsed(store: &dyn Store, now: Timestamp) -> Result<usize, AppError> {
    let mut expired = 0;
    loop {
        let batch = store.lapsed_referrals(now, 200).await?;
        if batch.is_empty() {
            return Ok(expired);
        }
        let before_batch = expired;
        for (ws, before) in batch {
            let ctx = Ctx::new(ws.clone(), Actor::System { name: "scheduler" }, now);
            let mut after = before.clone();
            after.status = ReferralStatus::Expired;
            after.updated_at = ctx.now;
            let mut c = change(&before, after, &ctx, "referral.expired");
            c.release = true;
            c.events.push(event(&ctx, "expired", "protection window ended without a close; the account is free again"));
            match store.change_referral(&ws, c).await {
                Ok(()) => expired += 1,
                Err(StoreError::Stale) => {} // changed meanwhile: the next run sees its new state
                Err(e) => return Err(e.into()),
            }
        }
        if expired == before_batch {
            return Ok(expired); // every one changed under us: leave them to the next run
        }
    }
}
