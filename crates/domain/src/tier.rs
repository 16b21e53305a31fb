//! Partner tiers: a workspace's ladder (Bronze, Silver, Gold) and the rules
//! that move a partner up and down it.
//!
//! Rules written down once:
//! - A ladder has one measure for all of its tiers: `won_count` (referrals
//!   won in the trailing 12 months) or `won_revenue` (the sum of their won
//!   amounts in the ladder's one currency; wins in other currencies do not
//!   count). A measure value is a count or minor units — never a float.
//! - Tiers are listed lowest first; thresholds strictly ascend; the lowest
//!   may be 0 (every partner has at least that tier).
//! - Promotion is immediate, to the highest tier whose threshold is met.
//! - Demotion happens only once the partner has been below its tier's
//!   threshold continuously for the requalification grace period, counted
//!   from when it fell below or from when it got the tier, whichever is
//!   later (a tier just given is never taken at once). It then goes to the
//!   highest tier it meets, possibly none.
//! - A tier that is not on the ladder (removed, or set by hand) is replaced
//!   at once by the tier the partner meets: it has no threshold to keep.

use jiff::{SignedDuration, Timestamp};

use crate::money::{Currency, Money};
use crate::plan::parse_tier_slug;
use crate::validation::{FieldError, required_text};

/// The trailing window of the measure.
pub const TRAILING_DAYS: i64 = 365;
pub const DEFAULT_GRACE_DAYS: u32 = 90;
pub const MAX_GRACE_DAYS: u32 = 730;
pub const MAX_TIERS: usize = 20;
const MAX_BENEFITS: usize = 2000;

/// What a ladder measures over the trailing 12 months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    WonCount,
    /// Won amounts in this currency only.
    WonRevenue(Currency),
}

impl Measure {
    pub fn name(&self) -> &'static str {
        match self {
            Measure::WonCount => "won_count",
            Measure::WonRevenue(_) => "won_revenue",
        }
    }

    pub fn currency(&self) -> Option<Currency> {
        match self {
            Measure::WonCount => None,
            Measure::WonRevenue(c) => Some(*c),
        }
    }

    /// Rebuilds a measure from its name and currency (as stored).
    pub fn parse(field: &str, name: &str, currency: Option<&str>) -> Result<Self, FieldError> {
        match (name.trim(), currency) {
            ("won_count", _) => Ok(Measure::WonCount),
            ("won_revenue", Some(c)) => Currency::parse("currency", c).map(Measure::WonRevenue),
            ("won_revenue", None) => Err(FieldError::new("currency", "is required for measure won_revenue")),
            (other, _) => Err(FieldError::new(field, format!("'{other}' is not one of: won_count, won_revenue"))),
        }
    }

    /// A value as money, for a revenue measure.
    pub fn money(&self, value: i64) -> Option<Money> {
        self.currency().map(|c| Money::from_minor(value, c))
    }

    /// A value in words: `12` won referrals, or `52,000.00 USD`.
    pub fn describe(&self, value: i64) -> String {
        match self.money(value) {
            None => value.to_string(),
            Some(m) => format!("{} {}", group_thousands(&m.amount_string()), m.currency()),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Measure::WonCount => "won referrals",
            Measure::WonRevenue(_) => "won revenue",
        }
    }
}

/// `52000.00` → `52,000.00`, for reasons people read.
fn group_thousands(amount: &str) -> String {
    let (sign, rest) = amount.strip_prefix('-').map_or(("", amount), |r| ("-", r));
    let (int, frac) = rest.split_once('.').map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// One rung of the ladder. `threshold` is in the ladder's measure: a count,
/// or minor units of its currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub slug: String,
    pub name: String,
    pub benefits: String,
    pub threshold: i64,
}

/// A workspace's tiers, lowest first. Exists only valid (see [`TierLadder::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierLadder {
    measure: Measure,
    tiers: Vec<Tier>,
    grace_days: u32,
}

impl TierLadder {
    /// Checks a whole ladder; errors name `tiers[i].field`.
    pub fn new(measure: Measure, tiers: Vec<Tier>, grace_days: u32) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if tiers.is_empty() || tiers.len() > MAX_TIERS {
            errors.push(FieldError::new("tiers", format!("must list from 1 to {MAX_TIERS} tiers, lowest first")));
        }
        if grace_days > MAX_GRACE_DAYS {
            errors.push(FieldError::new("requalification_grace_days", format!("must be from 0 to {MAX_GRACE_DAYS}")));
        }
        let mut clean = Vec::with_capacity(tiers.len());
        for (i, t) in tiers.into_iter().enumerate() {
            let at = |f: &str| format!("tiers[{i}].{f}");
            let slug = parse_tier_slug(&at("slug"), &t.slug).map_err(|e| errors.push(e)).ok();
            if let Some(s) = &slug
                && let Some(j) = clean.iter().position(|c: &Tier| &c.slug == s)
            {
                errors.push(FieldError::new(at("slug"), format!("'{s}' is already used by tiers[{j}]")));
            }
            let name = required_text(&at("name"), &t.name, 100).map_err(|e| errors.push(e)).ok();
            let benefits = t.benefits.trim().to_owned();
            if benefits.chars().count() > MAX_BENEFITS {
                errors.push(FieldError::new(at("benefits"), format!("must be at most {MAX_BENEFITS} characters")));
            }
            if t.threshold < 0 {
                errors.push(FieldError::new(at("threshold"), "must not be negative"));
            } else if let Some(prev) = clean.last()
                && t.threshold <= prev.threshold
            {
                let message = format!("must be greater than the threshold of tiers[{}] ({})", i - 1, measure.describe(prev.threshold));
                errors.push(FieldError::new(at("threshold"), message));
            }
            // Kept even when invalid, so that later tiers compare with it.
            clean.push(Tier { slug: slug.unwrap_or_default(), name: name.unwrap_or_default(), benefits, threshold: t.threshold });
        }
        if errors.is_empty() { Ok(Self { measure, tiers: clean, grace_days }) } else { Err(errors) }
    }

    pub fn measure(&self) -> Measure {
        self.measure
    }

    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    pub fn requalification_grace_days(&self) -> u32 {
        self.grace_days
    }

    pub fn grace(&self) -> SignedDuration {
        SignedDuration::from_hours(24 * i64::from(self.grace_days))
    }

    pub fn position(&self, slug: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.slug == slug)
    }

    pub fn tier(&self, slug: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.slug == slug)
    }

    /// The highest tier whose threshold `value` meets.
    pub fn highest_met(&self, value: i64) -> Option<usize> {
        self.tiers.iter().rposition(|t| value >= t.threshold)
    }
}

/// The start of the trailing window that ends at `now`.
pub fn window_start(now: Timestamp) -> Timestamp {
    now - SignedDuration::from_hours(24 * TRAILING_DAYS)
}

/// What an evaluation decides for one partner. Positions index the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierDecision {
    /// The tier stays. `at_risk_since`: when the partner fell below its
    /// tier's threshold (to be stored), `None` when it meets it.
    Keep {
        at_risk_since: Option<Timestamp>,
    },
    Promote {
        to: usize,
    },
    /// Below since `below_since` for at least the grace period.
    Demote {
        to: Option<usize>,
        below_since: Timestamp,
    },
    /// The current tier is not on the ladder.
    Replace {
        to: Option<usize>,
    },
}

/// Decides a partner's tier. `current` is its tier and since when it has
/// held it; `below_since` what an earlier evaluation stored.
pub fn evaluate(
    ladder: &TierLadder,
    current: Option<(&str, Timestamp)>,
    below_since: Option<Timestamp>,
    value: i64,
    now: Timestamp,
) -> TierDecision {
    let met = ladder.highest_met(value);
    let Some((slug, since)) = current else {
        return match met {
            Some(to) => TierDecision::Promote { to },
            None => TierDecision::Keep { at_risk_since: None },
        };
    };
    let Some(held) = ladder.position(slug) else {
        return TierDecision::Replace { to: met };
    };
    match met {
        Some(to) if to > held => TierDecision::Promote { to },
        Some(to) if to == held => TierDecision::Keep { at_risk_since: None },
        _ => {
            // A below-since older than the tier itself belongs to an earlier tier.
            let start = below_since.unwrap_or(now).max(since).min(now);
            if now.duration_since(start) >= ladder.grace() {
                TierDecision::Demote { to: met, below_since: start }
            } else {
                TierDecision::Keep { at_risk_since: Some(start) }
            }
        }
    }
}

/// The tier above the partner's and how much of the measure it still
/// lacks (0 when met but not yet evaluated); `None` at the top.
pub fn progress<'a>(ladder: &'a TierLadder, current: Option<&str>, value: i64) -> Option<(&'a Tier, i64)> {
    let base = match current {
        None => None,
        // A tier off the ladder counts as the one the partner meets.
        Some(slug) => ladder.position(slug).or_else(|| ladder.highest_met(value)),
    };
    let next = ladder.tiers.get(base.map_or(0, |p| p + 1))?;
    Some((next, next.threshold.saturating_sub(value).max(0)))
}

/// Why a decision changes the tier, in words for the history (None for Keep).
pub fn reason(ladder: &TierLadder, from: Option<&str>, decision: &TierDecision, value: i64) -> Option<String> {
    let m = ladder.measure;
    let measured = format!("trailing-12-month {} {}", m.label(), m.describe(value));
    let named = |p: Option<usize>| match p.map(|p| &ladder.tiers[p]) {
        Some(t) => format!("{} ({})", t.name, m.describe(t.threshold)),
        None => "no tier".to_owned(),
    };
    match *decision {
        TierDecision::Keep { .. } => None,
        TierDecision::Promote { to } => Some(format!("{measured} reached {}", named(Some(to)))),
        TierDecision::Demote { to, below_since } => {
            let held = from.and_then(|s| ladder.position(s));
            Some(format!(
                "{measured} below {} since {}, longer than the {}-day requalification grace period; now {}",
                named(held),
                below_since.strftime("%Y-%m-%d"),
                ladder.grace_days,
                named(to)
            ))
        }
        TierDecision::Replace { to } => {
            Some(format!("tier '{}' is not on the ladder; {measured} meets {}", from.unwrap_or_default(), named(to)))
        }
    }
}

#[cfg(test)]
#[path = "tier_tests.rs"]
mod tests;
