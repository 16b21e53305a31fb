//! The aggregates behind the KPIs: counts and sums grouped in SQL, each
//! over one covering index of migration 0008, the queries of one report
//! run concurrently on the read pool.
//!
//! Seconds between two stored times are whole Unix seconds on both engines
//! (`unixepoch` on SQLite, the floored epoch on PostgreSQL), so sums and
//! medians match exactly. Sums are cast to BIGINT (PostgreSQL's SUM of a
//! BIGINT is NUMERIC).

use std::collections::HashMap;

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::error::StoreError;
use partnerloop_app::metrics::{MetricsStore, Scope, Window};
use partnerloop_app::store::StoreResult;
use partnerloop_domain::Currency;
use partnerloop_domain::deal::Stage;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::metrics::{CohortPartner, Inputs, PartnerWins, PipelineGroup, Tally};

use crate::errors::map;
use crate::time::{from_text, opt_from_text, to_text};
use crate::{Db, SqlStore, on_read};

/// Bounds of an open-ended window, as stored text compares.
const BEFORE_ALL: &str = "0000-01-01T00:00:00.000000Z";
const AFTER_ALL: &str = "9999-12-31T23:59:59.999999Z";

/// Whole Unix seconds of a stored time column, per engine.
fn epoch(db: &Db, col: &str) -> String {
    match db {
        Db::Sqlite { .. } => format!("unixepoch({col})"),
        Db::Postgres(_) => format!("CAST(FLOOR(EXTRACT(EPOCH FROM CAST({col} AS TIMESTAMPTZ))) AS BIGINT)"),
    }
}

/// The scope as a condition on a table with a `partner_id` column (`$n` is its value).
fn on_referrals(scope: &Scope, n: usize) -> String {
    match scope {
        Scope::Workspace => String::new(),
        Scope::Partner(_) => format!(" AND partner_id = ${n}"),
        Scope::Tier(_) => format!(" AND partner_id IN (SELECT id FROM partners WHERE workspace_id = $1 AND tier = ${n})"),
    }
}

/// The scope as a condition on `partners` (aliased `alias`).
fn on_partners(scope: &Scope, alias: &str, n: usize) -> String {
    match scope {
        Scope::Workspace => String::new(),
        Scope::Partner(_) => format!(" AND {alias}id = ${n}"),
        Scope::Tier(_) => format!(" AND {alias}tier = ${n}"),
    }
}

fn scope_value(scope: &Scope) -> Option<&str> {
    match scope {
        Scope::Workspace => None,
        Scope::Partner(p) => Some(p.as_str()),
        Scope::Tier(t) => Some(t.as_str()),
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn currency(code: &str) -> Result<Currency, StoreError> {
    Currency::parse("currency", code).map_err(|e| StoreError::Other(format!("bad stored currency: {e}").into()))
}

type WonRow = (String, String, i64, i64, i64);
type DirectRow = (String, String, i64, i64, i64);
type CohortRow = (String, String, Option<String>);
type PipelineRow = (Option<String>, Option<String>, Option<String>, i64, i64);

/// Binds the scope's value when it has one.
macro_rules! bind_scope {
    ($q:expr, $scope:expr) => {
        match scope_value($scope) {
            Some(v) => $q.bind(v),
            None => $q,
        }
    };
}

#[async_trait]
impl MetricsStore for SqlStore {
    async fn won_revenue_by_month(
        &self,
        ws: &WorkspaceId,
        c: Currency,
        start: Timestamp,
        end: Timestamp,
    ) -> StoreResult<Vec<(String, i64)>> {
        // Stored times are ISO-8601 text in UTC on both engines: the month is their first seven characters.
        on_read!(self, |pool| sqlx::query_as(
            "SELECT SUBSTR(closed_at, 1, 7), CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT)
             FROM referrals WHERE workspace_id = $1 AND status = 'won' AND amount_currency = $2 AND closed_at >= $3 AND closed_at < $4
             GROUP BY SUBSTR(closed_at, 1, 7) ORDER BY 1",
        )
        .bind(ws.as_str())
        .bind(c.code())
        .bind(to_text(start))
        .bind(to_text(end))
        .fetch_all(pool)
        .await
        .map_err(map))
    }

    async fn kpi_inputs(&self, ws: &WorkspaceId, scope: &Scope, w: &Window) -> StoreResult<Inputs> {
        let start = w.start.map(to_text).unwrap_or_else(|| BEFORE_ALL.to_owned());
        let end = w.end.map(to_text).unwrap_or_else(|| AFTER_ALL.to_owned());
        let as_of = to_text(w.as_of);
        let dormant_since = to_text(w.dormant_since);
        let (closed, created, decided) = (epoch(&self.db, "closed_at"), epoch(&self.db, "created_at"), epoch(&self.db, "decided_at"));
        // Wins and losses of all time, for the workspace or one partner, are
        // the counters' (migration 0015, per partner and currency); a period
        // or a tier counts the index. `$2 <> $3` keeps the binds the same.
        let all_time = w.start.is_none() && w.end.is_none() && !matches!(scope, Scope::Tier(_));
        let on_bucket = if matches!(scope, Scope::Partner(_)) { " AND bucket = $4" } else { "" };
        let (won_sql, lost_sql) = if all_time {
            (
                format!(
                    "SELECT bucket, currency, CAST(SUM(n) AS BIGINT), CAST(SUM(value_minor) AS BIGINT), CAST(SUM(seconds) AS BIGINT)
                     FROM metric_deltas WHERE workspace_id = $1 AND kind = 'won' AND $2 <> $3{on_bucket}
                     GROUP BY bucket, currency HAVING SUM(n) <> 0"
                ),
                format!(
                    "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM metric_deltas
                     WHERE workspace_id = $1 AND kind = 'lost' AND $2 <> $3{on_bucket}"
                ),
            )
        } else {
            (
                format!(
                    "SELECT partner_id, amount_currency, COUNT(*), CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT),
                            CAST(COALESCE(SUM({closed} - {created}), 0) AS BIGINT)
                     FROM referrals WHERE workspace_id = $1 AND status = 'won' AND closed_at >= $2 AND closed_at < $3{}
                     GROUP BY partner_id, amount_currency",
                    on_referrals(scope, 4)
                ),
                format!(
                    "SELECT COUNT(*) FROM referrals WHERE workspace_id = $1 AND status = 'lost' AND closed_at >= $2 AND closed_at < $3{}",
                    on_referrals(scope, 4)
                ),
            )
        };
        let direct_sql = format!(
            "SELECT stage, currency, COUNT(*), CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT), CAST(COALESCE(SUM({closed} - {created}), 0) AS BIGINT)
             FROM deals WHERE workspace_id = $1 AND source = 'direct' AND stage IN ('closed_won', 'closed_lost')
               AND closed_at >= $2 AND closed_at < $3
             GROUP BY stage, currency"
        );
        let cohort_sql = format!(
            "SELECT status, created_at, first_referral_at FROM partners WHERE workspace_id = $1 AND created_at >= $2 AND created_at < $3{}",
            on_partners(scope, "", 4)
        );
        // The whole workspace over whole UTC days: the daily counters
        // (migration 0015), compared as `YYYY-MM-DD` text; else the index.
        let by_day = |t: Option<Timestamp>| t.is_none_or(|t| t.as_second().rem_euclid(86_400) == 0 && t.subsec_nanosecond() == 0);
        let counted = matches!(scope, Scope::Workspace) && by_day(w.start) && by_day(w.end);
        let (start_key, end_key) = if counted { (start[..10].to_owned(), end[..10].to_owned()) } else { (start.clone(), end.clone()) };
        let registered_sql = if counted {
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM metric_deltas
             WHERE workspace_id = $1 AND kind = 'registered' AND bucket >= $2 AND bucket < $3"
                .to_owned()
        } else {
            format!(
                "SELECT COUNT(*) FROM referrals WHERE workspace_id = $1 AND created_at >= $2 AND created_at < $3{}",
                on_referrals(scope, 4)
            )
        };
        // Partners active now and already there at the snapshot; dormant:
        // those of them without a referral registered in [dormant_since,
        // as_of) — NOT EXISTS in the WHERE, which PostgreSQL runs as one
        // hash anti-join instead of one probe per partner.
        let active_sql = format!(
            "SELECT COUNT(*) FROM partners p WHERE p.workspace_id = $1 AND p.status = 'active' AND p.created_at < $2{}",
            on_partners(scope, "p.", 3)
        );
        let dormant_sql = format!(
            "SELECT COUNT(*) FROM partners p WHERE p.workspace_id = $1
               AND NOT EXISTS (SELECT 1 FROM referrals r WHERE r.workspace_id = $1 AND r.partner_id = p.id AND r.created_at >= $2 AND r.created_at < $3)
               AND p.status = 'active' AND p.created_at < $3{}",
            on_partners(scope, "p.", 4)
        );
        // The current pipeline of the whole workspace is its counters; a
        // past snapshot or a share of it, the index.
        let pipeline_sql = if matches!(scope, Scope::Workspace) && w.current {
            "SELECT NULLIF(bucket, ''), NULLIF(currency, ''), NULL, CAST(SUM(n) AS BIGINT), CAST(SUM(value_minor) AS BIGINT)
             FROM metric_deltas WHERE workspace_id = $1 AND kind = 'pipeline' AND $2 <> ''
             GROUP BY bucket, currency HAVING SUM(n) <> 0"
                .to_owned()
        } else {
            format!(
                "SELECT stage, amount_currency, estimated_currency, COUNT(*), CAST(COALESCE(SUM(COALESCE(amount_minor, estimated_minor)), 0) AS BIGINT)
                 FROM referrals WHERE workspace_id = $1 AND status = 'approved' AND created_at < $2{}
                 GROUP BY stage, amount_currency, estimated_currency",
                on_referrals(scope, 3)
            )
        };
        let review_sql = format!(
            "SELECT {decided} - {created} FROM referrals
             WHERE workspace_id = $1 AND decided_by LIKE 'admin:%' AND decided_at >= $2 AND decided_at < $3{}",
            on_referrals(scope, 4)
        );
        let waiting_sql = format!(
            "SELECT COUNT(*) FROM referrals WHERE workspace_id = $1 AND status = 'pending_review' AND created_at < $2{}",
            on_referrals(scope, 3)
        );
        let ws = ws.as_str();
        let (won, lost, direct, cohort, registered, active, dormant, pipeline, review, waiting) = on_read!(self, |pool| {
            tokio::try_join!(
                bind_scope!(sqlx::query_as::<_, WonRow>(sqlx::AssertSqlSafe(won_sql)).bind(ws).bind(&start).bind(&end), scope)
                    .fetch_all(pool),
                bind_scope!(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(lost_sql)).bind(ws).bind(&start).bind(&end), scope)
                    .fetch_one(pool),
                sqlx::query_as::<_, DirectRow>(sqlx::AssertSqlSafe(direct_sql)).bind(ws).bind(&start).bind(&end).fetch_all(pool),
                bind_scope!(sqlx::query_as::<_, CohortRow>(sqlx::AssertSqlSafe(cohort_sql)).bind(ws).bind(&start).bind(&end), scope)
                    .fetch_all(pool),
                // (Counters serve the workspace scope only, which binds no value.)
                bind_scope!(
                    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(registered_sql)).bind(ws).bind(&start_key).bind(&end_key),
                    scope
                )
                .fetch_one(pool),
                bind_scope!(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(active_sql)).bind(ws).bind(&as_of), scope).fetch_one(pool),
                bind_scope!(
                    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(dormant_sql)).bind(ws).bind(&dormant_since).bind(&as_of),
                    scope
                )
                .fetch_one(pool),
                bind_scope!(sqlx::query_as::<_, PipelineRow>(sqlx::AssertSqlSafe(pipeline_sql)).bind(ws).bind(&as_of), scope)
                    .fetch_all(pool),
                bind_scope!(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(review_sql)).bind(ws).bind(&start).bind(&end), scope)
                    .fetch_all(pool),
                bind_scope!(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(waiting_sql)).bind(ws).bind(&as_of), scope).fetch_one(pool),
            )
            .map_err(map)?
        });
        let partner_wins = won
            .into_iter()
            .map(|(p, c, n, amount, cycle)| {
                Ok(PartnerWins {
                    partner_id: PartnerId::from_string(p),
                    currency: currency(&c)?,
                    won: Tally { count: count(n), amount_minor: amount, cycle_seconds: cycle },
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let mut direct_wins = Vec::new();
        let mut direct_lost = 0;
        for (stage, c, n, amount, cycle) in direct {
            if stage == "closed_won" {
                direct_wins.push((currency(&c)?, Tally { count: count(n), amount_minor: amount, cycle_seconds: cycle }));
            } else {
                direct_lost += count(n);
            }
        }
        let cohort = cohort
            .into_iter()
            .map(|(status, created_at, first)| {
                Ok(CohortPartner {
                    active: status == "active",
                    created_at: from_text(&created_at)?,
                    first_referral_at: opt_from_text(first.as_deref())?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let pipeline = pipeline
            .into_iter()
            .map(|(stage, amount_currency, estimated_currency, n, value)| {
                // The value is the amount where there is one, else the estimate: so is its currency.
                let c = amount_currency.or(estimated_currency);
                // An approved referral without a stage has not reached the pipeline's first stage yet: it counts as new.
                let stage =
                    stage.as_deref().map(|s| Stage::parse("stage", s)).transpose().map_err(|e| StoreError::Other(e.to_string().into()))?;
                Ok(PipelineGroup {
                    stage: stage.unwrap_or(Stage::New),
                    currency: c.as_deref().map(currency).transpose()?,
                    count: count(n),
                    value_minor: value,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Inputs {
            currency: w.currency,
            partner_wins,
            partner_lost: count(lost),
            direct_wins,
            direct_lost,
            cohort,
            registered: count(registered),
            active_partners: count(active),
            dormant_partners: count(dormant),
            pipeline,
            review_seconds: review,
            awaiting_review: count(waiting),
        })
    }

    async fn partner_names(&self, ws: &WorkspaceId, ids: &[PartnerId]) -> StoreResult<HashMap<PartnerId, String>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let marks = (0..ids.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT id, name FROM partners WHERE workspace_id = $1 AND id IN ({marks})");
        let rows: Vec<(String, String)> = on_read!(self, |pool| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(ws.as_str());
            for id in ids {
                q = q.bind(id.as_str());
            }
            q.fetch_all(pool).await.map_err(map)?
        });
        Ok(rows.into_iter().map(|(id, name)| (PartnerId::from_string(id), name)).collect())
    }

    async fn compact_metric_counters(&self) -> StoreResult<u64> {
        match &self.db {
            // One writer at a time: the sums and the delete see the same rows.
            Db::Sqlite { write, .. } => {
                let mut tx = write.begin().await.map_err(map)?;
                let (rows, keys): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), COUNT(DISTINCT workspace_id || '/' || kind || '/' || bucket || '/' || currency) FROM metric_deltas",
                )
                .fetch_one(&mut *tx)
                .await
                .map_err(map)?;
                if rows == keys {
                    return Ok(0);
                }
                let last: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM metric_deltas").fetch_one(&mut *tx).await.map_err(map)?;
                sqlx::query(
                    "INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor, seconds)
                     SELECT workspace_id, kind, bucket, currency, SUM(n), SUM(value_minor), SUM(seconds) FROM metric_deltas WHERE seq <= $1
                     GROUP BY workspace_id, kind, bucket, currency HAVING SUM(n) <> 0 OR SUM(value_minor) <> 0 OR SUM(seconds) <> 0",
                )
                .bind(last)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
                let added: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metric_deltas WHERE seq > $1")
                    .bind(last)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map)?;
                let gone = sqlx::query("DELETE FROM metric_deltas WHERE seq <= $1").bind(last).execute(&mut *tx).await.map_err(map)?;
                tx.commit().await.map_err(map)?;
                Ok(gone.rows_affected().saturating_sub(u64::try_from(added).unwrap_or(0)))
            }
            // One statement, one snapshot: it sums exactly the rows it
            // deleted, so a concurrent compaction (which waits for those
            // rows, then skips them) never counts one twice, and deltas
            // appended meanwhile stay for the next run.
            Db::Postgres(pool) => {
                let (rows, keys): (i64, i64) =
                    sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT (workspace_id, kind, bucket, currency)) FROM metric_deltas")
                        .fetch_one(pool)
                        .await
                        .map_err(map)?;
                if rows == keys {
                    return Ok(0);
                }
                let removed: i64 = sqlx::query_scalar(
                    "WITH gone AS (DELETE FROM metric_deltas RETURNING workspace_id, kind, bucket, currency, n, value_minor, seconds),
                          folded AS (INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor, seconds)
                                     SELECT workspace_id, kind, bucket, currency,
                                            CAST(SUM(n) AS BIGINT), CAST(SUM(value_minor) AS BIGINT), CAST(SUM(seconds) AS BIGINT)
                                     FROM gone GROUP BY workspace_id, kind, bucket, currency
                                     HAVING SUM(n) <> 0 OR SUM(value_minor) <> 0 OR SUM(seconds) <> 0
                                     RETURNING 1)
                     SELECT (SELECT COUNT(*) FROM gone) - (SELECT COUNT(*) FROM folded)",
                )
                .fetch_one(pool)
                .await
                .map_err(map)?;
                Ok(u64::try_from(removed).unwrap_or(0))
            }
        }
    }

    async fn last_referral_at(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Option<Timestamp>> {
        let last: Option<String> =
            on_read!(self, |pool| sqlx::query_scalar("SELECT MAX(created_at) FROM referrals WHERE workspace_id = $1 AND partner_id = $2")
                .bind(ws.as_str())
                .bind(partner.as_str())
                .fetch_one(pool)
                .await
                .map_err(map)?);
        opt_from_text(last.as_deref())
    }
}
