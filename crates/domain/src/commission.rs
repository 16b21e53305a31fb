//! Commissions: what a won referral earns, and the life of that money.
//!
//! Rules written down once:
//! - A commission is computed from the plan in force, the won amount and
//!   the partner's tier on the won date, in exact decimals; the result is
//!   rounded half-even to the currency's minor unit (`Money::from_decimal_half_even`),
//!   then raised to the plan's minimum and lowered to its cap (when they are
//!   in the same currency; otherwise the explanation says they did not apply).
//! - Statuses: `pending` until `available_at` (won + hold days), then
//!   `payable`; `paid` when its payout is marked paid; `reversed` when
//!   taken back before payout. A paid commission is never reversed: a
//!   negative `adjustment` is booked instead, payable at once, and the next
//!   payout nets it out.
//! - A commission sits in at most one payout batch, and a batched one can
//!   only leave it when the batch is cancelled.

use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;

use crate::Money;
use crate::ids::PlanId;
use crate::partner::text_enum;
use crate::plan::{CommissionPlan, PlanKind, Rate};

crate::ids::id_type!(
    /// One commission (or adjustment) in the ledger.
    CommissionId, "com"
);
crate::ids::id_type!(
    /// A payout batch.
    PayoutId, "pay"
);

text_enum!(
    /// Where a commission stands.
    CommissionStatus { Pending = "pending", Payable = "payable", Paid = "paid", Reversed = "reversed" }
);

crate::ids::id_type!(
    /// A customer payment recorded on a won referral (recurring plans).
    PaymentId, "pmt"
);

text_enum!(
    /// An accrual for a won referral, one for a customer payment (recurring
    /// plans), or a correction of a paid one.
    CommissionKind { Accrual = "accrual", Recurring = "recurring", Adjustment = "adjustment" }
);

text_enum!(
    /// A payout batch's life: a draft is exported and then marked paid, or cancelled.
    PayoutStatus { Draft = "draft", Paid = "paid", Cancelled = "cancelled" }
);

text_enum!(
    /// Why the ledger moved: one entry per change of a commission.
    EntryKind {
        Accrued = "accrued",
        Released = "released",
        Reversed = "reversed",
        Adjusted = "adjusted",
        Batched = "batched",
        Unbatched = "unbatched",
        Paid = "paid",
    }
);

/// What the plan makes of one win.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accrual {
    pub amount: Money,
    /// The rule that produced the amount, in words a partner understands.
    pub rule: String,
}

/// The facts of one win (or, for a recurring plan, one customer payment)
/// that a plan may depend on.
#[derive(Debug, Clone)]
pub struct Win<'a> {
    /// The won amount, or the payment.
    pub amount: Money,
    /// The partner's tier on the won date.
    pub tier: Option<&'a str>,
    /// Which won referral of the partner in the plan's volume period this
    /// is (1 for the first); only volume-banded plans look at it.
    pub nth_in_period: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommissionError {
    #[error("the won amount is negative")]
    NegativeWin,
    #[error("the commission is too large to represent")]
    Overflow,
}

/// Applies `plan` to a win. A tiered plan without a rate for the partner's
/// tier (or a partner without a tier) earns nothing, and says so.
pub fn accrue(plan: &CommissionPlan, win: &Win<'_>) -> Result<Accrual, CommissionError> {
    if win.amount.is_negative() {
        return Err(CommissionError::NegativeWin);
    }
    let currency = win.amount.currency();
    let (base, mut rule) = match &plan.kind {
        PlanKind::Percent { rate } => rated(*rate, win.amount, "")?,
        PlanKind::Flat { amount } => (*amount, format!("flat {amount} per won referral")),
        PlanKind::Tiered { rates } => {
            let by_tier = win.tier.and_then(|t| rates.get(t).map(|r| (*r, format!(" ({t} tier)"))));
            let by_volume = plan
                .volume
                .as_ref()
                .map(|v| (v.rate_for(win.nth_in_period), format!(" (won referral no. {} this {})", win.nth_in_period, v.period)));
            // A partner earns the better of its tier rate and its volume band.
            match (by_tier, by_volume) {
                (Some(t), Some(v)) => {
                    let (rate, q) = if v.0 > t.0 { v } else { t };
                    rated(rate, win.amount, &q)?
                }
                (Some((rate, q)), None) | (None, Some((rate, q))) => rated(rate, win.amount, &q)?,
                (None, None) => {
                    let tier = win.tier.unwrap_or("no tier");
                    return Ok(Accrual { amount: Money::zero(currency), rule: format!("plan '{}' has no rate for {tier}", plan.name) });
                }
            }
        }
    };
    let mut amount = base;
    if let Some(min) = plan.minimum {
        if min.currency() != amount.currency() {
            rule.push_str(&format!("; minimum {min} not applied to a {} amount", amount.currency()));
        } else if amount.minor() < min.minor() {
            amount = min;
            rule.push_str(&format!("; raised to the minimum {min}"));
        }
    }
    if let Some(cap) = plan.cap {
        if cap.currency() != amount.currency() {
            rule.push_str(&format!("; cap {cap} not applied to a {} amount", amount.currency()));
        } else if amount.minor() > cap.minor() {
            amount = cap;
            rule.push_str(&format!("; capped at {cap}"));
        }
    }
    Ok(Accrual { amount, rule: format!("plan '{}': {rule}", plan.name) })
}

fn rated(rate: Rate, won: Money, qualifier: &str) -> Result<(Money, String), CommissionError> {
    let exact = won.to_decimal().checked_mul(rate.as_decimal()).ok_or(CommissionError::Overflow)?;
    let amount = Money::from_decimal_half_even(exact, won.currency()).map_err(|_| CommissionError::Overflow)?;
    let percent = (rate.as_decimal() * Decimal::ONE_HUNDRED).normalize();
    Ok((amount, format!("{percent} %{qualifier} of {won} = {amount}")))
}

/// A plan whose accrual of a win depends only on the won amount, by one
/// rate in parts per million (every [`Rate`] has at most six decimal
/// places) or one flat amount, then the minimum and the cap: what a
/// database can compute exactly in integers for a whole set of wins at
/// once. [`accrue`] stays the definition; a store that computes a set from
/// this view is tested against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linear {
    pub rate: LinearRate,
    /// `plan 'NAME': ` — the start of every rule.
    pub rule_prefix: String,
    pub minimum: Option<Money>,
    pub cap: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinearRate {
    /// `amount = round_half_even(won_minor × ppm / 1,000,000)` in the won
    /// currency; the rule reads `{percent} % of {won} = {amount}`.
    Percent { ppm: i64, percent: String },
    /// The same accrual for every win, whatever its amount or currency.
    Flat(Accrual),
}

/// The linear view of `plan`, or `None` when its accrual depends on more
/// than the won amount (tiers, volume bands) or on customer payments.
pub fn linear(plan: &CommissionPlan) -> Option<Linear> {
    if plan.recurring.is_some() || plan.volume.is_some() {
        return None;
    }
    let rate = match &plan.kind {
        PlanKind::Percent { rate } => {
            let ppm = rate.as_decimal().checked_mul(Decimal::from(1_000_000))?;
            if ppm.fract() != Decimal::ZERO {
                return None;
            }
            let percent = (rate.as_decimal() * Decimal::ONE_HUNDRED).normalize();
            LinearRate::Percent { ppm: i64::try_from(ppm).ok()?, percent: percent.to_string() }
        }
        PlanKind::Flat { amount } => {
            LinearRate::Flat(accrue(plan, &Win { amount: Money::zero(amount.currency()), tier: None, nth_in_period: 1 }).ok()?)
        }
        PlanKind::Tiered { .. } => return None,
    };
    Some(Linear { rate, rule_prefix: format!("plan '{}': ", plan.name), minimum: plan.minimum, cap: plan.cap })
}

/// When an accrual becomes payable: the win plus the plan's hold days.
pub fn available_at(won_at: Timestamp, hold_days: u32) -> Timestamp {
    won_at + SignedDuration::from_hours(24 * i64::from(hold_days))
}

/// A commission as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commission {
    pub id: CommissionId,
    pub partner_id: crate::ids::PartnerId,
    pub referral_id: crate::referral::ReferralId,
    pub plan_id: Option<PlanId>,
    pub kind: CommissionKind,
    /// Which win of the referral this accrues (1 for the first; a referral
    /// won again after a reversal accrues again).
    pub won_seq: u32,
    pub amount: Money,
    pub status: CommissionStatus,
    pub rule: String,
    pub available_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub payout_id: Option<PayoutId>,
    /// For an adjustment: the paid commission it corrects.
    pub adjusts: Option<CommissionId>,
    /// For a recurring commission: the customer payment it is a share of.
    pub payment_id: Option<PaymentId>,
}

impl Commission {
    /// The status as of `now`: a pending commission past its hold is
    /// payable even before the scheduled release has written it.
    pub fn status_at(&self, now: Timestamp) -> CommissionStatus {
        match self.status {
            CommissionStatus::Pending if self.available_at <= now => CommissionStatus::Payable,
            s => s,
        }
    }
}

/// How a reversal is booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reversal {
    /// Not yet paid: the commission itself becomes `reversed`.
    Reverse,
    /// Already paid: a negative adjustment of the same amount is booked.
    Adjust { amount: Money },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReversalError {
    #[error("the commission is already reversed")]
    AlreadyReversed,
    #[error("the commission is already corrected by adjustment {0}")]
    AlreadyAdjusted(CommissionId),
    #[error("an adjustment cannot be reversed")]
    IsAdjustment,
    #[error("the commission is in draft payout {0}: cancel that payout first")]
    InDraftPayout(PayoutId),
}

/// Decides how to take back `c`. `adjusted_by` is the adjustment that
/// already corrects it, if any.
pub fn reversal_of(c: &Commission, adjusted_by: Option<&CommissionId>) -> Result<Reversal, ReversalError> {
    if c.kind == CommissionKind::Adjustment {
        return Err(ReversalError::IsAdjustment);
    }
    match c.status {
        CommissionStatus::Reversed => Err(ReversalError::AlreadyReversed),
        CommissionStatus::Paid => match adjusted_by {
            Some(id) => Err(ReversalError::AlreadyAdjusted(id.clone())),
            None => Ok(Reversal::Adjust { amount: c.amount.checked_neg().map_err(|_| ReversalError::IsAdjustment)? }),
        },
        CommissionStatus::Pending | CommissionStatus::Payable => match &c.payout_id {
            Some(p) => Err(ReversalError::InDraftPayout(p.clone())),
            None => Ok(Reversal::Reverse),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;
    use std::collections::BTreeMap;

    fn plan(kind: PlanKind, cap: Option<i64>, minimum: Option<i64>) -> CommissionPlan {
        CommissionPlan {
            id: PlanId::from_string("pln_1"),
            name: "Standard".into(),
            kind,
            cap: cap.map(|c| Money::from_minor(c, Currency::USD)),
            minimum: minimum.map(|m| Money::from_minor(m, Currency::USD)),
            hold_days: 30,
            is_default: true,
            created_at: Timestamp::UNIX_EPOCH,
            volume: None,
            recurring: None,
        }
    }

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::USD)
    }

    fn pct(r: &str) -> PlanKind {
        PlanKind::Percent { rate: Rate::parse("rate", r).unwrap() }
    }

    #[test]
    fn a_percent_plan_rounds_half_even_to_the_cent() {
        // 15 % of 100.10 = 15.015 → 15.02 (the 1 before 5 is odd: round up)
        let a = accrue(&plan(pct("0.15"), None, None), &Win { amount: usd(10_010), tier: None, nth_in_period: 1 }).unwrap();
        assert_eq!(a.amount, usd(1_502));
        // 15 % of 100.30 = 15.045 → 15.04 (4 is even: stays)
        let a = accrue(&plan(pct("0.15"), None, None), &Win { amount: usd(10_030), tier: None, nth_in_period: 1 }).unwrap();
        assert_eq!(a.amount, usd(1_504));
        assert_eq!(a.rule, "plan 'Standard': 15 % of 100.30 USD = 15.04 USD");
    }

    #[test]
    fn cap_and_minimum_bound_the_amount_and_are_explained() {
        let a = accrue(&plan(pct("0.2"), Some(50_000), None), &Win { amount: usd(1_000_000), tier: None, nth_in_period: 1 }).unwrap();
        assert_eq!(a.amount, usd(50_000));
        assert!(a.rule.ends_with("; capped at 500.00 USD"), "{}", a.rule);
        let a = accrue(&plan(pct("0.01"), None, Some(5_000)), &Win { amount: usd(100_000), tier: None, nth_in_period: 1 }).unwrap();
        assert_eq!(a.amount, usd(5_000));
        assert!(a.rule.contains("raised to the minimum 50.00 USD"));
        let eur = Money::from_minor(1_000_000, Currency::parse("c", "EUR").unwrap());
        let a = accrue(&plan(pct("0.2"), Some(50_000), None), &Win { amount: eur, tier: None, nth_in_period: 1 }).unwrap();
        assert_eq!(a.amount.minor(), 200_000);
        assert!(a.rule.contains("cap 500.00 USD not applied to a EUR amount"));
    }

    #[test]
    fn a_tiered_plan_pays_the_rate_of_the_partners_tier() {
        let rates: BTreeMap<String, Rate> =
            [("bronze", "0.1"), ("gold", "0.2")].into_iter().map(|(t, r)| (t.to_owned(), Rate::parse("r", r).unwrap())).collect();
        let p = plan(PlanKind::Tiered { rates }, None, None);
        assert_eq!(accrue(&p, &Win { amount: usd(100_000), tier: Some("gold"), nth_in_period: 1 }).unwrap().amount, usd(20_000));
        assert_eq!(accrue(&p, &Win { amount: usd(100_000), tier: Some("bronze"), nth_in_period: 1 }).unwrap().amount, usd(10_000));
        let none = accrue(&p, &Win { amount: usd(100_000), tier: None, nth_in_period: 1 }).unwrap();
        assert_eq!(none.amount, usd(0));
        assert!(none.rule.contains("no rate for no tier"));
    }

    #[test]
    fn volume_bands_pay_the_rate_of_the_nth_win_and_the_better_of_tier_and_band() {
        use crate::plan::{BandPeriod, VolumeBand, VolumeBands};
        let r = |x: &str| Rate::parse("r", x).unwrap();
        let bands =
            VolumeBands::new(BandPeriod::Quarter, vec![VolumeBand { from: 1, rate: r("0.1") }, VolumeBand { from: 4, rate: r("0.15") }])
                .unwrap();
        let mut p = plan(PlanKind::Tiered { rates: [("gold".to_owned(), r("0.12"))].into_iter().collect() }, None, None);
        p.volume = Some(bands);
        let win = |nth, tier| accrue(&p, &Win { amount: usd(100_000), tier, nth_in_period: nth }).unwrap();
        assert_eq!(win(3, None).amount, usd(10_000));
        assert_eq!(win(4, None).amount, usd(15_000));
        assert!(win(4, None).rule.contains("won referral no. 4 this quarter"));
        assert_eq!(win(3, Some("gold")).amount, usd(12_000), "the gold rate beats the first band");
        assert_eq!(win(9, Some("gold")).amount, usd(15_000), "the band beats gold from the 4th win");
        assert!(VolumeBands::new(BandPeriod::Month, vec![VolumeBand { from: 2, rate: r("0.1") }]).is_err());
        assert!(
            VolumeBands::new(BandPeriod::Month, vec![VolumeBand { from: 1, rate: r("0.1") }, VolumeBand { from: 1, rate: r("0.2") }])
                .is_err()
        );
        let march = "2026-03-15T10:00:00Z".parse().unwrap();
        assert_eq!(BandPeriod::Quarter.start_of(march).to_string(), "2026-01-01T00:00:00Z");
        assert_eq!(BandPeriod::Month.start_of(march).to_string(), "2026-03-01T00:00:00Z");
    }

    #[test]
    fn a_flat_plan_ignores_the_amount() {
        let a = accrue(&plan(PlanKind::Flat { amount: usd(25_000) }, None, None), &Win { amount: usd(1), tier: None, nth_in_period: 1 })
            .unwrap();
        assert_eq!(a.amount, usd(25_000));
    }

    #[test]
    fn only_plans_that_depend_on_the_won_amount_alone_are_linear() {
        let l = linear(&plan(pct("0.125"), Some(30_000), Some(500))).unwrap();
        assert_eq!(l.rate, LinearRate::Percent { ppm: 125_000, percent: "12.5".into() });
        assert_eq!((l.rule_prefix.as_str(), l.cap, l.minimum), ("plan 'Standard': ", Some(usd(30_000)), Some(usd(500))));
        let l = linear(&plan(pct("0.000001"), None, None)).unwrap();
        assert_eq!(l.rate, LinearRate::Percent { ppm: 1, percent: "0.0001".into() });
        let flat = plan(PlanKind::Flat { amount: usd(25_000) }, Some(20_000), None);
        let LinearRate::Flat(a) = linear(&flat).unwrap().rate else { panic!("flat") };
        assert_eq!(a, accrue(&flat, &Win { amount: usd(99), tier: None, nth_in_period: 1 }).unwrap());
        assert_eq!(a.amount, usd(20_000));
        let tiered = plan(PlanKind::Tiered { rates: BTreeMap::new() }, None, None);
        assert_eq!(linear(&tiered), None);
        let mut recurring = plan(pct("0.1"), None, None);
        recurring.recurring = Some(crate::plan::Recurring { months: 12, hold_from: crate::plan::HoldFrom::ClosedWon });
        assert_eq!(linear(&recurring), None);
    }

    fn commission(status: CommissionStatus, payout: Option<&str>) -> Commission {
        Commission {
            id: CommissionId::from_string("com_1"),
            partner_id: crate::ids::PartnerId::from_string("prt_1"),
            referral_id: crate::referral::ReferralId::from_string("ref_1"),
            plan_id: None,
            kind: CommissionKind::Accrual,
            won_seq: 1,
            amount: usd(1_000),
            status,
            rule: String::new(),
            available_at: Timestamp::UNIX_EPOCH,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            payout_id: payout.map(PayoutId::from_string),
            adjusts: None,
            payment_id: None,
        }
    }

    #[test]
    fn reversal_before_payout_reverses_and_after_payout_adjusts() {
        assert_eq!(reversal_of(&commission(CommissionStatus::Payable, None), None), Ok(Reversal::Reverse));
        assert_eq!(reversal_of(&commission(CommissionStatus::Paid, Some("pay_1")), None), Ok(Reversal::Adjust { amount: usd(-1_000) }));
        assert!(matches!(
            reversal_of(&commission(CommissionStatus::Paid, Some("pay_1")), Some(&CommissionId::from_string("com_2"))),
            Err(ReversalError::AlreadyAdjusted(_))
        ));
        assert!(matches!(reversal_of(&commission(CommissionStatus::Payable, Some("pay_1")), None), Err(ReversalError::InDraftPayout(_))));
        assert_eq!(reversal_of(&commission(CommissionStatus::Reversed, None), None), Err(ReversalError::AlreadyReversed));
    }

    #[test]
    fn a_pending_commission_past_its_hold_reads_as_payable() {
        let c = commission(CommissionStatus::Pending, None);
        assert_eq!(c.status_at(Timestamp::UNIX_EPOCH), CommissionStatus::Payable);
        assert_eq!(c.status_at(Timestamp::UNIX_EPOCH - SignedDuration::from_secs(1)), CommissionStatus::Pending);
    }
}
