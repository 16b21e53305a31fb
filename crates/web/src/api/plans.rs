//! `/api/v1/commission-plans`: how partners earn (admin).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use partnerloop_app::plans::{self, PlanForCreate};
use partnerloop_domain::ids::PlanId;
use partnerloop_domain::plan::{
    BandPeriod, CommissionPlan, DEFAULT_HOLD_DAYS, HoldFrom, MAX_HOLD_DAYS, MAX_RECURRING_MONTHS, PlanKind, Rate, Recurring, VolumeBand,
    VolumeBands, check_plan_amounts, parse_tier_slug,
};
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
    /// tiered: rates by the partner's N-th won referral in `band_period`,
    /// `[{"from": 1, "rate": "0.10"}, {"from": 6, "rate": "0.15"}]`; the
    /// partner earns the better of its tier rate and its band.
    #[serde(default)]
    pub bands: Option<Vec<BandDto>>,
    /// month | quarter | year (with `bands`).
    #[serde(default)]
    pub band_period: Option<String>,
    /// Subscription businesses (percent or tiered): the rate applies to each
    /// customer payment recorded within `months` of the first one, instead
    /// of the won amount.
    #[serde(default)]
    pub recurring: Option<RecurringDto>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct BandDto {
    /// The N-th won referral of the period from which this rate applies (the first band starts at 1).
    pub from: i64,
    pub rate: String,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct RecurringDto {
    /// How many months of payments, from the first one, earn a commission (1–120).
    pub months: i64,
    /// closed_won (default) | first_payment: when the hold clock starts.
    #[serde(default)]
    pub hold_from: Option<String>,
}

impl PlanCreate {
    /// Every field's problem at once, named as in the body (`rates.gold`,
    /// `bands[1].from`); the console's plan form parses through here too.
    pub(crate) fn parse(self) -> Result<PlanForCreate, Vec<FieldError>> {
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
        let is_tiered = matches!(kind, Some(PlanKind::Tiered { .. }));
        let volume = match (self.bands, self.band_period) {
            (None, None) => Some(None),
            (Some(_), _) | (_, Some(_)) if !is_tiered && kind.is_some() => {
                v.check::<()>(Err(FieldError::new("bands", "volume bands apply to kind tiered only")));
                None
            }
            (Some(bands), Some(period)) => {
                let period = v.check(BandPeriod::parse("band_period", &period));
                let mut parsed = Vec::new();
                for (i, b) in bands.iter().enumerate() {
                    let from = v.check(
                        u32::try_from(b.from)
                            .ok()
                            .filter(|f| *f >= 1)
                            .ok_or_else(|| FieldError::new(format!("bands[{i}].from"), "must be 1 or more")),
                    );
                    let rate = v.check(Rate::parse(&format!("bands[{i}].rate"), &b.rate));
                    if let (Some(from), Some(rate)) = (from, rate) {
                        parsed.push(VolumeBand { from, rate });
                    }
                }
                match period {
                    Some(period) if parsed.len() == bands.len() => v.check(VolumeBands::new(period, parsed)).map(Some),
                    _ => None,
                }
            }
            (Some(_), None) => v.check(Err(FieldError::new("band_period", "is required with bands: month, quarter or year"))),
            (None, Some(_)) => v.check(Err(FieldError::new("bands", "are required with band_period"))),
        };
        let recurring = match self.recurring {
            None => Some(None),
            Some(_) if matches!(kind, Some(PlanKind::Flat { .. })) => {
                v.check::<()>(Err(FieldError::new("recurring", "a recurring plan pays a rate: use kind percent or tiered")));
                None
            }
            Some(r) => {
                let months = v.check(
                    u32::try_from(r.months)
                        .ok()
                        .filter(|m| (1..=MAX_RECURRING_MONTHS).contains(m))
                        .ok_or_else(|| FieldError::new("recurring.months", format!("must be from 1 to {MAX_RECURRING_MONTHS}"))),
                );
                let hold_from = v.check(HoldFrom::parse("recurring.hold_from", r.hold_from.as_deref().unwrap_or("closed_won")));
                Some(months.zip(hold_from).map(|(months, hold_from)| Recurring { months, hold_from }))
            }
        };
        v.finish(|| {
            Some(PlanForCreate {
                name: name?,
                kind: kind?,
                cap: cap?,
                minimum: minimum?,
                hold_days: hold_days?,
                is_default: self.default.unwrap_or(false),
                volume: volume?,
                recurring: recurring?,
            })
        })
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bands: Option<Vec<BandDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring: Option<RecurringDto>,
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
            bands: p
                .volume
                .as_ref()
                .map(|v| v.bands.iter().map(|b| BandDto { from: i64::from(b.from), rate: b.rate.to_string() }).collect()),
            band_period: p.volume.as_ref().map(|v| v.period.as_str().to_owned()),
            recurring: p.recurring.map(|r| RecurringDto { months: i64::from(r.months), hold_from: Some(r.hold_from.as_str().to_owned()) }),
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
    let plan = plans::create(s.store.as_ref(), &ctx, body.parse().map_err(ApiError::from)?).await?;
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
