//! The KPIs a partner program is run by, defined once, as pure functions of
//! aggregates the store computes (counts and sums per group, never rows of
//! money in floats).
//!
//! Rules:
//! - A period is two inclusive UTC dates; each figure selects by the date it
//!   is about: wins, losses, revenue, deal sizes, win rates and sales cycles
//!   by close date; activation and days to first referral over partners
//!   created in the period; referrals per partner by registration date;
//!   review times by decision date. Pipeline, active and dormant partners
//!   are a snapshot at the period's end (or now, whichever is earlier).
//! - Money figures are in one currency; amounts in other currencies are
//!   never converted or summed in, they are reported per currency.
//! - Rates are exact decimals rounded half-even to 4 places, days and hours
//!   to 2 places, means of money half-even to the minor unit. A figure
//!   whose denominator is zero is `None` (null), never 0.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
pub use rust_decimal::Decimal;
use rust_decimal::RoundingStrategy;
use rust_decimal::prelude::ToPrimitive;

use crate::deal::Stage;
use crate::ids::PartnerId;
use crate::validation::FieldError;
use crate::{Currency, Money};

/// A partner with no referral registered in this many days is dormant.
pub const DORMANT_DAYS: i64 = 90;
/// How many partners the top-partners list names.
pub const TOP_PARTNERS: usize = 10;
/// Most months one `group_by=month` answer may list.
pub const MAX_MONTHS: usize = 60;

const SECONDS_PER_DAY: i64 = 86_400;

/// Two inclusive UTC dates, each optional (open-ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    pub from: Option<Date>,
    pub to: Option<Date>,
}

impl Period {
    pub fn new(from: Option<Date>, to: Option<Date>) -> Result<Self, FieldError> {
        if let (Some(f), Some(t)) = (from, to)
            && t < f
        {
            return Err(FieldError::new("to", format!("must not be before from ({f})")));
        }
        Ok(Self { from, to })
    }

    /// The first instant inside the period (midnight UTC of `from`).
    pub fn start(&self) -> Option<Timestamp> {
        self.from.and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok()).map(|z| z.timestamp())
    }

    /// The first instant after the period (midnight UTC after `to`).
    pub fn end(&self) -> Option<Timestamp> {
        self.to.and_then(|d| d.tomorrow().ok()).and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok()).map(|z| z.timestamp())
    }

    /// The moment snapshots are taken: the period's end, or `now` if earlier.
    pub fn as_of(&self, now: Timestamp) -> Timestamp {
        self.end().map_or(now, |e| e.min(now))
    }

    /// The calendar months the period touches, each clipped to the period.
    /// Both ends are needed, and at most [`MAX_MONTHS`] months.
    pub fn months(&self) -> Result<Vec<Period>, FieldError> {
        let (Some(from), Some(to)) = (self.from, self.to) else {
            return Err(FieldError::new("group_by", "month needs both from and to"));
        };
        let mut out = Vec::new();
        let mut first = from;
        while first <= to {
            if out.len() == MAX_MONTHS {
                return Err(FieldError::new("group_by", format!("month covers at most {MAX_MONTHS} months; narrow from and to")));
            }
            let last = first.last_of_month().min(to);
            out.push(Period { from: Some(first), to: Some(last) });
            first = match last.tomorrow() {
                Ok(d) => d,
                Err(_) => break,
            };
        }
        Ok(out)
    }

    /// `YYYY-MM` of the period's first day (names a month of `group_by=month`).
    pub fn month_label(&self) -> Option<String> {
        self.from.map(|d| d.strftime("%Y-%m").to_string())
    }
}

/// `part ÷ whole`, rounded half-even to 4 places; `None` when `whole` is 0.
pub fn rate(part: u64, whole: u64) -> Option<Decimal> {
    (whole > 0).then(|| (Decimal::from(part) / Decimal::from(whole)).round_dp_with_strategy(4, RoundingStrategy::MidpointNearestEven))
}

/// `numerator ÷ denominator` to 2 places (e.g. referrals per partner).
pub fn ratio(numerator: u64, denominator: u64) -> Option<Decimal> {
    (denominator > 0)
        .then(|| (Decimal::from(numerator) / Decimal::from(denominator)).round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven))
}

/// The exact median: the middle value, or the mean of the two middle ones.
pub fn median(values: &mut [i64]) -> Option<Decimal> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    Some(if n % 2 == 1 {
        Decimal::from(values[n / 2])
    } else {
        (Decimal::from(values[n / 2 - 1]) + Decimal::from(values[n / 2])) / Decimal::TWO
    })
}

/// Seconds as days, half-even to 2 places.
pub fn days(seconds: Decimal) -> Decimal {
    (seconds / Decimal::from(SECONDS_PER_DAY)).round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

/// Seconds as hours, half-even to 2 places.
pub fn hours(seconds: Decimal) -> Decimal {
    (seconds / Decimal::from(3600)).round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

/// A rate or a count of days as a JSON number (the API's shape for them).
pub fn number(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// The mean of `count` amounts summing to `sum_minor`, half-even to the minor unit.
pub fn mean(sum_minor: i64, count: u64, currency: Currency) -> Option<Money> {
    if count == 0 {
        return None;
    }
    let m = (Decimal::from(sum_minor) / Decimal::from(count)).round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven);
    m.to_i64().map(|minor| Money::from_minor(minor, currency))
}

/// Won deals of one group: how many, their amounts, and the seconds from
/// registration (or creation, for direct deals) to close, summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub count: u64,
    pub amount_minor: i64,
    pub cycle_seconds: i64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.count += o.count;
        self.amount_minor = self.amount_minor.saturating_add(o.amount_minor);
        self.cycle_seconds = self.cycle_seconds.saturating_add(o.cycle_seconds);
    }
}

/// One partner's won referrals in one currency, closed in the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerWins {
    pub partner_id: PartnerId,
    pub currency: Currency,
    pub won: Tally,
}

/// A partner created in the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CohortPartner {
    pub active: bool,
    pub created_at: Timestamp,
    pub first_referral_at: Option<Timestamp>,
}

/// Open referrals at one stage in one currency (amount, else estimate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineGroup {
    pub stage: Stage,
    /// None: neither an amount nor an estimate was given.
    pub currency: Option<Currency>,
    pub count: u64,
    pub value_minor: i64,
}

/// Everything the KPIs of one period are computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// The currency money figures are given in.
    pub currency: Currency,
    pub partner_wins: Vec<PartnerWins>,
    pub partner_lost: u64,
    pub direct_wins: Vec<(Currency, Tally)>,
    pub direct_lost: u64,
    pub cohort: Vec<CohortPartner>,
    /// Referrals registered in the period.
    pub registered: u64,
    /// Partners whose status is active.
    pub active_partners: u64,
    /// Active partners without a referral in the [`DORMANT_DAYS`] before the snapshot.
    pub dormant_partners: u64,
    pub pipeline: Vec<PipelineGroup>,
    /// Seconds from registration to a person's decision, per referral decided in the period.
    pub review_seconds: Vec<i64>,
    /// Referrals waiting for review at the snapshot.
    pub awaiting_review: u64,
}

/// A partner's place among the top partners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopPartner {
    pub partner_id: PartnerId,
    pub revenue: Money,
    pub won: u64,
}

/// Partner-sourced and direct side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sides<T> {
    pub partner: T,
    pub direct: T,
}

/// Money figures of one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyFigures {
    pub partner_sourced_revenue: Money,
    pub average_deal_size: Sides<Option<Money>>,
    pub won: Sides<u64>,
    pub pipeline_value: Money,
}

/// One stage of the open pipeline: every open referral counts; the value
/// is that of those in the report's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageFigures {
    pub stage: Stage,
    pub count: u64,
    pub value: Money,
}

/// The KPIs of one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub currency: Currency,
    pub partner_activation_rate: Option<Decimal>,
    pub referral_to_closed_won_rate: Option<Decimal>,
    pub partner_sourced_revenue: Money,
    pub average_deal_size: Sides<Option<Money>>,
    pub median_days_to_first_referral: Option<Decimal>,
    pub win_rate: Sides<Option<Decimal>>,
    pub mean_sales_cycle_days: Sides<Option<Decimal>>,
    pub won: Sides<u64>,
    pub lost: Sides<u64>,
    pub referrals_registered: u64,
    pub active_partners: u64,
    pub referrals_per_active_partner: Option<Decimal>,
    pub dormant_partners: u64,
    pub partners_created: u64,
    pub partners_activated: u64,
    pub pipeline: Vec<StageFigures>,
    pub review_decisions: u64,
    pub median_review_hours: Option<Decimal>,
    pub awaiting_review: u64,
    pub top_partners: Vec<TopPartner>,
    /// Every currency seen in the period's wins or the open pipeline.
    pub by_currency: BTreeMap<String, CurrencyFigures>,
}

/// Computes the KPIs from their aggregates.
pub fn report(inputs: &Inputs) -> Report {
    let cur = inputs.currency;
    let mut partner_by_cur: BTreeMap<Currency, Tally> = BTreeMap::new();
    let mut by_partner: BTreeMap<&PartnerId, Tally> = BTreeMap::new();
    let mut partner_all = Tally::default();
    for w in &inputs.partner_wins {
        partner_by_cur.entry(w.currency).or_default().add(&w.won);
        partner_all.add(&w.won);
        if w.currency == cur {
            by_partner.entry(&w.partner_id).or_default().add(&w.won);
        }
    }
    let mut direct_by_cur: BTreeMap<Currency, Tally> = BTreeMap::new();
    let mut direct_all = Tally::default();
    for (c, t) in &inputs.direct_wins {
        direct_by_cur.entry(*c).or_default().add(t);
        direct_all.add(t);
    }
    let mut pipeline_by_cur: BTreeMap<Currency, i64> = BTreeMap::new();
    let mut pipeline = Vec::new();
    for stage in Stage::ALL.iter().filter(|s| !s.is_closed()) {
        let mut fig = StageFigures { stage: *stage, count: 0, value: Money::zero(cur) };
        for g in inputs.pipeline.iter().filter(|g| g.stage == *stage) {
            fig.count += g.count;
            if let Some(c) = g.currency {
                *pipeline_by_cur.entry(c).or_default() += g.value_minor;
                if c == cur {
                    fig.value = Money::from_minor(fig.value.minor().saturating_add(g.value_minor), cur);
                }
            }
        }
        pipeline.push(fig);
    }
    let figures = |c: Currency| {
        let p = partner_by_cur.get(&c).copied().unwrap_or_default();
        let d = direct_by_cur.get(&c).copied().unwrap_or_default();
        CurrencyFigures {
            partner_sourced_revenue: Money::from_minor(p.amount_minor, c),
            average_deal_size: Sides { partner: mean(p.amount_minor, p.count, c), direct: mean(d.amount_minor, d.count, c) },
            won: Sides { partner: p.count, direct: d.count },
            pipeline_value: Money::from_minor(pipeline_by_cur.get(&c).copied().unwrap_or_default(), c),
        }
    };
    let mut currencies: Vec<Currency> = partner_by_cur.keys().chain(direct_by_cur.keys()).chain(pipeline_by_cur.keys()).copied().collect();
    currencies.sort();
    currencies.dedup();
    let by_currency = currencies.iter().map(|c| (c.code().to_owned(), figures(*c))).collect();
    let main = figures(cur);

    let mut top: Vec<TopPartner> = by_partner
        .into_iter()
        .map(|(id, t)| TopPartner { partner_id: id.clone(), revenue: Money::from_minor(t.amount_minor, cur), won: t.count })
        .collect();
    // Highest revenue first; ties by more wins, then by id, so the list is stable.
    top.sort_by(|a, b| {
        b.revenue.minor().cmp(&a.revenue.minor()).then(b.won.cmp(&a.won)).then(a.partner_id.as_str().cmp(b.partner_id.as_str()))
    });
    top.truncate(TOP_PARTNERS);

    let active_cohort: Vec<&CohortPartner> = inputs.cohort.iter().filter(|p| p.active).collect();
    let activated = active_cohort.iter().filter(|p| p.first_referral_at.is_some()).count() as u64;
    let mut first_referral_seconds: Vec<i64> =
        inputs.cohort.iter().filter_map(|p| p.first_referral_at.map(|f| f.as_second() - p.created_at.as_second())).collect();
    let mut review = inputs.review_seconds.clone();
    let cycle = |t: Tally| (t.count > 0).then(|| days(Decimal::from(t.cycle_seconds) / Decimal::from(t.count)));

    Report {
        currency: cur,
        partner_activation_rate: rate(activated, active_cohort.len() as u64),
        referral_to_closed_won_rate: rate(partner_all.count, partner_all.count + inputs.partner_lost),
        partner_sourced_revenue: main.partner_sourced_revenue,
        average_deal_size: main.average_deal_size,
        median_days_to_first_referral: median(&mut first_referral_seconds).map(days),
        win_rate: Sides {
            partner: rate(partner_all.count, partner_all.count + inputs.partner_lost),
            direct: rate(direct_all.count, direct_all.count + inputs.direct_lost),
        },
        mean_sales_cycle_days: Sides { partner: cycle(partner_all), direct: cycle(direct_all) },
        won: Sides { partner: partner_all.count, direct: direct_all.count },
        lost: Sides { partner: inputs.partner_lost, direct: inputs.direct_lost },
        referrals_registered: inputs.registered,
        active_partners: inputs.active_partners,
        referrals_per_active_partner: ratio(inputs.registered, inputs.active_partners),
        dormant_partners: inputs.dormant_partners,
        partners_created: inputs.cohort.len() as u64,
        partners_activated: activated,
        pipeline,
        review_decisions: review.len() as u64,
        median_review_hours: median(&mut review).map(hours),
        awaiting_review: inputs.awaiting_review,
        top_partners: top,
        by_currency,
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
