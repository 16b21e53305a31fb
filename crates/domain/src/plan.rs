//! Commission plans: how a won referral turns into money for the partner.
//!
//! This module holds the plan's definition and its validation; the
//! calculation (accrual, caps, tiers by won date) builds on it. Rates are
//! exact decimals in (0, 1] with at most six decimal places, never floats.

use crate::money::{Currency, Money};
use crate::validation::FieldError;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// A commission rate: a fraction of the won amount, `0.15` for 15 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(Decimal);

impl Rate {
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let text = input.trim();
        if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(FieldError::new(field, format!("'{input}' is not a decimal rate like \"0.15\"")));
        }
        let d: Decimal = text.parse().map_err(|_| FieldError::new(field, format!("'{input}' is not a decimal rate like \"0.15\"")))?;
        if d <= Decimal::ZERO || d > Decimal::ONE {
            return Err(FieldError::new(field, "must be greater than 0 and at most 1 (0.15 is 15 %)"));
        }
        if d.normalize().scale() > 6 {
            return Err(FieldError::new(field, "must have at most 6 decimal places"));
        }
        Ok(Self(d.normalize()))
    }

    pub fn as_decimal(&self) -> Decimal {
        self.0
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The partner-tier slug a tiered rate applies to (`gold`).
pub fn parse_tier_slug(field: &str, input: &str) -> Result<String, FieldError> {
    let s = input.trim().to_lowercase();
    let ok = !s.is_empty() && s.len() <= 40 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok { Ok(s) } else { Err(FieldError::new(field, "must be a tier name of letters, digits, '-' or '_'")) }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanKind {
    /// A rate of the won amount.
    Percent { rate: Rate },
    /// A fixed amount per won referral.
    Flat { amount: Money },
    /// A rate by the partner's tier.
    Tiered { rates: BTreeMap<String, Rate> },
}

impl PlanKind {
    pub fn name(&self) -> &'static str {
        match self {
            PlanKind::Percent { .. } => "percent",
            PlanKind::Flat { .. } => "flat",
            PlanKind::Tiered { .. } => "tiered",
        }
    }

    /// The currency the plan is bound to, if any (a flat fee is).
    pub fn currency(&self) -> Option<Currency> {
        match self {
            PlanKind::Flat { amount } => Some(amount.currency()),
            _ => None,
        }
    }
}

pub const DEFAULT_HOLD_DAYS: u32 = 30;
pub const MAX_HOLD_DAYS: u32 = 730;

/// Checks the parts of a plan that depend on each other: the cap and the
/// minimum agree in currency with each other and with a flat amount, and the
/// minimum does not exceed the cap.
pub fn check_plan_amounts(kind: &PlanKind, cap: Option<&Money>, minimum: Option<&Money>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let (Some(c), Some(k)) = (cap, kind.currency())
        && c.currency() != k
    {
        errors.push(FieldError::new("cap.currency", format!("must be {k}, the currency of the flat amount")));
    }
    if let (Some(c), Some(m)) = (cap, minimum) {
        if c.currency() != m.currency() {
            errors.push(FieldError::new("minimum.currency", "must be the currency of the cap"));
        } else if m.minor() > c.minor() {
            errors.push(FieldError::new("minimum.amount", "must not exceed the cap"));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_fractions_of_one() {
        assert_eq!(Rate::parse("rate", "0.15").unwrap().to_string(), "0.15");
        assert_eq!(Rate::parse("rate", "1").unwrap().to_string(), "1");
        for bad in ["0", "1.01", "-0.1", "15%", "abc", "", "0.0000001"] {
            assert_eq!(Rate::parse("rate", bad).unwrap_err().field, "rate", "{bad}");
        }
    }

    #[test]
    fn a_minimum_above_the_cap_is_refused() {
        let usd = Currency::USD;
        let kind = PlanKind::Percent { rate: Rate::parse("r", "0.1").unwrap() };
        let errs = check_plan_amounts(&kind, Some(&Money::from_minor(100, usd)), Some(&Money::from_minor(200, usd)));
        assert_eq!(errs[0].field, "minimum.amount");
        let eur = Currency::parse("c", "EUR").unwrap();
        let flat = PlanKind::Flat { amount: Money::from_minor(500, usd) };
        let errs = check_plan_amounts(&flat, Some(&Money::from_minor(100, eur)), None);
        assert_eq!(errs[0].field, "cap.currency");
    }

    #[test]
    fn tier_slugs_are_lower_case() {
        assert_eq!(parse_tier_slug("rates", "Gold").unwrap(), "gold");
        assert!(parse_tier_slug("rates", "gold tier").is_err());
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionPlan {
    pub id: crate::ids::PlanId,
    pub name: String,
    pub kind: PlanKind,
    pub cap: Option<Money>,
    pub minimum: Option<Money>,
    pub hold_days: u32,
    pub is_default: bool,
    pub created_at: jiff::Timestamp,
    /// Tiered plans: a rate by how many referrals the partner won in the period.
    pub volume: Option<VolumeBands>,
    /// Subscription businesses: a rate of each customer payment instead of the won amount.
    pub recurring: Option<Recurring>,
}

crate::partner::text_enum!(
    /// The period in which won referrals are counted for a volume band.
    BandPeriod { Month = "month", Quarter = "quarter", Year = "year" }
);

impl BandPeriod {
    /// The first instant (UTC) of the period that holds `at`.
    pub fn start_of(&self, at: jiff::Timestamp) -> jiff::Timestamp {
        let d = at.to_zoned(jiff::tz::TimeZone::UTC).date();
        let first = match self {
            BandPeriod::Month => jiff::civil::date(d.year(), d.month(), 1),
            BandPeriod::Quarter => jiff::civil::date(d.year(), (d.month() - 1) / 3 * 3 + 1, 1),
            BandPeriod::Year => jiff::civil::date(d.year(), 1, 1),
        };
        first.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()).unwrap_or(at)
    }
}

/// One volume band: from the `from`-th won referral of the period on, `rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeBand {
    pub from: u32,
    pub rate: Rate,
}

/// Rates by the partner's count of won referrals in a period. The bands
/// start at the first win and ascend; the band of the N-th win applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeBands {
    pub period: BandPeriod,
    pub bands: Vec<VolumeBand>,
}

impl VolumeBands {
    /// Checks that the bands start at 1 and ascend strictly.
    pub fn new(period: BandPeriod, bands: Vec<VolumeBand>) -> Result<Self, FieldError> {
        if bands.first().is_none_or(|b| b.from != 1) {
            return Err(FieldError::new("bands[0].from", "the first band starts at the first won referral (1)"));
        }
        if let Some(i) = bands.windows(2).position(|w| w[1].from <= w[0].from) {
            return Err(FieldError::new(format!("bands[{}].from", i + 1), "bands must start at ascending win counts"));
        }
        Ok(Self { period, bands })
    }

    /// The rate for the `nth` won referral of the period (1-based).
    pub fn rate_for(&self, nth: u32) -> Rate {
        self.bands.iter().rev().find(|b| b.from <= nth).unwrap_or(&self.bands[0]).rate
    }
}

crate::partner::text_enum!(
    /// When a recurring commission's hold clock starts.
    HoldFrom { ClosedWon = "closed_won", FirstPayment = "first_payment" }
);

/// A recurring plan pays its rate of each recorded customer payment made
/// within `months` of the first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recurring {
    pub months: u32,
    pub hold_from: HoldFrom,
}

pub const MAX_RECURRING_MONTHS: u32 = 120;
