//! Managing who hears what: webhook endpoints (Standard Webhooks secrets,
//! event filters), the workspace's Slack webhook and partner managers,
//! partner contacts' mail preferences, and the outbox's delivery log.
//!
//! Rules: admins manage endpoints, settings and the log; a partner reads
//! and sets only its own contacts' preferences. Secrets (an endpoint's
//! signing secret, the Slack URL) are sealed before they reach the store;
//! an endpoint's secret is shown once, when it is made or rotated.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::{Email, FieldError};
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::outbox::{Attempt, NotificationSettings, OutboxFilter, OutboxItem, Preference, Topic, WebhookEndpoint};
use crate::sealing::Sealer;
use crate::store::{AuditEntry, Page, Paged, Store};

/// The sealing context of an endpoint's secret (the HTTP sender opens it).
pub fn secret_context(ws: &partnerloop_domain::ids::WorkspaceId, endpoint: &str) -> String {
    format!("webhook-secret:{ws}:{endpoint}")
}

/// The sealing context of a workspace's Slack URL.
pub fn slack_context(ws: &partnerloop_domain::ids::WorkspaceId) -> String {
    format!("slack-webhook:{ws}")
}

/// What an admin gives for an endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub active: bool,
}

fn check_endpoint(input: &EndpointInput) -> Result<(), AppError> {
    let mut errors = Vec::new();
    let rest = input.url.strip_prefix("https://").or_else(|| input.url.strip_prefix("http://"));
    if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) || input.url.len() > 2000 || input.url.contains(char::is_whitespace) {
        errors.push(FieldError::new("url", "must be an absolute http:// or https:// URL"));
    }
    let known = crate::notify::event_types();
    for (i, e) in input.events.iter().enumerate() {
        if e != "*" && !known.contains(&e.as_str()) {
            errors.push(FieldError::new(format!("events[{i}]"), format!("unknown event type '{e}'; known: {}", known.join(", "))));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(AppError::Invalid(errors)) }
}

fn new_secret() -> String {
    format!("whsec_{}", STANDARD.encode(rand::random::<[u8; 24]>()))
}

/// Makes an endpoint; returns it and its signing secret (shown once).
pub async fn create_endpoint(
    store: &dyn Store,
    sealer: &Sealer,
    ctx: &Ctx,
    input: EndpointInput,
) -> Result<(WebhookEndpoint, String), AppError> {
    ctx.require_admin()?;
    check_endpoint(&input)?;
    let id = crate::ids::new_id("whe", ctx.now);
    let secret = new_secret();
    let e = WebhookEndpoint {
        secret_sealed: sealer.seal(&secret_context(&ctx.workspace_id, &id), secret.as_bytes()),
        id,
        url: input.url,
        description: input.description,
        events: input.events,
        active: input.active,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let a = AuditEntry::of(ctx, "webhook_endpoint.created", "webhook_endpoint", &e.id, json!({"url": e.url, "events": e.events}));
    store.insert_webhook_endpoint(&ctx.workspace_id, &e, &a).await?;
    Ok((e, secret))
}

/// Changes an endpoint; `rotate` gives it a new secret (returned).
pub async fn update_endpoint(
    store: &dyn Store,
    sealer: &Sealer,
    ctx: &Ctx,
    id: &str,
    input: EndpointInput,
    rotate: bool,
) -> Result<(WebhookEndpoint, Option<String>), AppError> {
    ctx.require_admin()?;
    check_endpoint(&input)?;
    let mut e = store.webhook_endpoint(&ctx.workspace_id, id).await?;
    e.url = input.url;
    e.description = input.description;
    e.events = input.events;
    e.active = input.active;
    e.updated_at = ctx.now;
    let secret = rotate.then(new_secret);
    if let Some(s) = &secret {
        e.secret_sealed = sealer.seal(&secret_context(&ctx.workspace_id, &e.id), s.as_bytes());
    }
    let a = AuditEntry::of(
        ctx,
        "webhook_endpoint.updated",
        "webhook_endpoint",
        &e.id,
        json!({"url": e.url, "events": e.events, "active": e.active, "rotated": rotate}),
    );
    store.update_webhook_endpoint(&ctx.workspace_id, &e, &a).await?;
    Ok((e, secret))
}

pub async fn delete_endpoint(store: &dyn Store, ctx: &Ctx, id: &str) -> Result<(), AppError> {
    ctx.require_admin()?;
    let a = AuditEntry::of(ctx, "webhook_endpoint.deleted", "webhook_endpoint", id, json!({}));
    Ok(store.delete_webhook_endpoint(&ctx.workspace_id, id, &a).await?)
}

pub async fn endpoints(store: &dyn Store, ctx: &Ctx) -> Result<Vec<WebhookEndpoint>, AppError> {
    ctx.require_admin()?;
    Ok(store.webhook_endpoints(&ctx.workspace_id).await?)
}

pub async fn endpoint(store: &dyn Store, ctx: &Ctx, id: &str) -> Result<WebhookEndpoint, AppError> {
    ctx.require_admin()?;
    Ok(store.webhook_endpoint(&ctx.workspace_id, id).await?)
}

/// What an admin gives for the workspace's notification settings.
#[derive(Debug, Clone)]
pub struct SettingsInput {
    /// `Some("")` removes the Slack webhook; `None` keeps it.
    pub slack_webhook_url: Option<String>,
    pub manager_emails: Vec<String>,
    pub stalled_days: u32,
}

/// The settings as anyone may read them: the Slack URL only as "set".
pub fn settings_view(s: Option<&NotificationSettings>) -> serde_json::Value {
    match s {
        Some(s) => {
            json!({"slack": s.slack_sealed.is_some(), "manager_emails": s.manager_emails, "stalled_days": s.stalled_days, "updated_at": s.updated_at.to_string()})
        }
        None => json!({"slack": false, "manager_emails": [], "stalled_days": 14, "updated_at": null}),
    }
}

pub async fn settings(store: &dyn Store, ctx: &Ctx) -> Result<Option<NotificationSettings>, AppError> {
    ctx.require_admin()?;
    Ok(store.notification_settings(&ctx.workspace_id).await?)
}

pub async fn put_settings(store: &dyn Store, sealer: &Sealer, ctx: &Ctx, input: SettingsInput) -> Result<NotificationSettings, AppError> {
    ctx.require_admin()?;
    let mut errors = Vec::new();
    let mut managers = Vec::new();
    for (i, m) in input.manager_emails.iter().enumerate() {
        match Email::parse(&format!("manager_emails[{i}]"), m) {
            Ok(e) => managers.push(e.as_str().to_owned()),
            Err(e) => errors.push(e),
        }
    }
    if !(1..=365).contains(&input.stalled_days) {
        errors.push(FieldError::new("stalled_days", "must be from 1 to 365"));
    }
    if let Some(url) = input.slack_webhook_url.as_deref().filter(|u| !u.is_empty())
        && !url.starts_with("https://")
        && !url.starts_with("http://")
    {
        errors.push(FieldError::new("slack_webhook_url", "must be the https:// URL of a Slack incoming webhook"));
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let before = store.notification_settings(&ctx.workspace_id).await?;
    let slack_sealed = match input.slack_webhook_url.as_deref() {
        None => before.and_then(|b| b.slack_sealed),
        Some("") => None,
        Some(url) => Some(sealer.seal(&slack_context(&ctx.workspace_id), url.as_bytes())),
    };
    let s = NotificationSettings { slack_sealed, manager_emails: managers, stalled_days: input.stalled_days, updated_at: ctx.now };
    let a = AuditEntry::of(ctx, "notification_settings.set", "workspace", ctx.workspace_id.as_str(), settings_view(Some(&s)));
    store.put_notification_settings(&ctx.workspace_id, &s, &a).await?;
    Ok(s)
}

/// Each contact of the partner with its subscription to every topic.
pub async fn preferences(store: &dyn Store, ctx: &Ctx, partner: &PartnerId) -> Result<serde_json::Value, AppError> {
    let p = crate::partners::get(store, ctx, partner).await?;
    let stored = store.preferences(&ctx.workspace_id, partner).await?;
    let contacts: Vec<_> = p
        .contacts
        .iter()
        .map(|c| {
            let topics: serde_json::Map<String, serde_json::Value> = Topic::ALL
                .iter()
                .map(|t| {
                    let on = stored.iter().find(|s| s.contact_id == c.id && s.topic == *t).is_none_or(|s| s.enabled);
                    (t.as_str().to_owned(), json!(on))
                })
                .collect();
            json!({"contact_id": c.id.as_str(), "email": c.email.as_str(), "topics": topics})
        })
        .collect();
    Ok(json!({"data": contacts}))
}

/// Sets some topics of some contacts of the partner.
pub async fn put_preferences(
    store: &dyn Store,
    ctx: &Ctx,
    partner: &PartnerId,
    changes: Vec<Preference>,
) -> Result<serde_json::Value, AppError> {
    let p = crate::partners::get(store, ctx, partner).await?;
    let mut errors = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        if !p.contacts.iter().any(|x| x.id == c.contact_id) {
            errors.push(FieldError::new(format!("contacts[{i}].contact_id"), "is not a contact of this partner"));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let view: Vec<_> =
        changes.iter().map(|c| json!({"contact_id": c.contact_id.as_str(), "topic": c.topic.as_str(), "enabled": c.enabled})).collect();
    let a = AuditEntry::of(ctx, "notification_preferences.set", "partner", partner.as_str(), json!(view));
    store.put_preferences(&ctx.workspace_id, &changes, &a).await?;
    preferences(store, ctx, partner).await
}

pub async fn outbox(store: &dyn Store, ctx: &Ctx, filter: &OutboxFilter, page: &Page) -> Result<Paged<OutboxItem>, AppError> {
    ctx.require_admin()?;
    Ok(store.list_outbox(&ctx.workspace_id, filter, page).await?)
}

pub async fn outbox_item(store: &dyn Store, ctx: &Ctx, id: &str) -> Result<(OutboxItem, Vec<Attempt>), AppError> {
    ctx.require_admin()?;
    let item = store.outbox_item(&ctx.workspace_id, id).await?;
    let attempts = store.outbox_attempts(&ctx.workspace_id, id).await?;
    Ok((item, attempts))
}

/// A dead-lettered item is tried again now.
pub async fn retry(store: &dyn Store, ctx: &Ctx, id: &str) -> Result<OutboxItem, AppError> {
    ctx.require_admin()?;
    let a = AuditEntry::of(ctx, "outbox.retried", "outbox", id, json!({}));
    store.retry_outbox(&ctx.workspace_id, id, ctx.now, &a).await.map_err(|e| match e {
        crate::StoreError::Stale => AppError::conflict(Some("status"), "only a dead-lettered item can be retried"),
        other => other.into(),
    })?;
    Ok(store.outbox_item(&ctx.workspace_id, id).await?)
}

/// What an admin announces.
#[derive(Debug, Clone)]
pub struct Announcement {
    pub subject: String,
    pub body: String,
    /// Only partners of this tier (slug); all active partners when absent.
    pub tier: Option<String>,
}

/// Mails an announcement to every contact of the active partners (of the
/// tier) who has not opted out of announcements; returns the id and how
/// many mails were queued. Each mail is keyed by announcement and contact.
pub async fn announce(
    store: &dyn Store,
    links: &crate::notify::NotifyConfig,
    ctx: &Ctx,
    a: Announcement,
) -> Result<(String, u64), AppError> {
    use crate::notify::notice::{MailPayload, Mailbox, Notice};
    use crate::outbox::{Channel, NewOutboxItem};
    ctx.require_admin()?;
    let mut errors = Vec::new();
    if a.subject.trim().is_empty() || a.subject.len() > 200 {
        errors.push(FieldError::new("subject", "must be 1 to 200 characters"));
    }
    if a.body.trim().is_empty() || a.body.len() > 20_000 {
        errors.push(FieldError::new("body", "must be 1 to 20,000 characters"));
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let id = crate::ids::new_id("ann", ctx.now);
    let ws = &ctx.workspace_id;
    let workspace = store.workspace(ws).await?.name;
    let opted_out: std::collections::HashSet<_> = store.opted_out(ws, Topic::Announcements).await?.into_iter().collect();
    let filter = crate::store::PartnerFilter { status: Some(partnerloop_domain::partner::PartnerStatus::Active), only: None };
    let mut page = Page { limit: 500, after: None };
    let mut items = Vec::new();
    loop {
        let batch = store.list_partners(ws, &filter, &page).await?;
        for p in batch.items.iter().filter(|p| a.tier.is_none() || p.tier == a.tier) {
            for c in p.contacts.iter().filter(|c| !opted_out.contains(&c.id)) {
                let mut payload = MailPayload::new(
                    Mailbox { name: Some(c.name.clone()), email: c.email.as_str().to_owned() },
                    workspace.clone(),
                    Notice::Announcement { subject: a.subject.clone(), body: a.body.clone() },
                );
                payload.preferences_url = Some(links.preferences_url(&c.id));
                payload.unsubscribe_url = Some(links.unsubscribe_url(&c.id, Topic::Announcements));
                items.push(NewOutboxItem {
                    id: crate::ids::new_id("obx", ctx.now),
                    workspace_id: ws.clone(),
                    channel: Channel::Email,
                    idempotency_key: format!("{id}:{}", c.id),
                    event: "announcement".into(),
                    target: c.email.as_str().to_owned(),
                    payload: serde_json::to_value(payload).unwrap_or_default(),
                    created_at: ctx.now,
                });
            }
        }
        match batch.next_after {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    let audit =
        AuditEntry::of(ctx, "announcement.sent", "announcement", &id, json!({"subject": a.subject, "tier": a.tier, "mails": items.len()}));
    let queued = store.enqueue_audited(ws, &items, &audit).await?;
    Ok((id, queued))
}
