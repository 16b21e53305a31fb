//! Referrals (deal registrations): register, decide, review, protect,
//! progress through the pipeline, expire.
//!
//! Rules: a partner acts only for itself and sees only its own referrals,
//! and of a decision only what `rules::redact_for_partner` leaves; every
//! state change is one store transaction with its timeline entry and audit
//! row; "first registration wins" is enforced by the store's unique claims,
//! not by these checks alone.

mod lifecycle;
mod link;
mod register;

pub use lifecycle::{DisputeResolution, approve, change_stage, dispute, expire_lapsed, extend, reject, reply, resolve_dispute};
pub use link::{link_partner, register_by_link};
pub use register::{ReferralForCreate, check_conflicts, company_domain, decision_summary, protection, register};

use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::freemail::is_free_mail;
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::referral::{Referral, ReferralId};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::store::{AuditEntry, Page, Paged, ReferralFilter, Store, TimelineEvent};

/// The keys an approved referral claims, 2 or 3, distinct: its company
/// domain, the contact email's domain when that is a company's (not
/// free-mail) and another one, and the contact email. Two registrations
/// sharing any key are of the same account.
pub fn claim_keys(domain: &str, email: &str) -> Vec<String> {
    let mut keys = vec![format!("domain:{domain}")];
    let email_domain = email.rsplit_once('@').and_then(|(_, d)| CompanyDomain::parse("email", d).ok());
    if let Some(d) = email_domain.filter(|d| d.as_str() != domain && !is_free_mail(d.as_str())) {
        keys.push(format!("domain:{}", d.as_str()));
    }
    keys.push(format!("email:{email}"));
    keys
}

/// The domains among claim keys.
pub fn key_domains(keys: &[String]) -> Vec<&str> {
    keys.iter().filter_map(|k| k.strip_prefix("domain:")).collect()
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
