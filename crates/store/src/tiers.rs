//! Partner tiers: the ladder, the trailing-12-month measure, evaluation
//! state and the append-only tier history.
//!
//! Rules: the measure of every partner is one aggregate query; a tier
//! change updates `partners.tier` only while it still holds the tier the
//! evaluation read (else [`StoreError::Stale`]), and writes its history,
//! state and audit rows in the same transaction; history rows are never
//! updated or deleted.

use jiff::Timestamp;
use partnerloop_app::error::StoreError;
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_app::tiers::{PartnerMeasure, StoredLadder, TierChange, TierHistoryEntry, TierState};
use partnerloop_domain::FieldError;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::tier::{Measure, Tier, TierLadder};

use crate::errors::map;
use crate::records::insert_audit;
use crate::time::{from_text, opt_from_text, opt_to_text, to_text};
use crate::{SqlStore, on_read, on_write};

use crate::rows::bad;

#[derive(sqlx::FromRow)]
struct LadderTierRow {
    measure: String,
    currency: Option<String>,
    grace_days: i32,
    updated_at: String,
    slug: String,
    name: String,
    benefits: String,
    threshold_minor_or_count: i64,
}

#[derive(sqlx::FromRow)]
struct StateRow {
    partner_id: String,
    tier: Option<String>,
    tier_since: String,
    below_since: Option<String>,
    evaluated_at: String,
}

impl TryFrom<StateRow> for TierState {
    type Error = StoreError;
    fn try_from(r: StateRow) -> Result<Self, StoreError> {
        Ok(TierState {
            partner_id: PartnerId::from_string(r.partner_id),
            tier: r.tier,
            tier_since: from_text(&r.tier_since)?,
            below_since: opt_from_text(r.below_since.as_deref())?,
            evaluated_at: from_text(&r.evaluated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    seq: i64,
    partner_id: String,
    from_tier: Option<String>,
    to_tier: Option<String>,
    measure: String,
    measure_value: i64,
    currency: Option<String>,
    at: String,
    actor: String,
    reason: String,
}

impl TryFrom<HistoryRow> for TierHistoryEntry {
    type Error = StoreError;
    fn try_from(r: HistoryRow) -> Result<Self, StoreError> {
        Ok(TierHistoryEntry {
            seq: r.seq,
            partner_id: PartnerId::from_string(r.partner_id),
            from_tier: r.from_tier,
            to_tier: r.to_tier,
            measure: Measure::parse("measure", &r.measure, r.currency.as_deref()).map_err(bad)?,
            value: r.measure_value,
            at: from_text(&r.at)?,
            actor: r.actor,
            reason: r.reason,
        })
    }
}

/// Inserts or replaces one partner's evaluation state inside `$tx` — only
/// while the partner still holds the state's tier, so that a slower
/// evaluation never overwrites the state of a change made meanwhile.
macro_rules! upsert_state {
    ($tx:expr, $ws:expr, $partner:expr, $tier:expr, $since:expr, $below:expr, $at:expr) => {
        sqlx::query(
            "INSERT INTO partner_tier_state (workspace_id, partner_id, tier, tier_since, below_since, evaluated_at)
             SELECT $1, $2, $3, $4, $5, $6 FROM partners
             WHERE workspace_id = $1 AND id = $2 AND (tier = $3 OR (tier IS NULL AND $3 IS NULL))
             ON CONFLICT (workspace_id, partner_id) DO UPDATE SET tier = excluded.tier, tier_since = excluded.tier_since,
             below_since = excluded.below_since, evaluated_at = excluded.evaluated_at",
        )
        .bind($ws.as_str())
        .bind($partner.as_str())
        .bind($tier)
        .bind(to_text($since))
        .bind(opt_to_text($below))
        .bind(to_text($at))
        .execute(&mut *$tx)
        .await
        .map_err(map)?
    };
}

impl SqlStore {
    pub(crate) async fn put_tier_ladder_(&self, ws: &WorkspaceId, stored: &StoredLadder, audit: &AuditEntry) -> StoreResult<()> {
        let l = &stored.ladder;
        let grace = i32::try_from(l.requalification_grace_days()).unwrap_or(i32::MAX);
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO tier_ladders (workspace_id, measure, currency, grace_days, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (workspace_id) DO UPDATE
                 SET measure = excluded.measure, currency = excluded.currency, grace_days = excluded.grace_days, updated_at = excluded.updated_at",
            )
            .bind(ws.as_str())
            .bind(l.measure().name())
            .bind(l.measure().currency().map(|c| c.code().to_owned()))
            .bind(grace)
            .bind(to_text(stored.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            sqlx::query("DELETE FROM tiers WHERE workspace_id = $1").bind(ws.as_str()).execute(&mut *tx).await.map_err(map)?;
            for (position, t) in l.tiers().iter().enumerate() {
                sqlx::query(
                    "INSERT INTO tiers (workspace_id, slug, name, benefits, threshold_minor_or_count, position) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(ws.as_str())
                .bind(&t.slug)
                .bind(&t.name)
                .bind(&t.benefits)
                .bind(t.threshold)
                .bind(i32::try_from(position).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    /// The ladder and its tiers in one statement, so a concurrent
    /// replacement is never seen half-done.
    pub(crate) async fn tier_ladder_(&self, ws: &WorkspaceId) -> StoreResult<Option<StoredLadder>> {
        let rows: Vec<LadderTierRow> = on_read!(self, |pool| {
            sqlx::query_as(
                "SELECT l.measure, l.currency, l.grace_days, l.updated_at, t.slug, t.name, t.benefits, t.threshold_minor_or_count
                 FROM tier_ladders l JOIN tiers t ON t.workspace_id = l.workspace_id
                 WHERE l.workspace_id = $1 ORDER BY t.position",
            )
            .bind(ws.as_str())
            .fetch_all(pool)
            .await
            .map_err(map)?
        });
        let Some(first) = rows.first() else { return Ok(None) };
        let measure = Measure::parse("measure", &first.measure, first.currency.as_deref()).map_err(bad)?;
        let grace = u32::try_from(first.grace_days).map_err(|_| bad(FieldError::new("grace_days", "is negative")))?;
        let updated_at = from_text(&first.updated_at)?;
        let tiers = rows
            .into_iter()
            .map(|r| Tier { slug: r.slug, name: r.name, benefits: r.benefits, threshold: r.threshold_minor_or_count })
            .collect();
        let ladder = TierLadder::new(measure, tiers, grace).map_err(|mut e| bad(e.remove(0)))?;
        Ok(Some(StoredLadder { ladder, updated_at }))
    }

    pub(crate) async fn tier_ladder_workspaces_(&self) -> StoreResult<Vec<WorkspaceId>> {
        let ids: Vec<String> = on_read!(self, |pool| {
            sqlx::query_scalar("SELECT workspace_id FROM tier_ladders ORDER BY workspace_id").fetch_all(pool).await.map_err(map)?
        });
        Ok(ids.into_iter().map(WorkspaceId::from_string).collect())
    }

    /// Won referrals are summed per partner first, then joined to the
    /// partners, so partners without wins appear with 0. A count ladder
    /// passes no currency: every win counts 1.
    pub(crate) async fn tier_measures_(
        &self,
        ws: &WorkspaceId,
        measure: Measure,
        from: Timestamp,
        to: Timestamp,
        only: Option<&PartnerId>,
    ) -> StoreResult<Vec<PartnerMeasure>> {
        let currency = measure.currency().map(|c| c.code().to_owned());
        let rows: Vec<(String, Option<String>, i64)> = on_read!(self, |pool| {
            sqlx::query_as(
                "SELECT p.id, p.tier, CAST(COALESCE(w.value, 0) AS BIGINT)
                 FROM partners p LEFT JOIN (
                     SELECT partner_id,
                            SUM(CASE WHEN $1 IS NULL THEN 1 WHEN amount_currency = $1 THEN amount_minor ELSE 0 END) AS value
                     FROM referrals
                     WHERE workspace_id = $2 AND status = 'won' AND closed_at >= $3 AND closed_at <= $4
                     GROUP BY partner_id
                 ) w ON w.partner_id = p.id
                 WHERE p.workspace_id = $2 AND (($5 IS NULL AND p.status <> 'archived') OR p.id = $5)
                 ORDER BY p.id",
            )
            .bind(currency.as_deref())
            .bind(ws.as_str())
            .bind(to_text(from))
            .bind(to_text(to))
            .bind(only.map(|p| p.as_str()))
            .fetch_all(pool)
            .await
            .map_err(map)?
        });
        Ok(rows.into_iter().map(|(id, tier, value)| PartnerMeasure { partner_id: PartnerId::from_string(id), tier, value }).collect())
    }

    pub(crate) async fn tier_states_(&self, ws: &WorkspaceId, only: Option<&PartnerId>) -> StoreResult<Vec<TierState>> {
        let rows: Vec<StateRow> = on_read!(self, |pool| {
            sqlx::query_as(
                "SELECT partner_id, tier, tier_since, below_since, evaluated_at FROM partner_tier_state
                 WHERE workspace_id = $1 AND ($2 IS NULL OR partner_id = $2) ORDER BY partner_id",
            )
            .bind(ws.as_str())
            .bind(only.map(|p| p.as_str()))
            .fetch_all(pool)
            .await
            .map_err(map)?
        });
        rows.into_iter().map(TierState::try_from).collect()
    }

    pub(crate) async fn put_tier_states_(&self, ws: &WorkspaceId, states: &[TierState], audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            for s in states {
                upsert_state!(tx, ws, s.partner_id, s.tier.as_deref(), s.tier_since, s.below_since, s.evaluated_at);
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn change_partner_tier_(&self, ws: &WorkspaceId, c: &TierChange) -> StoreResult<()> {
        let at = c.audit.at;
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let done = sqlx::query(
                "UPDATE partners SET tier = $1, updated_at = $2
                 WHERE workspace_id = $3 AND id = $4 AND (tier = $5 OR (tier IS NULL AND $5 IS NULL))",
            )
            .bind(c.to.as_deref())
            .bind(to_text(at))
            .bind(ws.as_str())
            .bind(c.partner_id.as_str())
            .bind(c.from.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Stale);
            }
            sqlx::query(
                "INSERT INTO partner_tier_history (workspace_id, partner_id, from_tier, to_tier, measure, measure_value, currency, at, actor, reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(ws.as_str())
            .bind(c.partner_id.as_str())
            .bind(c.from.as_deref())
            .bind(c.to.as_deref())
            .bind(c.measure.name())
            .bind(c.value)
            .bind(c.measure.currency().map(|x| x.code().to_owned()))
            .bind(to_text(at))
            .bind(&c.audit.actor)
            .bind(&c.reason)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            // The new tier starts its own clock: held since now, not below.
            upsert_state!(tx, ws, c.partner_id, c.to.as_deref(), at, None::<Timestamp>, at);
            insert_audit!(tx, ws, &c.audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn tier_history_(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Vec<TierHistoryEntry>> {
        let rows: Vec<HistoryRow> = on_read!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, partner_id, from_tier, to_tier, measure, measure_value, currency, at, actor, reason
                 FROM partner_tier_history WHERE workspace_id = $1 AND partner_id = $2 ORDER BY seq",
            )
            .bind(ws.as_str())
            .bind(partner.as_str())
            .fetch_all(pool)
            .await
            .map_err(map)?
        });
        rows.into_iter().map(TierHistoryEntry::try_from).collect()
    }
}
