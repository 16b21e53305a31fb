//! The [`Store`] trait over [`SqlStore`]: workspaces, settings, API keys and
//! the audit log here; records and idempotency delegate to their modules.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::error::StoreError;
use partnerloop_app::ledger::*;
use partnerloop_app::store::*;
use partnerloop_domain::account::Account;
use partnerloop_domain::commission::{Commission, CommissionId, PayoutId};
use partnerloop_domain::deal::Deal;
use partnerloop_domain::ids::{AccountId, DealId, PartnerId, PlanId, WorkspaceId};
use partnerloop_domain::partner::Partner;
use partnerloop_domain::plan::CommissionPlan;
use partnerloop_domain::referral::{Referral, ReferralId};
use partnerloop_domain::rules::Rules;

use crate::errors::map;
use crate::records::insert_audit;
use crate::rows::{ApiKeyRow, AuditRow, WorkspaceRow};
use crate::time::{opt_to_text, to_text};
use crate::{Db, SqlStore, on_read, on_write};

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        on_read!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|_| ()).map_err(map))
    }

    fn engine(&self) -> &'static str {
        match self.db {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    async fn ensure_workspace(&self, slug: &str, name: &str, id: WorkspaceId, now: Timestamp) -> StoreResult<Workspace> {
        on_write!(self, |pool| {
            sqlx::query("INSERT INTO workspaces (id, slug, name, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (slug) DO NOTHING")
                .bind(id.as_str())
                .bind(slug)
                .bind(name)
                .bind(to_text(now))
                .execute(pool)
                .await
                .map_err(map)?;
            let row: WorkspaceRow = sqlx::query_as("SELECT id, slug, name, currency, created_at FROM workspaces WHERE slug = $1")
                .bind(slug)
                .fetch_one(pool)
                .await
                .map_err(map)?;
            row.try_into()
        })
    }

    async fn workspace_by_slug(&self, slug: &str) -> StoreResult<Workspace> {
        on_read!(self, |pool| {
            let row: WorkspaceRow = sqlx::query_as("SELECT id, slug, name, currency, created_at FROM workspaces WHERE slug = $1")
                .bind(slug)
                .fetch_one(pool)
                .await
                .map_err(map)?;
            row.try_into()
        })
    }

    async fn workspace(&self, id: &WorkspaceId) -> StoreResult<Workspace> {
        if let Some(w) = self.workspace_cache.get(&id.to_string()) {
            return Ok(w);
        }
        let w: Workspace = on_read!(self, |pool| {
            let row: WorkspaceRow = sqlx::query_as("SELECT id, slug, name, currency, created_at FROM workspaces WHERE id = $1")
                .bind(id.as_str())
                .fetch_one(pool)
                .await
                .map_err(map)?;
            Workspace::try_from(row)?
        });
        self.workspace_cache.put(id.to_string(), w.clone());
        Ok(w)
    }

    async fn instance_setting_or_init(&self, name: &str, init: String) -> StoreResult<String> {
        on_write!(self, |pool| {
            sqlx::query("INSERT INTO instance_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(&init)
                .execute(pool)
                .await
                .map_err(map)?;
            sqlx::query_scalar("SELECT value FROM instance_settings WHERE name = $1").bind(name).fetch_one(pool).await.map_err(map)
        })
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO api_keys (id, workspace_id, kind, partner_id, name, token_hash, created_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(key.id.as_str())
            .bind(key.workspace_id.as_str())
            .bind(key.kind.as_str())
            .bind(key.partner_id.as_ref().map(|p| p.as_str()))
            .bind(key.name.as_deref())
            .bind(&key.token_hash)
            .bind(to_text(key.created_at))
            .bind(opt_to_text(key.revoked_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, key.workspace_id, audit);
            tx.commit().await.map_err(map)
        })
    }

    async fn api_key_by_hash(&self, token_hash: &str) -> StoreResult<ApiKeyRecord> {
        on_read!(self, |pool| {
            let row: ApiKeyRow = sqlx::query_as(
                "SELECT id, workspace_id, kind, partner_id, name, token_hash, created_at, revoked_at FROM api_keys WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_one(pool)
            .await
            .map_err(map)?;
            row.try_into()
        })
    }

    async fn insert_partner(&self, ws: &WorkspaceId, partner: &Partner, audit: &AuditEntry) -> StoreResult<()> {
        self.insert_partner_(ws, partner, audit).await
    }
    async fn partner(&self, ws: &WorkspaceId, id: &PartnerId) -> StoreResult<Partner> {
        self.partner_(ws, id).await
    }
    async fn list_partners(&self, ws: &WorkspaceId, filter: &PartnerFilter, page: &Page) -> StoreResult<Paged<Partner>> {
        self.list_partners_(ws, filter, page).await
    }
    async fn update_partner(&self, ws: &WorkspaceId, partner: &Partner, expected: Timestamp, audit: &AuditEntry) -> StoreResult<()> {
        self.update_partner_(ws, partner, expected, audit).await
    }
    async fn insert_account(&self, ws: &WorkspaceId, account: &Account, audit: &AuditEntry) -> StoreResult<()> {
        self.insert_account_(ws, account, audit).await
    }
    async fn account(&self, ws: &WorkspaceId, id: &AccountId) -> StoreResult<Account> {
        self.account_(ws, id).await
    }
    async fn list_accounts(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<Account>> {
        self.list_accounts_(ws, page).await
    }
    async fn insert_deal(&self, ws: &WorkspaceId, deal: &Deal, audit: &AuditEntry) -> StoreResult<()> {
        self.insert_deal_(ws, deal, audit).await
    }
    async fn deal(&self, ws: &WorkspaceId, id: &DealId) -> StoreResult<Deal> {
        self.deal_(ws, id).await
    }
    async fn list_deals(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<Deal>> {
        self.list_deals_(ws, page).await
    }
    async fn insert_plan(&self, ws: &WorkspaceId, plan: &CommissionPlan, audit: &AuditEntry) -> StoreResult<()> {
        self.insert_plan_(ws, plan, audit).await
    }
    async fn plan(&self, ws: &WorkspaceId, id: &PlanId) -> StoreResult<CommissionPlan> {
        self.plan_(ws, id).await
    }
    async fn list_plans(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<CommissionPlan>> {
        self.list_plans_(ws, page).await
    }
    async fn set_default_plan(&self, ws: &WorkspaceId, id: &PlanId, audit: &AuditEntry) -> StoreResult<()> {
        self.set_default_plan_(ws, id, audit).await
    }
    async fn partner_counts_by_plan(&self, ws: &WorkspaceId) -> StoreResult<Vec<(Option<String>, i64)>> {
        self.partner_counts_by_plan_(ws).await
    }
    async fn partner_counts_by_tier(&self, ws: &WorkspaceId) -> StoreResult<Vec<(Option<String>, i64)>> {
        self.partner_counts_by_tier_(ws).await
    }

    async fn import(&self, ws: &WorkspaceId, batch: ImportBatch) -> StoreResult<()> {
        self.import_(ws, batch).await
    }
    async fn account_domains(&self, ws: &WorkspaceId) -> StoreResult<std::collections::HashSet<String>> {
        self.account_domains_(ws).await
    }
    async fn partner_ids_by_contact_email(&self, ws: &WorkspaceId) -> StoreResult<std::collections::HashMap<String, PartnerId>> {
        self.partner_ids_by_contact_email_(ws).await
    }

    async fn audit_for(&self, ws: &WorkspaceId, entity_id: &str) -> StoreResult<Vec<AuditEntry>> {
        on_read!(self, |pool| {
            let rows: Vec<AuditRow> = sqlx::query_as(
                "SELECT at, actor, action, entity, entity_id, before_state, after_state FROM audit_log
                 WHERE workspace_id = $1 AND entity_id = $2 ORDER BY id",
            )
            .bind(ws.as_str())
            .bind(entity_id)
            .fetch_all(pool)
            .await
            .map_err(map)?;
            rows.into_iter().map(AuditEntry::try_from).collect::<Result<Vec<_>, StoreError>>()
        })
    }

    async fn stage_labels(&self, ws: &WorkspaceId) -> StoreResult<std::collections::BTreeMap<String, String>> {
        if let Some(l) = self.labels_cache.get(&ws.to_string()) {
            return Ok(l);
        }
        let labels: std::collections::BTreeMap<String, String> = on_read!(self, |pool| {
            let rows: Vec<(String, String)> = sqlx::query_as("SELECT stage, label FROM stage_labels WHERE workspace_id = $1")
                .bind(ws.as_str())
                .fetch_all(pool)
                .await
                .map_err(map)?;
            rows.into_iter().collect()
        });
        self.labels_cache.put(ws.to_string(), labels.clone());
        Ok(labels)
    }

    async fn put_stage_labels(
        &self,
        ws: &WorkspaceId,
        labels: &std::collections::BTreeMap<String, String>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.labels_cache.forget(&ws.to_string());
        let result = self.put_stage_labels_(ws, labels, audit).await;
        self.labels_cache.forget(&ws.to_string());
        result
    }

    async fn rules(&self, ws: &WorkspaceId) -> StoreResult<Rules> {
        if let Some(r) = self.rules_cache.get(&ws.to_string()) {
            return Ok(r);
        }
        let rules = self.rules_(ws).await?;
        self.rules_cache.put(ws.to_string(), rules.clone());
        Ok(rules)
    }
    async fn put_rules(&self, ws: &WorkspaceId, rules: &Rules, audit: &AuditEntry) -> StoreResult<()> {
        self.rules_cache.forget(&ws.to_string());
        let result = self.put_rules_(ws, rules, audit).await;
        self.rules_cache.forget(&ws.to_string());
        result
    }
    async fn conflict_evidence(&self, ws: &WorkspaceId, partner: &PartnerId, keys: &[String], now: Timestamp) -> StoreResult<Conflicts> {
        self.conflict_evidence_(ws, partner, keys, now).await
    }
    async fn register_referral(&self, ws: &WorkspaceId, registration: NewRegistration) -> StoreResult<Registered> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = crate::group_commit::RegisterJob { ws: ws.clone(), registration, reply };
        let closed = || StoreError::Other("the registration writer has stopped".into());
        self.registrations.send(job).await.map_err(|_| closed())?;
        match answer.await.map_err(|_| closed())?? {
            crate::group_commit::JobOutcome::Created(r) => Ok(Registered::Created(*r)),
            crate::group_commit::JobOutcome::Existing(id) => {
                Ok(Registered::Existing(self.referral_(ws, &ReferralId::from_string(id)).await?))
            }
        }
    }
    async fn referral(&self, ws: &WorkspaceId, id: &ReferralId) -> StoreResult<Referral> {
        self.referral_(ws, id).await
    }
    async fn list_referrals(&self, ws: &WorkspaceId, filter: &ReferralFilter, page: &Page) -> StoreResult<Paged<Referral>> {
        self.list_referrals_(ws, filter, page).await
    }
    async fn change_referral(&self, ws: &WorkspaceId, change: ReferralChange) -> StoreResult<()> {
        self.change_referral_(ws, change).await
    }
    async fn timeline(&self, ws: &WorkspaceId, id: &ReferralId) -> StoreResult<Vec<TimelineEvent>> {
        self.timeline_(ws, id).await
    }
    async fn lapsed_referrals(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<(WorkspaceId, Referral)>> {
        self.lapsed_referrals_(now, limit).await
    }
    async fn name_log_since(&self, ws: &WorkspaceId, after_seq: i64, limit: u32) -> StoreResult<Vec<NameLogEntry>> {
        self.name_log_since_(ws, after_seq, limit).await
    }

    async fn claim_idempotency_key(&self, scope: &str, key: &str, request_hash: &str, now: Timestamp) -> StoreResult<IdempotencyClaim> {
        self.claim_(scope, key, request_hash, now).await
    }
    async fn save_idempotent_response(&self, scope: &str, key: &str, response: &SavedResponse) -> StoreResult<()> {
        self.save_response_(scope, key, response).await
    }
    async fn release_idempotency_key(&self, scope: &str, key: &str) -> StoreResult<()> {
        self.release_(scope, key).await
    }

    async fn default_plan(&self, ws: &WorkspaceId) -> StoreResult<Option<CommissionPlan>> {
        self.default_plan_(ws).await
    }
    async fn commission(&self, ws: &WorkspaceId, id: &CommissionId) -> StoreResult<Commission> {
        self.commission_(ws, id).await
    }
    async fn list_commissions(
        &self,
        ws: &WorkspaceId,
        filter: &CommissionFilter,
        now: Timestamp,
        page: &Page,
    ) -> StoreResult<Paged<Commission>> {
        self.list_commissions_(ws, filter, now, page).await
    }
    async fn partner_wins_between(&self, ws: &WorkspaceId, partner: &PartnerId, from: Timestamp, to: Timestamp) -> StoreResult<u64> {
        self.partner_wins_between_(ws, partner, from, to).await
    }
    async fn referral_payments(&self, ws: &WorkspaceId, referral: &ReferralId) -> StoreResult<Vec<Payment>> {
        self.referral_payments_(ws, referral).await
    }
    async fn record_payment(&self, ws: &WorkspaceId, new: NewPayment) -> StoreResult<()> {
        self.record_payment_(ws, new).await
    }
    async fn referral_commissions(&self, ws: &WorkspaceId, referral: &ReferralId) -> StoreResult<Vec<Commission>> {
        self.referral_commissions_(ws, referral).await
    }
    async fn won_without_commission(
        &self,
        ws: &WorkspaceId,
        after: Option<&ReferralId>,
        limit: u32,
    ) -> StoreResult<(Vec<UnaccruedWin>, Option<ReferralId>)> {
        self.won_without_commission_(ws, after, limit).await
    }
    async fn book_linear_commissions(&self, ws: &WorkspaceId, set: &LinearAccrual, audit: &AuditEntry) -> StoreResult<LinearBooked> {
        self.book_linear_commissions_(ws, set, audit).await
    }
    async fn book_commissions(&self, ws: &WorkspaceId, commissions: &[Commission], reason: &str, audit: &AuditEntry) -> StoreResult<()> {
        self.book_commissions_(ws, commissions, reason, audit).await
    }
    async fn commission_entries(&self, ws: &WorkspaceId, id: &CommissionId, now: Timestamp) -> StoreResult<Vec<LedgerEntry>> {
        self.commission_entries_(ws, id, now).await
    }
    async fn adjustment_of(&self, ws: &WorkspaceId, id: &CommissionId) -> StoreResult<Option<CommissionId>> {
        self.adjustment_of_(ws, id).await
    }
    async fn write_ledger(&self, ws: &WorkspaceId, writes: Vec<LedgerWrite>, audit: &AuditEntry) -> StoreResult<()> {
        self.write_ledger_(ws, writes, audit).await
    }
    async fn release_due_commissions(&self, ws: Option<&WorkspaceId>, now: Timestamp) -> StoreResult<u64> {
        self.release_due_commissions_(ws, now).await
    }
    async fn partner_balances(&self, ws: &WorkspaceId, partner: &PartnerId, now: Timestamp) -> StoreResult<Vec<Balance>> {
        self.partner_balances_(ws, partner, now).await
    }
    async fn put_payout_details(&self, ws: &WorkspaceId, details: &SealedPayoutDetails, audit: &AuditEntry) -> StoreResult<()> {
        self.put_payout_details_(ws, details, audit).await
    }
    async fn payout_details(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Option<SealedPayoutDetails>> {
        self.payout_details_(ws, partner).await
    }
    async fn payout_details_of(&self, ws: &WorkspaceId, partners: &[PartnerId]) -> StoreResult<Vec<SealedPayoutDetails>> {
        self.payout_details_of_(ws, partners).await
    }
    async fn referral_company_names(
        &self,
        ws: &WorkspaceId,
        ids: &[ReferralId],
    ) -> StoreResult<std::collections::HashMap<ReferralId, String>> {
        self.referral_company_names_(ws, ids).await
    }
    async fn put_payout_settings(&self, ws: &WorkspaceId, settings: &SealedPayoutSettings, audit: &AuditEntry) -> StoreResult<()> {
        self.put_payout_settings_(ws, settings, audit).await
    }
    async fn payout_settings(&self, ws: &WorkspaceId) -> StoreResult<Option<SealedPayoutSettings>> {
        self.payout_settings_(ws).await
    }
    async fn create_payout(&self, ws: &WorkspaceId, new: &NewPayout, audit: &AuditEntry) -> StoreResult<PayoutCreated> {
        self.create_payout_(ws, new, audit).await
    }
    async fn payout(&self, ws: &WorkspaceId, id: &PayoutId) -> StoreResult<Payout> {
        self.payout_(ws, id).await
    }
    async fn list_payouts(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<Payout>> {
        self.list_payouts_(ws, page).await
    }
    async fn payout_commission_ids(&self, ws: &WorkspaceId, id: &PayoutId) -> StoreResult<Vec<(PartnerId, CommissionId)>> {
        self.payout_commission_ids_(ws, id).await
    }
    async fn mark_payout_paid(&self, ws: &WorkspaceId, id: &PayoutId, reference: Option<&str>, audit: &AuditEntry) -> StoreResult<()> {
        self.mark_payout_paid_(ws, id, reference, audit).await
    }
    async fn cancel_payout(&self, ws: &WorkspaceId, id: &PayoutId, audit: &AuditEntry) -> StoreResult<()> {
        self.cancel_payout_(ws, id, audit).await
    }

    // Tiers
    async fn put_tier_ladder(
        &self,
        ws: &WorkspaceId,
        ladder: &partnerloop_app::tiers::StoredLadder,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.put_tier_ladder_(ws, ladder, audit).await
    }
    async fn tier_ladder(&self, ws: &WorkspaceId) -> StoreResult<Option<partnerloop_app::tiers::StoredLadder>> {
        self.tier_ladder_(ws).await
    }
    async fn tier_ladder_workspaces(&self) -> StoreResult<Vec<WorkspaceId>> {
        self.tier_ladder_workspaces_().await
    }
    async fn tier_measures(
        &self,
        ws: &WorkspaceId,
        measure: partnerloop_domain::tier::Measure,
        from: Timestamp,
        to: Timestamp,
        only: Option<&PartnerId>,
    ) -> StoreResult<Vec<partnerloop_app::tiers::PartnerMeasure>> {
        self.tier_measures_(ws, measure, from, to, only).await
    }
    async fn tier_states(&self, ws: &WorkspaceId, only: Option<&PartnerId>) -> StoreResult<Vec<partnerloop_app::tiers::TierState>> {
        self.tier_states_(ws, only).await
    }
    async fn put_tier_states(&self, ws: &WorkspaceId, states: &[partnerloop_app::tiers::TierState], audit: &AuditEntry) -> StoreResult<()> {
        self.put_tier_states_(ws, states, audit).await
    }
    async fn change_partner_tier(&self, ws: &WorkspaceId, change: &partnerloop_app::tiers::TierChange) -> StoreResult<()> {
        self.change_partner_tier_(ws, change).await
    }
    async fn tier_history(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Vec<partnerloop_app::tiers::TierHistoryEntry>> {
        self.tier_history_(ws, partner).await
    }
}

impl SqlStore {
    async fn put_stage_labels_(
        &self,
        ws: &WorkspaceId,
        labels: &std::collections::BTreeMap<String, String>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query("DELETE FROM stage_labels WHERE workspace_id = $1").bind(ws.as_str()).execute(&mut *tx).await.map_err(map)?;
            for (stage, label) in labels {
                sqlx::query("INSERT INTO stage_labels (workspace_id, stage, label) VALUES ($1, $2, $3)")
                    .bind(ws.as_str())
                    .bind(stage)
                    .bind(label)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }
}
