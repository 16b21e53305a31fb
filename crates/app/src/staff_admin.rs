//! Managing the workspace's staff users from the console: invite, change
//! a role, disable and enable.
//!
//! Rules: only an admin manages staff users (`may_manage_staff`). An
//! invitation creates the user like `partnerloop users create` and mails
//! its single-use sign-in link through the outbox in the same transaction;
//! the link is also returned, once, for the admin to pass on. Disabling a
//! user revokes its sessions in the same transaction, so it is signed out
//! at once and cannot sign in again (links and passwords are refused for a
//! disabled user). Nobody disables themselves, and no change may leave the
//! workspace without an enabled admin: the store checks this under a lock
//! of the workspace row, so two concurrent demotions cannot both pass.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_domain::Email;
use partnerloop_domain::ids::WorkspaceId;
use serde_json::json;

use crate::ctx::{Actor, Ctx};
use crate::error::{AppError, StoreError};
use crate::notify::notice::{MailPayload, Mailbox, Notice};
use crate::outbox::{Channel, NewOutboxItem};
use crate::staff::{LINK_MINUTES, NewStaffLink, StaffRole, StaffUser};
use crate::store::{AuditEntry, Store, StoreResult};

/// What a role or status change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffChange {
    Done,
    /// Refused: no enabled admin would be left.
    LastAdmin,
}

/// A staff user with what the console's list shows beside it.
#[derive(Debug, Clone)]
pub struct StaffRow {
    pub user: StaffUser,
    pub last_sign_in: Option<Timestamp>,
}

#[async_trait]
pub trait StaffAdminStore: Send + Sync {
    /// Inserts the user, its sign-in link, the mail carrying it and the audit row at once.
    async fn invite_staff_user(&self, user: &StaffUser, link: &NewStaffLink, mail: &NewOutboxItem, audit: &AuditEntry) -> StoreResult<()>;
    /// Sets a user's role, unless that leaves no enabled admin.
    async fn set_staff_role(&self, ws: &WorkspaceId, id: &str, role: StaffRole, audit: &AuditEntry) -> StoreResult<StaffChange>;
    /// Disables (revoking every session at `audit.at`) or enables a user,
    /// unless disabling leaves no enabled admin.
    async fn set_staff_disabled(&self, ws: &WorkspaceId, id: &str, disabled: bool, audit: &AuditEntry) -> StoreResult<StaffChange>;
    /// Each user's latest sign-in (session opened), for those who have one.
    async fn staff_last_sign_ins(&self, ws: &WorkspaceId) -> StoreResult<Vec<(String, Timestamp)>>;
}

fn require_staff_admin(ctx: &Ctx) -> Result<(), AppError> {
    match &ctx.actor {
        Actor::Admin { .. } | Actor::System { .. } | Actor::Staff { role: StaffRole::Admin, .. } => Ok(()),
        _ => Err(AppError::Forbidden("only an admin may manage staff users".into())),
    }
}

fn last_admin() -> AppError {
    AppError::conflict(Some("role"), "the workspace must keep at least one enabled admin")
}

/// The workspace's staff users by email, with their last sign-in.
pub async fn list(store: &dyn Store, ctx: &Ctx) -> Result<Vec<StaffRow>, AppError> {
    require_staff_admin(ctx)?;
    let users = store.list_staff_users(&ctx.workspace_id).await?;
    let seen = store.staff_last_sign_ins(&ctx.workspace_id).await?;
    Ok(users
        .into_iter()
        .map(|user| {
            let last_sign_in = seen.iter().find(|(id, _)| *id == user.id).map(|(_, at)| *at);
            StaffRow { user, last_sign_in }
        })
        .collect())
}

/// Invites a staff user: creates it and mails a single-use sign-in link,
/// which is also returned.
pub async fn invite(store: &dyn Store, base_url: &str, ctx: &Ctx, email: &str, role: &str) -> Result<(StaffUser, String), AppError> {
    require_staff_admin(ctx)?;
    let email = Email::parse("email", email.trim());
    let parsed_role = StaffRole::parse(role.trim());
    let mut errors = Vec::new();
    if let Err(e) = &email {
        errors.push(e.clone());
    }
    if parsed_role.is_none() {
        errors.push(partnerloop_domain::FieldError::new("role", "must be one of: admin, manager, finance, sales"));
    }
    let (Ok(email), Some(role)) = (email, parsed_role) else {
        return Err(AppError::Invalid(errors));
    };
    let user = StaffUser {
        id: crate::ids::new_id("stf", ctx.now),
        workspace_id: ctx.workspace_id.clone(),
        email: email.as_str().to_owned(),
        role,
        has_password: false,
        disabled: false,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let token = crate::auth::random_secret();
    let link =
        NewStaffLink { token_hash: crate::signin::token_hash(&token), expires_at: ctx.now + jiff::SignedDuration::from_mins(LINK_MINUTES) };
    let url = crate::staff::link_url(base_url, &token);
    let workspace = store.workspace(&ctx.workspace_id).await?.name;
    let notice = Notice::StaffSignIn { url: url.clone(), expires_minutes: LINK_MINUTES };
    let payload = MailPayload::new(Mailbox { name: None, email: user.email.clone() }, workspace, notice);
    let mail = NewOutboxItem {
        id: crate::ids::new_id("obx", ctx.now),
        workspace_id: ctx.workspace_id.clone(),
        channel: Channel::Email,
        idempotency_key: format!("staff-sign-in:{}", link.token_hash),
        event: "staff.invited".into(),
        target: user.email.clone(),
        payload: serde_json::to_value(payload).unwrap_or_default(),
        created_at: ctx.now,
    };
    let audit =
        AuditEntry::of(ctx, "staff.created", "staff_user", &user.id, json!({"email": user.email, "role": role.as_str(), "invited": true}));
    store.invite_staff_user(&user, &link, &mail, &audit).await.map_err(|e| match e {
        StoreError::Conflict { constraint } if constraint == "staff_users_email_uq" => {
            AppError::conflict(Some("email"), "a staff user with this email already exists in this workspace")
        }
        other => other.into(),
    })?;
    Ok((user, url))
}

/// Changes a user's role.
pub async fn set_role(store: &dyn Store, ctx: &Ctx, id: &str, role: &str) -> Result<(), AppError> {
    require_staff_admin(ctx)?;
    let role = StaffRole::parse(role.trim()).ok_or_else(|| AppError::invalid("role", "must be one of: admin, manager, finance, sales"))?;
    let before = store.staff_user(&ctx.workspace_id, id).await?;
    if before.role == role {
        return Ok(());
    }
    let mut audit = AuditEntry::of(ctx, "staff.role_changed", "staff_user", id, json!({"role": role.as_str()}));
    audit.before = Some(json!({"role": before.role.as_str()}));
    match store.set_staff_role(&ctx.workspace_id, id, role, &audit).await? {
        StaffChange::Done => Ok(()),
        StaffChange::LastAdmin => Err(last_admin()),
    }
}

/// Disables (signing it out everywhere at once) or enables a user.
pub async fn set_disabled(store: &dyn Store, ctx: &Ctx, id: &str, disabled: bool) -> Result<(), AppError> {
    require_staff_admin(ctx)?;
    if disabled && matches!(&ctx.actor, Actor::Staff { user_id, .. } if user_id == id) {
        return Err(AppError::conflict(None, "you cannot disable yourself"));
    }
    let before = store.staff_user(&ctx.workspace_id, id).await?;
    if before.disabled == disabled {
        return Ok(());
    }
    let action = if disabled { "staff.disabled" } else { "staff.enabled" };
    let mut audit = AuditEntry::of(ctx, action, "staff_user", id, json!({"disabled": disabled}));
    audit.before = Some(json!({"disabled": before.disabled}));
    match store.set_staff_disabled(&ctx.workspace_id, id, disabled, &audit).await? {
        StaffChange::Done => Ok(()),
        StaffChange::LastAdmin => Err(last_admin()),
    }
}
