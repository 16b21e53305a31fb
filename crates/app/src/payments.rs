//! Customer payments on won referrals: what recurring plans pay a share of.
//!
//! Rules: only a won referral takes payments (an admin records them); a
//! payment earns a commission when the partner's plan is recurring and the
//! payment falls within the plan's months from the first payment, at the
//! rate the plan gives the partner's tier (and volume band) now. The hold
//! clock starts at Closed Won or at the first payment, as the plan says,
//! and never before the payment itself: available = max(paid_at, start) +
//! hold days.

use jiff::{SignedDuration, Timestamp};
use partnerloop_domain::Money;
use partnerloop_domain::commission::{self, Commission, CommissionKind, CommissionStatus, Win};
use partnerloop_domain::plan::HoldFrom;
use partnerloop_domain::referral::{ReferralId, ReferralStatus};
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::ledger::{NewPayment, Payment};
use crate::store::{AuditEntry, Store, TimelineEvent};

/// A recorded payment and what it earned.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub payment: Payment,
    pub commission: Option<Commission>,
    /// Why no commission, when none.
    pub note: Option<String>,
}

pub async fn record(
    store: &dyn Store,
    ctx: &Ctx,
    referral_id: &ReferralId,
    amount: Money,
    paid_at: Timestamp,
) -> Result<Recorded, AppError> {
    ctx.require_admin()?;
    let referral = store.referral(&ctx.workspace_id, referral_id).await?;
    if referral.status != ReferralStatus::Won {
        return Err(AppError::conflict(Some("status"), format!("the referral is {}: only a won referral takes payments", referral.status)));
    }
    if paid_at > ctx.now + SignedDuration::from_hours(24) {
        return Err(AppError::invalid("paid_at", "must not be in the future"));
    }
    let payment = Payment {
        id: crate::ids::payment_id(ctx.now),
        referral_id: referral_id.clone(),
        amount,
        paid_at,
        created_at: ctx.now,
        created_by: ctx.actor.audit_name(),
    };
    let earlier = store.referral_payments(&ctx.workspace_id, referral_id).await?;
    let first_paid = earlier.iter().map(|p| p.paid_at).chain([paid_at]).min().unwrap_or(paid_at);
    let partner = store.partner(&ctx.workspace_id, &referral.partner_id).await?;
    let plan = crate::commissions::plan_for(store, ctx, &partner).await?;
    let (commission, note) = match plan.as_ref().and_then(|p| p.recurring.map(|r| (p, r))) {
        None => (None, Some("the partner's plan is not recurring: the won amount earned its commission".to_owned())),
        Some((plan, r)) => {
            let window_end = first_paid.to_zoned(jiff::tz::TimeZone::UTC).checked_add(jiff::Span::new().months(i64::from(r.months)));
            let within = window_end.map(|end| paid_at < end.timestamp()).unwrap_or(false);
            if !within {
                (None, Some(format!("paid after the plan's {} months from the first payment", r.months)))
            } else {
                let won_at = referral.closed_at.unwrap_or(referral.updated_at);
                let nth = crate::commissions::nth_win(store, ctx, plan, &referral.partner_id, won_at, 0).await?;
                let accrual = commission::accrue(plan, &Win { amount, tier: partner.tier.as_deref(), nth_in_period: nth.max(1) })
                    .map_err(|e| AppError::invalid("amount", e.to_string()))?;
                let start = match r.hold_from {
                    HoldFrom::ClosedWon => won_at,
                    HoldFrom::FirstPayment => first_paid,
                };
                let won_seq = store
                    .referral_commissions(&ctx.workspace_id, referral_id)
                    .await?
                    .iter()
                    .filter(|c| c.kind == CommissionKind::Accrual)
                    .map(|c| c.won_seq)
                    .max()
                    .unwrap_or(1);
                let c = Commission {
                    id: crate::ids::commission_id(ctx.now),
                    partner_id: referral.partner_id.clone(),
                    referral_id: referral_id.clone(),
                    plan_id: Some(plan.id.clone()),
                    kind: CommissionKind::Recurring,
                    won_seq,
                    amount: accrual.amount,
                    status: CommissionStatus::Pending,
                    rule: format!("{} (payment of {})", accrual.rule, paid_at.strftime("%Y-%m-%d")),
                    available_at: commission::available_at(paid_at.max(start), plan.hold_days),
                    created_at: ctx.now,
                    updated_at: ctx.now,
                    payout_id: None,
                    adjusts: None,
                    payment_id: Some(payment.id.clone()),
                };
                (Some(c), None)
            }
        }
    };
    let summary = match (&commission, &note) {
        (Some(c), _) => format!("customer payment {amount} recorded: commission {} ({})", c.amount, c.rule),
        (None, Some(n)) => format!("customer payment {amount} recorded: no commission, {n}"),
        (None, None) => format!("customer payment {amount} recorded"),
    };
    let event = TimelineEvent { at: ctx.now, kind: "payment".into(), actor: ctx.actor.audit_name(), summary };
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: "referral.payment_recorded".into(),
        entity: "referral".into(),
        entity_id: referral_id.to_string(),
        before: None,
        after: Some(json!({"payment_id": payment.id.as_str(), "amount": amount.amount_string(), "currency": amount.currency().code(),
                           "paid_at": paid_at.to_string(), "commission_id": commission.as_ref().map(|c| c.id.to_string())})),
    };
    store.record_payment(&ctx.workspace_id, NewPayment { payment: payment.clone(), commission: commission.clone(), event, audit }).await?;
    Ok(Recorded { payment, commission, note })
}

/// The payments of a referral (admin, or its partner).
pub async fn list(store: &dyn Store, ctx: &Ctx, referral_id: &ReferralId) -> Result<Vec<Payment>, AppError> {
    crate::referrals::get(store, ctx, referral_id).await?;
    Ok(store.referral_payments(&ctx.workspace_id, referral_id).await?)
}
