//! What an email says, as data: the outbox stores a [`MailPayload`] and the
//! mail adapter renders it (HTML and plain text) at delivery. Everything a
//! partner reads here is already partner-safe: reasons are redacted, other
//! partners' records never named.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub email: String,
}

/// One email to one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailPayload {
    pub to: Mailbox,
    /// The workspace's (vendor's) name, shown as the sender's name.
    pub workspace: String,
    pub notice: Notice,
    /// The referral this mail is about: the thread it belongs to.
    pub referral_id: Option<String>,
    /// The first mail of a referral's thread starts it (its Message-ID is
    /// the thread's); later ones refer to it.
    pub starts_thread: bool,
    /// `reply+TOKEN@DOMAIN`: replies land on the referral's timeline.
    pub reply_to: Option<String>,
    /// The referral's read-only status page (no sign-in).
    pub status_url: Option<String>,
    /// Where the recipient can change what they receive.
    pub preferences_url: Option<String>,
    /// One-click opt-out of this mail's topic (`List-Unsubscribe`).
    #[serde(default)]
    pub unsubscribe_url: Option<String>,
}

impl MailPayload {
    /// A mail with no thread, reply address or links.
    pub fn new(to: Mailbox, workspace: String, notice: Notice) -> Self {
        Self {
            to,
            workspace,
            notice,
            referral_id: None,
            starts_thread: false,
            reply_to: None,
            status_url: None,
            preferences_url: None,
            unsubscribe_url: None,
        }
    }
}

/// The news, per kind of mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// A new registration and its immediate decision.
    ReferralReceived {
        company: String,
        outcome: String,
        reasons: Vec<String>,
        protected_until: Option<Timestamp>,
    },
    /// A decision taken later by a person (review, dispute).
    Decision {
        company: String,
        outcome: String,
        reasons: Vec<String>,
        note: Option<String>,
        protected_until: Option<Timestamp>,
    },
    StageChanged {
        company: String,
        stage_label: String,
    },
    Won {
        company: String,
        amount: Option<String>,
        commission: Option<String>,
        payable_from: Option<Timestamp>,
    },
    Lost {
        company: String,
    },
    ProtectionExtended {
        company: String,
        until: Timestamp,
        reason: String,
    },
    ProtectionExpiring {
        company: String,
        until: Timestamp,
    },
    ProtectionExpired {
        company: String,
    },
    /// To partner managers: a registration waits for a decision.
    ReviewNeeded {
        company: String,
        partner: String,
        reasons: Vec<String>,
        review_url: String,
    },
    /// To partner managers: a partner disputes a rejection.
    Disputed {
        company: String,
        partner: String,
        message: String,
        review_url: String,
    },
    /// To partner managers and the deal owner: a partner replied by mail.
    PartnerReplied {
        company: String,
        partner: String,
        text: String,
        referral_url: String,
    },
    /// To partner managers and the deal owner: nothing moved for a while.
    Stalled {
        company: String,
        partner: String,
        stage_label: String,
        days: i64,
        referral_url: String,
    },
    /// Commissions whose hold ended: now payable, in the next payout.
    CommissionPayable {
        amount: String,
        commissions: u64,
        /// The partner's whole payable balance in that currency now.
        balance: Option<String>,
        earnings_url: String,
    },
    PayoutSent {
        total: String,
        commissions: u64,
        reference: Option<String>,
        statement_url: Option<String>,
    },
    TierChanged {
        from: Option<String>,
        to: Option<String>,
        benefits: Option<String>,
    },
    /// To a partner contact: a registration mail could not be read.
    RegistrationRefused {
        reason: String,
    },
    /// The monthly digest: the partner's pipeline by status, earnings per
    /// currency, tier and what the next one still needs.
    Digest {
        month: String,
        pipeline: Vec<(String, u64)>,
        earnings: Vec<(String, String)>,
        tier: Option<String>,
        next_tier: Option<String>,
    },
    /// News for all partners, or one tier.
    Announcement {
        subject: String,
        body: String,
    },
    /// A sign-in link to the partner portal.
    SignIn {
        url: String,
        expires_minutes: i64,
        welcome: bool,
    },
    /// A sign-in link to the web console, for a staff user.
    StaffSignIn {
        url: String,
        expires_minutes: i64,
    },
}
