//! `GET /api/v1/metrics` (admins) and `GET /api/v1/partners/{id}/scorecard`
//! (admin or that partner): the program's KPIs as API.md names them, plus
//! extensions (never renamed): win rates, sales cycles, pipeline, review
//! times, dormancy, top partners, figures per currency and per month.
//!
//! Rates and days are JSON numbers (exact decimals rounded by the domain,
//! 4 and 2 places), money is `{"amount","currency"}`, a figure without a
//! denominator is null. Bad parameters are 422 problems naming each field.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::civil::Date;
use partnerloop_app::metrics::{self as kpis, MetricsQuery, Scope};
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::metrics::{self, CurrencyFigures, Decimal, Period, Report, Sides};
use partnerloop_domain::{Currency, FieldError, Money, Validator};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::MoneyDto;
use super::tiers::{PartnerTierOut, progress_out};
use crate::AppState;
use crate::extract::Auth;
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_metrics)).routes(routes!(partner_scorecard))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsParams {
    /// First day, inclusive (`YYYY-MM-DD`, UTC). Default: the beginning.
    pub from: Option<String>,
    /// Last day, inclusive (`YYYY-MM-DD`, UTC). Default: today and after.
    pub to: Option<String>,
    /// Only this partner's referrals (direct figures stay the workspace's).
    pub partner_id: Option<String>,
    /// Only the partners now holding this tier (slug).
    pub tier: Option<String>,
    /// ISO 4217 code of the money figures (default: the workspace's currency).
    pub currency: Option<String>,
    /// `month`: also list each calendar month of the period (from and to required).
    pub group_by: Option<String>,
}

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_date(field: &str, s: &str) -> Result<Date, FieldError> {
    if s.len() != 10 {
        return Err(FieldError::new(field, format!("'{s}' is not a date like 2026-01-31")));
    }
    s.parse().map_err(|_| FieldError::new(field, format!("'{s}' is not a date like 2026-01-31")))
}

/// `from`, `to` and `currency`, every bad one reported.
fn period_and_currency(
    v: &mut Validator,
    from: &Option<String>,
    to: &Option<String>,
    currency: &Option<String>,
) -> Option<(Period, Option<Currency>)> {
    let from = v.check_opt(given(from), |s| parse_date("from", s));
    let to = v.check_opt(given(to), |s| parse_date("to", s));
    let currency = v.check_opt(given(currency), |s| Currency::parse("currency", s));
    let period = match (from, to) {
        (Some(f), Some(t)) => v.check(Period::new(f, t)),
        _ => None,
    };
    Some((period?, currency?))
}

impl MetricsParams {
    fn parse(&self) -> Result<MetricsQuery, ApiError> {
        let mut v = Validator::new();
        let pc = period_and_currency(&mut v, &self.from, &self.to, &self.currency);
        let scope = match (given(&self.partner_id), given(&self.tier)) {
            (Some(_), Some(_)) => v.check(Err(FieldError::new("tier", "cannot be combined with partner_id"))),
            (Some(p), None) => Some(Some(Scope::Partner(PartnerId::from_string(p.to_owned())))),
            (None, Some(t)) if t.len() > 64 => v.check(Err(FieldError::new("tier", "is longer than 64 characters"))),
            (None, Some(t)) => Some(Some(Scope::Tier(t.to_owned()))),
            (None, None) => Some(None),
        };
        let by_month = match given(&self.group_by) {
            None => Some(false),
            Some("month") => Some(true),
            Some(other) => v.check(Err(FieldError::new("group_by", format!("'{other}' is not one of: month")))),
        };
        Ok(v.finish(|| {
            let (period, currency) = pc?;
            Some(MetricsQuery { period, scope: scope?, currency, by_month: by_month? })
        })?)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SidesMoney {
    pub partner: Option<MoneyDto>,
    pub direct: Option<MoneyDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SidesNumber {
    pub partner: Option<f64>,
    pub direct: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SidesCount {
    pub partner: u64,
    pub direct: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageOut {
    /// new | qualified | meeting | proposal | negotiation
    pub stage: String,
    /// Open referrals at this stage (every currency).
    pub count: u64,
    /// Their amount, else estimate, in the report's currency.
    pub value: MoneyDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewOut {
    /// Referrals decided by a person (approve/reject after review) in the period.
    pub decisions: u64,
    /// Median hours from registration to that decision.
    pub median_hours: Option<f64>,
    /// Waiting for review at the period's end (or now).
    pub awaiting: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopPartnerOut {
    pub partner_id: String,
    pub name: Option<String>,
    pub revenue: MoneyDto,
    pub won: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyOut {
    pub partner_sourced_revenue: MoneyDto,
    pub average_deal_size: SidesMoney,
    pub won: SidesCount,
    pub pipeline_value: MoneyDto,
}

/// Every KPI of one period.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpisOut {
    /// Active partners created in the period with at least one referral ÷ active partners created in the period.
    pub partner_activation_rate: Option<f64>,
    /// Won ÷ (won + lost) referrals closed in the period.
    pub referral_to_closed_won_rate: Option<f64>,
    /// Sum of won referral amounts closed in the period, in `currency`.
    pub partner_sourced_revenue: MoneyDto,
    /// Mean won amount of partner-sourced and of direct deals, in `currency`.
    pub average_deal_size: SidesMoney,
    /// Median over partners created in the period that have one of (first referral − joined), in days.
    pub median_days_to_first_referral: Option<f64>,
    /// Won ÷ (won + lost), partner-sourced (= referral_to_closed_won_rate) and direct.
    pub win_rate: SidesNumber,
    /// Mean days from registration (direct: creation) to Closed Won.
    pub mean_sales_cycle_days: SidesNumber,
    pub won: SidesCount,
    pub lost: SidesCount,
    /// Referrals registered in the period.
    pub referrals_registered: u64,
    /// Partners active at the period's end (or now).
    pub active_partners: u64,
    pub referrals_per_active_partner: Option<f64>,
    /// Active partners without a referral in the 90 days before the period's end (or now).
    pub dormant_partners: u64,
    pub partners_created: u64,
    pub partners_activated: u64,
    /// Open partner-sourced pipeline by stage.
    pub pipeline: Vec<StageOut>,
    pub review: ReviewOut,
    /// Up to 10 partners by revenue in `currency`.
    pub top_partners: Vec<TopPartnerOut>,
    /// Money figures in every currency present (never summed across currencies).
    pub by_currency: BTreeMap<String, CurrencyOut>,
}

fn money(m: &Money) -> MoneyDto {
    MoneyDto::from(m)
}

fn num(d: Option<Decimal>) -> Option<f64> {
    d.map(metrics::number)
}

fn sides_money(s: &Sides<Option<Money>>) -> SidesMoney {
    SidesMoney { partner: s.partner.as_ref().map(money), direct: s.direct.as_ref().map(money) }
}

fn currency_out(f: &CurrencyFigures) -> CurrencyOut {
    CurrencyOut {
        partner_sourced_revenue: money(&f.partner_sourced_revenue),
        average_deal_size: sides_money(&f.average_deal_size),
        won: SidesCount { partner: f.won.partner, direct: f.won.direct },
        pipeline_value: money(&f.pipeline_value),
    }
}

fn pipeline_out(r: &Report) -> Vec<StageOut> {
    r.pipeline.iter().map(|s| StageOut { stage: s.stage.as_str().into(), count: s.count, value: money(&s.value) }).collect()
}

pub fn kpis_out(r: &Report, names: &std::collections::HashMap<PartnerId, String>) -> KpisOut {
    KpisOut {
        partner_activation_rate: num(r.partner_activation_rate),
        referral_to_closed_won_rate: num(r.referral_to_closed_won_rate),
        partner_sourced_revenue: money(&r.partner_sourced_revenue),
        average_deal_size: sides_money(&r.average_deal_size),
        median_days_to_first_referral: num(r.median_days_to_first_referral),
        win_rate: SidesNumber { partner: num(r.win_rate.partner), direct: num(r.win_rate.direct) },
        mean_sales_cycle_days: SidesNumber { partner: num(r.mean_sales_cycle_days.partner), direct: num(r.mean_sales_cycle_days.direct) },
        won: SidesCount { partner: r.won.partner, direct: r.won.direct },
        lost: SidesCount { partner: r.lost.partner, direct: r.lost.direct },
        referrals_registered: r.referrals_registered,
        active_partners: r.active_partners,
        referrals_per_active_partner: num(r.referrals_per_active_partner),
        dormant_partners: r.dormant_partners,
        partners_created: r.partners_created,
        partners_activated: r.partners_activated,
        pipeline: pipeline_out(r),
        review: ReviewOut { decisions: r.review_decisions, median_hours: num(r.median_review_hours), awaiting: r.awaiting_review },
        top_partners: r
            .top_partners
            .iter()
            .map(|t| TopPartnerOut {
                partner_id: t.partner_id.to_string(),
                name: names.get(&t.partner_id).cloned(),
                revenue: money(&t.revenue),
                won: t.won,
            })
            .collect(),
        by_currency: r.by_currency.iter().map(|(c, f)| (c.clone(), currency_out(f))).collect(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodOut {
    /// `YYYY-MM`
    pub period: String,
    #[schema(value_type = String, format = Date)]
    pub from: Option<String>,
    #[schema(value_type = String, format = Date)]
    pub to: Option<String>,
    #[serde(flatten)]
    pub kpis: KpisOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsOut {
    /// The currency of the money figures.
    pub currency: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub partner_id: Option<String>,
    pub tier: Option<String>,
    #[serde(flatten)]
    pub kpis: KpisOut,
    /// With `group_by=month`: each month of the period, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periods: Option<Vec<PeriodOut>>,
}

/// The program's KPIs (admin).
#[utoipa::path(get, path = "/api/v1/metrics", tag = "metrics", params(MetricsParams),
    responses((status = 200, body = MetricsOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn get_metrics(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(params): Query<MetricsParams>,
) -> Result<Json<MetricsOut>, ApiError> {
    let q = params.parse()?;
    let by_month = q.by_month;
    let scope = q.scope.clone();
    let m = kpis::workspace_metrics(state.store.as_ref(), &ctx, q).await?;
    let periods = by_month.then(|| {
        m.months
            .iter()
            .map(|(p, r)| PeriodOut {
                period: p.month_label().unwrap_or_default(),
                from: p.from.map(|d| d.to_string()),
                to: p.to.map(|d| d.to_string()),
                kpis: kpis_out(r, &m.names),
            })
            .collect()
    });
    Ok(Json(MetricsOut {
        currency: m.report.currency.code().to_owned(),
        from: m.period.from.map(|d| d.to_string()),
        to: m.period.to.map(|d| d.to_string()),
        partner_id: match &scope {
            Some(Scope::Partner(p)) => Some(p.to_string()),
            _ => None,
        },
        tier: match &scope {
            Some(Scope::Tier(t)) => Some(t.clone()),
            _ => None,
        },
        kpis: kpis_out(&m.report, &m.names),
        periods,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScorecardParams {
    /// First day, inclusive (`YYYY-MM-DD`, UTC).
    pub from: Option<String>,
    /// Last day, inclusive (`YYYY-MM-DD`, UTC).
    pub to: Option<String>,
    /// ISO 4217 code of the money figures (default: the workspace's currency).
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceOut {
    pub currency: String,
    pub pending: MoneyDto,
    pub payable: MoneyDto,
    pub paid: MoneyDto,
}

/// A partner's own money figures in one currency (no vendor figures).
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerCurrencyOut {
    pub revenue: MoneyDto,
    pub average_deal_size: Option<MoneyDto>,
    pub won: u64,
    pub pipeline_value: MoneyDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScorecardOut {
    pub partner_id: String,
    pub name: String,
    pub status: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_referral_at: Option<jiff::Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_referral_at: Option<jiff::Timestamp>,
    /// Days from joining to the first referral.
    pub days_to_first_referral: Option<f64>,
    /// Active and no referral in the 90 days before the period's end (or now).
    pub dormant: bool,
    pub currency: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub referrals_registered: u64,
    pub won: u64,
    pub lost: u64,
    /// Won ÷ (won + lost), closed in the period.
    pub win_rate: Option<f64>,
    pub revenue: MoneyDto,
    pub average_deal_size: Option<MoneyDto>,
    pub mean_sales_cycle_days: Option<f64>,
    pub pipeline: Vec<StageOut>,
    /// The partner's money figures in every currency it has.
    pub by_currency: BTreeMap<String, PartnerCurrencyOut>,
    /// Commission balances per currency, as of now.
    pub earnings: Vec<BalanceOut>,
    /// The partner's tier and progress to the next one; null without a ladder.
    pub tier: Option<PartnerTierOut>,
}

/// A partner's own numbers and tier progress (admin or that partner).
#[utoipa::path(get, path = "/api/v1/partners/{id}/scorecard", tag = "metrics", params(("id" = String, Path), ScorecardParams),
    responses((status = 200, body = ScorecardOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn partner_scorecard(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Query(params): Query<ScorecardParams>,
) -> Result<Json<ScorecardOut>, ApiError> {
    let mut v = Validator::new();
    let pc = period_and_currency(&mut v, &params.from, &params.to, &params.currency);
    let (period, currency) = v.finish(|| pc)?;
    let s = kpis::scorecard(state.store.as_ref(), &ctx, &PartnerId::from_string(id), period, currency).await?;
    let r = &s.report;
    let main = r.by_currency.get(r.currency.code());
    Ok(Json(ScorecardOut {
        partner_id: s.partner.id.to_string(),
        name: s.partner.name.clone(),
        status: s.partner.status.as_str().into(),
        created_at: s.partner.created_at,
        first_referral_at: s.partner.first_referral_at,
        last_referral_at: s.last_referral_at,
        days_to_first_referral: num(s.days_to_first_referral),
        dormant: s.dormant,
        currency: r.currency.code().to_owned(),
        from: s.period.from.map(|d| d.to_string()),
        to: s.period.to.map(|d| d.to_string()),
        referrals_registered: r.referrals_registered,
        won: r.won.partner,
        lost: r.lost.partner,
        win_rate: num(r.win_rate.partner),
        revenue: money(&r.partner_sourced_revenue),
        average_deal_size: main.and_then(|f| f.average_deal_size.partner.as_ref()).map(money),
        mean_sales_cycle_days: num(r.mean_sales_cycle_days.partner),
        pipeline: pipeline_out(r),
        by_currency: r
            .by_currency
            .iter()
            .filter(|(_, f)| f.won.partner > 0 || f.pipeline_value.minor() != 0)
            .map(|(c, f)| {
                let out = PartnerCurrencyOut {
                    revenue: money(&f.partner_sourced_revenue),
                    average_deal_size: f.average_deal_size.partner.as_ref().map(money),
                    won: f.won.partner,
                    pipeline_value: money(&f.pipeline_value),
                };
                (c.clone(), out)
            })
            .collect(),
        earnings: s
            .balances
            .iter()
            .map(|b| BalanceOut {
                currency: b.currency.code().to_owned(),
                pending: money(&b.pending),
                payable: money(&b.payable),
                paid: money(&b.paid),
            })
            .collect(),
        tier: s.tier.map(progress_out),
    }))
}
