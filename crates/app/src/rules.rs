//! The workspace's rules of engagement: read by anyone of the workspace,
//! changed by admins only, every change audited.

use partnerloop_domain::rules::Rules;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::store::{AuditEntry, Store};

pub fn audit_view(r: &Rules) -> Value {
    json!({
        "protection_days": r.protection_days,
        "auto_approve": r.auto_approve,
        "fuzzy_threshold": r.fuzzy_threshold,
        "actions": {
            "active_referral_other_partner": r.actions.active_referral_other_partner.as_str(),
            "existing_customer": r.actions.existing_customer.as_str(),
            "off_limits_account": r.actions.off_limits_account.as_str(),
            "open_direct_opportunity": r.actions.open_direct_opportunity.as_str(),
            "possible_duplicate": r.actions.possible_duplicate.as_str(),
        },
    })
}

pub async fn get(store: &dyn Store, ctx: &Ctx) -> Result<Rules, AppError> {
    Ok(store.rules(&ctx.workspace_id).await?)
}

pub async fn put(store: &dyn Store, ctx: &Ctx, rules: Rules) -> Result<Rules, AppError> {
    ctx.require_admin()?;
    let errors = rules.check();
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let before = store.rules(&ctx.workspace_id).await?;
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: "rules.updated".into(),
        entity: "rules".into(),
        entity_id: ctx.workspace_id.to_string(),
        before: Some(audit_view(&before)),
        after: Some(audit_view(&rules)),
    };
    store.put_rules(&ctx.workspace_id, &rules, &audit).await?;
    Ok(rules)
}
