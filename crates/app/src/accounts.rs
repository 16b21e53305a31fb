//! Accounts the vendor already has: prospects, customers, off-limits.
//! Admin-only; one account per domain in a workspace.

use partnerloop_domain::Email;
use partnerloop_domain::account::{Account, AccountStatus};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::ids::AccountId;
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::{AppError, StoreError};
use crate::ids;
use crate::store::{AuditEntry, Page, Paged, Store};

#[derive(Debug, Clone)]
pub struct AccountForCreate {
    pub name: String,
    pub domain: CompanyDomain,
    pub status: AccountStatus,
    pub owner_email: Option<Email>,
}

pub fn new_account(ctx: &Ctx, input: AccountForCreate) -> Account {
    Account {
        id: ids::account_id(ctx.now),
        name: input.name,
        domain: input.domain,
        status: input.status,
        owner_email: input.owner_email,
        created_at: ctx.now,
        updated_at: ctx.now,
    }
}

pub async fn create(store: &dyn Store, ctx: &Ctx, input: AccountForCreate) -> Result<Account, AppError> {
    ctx.require_admin()?;
    let account = new_account(ctx, input);
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: "account.created".into(),
        entity: "account".into(),
        entity_id: account.id.to_string(),
        before: None,
        after: Some(json!({
            "name": account.name,
            "domain": account.domain.as_str(),
            "status": account.status.as_str(),
            "owner_email": account.owner_email.as_ref().map(|e| e.as_str()),
        })),
    };
    match store.insert_account(&ctx.workspace_id, &account, &audit).await {
        Ok(()) => Ok(account),
        Err(StoreError::Conflict { constraint }) if constraint == "accounts_domain_uq" => {
            Err(AppError::conflict(Some("domain"), "an account with this domain already exists"))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn get(store: &dyn Store, ctx: &Ctx, id: &AccountId) -> Result<Account, AppError> {
    ctx.require_admin()?;
    Ok(store.account(&ctx.workspace_id, id).await?)
}

pub async fn list(store: &dyn Store, ctx: &Ctx, page: &Page) -> Result<Paged<Account>, AppError> {
    ctx.require_admin()?;
    Ok(store.list_accounts(&ctx.workspace_id, page).await?)
}
