//! The set-at-once accrual of a linear plan (see
//! `partnerloop_domain::commission::Linear`): one `INSERT … SELECT` books
//! the commission of every unaccrued win of the plan's partners.
//!
//! Rules: the arithmetic is the domain's, in integers — the rate in parts
//! per million, `won × ppm / 1,000,000` rounded half to even, then the
//! minimum and the cap when in the won currency — and the rule text is the
//! domain's text; a test compares every row with `commission::accrue`.
//! Rows the statement cannot compute exactly (a negative or huge amount, an
//! unlisted currency, a close time not in the stored fixed-width form) are
//! left for the general path. The set is one transaction: its commissions,
//! the announcement of those already past the release mark, the audit row.
//! Referrals are read in id order — on SQLite through the status index
//! (`INDEXED BY`: the planner preferred the closed-deal index, whose
//! partner order made every commission id and accrual key a random insert
//! into indexes larger than the cache) — and each one's partner looked up
//! by its key (a subquery, not a join: a planner misjudging the filters'
//! joint selectivity cannot turn it into a million scans of `partners`),
//! so the commissions are written in id order and the unique indexes grow
//! at their ends.

use partnerloop_app::error::StoreError;
use partnerloop_app::ledger::{LinearAccrual, LinearBooked};
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_domain::commission::LinearRate;
use partnerloop_domain::ids::WorkspaceId;

use crate::errors::map;
use crate::ledger::{ReleasedGroup, lock_release_mark, restore_indexes, set_aside_indexes};
use crate::records::insert_audits;
use crate::time::to_text;
use crate::{Db, SqlStore, bulk_writer, finish_bulk, on_write};

/// The won referrals of the plan's partners, with the commission id's
/// counter, the won currency's exponent and the end of the hold. Those
/// already accrued are skipped by the accrual's unique index (see
/// `skip_accrued!`): a first win's accrual exists whenever any accrual of the
/// referral does. Not reading `commissions` in the `SELECT` lets SQLite
/// stream the rows instead of first copying the whole set aside.
/// Binds: $1 counter, $2 exponent-0 codes, $3 exponent-3 codes, $4 hold
/// (`+N days`), $5 workspace, $6 plan, $7 is default, $8 largest amount,
/// $9 exponent-2 codes (code lists as JSON arrays).
macro_rules! wins {
    (sqlite) => {
        wins!(
            "$1 + r.rowid",
            "SELECT value FROM json_each($2)",
            "SELECT value FROM json_each($3)",
            "strftime('%Y-%m-%dT%H:%M:%S', r.closed_at, $4)",
            "SELECT value FROM json_each($9)",
            "INSERT OR IGNORE",
            "referrals r INDEXED BY referrals_status_idx"
        )
    };
    (postgres) => {
        wins!(
            "$1 + row_number() OVER (ORDER BY r.id)",
            "SELECT jsonb_array_elements_text(CAST($2 AS jsonb))",
            "SELECT jsonb_array_elements_text(CAST($3 AS jsonb))",
            "to_char(CAST(r.closed_at AS timestamptz) AT TIME ZONE 'UTC' + CAST($4 AS interval), 'YYYY-MM-DD\"T\"HH24:MI:SS')",
            "SELECT jsonb_array_elements_text(CAST($9 AS jsonb))",
            "INSERT",
            "referrals r"
        )
    };
    ($counter:literal, $zero:literal, $three:literal, $due:literal, $two:literal, $insert:literal, $referrals:literal) => {
        concat!(
            "WITH z AS NOT MATERIALIZED (SELECT ",
            $counter,
            " AS n, r.id, r.partner_id, r.amount_minor AS m, r.amount_currency AS cur,
               CASE WHEN r.amount_currency IN (",
            $zero,
            ") THEN 0 WHEN r.amount_currency IN (",
            $three,
            ") THEN 3 ELSE 2 END AS e, ",
            $due,
            " || substr(r.closed_at, 20) AS available_at
             FROM ",
            $referrals,
            "
             WHERE r.workspace_id = $5 AND r.status = 'won'
               AND (SELECT CASE WHEN p.commission_plan_id = $6 OR ($7 AND p.commission_plan_id IS NULL) THEN 1 ELSE 0 END
                    FROM partners p WHERE p.id = r.partner_id) = 1
               AND r.amount_minor BETWEEN 0 AND $8
               AND (r.amount_currency IN (",
            $two,
            ") OR r.amount_currency IN (",
            $zero,
            ") OR r.amount_currency IN (",
            $three,
            "))
               AND length(r.closed_at) = 27 AND substr(r.closed_at, 20, 1) = '.' AND substr(r.closed_at, 27, 1) = 'Z')
           ",
            $insert,
            " INTO commissions (workspace_id, id, partner_id, referral_id, plan_id, kind, won_seq, amount_minor, currency, status, rule,
             available_at, created_at, updated_at, payout_id, adjusts_id, payment_id, booked_by, booked_reason) "
        )
    };
}

/// How a row whose accrual exists is skipped: SQLite's `INSERT OR IGNORE`
/// (spelled by `wins!`) also skips the accrual unique index's conflicts.
/// Unlike `ON CONFLICT DO NOTHING` alone it also keeps a `NOT NULL` or
/// `CHECK` from aborting the statement, so SQLite needs no statement journal
/// (with foreign keys off as well; see `book_linear_commissions_`): a row the
/// statement cannot write is left unaccrued, for the general path.
macro_rules! skip_accrued {
    (sqlite) => {
        ""
    };
    (postgres) => {
        " ON CONFLICT DO NOTHING"
    };
}

/// `com_` + the set's 16-character stem ($10) + the counter `$n` as the 10
/// Crockford base-32 characters of a ULID's last 50 bits.
macro_rules! commission_id {
    ($n:literal) => {
        concat!(
            "'com_' || $10",
            " || substr('0123456789abcdefghjkmnpqrstvwxyz', CAST(((",
            $n,
            " >> 45) & 31) + 1 AS INTEGER), 1) || substr('0123456789abcdefghjkmnpqrstvwxyz', CAST(((",
            $n,
            " >> 40) & 31) + 1 AS INTEGER), 1) || substr('0123456789abcdefghjkmnpqrstvwxyz', CAST(((",
            $n,
            " >> 35) & 31) + 1 AS INTEGER), 1) || substr('0123456789abcdefghjkmnpqrstvwxyz', CAST(((",
            $n,
            " >> 30) & 31) + 1 AS INTEGER), 1) || substr('0123456789abcdefghjkmnpqrstvwxyz', CAST(((",
            $n,
            " >> 25) & 31) + 1 AS INTEGER), 1) || substr('0123456789abcdefghjkmnpqrstvwxyz', CAST(((",
            $n,
            " >> 20) & 31) + 1 AS INTEGER), 1) || substr('0123456789abcdefghjkmnpqrstvwxyz', CAST(((",
            $n,
            " >> 15) & 31) + 1 AS INTEGER), 1) || substr('0123456789abcdefghjkmnpqrstvwxyz', CAST(((",
            $n,
            " >> 10) & 31) + 1 AS INTEGER), 1) || substr('0123456789abcdefghjkmnpqrstvwxyz', CAST(((",
            $n,
            " >> 5) & 31) + 1 AS INTEGER), 1) || substr('0123456789abcdefghjkmnpqrstvwxyz', CAST((",
            $n,
            " & 31) + 1 AS INTEGER), 1)"
        )
    };
}

/// A non-negative amount in minor units of `w.cur` as
/// `Money::amount_string` writes it (SQL both engines run).
macro_rules! amount_text {
    ($x:literal) => {
        concat!(
            "CASE w.e WHEN 0 THEN CAST(",
            $x,
            " AS TEXT) WHEN 2 THEN CAST(",
            $x,
            " / 100 AS TEXT) || '.' || CASE WHEN ",
            $x,
            " % 100 < 10 THEN '0' ELSE '' END || CAST(",
            $x,
            " % 100 AS TEXT) ELSE CAST(",
            $x,
            " / 1000 AS TEXT) || '.' || CASE WHEN ",
            $x,
            " % 1000 < 10 THEN '00' WHEN ",
            $x,
            " % 1000 < 100 THEN '0' ELSE '' END || CAST(",
            $x,
            " % 1000 AS TEXT) END"
        )
    };
}

/// A percent plan. Binds after the wins': $10 stem, $11 cap currency, $12
/// cap, $13 `plan 'NAME': `, $14 percent text, $15 minimum currency, $16
/// minimum text, $17 minimum, $18 cap text, $19 now, $20 actor, $21
/// reason, $22 rate in ppm.
macro_rules! percent {
    ($engine:ident) => {
        concat!(
            wins!($engine),
            "SELECT $5, ",
            commission_id!("w.n"),
            ", w.partner_id, w.id, $6, 'accrual', 1,
               CASE WHEN $11 = w.cur AND w.a1 > $12 THEN $12 ELSE w.a1 END, w.cur, 'pending',
               $13 || $14 || ' % of ' || ",
            amount_text!("w.m"),
            " || ' ' || w.cur || ' = ' || ",
            amount_text!("w.rated"),
            " || ' ' || w.cur
               || CASE WHEN $15 IS NULL THEN '' WHEN $15 <> w.cur THEN '; minimum ' || $16 || ' not applied to a ' || w.cur || ' amount'
                       WHEN w.rated < $17 THEN '; raised to the minimum ' || $16 ELSE '' END
               || CASE WHEN $11 IS NULL THEN '' WHEN $11 <> w.cur THEN '; cap ' || $18 || ' not applied to a ' || w.cur || ' amount'
                       WHEN w.a1 > $12 THEN '; capped at ' || $18 ELSE '' END,
               w.available_at, $19, $19, NULL, NULL, '', $20, $21
             FROM (SELECT y.*, CASE WHEN $15 = y.cur AND y.rated < $17 THEN $17 ELSE y.rated END AS a1
               FROM (SELECT z.*, z.m * $22 / 1000000 + CASE WHEN (z.m * $22 % 1000000) * 2 > 1000000
                           OR ((z.m * $22 % 1000000) * 2 = 1000000 AND (z.m * $22 / 1000000) % 2 = 1) THEN 1 ELSE 0 END AS rated
                 FROM z) y) w
             WHERE true",
            skip_accrued!($engine)
        )
    };
}

/// A flat plan: the same accrual for every win. Binds after the wins':
/// $10 stem, $11 amount, $12 currency, $13 rule, $14 now, $15 actor, $16 reason.
macro_rules! flat {
    ($engine:ident) => {
        concat!(
            wins!($engine),
            "SELECT $5, ",
            commission_id!("z.n"),
            ", z.partner_id, z.id, $6, 'accrual', 1, $11, $12, 'pending', $13, z.available_at, $14, $14, NULL, NULL, '', $15, $16
             FROM z WHERE true",
            skip_accrued!($engine)
        )
    };
}

/// How many won referrals the workspace ($1) has.
const WON: &str = "SELECT COUNT(*) FROM referrals WHERE workspace_id = $1 AND status = 'won'";

/// The set's commissions already due by the release mark, per partner and
/// currency: the release job has passed them, so the set announces them.
const DUE_BY_MARK: &str = "SELECT workspace_id, partner_id, currency, CAST(SUM(amount_minor) AS BIGINT), COUNT(*) FROM commissions
     WHERE id >= $1 AND id < $2 AND workspace_id = $3 AND available_at <= $4 GROUP BY workspace_id, partner_id, currency";

fn codes(set: &LinearAccrual, exponent: u8) -> String {
    let list: Vec<&str> = set.currencies.iter().filter(|(_, e)| *e == exponent).map(|(c, _)| *c).collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

impl SqlStore {
    pub(crate) async fn book_linear_commissions_(
        &self,
        ws: &WorkspaceId,
        set: &LinearAccrual,
        audit: &AuditEntry,
    ) -> StoreResult<LinearBooked> {
        let (percent_sql, flat_sql) = match &self.db {
            Db::Sqlite { .. } => (percent!(sqlite), flat!(sqlite)),
            Db::Postgres(_) => (percent!(postgres), flat!(postgres)),
        };
        let stem = format!("com_{}", set.id_stem);
        let now = to_text(audit.at);
        let hold = format!("+{} days", set.hold_days);
        let (zero, three, two) = (codes(set, 0), codes(set, 3), codes(set, 2));
        let sqlite = matches!(self.db, Db::Sqlite { .. });
        let booked = on_write!(self, |pool| {
            // Every row references only rows it was read from (the
            // referral, its partner and workspace) and the plan the caller
            // loaded: SQLite's per-row foreign-key lookups would find them
            // all, and that they could abort the statement would make
            // SQLite journal each page it changes. Off for this set alone
            // (`finish_bulk!` turns them on again).
            let mut writer = bulk_writer!(pool, sqlite, "PRAGMA foreign_keys = OFF");
            let mut tx = sqlx::Connection::begin(&mut *writer.conn).await.map_err(map)?;
            let mark = lock_release_mark!(tx, ws);
            let wins = |sql: &'static str| {
                sqlx::query(sql)
                    .bind(i64::try_from(set.id_counter).unwrap_or(0))
                    .bind(zero.as_str())
                    .bind(three.as_str())
                    .bind(hold.as_str())
                    .bind(ws.as_str())
                    .bind(set.plan.as_str())
                    .bind(set.is_default)
            };
            // Whether the workspace had any commission before, and how many
            // wins it has: a set that books one for each leaves nothing to
            // the general path (on SQLite the write lock taken with the
            // release mark keeps both exact until the commit).
            let accrued_before: i64 = sqlx::query_scalar(
                "SELECT CAST(CASE WHEN EXISTS (SELECT 1 FROM commissions WHERE workspace_id = $1) THEN 1 ELSE 0 END AS BIGINT)",
            )
            .bind(ws.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(map)?;
            let won: i64 = sqlx::query_scalar(WON).bind(ws.as_str()).fetch_one(&mut *tx).await.map_err(map)?;
            // A first backfill may write more rows than the table holds:
            // its non-unique indexes are then built again after the insert.
            // The payout index holds batched commissions only, which the
            // set's are not: it stays as it is.
            let mut rebuild: Vec<String> = Vec::new();
            if sqlite {
                let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM commissions").fetch_one(&mut *tx).await.map_err(map)?;
                if won > 2 * existing {
                    rebuild = set_aside_indexes!(tx, "commissions", "commissions_partner_idx");
                    rebuild.extend(set_aside_indexes!(tx, "commissions", "commissions_due_idx"));
                }
            }
            let booked = match &set.linear.rate {
                LinearRate::Percent { ppm, percent } => {
                    let (min_cur, min_text, min_minor) = limit(set.linear.minimum);
                    let (cap_cur, cap_text, cap_minor) = limit(set.linear.cap);
                    wins(percent_sql)
                        .bind(i64::MAX / (*ppm).max(1))
                        .bind(two.as_str())
                        .bind(set.id_stem.as_str())
                        .bind(cap_cur)
                        .bind(cap_minor)
                        .bind(set.linear.rule_prefix.as_str())
                        .bind(percent.as_str())
                        .bind(min_cur)
                        .bind(min_text)
                        .bind(min_minor)
                        .bind(cap_text)
                        .bind(now.as_str())
                        .bind(audit.actor.as_str())
                        .bind(set.reason.as_str())
                        .bind(*ppm)
                        .execute(&mut *tx)
                        .await
                        .map_err(map)?
                }
                LinearRate::Flat(accrual) => wins(flat_sql)
                    .bind(i64::MAX)
                    .bind(two.as_str())
                    .bind(set.id_stem.as_str())
                    .bind(accrual.amount.minor())
                    .bind(accrual.amount.currency().code())
                    .bind(accrual.rule.as_str())
                    .bind(now.as_str())
                    .bind(audit.actor.as_str())
                    .bind(set.reason.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?,
            }
            .rows_affected();
            restore_indexes!(tx, &rebuild);
            if booked == 0 {
                tx.rollback().await.map_err(map)?;
                finish_bulk!(writer);
                return Ok(LinearBooked::default());
            }
            // On PostgreSQL each statement reads afresh: the wins are counted
            // again after the insert (a win committed meanwhile and booked by
            // the set must not make up for a row the set left), so the
            // comparison can only err towards looking again.
            let won = if sqlite { won } else { sqlx::query_scalar(WON).bind(ws.as_str()).fetch_one(&mut *tx).await.map_err(map)? };
            // Nothing is due by a mark the release job never set.
            let due: Vec<ReleasedGroup> = if mark.is_empty() {
                Vec::new()
            } else {
                sqlx::query_as(DUE_BY_MARK)
                    .bind(stem.as_str())
                    .bind(format!("{stem}~"))
                    .bind(ws.as_str())
                    .bind(mark.as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map)?
            };
            let mut audits = Vec::with_capacity(due.len() + 1);
            for group in &due {
                audits.push(group.audit(audit.at)?.1);
            }
            let mut done = audit.clone();
            if let Some(serde_json::Value::Object(after)) = done.after.as_mut() {
                after.insert("accrued".into(), booked.into());
            }
            audits.push(done);
            insert_audits!(tx, ws, &audits);
            tx.commit().await.map_err(map)?;
            if sqlite {
                // A set can grow the table many times over: the planner's
                // statistics follow (see `SqlStore::refresh_statistics`), on
                // this connection while its commits leave the checkpoint
                // to the background.
                // The set is committed: a failure here is only logged.
                if let Err(e) = sqlx::query("PRAGMA optimize").execute(&mut *writer.conn).await {
                    tracing::warn!(error = %e, "could not refresh the planner's statistics after a backfill set");
                }
            }
            finish_bulk!(writer);
            Ok::<_, StoreError>(LinearBooked { booked, every_win: accrued_before == 0 && i64::try_from(booked).is_ok_and(|b| b == won) })
        })?;
        self.checkpoint_in_background();
        Ok(booked)
    }
}

/// A minimum or cap as the statement binds it: currency, text, minor units.
fn limit(m: Option<partnerloop_domain::Money>) -> (Option<String>, Option<String>, Option<i64>) {
    match m {
        Some(m) => (Some(m.currency().code().to_owned()), Some(m.to_string()), Some(m.minor())),
        None => (None, None, None),
    }
}
