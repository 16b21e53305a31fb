//! The commissions ledger: commission rows and their append-only entries.
//!
//! Rules: the ledger writes per set, not per commission, where a set is
//! what happened. A commission's row is its own accrual record (who booked
//! it, why); the end of its hold is read from `available_at` (an open
//! commission is stored `pending` and is payable on read), and the release
//! job writes one announcement per partner and currency, not a row per
//! commission; a payout batch stamps its commissions with its id and itself
//! records when and by whom. What changes a commission in place afterwards
//! (reversed, unbatched, paid) is paired, in the same transaction, with the
//! INSERT of its entries. Every accrual locks the workspace's release mark
//! (`ledger_marks`), which orders it with the release job on PostgreSQL.

use jiff::Timestamp;
use partnerloop_app::error::StoreError;
use partnerloop_app::ledger::{Balance, CommissionFilter, LedgerEntry, LedgerWrite};
use partnerloop_app::store::{AuditEntry, Page, Paged, StoreResult};
use partnerloop_domain::commission::{Commission, CommissionId, CommissionKind, CommissionStatus, EntryKind, PaymentId, PayoutId};
use partnerloop_domain::ids::{PartnerId, PlanId, WorkspaceId};
use partnerloop_domain::referral::ReferralId;
use partnerloop_domain::{Currency, Money};

use crate::errors::map;
use crate::records::{insert_audit, insert_audits};
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
pub(crate) struct ReleasedGroup(pub String, pub String, pub String, pub i64, pub i64);

impl ReleasedGroup {
    pub(crate) fn audit(&self, at: Timestamp) -> StoreResult<(WorkspaceId, AuditEntry)> {
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

/// The status a commission is stored with: an open commission is
/// `pending` until paid or reversed; `payable` is read from `available_at`.
pub(crate) fn stored_status(s: CommissionStatus) -> &'static str {
    match s {
        CommissionStatus::Payable => CommissionStatus::Pending.as_str(),
        s => s.as_str(),
    }
}

/// Locks the workspace's release mark inside the transaction `$tx` and
/// returns how far the release job has announced ('' when never). Every
/// accrual takes this lock, so on PostgreSQL a release run never misses a
/// commission committed behind its back (SQLite has one writer anyway).
macro_rules! lock_release_mark {
    ($tx:expr, $ws:expr) => {{
        let mark: String = sqlx::query_scalar(
            "INSERT INTO ledger_marks (workspace_id, released_through) VALUES ($1, '')
             ON CONFLICT (workspace_id) DO UPDATE SET released_through = ledger_marks.released_through
             RETURNING released_through",
        )
        .bind($ws.as_str())
        .fetch_one(&mut *$tx)
        .await
        .map_err(map)?;
        mark
    }};
}
pub(crate) use lock_release_mark;

/// SQLite, inside the transaction `$tx`: drops the non-unique indexes of
/// `$table` whose names match the `LIKE` pattern `$names` and returns their
/// definitions, to be run again (`restore_indexes!`) after a write of more
/// rows than the indexes hold — building an index by sorting costs a
/// fraction of that many random inserts. Readers keep the committed schema
/// meanwhile; the definitions are the schema's own.
macro_rules! set_aside_indexes {
    ($tx:expr, $table:expr, $names:expr) => {{
        let found: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND name LIKE $2 AND sql IS NOT NULL
             AND sql NOT LIKE 'CREATE UNIQUE%' ORDER BY name",
        )
        .bind($table)
        .bind($names)
        .fetch_all(&mut *$tx)
        .await
        .map_err(map)?;
        for (name, _) in &found {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX \"{}\"", name.replace('"', "\"\""))))
                .execute(&mut *$tx)
                .await
                .map_err(map)?;
        }
        found.into_iter().map(|(_, sql)| sql).collect::<Vec<String>>()
    }};
}
pub(crate) use set_aside_indexes;

/// Builds again, inside `$tx`, the indexes `set_aside_indexes!` dropped.
macro_rules! restore_indexes {
    ($tx:expr, $definitions:expr) => {{
        for definition in $definitions {
            sqlx::query(sqlx::AssertSqlSafe(definition.as_str())).execute(&mut *$tx).await.map_err(map)?;
        }
    }};
}
pub(crate) use restore_indexes;

/// Applies ledger writes inside the transaction `$tx`, entries at `$at` by `$actor`.
/// A booked commission is its own accrual record (`booked_by`,
/// `booked_reason`); one already due by the release mark is announced
/// (`commission.released`) at once, since the release job has passed it.
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
                        ", booked_by, booked_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
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
                    .bind($crate::ledger::stored_status(c.status))
                    .bind(&c.rule)
                    .bind($crate::time::to_text(c.available_at))
                    .bind($crate::time::to_text(c.created_at))
                    .bind($crate::time::to_text(c.updated_at))
                    .bind(c.payout_id.as_ref().map(|p| p.as_str()))
                    .bind(c.adjusts.as_ref().map(|p| p.as_str()))
                    .bind(c.payment_id.as_ref().map_or("", |p| p.as_str()))
                    .bind(actor)
                    .bind(reason.as_str())
                    .execute(&mut *$tx)
                    .await
                    .map_err(map)?;
                    if c.kind != partnerloop_domain::commission::CommissionKind::Adjustment {
                        let mark = $crate::ledger::lock_release_mark!($tx, $ws);
                        let due = $crate::time::to_text(c.available_at);
                        if due <= mark {
                            let group = $crate::ledger::ReleasedGroup(
                                $ws.to_string(),
                                c.partner_id.to_string(),
                                c.amount.currency().code().to_owned(),
                                c.amount.minor(),
                                1,
                            );
                            let (ws, audit) = group.audit($at)?;
                            $crate::records::insert_audit!($tx, ws, &audit);
                        }
                    }
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

    /// A commission's entries, oldest first: the stored ones (what changed
    /// it in place: reversed, unbatched, paid; and, for commissions booked
    /// before migration 0016, their accrued, released and batched rows)
    /// and the ones its records imply, marked `seq` 0: `accrued` (or
    /// `adjusted`) from the commission's own row, `released` when its hold
    /// ended by `now` while it was open, `batched` from the batch that holds it.
    pub(crate) async fn commission_entries_(&self, ws: &WorkspaceId, id: &CommissionId, now: Timestamp) -> StoreResult<Vec<LedgerEntry>> {
        let c = self.commission_(ws, id).await?;
        let (stored, booked, batch) = on_read!(self, |pool| {
            let stored: Vec<EntryRow> = sqlx::query_as(
                "SELECT e.seq, e.commission_id, c.partner_id, c.referral_id, c.plan_id, e.kind, e.amount_minor, c.currency, e.at, e.actor, e.reason,
                 e.payout_id FROM commission_entries e JOIN commissions c ON c.id = e.commission_id
                 WHERE e.workspace_id = $1 AND e.commission_id = $2 ORDER BY e.seq",
            )
            .bind(ws.as_str())
            .bind(id.as_str())
            .fetch_all(pool)
            .await
            .map_err(map)?;
            let booked: Option<(Option<String>, Option<String>)> =
                sqlx::query_as("SELECT booked_by, booked_reason FROM commissions WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.as_str())
                    .bind(id.as_str())
                    .fetch_optional(pool)
                    .await
                    .map_err(map)?;
            let batch: Option<(String, String)> = match &c.payout_id {
                Some(p) => sqlx::query_as("SELECT created_at, created_by FROM payouts WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.as_str())
                    .bind(p.as_str())
                    .fetch_optional(pool)
                    .await
                    .map_err(map)?,
                None => None,
            };
            (stored, booked, batch)
        });
        let stored = stored.into_iter().map(LedgerEntry::try_from).collect::<Result<Vec<_>, _>>()?;
        let has = |k: EntryKind| stored.iter().any(|e| e.kind == k);
        let implied = |kind: EntryKind, amount: Money, at: Timestamp, actor: &str, reason: String| LedgerEntry {
            seq: 0,
            commission_id: c.id.clone(),
            partner_id: c.partner_id.clone(),
            referral_id: c.referral_id.clone(),
            plan_id: c.plan_id.clone(),
            kind,
            amount,
            at,
            actor: actor.to_owned(),
            reason,
            payout_id: None,
        };
        // (entry, rank among entries at the same instant)
        let mut out: Vec<(LedgerEntry, i64)> = Vec::with_capacity(stored.len() + 3);
        if let Some((Some(by), reason)) = booked {
            let kind = if c.kind == CommissionKind::Adjustment { EntryKind::Adjusted } else { EntryKind::Accrued };
            out.push((implied(kind, c.amount, c.created_at, &by, reason.unwrap_or_default()), -3));
        }
        let reversed_before_due = stored.iter().any(|e| e.kind == EntryKind::Reversed && e.at < c.available_at);
        if c.kind != CommissionKind::Adjustment && c.available_at <= now && !has(EntryKind::Released) && !reversed_before_due {
            out.push((implied(EntryKind::Released, c.amount, c.available_at, "scheduler", "the hold period ended".into()), -2));
        }
        if let (Some(payout), Some((at, by))) = (&c.payout_id, batch)
            && !stored.iter().any(|e| e.kind == EntryKind::Batched && e.payout_id.as_ref() == Some(payout))
        {
            let mut e = implied(EntryKind::Batched, c.amount, from_text(&at)?, &by, format!("in payout batch {payout}"));
            e.payout_id = Some(payout.clone());
            out.push((e, -1));
        }
        out.extend(stored.into_iter().map(|e| {
            let seq = e.seq;
            (e, seq)
        }));
        out.sort_by(|(a, ra), (b, rb)| a.at.cmp(&b.at).then(ra.cmp(rb)));
        Ok(out.into_iter().map(|(e, _)| e).collect())
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

    /// Announces what became payable since the last run: per workspace,
    /// one `commission.released` audit row (the event that tells the
    /// partner money is payable) per partner and currency for the open
    /// commissions whose hold ended after the workspace's release mark and
    /// by `now`, and the mark moved to `now` — in one transaction per
    /// workspace, under the mark's lock. Nothing is written per commission:
    /// a commission past its hold is payable on read. Returns how many
    /// commissions were announced.
    pub(crate) async fn release_due_commissions_(&self, ws: Option<&WorkspaceId>, now: Timestamp) -> StoreResult<u64> {
        let workspaces: Vec<String> = match ws {
            Some(ws) => vec![ws.to_string()],
            None => {
                on_read!(self, |pool| sqlx::query_scalar("SELECT id FROM workspaces ORDER BY id").fetch_all(pool).await.map_err(map)?)
            }
        };
        let now_text = to_text(now);
        // The first run reads every open commission: a scan of the table
        // beats walking the whole due index (on SQLite the unary `+` keeps
        // the planner off it; PostgreSQL's planner sees that by itself).
        let every_open = match self.db {
            Db::Sqlite { .. } => {
                "SELECT $1, partner_id, currency, CAST(SUM(amount_minor) AS BIGINT), COUNT(*) FROM commissions
                 WHERE workspace_id = $1 AND status = 'pending' AND kind <> 'adjustment' AND +available_at <= $2
                 GROUP BY partner_id, currency ORDER BY partner_id, currency"
            }
            Db::Postgres(_) => {
                "SELECT workspace_id, partner_id, currency, CAST(SUM(amount_minor) AS BIGINT), COUNT(*) FROM commissions
                 WHERE workspace_id = $1 AND status = 'pending' AND kind <> 'adjustment' AND available_at <= $2
                 GROUP BY workspace_id, partner_id, currency ORDER BY partner_id, currency"
            }
        };
        let mut announced = 0;
        for ws in workspaces {
            let ws = WorkspaceId::from_string(&ws);
            announced += on_write!(self, |pool| 'one: {
                let mut tx = pool.begin().await.map_err(map)?;
                let mark = lock_release_mark!(tx, ws);
                if mark.as_str() >= now_text.as_str() {
                    break 'one Ok::<u64, StoreError>(0);
                }
                // Later runs read their window through the due index.
                let groups: Vec<ReleasedGroup> = if mark.is_empty() {
                    sqlx::query_as(every_open).bind(ws.as_str()).bind(&now_text).fetch_all(&mut *tx).await.map_err(map)?
                } else {
                    sqlx::query_as(
                        "SELECT workspace_id, partner_id, currency, CAST(SUM(amount_minor) AS BIGINT), COUNT(*) FROM commissions
                         WHERE workspace_id = $1 AND status = 'pending' AND kind <> 'adjustment' AND available_at > $2 AND available_at <= $3
                         GROUP BY workspace_id, partner_id, currency ORDER BY partner_id, currency",
                    )
                    .bind(ws.as_str())
                    .bind(&mark)
                    .bind(&now_text)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map)?
                };
                sqlx::query("UPDATE ledger_marks SET released_through = $1 WHERE workspace_id = $2")
                    .bind(&now_text)
                    .bind(ws.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
                let mut moved = 0;
                let mut audits = Vec::with_capacity(groups.len());
                for g in &groups {
                    moved += u64::try_from(g.4).unwrap_or(0);
                    audits.push(g.audit(now)?.1);
                }
                insert_audits!(tx, ws, &audits);
                tx.commit().await.map_err(map)?;
                Ok(moved)
            })?;
        }
        Ok(announced)
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
