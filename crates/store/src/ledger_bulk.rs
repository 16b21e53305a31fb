//! Ledger reads by referral and the backfill of many accruals at once.
//!
//! Rules: a backfill chunk is one transaction — its commissions (each row
//! its own accrual record: who booked it and why), the announcement of
//! those already past the release mark, and the audit row — written with
//! multi-row statements; a chunk that meets an accrual booked meanwhile
//! (the unique index) fails whole and the caller's next run picks up what
//! is left.

use std::collections::{BTreeMap, HashMap};

use partnerloop_app::error::StoreError;
use partnerloop_app::ledger::UnaccruedWin;
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_domain::commission::{Commission, CommissionKind};
use partnerloop_domain::ids::{PartnerId, PlanId, WorkspaceId};
use partnerloop_domain::referral::ReferralId;
use partnerloop_domain::{Currency, Money};

use crate::errors::map;
use crate::ledger::{CommissionRow, ReleasedGroup, commission_cols, lock_release_mark, stored_status};
use crate::records::insert_audits;
use crate::time::{from_text, to_text};
use crate::{SqlStore, on_read, on_write};

/// Rows per multi-row INSERT: 19 columns × 1,500 stays under SQLite's 32,766 parameters.
const BOOK_CHUNK: usize = 1500;

impl SqlStore {
    pub(crate) async fn referral_commissions_(&self, ws: &WorkspaceId, referral: &ReferralId) -> StoreResult<Vec<Commission>> {
        on_read!(self, |pool| {
            let rows: Vec<CommissionRow> = sqlx::query_as(concat!(
                "SELECT ",
                commission_cols!(),
                " FROM commissions WHERE workspace_id = $1 AND referral_id = $2 ORDER BY id"
            ))
            .bind(ws.as_str())
            .bind(referral.as_str())
            .fetch_all(pool)
            .await
            .map_err(map)?;
            rows.into_iter().map(Commission::try_from).collect()
        })
    }

    pub(crate) async fn referral_company_names_(&self, ws: &WorkspaceId, ids: &[ReferralId]) -> StoreResult<HashMap<ReferralId, String>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(BOOK_CHUNK) {
            let rows: Vec<(String, String)> = on_read!(self, |pool| {
                let mut q = sqlx::QueryBuilder::new("SELECT id, company_name FROM referrals WHERE workspace_id = ");
                q.push_bind(ws.as_str()).push(" AND id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                q.push(")");
                q.build_query_as().fetch_all(pool).await.map_err(map)?
            });
            out.extend(rows.into_iter().map(|(id, name)| (ReferralId::from_string(id), name)));
        }
        Ok(out)
    }

    pub(crate) async fn won_without_commission_(
        &self,
        ws: &WorkspaceId,
        after: Option<&ReferralId>,
        limit: u32,
    ) -> StoreResult<(Vec<UnaccruedWin>, Option<ReferralId>)> {
        type Row = (String, String, Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>);
        // Through the writer: a backfill's look over the whole won history
        // goes through its bounded page cache, not a reader's memory map.
        on_write!(self, |pool| {
            // The status index holds the id, so a referral already accrued
            // is passed over on the index and the accrual index alone.
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT r.id, r.partner_id, r.amount_minor, r.amount_currency, r.closed_at, p.commission_plan_id, p.tier
                 FROM (SELECT workspace_id, id, partner_id, amount_minor, amount_currency, closed_at FROM referrals r0
                       WHERE workspace_id = $1 AND status = 'won' AND id > $2
                         AND NOT EXISTS (SELECT 1 FROM commissions c WHERE c.workspace_id = r0.workspace_id AND c.referral_id = r0.id AND c.kind = 'accrual')
                       ORDER BY id LIMIT $3) r
                 JOIN partners p ON p.id = r.partner_id ORDER BY r.id",
            )
            .bind(ws.as_str())
            .bind(after.map_or("", |a| a.as_str()))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(map)?;
            let last = rows.last().map(|r| ReferralId::from_string(r.0.clone()));
            let mut out = Vec::with_capacity(rows.len());
            for (id, partner, minor, currency, closed_at, plan, tier) in rows {
                let (Some(minor), Some(currency), Some(closed_at)) = (minor, currency, closed_at) else { continue };
                let currency = Currency::parse("currency", &currency).map_err(|e| StoreError::Other(e.to_string().into()))?;
                out.push(UnaccruedWin {
                    referral_id: ReferralId::from_string(id),
                    partner_id: PartnerId::from_string(partner),
                    amount: Money::from_minor(minor, currency),
                    won_at: from_text(&closed_at)?,
                    partner_plan: plan.map(PlanId::from_string),
                    partner_tier: tier,
                });
            }
            Ok((out, last))
        })
    }

    pub(crate) async fn book_commissions_(
        &self,
        ws: &WorkspaceId,
        commissions: &[Commission],
        reason: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            for chunk in commissions.chunks(BOOK_CHUNK) {
                let mut q = sqlx::QueryBuilder::new(concat!(
                    "INSERT INTO commissions (workspace_id, ",
                    commission_cols!(),
                    ", booked_by, booked_reason) "
                ));
                q.push_values(chunk, |mut b, c| {
                    b.push_bind(ws.as_str())
                        .push_bind(c.id.as_str())
                        .push_bind(c.partner_id.as_str())
                        .push_bind(c.referral_id.as_str())
                        .push_bind(c.plan_id.as_ref().map(|p| p.as_str()))
                        .push_bind(c.kind.as_str())
                        .push_bind(i32::try_from(c.won_seq).unwrap_or(i32::MAX))
                        .push_bind(c.amount.minor())
                        .push_bind(c.amount.currency().code())
                        .push_bind(stored_status(c.status))
                        .push_bind(c.rule.as_str())
                        .push_bind(to_text(c.available_at))
                        .push_bind(to_text(c.created_at))
                        .push_bind(to_text(c.updated_at))
                        .push_bind(c.payout_id.as_ref().map(|p| p.as_str()))
                        .push_bind(c.adjusts.as_ref().map(|p| p.as_str()))
                        .push_bind(c.payment_id.as_ref().map_or("", |p| p.as_str()))
                        .push_bind(audit.actor.as_str())
                        .push_bind(reason);
                });
                q.build().execute(&mut *tx).await.map_err(map)?;
            }
            // What is already due by the release mark was passed by the
            // release job: announce it here, per partner and currency.
            let mark = lock_release_mark!(tx, ws);
            let mut due: BTreeMap<(&str, String), (i64, i64)> = BTreeMap::new();
            for c in commissions.iter().filter(|c| c.kind != CommissionKind::Adjustment && to_text(c.available_at) <= mark) {
                let sum = due.entry((c.partner_id.as_str(), c.amount.currency().code().to_owned())).or_default();
                sum.0 += c.amount.minor();
                sum.1 += 1;
            }
            let mut audits = Vec::with_capacity(due.len() + 1);
            for ((partner, currency), (sum, count)) in due {
                audits.push(ReleasedGroup(ws.to_string(), partner.to_owned(), currency, sum, count).audit(audit.at)?.1);
            }
            audits.push(audit.clone());
            insert_audits!(tx, ws, &audits);
            tx.commit().await.map_err(map)
        })
    }
}
