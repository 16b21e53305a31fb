//! `/api/v1/tiers` and a partner's tier: the workspace's ladder (admin
//! writes, everyone reads), evaluation on demand (admin), and each
//! partner's tier, progress and history (admin or that partner).
//!
//! Shapes: a threshold and a measure value are a whole number for a
//! `won_count` ladder and `{"amount","currency"}` for a `won_revenue` one
//! (a revenue threshold may also be written `0`).

use axum::Json;
use axum::extract::{Path, State};
use partnerloop_app::tiers::{self, EvaluationReport, StoredLadder, TierHistoryEntry, TierProgress};
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::tier::{DEFAULT_GRACE_DAYS, MAX_GRACE_DAYS, Measure, Tier, TierLadder};
use partnerloop_domain::{Currency, FieldError, Money, Validator};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::MoneyDto;
use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_ladder, get_ladder))
        .routes(routes!(evaluate))
        .routes(routes!(partner_tier))
        .routes(routes!(partner_tier_history))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TierIn {
    /// Lower-case letters, digits, '-' or '_': the key of a tiered plan's rates.
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub benefits: Option<String>,
    /// A whole number (won_count), or {"amount","currency"} or 0 (won_revenue).
    #[schema(value_type = Object)]
    pub threshold: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LadderPut {
    /// won_count | won_revenue (over the trailing 12 months)
    pub measure: String,
    /// won_revenue: the one currency that counts (default: the thresholds' currency).
    #[serde(default)]
    pub currency: Option<String>,
    /// Days below a tier's threshold before the partner loses it (default 90).
    #[serde(default)]
    pub requalification_grace_days: Option<i64>,
    /// Lowest first, thresholds ascending.
    pub tiers: Vec<TierIn>,
}

impl LadderPut {
    /// Shapes first (measure, currency, thresholds); then the ladder's own
    /// rules. The console's ladder editor parses through here too.
    pub(crate) fn parse(self) -> Result<TierLadder, Vec<FieldError>> {
        let mut v = Validator::new();
        let revenue = match self.measure.trim() {
            "won_count" => Some(false),
            "won_revenue" => Some(true),
            other => v.check(Err(FieldError::new("measure", format!("'{other}' is not one of: won_count, won_revenue")))),
        };
        let currency = match (revenue, &self.currency) {
            (Some(false), Some(_)) => v.check(Err(FieldError::new("currency", "only applies to measure won_revenue"))),
            (Some(true), Some(c)) => v.check(Currency::parse("currency", c)).map(Some),
            (Some(true), None) => v.check(threshold_currency(&self.tiers)).map(Some),
            _ => Some(None),
        };
        let grace = match self.requalification_grace_days {
            None => Some(DEFAULT_GRACE_DAYS),
            Some(d) => v.check(
                u32::try_from(d).map_err(|_| FieldError::new("requalification_grace_days", format!("must be from 0 to {MAX_GRACE_DAYS}"))),
            ),
        };
        let measure = match (revenue, currency) {
            (Some(true), Some(Some(c))) => Some(Measure::WonRevenue(c)),
            (Some(false), Some(_)) => Some(Measure::WonCount),
            _ => None,
        };
        let mut tiers = Vec::with_capacity(self.tiers.len());
        for (i, t) in self.tiers.into_iter().enumerate() {
            let field = format!("tiers[{i}].threshold");
            let threshold = measure.and_then(|m| v.check(parse_threshold(&field, &t.threshold, m)));
            tiers.push(threshold.map(|threshold| Tier { slug: t.slug, name: t.name, benefits: t.benefits.unwrap_or_default(), threshold }));
        }
        let (measure, grace, tiers) = v.finish(|| Some((measure?, grace?, tiers.into_iter().collect::<Option<Vec<_>>>()?)))?;
        TierLadder::new(measure, tiers, grace)
    }
}

/// A revenue ladder without a `currency` takes its thresholds' currency.
fn threshold_currency(tiers: &[TierIn]) -> Result<Currency, FieldError> {
    let given = tiers.iter().enumerate().find_map(|(i, t)| t.threshold.get("currency").and_then(Value::as_str).map(|c| (i, c)));
    match given {
        Some((i, c)) => Currency::parse(&format!("tiers[{i}].threshold.currency"), c),
        None => Err(FieldError::new("currency", "is required for measure won_revenue")),
    }
}

fn parse_threshold(field: &str, input: &Value, measure: Measure) -> Result<i64, FieldError> {
    let Measure::WonRevenue(currency) = measure else {
        return input.as_i64().ok_or_else(|| FieldError::new(field, "must be a whole number of won referrals, 0 or more"));
    };
    if input.as_i64() == Some(0) {
        return Ok(0);
    }
    let dto: MoneyDto = serde_json::from_value(input.clone()).map_err(|_| {
        FieldError::new(field, format!("must be an amount like {{\"amount\": \"50000.00\", \"currency\": \"{currency}\"}}, or 0"))
    })?;
    let money: Money = dto.parse_non_negative(field)?;
    if money.currency() != currency {
        return Err(FieldError::new(format!("{field}.currency"), format!("must be {currency}, the ladder's currency")));
    }
    Ok(money.minor())
}

/// A threshold or measure value in the ladder's shape.
fn measured(m: Measure, value: i64) -> Value {
    match m.money(value) {
        Some(money) => json!(MoneyDto::from(&money)),
        None => json!(value),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierOut {
    pub slug: String,
    pub name: String,
    pub benefits: String,
    #[schema(value_type = Object)]
    pub threshold: Value,
}

fn tier_out(m: Measure, t: &Tier) -> TierOut {
    TierOut { slug: t.slug.clone(), name: t.name.clone(), benefits: t.benefits.clone(), threshold: measured(m, t.threshold) }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LadderOut {
    pub measure: String,
    pub currency: Option<String>,
    pub requalification_grace_days: u32,
    pub tiers: Vec<TierOut>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
}

fn ladder_out(s: &StoredLadder) -> LadderOut {
    let m = s.ladder.measure();
    LadderOut {
        measure: m.name().into(),
        currency: m.currency().map(|c| c.code().to_owned()),
        requalification_grace_days: s.ladder.requalification_grace_days(),
        tiers: s.ladder.tiers().iter().map(|t| tier_out(m, t)).collect(),
        updated_at: s.updated_at,
    }
}

/// Define or replace the workspace's tier ladder (admin).
#[utoipa::path(put, path = "/api/v1/tiers", tag = "tiers", request_body = LadderPut,
    responses((status = 200, body = LadderOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_ladder(State(s): State<AppState>, Auth(ctx): Auth, ApiJson(body): ApiJson<LadderPut>) -> Result<Json<LadderOut>, ApiError> {
    // A partner learns it may not, before learning what is wrong with its body.
    ctx.require_admin()?;
    let stored = tiers::put_ladder(s.store.as_ref(), &ctx, body.parse().map_err(ApiError::from)?).await?;
    Ok(Json(ladder_out(&stored)))
}

/// The workspace's tier ladder, with each tier's benefits.
#[utoipa::path(get, path = "/api/v1/tiers", tag = "tiers", responses((status = 200, body = LadderOut), (status = 404, body = Problem)))]
async fn get_ladder(State(s): State<AppState>, Auth(ctx): Auth) -> Result<Json<LadderOut>, ApiError> {
    Ok(Json(ladder_out(&tiers::ladder(s.store.as_ref(), &ctx).await?)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationOut {
    pub evaluated: u64,
    pub promoted: u64,
    pub demoted: u64,
    /// Below their tier's threshold, inside the grace period.
    pub at_risk: u64,
    /// Held a tier that is not on the ladder and got the one they meet.
    pub reassigned: u64,
}

impl From<EvaluationReport> for EvaluationOut {
    fn from(r: EvaluationReport) -> Self {
        Self { evaluated: r.evaluated, promoted: r.promoted, demoted: r.demoted, at_risk: r.at_risk, reassigned: r.reassigned }
    }
}

/// Evaluate every partner's tier now (admin); the scheduler does it hourly.
#[utoipa::path(post, path = "/api/v1/tiers/evaluate", tag = "tiers",
    responses((status = 200, body = EvaluationOut), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn evaluate(State(s): State<AppState>, Auth(ctx): Auth) -> Result<Json<EvaluationOut>, ApiError> {
    Ok(Json(tiers::evaluate_workspace(s.store.as_ref(), &ctx).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerTierOut {
    pub partner_id: String,
    /// The partner's tier slug, null for none.
    pub tier: Option<String>,
    pub tier_name: Option<String>,
    pub benefits: Option<String>,
    /// won_count | won_revenue, over the trailing 12 months.
    pub measure: String,
    #[schema(value_type = Object)]
    pub measure_value: Value,
    pub next_tier: Option<TierOut>,
    /// What the measure still lacks for the next tier.
    #[schema(value_type = Object)]
    pub remaining: Option<Value>,
    /// Since when the partner is below its tier's threshold.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at_risk_since: Option<jiff::Timestamp>,
    /// When the partner loses its tier unless it requalifies first.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub demotion_at: Option<jiff::Timestamp>,
}

pub fn progress_out(p: TierProgress) -> PartnerTierOut {
    let m = p.measure;
    let current = p.current.as_ref();
    PartnerTierOut {
        partner_id: p.partner_id.to_string(),
        tier_name: current.map(|t| t.name.clone()),
        benefits: current.map(|t| t.benefits.clone()),
        tier: p.tier,
        measure: m.name().into(),
        measure_value: measured(m, p.value),
        next_tier: p.next.as_ref().map(|(t, _)| tier_out(m, t)),
        remaining: p.next.as_ref().map(|(_, left)| measured(m, *left)),
        at_risk_since: p.at_risk_since,
        demotion_at: p.demotion_at,
    }
}

/// A partner's tier, measure and progress to the next tier (admin or that partner).
#[utoipa::path(get, path = "/api/v1/partners/{id}/tier", tag = "tiers",
    responses((status = 200, body = PartnerTierOut), (status = 404, body = Problem)))]
async fn partner_tier(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<PartnerTierOut>, ApiError> {
    let progress = tiers::progress(s.store.as_ref(), &ctx, &PartnerId::from_string(id)).await?;
    Ok(Json(progress_out(progress)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierHistoryOut {
    pub seq: i64,
    pub from_tier: Option<String>,
    pub to_tier: Option<String>,
    pub measure: String,
    #[schema(value_type = Object)]
    pub measure_value: Value,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    pub actor: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierHistoryList {
    /// Oldest first.
    pub data: Vec<TierHistoryOut>,
}

fn history_out(h: &TierHistoryEntry) -> TierHistoryOut {
    TierHistoryOut {
        seq: h.seq,
        from_tier: h.from_tier.clone(),
        to_tier: h.to_tier.clone(),
        measure: h.measure.name().into(),
        measure_value: measured(h.measure, h.value),
        at: h.at,
        actor: h.actor.clone(),
        reason: h.reason.clone(),
    }
}

/// A partner's tier changes, oldest first (admin or that partner).
#[utoipa::path(get, path = "/api/v1/partners/{id}/tier-history", tag = "tiers",
    responses((status = 200, body = TierHistoryList), (status = 404, body = Problem)))]
async fn partner_tier_history(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> Result<Json<TierHistoryList>, ApiError> {
    let list = tiers::history(s.store.as_ref(), &ctx, &PartnerId::from_string(id)).await?;
    Ok(Json(TierHistoryList { data: list.iter().map(history_out).collect() }))
}
