//! What the store keeps for the money side: ledger writes and entries,
//! sealed payout details, the payer's settings and payout batches.
//!
//! Rules: the ledger is append-only — a commission's status changes only
//! together with an entry saying why, in one transaction; sealed values
//! are opaque to the store (the app encrypts them), and only their masked
//! views are stored in clear.

use jiff::Timestamp;
use partnerloop_domain::Money;
use partnerloop_domain::commission::{Commission, CommissionId, CommissionStatus, EntryKind, PayoutId, PayoutStatus};
use partnerloop_domain::ids::{PartnerId, PlanId};
use partnerloop_domain::referral::ReferralId;

/// One change to the ledger, applied with its entry in the caller's transaction.
#[derive(Debug, Clone)]
pub enum LedgerWrite {
    /// Books a new commission (an accrual, or an adjustment of a paid one).
    Book { commission: Box<Commission>, reason: String },
    /// Reverses a pending or payable commission that no payout holds
    /// ([`crate::error::StoreError::Stale`] when it is no longer so).
    Reverse { id: CommissionId, reason: String },
}

/// One row of the append-only ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub seq: i64,
    pub commission_id: CommissionId,
    pub partner_id: PartnerId,
    pub referral_id: ReferralId,
    pub plan_id: Option<PlanId>,
    pub kind: EntryKind,
    pub amount: Money,
    pub at: Timestamp,
    pub actor: String,
    pub reason: String,
    pub payout_id: Option<PayoutId>,
}

#[derive(Debug, Clone, Default)]
pub struct CommissionFilter {
    pub partner_id: Option<PartnerId>,
    pub referral_id: Option<ReferralId>,
    pub payout_id: Option<PayoutId>,
    /// Filters by the status as of `now` (a pending commission past its
    /// hold counts as payable).
    pub status: Option<CommissionStatus>,
}

/// A partner's payout details as stored: sealed, with a masked view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPayoutDetails {
    pub partner_id: PartnerId,
    pub method: String,
    pub sealed: String,
    /// JSON of the masked view (last 4 characters of account numbers).
    pub masked: String,
    pub updated_at: Timestamp,
}

/// The payer's settings as stored: the minimum in clear, bank data sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPayoutSettings {
    pub minimum: Money,
    pub sealed: String,
    pub masked: String,
    pub updated_at: Timestamp,
}

/// One partner's line in a payout batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutItem {
    pub partner_id: PartnerId,
    pub partner_name: String,
    pub amount: Money,
    pub commission_count: u64,
    /// The partner's payout method when the batch was made.
    pub method: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    pub id: PayoutId,
    pub status: PayoutStatus,
    pub total: Money,
    pub commission_count: u64,
    pub items: Vec<PayoutItem>,
    pub created_at: Timestamp,
    pub created_by: String,
    pub paid_at: Option<Timestamp>,
    pub reference: Option<String>,
    pub updated_at: Timestamp,
}

impl Payout {
    pub fn currency(&self) -> partnerloop_domain::Currency {
        self.total.currency()
    }
}

/// What a new batch is made of.
#[derive(Debug, Clone)]
pub struct NewPayout {
    pub id: PayoutId,
    pub currency: partnerloop_domain::Currency,
    /// Partners whose payable balance is below this are left for later.
    pub minimum: Money,
    pub at: Timestamp,
    pub actor: String,
}

/// A partner with a payable balance that a new batch left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPartner {
    pub partner_id: PartnerId,
    pub balance: Money,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct PayoutCreated {
    /// None when no partner qualified: nothing was written.
    pub payout: Option<Payout>,
    pub skipped: Vec<SkippedPartner>,
}

/// A partner's balances in one currency, as of a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub currency: partnerloop_domain::Currency,
    pub pending: Money,
    pub payable: Money,
    pub paid: Money,
    pub reversed: Money,
}

/// A won referral that has never accrued a commission (imported history,
/// or won before any plan applied), with what its plan depends on.
#[derive(Debug, Clone)]
pub struct UnaccruedWin {
    pub referral_id: ReferralId,
    pub partner_id: PartnerId,
    pub amount: Money,
    pub won_at: Timestamp,
    pub partner_plan: Option<PlanId>,
    pub partner_tier: Option<String>,
}

/// The accrual of every unaccrued win of the partners on one linear plan
/// (a plan whose commission depends only on the won amount), computed by
/// the store in one statement: partners with `plan` as their own, and
/// partners without a plan of their own when `plan` is the default.
#[derive(Debug, Clone)]
pub struct LinearAccrual {
    pub plan: PlanId,
    pub is_default: bool,
    pub hold_days: u32,
    pub linear: partnerloop_domain::commission::Linear,
    /// The first 16 characters of the commission ids of this set (a ULID's
    /// time and the start of its randomness); the store appends 10 more,
    /// counting from `id_counter`.
    pub id_stem: String,
    pub id_counter: u64,
    /// The currencies the store may handle (code, minor-unit exponent):
    /// wins in any other are left to the general path.
    pub currencies: Vec<(&'static str, u8)>,
    pub reason: String,
}

/// What a linear set booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinearBooked {
    pub booked: u64,
    /// Every won referral of the workspace has its accrual now: there was
    /// no commission in the workspace before the set and it booked one per
    /// won referral (counted in its transaction). Nothing is left for the
    /// general path to look at.
    pub every_win: bool,
}

/// A customer payment recorded on a won referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: partnerloop_domain::commission::PaymentId,
    pub referral_id: ReferralId,
    pub amount: Money,
    pub paid_at: Timestamp,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// A payment to store with the commission it earns (if any), its timeline
/// line and audit row, in one transaction.
pub struct NewPayment {
    pub payment: Payment,
    pub commission: Option<Commission>,
    pub event: crate::store::TimelineEvent,
    pub audit: crate::store::AuditEntry,
}
