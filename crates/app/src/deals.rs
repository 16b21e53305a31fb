//! Direct deals: the vendor's own pipeline, needed to spot partner
//! registrations of accounts already being worked. Admin-only.
//!
//! Rules: a closed deal has a close time (given, or now); an open deal has
//! none; a deal cannot close before it was created.

use jiff::Timestamp;
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::{Deal, DealSource, Stage};
use partnerloop_domain::ids::DealId;
use partnerloop_domain::{Email, Money};
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::ids;
use crate::store::{AuditEntry, Page, Paged, Store};

#[derive(Debug, Clone)]
pub struct DealForCreate {
    pub name: String,
    pub company_name: String,
    pub company_domain: Option<CompanyDomain>,
    pub stage: Stage,
    pub amount: Money,
    pub source: DealSource,
    pub owner_email: Option<Email>,
    pub created_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
}

/// The deal `input` describes, checked: a closed deal has a close time
/// (given, or now), an open one has none, and none closes before it began.
pub fn new_deal(ctx: &Ctx, input: DealForCreate) -> Result<Deal, AppError> {
    let created_at = input.created_at.unwrap_or(ctx.now);
    let closed_at = match (input.stage.is_closed(), input.closed_at) {
        (true, Some(at)) => Some(at),
        (true, None) => Some(ctx.now.max(created_at)),
        (false, Some(_)) => return Err(AppError::invalid("closed_at", "only a closed deal (closed_won, closed_lost) has a close time")),
        (false, None) => None,
    };
    if closed_at.is_some_and(|c| c < created_at) {
        return Err(AppError::invalid("closed_at", "must not be before created_at"));
    }
    Ok(Deal {
        id: ids::deal_id(created_at),
        name: input.name,
        company_name: input.company_name,
        company_domain: input.company_domain,
        stage: input.stage,
        amount: input.amount,
        source: input.source,
        owner_email: input.owner_email,
        created_at,
        closed_at,
        updated_at: ctx.now,
    })
}

pub async fn create(store: &dyn Store, ctx: &Ctx, input: DealForCreate) -> Result<Deal, AppError> {
    ctx.require_admin()?;
    let deal = new_deal(ctx, input)?;
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: "deal.created".into(),
        entity: "deal".into(),
        entity_id: deal.id.to_string(),
        before: None,
        after: Some(json!({
            "name": deal.name,
            "company": {"name": deal.company_name, "domain": deal.company_domain.as_ref().map(|d| d.as_str())},
            "stage": deal.stage.as_str(),
            "amount": {"amount": deal.amount.amount_string(), "currency": deal.amount.currency().code()},
            "source": deal.source.as_str(),
        })),
    };
    store.insert_deal(&ctx.workspace_id, &deal, &audit).await?;
    Ok(deal)
}

pub async fn get(store: &dyn Store, ctx: &Ctx, id: &DealId) -> Result<Deal, AppError> {
    ctx.require_admin()?;
    Ok(store.deal(&ctx.workspace_id, id).await?)
}

pub async fn list(store: &dyn Store, ctx: &Ctx, page: &Page) -> Result<Paged<Deal>, AppError> {
    ctx.require_admin()?;
    Ok(store.list_deals(&ctx.workspace_id, page).await?)
}
