//! Partners sign in without a password: a single-use link, mailed or made
//! by an admin, opens a portal session; and each referral has a read-only
//! status link that needs no sign-in at all.
//!
//! Rules: tokens are 256 random bits; only their SHA-256 is stored. A link
//! works once (the store's redemption is one guarded UPDATE) and for
//! [`LINK_MINUTES`] (a welcome link for [`WELCOME_HOURS`]). Asking for a
//! link by email answers the same whether or not the address is known.
//! Status links are signed, last 30 days, and die when their referral's
//! link version is bumped (revocation).

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use partnerloop_domain::ids::{ContactId, PartnerId, WorkspaceId};
use partnerloop_domain::referral::{Referral, ReferralId};
use sha2::{Digest, Sha256};

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::notify::NotifyConfig;
use crate::notify::notice::{MailPayload, Mailbox, Notice};
use crate::outbox::{Channel, NewOutboxItem};
use crate::store::{AuditEntry, Store, StoreResult};

/// How long a sign-in link works.
pub const LINK_MINUTES: i64 = 10;
/// How long the link in a welcome mail works (it may be read days later).
pub const WELCOME_HOURS: i64 = 72;
/// How long a portal session lasts.
pub const SESSION_DAYS: i64 = 14;

/// Who a link or session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub workspace_id: WorkspaceId,
    pub partner_id: PartnerId,
    pub contact_id: ContactId,
}

#[async_trait]
pub trait SignInStore: Send + Sync {
    async fn insert_sign_in_link(&self, token_hash: &str, holder: &Holder, now: Timestamp, expires_at: Timestamp) -> StoreResult<()>;
    /// Uses the link up and opens a session, in one transaction; `None`
    /// when the link is unknown, used or expired.
    async fn redeem_sign_in_link(
        &self,
        token_hash: &str,
        session_hash: &str,
        now: Timestamp,
        session_expires_at: Timestamp,
    ) -> StoreResult<Option<Holder>>;
    /// The holder of a live session.
    async fn portal_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Holder>>;
    /// Ends a portal session (signing out); false when there was none.
    async fn end_portal_session(&self, token_hash: &str) -> StoreResult<bool>;
    /// The workspace and partner of a contact, if it exists.
    async fn contact_holder(&self, contact: &ContactId) -> StoreResult<Option<Holder>>;
    /// A referral's status-link version (0 until revoked once).
    async fn status_link_version(&self, referral: &ReferralId) -> StoreResult<u32>;
    /// Bumps the version (revoking every earlier link), with the audit row.
    async fn revoke_status_links(&self, ws: &WorkspaceId, referral: &ReferralId, audit: &AuditEntry) -> StoreResult<u32>;
    /// Deletes sign-in links and sessions (partners' and staff's) that
    /// expired before `before`; returns how many rows went.
    async fn prune_sign_in(&self, before: Timestamp) -> StoreResult<u64>;
}

fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new sign-in link for `holder`; returns its URL and expiry.
async fn issue(
    store: &dyn Store,
    cfg: &NotifyConfig,
    holder: &Holder,
    now: Timestamp,
    ttl: SignedDuration,
) -> Result<(String, Timestamp), AppError> {
    let token = new_token();
    let expires_at = now + ttl;
    store.insert_sign_in_link(&token_hash(&token), holder, now, expires_at).await?;
    Ok((format!("{}/portal/login/{token}", cfg.base_url), expires_at))
}

/// `POST /api/v1/partners/{id}/magic-link` (admin): a link for the
/// partner's first contact, or the named one.
pub async fn create_link(
    store: &dyn Store,
    cfg: &NotifyConfig,
    ctx: &Ctx,
    partner: &PartnerId,
    contact: Option<&ContactId>,
) -> Result<(String, Timestamp), AppError> {
    ctx.require_admin()?;
    let p = store.partner(&ctx.workspace_id, partner).await?;
    let c = match contact {
        Some(id) => {
            p.contacts.iter().find(|c| &c.id == id).ok_or_else(|| AppError::invalid("contact_id", "is not a contact of this partner"))?
        }
        None => p.contacts.first().ok_or_else(|| AppError::invalid("contact_id", "the partner has no contact"))?,
    };
    let holder = Holder { workspace_id: ctx.workspace_id.clone(), partner_id: p.id.clone(), contact_id: c.id.clone() };
    issue(store, cfg, &holder, ctx.now, SignedDuration::from_mins(LINK_MINUTES)).await
}

/// `POST /portal/login`: mails a fresh link to every partner contact with
/// this address (any workspace). Says nothing about whether there was one.
pub async fn request_link(store: &dyn Store, cfg: &NotifyConfig, email: &str, now: Timestamp) -> Result<(), AppError> {
    let email = email.trim().to_lowercase();
    for m in store.partner_contacts_by_email(&email).await? {
        let partner = store.partner(&m.workspace_id, &m.partner_id).await?;
        let Some(contact) = partner.contacts.iter().find(|c| c.email.as_str() == email) else { continue };
        let holder = Holder { workspace_id: m.workspace_id.clone(), partner_id: partner.id.clone(), contact_id: contact.id.clone() };
        let (url, _) = issue(store, cfg, &holder, now, SignedDuration::from_mins(LINK_MINUTES)).await?;
        let notice = Notice::SignIn { url: url.clone(), expires_minutes: LINK_MINUTES, welcome: false };
        let workspace = store.workspace(&m.workspace_id).await?.name;
        store.enqueue(&[sign_in_mail(&m.workspace_id, workspace, &contact.name, &email, notice, &url, now)]).await?;
    }
    Ok(())
}

/// The welcome mail of a new partner's contacts, each with its own link.
pub(crate) async fn welcome_items(
    store: &dyn Store,
    cfg: &NotifyConfig,
    ws: &WorkspaceId,
    workspace: &str,
    partner: &partnerloop_domain::partner::Partner,
    now: Timestamp,
) -> Result<Vec<NewOutboxItem>, crate::StoreError> {
    let mut items = Vec::new();
    for c in &partner.contacts {
        let holder = Holder { workspace_id: ws.clone(), partner_id: partner.id.clone(), contact_id: c.id.clone() };
        let token = new_token();
        let until = now + SignedDuration::from_hours(WELCOME_HOURS);
        store.insert_sign_in_link(&token_hash(&token), &holder, now, until).await?;
        let url = format!("{}/portal/login/{token}", cfg.base_url);
        let notice = Notice::SignIn { url, expires_minutes: WELCOME_HOURS * 60, welcome: true };
        let mut item = sign_in_mail(ws, workspace.to_owned(), &c.name, c.email.as_str(), notice, "", now);
        // One welcome per contact, however often the fan-out runs.
        item.idempotency_key = format!("welcome:{}", c.id);
        items.push(item);
    }
    Ok(items)
}

fn sign_in_mail(ws: &WorkspaceId, workspace: String, name: &str, email: &str, notice: Notice, url: &str, now: Timestamp) -> NewOutboxItem {
    let payload = MailPayload::new(Mailbox { name: Some(name.to_owned()), email: email.to_owned() }, workspace, notice);
    NewOutboxItem {
        id: crate::ids::new_id("obx", now),
        workspace_id: ws.clone(),
        channel: Channel::Email,
        idempotency_key: format!("sign-in:{}", token_hash(url)),
        event: "partner.sign_in_requested".into(),
        target: email.to_owned(),
        payload: serde_json::to_value(payload).unwrap_or_default(),
        created_at: now,
    }
}

/// Uses a link up; returns the new session's token and its holder.
pub async fn redeem(store: &dyn Store, token: &str, now: Timestamp) -> Result<Option<(String, Holder)>, AppError> {
    let session = new_token();
    let until = now + SignedDuration::from_hours(24 * SESSION_DAYS);
    Ok(store.redeem_sign_in_link(&token_hash(token), &token_hash(&session), now, until).await?.map(|h| (session, h)))
}

/// Forgets expired sign-in links and sessions (a day after they expire, so
/// a late click still gets "this link has expired", not "unknown link").
/// The scheduler runs it hourly; returns how many rows went.
pub async fn prune(store: &dyn Store, now: Timestamp) -> Result<u64, AppError> {
    Ok(store.prune_sign_in(now - SignedDuration::from_hours(24)).await?)
}

pub async fn session(store: &dyn Store, token: &str, now: Timestamp) -> Result<Option<Holder>, AppError> {
    Ok(store.portal_session(&token_hash(token), now).await?)
}

/// Signs a partner contact out: the session's cookie opens nothing afterwards.
pub async fn sign_out(store: &dyn Store, token: &str) -> Result<bool, AppError> {
    Ok(store.end_portal_session(&token_hash(token)).await?)
}

/// The referral a status link shows, if the link is genuine, current and
/// not revoked.
pub async fn status_referral(
    store: &dyn Store,
    cfg: &NotifyConfig,
    token: &str,
    now: Timestamp,
) -> Result<Option<(WorkspaceId, Referral)>, AppError> {
    let Ok((id, version)) = partnerloop_domain::reply_token::verify_status_token(&cfg.link_key, token, now) else {
        return Ok(None);
    };
    if store.status_link_version(&id).await? != version {
        return Ok(None);
    }
    let ws = match store.referral_workspace(&id).await {
        Ok(ws) => ws,
        Err(crate::StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some((ws.clone(), store.referral(&ws, &id).await?)))
}

/// Revokes every status link of a referral issued so far (admin).
pub async fn revoke_status_links(store: &dyn Store, ctx: &Ctx, id: &ReferralId) -> Result<u32, AppError> {
    ctx.require_admin()?;
    store.referral(&ctx.workspace_id, id).await?;
    let audit = AuditEntry::of(ctx, "referral.status_links_revoked", "referral", id.as_str(), serde_json::json!({}));
    Ok(store.revoke_status_links(&ctx.workspace_id, id, &audit).await?)
}

/// The contact a preferences or unsubscribe token names, with a context
/// acting as its partner; `None` for a bad token or a deleted contact.
pub async fn preferences_holder(
    store: &dyn Store,
    cfg: &NotifyConfig,
    token: &str,
    now: Timestamp,
) -> Result<Option<(Ctx, Holder)>, AppError> {
    let Ok(contact) = partnerloop_domain::reply_token::verify_preferences_token(&cfg.link_key, token) else {
        return Ok(None);
    };
    let Some(h) = store.contact_holder(&contact).await? else {
        return Ok(None);
    };
    let ctx = Ctx::new(h.workspace_id.clone(), crate::ctx::Actor::Partner { partner_id: h.partner_id.clone(), key_id: None }, now);
    Ok(Some((ctx, h)))
}
