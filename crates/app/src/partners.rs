//! Partners: creating, reading, listing and changing them.
//!
//! Rules: only admins create or change partners; a partner's own context
//! sees only itself, and anything else is "not found" (never "forbidden",
//! which would confirm that the record exists). Every change is audited
//! with the partner's state before and after.

use partnerloop_domain::Email;
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::ids::{PartnerId, PlanId};
use partnerloop_domain::partner::{Contact, Partner, PartnerStatus, PartnerType, ReferralCode};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::{AppError, StoreError};
use crate::ids;
use crate::store::{AuditEntry, Page, Paged, PartnerFilter, Store};

#[derive(Debug, Clone)]
pub struct PartnerForCreate {
    pub name: String,
    pub partner_type: PartnerType,
    pub status: PartnerStatus,
    pub tier: Option<String>,
    pub contact_name: String,
    pub contact_email: Email,
    pub website: Option<CompanyDomain>,
    pub commission_plan_id: Option<PlanId>,
    /// For imports of history; `ctx.now` otherwise.
    pub created_at: Option<jiff::Timestamp>,
}

/// A partial change: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct PartnerForUpdate {
    pub name: Option<String>,
    pub partner_type: Option<PartnerType>,
    pub status: Option<PartnerStatus>,
    pub tier: Option<Option<String>>,
    pub website: Option<Option<CompanyDomain>>,
    pub commission_plan_id: Option<Option<PlanId>>,
}

/// The audit log's picture of a partner.
pub fn audit_view(p: &Partner) -> Value {
    json!({
        "name": p.name,
        "type": p.partner_type.as_str(),
        "status": p.status.as_str(),
        "tier": p.tier,
        "referral_code": p.referral_code.as_str(),
        "website": p.website.as_ref().map(|w| w.as_str()),
        "commission_plan_id": p.commission_plan_id.as_ref().map(|i| i.as_str()),
        "contacts": p.contacts.iter().map(|c| json!({"id": c.id.as_str(), "name": c.name, "email": c.email.as_str()})).collect::<Vec<_>>(),
    })
}

async fn check_plan(store: &dyn Store, ctx: &Ctx, plan: Option<&PlanId>) -> Result<(), AppError> {
    if let Some(id) = plan {
        match store.plan(&ctx.workspace_id, id).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                return Err(AppError::invalid("commission_plan_id", "no commission plan with this id"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The partner `input` describes, with a fresh referral code.
pub fn new_partner(ctx: &Ctx, input: PartnerForCreate) -> Partner {
    let created_at = input.created_at.unwrap_or(ctx.now);
    Partner {
        id: ids::partner_id(created_at),
        name: input.name,
        partner_type: input.partner_type,
        status: input.status,
        tier: input.tier,
        referral_code: ReferralCode::from_random(rand::random()),
        website: input.website,
        commission_plan_id: input.commission_plan_id,
        contacts: vec![Contact { id: ids::contact_id(created_at), name: input.contact_name, email: input.contact_email }],
        created_at,
        updated_at: ctx.now,
        first_referral_at: None,
    }
}

pub async fn create(store: &dyn Store, ctx: &Ctx, input: PartnerForCreate) -> Result<Partner, AppError> {
    ctx.require_admin()?;
    check_plan(store, ctx, input.commission_plan_id.as_ref()).await?;
    let mut partner = new_partner(ctx, input);
    // A referral code collision is rare (31^8 codes) but possible: draw again.
    for _ in 0..5 {
        let audit = AuditEntry {
            at: ctx.now,
            actor: ctx.actor.audit_name(),
            action: "partner.created".into(),
            entity: "partner".into(),
            entity_id: partner.id.to_string(),
            before: None,
            after: Some(audit_view(&partner)),
        };
        match store.insert_partner(&ctx.workspace_id, &partner, &audit).await {
            Ok(()) => return Ok(partner),
            Err(StoreError::Conflict { constraint }) if constraint == "partners_referral_code_uq" => {
                partner.referral_code = ReferralCode::from_random(rand::random());
            }
            Err(StoreError::Conflict { constraint }) if constraint == "partner_contacts_email_uq" => {
                return Err(AppError::conflict(Some("contact.email"), "a contact of another partner already uses this email"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::conflict(None, "could not draw a unique referral code; try again"))
}

pub async fn get(store: &dyn Store, ctx: &Ctx, id: &PartnerId) -> Result<Partner, AppError> {
    if ctx.partner_scope().is_some_and(|own| own != id) {
        return Err(AppError::NotFound);
    }
    Ok(store.partner(&ctx.workspace_id, id).await?)
}

pub async fn list(store: &dyn Store, ctx: &Ctx, mut filter: PartnerFilter, page: &Page) -> Result<Paged<Partner>, AppError> {
    if let Some(own) = ctx.partner_scope() {
        filter.only = Some(own.clone());
    }
    Ok(store.list_partners(&ctx.workspace_id, &filter, page).await?)
}

pub async fn update(store: &dyn Store, ctx: &Ctx, id: &PartnerId, change: PartnerForUpdate) -> Result<Partner, AppError> {
    ctx.require_admin()?;
    let before = store.partner(&ctx.workspace_id, id).await?;
    if let Some(plan) = &change.commission_plan_id {
        check_plan(store, ctx, plan.as_ref()).await?;
    }
    let mut after = before.clone();
    if let Some(v) = change.name {
        after.name = v;
    }
    if let Some(v) = change.partner_type {
        after.partner_type = v;
    }
    if let Some(v) = change.status {
        after.status = v;
    }
    if let Some(v) = change.tier {
        after.tier = v;
    }
    if let Some(v) = change.website {
        after.website = v;
    }
    if let Some(v) = change.commission_plan_id {
        after.commission_plan_id = v;
    }
    if after == before {
        return Ok(before);
    }
    after.updated_at = ctx.now;
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: "partner.updated".into(),
        entity: "partner".into(),
        entity_id: id.to_string(),
        before: Some(audit_view(&before)),
        after: Some(audit_view(&after)),
    };
    store.update_partner(&ctx.workspace_id, &after, before.updated_at, &audit).await?;
    Ok(after)
}
