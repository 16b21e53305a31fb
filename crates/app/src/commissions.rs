//! Commissions: accrued when a referral is won, released after the hold,
//! reversed (or, once paid, adjusted) when the win is taken back.
//!
//! Rules: the plan is the partner's own plan, else the workspace default;
//! the tier is the partner's tier on the won date; a win accrues exactly
//! once — the referral's guarded update and the ledger's unique index
//! (referral, win number) make a second `closed_won` a no-op, even from two
//! servers at once. A partner sees only its own commissions.

use jiff::Timestamp;
use partnerloop_domain::commission::{
    self, Commission, CommissionId, CommissionKind, CommissionStatus, Reversal, ReversalError, Win, available_at, reversal_of,
};
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::plan::CommissionPlan;
use partnerloop_domain::referral::Referral;
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::{AppError, StoreError};
use crate::ledger::{Balance, CommissionFilter, LedgerEntry, LedgerWrite, LinearAccrual, LinearBooked};
use crate::store::{AuditEntry, Page, Paged, Store};

/// The plan that pays `partner`: its own, else the workspace default.
pub(crate) async fn plan_for(
    store: &dyn Store,
    ctx: &Ctx,
    partner: &partnerloop_domain::partner::Partner,
) -> Result<Option<CommissionPlan>, AppError> {
    match &partner.commission_plan_id {
        Some(id) => Ok(Some(store.plan(&ctx.workspace_id, id).await?)),
        None => Ok(store.default_plan(&ctx.workspace_id).await?),
    }
}

/// All commissions of one referral, oldest first.
async fn of_referral(store: &dyn Store, ctx: &Ctx, referral: &Referral) -> Result<Vec<Commission>, AppError> {
    Ok(store.referral_commissions(&ctx.workspace_id, &referral.id).await?)
}

/// Which won referral of the partner in the plan's volume period a win at
/// `at` is: the wins already stored in the period plus `this_one` (1 when
/// the win being booked is not stored yet). 1 for plans without bands.
pub(crate) async fn nth_win(
    store: &dyn Store,
    ctx: &Ctx,
    plan: &CommissionPlan,
    partner: &partnerloop_domain::ids::PartnerId,
    at: Timestamp,
    this_one: u64,
) -> Result<u32, AppError> {
    let Some(v) = &plan.volume else { return Ok(1) };
    let before = store.partner_wins_between(&ctx.workspace_id, partner, v.period.start_of(at), at).await?;
    Ok(u32::try_from(before + this_one).unwrap_or(u32::MAX))
}

/// The ledger write for a win of `won` (its amount set), and a timeline
/// line saying what it earned; `None` when no plan applies.
pub(crate) async fn accrual_for_win(store: &dyn Store, ctx: &Ctx, won: &Referral) -> Result<(Option<LedgerWrite>, String), AppError> {
    let partner = store.partner(&ctx.workspace_id, &won.partner_id).await?;
    let Some(plan) = plan_for(store, ctx, &partner).await? else {
        return Ok((None, "no commission plan applies: set a default plan or the partner's plan".into()));
    };
    let amount = won.amount.ok_or_else(|| AppError::invalid("amount", "is required for closed_won"))?;
    if let Some(r) = plan.recurring {
        return Ok((
            None,
            format!("plan '{}' is recurring: each customer payment within {} months earns its commission", plan.name, r.months),
        ));
    }
    let nth_in_period = nth_win(store, ctx, &plan, &won.partner_id, ctx.now, 1).await?;
    let accrual = commission::accrue(&plan, &Win { amount, tier: partner.tier.as_deref(), nth_in_period })
        .map_err(|e| AppError::invalid("amount", e.to_string()))?;
    let won_seq =
        of_referral(store, ctx, won).await?.iter().filter(|c| c.kind == CommissionKind::Accrual).map(|c| c.won_seq).max().unwrap_or(0) + 1;
    let c = Commission {
        id: crate::ids::commission_id(ctx.now),
        partner_id: won.partner_id.clone(),
        referral_id: won.id.clone(),
        plan_id: Some(plan.id.clone()),
        kind: CommissionKind::Accrual,
        won_seq,
        amount: accrual.amount,
        status: CommissionStatus::Pending,
        rule: accrual.rule.clone(),
        available_at: available_at(ctx.now, plan.hold_days),
        created_at: ctx.now,
        updated_at: ctx.now,
        payout_id: None,
        adjusts: None,
        payment_id: None,
    };
    let line = format!("commission {} accrued, payable from {}: {}", c.amount, c.available_at.strftime("%Y-%m-%d"), accrual.rule);
    Ok((Some(LedgerWrite::Book { commission: Box::new(c), reason: format!("referral won: {}", accrual.rule) }), line))
}

/// The ledger writes that take back the commission of a win that no
/// longer stands, and a timeline line for each.
pub(crate) async fn takeback_for_unwin(
    store: &dyn Store,
    ctx: &Ctx,
    referral: &Referral,
    why: &str,
) -> Result<Vec<(LedgerWrite, String)>, AppError> {
    // An adjustment belongs to the same referral as what it corrects, so
    // one read tells which commissions are corrected already.
    let all = of_referral(store, ctx, referral).await?;
    let adjusted: std::collections::HashSet<&CommissionId> = all.iter().filter_map(|c| c.adjusts.as_ref()).collect();
    all.iter()
        .filter(|c| c.kind != CommissionKind::Adjustment && c.status != CommissionStatus::Reversed && !adjusted.contains(&c.id))
        .map(|c| takeback(ctx, c, None, why))
        .collect()
}

fn takeback(ctx: &Ctx, c: &Commission, adjusted_by: Option<&CommissionId>, why: &str) -> Result<(LedgerWrite, String), AppError> {
    match reversal_of(c, adjusted_by).map_err(reversal_error)? {
        Reversal::Reverse => {
            Ok((LedgerWrite::Reverse { id: c.id.clone(), reason: why.to_owned() }, format!("commission {} reversed: {why}", c.amount)))
        }
        Reversal::Adjust { amount } => {
            let adj = Commission {
                id: crate::ids::commission_id(ctx.now),
                kind: CommissionKind::Adjustment,
                amount,
                status: CommissionStatus::Payable,
                rule: format!("correction of paid commission {}: {why}", c.id),
                available_at: ctx.now,
                created_at: ctx.now,
                updated_at: ctx.now,
                payout_id: None,
                adjusts: Some(c.id.clone()),
                ..c.clone()
            };
            let line = format!("commission {} was already paid: adjustment {amount} booked against the next payout ({why})", c.amount);
            Ok((LedgerWrite::Book { commission: Box::new(adj), reason: why.to_owned() }, line))
        }
    }
}

fn reversal_error(e: ReversalError) -> AppError {
    AppError::conflict(Some("status"), e.to_string())
}

/// Takes a commission back by hand (a refund, churn inside the hold).
pub async fn reverse(store: &dyn Store, ctx: &Ctx, id: &CommissionId, reason: String) -> Result<Commission, AppError> {
    ctx.require_admin()?;
    let reason = partnerloop_domain::validation::required_text("reason", &reason, 1000).map_err(|e| AppError::Invalid(vec![e]))?;
    let c = store.commission(&ctx.workspace_id, id).await?;
    let adjusted = store.adjustment_of(&ctx.workspace_id, id).await?;
    let (write, _) = takeback(ctx, &c, adjusted.as_ref(), &reason)?;
    let booked = match &write {
        LedgerWrite::Book { commission, .. } => Some(commission.id.clone()),
        LedgerWrite::Reverse { .. } => None,
    };
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: if booked.is_some() { "commission.adjusted" } else { "commission.reversed" }.into(),
        entity: "commission".into(),
        entity_id: id.to_string(),
        before: Some(json!({"status": c.status.as_str(), "amount": c.amount.amount_string()})),
        after: Some(json!({"reason": reason, "adjustment_id": booked.as_ref().map(|b| b.as_str())})),
    };
    match store.write_ledger(&ctx.workspace_id, vec![write], &audit).await {
        Ok(()) => {}
        Err(StoreError::Stale) => {
            let now = store.commission(&ctx.workspace_id, id).await?;
            return Err(reversal_error(reversal_of(&now, None).err().unwrap_or(ReversalError::AlreadyReversed)));
        }
        Err(StoreError::Conflict { constraint }) if constraint == "commissions_adjusts_uq" => {
            return Err(AppError::conflict(Some("status"), "the commission was corrected meanwhile"));
        }
        Err(e) => return Err(e.into()),
    }
    // The adjustment, when one was booked, is what the caller acts on next.
    Ok(store.commission(&ctx.workspace_id, booked.as_ref().unwrap_or(id)).await?)
}

pub async fn get(store: &dyn Store, ctx: &Ctx, id: &CommissionId) -> Result<(Commission, Vec<LedgerEntry>), AppError> {
    let c = store.commission(&ctx.workspace_id, id).await?;
    if ctx.partner_scope().is_some_and(|own| own != &c.partner_id) {
        return Err(AppError::NotFound);
    }
    let entries = store.commission_entries(&ctx.workspace_id, id, ctx.now).await?;
    Ok((c, entries))
}

pub async fn list(store: &dyn Store, ctx: &Ctx, mut filter: CommissionFilter, page: &Page) -> Result<Paged<Commission>, AppError> {
    if let Some(own) = ctx.partner_scope() {
        if filter.partner_id.as_ref().is_some_and(|p| p != own) {
            return Ok(Paged { items: vec![], next_after: None });
        }
        filter.partner_id = Some(own.clone());
    }
    Ok(store.list_commissions(&ctx.workspace_id, &filter, ctx.now, page).await?)
}

/// A partner's balances per currency (the partner itself, or an admin).
pub async fn balances(store: &dyn Store, ctx: &Ctx, partner: &PartnerId) -> Result<Vec<Balance>, AppError> {
    if ctx.partner_scope().is_some_and(|own| own != partner) {
        return Err(AppError::NotFound);
    }
    store.partner(&ctx.workspace_id, partner).await?;
    Ok(store.partner_balances(&ctx.workspace_id, partner, ctx.now).await?)
}

/// Announces the commissions whose hold has ended since the last run (a
/// commission past its hold is payable on read whether or not this ran);
/// the scheduler runs it, and a payout run calls it first. Returns how many.
pub async fn release_due(store: &dyn Store, ws: Option<&partnerloop_domain::ids::WorkspaceId>, now: Timestamp) -> Result<u64, AppError> {
    Ok(store.release_due_commissions(ws, now).await?)
}

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backfill {
    pub accrued: u64,
    /// Won referrals of partners that no plan pays.
    pub without_plan: u64,
    /// Won referrals whose plan is recurring: they earn per customer payment.
    pub recurring: u64,
}

/// Rows read and booked per backfill transaction.
const BACKFILL_CHUNK: u32 = 5_000;

/// The set-at-once part of a backfill: for every plan whose accrual
/// depends only on the won amount, the store computes and books the
/// commissions of all its partners' unaccrued wins in one statement (the
/// calculation in integers, rate in parts per million, half-even; tested
/// against [`commission::accrue`]). What it leaves (other plans, odd rows)
/// the chunked path books one computed commission at a time.
async fn accrue_linear(store: &dyn Store, ctx: &Ctx) -> Result<LinearBooked, AppError> {
    let mut accrued = LinearBooked::default();
    let mut page = Page { limit: 100, after: None };
    loop {
        let plans = store.list_plans(&ctx.workspace_id, &page).await?;
        for plan in &plans.items {
            let Some(linear) = commission::linear(plan) else { continue };
            let ids = crate::ids::IdSequence::new(CommissionId::PREFIX, ctx.now).next_id();
            let set = LinearAccrual {
                plan: plan.id.clone(),
                is_default: plan.is_default,
                hold_days: plan.hold_days,
                linear,
                id_stem: ids[CommissionId::PREFIX.len() + 1..][..16].to_owned(),
                id_counter: rand::random::<u64>() >> 16,
                currencies: partnerloop_domain::Currency::all().to_vec(),
                reason: "won referral accrued by backfill".into(),
            };
            let audit =
                AuditEntry::of(ctx, "commissions.backfilled", "workspace", ctx.workspace_id.as_str(), json!({"plan": plan.id.as_str()}));
            let set = store.book_linear_commissions(&ctx.workspace_id, &set, &audit).await?;
            accrued.booked += set.booked;
            accrued.every_win |= set.every_win;
        }
        match plans.next_after {
            Some(after) => page.after = Some(after),
            None => return Ok(accrued),
        }
    }
}

/// Accrues the commission of every won referral that never had one
/// (imported history, wins from before a plan existed), each at its won
/// date with the plan that pays its partner now. Streams in chunks, so
/// memory stays flat whatever the count.
pub async fn accrue_missing(store: &dyn Store, ctx: &Ctx) -> Result<Backfill, AppError> {
    ctx.require_admin()?;
    let mut report = Backfill::default();
    let linear = accrue_linear(store, ctx).await?;
    report.accrued += linear.booked;
    if linear.every_win {
        return Ok(report);
    }
    let mut plans: std::collections::HashMap<Option<partnerloop_domain::ids::PlanId>, Option<CommissionPlan>> = Default::default();
    let mut ids = crate::ids::IdSequence::new(CommissionId::PREFIX, ctx.now);
    let mut after: Option<partnerloop_domain::referral::ReferralId> = None;
    loop {
        let (wins, last) = store.won_without_commission(&ctx.workspace_id, after.as_ref(), BACKFILL_CHUNK).await?;
        let Some(last) = last else { return Ok(report) };
        after = Some(last);
        let mut booked = Vec::with_capacity(wins.len());
        for w in &wins {
            if !plans.contains_key(&w.partner_plan) {
                let plan = match &w.partner_plan {
                    Some(id) => Some(store.plan(&ctx.workspace_id, id).await?),
                    None => store.default_plan(&ctx.workspace_id).await?,
                };
                plans.insert(w.partner_plan.clone(), plan);
            }
            let Some(plan) = plans.get(&w.partner_plan).and_then(Option::as_ref) else {
                report.without_plan += 1;
                continue;
            };
            if plan.recurring.is_some() {
                report.recurring += 1;
                continue;
            }
            let accrual = commission::accrue(plan, &Win { amount: w.amount, tier: w.partner_tier.as_deref(), nth_in_period: 1 })
                .map_err(|e| AppError::invalid("amount", format!("referral {}: {e}", w.referral_id)))?;
            booked.push(Commission {
                id: CommissionId::from_string(ids.next_id()),
                partner_id: w.partner_id.clone(),
                referral_id: w.referral_id.clone(),
                plan_id: Some(plan.id.clone()),
                kind: CommissionKind::Accrual,
                won_seq: 1,
                amount: accrual.amount,
                status: CommissionStatus::Pending,
                rule: accrual.rule,
                available_at: available_at(w.won_at, plan.hold_days),
                created_at: ctx.now,
                updated_at: ctx.now,
                payout_id: None,
                adjusts: None,
                payment_id: None,
            });
        }
        if booked.is_empty() {
            continue;
        }
        let audit = AuditEntry::of(
            ctx,
            "commissions.backfilled",
            "workspace",
            ctx.workspace_id.as_str(),
            json!({"accrued": booked.len(), "through_referral": after.as_ref().map(|a| a.as_str())}),
        );
        store.book_commissions(&ctx.workspace_id, &booked, "won referral accrued by backfill", &audit).await?;
        report.accrued += booked.len() as u64;
    }
}
