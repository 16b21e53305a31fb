//! `/api/v1/commission-plans`: how partners earn (admin).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use partnerloop_app::plans::{self, PlanForCreate};
use partnerloop_domain::ids::PlanId;
use partnerloop_domain::plan::{CommissionPlan, DEFAULT_HOLD_DAYS, MAX_HOLD_DAYS, PlanKind, Rate, check_plan_amounts, parse_tier_slug};
use partnerloop_domain::validation::required_text;
use partnerloop_domain::{FieldError, Validator};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{MoneyDto, list_of};
use crate::AppState;
use crate::extract::{ApiJson, Auth, ListParams};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_plan, list_plans)).routes(routes!(get_plan))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PlanCreate {
    pub name: String,
    /// percent | flat | tiered
    pub kind: String,
    /// percent: fraction of the won amount, "0.15" for 15 %.
    #[serde(default)]
    pub rate: Option<String>,
    /// flat: the fee per won referral.
    #[serde(default)]
    pub amount: Option<MoneyDto>,
    /// tiered: rate by partner tier, {"gold": "0.20"}.
    #[serde(default)]
    pub rates: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub cap: Option<MoneyDto>,
    #[serde(default)]
    pub minimum: Option<MoneyDto>,
    /// Days from Closed Won until payable (default 30).
    #[serde(default)]
    pub hold_days: Option<i64>,
    /// Makes this the workspace's default plan.
    #[serde(default)]
    pub default: Option<bool>,
}

impl PlanCreate {
    fn parse(self) -> Result<PlanForCreate, ApiError> {
        let mut v = Validator::new();
        let name = v.check(required_text("name", &self.name, 200));
        let misplaced = |v: &mut Validator, present: bool, field: &str, kind: &str| {
            if present {
                v.push(FieldError::new(field, format!("only applies to kind {kind}")));
            }
        };
        let kind = match self.kind.trim() {
            "percent" => {
                misplaced(&mut v, self.amount.is_some(), "amount", "flat");
                misplaced(&mut v, self.rates.is_some(), "rates", "tiered");
                match self.rate {
                    Some(r) => v.check(Rate::parse("rate", &r)).map(|rate| PlanKind::Percent { rate }),
                    None => v.check(Err(FieldError::new("rate", "is required for kind percent"))),
                }
            }
            "flat" => {
                misplaced(&mut v, self.rate.is_some(), "rate", "percent");
                misplaced(&mut v, self.rates.is_some(), "rates", "tiered");
                match self.amount {
                    Some(m) => v.check(m.parse_positive("amount")).map(|amount| PlanKind::Flat { amount }),
                    None => v.check(Err(FieldError::new("amount", "is required for kind flat"))),
                }
            }
            "tiered" => {
                misplaced(&mut v, self.rate.is_some(), "rate", "percent");
                misplaced(&mut v, self.amount.is_some(), "amount", "flat");
                match self.rates {
                    Some(map) if !map.is_empty() => {
                        let mut rates = BTreeMap::new();
                        for (tier, rate) in map {
                            let field = format!("rates.{tier}");
                            let t = v.check(parse_tier_slug(&field, &tier));
                            let r = v.check(Rate::parse(&field, &rate));
                            if let (Some(t), Some(r)) = (t, r) {
                                rates.insert(t, r);
                            }
                        }
                        Some(PlanKind::Tiered { rates })
                    }
                    _ => v.check(Err(FieldError::new("rates", "needs at least one tier and its rate for kind tiered"))),
                }
            }
            other => v.check(Err(FieldError::new("kind", format!("'{other}' is not one of: percent, flat, tiered")))),
        };
        let cap = v.check_opt(self.cap, |m| m.parse_positive("cap"));
        let minimum = v.check_opt(self.minimum, |m| m.parse_non_negative("minimum"));
        let hold_days = match self.hold_days {
            None => Some(DEFAULT_HOLD_DAYS),
            Some(d) => v.check(
                u32::try_from(d)
                    .ok()
                    .filter(|d| *d <= MAX_HOLD_DAYS)
                    .ok_or_else(|| FieldError::new("hold_days", format!("must be from 0 to {MAX_HOLD_DAYS}"))),
            ),
        };
        if let (Some(k), Some(c), Some(m)) = (&kind, &cap, &minimum) {
            for e in check_plan_amounts(k, c.as_ref(), m.as_ref()) {
                v.push(e);
            }
        }
        Ok(v.finish(|| {
            Some(PlanForCreate {
                name: name?,
                kind: kind?,
                cap: cap?,
                minimum: minimum?,
                hold_days: hold_days?,
                is_default: self.default.unwrap_or(false),
            })
        })?)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanOut {
    pub id: String,
    pub name: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<MoneyDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates: Option<BTreeMap<String, String>>,
    pub cap: Option<MoneyDto>,
    pub minimum: Option<MoneyDto>,
    pub hold_days: u32,
    pub default: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
}

impl From<&CommissionPlan> for PlanOut {
    fn from(p: &CommissionPlan) -> Self {
        let (rate, amount, rates) = match &p.kind {
            PlanKind::Percent { rate } => (Some(rate.to_string()), None, None),
            PlanKind::Flat { amount } => (None, Some(MoneyDto::from(amount)), None),
            PlanKind::Tiered { rates } => (None, None, Some(rates.iter().map(|(t, r)| (t.clone(), r.to_string())).collect())),
        };
        Self {
            id: p.id.to_string(),
            name: p.name.clone(),
            kind: p.kind.name().to_owned(),
            rate,
            amount,
            rates,
            cap: p.cap.as_ref().map(MoneyDto::from),
            minimum: p.minimum.as_ref().map(MoneyDto::from),
            hold_days: p.hold_days,
            default: p.is_default,
            created_at: p.created_at,
        }
    }
}

list_of!(PlanList, PlanOut);

/// Add a commission plan (admin).
#[utoipa::path(post, path = "/api/v1/commission-plans", tag = "commissions", request_body = PlanCreate,
    responses((status = 201, body = PlanOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_plan(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(body): ApiJson<PlanCreate>,
) -> Result<(StatusCode, Json<PlanOut>), ApiError> {
    let plan = plans::create(s.store.as_ref(), &ctx, body.parse()?).await?;
    Ok((StatusCode::CREATED, Json(PlanOut::from(&plan))))
}

/// List commission plans (admin).
#[utoipa::path(get, path = "/api/v1/commission-plans", tag = "commissions", params(ListParams), responses((status = 200, body = PlanList)))]
async fn list_plans(State(s): State<AppState>, Auth(ctx): Auth, Query(list): Query<ListParams>) -> Result<Json<PlanList>, ApiError> {
    let page = list.page().map_err(|e| ApiError::from(vec![e]))?;
    let result = plans::list(s.store.as_ref(), &ctx, &page).await?;
    Ok(Json(PlanList::from_page(result, |x| PlanOut::from(x))))
}

/// One commission plan (admin).
#[utoipa::path(get, path = "/api/v1/commission-plans/{id}", tag = "commissions", responses((status = 200, body = PlanOut), (status = 404, body = Problem)))]
async fn get_plan(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<PlanOut>, ApiError> {
    let plan = plans::get(s.store.as_ref(), &ctx, &PlanId::from_string(id)).await?;
    Ok(Json(PlanOut::from(&plan)))
}
