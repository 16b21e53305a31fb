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
}
