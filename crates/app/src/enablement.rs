//! The enablement library: decks, one-pagers and templates for partners,
//! each an uploaded file or an external link, visible to every partner or
//! to the partners of some tiers; downloads counted.
//!
//! Rules: staff who manage (`Ctx::require_admin`) add, re-scope and delete
//! resources; any staff role reads the list. A partner lists and opens only
//! the resources visible to its *current* tier; any other resource — of
//! another tier, deleted, or of another workspace — is 404, and opening it
//! counts nothing. An upload is at most [`MAX_FILE_BYTES`], not empty, its
//! file name reduced to a safe one and its content type to a plain
//! `type/subtype`; what a browser may render is decided at download time
//! ([`served_content_type`]), never from the upload alone. A link is an
//! absolute http(s) URL. Every change writes its audit row in its
//! transaction; a download writes its row and bumps the counter in one.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_domain::FieldError;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::validation::{Validator, optional_text, required_text};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::store::{AuditEntry, Store, StoreResult};

/// Largest file accepted for upload: 20 MiB.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;

/// What kind of material a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Deck,
    OnePager,
    Template,
    Other,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 4] = [ResourceKind::Deck, ResourceKind::OnePager, ResourceKind::Template, ResourceKind::Other];

    pub fn as_str(&self) -> &'static str {
        match self {
            ResourceKind::Deck => "deck",
            ResourceKind::OnePager => "one_pager",
            ResourceKind::Template => "template",
            ResourceKind::Other => "other",
        }
    }

    /// The kind in words, for pages.
    pub fn label(&self) -> &'static str {
        match self {
            ResourceKind::Deck => "Deck",
            ResourceKind::OnePager => "One-pager",
            ResourceKind::Template => "Template",
            ResourceKind::Other => "Other",
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| FieldError::new(field, "must be one of: deck, one_pager, template, other"))
    }
}

/// Who may see a resource: every partner, or those of some tiers (slugs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    AllPartners,
    Tiers(Vec<String>),
}

/// An uploaded file's description; the bytes travel beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

/// Where a resource's content is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    File(FileInfo),
    Link(String),
}

/// A resource as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub title: String,
    pub description: String,
    pub kind: ResourceKind,
    pub visibility: Visibility,
    pub content: Content,
    pub downloads: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What staff type to add a resource; `file` is the uploaded file's name,
/// declared content type and bytes, when it is an upload.
#[derive(Debug, Default)]
pub struct ResourceForCreate {
    pub title: String,
    pub description: String,
    pub kind: String,
    /// Tier slugs; empty means every partner.
    pub tiers: Vec<String>,
    pub url: String,
    pub file: Option<(String, String, Vec<u8>)>,
}

/// What opening a resource gives a partner.
#[derive(Debug, Clone)]
pub enum Opened {
    File { info: FileInfo, bytes: Vec<u8> },
    Link(String),
}

#[async_trait]
pub trait EnablementStore: Send + Sync {
    /// Inserts a resource, its bytes when a file, its tiers and the audit row.
    async fn insert_resource(&self, r: &Resource, bytes: Option<&[u8]>, audit: &AuditEntry) -> StoreResult<()>;
    /// The workspace's resources (not deleted), newest first.
    async fn resources(&self, ws: &WorkspaceId) -> StoreResult<Vec<Resource>>;
    /// Those visible to a partner of `tier` (none: only the all-partner ones), newest first.
    async fn resources_for_tier(&self, ws: &WorkspaceId, tier: Option<&str>) -> StoreResult<Vec<Resource>>;
    async fn resource(&self, ws: &WorkspaceId, id: &str) -> StoreResult<Resource>;
    async fn set_resource_visibility(&self, ws: &WorkspaceId, id: &str, v: &Visibility, audit: &AuditEntry) -> StoreResult<()>;
    /// Marks the resource deleted and drops its bytes.
    async fn delete_resource(&self, ws: &WorkspaceId, id: &str, audit: &AuditEntry) -> StoreResult<()>;
    /// When the resource is visible to a partner of `tier`: records the
    /// download (`download_id`, partner, `now`), bumps its counter and
    /// returns it with its bytes, in one transaction; `NotFound` otherwise.
    async fn open_resource(
        &self,
        ws: &WorkspaceId,
        id: &str,
        partner: &PartnerId,
        tier: Option<&str>,
        download_id: &str,
        now: Timestamp,
    ) -> StoreResult<(Resource, Option<Vec<u8>>)>;
}

/// The last path part of an uploaded file's name, with only letters,
/// digits, `.`, `-`, `_` and spaces kept (others become `_`), no leading
/// dot, at most 120 characters; `file` when nothing is left.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String =
        last.chars().map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') { c } else { '_' }).take(120).collect();
    let kept = kept.trim().trim_start_matches('.').trim().to_owned();
    if kept.is_empty() { "file".to_owned() } else { kept }
}

/// A declared content type reduced to a lower-case `type/subtype` of
/// token characters; `application/octet-stream` when it is not one.
pub fn clean_content_type(declared: &str) -> String {
    let base = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    match base.split_once('/') {
        Some((t, st)) if token(t) && token(st) && base.len() <= 100 => base,
        _ => "application/octet-stream".to_owned(),
    }
}

/// The content type a download is served with: the stored one when it is
/// a document or image type that browsers never run as a page, else
/// `application/octet-stream` (HTML, SVG, XML, scripts and anything unknown).
pub fn served_content_type(stored: &str) -> &str {
    const SAFE: [&str; 16] = [
        "application/pdf",
        "application/zip",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "text/plain",
        "text/csv",
        "image/png",
        "image/jpeg",
        "image/gif",
    ];
    if SAFE.contains(&stored) { stored } else { "application/octet-stream" }
}

/// An absolute http(s) URL that is safe to put in a `Location` header.
pub fn parse_link(field: &str, input: &str) -> Result<String, FieldError> {
    let url = input.trim();
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.starts_with('@'));
    if !host_ok || url.len() > 2000 || !url.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'<' && b != b'>') {
        return Err(FieldError::new(field, "must be an absolute http:// or https:// URL"));
    }
    Ok(url.to_owned())
}

fn tiers_json(v: &Visibility) -> serde_json::Value {
    match v {
        Visibility::AllPartners => json!("all"),
        Visibility::Tiers(t) => json!(t),
    }
}

/// The slugs of the workspace's tiers (none without a ladder).
async fn tier_slugs(store: &dyn Store, ctx: &Ctx) -> Result<Vec<String>, AppError> {
    Ok(store.tier_ladder(&ctx.workspace_id).await?.map(|l| l.ladder.tiers().iter().map(|t| t.slug.clone()).collect()).unwrap_or_default())
}

/// The tier slugs typed, checked against the workspace's tiers.
fn visibility(tiers: &[String], known: &[String]) -> Result<Visibility, FieldError> {
    let mut wanted: Vec<String> = tiers.iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(Visibility::AllPartners);
    }
    match wanted.iter().find(|t| !known.contains(t)) {
        Some(t) => Err(FieldError::new("tiers", format!("'{t}' is not a tier of this workspace"))),
        None => Ok(Visibility::Tiers(wanted)),
    }
}

/// Adds a file or a link (exactly one) to the library.
pub async fn add(store: &dyn Store, ctx: &Ctx, input: ResourceForCreate) -> Result<Resource, AppError> {
    ctx.require_admin()?;
    let mut v = Validator::new();
    let title = v.check(required_text("title", &input.title, 200));
    let description = v.check(optional_text("description", Some(&input.description), 2000));
    let kind = v.check(ResourceKind::parse("kind", input.kind.trim()));
    let vis = v.check(visibility(&input.tiers, &tier_slugs(store, ctx).await?));
    let has_url = !input.url.trim().is_empty();
    let content = match (&input.file, has_url) {
        (Some(_), true) => v.check(Err(FieldError::new("url", "give a file or a link, not both"))),
        (None, false) => v.check(Err(FieldError::new("file", "choose a file to upload or give a link"))),
        (None, true) => v.check(parse_link("url", &input.url)).map(Content::Link),
        (Some((name, declared, bytes)), false) => {
            if bytes.is_empty() {
                v.check(Err(FieldError::new("file", "is empty")))
            } else if bytes.len() > MAX_FILE_BYTES {
                v.check(Err(FieldError::new("file", format!("is larger than the limit of {} MB", MAX_FILE_BYTES / (1024 * 1024)))))
            } else {
                Some(Content::File(FileInfo {
                    name: safe_file_name(name),
                    content_type: clean_content_type(declared),
                    size: bytes.len() as u64,
                    sha256: Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect(),
                }))
            }
        }
    };
    let (title, description, kind, visibility, content) =
        v.finish(|| Some((title?, description?.unwrap_or_default(), kind?, vis?, content?)))?;
    let r = Resource {
        id: crate::ids::new_id("res", ctx.now),
        workspace_id: ctx.workspace_id.clone(),
        title,
        description,
        kind,
        visibility,
        content,
        downloads: 0,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let (what, sha) = match &r.content {
        Content::File(f) => (json!({"file": f.name, "content_type": f.content_type, "size": f.size}), Some(f.sha256.clone())),
        Content::Link(u) => (json!({"url": u}), None),
    };
    let audit = AuditEntry::of(
        ctx,
        "resource.created",
        "resource",
        &r.id,
        json!({"title": r.title, "kind": r.kind.as_str(), "tiers": tiers_json(&r.visibility), "content": what, "sha256": sha}),
    );
    let bytes = input.file.as_ref().map(|(_, _, b)| b.as_slice());
    store.insert_resource(&r, bytes, &audit).await?;
    Ok(r)
}

/// Every resource of the workspace, newest first (any staff role).
pub async fn list(store: &dyn Store, ctx: &Ctx) -> Result<Vec<Resource>, AppError> {
    if ctx.partner_scope().is_some() {
        return Err(AppError::Forbidden("the library's management is for staff".into()));
    }
    Ok(store.resources(&ctx.workspace_id).await?)
}

/// Changes who sees a resource (`tiers` empty: every partner).
pub async fn set_visibility(store: &dyn Store, ctx: &Ctx, id: &str, tiers: &[String]) -> Result<(), AppError> {
    ctx.require_admin()?;
    let before = store.resource(&ctx.workspace_id, id).await?;
    let v = visibility(tiers, &tier_slugs(store, ctx).await?).map_err(|e| AppError::Invalid(vec![e]))?;
    let mut audit = AuditEntry::of(ctx, "resource.visibility_changed", "resource", id, json!({"tiers": tiers_json(&v)}));
    audit.before = Some(json!({"tiers": tiers_json(&before.visibility)}));
    store.set_resource_visibility(&ctx.workspace_id, id, &v, &audit).await?;
    Ok(())
}

/// Deletes a resource: partners no longer see it; its download history stays.
pub async fn delete(store: &dyn Store, ctx: &Ctx, id: &str) -> Result<(), AppError> {
    ctx.require_admin()?;
    let r = store.resource(&ctx.workspace_id, id).await?;
    let mut audit = AuditEntry::of(ctx, "resource.deleted", "resource", id, json!({"deleted": true}));
    audit.before = Some(json!({"title": r.title, "kind": r.kind.as_str(), "downloads": r.downloads}));
    store.delete_resource(&ctx.workspace_id, id, &audit).await?;
    Ok(())
}

/// The partner's current tier (a partner context only).
async fn partner_tier(store: &dyn Store, ctx: &Ctx) -> Result<(PartnerId, Option<String>), AppError> {
    let Some(partner) = ctx.partner_scope() else {
        return Err(AppError::Forbidden("the library is opened by partners".into()));
    };
    let p = store.partner(&ctx.workspace_id, partner).await?;
    Ok((p.id, p.tier))
}

/// The resources the signed-in partner's tier may see, newest first.
pub async fn for_partner(store: &dyn Store, ctx: &Ctx) -> Result<Vec<Resource>, AppError> {
    let (_, tier) = partner_tier(store, ctx).await?;
    Ok(store.resources_for_tier(&ctx.workspace_id, tier.as_deref()).await?)
}

/// Opens a resource for the signed-in partner and counts it; 404 when its
/// tier may not see it.
pub async fn open(store: &dyn Store, ctx: &Ctx, id: &str) -> Result<(Resource, Opened), AppError> {
    let (partner, tier) = partner_tier(store, ctx).await?;
    let download_id = crate::ids::new_id("dl", ctx.now);
    let (r, bytes) = store.open_resource(&ctx.workspace_id, id, &partner, tier.as_deref(), &download_id, ctx.now).await?;
    let opened = match (&r.content, bytes) {
        (Content::File(info), Some(bytes)) => Opened::File { info: info.clone(), bytes },
        (Content::Link(url), _) => Opened::Link(url.clone()),
        (Content::File(_), None) => return Err(AppError::NotFound),
    };
    Ok((r, opened))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_their_path_and_anything_odd() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("C:\\deck\\Q1 deck (final).pptx"), "Q1 deck _final_.pptx");
        assert_eq!(safe_file_name(".htaccess"), "htaccess");
        assert_eq!(safe_file_name("a\"b;\r\n.pdf"), "a_b___.pdf");
        assert_eq!(safe_file_name("..."), "file");
        assert_eq!(safe_file_name(&"x".repeat(300)).len(), 120);
    }

    #[test]
    fn only_inert_types_are_served_as_themselves() {
        assert_eq!(clean_content_type("Application/PDF; charset=x"), "application/pdf");
        assert_eq!(clean_content_type("text/html"), "text/html");
        assert_eq!(clean_content_type("nonsense"), "application/octet-stream");
        assert_eq!(served_content_type("application/pdf"), "application/pdf");
        for risky in ["text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/javascript", "x/unknown"] {
            assert_eq!(served_content_type(risky), "application/octet-stream", "{risky}");
        }
    }

    #[test]
    fn visibility_is_all_partners_or_known_tiers() {
        let known = vec!["bronze".to_owned(), "gold".to_owned()];
        assert_eq!(visibility(&[" ".into()], &known).unwrap(), Visibility::AllPartners);
        assert_eq!(
            visibility(&["gold".into(), "bronze".into(), "gold".into()], &known).unwrap(),
            Visibility::Tiers(vec!["bronze".into(), "gold".into()])
        );
        assert_eq!(visibility(&["platinum".into()], &known).unwrap_err().field, "tiers");
        assert!(visibility(&["gold".into()], &[]).is_err(), "no ladder, no tiers");
    }

    #[test]
    fn links_are_absolute_http_urls_fit_for_a_location_header() {
        assert_eq!(parse_link("url", " https://example.com/deck.pdf ").unwrap(), "https://example.com/deck.pdf");
        for bad in
            ["javascript:alert(1)", "//evil.example", "https://", "https:///x", "ftp://x", "https://a b", "https://x\r\nSet-Cookie: a"]
        {
            assert!(parse_link("url", bad).is_err(), "{bad}");
        }
    }
}
