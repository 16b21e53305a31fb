//! Referrals (deal registrations): register, decide, review, protect,
//! progress through the pipeline, expire.
//!
//! Rules: a partner acts only for itself and sees only its own referrals,
//! and of a decision only what `rules::redact_for_partner` leaves; every
//! state change is one store transaction with its timeline entry and audit
//! row; "first registration wins" is enforced by the store's unique claims,
//! not by these checks alone.

mod lifecycle;
mod register;

pub use lifecycle::{approve, change_stage, dispute, expire_lapsed, extend, reject, resolve_dispute, DisputeResolution};
pub use register::{company_domain, decision_summary, protection, register, ReferralForCreate};

use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::referral::{Referral, ReferralId};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::store::{AuditEntry, Page, Paged, ReferralFilter, Store, TimelineEvent};

/// The keys an approved referral claims: its domain and its contact email.
pub fn claim_keys(domain: &str, email: &str) -> Vec<String> {
    vec![format!("domain:{domain}"), format!("email:{email}")]
}

pub(crate) fn event(ctx: &Ctx, kind: &str, summary: impl Into<String>) -> TimelineEvent {
    TimelineEvent { at: ctx.now, kind: kind.into(), actor: ctx.actor.audit_name(), summary: summary.into() }
}

pub fn audit_view(r: &Referral) -> Value {
    json!({
        "partner_id": r.partner_id.as_str(),
        "status": r.status.as_str(),
        "company": {"name": r.company_name, "domain": r.company_domain.as_str()},
        "contact_email": r.contact_email.as_str(),
        "outcome": r.decision.outcome.as_str(),
        "rules": r.decision.reasons.iter().map(|x| x.rule.as_str()).collect::<Vec<_>>(),
        "protection_expires_at": r.protection.map(|p| p.expires_at.to_string()),
        "stage": r.stage.map(|s| s.as_str()),
        "amount": r.amount.map(|m| json!({"amount": m.amount_string(), "currency": m.currency().code()})),
    })
}

pub(crate) fn audit(ctx: &Ctx, action: &str, before: Option<&Referral>, after: &Referral) -> AuditEntry {
    AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: action.into(),
        entity: "referral".into(),
        entity_id: after.id.to_string(),
        before: before.map(audit_view),
        after: Some(audit_view(after)),
    }
}

/// One referral, if the caller may see it.
pub async fn get(store: &dyn Store, ctx: &Ctx, id: &ReferralId) -> Result<Referral, AppError> {
    let r = store.referral(&ctx.workspace_id, id).await?;
    if ctx.partner_scope().is_some_and(|own| own != &r.partner_id) {
        return Err(AppError::NotFound);
    }
    Ok(r)
}

pub async fn list(store: &dyn Store, ctx: &Ctx, mut filter: ReferralFilter, page: &Page) -> Result<Paged<Referral>, AppError> {
    if let Some(own) = ctx.partner_scope() {
        if filter.partner_id.as_ref().is_some_and(|p| p != own) {
            return Ok(Paged { items: vec![], next_after: None });
        }
        filter.partner_id = Some(own.clone());
    }
    Ok(store.list_referrals(&ctx.workspace_id, &filter, page).await?)
}

pub async fn timeline(store: &dyn Store, ctx: &Ctx, id: &ReferralId) -> Result<Vec<TimelineEvent>, AppError> {
    get(store, ctx, id).await?;
    Ok(store.timeline(&ctx.workspace_id, id).await?)
}

/// The partner a caller registers for: a partner token's own, or the one
/// an admin names.
pub(crate) fn acting_partner(ctx: &Ctx, named: Option<PartnerId>) -> Result<PartnerId, AppError> {
    match (ctx.partner_scope(), named) {
        (Some(own), None) => Ok(own.clone()),
        (Some(own), Some(named)) if &named == own => Ok(named),
        (Some(_), Some(_)) => Err(AppError::Forbidden("a partner token registers referrals for its own partner only".into())),
        (None, Some(named)) => Ok(named),
        (None, None) => Err(AppError::invalid("partner_id", "is required with an admin token")),
    }
}
