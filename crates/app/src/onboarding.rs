//! The onboarding checklist: the workspace's items, in order, and each
//! partner's progress through them.
//!
//! Rules: staff who manage (`Ctx::require_admin`) add, edit, remove and
//! reorder items, each change audited. A partner ticks (or unticks) only
//! its own items of its own workspace; another workspace's item is 404.
//! An item with an [`AutoCheck`] is done when the partner's data says so
//! and cannot be ticked by hand. Removing an item removes its ticks.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_domain::FieldError;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::validation::{Validator, optional_text, required_text};
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::store::{AuditEntry, Store, StoreResult};

/// Most items a checklist may have.
pub const MAX_ITEMS: usize = 50;

/// A fact about a partner that completes an item by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCheck {
    /// The partner has added payout details.
    PayoutDetails,
    /// The partner has registered its first referral.
    FirstReferral,
}

impl AutoCheck {
    pub const ALL: [AutoCheck; 2] = [AutoCheck::PayoutDetails, AutoCheck::FirstReferral];

    pub fn as_str(&self) -> &'static str {
        match self {
            AutoCheck::PayoutDetails => "payout_details",
            AutoCheck::FirstReferral => "first_referral",
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            AutoCheck::PayoutDetails => "done when payout details are added",
            AutoCheck::FirstReferral => "done when the first referral is registered",
        }
    }

    /// `""` is no automatic check.
    pub fn parse(field: &str, s: &str) -> Result<Option<Self>, FieldError> {
        match s {
            "" => Ok(None),
            _ => Self::ALL
                .into_iter()
                .find(|a| a.as_str() == s)
                .map(Some)
                .ok_or_else(|| FieldError::new(field, "must be empty, payout_details or first_referral")),
        }
    }
}

/// One item of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardingItem {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub position: i64,
    pub title: String,
    pub description: String,
    /// An absolute http(s) URL or a portal path (`/portal/…`).
    pub link: Option<String>,
    pub auto: Option<AutoCheck>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What staff type for an item.
#[derive(Debug, Clone, Default)]
pub struct ItemInput {
    pub title: String,
    pub description: String,
    pub link: String,
    pub auto: String,
}

/// An item and whether the partner has done it (and how).
#[derive(Debug, Clone)]
pub struct ItemProgress {
    pub item: OnboardingItem,
    pub done_at: Option<Timestamp>,
}

/// A partner's progress through the checklist.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub items: Vec<ItemProgress>,
}

impl Progress {
    pub fn done(&self) -> usize {
        self.items.iter().filter(|i| i.done_at.is_some()).count()
    }

    pub fn total(&self) -> usize {
        self.items.len()
    }

    /// Whole percent done (100 for an empty checklist).
    pub fn percent(&self) -> usize {
        if self.items.is_empty() { 100 } else { self.done() * 100 / self.total() }
    }
}

#[async_trait]
pub trait OnboardingStore: Send + Sync {
    /// The workspace's items in order.
    async fn onboarding_items(&self, ws: &WorkspaceId) -> StoreResult<Vec<OnboardingItem>>;
    /// Adds an item at the end (its position is set by the store), with the audit row.
    async fn insert_onboarding_item(&self, item: &OnboardingItem, audit: &AuditEntry) -> StoreResult<()>;
    /// Replaces an item's title, description, link and automatic check.
    async fn update_onboarding_item(&self, item: &OnboardingItem, audit: &AuditEntry) -> StoreResult<()>;
    /// Removes an item and every partner's tick of it.
    async fn delete_onboarding_item(&self, ws: &WorkspaceId, id: &str, audit: &AuditEntry) -> StoreResult<()>;
    /// Swaps an item with its neighbour above (`up`) or below; nothing at an end.
    async fn move_onboarding_item(&self, ws: &WorkspaceId, id: &str, up: bool, audit: &AuditEntry) -> StoreResult<()>;
    /// The items a partner ticked, with when.
    async fn onboarding_ticks(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Vec<(String, Timestamp)>>;
    /// Ticks (`done`) or unticks an item of the workspace for a partner; idempotent.
    async fn tick_onboarding_item(
        &self,
        ws: &WorkspaceId,
        partner: &PartnerId,
        item: &str,
        done: bool,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}

/// An item's link: an absolute http(s) URL, or a path of the portal.
fn parse_link(input: &str) -> Result<Option<String>, FieldError> {
    let link = input.trim();
    if link.is_empty() {
        return Ok(None);
    }
    if link.starts_with("/portal") && link.len() <= 200 && link.bytes().all(|b| b.is_ascii_graphic() && !b"\"<>\\".contains(&b)) {
        return Ok(Some(link.to_owned()));
    }
    crate::enablement::parse_link("link", link)
        .map(Some)
        .map_err(|_| FieldError::new("link", "must be an http(s) URL or a portal path such as /portal/payout-details"))
}

/// An item's parsed fields: title, description, link, automatic check.
type ItemFields = (String, String, Option<String>, Option<AutoCheck>);

fn parse(input: &ItemInput) -> Result<ItemFields, Vec<FieldError>> {
    let mut v = Validator::new();
    let title = v.check(required_text("title", &input.title, 200));
    let description = v.check(optional_text("description", Some(&input.description), 1000));
    let link = v.check(parse_link(&input.link));
    let auto = v.check(AutoCheck::parse("auto", input.auto.trim()));
    v.finish(|| Some((title?, description?.unwrap_or_default(), link?, auto?)))
}

fn item_json(i: &OnboardingItem) -> serde_json::Value {
    json!({"title": i.title, "description": i.description, "link": i.link, "auto": i.auto.map(|a| a.as_str())})
}

/// The checklist (any staff role, or a partner of the workspace).
pub async fn items(store: &dyn Store, ctx: &Ctx) -> Result<Vec<OnboardingItem>, AppError> {
    Ok(store.onboarding_items(&ctx.workspace_id).await?)
}

/// Adds an item at the end of the checklist.
pub async fn add_item(store: &dyn Store, ctx: &Ctx, input: &ItemInput) -> Result<OnboardingItem, AppError> {
    ctx.require_admin()?;
    let (title, description, link, auto) = parse(input)?;
    if store.onboarding_items(&ctx.workspace_id).await?.len() >= MAX_ITEMS {
        return Err(AppError::invalid("title", format!("a checklist has at most {MAX_ITEMS} items")));
    }
    let item = OnboardingItem {
        id: crate::ids::new_id("obi", ctx.now),
        workspace_id: ctx.workspace_id.clone(),
        position: 0,
        title,
        description,
        link,
        auto,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let audit = AuditEntry::of(ctx, "onboarding_item.created", "onboarding_item", &item.id, item_json(&item));
    store.insert_onboarding_item(&item, &audit).await?;
    Ok(item)
}

async fn item(store: &dyn Store, ctx: &Ctx, id: &str) -> Result<OnboardingItem, AppError> {
    store.onboarding_items(&ctx.workspace_id).await?.into_iter().find(|i| i.id == id).ok_or(AppError::NotFound)
}

/// Changes an item's text, link and automatic check.
pub async fn edit_item(store: &dyn Store, ctx: &Ctx, id: &str, input: &ItemInput) -> Result<(), AppError> {
    ctx.require_admin()?;
    let before = item(store, ctx, id).await?;
    let (title, description, link, auto) = parse(input)?;
    let after = OnboardingItem { title, description, link, auto, updated_at: ctx.now, ..before.clone() };
    let mut audit = AuditEntry::of(ctx, "onboarding_item.updated", "onboarding_item", id, item_json(&after));
    audit.before = Some(item_json(&before));
    store.update_onboarding_item(&after, &audit).await?;
    Ok(())
}

/// Removes an item (and the partners' ticks of it).
pub async fn remove_item(store: &dyn Store, ctx: &Ctx, id: &str) -> Result<(), AppError> {
    ctx.require_admin()?;
    let before = item(store, ctx, id).await?;
    let mut audit = AuditEntry::of(ctx, "onboarding_item.deleted", "onboarding_item", id, json!({"deleted": true}));
    audit.before = Some(item_json(&before));
    store.delete_onboarding_item(&ctx.workspace_id, id, &audit).await?;
    Ok(())
}

/// Moves an item one place up or down.
pub async fn move_item(store: &dyn Store, ctx: &Ctx, id: &str, up: bool) -> Result<(), AppError> {
    ctx.require_admin()?;
    item(store, ctx, id).await?;
    let audit = AuditEntry::of(ctx, "onboarding_item.moved", "onboarding_item", id, json!({"direction": if up { "up" } else { "down" }}));
    store.move_onboarding_item(&ctx.workspace_id, id, up, &audit).await?;
    Ok(())
}

/// A partner's progress: its ticks, and the automatic checks judged from
/// its data now. Staff read any partner's; a partner only its own.
pub async fn progress(store: &dyn Store, ctx: &Ctx, partner: &PartnerId) -> Result<Progress, AppError> {
    if ctx.partner_scope().is_some_and(|own| own != partner) {
        return Err(AppError::NotFound);
    }
    let p = store.partner(&ctx.workspace_id, partner).await?;
    let items = store.onboarding_items(&ctx.workspace_id).await?;
    if items.is_empty() {
        return Ok(Progress::default());
    }
    let ticks = store.onboarding_ticks(&ctx.workspace_id, partner).await?;
    let payout_at = if items.iter().any(|i| i.auto == Some(AutoCheck::PayoutDetails)) {
        store.payout_details(&ctx.workspace_id, partner).await?.map(|d| d.updated_at)
    } else {
        None
    };
    let items = items
        .into_iter()
        .map(|item| {
            let done_at = match item.auto {
                Some(AutoCheck::PayoutDetails) => payout_at,
                Some(AutoCheck::FirstReferral) => p.first_referral_at,
                None => ticks.iter().find(|(id, _)| *id == item.id).map(|(_, at)| *at),
            };
            ItemProgress { item, done_at }
        })
        .collect();
    Ok(Progress { items })
}

/// The signed-in partner ticks (or unticks) an item of its checklist.
pub async fn tick(store: &dyn Store, ctx: &Ctx, id: &str, done: bool) -> Result<(), AppError> {
    let Some(partner) = ctx.partner_scope() else {
        return Err(AppError::Forbidden("a partner ticks its own checklist".into()));
    };
    let item = item(store, ctx, id).await?;
    if item.auto.is_some() {
        return Err(AppError::conflict(
            None,
            format!("“{}” is {}; it cannot be ticked by hand", item.title, item.auto.map_or("", |a| a.label())),
        ));
    }
    let action = if done { "onboarding_item.done" } else { "onboarding_item.undone" };
    let audit = AuditEntry::of(ctx, action, "partner", partner.as_str(), json!({"item": id, "title": item.title}));
    store.tick_onboarding_item(&ctx.workspace_id, partner, id, done, &audit).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_needs_a_title_and_a_sound_link_and_check() {
        let ok = ItemInput { title: " Watch the intro ".into(), link: "/portal/payout-details".into(), ..Default::default() };
        let (title, _, link, auto) = parse(&ok).unwrap();
        assert_eq!((title.as_str(), link.as_deref(), auto), ("Watch the intro", Some("/portal/payout-details"), None));
        let bad = ItemInput { title: " ".into(), link: "javascript:alert(1)".into(), auto: "magic".into(), ..Default::default() };
        let fields: Vec<_> = parse(&bad).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["title", "link", "auto"]);
        assert_eq!(AutoCheck::parse("auto", "first_referral").unwrap(), Some(AutoCheck::FirstReferral));
    }
}
