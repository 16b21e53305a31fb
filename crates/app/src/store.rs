//! The storage port. Methods are coarse and transactional: each one either
//! does all of its writes, audit row included, or none of them.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_domain::account::Account;
use partnerloop_domain::deal::Deal;
use partnerloop_domain::ids::{AccountId, ApiKeyId, DealId, PartnerId, PlanId, WorkspaceId};
use partnerloop_domain::partner::{Partner, PartnerStatus};
use partnerloop_domain::plan::CommissionPlan;
use partnerloop_domain::referral::{Outcome, Reason, Referral, ReferralId, ReferralStatus};
use partnerloop_domain::rules::{ConflictingRegistration, Evidence, Rules};

use crate::error::StoreError;
use crate::ledger::{
    Balance, CommissionFilter, LedgerEntry, LedgerWrite, LinearAccrual, LinearBooked, NewPayment, NewPayout, Payment, Payout,
    PayoutCreated, SealedPayoutDetails, SealedPayoutSettings, UnaccruedWin,
};
use partnerloop_domain::commission::{Commission, CommissionId, PayoutId};

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub slug: String,
    pub name: String,
    pub currency: String,
    pub created_at: Timestamp,
}

/// One row of the audit log: who changed what, when, from what to what.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl AuditEntry {
    /// A row by `ctx`'s actor at `ctx.now` that records only the after-state.
    pub fn of(ctx: &crate::Ctx, action: &str, entity: &str, entity_id: &str, after: serde_json::Value) -> Self {
        Self {
            at: ctx.now,
            actor: ctx.actor.audit_name(),
            action: action.into(),
            entity: entity.into(),
            entity_id: entity_id.into(),
            before: None,
            after: Some(after),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Admin,
    Partner,
}

impl KeyKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyKind::Admin => "admin",
            KeyKind::Partner => "partner",
        }
    }
}

/// An API token as stored: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub kind: KeyKind,
    pub partner_id: Option<PartnerId>,
    pub name: Option<String>,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A window into a list, ordered by id (creation order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    /// Return records with an id greater than this one.
    pub after: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// The id to continue after, when there may be more.
    pub next_after: Option<String>,
}

impl<T> Paged<T> {
    /// Builds a page from up to `limit + 1` rows fetched in id order.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, id_of: impl Fn(&T) -> String) -> Self {
        let limit = limit as usize;
        let next_after = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&id_of)
        } else {
            None
        };
        Self { items: rows, next_after }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PartnerFilter {
    pub status: Option<PartnerStatus>,
    /// Limits the list to one partner (a partner token's view).
    pub only: Option<PartnerId>,
}

/// The outcome of claiming an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use: the request runs and its response is saved.
    New,
    /// The same request ran before: its saved response.
    Replay(SavedResponse),
    /// The key was used with another request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// What the exact checks found; `evidence.similar_names` is filled by the
/// fuzzy matcher afterwards.
#[derive(Debug, Clone, Default)]
pub struct Conflicts {
    pub evidence: Evidence,
    /// The registering partner's own active referral of this account.
    pub own_referral: Option<ReferralId>,
}

/// A historic referral to import, with its native deal and whether it
/// holds its account (an approved referral whose window is still open).
pub struct ImportedReferral {
    pub referral: Referral,
    pub deal: Option<Deal>,
    pub claim: bool,
    pub events: Vec<TimelineEvent>,
}

/// Everything one CSV import writes, in one transaction.
pub struct ImportBatch {
    pub accounts: Vec<Account>,
    pub partners: Vec<Partner>,
    pub deals: Vec<Deal>,
    pub referrals: Vec<ImportedReferral>,
    pub audit: AuditEntry,
}

/// One entry of a referral's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEvent {
    pub at: Timestamp,
    pub kind: String,
    pub actor: String,
    pub summary: String,
}

#[derive(Debug, Clone, Default)]
pub struct ReferralFilter {
    pub status: Option<ReferralStatus>,
    pub partner_id: Option<PartnerId>,
}

/// A change of the fuzzy-match targets: `name` of `entity_id` is (or is no
/// longer) a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameLogEntry {
    pub seq: i64,
    pub entity_id: String,
    pub name: String,
    pub active: bool,
}

/// Decides again when the registration lost its account to a concurrent
/// registration of another partner, given that partner's claim.
pub type Redecide = Box<dyn Fn(&ConflictingRegistration) -> (Outcome, Vec<Reason>) + Send + Sync>;

/// A decided registration, ready to be stored.
pub struct NewRegistration {
    pub referral: Referral,
    /// The native pipeline's deal, created when the referral is approved.
    pub deal: Option<Deal>,
    pub events: Vec<TimelineEvent>,
    pub audit: AuditEntry,
    pub redecide: Redecide,
    /// This is the partner's first referral: record the time on the partner.
    pub first_referral: bool,
}

#[derive(Debug, Clone)]
pub enum Registered {
    /// A new referral, with its final decision.
    Created(Referral),
    /// The partner already holds this account: its existing referral.
    Existing(Referral),
}

/// A state change of a referral, applied only if the stored referral still
/// has `before`'s status and update time ([`StoreError::Stale`] otherwise).
pub struct ReferralChange {
    pub before_status: ReferralStatus,
    pub before_updated_at: Timestamp,
    pub after: Referral,
    /// Claim the account's keys (approval); a lost claim is a conflict on
    /// `protection_claims_key_uq`.
    pub claim: bool,
    /// Give up the account's keys (the referral is no longer active).
    pub release: bool,
    pub deal_insert: Option<Deal>,
    pub deal_update: Option<Deal>,
    /// Make the account with this name and domain a customer (won).
    pub customer_account: Option<Account>,
    pub events: Vec<TimelineEvent>,
    pub audit: AuditEntry,
    /// Commissions booked or reversed by this change (a win accrues, a
    /// deal leaving won takes its commission back), entries by the audit's actor.
    pub ledger: Vec<LedgerWrite>,
}

#[async_trait]
pub trait Store:
    crate::outbox::OutboxStore
    + crate::crm_sync::CrmStore
    + crate::inbound::InboundStore
    + crate::signin::SignInStore
    + crate::staff::StaffStore
    + crate::notify::scheduled::ScheduleStore
    + crate::metrics::MetricsStore
    + crate::enablement::EnablementStore
    + crate::onboarding::OnboardingStore
    + crate::staff_admin::StaffAdminStore
    + crate::portal_lists::PortalListStore
    + crate::applications::RecruitmentStore
    + Send
    + Sync
    + 'static
{
    /// Answers when the database does.
    async fn ping(&self) -> StoreResult<()>;
    /// The engine's name, for logs and /metrics.
    fn engine(&self) -> &'static str;

    async fn ensure_workspace(&self, slug: &str, name: &str, id: WorkspaceId, now: Timestamp) -> StoreResult<Workspace>;
    async fn workspace_by_slug(&self, slug: &str) -> StoreResult<Workspace>;
    async fn workspace(&self, id: &WorkspaceId) -> StoreResult<Workspace>;
    /// A value stored once per installation (the generated secret key).
    async fn instance_setting_or_init(&self, name: &str, init: String) -> StoreResult<String>;

    async fn insert_api_key(&self, key: &ApiKeyRecord, audit: &AuditEntry) -> StoreResult<()>;
    async fn api_key_by_hash(&self, token_hash: &str) -> StoreResult<ApiKeyRecord>;

    async fn insert_partner(&self, ws: &WorkspaceId, partner: &Partner, audit: &AuditEntry) -> StoreResult<()>;
    async fn partner(&self, ws: &WorkspaceId, id: &PartnerId) -> StoreResult<Partner>;
    async fn list_partners(&self, ws: &WorkspaceId, filter: &PartnerFilter, page: &Page) -> StoreResult<Paged<Partner>>;
    /// Replaces a partner's own fields (not its contacts) if nobody changed
    /// it since `expected_updated_at`; otherwise [`StoreError::Stale`].
    async fn update_partner(
        &self,
        ws: &WorkspaceId,
        partner: &Partner,
        expected_updated_at: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()>;

    async fn insert_account(&self, ws: &WorkspaceId, account: &Account, audit: &AuditEntry) -> StoreResult<()>;
    async fn account(&self, ws: &WorkspaceId, id: &AccountId) -> StoreResult<Account>;
    async fn list_accounts(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<Account>>;

    async fn insert_deal(&self, ws: &WorkspaceId, deal: &Deal, audit: &AuditEntry) -> StoreResult<()>;
    async fn deal(&self, ws: &WorkspaceId, id: &DealId) -> StoreResult<Deal>;
    async fn list_deals(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<Deal>>;

    /// Inserts a plan; a default plan takes the default flag from the
    /// previous default in the same transaction.
    async fn insert_plan(&self, ws: &WorkspaceId, plan: &CommissionPlan, audit: &AuditEntry) -> StoreResult<()>;
    async fn plan(&self, ws: &WorkspaceId, id: &PlanId) -> StoreResult<CommissionPlan>;
    async fn list_plans(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<CommissionPlan>>;
    /// Makes this plan the workspace's default, taking the flag from the
    /// previous default in the same transaction; `NotFound` if it is not the workspace's.
    async fn set_default_plan(&self, ws: &WorkspaceId, id: &PlanId, audit: &AuditEntry) -> StoreResult<()>;
    /// How many partners that are not archived have each plan of their own
    /// (`None`: none, so they earn by the workspace's default).
    async fn partner_counts_by_plan(&self, ws: &WorkspaceId) -> StoreResult<Vec<(Option<String>, i64)>>;
    /// How many partners that are not archived hold each tier (`None`: no tier).
    async fn partner_counts_by_tier(&self, ws: &WorkspaceId) -> StoreResult<Vec<(Option<String>, i64)>>;

    /// Writes an import all at once, or nothing.
    async fn import(&self, ws: &WorkspaceId, batch: ImportBatch) -> StoreResult<()>;
    /// Every account domain of the workspace.
    async fn account_domains(&self, ws: &WorkspaceId) -> StoreResult<std::collections::HashSet<String>>;
    /// Every partner contact's email, with its partner.
    async fn partner_ids_by_contact_email(&self, ws: &WorkspaceId) -> StoreResult<std::collections::HashMap<String, PartnerId>>;

    async fn audit_for(&self, ws: &WorkspaceId, entity_id: &str) -> StoreResult<Vec<AuditEntry>>;

    /// The workspace's own partner-friendly stage labels (stage → label).
    async fn stage_labels(&self, ws: &WorkspaceId) -> StoreResult<std::collections::BTreeMap<String, String>>;
    /// Replaces the workspace's stage labels.
    async fn put_stage_labels(
        &self,
        ws: &WorkspaceId,
        labels: &std::collections::BTreeMap<String, String>,
        audit: &AuditEntry,
    ) -> StoreResult<()>;

    async fn rules(&self, ws: &WorkspaceId) -> StoreResult<Rules>;
    async fn put_rules(&self, ws: &WorkspaceId, rules: &Rules, audit: &AuditEntry) -> StoreResult<()>;

    /// The exact-key conflicts of a registration by `partner`: other
    /// partners' claims on `keys` (2 or 3 claim keys, see
    /// `referrals::claim_keys`), the account and open direct deals on every
    /// domain among them — and the partner's own active referral of the
    /// account, if it holds one. One round trip.
    async fn conflict_evidence(&self, ws: &WorkspaceId, partner: &PartnerId, keys: &[String], now: Timestamp) -> StoreResult<Conflicts>;
    /// Stores a decided registration atomically: the referral, its claims
    /// when approved (first registration wins: a lost claim re-decides),
    /// its deal, timeline, audit row, and the partner's first-referral time.
    async fn register_referral(&self, ws: &WorkspaceId, registration: NewRegistration) -> StoreResult<Registered>;
    async fn referral(&self, ws: &WorkspaceId, id: &ReferralId) -> StoreResult<Referral>;
    async fn list_referrals(&self, ws: &WorkspaceId, filter: &ReferralFilter, page: &Page) -> StoreResult<Paged<Referral>>;
    async fn change_referral(&self, ws: &WorkspaceId, change: ReferralChange) -> StoreResult<()>;
    async fn timeline(&self, ws: &WorkspaceId, id: &ReferralId) -> StoreResult<Vec<TimelineEvent>>;
    /// Approved referrals whose protection ended at or before `now`, any workspace.
    async fn lapsed_referrals(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<(WorkspaceId, Referral)>>;
    async fn name_log_since(&self, ws: &WorkspaceId, after_seq: i64, limit: u32) -> StoreResult<Vec<NameLogEntry>>;

    /// Claims `key` within `scope` for a request whose fingerprint is `request_hash`.
    async fn claim_idempotency_key(&self, scope: &str, key: &str, request_hash: &str, now: Timestamp) -> StoreResult<IdempotencyClaim>;
    async fn save_idempotent_response(&self, scope: &str, key: &str, response: &SavedResponse) -> StoreResult<()>;
    /// Frees a claimed key whose request failed on our side, so it may be retried.
    async fn release_idempotency_key(&self, scope: &str, key: &str) -> StoreResult<()>;

    /// The workspace's default commission plan, if it has one.
    async fn default_plan(&self, ws: &WorkspaceId) -> StoreResult<Option<CommissionPlan>>;
    async fn commission(&self, ws: &WorkspaceId, id: &CommissionId) -> StoreResult<Commission>;
    /// Commissions in id order; `filter.status` is judged as of `now`.
    async fn list_commissions(
        &self,
        ws: &WorkspaceId,
        filter: &CommissionFilter,
        now: Timestamp,
        page: &Page,
    ) -> StoreResult<Paged<Commission>>;
    /// How many referrals `partner` won with a close in `[from, to]`.
    async fn partner_wins_between(&self, ws: &WorkspaceId, partner: &PartnerId, from: Timestamp, to: Timestamp) -> StoreResult<u64>;
    /// The customer payments of a referral, by payment date.
    async fn referral_payments(&self, ws: &WorkspaceId, referral: &ReferralId) -> StoreResult<Vec<Payment>>;
    /// Stores a payment, its commission, timeline line and audit row at once.
    async fn record_payment(&self, ws: &WorkspaceId, new: NewPayment) -> StoreResult<()>;
    /// Every commission of one referral, oldest first.
    async fn referral_commissions(&self, ws: &WorkspaceId, referral: &ReferralId) -> StoreResult<Vec<Commission>>;
    /// The next `limit` won referrals without any accrual, in id order
    /// after `after` (those without an amount or close time left out); and
    /// the last id looked at (None: no more).
    async fn won_without_commission(
        &self,
        ws: &WorkspaceId,
        after: Option<&ReferralId>,
        limit: u32,
    ) -> StoreResult<(Vec<UnaccruedWin>, Option<ReferralId>)>;
    /// Books many new commissions at once with their entries (a backfill),
    /// in one transaction with the audit row.
    async fn book_commissions(&self, ws: &WorkspaceId, commissions: &[Commission], reason: &str, audit: &AuditEntry) -> StoreResult<()>;
    /// Books the commissions of every unaccrued win on a linear plan in one
    /// transaction with the audit row (see [`LinearAccrual`]), and returns
    /// how many (and whether every won referral now has its accrual). Wins it cannot compute exactly (a negative or very large
    /// amount, a currency not listed, a close time not in the canonical
    /// form) are left unaccrued for [`Store::book_commissions`].
    async fn book_linear_commissions(&self, ws: &WorkspaceId, set: &LinearAccrual, audit: &AuditEntry) -> StoreResult<LinearBooked>;
    /// The ledger entries of one commission, oldest first.
    async fn commission_entries(&self, ws: &WorkspaceId, id: &CommissionId, now: Timestamp) -> StoreResult<Vec<LedgerEntry>>;
    /// The adjustment that corrects a paid commission, if any.
    async fn adjustment_of(&self, ws: &WorkspaceId, id: &CommissionId) -> StoreResult<Option<CommissionId>>;
    /// Applies ledger writes outside a referral change (a reversal by
    /// hand), with their entries and the audit row, at `audit.at` by `audit.actor`.
    async fn write_ledger(&self, ws: &WorkspaceId, writes: Vec<LedgerWrite>, audit: &AuditEntry) -> StoreResult<()>;
    /// Makes pending commissions whose hold ended at or before `now`
    /// payable (any workspace, or one), with their entries; up to `limit`
    /// per call. Returns how many moved.
    async fn release_due_commissions(&self, ws: Option<&WorkspaceId>, now: Timestamp) -> StoreResult<u64>;
    /// A partner's balances per currency as of `now`.
    async fn partner_balances(&self, ws: &WorkspaceId, partner: &PartnerId, now: Timestamp) -> StoreResult<Vec<Balance>>;

    async fn put_payout_details(&self, ws: &WorkspaceId, details: &SealedPayoutDetails, audit: &AuditEntry) -> StoreResult<()>;
    async fn payout_details(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Option<SealedPayoutDetails>>;
    /// The payout details of several partners at once (those that have some).
    async fn payout_details_of(&self, ws: &WorkspaceId, partners: &[PartnerId]) -> StoreResult<Vec<SealedPayoutDetails>>;
    /// The company names of several referrals at once, by referral id.
    async fn referral_company_names(
        &self,
        ws: &WorkspaceId,
        ids: &[ReferralId],
    ) -> StoreResult<std::collections::HashMap<ReferralId, String>>;
    async fn put_payout_settings(&self, ws: &WorkspaceId, settings: &SealedPayoutSettings, audit: &AuditEntry) -> StoreResult<()>;
    async fn payout_settings(&self, ws: &WorkspaceId) -> StoreResult<Option<SealedPayoutSettings>>;

    /// Makes a draft batch of every partner's payable, unbatched
    /// commissions in the currency whose net balance is at least the
    /// minimum and who has payout details; one transaction.
    async fn create_payout(&self, ws: &WorkspaceId, new: &NewPayout, audit: &AuditEntry) -> StoreResult<PayoutCreated>;
    async fn payout(&self, ws: &WorkspaceId, id: &PayoutId) -> StoreResult<Payout>;
    async fn list_payouts(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<Payout>>;
    /// The commissions of a batch per partner, in id order.
    async fn payout_commission_ids(&self, ws: &WorkspaceId, id: &PayoutId) -> StoreResult<Vec<(PartnerId, CommissionId)>>;
    /// A draft batch becomes paid, and its commissions with it
    /// ([`StoreError::Stale`] when it is not a draft).
    async fn mark_payout_paid(&self, ws: &WorkspaceId, id: &PayoutId, reference: Option<&str>, audit: &AuditEntry) -> StoreResult<()>;
    /// A draft batch is cancelled; its commissions are payable again.
    async fn cancel_payout(&self, ws: &WorkspaceId, id: &PayoutId, audit: &AuditEntry) -> StoreResult<()>;

    // Tiers
    /// Replaces the workspace's ladder (its tiers with it).
    async fn put_tier_ladder(&self, ws: &WorkspaceId, ladder: &crate::tiers::StoredLadder, audit: &AuditEntry) -> StoreResult<()>;
    async fn tier_ladder(&self, ws: &WorkspaceId) -> StoreResult<Option<crate::tiers::StoredLadder>>;
    /// Every workspace that has a ladder.
    async fn tier_ladder_workspaces(&self) -> StoreResult<Vec<WorkspaceId>>;
    /// Each partner's tier and `measure` over won referrals closed in
    /// `[from, to]`, in one aggregate query: every partner that is not
    /// archived, or just `only` (archived or not); in partner id order.
    async fn tier_measures(
        &self,
        ws: &WorkspaceId,
        measure: partnerloop_domain::tier::Measure,
        from: Timestamp,
        to: Timestamp,
        only: Option<&PartnerId>,
    ) -> StoreResult<Vec<crate::tiers::PartnerMeasure>>;
    /// The stored evaluation states (all partners', or `only`'s).
    async fn tier_states(&self, ws: &WorkspaceId, only: Option<&PartnerId>) -> StoreResult<Vec<crate::tiers::TierState>>;
    /// Writes evaluation states (insert or replace), in one transaction with the audit row.
    async fn put_tier_states(&self, ws: &WorkspaceId, states: &[crate::tiers::TierState], audit: &AuditEntry) -> StoreResult<()>;
    /// Sets the partner's tier while it still is `change.from`
    /// ([`StoreError::Stale`] otherwise), with a history row, a fresh
    /// state and the audit row, in one transaction.
    async fn change_partner_tier(&self, ws: &WorkspaceId, change: &crate::tiers::TierChange) -> StoreResult<()>;
    /// A partner's tier history, oldest first.
    async fn tier_history(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Vec<crate::tiers::TierHistoryEntry>>;
}
