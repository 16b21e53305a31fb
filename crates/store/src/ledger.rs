//! The commissions ledger: commission rows and their append-only entries.
//!
//! Rules: every statement that changes a commission's status or batch is
//! paired, in the same transaction, with the INSERT of its entries; the
//! pairing reads the same rows (SQLite has one writer; on PostgreSQL the
//! release runs as one data-modifying statement).

use jiff::Timestamp;
use partnerloop_app::error::StoreError;
use partnerloop_app::ledger::{Balance, CommissionFilter, LedgerEntry, LedgerWrite};
use partnerloop_app::store::{AuditEntry, Page, Paged, StoreResult};
use partnerloop_domain::commission::{Commission, CommissionId, CommissionKind, CommissionStatus, EntryKind, PaymentId, PayoutId};
use partnerloop_domain::ids::{PartnerId, PlanId, WorkspaceId};
use partnerloop_domain::referral::ReferralId;
use partnerloop_domain::{Currency, Money};

use crate::errors::map;
use crate::records::insert_audit;
use crate::time::{from_text, to_text};
use crate::{Db, SqlStore, on_read, on_write};

macro_rules! commission_cols {
    () => {
        "id, partner_id, referral_id, plan_id, kind, won_seq, amount_minor, currency, status, rule, available_at, created_at, updated_at, payout_id, adjusts_id, payment_id"
    };
}
pub(crate) use commission_cols;

/// The columns of an entry copied from its commission, for INSERT … SELECT.
macro_rules! entry_insert {
    () => {
        "INSERT INTO commission_entries (workspace_id, commission_id, kind, amount_minor, at, actor, reason, payout_id) "
    };
}
pub(crate) use entry_insert;

use crate::rows::bad;

/// Commissions released together: workspace, partner, currency, sum, count.
#[derive(sqlx::FromRow)]
struct ReleasedGroup(String, String, String, i64, i64);

impl ReleasedGroup {
    fn audit(&self, at: Timestamp) -> StoreResult<(WorkspaceId, AuditEntry)> {
        let currency = Currency::parse("currency", &self.2).map_err(bad)?;
        let entry = AuditEntry {
            at,
            actor: "scheduler".into(),
            action: "commission.released".into(),
            entity: "partner".into(),
            entity_id: self.1.clone(),
            before: None,
            after: Some(serde_json::json!({
                "amount": {"amount": Money::from_minor(self.3, currency).amount_string(), "currency": currency.code()},
                "commissions": self.4,
            })),
        };
        Ok((WorkspaceId::from_string(&self.0), entry))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CommissionRow {
    id: String,
    partner_id: String,
    referral_id: String,
    plan_id: Option<String>,
    kind: String,
    won_seq: i32,
    amount_minor: i64,
    currency: String,
    status: String,
    rule: String,
    available_at: String,
    created_at: String,
    updated_at: String,
    payout_id: Option<String>,
    adjusts_id: Option<String>,
    payment_id: String,
}

impl TryFrom<CommissionRow> for Commission {
    type Error = StoreError;
    fn try_from(r: CommissionRow) -> Result<Self, StoreError> {
        Ok(Commission {
            id: CommissionId::from_string(r.id),
            partner_id: PartnerId::from_string(r.partner_id),
            referral_id: ReferralId::from_string(r.referral_id),
            plan_id: r.plan_id.map(PlanId::from_string),
            kind: CommissionKind::parse("kind", &r.kind).map_err(bad)?,
            won_seq: u32::try_from(r.won_seq).map_err(|_| StoreError::Other("won_seq out of range".into()))?,
            amount: Money::from_minor(r.amount_minor, Currency::parse("currency", &r.currency).map_err(bad)?),
            status: CommissionStatus::parse("status", &r.status).map_err(bad)?,
            rule: r.rule,
            available_at: from_text(&r.available_at)?,
            created_at: from_text(&r.created_at)?,
            updated_at: from_text(&r.updated_at)?,
            payout_id: r.payout_id.map(PayoutId::from_string),
            adjusts: r.adjusts_id.map(CommissionId::from_string),
            payment_id: Some(r.payment_id).filter(|p| !p.is_empty()).map(PaymentId::from_string),
        })
    }
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    seq: i64,
    commission_id: String,
    partner_id: String,
    referral_id: String,
    plan_id: Option<String>,
    kind: String,
    amount_minor: i64,
    currency: String,
    at: String,
    actor: String,
    reason: String,
    payout_id: Option<String>,
}

impl TryFrom<EntryRow> for LedgerEntry {
    type Error = StoreError;
    fn try_from(r: EntryRow) -> Result<Self, StoreError> {
        Ok(LedgerEntry {
            seq: r.seq,
            commission_id: CommissionId::from_string(r.commission_id),
            partner_id: PartnerId::from_string(r.partner_id),
            referral_id: ReferralId::from_string(r.referral_id),
            plan_id: r.plan_id.map(PlanId::from_string),
            kind: EntryKind::parse("kind", &r.kind).map_err(bad)?,
            amount: Money::from_minor(r.amount_minor, Currency::parse("currency", &r.currency).map_err(bad)?),
            at: from_text(&r.at)?,
            actor: r.actor,
            reason: r.reason,
            payout_id: r.payout_id.map(PayoutId::from_string),
        })
    }
}

/// Applies ledger writes inside the transaction `$tx`, entries at `$at` by `$actor`.
macro_rules! apply_ledger {
    ($tx:expr, $ws:expr, $writes:expr, $at:expr, $actor:expr) => {{
        let at = $crate::time::to_text($at);
        let actor: &str = $actor;
        for w in $writes {
            match w {
                partnerloop_app::ledger::LedgerWrite::Book { commission: c, reason } => {
                    sqlx::query(concat!(
                        "INSERT INTO commissions (workspace_id, ",
                        $crate::ledger::commission_cols!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
                    ))
                    .bind($ws.as_str())
                    .bind(c.id.as_str())
                    .bind(c.partner_id.as_str())
                    .bind(c.referral_id.as_str())
                    .bind(c.plan_id.as_ref().map(|p| p.as_str()))
                    .bind(c.kind.as_str())
                    .bind(i32::try_from(c.won_seq).unwrap_or(i32::MAX))
                    .bind(c.amount.minor())
                    .bind(c.amount.currency().code())
                    .bind(c.status.as_str())
                    .bind(&c.rule)
                    .bind($crate::time::to_text(c.available_at))
                    .bind($crate::time::to_text(c.created_at))
                    .bind($crate::time::to_text(c.updated_at))
                    .bind(c.payout_id.as_ref().map(|p| p.as_str()))
                    .bind(c.adjusts.as_ref().map(|p| p.as_str()))
                    .bind(c.payment_id.as_ref().map_or("", |p| p.as_str()))
                    .execute(&mut *$tx)
                    .await
                    .map_err(map)?;
                    let kind = match c.kind {
                        partnerloop_domain::commission::CommissionKind::Adjustment => "adjusted",
                        _ => "accrued",
                    };
                    sqlx::query(concat!(
                        $crate::ledger::entry_insert!(),
                        "SELECT workspace_id, id, $1, amount_minor, $2, $3, $4, NULL
                         FROM commissions WHERE id = $5"
                    ))
                    .bind(kind)
                    .bind(&at)
                    .bind(actor)
                    .bind(reason.as_str())
                    .bind(c.id.as_str())
                    .execute(&mut *$tx)
                    .await
                    .map_err(map)?;
                }
                partnerloop_app::ledger::LedgerWrite::Reverse { id, reason } => {
                    let done = sqlx::query(
                        "UPDATE commissions SET status = 'reversed', updated_at = $1
                         WHERE workspace_id = $2 AND id = $3 AND status IN ('pending', 'payable') AND payout_id IS NULL",
                    )
                    .bind(&at)
                    .bind($ws.as_str())
                    .bind(id.as_str())
                    .execute(&mut *$tx)
                    .await
                    .map_err(map)?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Stale);
                    }
                    sqlx::query(concat!(
                        $crate::ledger::entry_insert!(),
                        "SELECT workspace_id, id, 'reversed', -amount_minor, $1, $2, $3, NULL
                         FROM commissions WHERE id = $4"
                    ))
                    .bind(&at)
                    .bind(actor)
                    .bind(reason.as_str())
                    .bind(id.as_str())
                    .execute(&mut *$tx)
                    .await
                    .map_err(map)?;
                }
            }
        }
    }};
}
pub(crate) use apply_ledger;

/// The status as of `$N` (a pending commission past its hold is payable).
macro_rules! status_as_of {
    ($n:literal) => {
        concat!("(CASE WHEN status = 'pending' AND available_at <= ", $n, " THEN 'payable' ELSE status END)")
    };
}

impl SqlStore {
    pub(crate) async fn default_plan_(&self, ws: &WorkspaceId) -> StoreResult<Option<partnerloop_domain::plan::CommissionPlan>> {
        on_read!(self, |pool| {
            let row: Option<crate::rows::PlanRow> = sqlx::query_as(concat!(
                "SELECT ",
                crate::records::plan_cols!(),
                " FROM commission_plans WHERE workspace_id = $1 AND is_default"
            ))
            .bind(ws.as_str())
            .fetch_optional(pool)
            .await
            .map_err(map)?;
            row.map(TryInto::try_into).transpose()
        })
    }

    pub(crate) async fn commission_(&self, ws: &WorkspaceId, id: &CommissionId) -> StoreResult<Commission> {
        crate::records::fetch_by_id!(self, CommissionRow, commission_cols!(), "commissions", ws, id)
    }

    pub(crate) async fn list_commissions_(
        &self,
        ws: &WorkspaceId,
        f: &CommissionFilter,
        now: Timestamp,
        page: &Page,
    ) -> StoreResult<Paged<Commission>> {
        on_read!(self, |pool| {
            let rows: Vec<CommissionRow> = sqlx::query_as(concat!(
                "SELECT ",
                commission_cols!(),
                " FROM commissions WHERE workspace_id = $1 AND ($2 IS NULL OR partner_id = $2) AND ($3 IS NULL OR referral_id = $3)
                 AND ($4 IS NULL OR payout_id = $4) AND ($5 IS NULL OR ",
                status_as_of!("$6"),
                " = $5) AND ($7 IS NULL OR id > $7) ORDER BY id LIMIT $8"
            ))
            .bind(ws.as_str())
            .bind(f.partner_id.as_ref().map(|p| p.as_str()))
            .bind(f.referral_id.as_ref().map(|p| p.as_str()))
            .bind(f.payout_id.as_ref().map(|p| p.as_str()))
            .bind(f.status.map(|s| s.as_str()))
            .bind(to_text(now))
            .bind(page.after.as_deref())
            .bind(i64::from(page.limit) + 1)
            .fetch_all(pool)
            .await
            .map_err(map)?;
            let items = rows.into_iter().map(Commission::try_from).collect::<Result<Vec<_>, _>>()?;
            Ok(Paged::from_rows(items, page.limit, |c: &Commission| c.id.to_string()))
        })
    }

    pub(crate) async fn commission_entries_(&self, ws: &WorkspaceId, id: &CommissionId) -> StoreResult<Vec<LedgerEntry>> {
        on_read!(self, |pool| {
            let rows: Vec<EntryRow> = sqlx::query_as(
                "SELECT e.seq, e.commission_id, c.partner_id, c.referral_id, c.plan_id, e.kind, e.amount_minor, c.currency, e.at, e.actor, e.reason,
                 e.payout_id FROM commission_entries e JOIN commissions c ON c.id = e.commission_id
                 WHERE e.workspace_id = $1 AND e.commission_id = $2 ORDER BY e.seq",
            )
            .bind(ws.as_str())
            .bind(id.as_str())
            .fetch_all(pool)
            .await
            .map_err(map)?;
            rows.into_iter().map(LedgerEntry::try_from).collect()
        })
    }

    pub(crate) async fn adjustment_of_(&self, ws: &WorkspaceId, id: &CommissionId) -> StoreResult<Option<CommissionId>> {
        on_read!(self, |pool| {
            let id: Option<String> = sqlx::query_scalar("SELECT id FROM commissions WHERE workspace_id = $1 AND adjusts_id = $2")
                .bind(ws.as_str())
                .bind(id.as_str())
                .fetch_optional(pool)
                .await
                .map_err(map)?;
            Ok(id.map(CommissionId::from_string))
        })
    }

    pub(crate) async fn write_ledger_(&self, ws: &WorkspaceId, writes: Vec<LedgerWrite>, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            apply_ledger!(tx, ws, &writes, audit.at, &audit.actor);
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    /// Moves due commissions to `payable` with their `released` entries and,
    /// per partner and currency, one `commission.released` audit row (the
    /// event that tells the partner money is payable) — all in one
    /// transaction.
    pub(crate) async fn release_due_commissions_(&self, ws: Option<&WorkspaceId>, now: Timestamp, limit: u32) -> StoreResult<u64> {
        let now_text = to_text(now);
        let reason = "the hold period ended";
        let ws = ws.map(|w| w.as_str());
        match &self.db {
            // One writer: the INSERT, the SELECT and the UPDATE see the same
            // rows (by rowid, which skips a lookup through the id index per row).
            Db::Sqlite { write, .. } => {
                let mut tx = write.begin().await.map_err(map)?;
                let moved = sqlx::query(concat!(
                    entry_insert!(),
                    "SELECT workspace_id, id, 'released', amount_minor, $1, 'scheduler', $2, NULL
                     FROM commissions WHERE rowid IN (SELECT rowid FROM commissions WHERE status = 'pending' AND available_at <= $1
                     AND ($3 IS NULL OR workspace_id = $3) ORDER BY available_at, id LIMIT $4)"
                ))
                .bind(&now_text)
                .bind(reason)
                .bind(ws)
                .bind(i64::from(limit))
                .execute(&mut *tx)
                .await
                .map_err(map)?
                .rows_affected();
                let groups: Vec<ReleasedGroup> = sqlx::query_as(
                    "SELECT workspace_id, partner_id, currency, CAST(SUM(amount_minor) AS BIGINT), COUNT(*)
                     FROM commissions WHERE rowid IN (SELECT rowid FROM commissions WHERE status = 'pending' AND available_at <= $1
                     AND ($2 IS NULL OR workspace_id = $2) ORDER BY available_at, id LIMIT $3)
                     GROUP BY workspace_id, partner_id, currency",
                )
                .bind(&now_text)
                .bind(ws)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(map)?;
                sqlx::query(
                    "UPDATE commissions SET status = 'payable', updated_at = $1
                     WHERE rowid IN (SELECT rowid FROM commissions WHERE status = 'pending' AND available_at <= $1
                     AND ($2 IS NULL OR workspace_id = $2) ORDER BY available_at, id LIMIT $3)",
                )
                .bind(&now_text)
                .bind(ws)
                .bind(i64::from(limit))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
                for g in &groups {
                    let (ws, audit) = g.audit(now)?;
                    insert_audit!(tx, ws, &audit);
                }
                tx.commit().await.map_err(map)?;
                Ok(moved)
            }
            // One statement moves the rows and records their entries (rows
            // another server is moving are skipped, not waited for); its
            // result is the moved rows per partner and currency.
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(map)?;
                let groups: Vec<ReleasedGroup> = sqlx::query_as(concat!(
                    "WITH due AS (SELECT id FROM commissions WHERE status = 'pending' AND available_at <= $1
                                  AND ($2::text IS NULL OR workspace_id = $2) ORDER BY available_at, id LIMIT $3 FOR UPDATE SKIP LOCKED),
                          moved AS (UPDATE commissions c SET status = 'payable', updated_at = $1 FROM due WHERE c.id = due.id
                                    RETURNING c.workspace_id, c.id, c.partner_id, c.referral_id, c.plan_id, c.amount_minor, c.currency),
                          entries AS (",
                    entry_insert!(),
                    "SELECT workspace_id, id, 'released', amount_minor, $1, 'scheduler', $4, NULL FROM moved RETURNING 1)
                     SELECT workspace_id, partner_id, currency, CAST(SUM(amount_minor) AS BIGINT), COUNT(*)
                     FROM moved GROUP BY workspace_id, partner_id, currency"
                ))
                .bind(&now_text)
                .bind(ws)
                .bind(i64::from(limit))
                .bind(reason)
                .fetch_all(&mut *tx)
                .await
                .map_err(map)?;
                let mut moved = 0;
                for g in &groups {
                    moved += g.4 as u64;
                    let (ws, audit) = g.audit(now)?;
                    insert_audit!(tx, ws, &audit);
                }
                tx.commit().await.map_err(map)?;
                Ok(moved)
            }
        }
    }

    pub(crate) async fn partner_balances_(&self, ws: &WorkspaceId, partner: &PartnerId, now: Timestamp) -> StoreResult<Vec<Balance>> {
        on_read!(self, |pool| {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(concat!(
                "SELECT currency, ",
                status_as_of!("$1"),
                " AS s, CAST(SUM(amount_minor) AS BIGINT) FROM commissions WHERE workspace_id = $2 AND partner_id = $3
                 GROUP BY currency, s ORDER BY currency"
            ))
            .bind(to_text(now))
            .bind(ws.as_str())
            .bind(partner.as_str())
            .fetch_all(pool)
            .await
            .map_err(map)?;
            let mut out: Vec<Balance> = Vec::new();
            for (code, status, sum) in rows {
                let currency = Currency::parse("currency", &code).map_err(bad)?;
                if out.last().is_none_or(|b| b.currency != currency) {
                    let zero = Money::zero(currency);
                    out.push(Balance { currency, pending: zero, payable: zero, paid: zero, reversed: zero });
                }
                let b = out.last_mut().expect("pushed above");
                let m = Money::from_minor(sum, currency);
                match CommissionStatus::parse("status", &status).map_err(bad)? {
                    CommissionStatus::Pending => b.pending = m,
                    CommissionStatus::Payable => b.payable = m,
                    CommissionStatus::Paid => b.paid = m,
                    CommissionStatus::Reversed => b.reversed = m,
                }
            }
            Ok(out)
        })
    }
}
