//! Referrals (deal registrations): a partner's claim to have introduced a
//! company, and the decision on it.

use jiff::Timestamp;

use crate::company::CompanyDomain;
use crate::deal::Stage;
use crate::ids::{DealId, PartnerId};
use crate::partner::text_enum;
use crate::{Email, Money};

crate::ids::id_type!(
    /// A referral (deal registration).
    ReferralId, "ref"
);

text_enum!(
    /// Where a referral stands. Only `approved` holds protection.
    ReferralStatus {
        PendingReview = "pending_review",
        Approved = "approved",
        Rejected = "rejected",
        Won = "won",
        Lost = "lost",
        Expired = "expired",
        Withdrawn = "withdrawn",
    }
);

text_enum!(
    /// How the referral reached us.
    Channel { Api = "api", Portal = "portal", Link = "link", Email = "email", Csv = "csv" }
);

text_enum!(
    /// What the rules of engagement decided.
    Outcome { Approved = "approved", Review = "review", Rejected = "rejected" }
);

impl Outcome {
    pub fn status(&self) -> ReferralStatus {
        match self {
            Outcome::Approved => ReferralStatus::Approved,
            Outcome::Review => ReferralStatus::PendingReview,
            Outcome::Rejected => ReferralStatus::Rejected,
        }
    }
}

text_enum!(
    /// A partner's dispute of a rejection, and how it ended.
    DisputeStatus { Open = "open", Upheld = "upheld", Overturned = "overturned" }
);

/// One reason of a decision: the rule that fired and its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    pub rule: crate::rules::RuleId,
    pub detail: String,
    /// The record that caused the conflict (another referral, an account, a deal).
    pub conflicting_id: Option<String>,
    /// For fuzzy name matches: the similarity, 0–1.
    pub score: Option<f64>,
    /// For a conflicting registration: when its protection ends.
    pub until: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reasons: Vec<Reason>,
    pub decided_at: Timestamp,
    /// `rules` when automatic, else the actor who decided.
    pub decided_by: String,
}

/// The protection window: the partner owns the introduction until `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Referral {
    pub id: ReferralId,
    pub partner_id: PartnerId,
    pub status: ReferralStatus,
    pub channel: Channel,
    pub company_name: String,
    pub company_domain: CompanyDomain,
    pub contact_name: String,
    pub contact_email: Email,
    pub contact_title: Option<String>,
    pub context: Option<String>,
    pub estimated_value: Option<Money>,
    pub decision: Decision,
    pub protection: Option<Protection>,
    pub stage: Option<Stage>,
    pub deal_id: Option<DealId>,
    pub amount: Option<Money>,
    pub closed_at: Option<Timestamp>,
    pub dispute: Option<DisputeStatus>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Referral {
    /// Approved, unexpired and open: this referral holds the account.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.status == ReferralStatus::Approved && self.protection.is_some_and(|p| p.expires_at > now)
    }
}
