//! Commission plans: stored and listed here; the calculation that applies
//! them to won referrals builds on the domain's plan types.
//!
//! Rules: plan names are unique in a workspace; at most one plan is the
//! default, and making a plan the default takes the flag from the old one.
//! Admins (and managing staff) change plans; every staff role reads them.

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
    ctx.require_workspace_reader()?;
    Ok(store.plan(&ctx.workspace_id, id).await?)
}

pub async fn list(store: &dyn Store, ctx: &Ctx, page: &Page) -> Result<Paged<CommissionPlan>, AppError> {
    ctx.require_workspace_reader()?;
    Ok(store.list_plans(&ctx.workspace_id, page).await?)
}

/// Makes a plan the workspace's default: partners without a plan of their
/// own earn by it from their next win on. Already the default: nothing changes.
pub async fn set_default(store: &dyn Store, ctx: &Ctx, id: &PlanId) -> Result<CommissionPlan, AppError> {
    ctx.require_admin()?;
    let plan = store.plan(&ctx.workspace_id, id).await?;
    if plan.is_default {
        return Ok(plan);
    }
    let before = store.default_plan(&ctx.workspace_id).await?;
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: "commission_plan.default_set".into(),
        entity: "commission_plan".into(),
        entity_id: plan.id.to_string(),
        before: Some(json!({"default_plan_id": before.as_ref().map(|p| p.id.to_string())})),
        after: Some(json!({"default_plan_id": plan.id.to_string(), "name": plan.name})),
    };
    store.set_default_plan(&ctx.workspace_id, id, &audit).await?;
    Ok(CommissionPlan { is_default: true, ..plan })
}

/// How many partners (not archived) earn by each plan: those assigned it,
/// and — for the default plan — those without a plan of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanUsage {
    pub assigned: std::collections::HashMap<String, i64>,
    pub without_plan: i64,
}

impl PlanUsage {
    pub fn assigned_to(&self, plan: &PlanId) -> i64 {
        self.assigned.get(plan.as_str()).copied().unwrap_or(0)
    }
}

pub async fn usage(store: &dyn Store, ctx: &Ctx) -> Result<PlanUsage, AppError> {
    ctx.require_workspace_reader()?;
    let mut usage = PlanUsage::default();
    for (plan, n) in store.partner_counts_by_plan(&ctx.workspace_id).await? {
        match plan {
            Some(p) => {
                usage.assigned.insert(p, n);
            }
            None => usage.without_plan += n,
        }
    }
    Ok(usage)
}
