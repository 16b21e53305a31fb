//! Staff users of the web console: who they are, their role, and how they
//! sign in (a password, or a mailed single-use link).
//!
//! Rules: a role decides what a staff session may do — admin and manager
//! change things, finance handles payouts, sales only reads (see
//! [`StaffRole`] and `Ctx::require_admin`). Passwords are stored as
//! argon2id PHC strings, never in clear; link and session tokens are 256
//! random bits of which only the SHA-256 is stored. A link works once, for
//! [`LINK_MINUTES`]; a session lasts [`SESSION_HOURS`] or until signed out.
//! Signing in answers the same for an unknown email and a wrong password,
//! and takes as long: an unknown email is checked against a dummy hash.
//! Every change (user created, password set, signed in, signed out) writes
//! an audit row in its transaction.

use std::sync::LazyLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use partnerloop_domain::Email;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};

use crate::ctx::{Actor, Ctx};
use crate::error::{AppError, StoreError};
use crate::notify::notice::{MailPayload, Mailbox, Notice};
use crate::outbox::{Channel, NewOutboxItem};
use crate::signin::token_hash;
use crate::store::{AuditEntry, Store, StoreResult};

/// How long a staff sign-in link works.
pub const LINK_MINUTES: i64 = 10;
/// How long a staff session lasts.
pub const SESSION_HOURS: i64 = 12;
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (hashing cost must stay bounded).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// What a staff user may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffRole {
    /// Everything, including staff users.
    Admin,
    /// Partners, referrals, review, rules: everything but staff users.
    Manager,
    /// Payouts and statements; reads the rest.
    Finance,
    /// Reads only.
    Sales,
}

impl StaffRole {
    pub const ALL: [StaffRole; 4] = [StaffRole::Admin, StaffRole::Manager, StaffRole::Finance, StaffRole::Sales];

    pub fn as_str(&self) -> &'static str {
        match self {
            StaffRole::Admin => "admin",
            StaffRole::Manager => "manager",
            StaffRole::Finance => "finance",
            StaffRole::Sales => "sales",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// May change partners, referrals and settings.
    pub fn may_manage(&self) -> bool {
        matches!(self, StaffRole::Admin | StaffRole::Manager)
    }

    /// May make and settle payouts.
    pub fn may_pay(&self) -> bool {
        matches!(self, StaffRole::Admin | StaffRole::Manager | StaffRole::Finance)
    }
}

impl std::fmt::Display for StaffRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff user as stored, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffUser {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub email: String,
    pub role: StaffRole,
    pub has_password: bool,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An argon2id PHC string. Not a secret by itself, but never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

/// Who a staff link or session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffHolder {
    pub workspace_id: WorkspaceId,
    pub user_id: String,
    pub email: String,
    pub role: StaffRole,
}

impl StaffHolder {
    /// The acting context of this staff user at `now`.
    pub fn ctx(&self, now: Timestamp) -> Ctx {
        Ctx::new(self.workspace_id.clone(), Actor::Staff { user_id: self.user_id.clone(), role: self.role }, now)
    }
}

/// A sign-in link to store with its user.
#[derive(Debug, Clone)]
pub struct NewStaffLink {
    pub token_hash: String,
    pub expires_at: Timestamp,
}

/// The counts on the console's dashboard, read in one round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleCounts {
    /// Partners by status (`active`, `applied`, …).
    pub partners: Vec<(String, i64)>,
    /// Referrals by status.
    pub referrals: Vec<(String, i64)>,
    /// Open pipeline: approved referrals' amount (or estimate) per currency, minor units.
    pub pipeline: Vec<(String, i64)>,
    /// The oldest referral waiting for review, if any.
    pub oldest_review: Option<Timestamp>,
}

#[async_trait]
pub trait StaffStore: Send + Sync {
    /// Inserts a user, and its first sign-in link when given, with the audit row.
    async fn insert_staff_user(
        &self,
        user: &StaffUser,
        password: Option<&PasswordHash>,
        link: Option<&NewStaffLink>,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// Every user with this (lower-case) email, any workspace, with its password hash.
    async fn staff_users_by_email(&self, email: &str) -> StoreResult<Vec<(StaffUser, Option<PasswordHash>)>>;
    async fn staff_user(&self, ws: &WorkspaceId, id: &str) -> StoreResult<StaffUser>;
    async fn list_staff_users(&self, ws: &WorkspaceId) -> StoreResult<Vec<StaffUser>>;
    async fn set_staff_password(&self, ws: &WorkspaceId, id: &str, password: &PasswordHash, audit: &AuditEntry) -> StoreResult<()>;
    async fn insert_staff_link(&self, user: &StaffUser, link: &NewStaffLink, now: Timestamp) -> StoreResult<()>;
    /// Uses a link up and opens a session in one transaction, with the
    /// audit row [`sign_in_audit`] makes; `None` when the link is
    /// unknown, used, expired, or its user is disabled.
    async fn redeem_staff_link(
        &self,
        token_hash: &str,
        session_hash: &str,
        now: Timestamp,
        session_expires_at: Timestamp,
    ) -> StoreResult<Option<StaffHolder>>;
    /// Opens a session for a user who proved its password, with the audit row.
    async fn open_staff_session(
        &self,
        holder: &StaffHolder,
        session_hash: &str,
        expires_at: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// The holder of a live session of an enabled user.
    async fn staff_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<StaffHolder>>;
    /// Ends a session; the audit row is written when there was one to end.
    async fn revoke_staff_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<bool>;
    async fn console_counts(&self, ws: &WorkspaceId) -> StoreResult<ConsoleCounts>;
    /// The workspace's audit log, newest first: rows whose id is below
    /// `before` (when given) and whose action is `action` (when given), at
    /// most `limit`, each with its id.
    async fn audit_log(
        &self,
        ws: &WorkspaceId,
        action: Option<&str>,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<(String, AuditEntry)>>;
    /// Partners whose name or a contact's email contains `needle`
    /// (lower-case), in id order, at most `limit`.
    async fn search_partner_ids(&self, ws: &WorkspaceId, needle: &str, limit: u32) -> StoreResult<Vec<PartnerId>>;
}

/// The audit row of a sign-in (`how`: `link` or `password`).
pub fn sign_in_audit(h: &StaffHolder, now: Timestamp, how: &str) -> AuditEntry {
    AuditEntry {
        at: now,
        actor: format!("staff:{}", h.user_id),
        action: "staff.signed_in".into(),
        entity: "staff_user".into(),
        entity_id: h.user_id.clone(),
        before: None,
        after: Some(serde_json::json!({ "method": how })),
    }
}

/// The audit row of a sign-out.
pub fn sign_out_audit(user_id: &str, now: Timestamp) -> AuditEntry {
    AuditEntry {
        at: now,
        actor: format!("staff:{user_id}"),
        action: "staff.signed_out".into(),
        entity: "staff_user".into(),
        entity_id: user_id.to_owned(),
        before: None,
        after: None,
    }
}

fn new_link(now: Timestamp) -> (String, NewStaffLink) {
    let token = crate::auth::random_secret();
    let link = NewStaffLink { token_hash: token_hash(&token), expires_at: now + SignedDuration::from_mins(LINK_MINUTES) };
    (token, link)
}

/// The URL of a staff sign-in link.
pub fn link_url(base_url: &str, token: &str) -> String {
    format!("{}/login/{token}", base_url.trim_end_matches('/'))
}

fn may_manage_staff(ctx: &Ctx) -> Result<(), AppError> {
    match &ctx.actor {
        Actor::Admin { .. } | Actor::System { .. } | Actor::Staff { role: StaffRole::Admin, .. } => Ok(()),
        _ => Err(AppError::Forbidden("only an admin may manage staff users".into())),
    }
}

/// Creates a staff user in `ctx`'s workspace and returns it with a fresh
/// single-use sign-in URL (`partnerloop users create`).
pub async fn create_user(
    store: &dyn Store,
    base_url: &str,
    ctx: &Ctx,
    email: &str,
    role: StaffRole,
) -> Result<(StaffUser, String), AppError> {
    may_manage_staff(ctx)?;
    let email = Email::parse("email", email).map_err(|e| AppError::Invalid(vec![e]))?;
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
    let (token, link) = new_link(ctx.now);
    let audit =
        AuditEntry::of(ctx, "staff.created", "staff_user", &user.id, serde_json::json!({"email": user.email, "role": role.as_str()}));
    store.insert_staff_user(&user, None, Some(&link), &audit).await.map_err(|e| match e {
        StoreError::Conflict { constraint } if constraint == "staff_users_email_uq" => {
            AppError::conflict(Some("email"), "a staff user with this email already exists in this workspace")
        }
        other => other.into(),
    })?;
    Ok((user, link_url(base_url, &token)))
}

/// Mails a fresh link to every enabled staff user with this email (any
/// workspace). Says nothing about whether there was one.
pub async fn request_link(store: &dyn Store, base_url: &str, email: &str, now: Timestamp) -> Result<(), AppError> {
    let email = email.trim().to_lowercase();
    for (user, _) in store.staff_users_by_email(&email).await? {
        if user.disabled {
            continue;
        }
        let (token, link) = new_link(now);
        store.insert_staff_link(&user, &link, now).await?;
        let url = link_url(base_url, &token);
        let workspace = store.workspace(&user.workspace_id).await?.name;
        let notice = Notice::StaffSignIn { url: url.clone(), expires_minutes: LINK_MINUTES };
        let payload = MailPayload::new(Mailbox { name: None, email: user.email.clone() }, workspace, notice);
        let item = NewOutboxItem {
            id: crate::ids::new_id("obx", now),
            workspace_id: user.workspace_id.clone(),
            channel: Channel::Email,
            idempotency_key: format!("staff-sign-in:{}", link.token_hash),
            event: "staff.sign_in_requested".into(),
            target: user.email.clone(),
            payload: serde_json::to_value(payload).unwrap_or_default(),
            created_at: now,
        };
        store.enqueue(&[item]).await?;
    }
    Ok(())
}

fn new_session(now: Timestamp) -> (String, String, Timestamp) {
    let token = crate::auth::random_secret();
    let hash = token_hash(&token);
    (token, hash, now + SignedDuration::from_hours(SESSION_HOURS))
}

/// Uses a link up; returns the new session's token and its holder.
pub async fn redeem_link(store: &dyn Store, token: &str, now: Timestamp) -> Result<Option<(String, StaffHolder)>, AppError> {
    let (session, hash, until) = new_session(now);
    Ok(store.redeem_staff_link(&token_hash(token), &hash, now, until).await?.map(|h| (session, h)))
}

/// A hash of a random password, checked when no user has the email, so
/// that an unknown address costs as much time as a wrong password.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| hash_password(&crate::auth::random_secret()).ok().map(|h| h.0));

fn hash_password(password: &str) -> Result<PasswordHash, AppError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| PasswordHash(h.to_string()))
        .map_err(|e| AppError::Store(StoreError::Other(format!("hashing a password failed: {e}").into())))
}

fn password_matches(password: &str, hash: &str) -> bool {
    // argon2 compares the computed and stored outputs in constant time.
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// Signing in with a password, in three steps so that the slow one (the
/// argon2 check, [`check_password`]) can run off the async runtime:
/// the users with this email, any workspace, with their password hashes.
pub async fn password_candidates(store: &dyn Store, email: &str) -> Result<Vec<(StaffUser, Option<PasswordHash>)>, AppError> {
    Ok(store.staff_users_by_email(&email.trim().to_lowercase()).await?)
}

/// The enabled user whose password this is, if any: `None` for an unknown
/// email, a user without a password, a disabled user and a wrong password
/// alike, and in about the same time (an unknown email is checked against
/// a dummy hash). Slow on purpose: call it where blocking is fine.
pub fn check_password(candidates: Vec<(StaffUser, Option<PasswordHash>)>, password: &str) -> Option<StaffUser> {
    if password.is_empty() || password.chars().count() > MAX_PASSWORD_CHARS {
        return None;
    }
    let mut found = None;
    let mut checked = false;
    for (user, hash) in candidates {
        let Some(hash) = hash else { continue };
        checked = true;
        if password_matches(password, &hash.0) && !user.disabled && found.is_none() {
            found = Some(user);
        }
    }
    if !checked && let Some(dummy) = DUMMY_HASH.as_deref() {
        let _ = password_matches(password, dummy);
    }
    found
}

/// Opens a session for a user whose password was checked.
pub async fn open_password_session(store: &dyn Store, user: StaffUser, now: Timestamp) -> Result<(String, StaffHolder), AppError> {
    let holder = StaffHolder { workspace_id: user.workspace_id, user_id: user.id, email: user.email, role: user.role };
    let (session, hash, until) = new_session(now);
    store.open_staff_session(&holder, &hash, until, &sign_in_audit(&holder, now, "password")).await?;
    Ok((session, holder))
}

/// The holder of a live session, if the token is one.
pub async fn session(store: &dyn Store, token: &str, now: Timestamp) -> Result<Option<StaffHolder>, AppError> {
    if token.is_empty() || token.len() > 100 {
        return Ok(None);
    }
    Ok(store.staff_session(&token_hash(token), now).await?)
}

/// Ends a session (sign-out).
pub async fn sign_out(store: &dyn Store, token: &str, now: Timestamp) -> Result<bool, AppError> {
    Ok(store.revoke_staff_session(&token_hash(token), now).await?)
}

/// Checks a new password's length and hashes it (argon2id). Slow on
/// purpose: call it where blocking is fine.
pub fn hash_new_password(password: &str) -> Result<PasswordHash, AppError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AppError::invalid("password", format!("must have at least {MIN_PASSWORD_CHARS} characters")));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AppError::invalid("password", format!("must have at most {MAX_PASSWORD_CHARS} characters")));
    }
    hash_password(password)
}

/// Sets the signed-in staff user's own password (hashed by [`hash_new_password`]).
pub async fn set_own_password(store: &dyn Store, ctx: &Ctx, hash: &PasswordHash) -> Result<(), AppError> {
    let Actor::Staff { user_id, .. } = &ctx.actor else {
        return Err(AppError::Forbidden("only a signed-in staff user sets a password".into()));
    };
    let audit = AuditEntry::of(ctx, "staff.password_set", "staff_user", user_id, serde_json::json!({}));
    store.set_staff_password(&ctx.workspace_id, user_id, hash, &audit).await?;
    Ok(())
}

/// The dashboard's counts; any staff role and admin tokens may read them.
pub async fn console_counts(store: &dyn Store, ctx: &Ctx) -> Result<ConsoleCounts, AppError> {
    if ctx.partner_scope().is_some() {
        return Err(AppError::Forbidden("the console is for staff".into()));
    }
    Ok(store.console_counts(&ctx.workspace_id).await?)
}

/// One page of the workspace's audit log, newest first, optionally of one
/// action. Admins and managers only: the rows hold before and after states.
pub async fn audit_log(
    store: &dyn Store,
    ctx: &Ctx,
    action: Option<&str>,
    page: &crate::store::Page,
) -> Result<crate::store::Paged<(String, AuditEntry)>, AppError> {
    ctx.require_admin()?;
    let limit = page.limit.clamp(1, 200);
    let mut rows = store.audit_log(&ctx.workspace_id, action, page.after.as_deref(), limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_after = if more { rows.last().map(|(id, _)| id.clone()) } else { None };
    Ok(crate::store::Paged { items: rows, next_after })
}

/// Partners whose name or contact email contains `query` (case-insensitive).
pub async fn search_partners(
    store: &dyn Store,
    ctx: &Ctx,
    query: &str,
    limit: u32,
) -> Result<Vec<partnerloop_domain::partner::Partner>, AppError> {
    if ctx.partner_scope().is_some() {
        return Err(AppError::Forbidden("the console is for staff".into()));
    }
    let needle = query.trim().to_lowercase();
    let mut out = Vec::new();
    for id in store.search_partner_ids(&ctx.workspace_id, &needle, limit).await? {
        out.push(store.partner(&ctx.workspace_id, &id).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_hash_verifies_only_its_password_and_is_argon2id() {
        let h = hash_password("correct horse battery staple").unwrap();
        assert!(h.0.starts_with("$argon2id$"), "{}", h.0);
        assert!(password_matches("correct horse battery staple", &h.0));
        assert!(!password_matches("correct horse battery stapl", &h.0));
        assert!(!password_matches("x", "not a hash"));
        assert_eq!(format!("{h:?}"), "PasswordHash(***)");
    }

    #[test]
    fn roles_parse_and_decide_what_they_may_do() {
        for r in StaffRole::ALL {
            assert_eq!(StaffRole::parse(r.as_str()), Some(r));
        }
        assert_eq!(StaffRole::parse("root"), None);
        assert!(StaffRole::Manager.may_manage() && !StaffRole::Finance.may_manage() && !StaffRole::Sales.may_manage());
        assert!(StaffRole::Finance.may_pay() && !StaffRole::Sales.may_pay());
    }
}
