//! Recruitment: ideal-partner criteria, partner applications, and the
//! partner behind a personal referral link.
//!
//! Rules: an application is inserted with its partner and the audit row in
//! one transaction; a decision updates the application only while it is
//! unchanged (`updated_at`) and its partner only while still `applied`, so
//! of two concurrent decisions exactly one lands ([`StoreError::Stale`]).

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::StoreError;
use partnerloop_app::applications::{Application, RecruitmentStore};
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_domain::application::{ApplicationStatus, Criteria, ResponseTime, Score, Weights};
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::partner::{Partner, PartnerStatus};
use partnerloop_domain::{Currency, Money};

use crate::errors::map;
use crate::records::{insert_audit, insert_partner_rows};
use crate::time::{from_text, opt_from_text, opt_to_text, to_text};
use crate::{SqlStore, on_read, on_write};

type CriteriaRow = (String, Option<i64>, Option<i64>, i32, i32, i32, i32, i32);

#[derive(sqlx::FromRow)]
struct ApplicationRow {
    id: String,
    partner_id: String,
    status: String,
    industries: String,
    typical_deal_minor: i64,
    currency: String,
    years_in_business: i32,
    client_count: i32,
    referrals_per_quarter: i32,
    response_time: String,
    message: Option<String>,
    score_total: i32,
    score_audience: i32,
    score_deal_size: i32,
    score_credibility: i32,
    score_responsiveness: i32,
    weight_audience: i32,
    weight_deal_size: i32,
    weight_credibility: i32,
    weight_responsiveness: i32,
    decided_at: Option<String>,
    decided_by: Option<String>,
    decision_reason: Option<String>,
    created_at: String,
    updated_at: String,
}

macro_rules! application_cols {
    () => {
        "id, partner_id, status, industries, typical_deal_minor, currency, years_in_business, client_count, referrals_per_quarter,
         response_time, message, score_total, score_audience, score_deal_size, score_credibility, score_responsiveness,
         weight_audience, weight_deal_size, weight_credibility, weight_responsiveness, decided_at, decided_by, decision_reason,
         created_at, updated_at"
    };
}

fn bad(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("bad stored {what}: {e}").into())
}

fn count(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl TryFrom<ApplicationRow> for Application {
    type Error = StoreError;
    fn try_from(r: ApplicationRow) -> Result<Self, StoreError> {
        let currency = Currency::parse("currency", &r.currency).map_err(|e| bad("currency", e))?;
        Ok(Application {
            id: r.id,
            partner_id: PartnerId::from_string(r.partner_id),
            status: ApplicationStatus::parse("status", &r.status).map_err(|e| bad("status", e))?,
            industries: serde_json::from_str(&r.industries).map_err(|e| bad("industries", e))?,
            typical_deal: Money::from_minor(r.typical_deal_minor, currency),
            years_in_business: count(r.years_in_business),
            client_count: count(r.client_count),
            referrals_per_quarter: count(r.referrals_per_quarter),
            response_time: ResponseTime::parse("response_time", &r.response_time).map_err(|e| bad("response time", e))?,
            message: r.message,
            score: Score {
                total: count(r.score_total),
                audience: count(r.score_audience),
                deal_size: count(r.score_deal_size),
                credibility: count(r.score_credibility),
                responsiveness: count(r.score_responsiveness),
            },
            weights: Weights {
                audience: count(r.weight_audience),
                deal_size: count(r.weight_deal_size),
                credibility: count(r.weight_credibility),
                responsiveness: count(r.weight_responsiveness),
            },
            decided_at: opt_from_text(r.decided_at.as_deref())?,
            decided_by: r.decided_by,
            decision_reason: r.decision_reason,
            created_at: from_text(&r.created_at)?,
            updated_at: from_text(&r.updated_at)?,
        })
    }
}

fn industries_json(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

/// Binds an application's answers, score, weights and decision, in the
/// column order of [`application_cols!`] from `status` on.
macro_rules! bind_application {
    ($q:expr, $a:expr) => {
        $q.bind($a.status.as_str())
            .bind(industries_json(&$a.industries))
            .bind($a.typical_deal.minor())
            .bind($a.typical_deal.currency().code())
            .bind(int($a.years_in_business))
            .bind(int($a.client_count))
            .bind(int($a.referrals_per_quarter))
            .bind($a.response_time.as_str())
            .bind($a.message.as_deref())
            .bind(int($a.score.total))
            .bind(int($a.score.audience))
            .bind(int($a.score.deal_size))
            .bind(int($a.score.credibility))
            .bind(int($a.score.responsiveness))
            .bind(int($a.weights.audience))
            .bind(int($a.weights.deal_size))
            .bind(int($a.weights.credibility))
            .bind(int($a.weights.responsiveness))
            .bind(opt_to_text($a.decided_at))
            .bind($a.decided_by.as_deref())
            .bind($a.decision_reason.as_deref())
    };
}

#[async_trait]
impl RecruitmentStore for SqlStore {
    async fn criteria(&self, ws: &WorkspaceId) -> StoreResult<Option<Criteria>> {
        let row: Option<CriteriaRow> = on_read!(self, |pool| sqlx::query_as(
            "SELECT target_industries, deal_size_min_minor, deal_size_max_minor, referrals_per_quarter,
                    weight_audience, weight_deal_size, weight_credibility, weight_responsiveness
             FROM ideal_partner_criteria WHERE workspace_id = $1",
        )
        .bind(ws.as_str())
        .fetch_optional(pool)
        .await
        .map_err(map)?);
        let Some((industries, min, max, per_quarter, wa, wd, wc, wr)) = row else { return Ok(None) };
        Ok(Some(Criteria {
            target_industries: serde_json::from_str(&industries).map_err(|e| bad("industries", e))?,
            deal_size_band: min.zip(max),
            referrals_per_quarter: count(per_quarter),
            weights: Weights { audience: count(wa), deal_size: count(wd), credibility: count(wc), responsiveness: count(wr) },
        }))
    }

    async fn put_criteria(&self, ws: &WorkspaceId, c: &Criteria, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO ideal_partner_criteria (workspace_id, target_industries, deal_size_min_minor, deal_size_max_minor,
                     referrals_per_quarter, weight_audience, weight_deal_size, weight_credibility, weight_responsiveness, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (workspace_id) DO UPDATE SET target_industries = excluded.target_industries,
                     deal_size_min_minor = excluded.deal_size_min_minor, deal_size_max_minor = excluded.deal_size_max_minor,
                     referrals_per_quarter = excluded.referrals_per_quarter, weight_audience = excluded.weight_audience,
                     weight_deal_size = excluded.weight_deal_size, weight_credibility = excluded.weight_credibility,
                     weight_responsiveness = excluded.weight_responsiveness, updated_at = excluded.updated_at",
            )
            .bind(ws.as_str())
            .bind(industries_json(&c.target_industries))
            .bind(c.deal_size_band.map(|b| b.0))
            .bind(c.deal_size_band.map(|b| b.1))
            .bind(int(c.referrals_per_quarter))
            .bind(int(c.weights.audience))
            .bind(int(c.weights.deal_size))
            .bind(int(c.weights.credibility))
            .bind(int(c.weights.responsiveness))
            .bind(to_text(audit.at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    async fn insert_application(&self, ws: &WorkspaceId, p: &Partner, a: &Application, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            insert_partner_rows!(tx, ws, p);
            let insert = sqlx::query(concat!(
                "INSERT INTO partner_applications (workspace_id, ",
                application_cols!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)"
            ))
            .bind(ws.as_str())
            .bind(&a.id)
            .bind(a.partner_id.as_str());
            bind_application!(insert, a).bind(to_text(a.created_at)).bind(to_text(a.updated_at)).execute(&mut *tx).await.map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    async fn application(&self, ws: &WorkspaceId, id: &str) -> StoreResult<Application> {
        let row: ApplicationRow = on_read!(self, |pool| sqlx::query_as(concat!(
            "SELECT ",
            application_cols!(),
            " FROM partner_applications WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(ws.as_str())
        .bind(id)
        .fetch_one(pool)
        .await
        .map_err(map)?);
        row.try_into()
    }

    async fn application_of_partner(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Option<Application>> {
        let row: Option<ApplicationRow> = on_read!(self, |pool| sqlx::query_as(concat!(
            "SELECT ",
            application_cols!(),
            " FROM partner_applications WHERE workspace_id = $1 AND partner_id = $2"
        ))
        .bind(ws.as_str())
        .bind(partner.as_str())
        .fetch_optional(pool)
        .await
        .map_err(map)?);
        row.map(Application::try_from).transpose()
    }

    async fn list_applications(&self, ws: &WorkspaceId, status: ApplicationStatus, limit: u32) -> StoreResult<Vec<Application>> {
        let rows: Vec<ApplicationRow> = on_read!(self, |pool| sqlx::query_as(concat!(
            "SELECT ",
            application_cols!(),
            " FROM partner_applications WHERE workspace_id = $1 AND status = $2 ORDER BY score_total DESC, created_at, id LIMIT $3"
        ))
        .bind(ws.as_str())
        .bind(status.as_str())
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter().map(Application::try_from).collect()
    }

    async fn update_application(
        &self,
        ws: &WorkspaceId,
        a: &Application,
        expected: Timestamp,
        partner_status: Option<PartnerStatus>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let update = sqlx::query(
                "UPDATE partner_applications SET status = $1, industries = $2, typical_deal_minor = $3, currency = $4,
                     years_in_business = $5, client_count = $6, referrals_per_quarter = $7, response_time = $8, message = $9,
                     score_total = $10, score_audience = $11, score_deal_size = $12, score_credibility = $13, score_responsiveness = $14,
                     weight_audience = $15, weight_deal_size = $16, weight_credibility = $17, weight_responsiveness = $18,
                     decided_at = $19, decided_by = $20, decision_reason = $21, updated_at = $22
                 WHERE workspace_id = $23 AND id = $24 AND updated_at = $25",
            );
            let done = bind_application!(update, a)
                .bind(to_text(a.updated_at))
                .bind(ws.as_str())
                .bind(&a.id)
                .bind(to_text(expected))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Stale);
            }
            if let Some(status) = partner_status {
                let moved = sqlx::query(
                    "UPDATE partners SET status = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4 AND status = 'applied'",
                )
                .bind(status.as_str())
                .bind(to_text(a.updated_at))
                .bind(ws.as_str())
                .bind(a.partner_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map)?;
                if moved.rows_affected() != 1 {
                    return Err(StoreError::Stale);
                }
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    async fn partner_id_by_contact_email(&self, ws: &WorkspaceId, email: &str) -> StoreResult<Option<PartnerId>> {
        let id: Option<String> =
            on_read!(self, |pool| sqlx::query_scalar("SELECT partner_id FROM partner_contacts WHERE workspace_id = $1 AND email = $2")
                .bind(ws.as_str())
                .bind(email)
                .fetch_optional(pool)
                .await
                .map_err(map)?);
        Ok(id.map(PartnerId::from_string))
    }

    async fn partner_by_referral_code(&self, code: &str) -> StoreResult<Option<(WorkspaceId, Partner)>> {
        let found: Option<(String, String)> =
            on_read!(self, |pool| sqlx::query_as("SELECT workspace_id, id FROM partners WHERE referral_code = $1")
                .bind(code)
                .fetch_optional(pool)
                .await
                .map_err(map)?);
        let Some((ws, id)) = found else { return Ok(None) };
        let ws = WorkspaceId::from_string(ws);
        let partner = self.partner_(&ws, &PartnerId::from_string(id)).await?;
        Ok(Some((ws, partner)))
    }
}
