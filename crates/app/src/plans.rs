//! Commission plans: stored and listed here; the calculation that applies
//! them to won referrals builds on the domain's plan types.
//!
//! Rules: plan names are unique in a workspace; at most one plan is the
//! default, and making a plan the default takes the flag from the old one.

use partnerloop_domain::Money;
use partnerloop_domain::ids::PlanId;
use partnerloop_domain::plan::{CommissionPlan, PlanKind};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::{AppError, StoreError};
use crate::ids;
use crate::store::{AuditEntry, Page, Paged, Store};

#[derive(Debug, Clone)]
pub struct PlanForCreate {
    pub name: String,
    pub kind: PlanKind,
    pub cap: Option<Money>,
    pub minimum: Option<Money>,
    pub hold_days: u32,
    pub is_default: bool,
    pub volume: Option<partnerloop_domain::plan::VolumeBands>,
    pub recurring: Option<partnerloop_domain::plan::Recurring>,
}

fn money_json(m: &Money) -> Value {
    json!({"amount": m.amount_string(), "currency": m.currency().code()})
}

pub fn audit_view(p: &CommissionPlan) -> Value {
    let mut v = json!({
        "name": p.name,
        "kind": p.kind.name(),
        "cap": p.cap.as_ref().map(money_json),
        "minimum": p.minimum.as_ref().map(money_json),
        "hold_days": p.hold_days,
        "default": p.is_default,
        "band_period": p.volume.as_ref().map(|v| v.period.as_str()),
        "bands": p.volume.as_ref().map(|v| v.bands.iter().map(|b| json!({"from": b.from, "rate": b.rate.to_string()})).collect::<Vec<_>>()),
        "recurring": p.recurring.map(|r| json!({"months": r.months, "hold_from": r.hold_from.as_str()})),
    });
    match &p.kind {
        PlanKind::Percent { rate } => v["rate"] = json!(rate.to_string()),
        PlanKind::Flat { amount } => v["amount"] = money_json(amount),
        PlanKind::Tiered { rates } => {
            v["rates"] = rates.iter().map(|(t, r)| (t.clone(), json!(r.to_string()))).collect::<serde_json::Map<_, _>>().into()
        }
    }
    v
}

pub async fn create(store: &dyn Store, ctx: &Ctx, input: PlanForCreate) -> Result<CommissionPlan, AppError> {
    ctx.require_admin()?;
    let plan = CommissionPlan {
        id: ids::plan_id(ctx.now),
        name: input.name,
        kind: input.kind,
        cap: input.cap,
        minimum: input.minimum,
        hold_days: input.hold_days,
        is_default: input.is_default,
        created_at: ctx.now,
        volume: input.volume,
        recurring: input.recurring,
    };
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: "commission_plan.created".into(),
        entity: "commission_plan".into(),
        entity_id: plan.id.to_string(),
        before: None,
        after: Some(audit_view(&plan)),
    };
    match store.insert_plan(&ctx.workspace_id, &plan, &audit).await {
        Ok(()) => Ok(plan),
        Err(StoreError::Conflict { constraint }) if constraint == "commission_plans_name_uq" => {
            Err(AppError::conflict(Some("name"), "a commission plan with this name already exists"))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn get(store: &dyn Store, ctx: &Ctx, id: &PlanId) -> Result<CommissionPlan, AppError> {
    ctx.require_admin()?;
    Ok(store.plan(&ctx.workspace_id, id).await?)
}

pub async fn list(store: &dyn Store, ctx: &Ctx, page: &Page) -> Result<Paged<CommissionPlan>, AppError> {
    ctx.require_admin()?;
    Ok(store.list_plans(&ctx.workspace_id, page).await?)
}
