//! `/api/v1/rules`: the workspace's rules of engagement.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use partnerloop_domain::rules::{Action, RuleId, Rules};
use partnerloop_domain::{FieldError, Validator};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_rules, put_rules))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RulesOut {
    pub protection_days: u32,
    pub auto_approve: bool,
    pub fuzzy_threshold: f64,
    /// rule id → approve | review | reject
    pub actions: BTreeMap<String, String>,
}

impl From<&Rules> for RulesOut {
    fn from(r: &Rules) -> Self {
        Self {
            protection_days: r.protection_days,
            auto_approve: r.auto_approve,
            fuzzy_threshold: r.fuzzy_threshold,
            actions: RuleId::ALL
                .iter()
                .filter(|id| **id != RuleId::NoConflict)
                .map(|id| (id.as_str().to_owned(), r.actions.get(*id).as_str().to_owned()))
                .collect(),
        }
    }
}

/// A change of the rules: fields left out keep their value.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RulesIn {
    #[serde(default)]
    pub protection_days: Option<i64>,
    #[serde(default)]
    pub auto_approve: Option<bool>,
    #[serde(default)]
    pub fuzzy_threshold: Option<f64>,
    #[serde(default)]
    pub actions: Option<BTreeMap<String, String>>,
}

/// The rules of engagement in force.
#[utoipa::path(get, path = "/api/v1/rules", tag = "referrals", responses((status = 200, body = RulesOut)))]
async fn get_rules(State(s): State<AppState>, Auth(ctx): Auth) -> Result<Json<RulesOut>, ApiError> {
    let rules = partnerloop_app::rules::get(s.store.as_ref(), &ctx).await?;
    Ok(Json(RulesOut::from(&rules)))
}

/// Change the rules of engagement (admin).
#[utoipa::path(put, path = "/api/v1/rules", tag = "referrals", request_body = RulesIn,
    responses((status = 200, body = RulesOut), (status = 422, body = Problem)))]
async fn put_rules(State(s): State<AppState>, Auth(ctx): Auth, ApiJson(body): ApiJson<RulesIn>) -> Result<Json<RulesOut>, ApiError> {
    ctx.require_admin()?;
    let mut rules = partnerloop_app::rules::get(s.store.as_ref(), &ctx).await?;
    let mut v = Validator::new();
    if let Some(d) = body.protection_days {
        rules.protection_days = u32::try_from(d).unwrap_or(0);
    }
    if let Some(a) = body.auto_approve {
        rules.auto_approve = a;
    }
    if let Some(t) = body.fuzzy_threshold {
        rules.fuzzy_threshold = t;
    }
    for (rule, action) in body.actions.unwrap_or_default() {
        let field = format!("actions.{rule}");
        let id = v.check(RuleId::parse(&field, &rule).and_then(|id| {
            if id == RuleId::NoConflict { Err(FieldError::new(&field, "no_conflict has no action to set")) } else { Ok(id) }
        }));
        let action = v.check(Action::parse(&field, &action));
        if let (Some(id), Some(action)) = (id, action) {
            rules.actions.set(id, action);
        }
    }
    for e in rules.check() {
        v.push(e);
    }
    let rules = v.finish(|| Some(rules))?;
    let saved = partnerloop_app::rules::put(s.store.as_ref(), &ctx, rules).await?;
    Ok(Json(RulesOut::from(&saved)))
}
