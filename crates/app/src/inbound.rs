//! Mail that partners send us: a registration to `register@` (structured
//! or the warm intro with `register@` in CC) and a reply to a referral's
//! `reply+TOKEN@` address. The MIME reading is the mail adapter's; this is
//! what the mail means for the program.
//!
//! Rules: the sender must be a contact of an active partner — anyone else
//! is dropped with a logged reason, never answered (no backscatter to
//! forged senders). A reply must come from a contact of the referral's own
//! partner. A registration that cannot be read is answered with the
//! reason, once per message.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::partner::Partner;
use partnerloop_domain::referral::{Channel, ReferralId};
use partnerloop_domain::{Email, reply_token};

use crate::ctx::{Actor, Ctx};
use crate::error::AppError;
use crate::matching::NameMatcher;
use crate::notify::NotifyConfig;
use crate::notify::notice::{MailPayload, Mailbox, Notice};
use crate::outbox::{Channel as OutboxChannel, NewOutboxItem};
use crate::referrals::{self, ReferralForCreate};
use crate::store::{Registered, Store, StoreResult};

/// A partner contact found by email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderMatch {
    pub workspace_id: WorkspaceId,
    pub workspace_slug: String,
    pub partner_id: PartnerId,
}

#[async_trait]
pub trait InboundStore: Send + Sync {
    /// Every partner contact with this email, in any workspace.
    async fn partner_contacts_by_email(&self, email: &str) -> StoreResult<Vec<SenderMatch>>;
    /// The workspace a referral belongs to.
    async fn referral_workspace(&self, id: &ReferralId) -> StoreResult<WorkspaceId>;
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// A new registration (or the partner's existing one of that account).
    Registered {
        referral_id: ReferralId,
        created: bool,
    },
    Replied {
        referral_id: ReferralId,
    },
    /// Not acted on, and why (logged; the sender is told only when it is a known partner).
    Dropped {
        reason: String,
    },
}

fn dropped(reason: impl Into<String>) -> InboundOutcome {
    InboundOutcome::Dropped { reason: reason.into() }
}

/// The partner behind a sender address. `slug` narrows the search when
/// the mail went to `register+SLUG@` (a contact in several workspaces).
pub async fn sender_partner(store: &dyn Store, from: &str, slug: Option<&str>) -> Result<(WorkspaceId, Partner), String> {
    let found = store.partner_contacts_by_email(&from.to_lowercase()).await.map_err(|e| e.to_string())?;
    let found: Vec<_> = found.into_iter().filter(|m| slug.is_none_or(|s| m.workspace_slug == s)).collect();
    let m = match found.as_slice() {
        [] => return Err(format!("{from} is not a partner contact")),
        [one] => one.clone(),
        _ => return Err(format!("{from} is a contact in several workspaces: the mail must go to register+WORKSPACE@")),
    };
    let partner = store.partner(&m.workspace_id, &m.partner_id).await.map_err(|e| e.to_string())?;
    Ok((m.workspace_id, partner))
}

/// What a registration mail said.
#[derive(Debug, Clone, Default)]
pub struct MailedRegistration {
    pub company_name: Option<String>,
    pub company_domain: Option<String>,
    pub contact_name: Option<String>,
    pub contact_email: String,
    pub context: String,
}

/// A company name from a domain, when the mail named none: `globex.example` → `Globex`.
fn name_from_domain(domain: &str) -> String {
    let label = domain.split('.').next().unwrap_or(domain);
    let mut c = label.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// Registers what a partner mailed, as that partner, channel `email`.
pub async fn register_by_mail(
    store: &dyn Store,
    matcher: &NameMatcher,
    ws: &WorkspaceId,
    partner: &Partner,
    m: MailedRegistration,
    now: Timestamp,
) -> Result<InboundOutcome, AppError> {
    let ctx = Ctx::new(ws.clone(), Actor::Partner { partner_id: partner.id.clone(), key_id: None }, now);
    let email = Email::parse("contact.email", &m.contact_email).map_err(|e| AppError::Invalid(vec![e]))?;
    let domain = m
        .company_domain
        .as_deref()
        .map(|d| CompanyDomain::parse("company.domain", d))
        .transpose()
        .map_err(|e| AppError::Invalid(vec![e]))?;
    let company_name = m
        .company_name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| name_from_domain(domain.as_ref().map_or(email.domain(), |d| d.as_str())));
    let input = ReferralForCreate {
        partner_id: None,
        company_name,
        company_domain: domain,
        contact_name: m.contact_name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| email.as_str().to_owned()),
        contact_email: email,
        contact_title: None,
        context: Some(m.context).filter(|c| !c.trim().is_empty()),
        estimated_value: None,
        channel: Channel::Email,
    };
    Ok(match referrals::register(store, matcher, &ctx, input).await? {
        Registered::Created(r) => InboundOutcome::Registered { referral_id: r.id, created: true },
        Registered::Existing(r) => InboundOutcome::Registered { referral_id: r.id, created: false },
    })
}

/// Tells a partner contact why their registration mail was not taken,
/// once per message (`message_key`: its Message-ID, or a digest).
pub async fn refuse_registration(
    store: &dyn Store,
    ws: &WorkspaceId,
    to: &str,
    reason: &str,
    message_key: &str,
    now: Timestamp,
) -> Result<(), AppError> {
    let workspace = store.workspace(ws).await?.name;
    let payload = MailPayload::new(
        Mailbox { name: None, email: to.to_owned() },
        workspace,
        Notice::RegistrationRefused { reason: reason.to_owned() },
    );
    let item = NewOutboxItem {
        id: crate::ids::new_id("obx", now),
        workspace_id: ws.clone(),
        channel: OutboxChannel::Email,
        idempotency_key: format!("intake:{message_key}:{to}"),
        event: "registration.refused".into(),
        target: to.to_owned(),
        payload: serde_json::to_value(payload).unwrap_or_default(),
        created_at: now,
    };
    store.enqueue(&[item]).await?;
    Ok(())
}

/// Adds a mailed reply to the referral its token names, if the sender is a
/// contact of that referral's partner.
pub async fn reply_by_mail(
    store: &dyn Store,
    cfg: &NotifyConfig,
    token: &str,
    from: &str,
    text: String,
    now: Timestamp,
) -> Result<InboundOutcome, AppError> {
    let id = match reply_token::decode(&cfg.link_key, token) {
        Ok(id) => id,
        Err(e) => return Ok(dropped(format!("reply address refused: {e}"))),
    };
    let ws = match store.referral_workspace(&id).await {
        Ok(ws) => ws,
        Err(crate::StoreError::NotFound) => return Ok(dropped("the referral of this reply address is gone")),
        Err(e) => return Err(e.into()),
    };
    let referral = store.referral(&ws, &id).await?;
    let partner = store.partner(&ws, &referral.partner_id).await?;
    if !partner.contacts.iter().any(|c| c.email.as_str().eq_ignore_ascii_case(from)) {
        return Ok(dropped(format!("{from} is not a contact of the referral's partner")));
    }
    if text.trim().is_empty() {
        return Ok(dropped("the reply is empty once quoted text and signatures are removed"));
    }
    let ctx = Ctx::new(ws, Actor::Partner { partner_id: partner.id.clone(), key_id: None }, now);
    referrals::reply(store, &ctx, &id, text).await?;
    Ok(InboundOutcome::Replied { referral_id: id })
}
