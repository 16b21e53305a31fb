//! Payout details, the payer's settings and payout batches.
//!
//! Rules: a commission joins a batch only while it is payable and in no
//! other batch (`payout_id IS NULL` is re-checked by the UPDATE that takes
//! it, so concurrent batches cannot share a commission); a batch's items
//! are computed from the commissions it actually took, never from an
//! earlier read; a batch that ends up empty is not written at all.

use std::collections::HashMap;

use partnerloop_app::error::StoreError;
use partnerloop_app::ledger::{NewPayout, Payout, PayoutCreated, PayoutItem, SealedPayoutDetails, SealedPayoutSettings, SkippedPartner};
use partnerloop_app::store::{AuditEntry, Page, Paged, StoreResult};
use partnerloop_domain::commission::{CommissionId, PayoutId, PayoutStatus};
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::{Currency, Money};

use crate::errors::map;
use crate::ledger::entry_insert;
use crate::records::insert_audit;
use crate::time::{from_text, opt_from_text, to_text};
use crate::{Db, SqlStore, bulk_writer, finish_bulk, on_read, on_write};

const ITEM_CHUNK: usize = 1000;

use crate::rows::bad;

#[derive(sqlx::FromRow)]
struct PayoutRow {
    id: String,
    currency: String,
    status: String,
    total_minor: i64,
    commission_count: i64,
    created_at: String,
    created_by: String,
    paid_at: Option<String>,
    reference: Option<String>,
    updated_at: String,
}

impl PayoutRow {
    fn into_payout(self, items: Vec<PayoutItem>) -> Result<Payout, StoreError> {
        let currency = Currency::parse("currency", &self.currency).map_err(bad)?;
        Ok(Payout {
            id: PayoutId::from_string(self.id),
            status: PayoutStatus::parse("status", &self.status).map_err(bad)?,
            total: Money::from_minor(self.total_minor, currency),
            commission_count: u64::try_from(self.commission_count).unwrap_or(0),
            items,
            created_at: from_text(&self.created_at)?,
            created_by: self.created_by,
            paid_at: opt_from_text(self.paid_at.as_deref())?,
            reference: self.reference,
            updated_at: from_text(&self.updated_at)?,
        })
    }
}

const PAYOUT_COLS: &str = "id, currency, status, total_minor, commission_count, created_at, created_by, paid_at, reference, updated_at";

/// A batch's two passes over the open commissions: the balances per
/// partner, then taking the commissions of the partners paid.
struct BatchSql {
    group: &'static str,
    take: &'static str,
}

/// The batch's statements over `$commissions` (the table, with any hint),
/// the update spelled `$update`.
macro_rules! batch_sql {
    ($update:literal, $commissions:literal) => {
        BatchSql {
            group: concat!(
                "SELECT g.partner_id, g.total, g.n, d.method FROM
                   (SELECT partner_id, CAST(SUM(amount_minor) AS BIGINT) AS total, COUNT(*) AS n FROM ",
                $commissions,
                " WHERE workspace_id = $1 AND currency = $2 AND status = 'pending' AND available_at <= $3 AND payout_id IS NULL
                    GROUP BY partner_id) g
                 LEFT JOIN payout_details d ON d.workspace_id = $1 AND d.partner_id = g.partner_id ORDER BY g.partner_id"
            ),
            take: concat!(
                $update,
                " ",
                $commissions,
                " SET payout_id = $1, updated_at = $2
                 WHERE workspace_id = $3 AND currency = $4 AND status = 'pending' AND available_at <= $2 AND payout_id IS NULL
                 AND partner_id IN (SELECT partner_id FROM payout_items WHERE payout_id = $1)"
            ),
        }
    };
}

/// A batch reads most open commissions: on SQLite a scan in table order
/// (`NOT INDEXED`) touches each page once, where a walk of the due or the
/// partner index visits the rows — and dirties their pages — in random
/// order (a 1,000,000-commission batch: 13.6 s that way). The balances
/// are summed first and their partners' payout methods looked up after.
/// `OR IGNORE` (the row is stamped whole or not at all, and the values set
/// cannot break a constraint) spares SQLite a statement journal: a
/// multi-row update that may abort midway first copies every page it
/// changes to a temporary file, to undo a partial statement (1.2 s of a
/// 1,000,000-commission batch).
const SQLITE_BATCH: BatchSql = batch_sql!("UPDATE OR IGNORE", "commissions NOT INDEXED");
const POSTGRES_BATCH: BatchSql = batch_sql!("UPDATE", "commissions");

impl SqlStore {
    pub(crate) async fn put_payout_details_(&self, ws: &WorkspaceId, d: &SealedPayoutDetails, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO payout_details (workspace_id, partner_id, method, sealed, masked, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (workspace_id, partner_id) DO UPDATE
                 SET method = excluded.method, sealed = excluded.sealed, masked = excluded.masked, updated_at = excluded.updated_at",
            )
            .bind(ws.as_str())
            .bind(d.partner_id.as_str())
            .bind(&d.method)
            .bind(&d.sealed)
            .bind(&d.masked)
            .bind(to_text(d.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn payout_details_(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Option<SealedPayoutDetails>> {
        on_read!(self, |pool| {
            let row: Option<(String, String, String, String)> =
                sqlx::query_as("SELECT method, sealed, masked, updated_at FROM payout_details WHERE workspace_id = $1 AND partner_id = $2")
                    .bind(ws.as_str())
                    .bind(partner.as_str())
                    .fetch_optional(pool)
                    .await
                    .map_err(map)?;
            row.map(|(method, sealed, masked, at)| {
                Ok(SealedPayoutDetails { partner_id: partner.clone(), method, sealed, masked, updated_at: from_text(&at)? })
            })
            .transpose()
        })
    }

    pub(crate) async fn payout_details_of_(&self, ws: &WorkspaceId, partners: &[PartnerId]) -> StoreResult<Vec<SealedPayoutDetails>> {
        let mut out = Vec::with_capacity(partners.len());
        for chunk in partners.chunks(ITEM_CHUNK) {
            let rows: Vec<(String, String, String, String, String)> = on_read!(self, |pool| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT partner_id, method, sealed, masked, updated_at FROM payout_details WHERE workspace_id = ",
                );
                q.push_bind(ws.as_str()).push(" AND partner_id IN (");
                let mut list = q.separated(", ");
                for p in chunk {
                    list.push_bind(p.as_str());
                }
                q.push(")");
                q.build_query_as().fetch_all(pool).await.map_err(map)?
            });
            for (partner, method, sealed, masked, at) in rows {
                out.push(SealedPayoutDetails {
                    partner_id: PartnerId::from_string(partner),
                    method,
                    sealed,
                    masked,
                    updated_at: from_text(&at)?,
                });
            }
        }
        Ok(out)
    }

    pub(crate) async fn put_payout_settings_(&self, ws: &WorkspaceId, s: &SealedPayoutSettings, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO payout_settings (workspace_id, minimum_minor, minimum_currency, sealed, masked, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (workspace_id) DO UPDATE SET minimum_minor = excluded.minimum_minor, minimum_currency = excluded.minimum_currency,
                 sealed = excluded.sealed, masked = excluded.masked, updated_at = excluded.updated_at",
            )
            .bind(ws.as_str())
            .bind(s.minimum.minor())
            .bind(s.minimum.currency().code())
            .bind(&s.sealed)
            .bind(&s.masked)
            .bind(to_text(s.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn payout_settings_(&self, ws: &WorkspaceId) -> StoreResult<Option<SealedPayoutSettings>> {
        on_read!(self, |pool| {
            let row: Option<(i64, String, String, String, String)> = sqlx::query_as(
                "SELECT minimum_minor, minimum_currency, sealed, masked, updated_at FROM payout_settings WHERE workspace_id = $1",
            )
            .bind(ws.as_str())
            .fetch_optional(pool)
            .await
            .map_err(map)?;
            row.map(|(minor, currency, sealed, masked, at)| {
                Ok(SealedPayoutSettings {
                    minimum: Money::from_minor(minor, Currency::parse("currency", &currency).map_err(bad)?),
                    sealed,
                    masked,
                    updated_at: from_text(&at)?,
                })
            })
            .transpose()
        })
    }

    pub(crate) async fn create_payout_(&self, ws: &WorkspaceId, new: &NewPayout, audit: &AuditEntry) -> StoreResult<PayoutCreated> {
        let currency = new.currency.code();
        let minimum = if new.minimum.currency() == new.currency { new.minimum.minor().max(1) } else { 1 };
        let at = to_text(new.at);
        let id = new.id.as_str();
        let sql = match self.db {
            Db::Sqlite { .. } => &SQLITE_BATCH,
            Db::Postgres(_) => &POSTGRES_BATCH,
        };
        let sqlite = matches!(self.db, Db::Sqlite { .. });
        let created = on_write!(self, |pool| {
            let mut writer = bulk_writer!(pool, sqlite);
            let mut tx = sqlx::Connection::begin(&mut *writer.conn).await.map_err(map)?;
            let groups: Vec<(String, i64, i64, Option<String>)> =
                sqlx::query_as(sql.group).bind(ws.as_str()).bind(currency).bind(&at).fetch_all(&mut *tx).await.map_err(map)?;
            let mut skipped = Vec::new();
            let mut chosen: Vec<(String, String, i64, i64)> = Vec::new();
            let mut taking: u64 = 0;
            for (partner, sum, count, method) in groups {
                let balance = Money::from_minor(sum, new.currency);
                // A partner without payout details is paid all the same: its
                // line shows in the CSV report until it gives them.
                let reason = match method {
                    _ if sum <= 0 => Some("the balance is not positive: a clawback is outstanding".to_owned()),
                    _ if sum < minimum => Some(format!("the balance is below the minimum {}", Money::from_minor(minimum, new.currency))),
                    m => {
                        taking += u64::try_from(count).unwrap_or(0);
                        chosen.push((partner.clone(), m.unwrap_or_else(|| "none".to_owned()), sum, count));
                        None
                    }
                };
                if let Some(reason) = reason {
                    skipped.push(SkippedPartner { partner_id: PartnerId::from_string(partner), balance, reason });
                }
            }
            if chosen.is_empty() {
                tx.rollback().await.map_err(map)?;
                finish_bulk!(writer);
                return Ok::<_, StoreError>(PayoutCreated { payout: None, skipped });
            }
            sqlx::query(
                "INSERT INTO payouts (id, workspace_id, currency, status, total_minor, commission_count, created_at, created_by, paid_at, reference, updated_at)
                 VALUES ($1, $2, $3, 'draft', 0, 0, $4, $5, NULL, NULL, $4)",
            )
            .bind(id)
            .bind(ws.as_str())
            .bind(currency)
            .bind(&at)
            .bind(&new.actor)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            for chunk in chosen.chunks(ITEM_CHUNK) {
                let mut q =
                    sqlx::QueryBuilder::new("INSERT INTO payout_items (payout_id, partner_id, amount_minor, commission_count, method) ");
                q.push_values(chunk, |mut b, (partner, method, sum, count)| {
                    b.push_bind(id).push_bind(partner.as_str()).push_bind(*sum).push_bind(*count).push_bind(method.as_str());
                });
                q.build().execute(&mut *tx).await.map_err(map)?;
            }
            let taken = sqlx::query(sql.take)
                .bind(id)
                .bind(&at)
                .bind(ws.as_str())
                .bind(currency)
                .execute(&mut *tx)
                .await
                .map_err(map)?
                .rows_affected();
            // On SQLite the balances were read in the snapshot this write
            // lock extends (a write after the read would have failed the
            // transaction): the items written from them are what the batch
            // took, as its count confirms. Otherwise (PostgreSQL reads each
            // statement afresh) the items are summed again from what the
            // batch really took.
            if !sqlite || taken != taking {
                sqlx::query(
                    "UPDATE payout_items SET
                       amount_minor = COALESCE((SELECT CAST(SUM(c.amount_minor) AS BIGINT) FROM commissions c
                                                WHERE c.payout_id = payout_items.payout_id AND c.partner_id = payout_items.partner_id), 0),
                       commission_count = (SELECT COUNT(*) FROM commissions c
                                           WHERE c.payout_id = payout_items.payout_id AND c.partner_id = payout_items.partner_id)
                     WHERE payout_id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
                // A concurrent change (a reversal, another batch) may have
                // left an item short of the minimum: give its commissions back.
                let short = "SELECT partner_id FROM payout_items WHERE payout_id = $1 AND amount_minor < $2";
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE commissions SET payout_id = NULL WHERE payout_id = $1 AND partner_id IN ({short})"
                )))
                .bind(id)
                .bind(minimum)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
                sqlx::query("DELETE FROM payout_items WHERE payout_id = $1 AND amount_minor < $2")
                    .bind(id)
                    .bind(minimum)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
            }
            // The batch itself records when and by whom its commissions were
            // taken (each one's `batched` entry is read from it).
            let batched: i64 =
                sqlx::query_scalar("SELECT CAST(COALESCE(SUM(commission_count), 0) AS BIGINT) FROM payout_items WHERE payout_id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map)?;
            if batched == 0 {
                tx.rollback().await.map_err(map)?;
                finish_bulk!(writer);
                return Ok(PayoutCreated { payout: None, skipped });
            }
            sqlx::query(
                "UPDATE payouts SET total_minor = (SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM payout_items WHERE payout_id = $1),
                 commission_count = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(batched)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)?;
            finish_bulk!(writer);
            Ok(PayoutCreated { payout: None, skipped })
        })?;
        self.checkpoint_in_background();
        let payout = self.payout_(ws, &new.id).await?;
        Ok(PayoutCreated { payout: Some(payout), skipped: created.skipped })
    }

    pub(crate) async fn payout_(&self, ws: &WorkspaceId, id: &PayoutId) -> StoreResult<Payout> {
        let row: PayoutRow = on_read!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PAYOUT_COLS} FROM payouts WHERE workspace_id = $1 AND id = $2")))
                .bind(ws.as_str())
                .bind(id.as_str())
                .fetch_one(pool)
                .await
                .map_err(map)?
        });
        let mut items = self.items_of(std::slice::from_ref(&row.id)).await?;
        let mine = items.remove(&row.id).unwrap_or_default();
        row.into_payout(mine)
    }

    pub(crate) async fn list_payouts_(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<Payout>> {
        let rows: Vec<PayoutRow> = on_read!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PAYOUT_COLS} FROM payouts WHERE workspace_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
            )))
            .bind(ws.as_str())
            .bind(page.after.as_deref())
            .bind(i64::from(page.limit) + 1)
            .fetch_all(pool)
            .await
            .map_err(map)?
        });
        // Every page's items in one read.
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut items = self.items_of(&ids).await?;
        let out = rows
            .into_iter()
            .map(|r| {
                let mine = items.remove(&r.id).unwrap_or_default();
                r.into_payout(mine)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Paged::from_rows(out, page.limit, |p: &Payout| p.id.to_string()))
    }

    /// The items of some batches, with their partners' names, per batch id.
    async fn items_of(&self, payout_ids: &[String]) -> StoreResult<HashMap<String, Vec<PayoutItem>>> {
        let mut out: HashMap<String, Vec<PayoutItem>> = HashMap::new();
        if payout_ids.is_empty() {
            return Ok(out);
        }
        let rows: Vec<(String, String, String, i64, String, i64, String)> = on_read!(self, |pool| {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT i.payout_id, i.partner_id, p.name, i.amount_minor, o.currency, i.commission_count, i.method FROM payout_items i
                 JOIN payouts o ON o.id = i.payout_id JOIN partners p ON p.id = i.partner_id WHERE i.payout_id IN (",
            );
            let mut list = q.separated(", ");
            for id in payout_ids {
                list.push_bind(id.as_str());
            }
            q.push(") ORDER BY i.payout_id, i.partner_id");
            q.build_query_as().fetch_all(pool).await.map_err(map)?
        });
        for (payout, partner, name, minor, currency, count, method) in rows {
            out.entry(payout).or_default().push(PayoutItem {
                partner_id: PartnerId::from_string(partner),
                partner_name: name,
                amount: Money::from_minor(minor, Currency::parse("currency", &currency).map_err(bad)?),
                commission_count: u64::try_from(count).unwrap_or(0),
                method,
            });
        }
        Ok(out)
    }

    pub(crate) async fn payout_commission_ids_(&self, ws: &WorkspaceId, id: &PayoutId) -> StoreResult<Vec<(PartnerId, CommissionId)>> {
        on_read!(self, |pool| {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT partner_id, id FROM commissions WHERE workspace_id = $1 AND payout_id = $2 ORDER BY partner_id, id")
                    .bind(ws.as_str())
                    .bind(id.as_str())
                    .fetch_all(pool)
                    .await
                    .map_err(map)?;
            Ok(rows.into_iter().map(|(p, c)| (PartnerId::from_string(p), CommissionId::from_string(c))).collect())
        })
    }

    pub(crate) async fn mark_payout_paid_(
        &self,
        ws: &WorkspaceId,
        id: &PayoutId,
        reference: Option<&str>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.close_draft(ws, id, Some(reference), audit).await
    }

    pub(crate) async fn cancel_payout_(&self, ws: &WorkspaceId, id: &PayoutId, audit: &AuditEntry) -> StoreResult<()> {
        self.close_draft(ws, id, None, audit).await
    }

    /// Ends a draft: paid (with the transfer's reference, when known), its
    /// commissions `paid`; or cancelled (`None`), its commissions free again.
    async fn close_draft(&self, ws: &WorkspaceId, id: &PayoutId, paid: Option<Option<&str>>, audit: &AuditEntry) -> StoreResult<()> {
        let at = to_text(audit.at);
        let paid_reference = paid.flatten();
        let (status, kind, reason, release) = match paid {
            Some(r) => (
                "paid",
                "paid",
                format!("paid in batch {id}{}", r.map(|r| format!(", reference {r}")).unwrap_or_default()),
                "UPDATE commissions SET status = 'paid', updated_at = $1 WHERE payout_id = $2",
            ),
            None => (
                "cancelled",
                "unbatched",
                format!("payout batch {id} cancelled"),
                "UPDATE commissions SET payout_id = NULL, updated_at = $1 WHERE payout_id = $2",
            ),
        };
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let done = sqlx::query(
                "UPDATE payouts SET status = $1, paid_at = $2, reference = $3, updated_at = $4
                 WHERE workspace_id = $5 AND id = $6 AND status = 'draft'",
            )
            .bind(status)
            .bind(paid.map(|_| at.as_str()))
            .bind(paid_reference)
            .bind(&at)
            .bind(ws.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Stale);
            }
            // A batched commission stays payable until this moment: a
            // reversal needs it out of every batch. Unbatched, it no longer
            // names the batch, so the `batched` entry the batch implied is
            // written first (unless stored already, as before migration 0016).
            if paid.is_none() {
                sqlx::query(concat!(
                    entry_insert!(),
                    "SELECT c.workspace_id, c.id, 'batched', c.amount_minor, p.created_at, p.created_by, $1, c.payout_id
                     FROM commissions c JOIN payouts p ON p.id = c.payout_id WHERE c.payout_id = $2
                     AND NOT EXISTS (SELECT 1 FROM commission_entries e WHERE e.commission_id = c.id AND e.kind = 'batched' AND e.payout_id = c.payout_id)"
                ))
                .bind(format!("in payout batch {id}"))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            }
            sqlx::query(concat!(
                entry_insert!(),
                "SELECT workspace_id, id, $1, amount_minor, $2, $3, $4, payout_id FROM commissions WHERE payout_id = $5"
            ))
            .bind(kind)
            .bind(&at)
            .bind(&audit.actor)
            .bind(&reason)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            sqlx::query(release).bind(&at).bind(id.as_str()).execute(&mut *tx).await.map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }
}
