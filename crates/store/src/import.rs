//! CSV imports: one transaction for the whole file, statements prepared
//! once and reused, so 100,000 rows take seconds.

use partnerloop_app::error::StoreError;
use partnerloop_app::matching::referral_key;
use partnerloop_app::referrals::claim_keys;
use partnerloop_app::store::{AuditEntry, ImportBatch, StoreResult, TimelineEvent};

use partnerloop_domain::deal::Deal;
use partnerloop_domain::partner::Partner;

use partnerloop_domain::ids::{PartnerId, WorkspaceId};

use partnerloop_domain::referral::Referral;

use crate::errors::map;
use crate::records::{insert_audit, insert_partner_rows};
use crate::referral_rows::push_referral_row;
use crate::referral_writes::{insert_claims, insert_deal, log_name};
use crate::time::{opt_to_text, to_text};
use crate::{SqlStore, on_read, on_write};

/// Rows per multi-row INSERT (8 parameters each stays far below SQLite's limit).
const CHUNK: usize = 500;

impl SqlStore {
    pub(crate) async fn import_(&self, ws: &WorkspaceId, batch: ImportBatch) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let mut first_referrals: std::collections::HashMap<&str, jiff::Timestamp> = std::collections::HashMap::new();
            // Accounts come by the hundred thousand: many rows per statement.
            for chunk in batch.accounts.chunks(CHUNK) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO accounts (workspace_id, id, name, domain, status, owner_email, created_at, updated_at) ",
                );
                q.push_values(chunk, |mut b, a| {
                    b.push_bind(ws.as_str())
                        .push_bind(a.id.as_str())
                        .push_bind(a.name.as_str())
                        .push_bind(a.domain.as_str())
                        .push_bind(a.status.as_str())
                        .push_bind(a.owner_email.as_ref().map(|e| e.as_str()))
                        .push_bind(to_text(a.created_at))
                        .push_bind(to_text(a.updated_at));
                });
                q.build().execute(&mut *tx).await.map_err(map)?;
                let mut q = sqlx::QueryBuilder::new("INSERT INTO name_index_log (workspace_id, entity_id, name, active) ");
                q.push_values(chunk, |mut b, a| {
                    b.push_bind(ws.as_str()).push_bind(a.id.as_str()).push_bind(a.name.as_str()).push_bind(true);
                });
                q.build().execute(&mut *tx).await.map_err(map)?;
            }
            for p in &batch.partners {
                insert_partner_rows!(tx, ws, p);
            }
            for d in &batch.deals {
                insert_deal!(tx, ws, d);
            }
            // Historic referrals, their deals and timelines: many rows per statement.
            for chunk in batch.referrals.chunks(CHUNK / 2) {
                let deals: Vec<&Deal> = chunk.iter().filter_map(|r| r.deal.as_ref()).collect();
                if !deals.is_empty() {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO deals (workspace_id, id, name, company_name, company_domain, stage, amount_minor, currency, source, owner_email, created_at, closed_at, updated_at) ",
                    );
                    q.push_values(&deals, |mut b, d| {
                        b.push_bind(ws.as_str())
                            .push_bind(d.id.as_str())
                            .push_bind(d.name.as_str())
                            .push_bind(d.company_name.as_str())
                            .push_bind(d.company_domain.as_ref().map(|c| c.as_str()))
                            .push_bind(d.stage.as_str())
                            .push_bind(d.amount.minor())
                            .push_bind(d.amount.currency().code())
                            .push_bind(d.source.as_str())
                            .push_bind(d.owner_email.as_ref().map(|e| e.as_str()))
                            .push_bind(to_text(d.created_at))
                            .push_bind(opt_to_text(d.closed_at))
                            .push_bind(to_text(d.updated_at));
                    });
                    q.build().execute(&mut *tx).await.map_err(map)?;
                }
                let mut q =
                    sqlx::QueryBuilder::new(concat!("INSERT INTO referrals (workspace_id, ", crate::referral_rows::referral_cols!(), ") "));
                q.push_values(chunk, |mut b, r| {
                    push_referral_row!(b, ws.as_str(), &r.referral);
                });
                q.build().execute(&mut *tx).await.map_err(map)?;
                let events: Vec<(&Referral, usize, &TimelineEvent)> =
                    chunk.iter().flat_map(|r| r.events.iter().enumerate().map(move |(n, e)| (&r.referral, n, e))).collect();
                if !events.is_empty() {
                    let mut q =
                        sqlx::QueryBuilder::new("INSERT INTO referral_events (id, workspace_id, referral_id, at, kind, actor, summary) ");
                    q.push_values(&events, |mut b, (r, n, e)| {
                        b.push_bind(format!("{}_{n:03}", partnerloop_app::ids::event_id(e.at)))
                            .push_bind(ws.as_str())
                            .push_bind(r.id.as_str())
                            .push_bind(to_text(e.at))
                            .push_bind(e.kind.as_str())
                            .push_bind(e.actor.as_str())
                            .push_bind(e.summary.as_str());
                    });
                    q.build().execute(&mut *tx).await.map_err(map)?;
                }
                for r in chunk {
                    let referral: &Referral = &r.referral;
                    if r.claim {
                        insert_claims!(tx, ws, referral)?;
                        log_name!(tx, ws, referral_key(referral.partner_id.as_str(), referral.id.as_str()), &referral.company_name, true);
                    }
                    let first = first_referrals.entry(referral.partner_id.as_str()).or_insert(referral.created_at);
                    *first = (*first).min(referral.created_at);
                }
            }
            for (partner, at) in first_referrals {
                sqlx::query(
                    "UPDATE partners SET first_referral_at = $1 WHERE workspace_id = $2 AND id = $3 AND (first_referral_at IS NULL OR first_referral_at > $1)",
                )
                .bind(to_text(at))
                .bind(ws.as_str())
                .bind(partner)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            }
            let audit: &AuditEntry = &batch.audit;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })?;
        self.refresh_statistics().await
    }

    pub(crate) async fn account_domains_(&self, ws: &WorkspaceId) -> StoreResult<std::collections::HashSet<String>> {
        on_read!(self, |pool| {
            let rows: Vec<String> = sqlx::query_scalar("SELECT domain FROM accounts WHERE workspace_id = $1")
                .bind(ws.as_str())
                .fetch_all(pool)
                .await
                .map_err(map)?;
            Ok(rows.into_iter().collect())
        })
    }

    pub(crate) async fn partner_ids_by_contact_email_(
        &self,
        ws: &WorkspaceId,
    ) -> StoreResult<std::collections::HashMap<String, PartnerId>> {
        on_read!(self, |pool| {
            let rows: Vec<(String, String)> = sqlx::query_as("SELECT email, partner_id FROM partner_contacts WHERE workspace_id = $1")
                .bind(ws.as_str())
                .fetch_all(pool)
                .await
                .map_err(map)?;
            Ok(rows.into_iter().map(|(e, p)| (e, PartnerId::from_string(p))).collect())
        })
    }
}
