//! Partner applications and the ideal-partner score.
//!
//! A workspace describes its ideal partner ([`Criteria`]): the industries
//! its buyers are in, the deal-size band it sells in, how many referrals a
//! quarter it hopes for, and how much each of four criteria weighs. An
//! applicant's [`Answers`] are scored against them by [`score`]:
//!
//! | criterion | 0–100 from |
//! | --- | --- |
//! | audience overlap | industries served ∩ target industries, over the smaller of the two lists |
//! | deal-size alignment | 100 inside the band; outside, the ratio of the nearer bound to the deal size (or of the deal size to it) |
//! | credibility | years in business (8 per year, up to 5), clients (2 each, up to 20), a website (20) |
//! | responsiveness | expected referrals a quarter against the target (up to 60), reply commitment (same day 40, two days 25, a week 10) |
//!
//! The total is the weighted average of the four, rounded half up to a whole
//! number. Weights are whole numbers 0–100 (at least one above 0), so the
//! score is exact and the same on every machine: no floating point anywhere.
//! A criterion the workspace has not configured (no target industries, no
//! band) scores a neutral 50, so that it neither helps nor hurts.

use crate::partner::text_enum;
use crate::validation::FieldError;

/// Most target industries a workspace may list (and an applicant may name).
pub const MAX_INDUSTRIES: usize = 30;
/// The score of a criterion the workspace has not configured.
pub const NEUTRAL: u32 = 50;

text_enum!(
    /// How quickly an applicant commits to answer about a lead.
    ResponseTime { SameDay = "same_day", TwoDays = "two_days", Week = "week" }
);

impl ResponseTime {
    /// Words for forms and the console.
    pub fn label(&self) -> &'static str {
        match self {
            ResponseTime::SameDay => "the same business day",
            ResponseTime::TwoDays => "within two business days",
            ResponseTime::Week => "within a week",
        }
    }

    fn points(&self) -> u32 {
        match self {
            ResponseTime::SameDay => 40,
            ResponseTime::TwoDays => 25,
            ResponseTime::Week => 10,
        }
    }
}

text_enum!(
    /// Where an application stands in the queue.
    ApplicationStatus { Pending = "pending", Approved = "approved", Rejected = "rejected" }
);

/// How much each criterion counts in the total: whole numbers 0–100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    pub audience: u32,
    pub deal_size: u32,
    pub credibility: u32,
    pub responsiveness: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Self { audience: 35, deal_size: 25, credibility: 20, responsiveness: 20 }
    }
}

impl Weights {
    pub fn sum(&self) -> u32 {
        self.audience + self.deal_size + self.credibility + self.responsiveness
    }
}

/// The workspace's ideal partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Criteria {
    /// Normalised industry names (see [`normalise_industry`]), distinct, in the order given.
    pub target_industries: Vec<String>,
    /// The deal-size band in the workspace currency's minor units, both ends inclusive.
    pub deal_size_band: Option<(i64, i64)>,
    /// Referrals a quarter that earn full responsiveness points (1–100).
    pub referrals_per_quarter: u32,
    pub weights: Weights,
}

impl Default for Criteria {
    fn default() -> Self {
        Self { target_industries: Vec::new(), deal_size_band: None, referrals_per_quarter: 3, weights: Weights::default() }
    }
}

impl Criteria {
    /// Every problem of these criteria, by field (`weights.audience`, …).
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let w = &self.weights;
        for (field, v) in [
            ("weights.audience", w.audience),
            ("weights.deal_size", w.deal_size),
            ("weights.credibility", w.credibility),
            ("weights.responsiveness", w.responsiveness),
        ] {
            if v > 100 {
                errors.push(FieldError::new(field, "must be a whole number from 0 to 100"));
            }
        }
        if errors.is_empty() && w.sum() == 0 {
            errors.push(FieldError::new("weights", "at least one weight must be above 0"));
        }
        if let Some((min, max)) = self.deal_size_band {
            if min < 0 {
                errors.push(FieldError::new("deal_size_min", "must not be negative"));
            }
            if max < min {
                errors.push(FieldError::new("deal_size_max", "must not be below the minimum"));
            }
            if max <= 0 {
                errors.push(FieldError::new("deal_size_max", "must be above 0"));
            }
        }
        if !(1..=100).contains(&self.referrals_per_quarter) {
            errors.push(FieldError::new("referrals_per_quarter", "must be a whole number from 1 to 100"));
        }
        if self.target_industries.len() > MAX_INDUSTRIES {
            errors.push(FieldError::new("target_industries", format!("at most {MAX_INDUSTRIES} industries")));
        }
        errors
    }
}

/// What an applicant says about their business, as far as scoring goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    /// Normalised industry names the applicant's clients are in.
    pub industries: Vec<String>,
    /// A typical client deal, in the workspace currency's minor units.
    pub typical_deal_minor: i64,
    pub years_in_business: u32,
    pub client_count: u32,
    pub has_website: bool,
    pub referrals_per_quarter: u32,
    pub response_time: ResponseTime,
}

/// The score of one application: each criterion 0–100 and the weighted total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    pub total: u32,
    pub audience: u32,
    pub deal_size: u32,
    pub credibility: u32,
    pub responsiveness: u32,
}

/// The one spelling of an industry name: trimmed, lower case, inner spaces single.
pub fn normalise_industry(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Splits a comma- or line-separated list into distinct normalised names.
pub fn industry_list(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in text.split([',', '\n', ';']).map(normalise_industry).filter(|n| !n.is_empty()) {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// `100 × part / whole`, rounded down; `whole` must be above 0.
fn percent(part: u64, whole: u64) -> u32 {
    u32::try_from((100 * u128::from(part) / u128::from(whole.max(1))).min(100)).unwrap_or(100)
}

/// Audience overlap: the matching industries over the smaller list, so a
/// specialist in one target industry scores as well as a generalist in all.
pub fn audience_score(criteria: &Criteria, answers: &Answers) -> u32 {
    if criteria.target_industries.is_empty() {
        return NEUTRAL;
    }
    if answers.industries.is_empty() {
        return 0;
    }
    let matched = answers.industries.iter().filter(|i| criteria.target_industries.contains(i)).count();
    let smaller = criteria.target_industries.len().min(answers.industries.len());
    percent(matched as u64, smaller as u64)
}

/// Deal-size alignment: 100 inside the band, falling with the distance outside it.
pub fn deal_size_score(criteria: &Criteria, answers: &Answers) -> u32 {
    let Some((min, max)) = criteria.deal_size_band else { return NEUTRAL };
    let deal = answers.typical_deal_minor.max(0) as u64;
    let (min, max) = (min.max(0) as u64, max.max(0) as u64);
    if deal < min {
        percent(deal, min)
    } else if deal > max {
        percent(max, deal)
    } else {
        100
    }
}

/// Credibility: years in business, clients served and a website.
pub fn credibility_score(answers: &Answers) -> u32 {
    answers.years_in_business.min(5) * 8 + answers.client_count.min(20) * 2 + if answers.has_website { 20 } else { 0 }
}

/// Responsiveness: referrals a quarter against the target, and the reply commitment.
pub fn responsiveness_score(criteria: &Criteria, answers: &Answers) -> u32 {
    let target = criteria.referrals_per_quarter.max(1);
    answers.referrals_per_quarter.min(target) * 60 / target + answers.response_time.points()
}

/// Scores `answers` against `criteria`.
pub fn score(criteria: &Criteria, answers: &Answers) -> Score {
    let audience = audience_score(criteria, answers);
    let deal_size = deal_size_score(criteria, answers);
    let credibility = credibility_score(answers);
    let responsiveness = responsiveness_score(criteria, answers);
    let w = criteria.weights;
    let total = match w.sum() {
        0 => 0,
        sum => {
            let num = audience * w.audience + deal_size * w.deal_size + credibility * w.credibility + responsiveness * w.responsiveness;
            // Half up: (2n + d) / 2d.
            (2 * num + sum) / (2 * sum)
        }
    };
    Score { total, audience, deal_size, credibility, responsiveness }
}

#[cfg(test)]
#[path = "application_tests.rs"]
mod tests;
