//! Rules of engagement: the workspace's written policy for conflicts, as
//! data, and the pure decision it yields. Every rule that fires becomes a
//! reason with its evidence; the outcome is the strictest action among
//! them (reject > review > approve).

use crate::partner::text_enum;
use crate::referral::{Outcome, Reason};
use crate::validation::FieldError;

text_enum!(
    /// The rules, in the order their reasons are listed.
    RuleId {
        ActiveReferralOtherPartner = "active_referral_other_partner",
        ExistingCustomer = "existing_customer",
        OffLimitsAccount = "off_limits_account",
        OpenDirectOpportunity = "open_direct_opportunity",
        PossibleDuplicate = "possible_duplicate",
        NoConflict = "no_conflict",
    }
);

text_enum!(
    /// What a rule does when it fires.
    Action { Approve = "approve", Review = "review", Reject = "reject" }
);

impl Action {
    fn outcome(self) -> Outcome {
        match self {
            Action::Approve => Outcome::Approved,
            Action::Review => Outcome::Review,
            Action::Reject => Outcome::Rejected,
        }
    }
}

fn severity(o: Outcome) -> u8 {
    match o {
        Outcome::Approved => 0,
        Outcome::Review => 1,
        Outcome::Rejected => 2,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Actions {
    pub active_referral_other_partner: Action,
    pub existing_customer: Action,
    pub off_limits_account: Action,
    pub open_direct_opportunity: Action,
    pub possible_duplicate: Action,
}

impl Actions {
    pub fn get(&self, rule: RuleId) -> Action {
        match rule {
            RuleId::ActiveReferralOtherPartner => self.active_referral_other_partner,
            RuleId::ExistingCustomer => self.existing_customer,
            RuleId::OffLimitsAccount => self.off_limits_account,
            RuleId::OpenDirectOpportunity => self.open_direct_opportunity,
            RuleId::PossibleDuplicate => self.possible_duplicate,
            RuleId::NoConflict => Action::Approve,
        }
    }

    pub fn set(&mut self, rule: RuleId, action: Action) {
        match rule {
            RuleId::ActiveReferralOtherPartner => self.active_referral_other_partner = action,
            RuleId::ExistingCustomer => self.existing_customer = action,
            RuleId::OffLimitsAccount => self.off_limits_account = action,
            RuleId::OpenDirectOpportunity => self.open_direct_opportunity = action,
            RuleId::PossibleDuplicate => self.possible_duplicate = action,
            RuleId::NoConflict => {}
        }
    }
}

/// A workspace's rules of engagement.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub protection_days: u32,
    pub auto_approve: bool,
    /// Minimum name similarity (0.5–1) for `possible_duplicate`.
    pub fuzzy_threshold: f64,
    pub actions: Actions,
}

pub const MIN_PROTECTION_DAYS: u32 = 1;
pub const MAX_PROTECTION_DAYS: u32 = 730;

impl Default for Rules {
    fn default() -> Self {
        Self {
            protection_days: 60,
            auto_approve: true,
            fuzzy_threshold: 0.9,
            actions: Actions {
                active_referral_other_partner: Action::Reject,
                existing_customer: Action::Reject,
                off_limits_account: Action::Reject,
                open_direct_opportunity: Action::Review,
                possible_duplicate: Action::Review,
            },
        }
    }
}

impl Rules {
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !(MIN_PROTECTION_DAYS..=MAX_PROTECTION_DAYS).contains(&self.protection_days) {
            errors.push(FieldError::new("protection_days", format!("must be from {MIN_PROTECTION_DAYS} to {MAX_PROTECTION_DAYS}")));
        }
        if !(0.5..=1.0).contains(&self.fuzzy_threshold) {
            errors.push(FieldError::new("fuzzy_threshold", "must be from 0.5 to 1.0"));
        }
        errors
    }
}

/// What the conflict checks found about one registration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// Active registrations of other partners by domain or contact email.
    pub other_partner_registrations: Vec<ConflictingRegistration>,
    /// The account with the registration's domain, if any.
    pub account: Option<KnownAccount>,
    /// Open direct deals on the domain.
    pub open_direct_deals: Vec<String>,
    /// Similar names among accounts and active registrations that matched
    /// neither by domain nor by email.
    pub similar_names: Vec<SimilarName>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConflictingRegistration {
    pub referral_id: String,
    pub partner_id: String,
    /// "domain" or "email".
    pub matched_on: &'static str,
    pub expires_at: jiff::Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KnownAccount {
    pub account_id: String,
    pub name: String,
    pub status: crate::account::AccountStatus,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimilarName {
    /// An account id or a referral id.
    pub id: String,
    pub name: String,
    pub score: f64,
}

/// The decision the rules make on the evidence: an outcome and every reason.
pub fn decide(evidence: &Evidence, rules: &Rules) -> (Outcome, Vec<Reason>) {
    use crate::account::AccountStatus;
    let mut reasons = Vec::new();
    for c in &evidence.other_partner_registrations {
        reasons.push(Reason {
            rule: RuleId::ActiveReferralOtherPartner,
            detail: format!("another partner holds an active registration of this account (same {}) until {}", c.matched_on, c.expires_at),
            conflicting_id: Some(c.referral_id.clone()),
            score: None,
            until: Some(c.expires_at),
        });
    }
    if let Some(a) = &evidence.account {
        let rule = match a.status {
            AccountStatus::Customer => Some((RuleId::ExistingCustomer, "is already a customer")),
            AccountStatus::OffLimits => Some((RuleId::OffLimitsAccount, "is off-limits for partner registrations")),
            AccountStatus::Prospect => None,
        };
        if let Some((rule, what)) = rule {
            reasons.push(Reason {
                rule,
                detail: format!("{} {what}", a.name),
                conflicting_id: Some(a.account_id.clone()),
                score: None,
                until: None,
            });
        }
    }
    for d in &evidence.open_direct_deals {
        reasons.push(Reason {
            rule: RuleId::OpenDirectOpportunity,
            detail: "the sales team already has an open opportunity with this account".into(),
            conflicting_id: Some(d.clone()),
            score: None,
            until: None,
        });
    }
    for s in evidence.similar_names.iter().filter(|s| s.score >= rules.fuzzy_threshold) {
        reasons.push(Reason {
            rule: RuleId::PossibleDuplicate,
            detail: format!("the company name is similar to '{}' (similarity {:.2})", s.name, s.score),
            conflicting_id: Some(s.id.clone()),
            score: Some(s.score),
            until: None,
        });
    }
    if reasons.is_empty() {
        let outcome = if rules.auto_approve { Outcome::Approved } else { Outcome::Review };
        let detail = if rules.auto_approve { "no conflict found" } else { "no conflict found; auto-approval is off" };
        return (outcome, vec![Reason { rule: RuleId::NoConflict, detail: detail.into(), conflicting_id: None, score: None, until: None }]);
    }
    let outcome = reasons.iter().map(|r| rules.actions.get(r.rule).outcome()).max_by_key(|o| severity(*o)).unwrap_or(Outcome::Review);
    // A conflict whose action is "approve" still needs a human when auto-approval is off.
    let outcome = if outcome == Outcome::Approved && !rules.auto_approve { Outcome::Review } else { outcome };
    (outcome, reasons)
}

/// What a partner may see of the reasons: nothing about other partners'
/// records or the vendor's own accounts and deals, only that the account
/// is taken (and until when).
pub fn redact_for_partner(reasons: &[Reason]) -> Vec<Reason> {
    reasons
        .iter()
        .map(|r| {
            let detail = match r.rule {
                RuleId::ActiveReferralOtherPartner => match r.until {
                    Some(until) => format!("this account is already registered until {}", until.strftime("%Y-%m-%d")),
                    None => "this account is already registered".to_owned(),
                },
                RuleId::ExistingCustomer => "this company is already a customer".to_owned(),
                RuleId::OffLimitsAccount => "this company is not open for partner registrations".to_owned(),
                RuleId::OpenDirectOpportunity => {
                    "the sales team is already in touch with this company; a partner manager will review".to_owned()
                }
                RuleId::PossibleDuplicate => "a similar company is already known; a partner manager will review".to_owned(),
                RuleId::NoConflict => r.detail.clone(),
            };
            Reason { rule: r.rule, detail, conflicting_id: None, score: None, until: None }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::AccountStatus;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn no_conflict_approves_or_waits_for_review_without_auto_approval() {
        let (o, r) = decide(&Evidence::default(), &Rules::default());
        assert_eq!(o, Outcome::Approved);
        assert_eq!(r[0].rule, RuleId::NoConflict);
        let manual = Rules { auto_approve: false, ..Rules::default() };
        assert_eq!(decide(&Evidence::default(), &manual).0, Outcome::Review);
    }

    #[test]
    fn the_strictest_action_wins_and_every_reason_is_kept() {
        let e = Evidence {
            account: Some(KnownAccount { account_id: "acc_1".into(), name: "Globex".into(), status: AccountStatus::Customer }),
            open_direct_deals: vec!["del_1".into()],
            ..Evidence::default()
        };
        let (o, r) = decide(&e, &Rules::default());
        assert_eq!(o, Outcome::Rejected);
        let rules: Vec<_> = r.iter().map(|r| r.rule).collect();
        assert_eq!(rules, [RuleId::ExistingCustomer, RuleId::OpenDirectOpportunity]);
        assert_eq!(r[0].conflicting_id.as_deref(), Some("acc_1"));
    }

    #[test]
    fn configured_actions_change_the_outcome() {
        let e = Evidence { open_direct_deals: vec!["del_1".into()], ..Evidence::default() };
        let mut rules = Rules::default();
        assert_eq!(decide(&e, &rules).0, Outcome::Review);
        rules.actions.set(RuleId::OpenDirectOpportunity, Action::Reject);
        assert_eq!(decide(&e, &rules).0, Outcome::Rejected);
        rules.actions.set(RuleId::OpenDirectOpportunity, Action::Approve);
        assert_eq!(decide(&e, &rules).0, Outcome::Approved);
    }

    #[test]
    fn fuzzy_matches_below_the_threshold_do_not_fire() {
        let e =
            Evidence { similar_names: vec![SimilarName { id: "acc_9".into(), name: "globex".into(), score: 0.85 }], ..Evidence::default() };
        assert_eq!(decide(&e, &Rules::default()).0, Outcome::Approved);
        let lenient = Rules { fuzzy_threshold: 0.8, ..Rules::default() };
        let (o, r) = decide(&e, &lenient);
        assert_eq!((o, r[0].rule, r[0].score), (Outcome::Review, RuleId::PossibleDuplicate, Some(0.85)));
    }

    #[test]
    fn a_partner_learns_nothing_about_the_other_partner() {
        let e = Evidence {
            other_partner_registrations: vec![ConflictingRegistration {
                referral_id: "ref_other".into(),
                partner_id: "prt_other".into(),
                matched_on: "domain",
                expires_at: at("2027-01-31T00:00:00Z"),
            }],
            ..Evidence::default()
        };
        let (_, reasons) = decide(&e, &Rules::default());
        let seen = redact_for_partner(&reasons);
        assert_eq!(seen[0].conflicting_id, None);
        assert_eq!(seen[0].detail, "this account is already registered until 2027-01-31");
        assert!(!seen[0].detail.contains("prt_other"));
    }

    #[test]
    fn rules_out_of_range_are_refused() {
        let bad = Rules { protection_days: 0, fuzzy_threshold: 1.5, ..Rules::default() };
        let fields: Vec<_> = bad.check().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["protection_days", "fuzzy_threshold"]);
    }
}
