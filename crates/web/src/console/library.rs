//! `/admin/resources`: the enablement library — every resource with its
//! download count; adding a file (multipart upload) or a link; changing
//! which tiers see one; deleting one. Any staff role reads; admins and
//! managers change (the use cases decide: `Ctx::require_admin`).
//!
//! Rules: every POST needs its CSRF token (the upload's is a multipart
//! field, checked before anything is stored). The upload's body may be a
//! little over [`MAX_FILE_BYTES`] (the form's other fields); a file over
//! the limit is read to its end and dropped, and the page says so with 413
//! — nothing is stored. Other mistakes redraw the form with the message
//! beside its field (422).

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::enablement::{self, Content, MAX_FILE_BYTES, ResourceForCreate, Visibility};
use partnerloop_app::{AppError, Ctx};
use serde::Deserialize;

use super::admin::{Session, finish, forbidden_form, nav_clone, signed_in};
use super::pages::{Nav, error_page, minute};
use super::{csrf_ok, see_other};
use crate::AppState;
use crate::portal::html;

/// The largest upload body: the file and the form's other fields.
pub(super) const UPLOAD_BODY_LIMIT: usize = MAX_FILE_BYTES + 256 * 1024;

pub(crate) struct ResourceRow {
    pub id: String,
    pub title: String,
    pub description: String,
    pub kind: &'static str,
    pub content: String,
    pub link: Option<String>,
    pub tiers: String,
    /// Each tier (slug, name) and whether the resource is visible to it.
    pub tier_choices: Vec<(String, String, bool)>,
    pub downloads: i64,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin_resources.html")]
pub(crate) struct ResourcesPage {
    pub nav: Nav,
    pub may_manage: bool,
    pub rows: Vec<ResourceRow>,
    /// Every tier of the ladder: (slug, name, chosen in the add form).
    pub tiers: Vec<(String, String, bool)>,
    pub kinds: Vec<(&'static str, &'static str)>,
    pub title: String,
    pub description: String,
    pub kind: String,
    pub url: String,
    pub max_mb: usize,
    pub errors: HashMap<String, String>,
    pub notice: Option<String>,
}

impl ResourcesPage {
    pub(crate) fn err(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

/// What the add form was sent with, to show again beside its errors.
#[derive(Default)]
struct Typed {
    title: String,
    description: String,
    kind: String,
    url: String,
    tiers: Vec<String>,
    errors: HashMap<String, String>,
    notice: Option<String>,
}

fn size_words(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{:.0} KB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

async fn page(s: &AppState, who: Session, typed: Typed, status: StatusCode) -> Response {
    let (ctx, nav, csrf, may_manage) = who;
    let result = async {
        let list = enablement::list(s.store.as_ref(), &ctx).await?;
        let ladder: Vec<(String, String)> = match s.store.tier_ladder(&ctx.workspace_id).await? {
            Some(l) => l.ladder.tiers().iter().map(|t| (t.slug.clone(), t.name.clone())).collect(),
            None => vec![],
        };
        let name_of = |slug: &str| ladder.iter().find(|(s, _)| s == slug).map_or_else(|| slug.to_owned(), |(_, n)| n.clone());
        let rows = list
            .iter()
            .map(|r| {
                let (content, link) = match &r.content {
                    Content::File(f) => (format!("{} ({}, {})", f.name, f.content_type, size_words(f.size)), None),
                    Content::Link(u) => (u.clone(), Some(u.clone())),
                };
                let (tiers, chosen): (String, Vec<String>) = match &r.visibility {
                    Visibility::AllPartners => ("All partners".into(), vec![]),
                    Visibility::Tiers(t) => (t.iter().map(|s| name_of(s)).collect::<Vec<_>>().join(", "), t.clone()),
                };
                ResourceRow {
                    id: r.id.clone(),
                    title: r.title.clone(),
                    description: r.description.clone(),
                    kind: r.kind.label(),
                    content,
                    link,
                    tiers,
                    tier_choices: ladder.iter().map(|(s, n)| (s.clone(), n.clone(), chosen.contains(s))).collect(),
                    downloads: r.downloads,
                    created: minute(r.created_at),
                }
            })
            .collect();
        Ok::<_, AppError>(ResourcesPage {
            nav: nav_clone(&nav),
            may_manage,
            rows,
            tiers: ladder.iter().map(|(s, n)| (s.clone(), n.clone(), typed.tiers.contains(s))).collect(),
            kinds: enablement::ResourceKind::ALL.iter().map(|k| (k.as_str(), k.label())).collect(),
            title: typed.title,
            description: typed.description,
            kind: typed.kind,
            url: typed.url,
            max_mb: MAX_FILE_BYTES / (1024 * 1024),
            errors: typed.errors,
            notice: typed.notice,
        })
    }
    .await;
    finish(csrf, result.map(|p| html(status, p)).map_err(|e| (nav, e)), "/admin")
}

#[derive(Debug, Deserialize)]
pub(super) struct NoticeQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /admin/resources`.
pub(super) async fn list(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<NoticeQuery>) -> Response {
    let who = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let notice = match q.done.as_deref() {
        Some("added") => Some("The resource is in the library.".to_owned()),
        Some("visibility") => Some("Who sees the resource is saved.".to_owned()),
        Some("deleted") => Some("The resource is deleted.".to_owned()),
        _ => None,
    };
    page(&s, who, Typed { notice, ..Default::default() }, StatusCode::OK).await
}

/// The upload form's fields; the file is read up to one byte over the limit.
async fn read_form(mut form: Multipart) -> Result<(String, ResourceForCreate, bool), (StatusCode, String)> {
    let mut csrf = String::new();
    let mut input = ResourceForCreate::default();
    let mut too_large = false;
    while let Some(mut field) = form.next_field().await.map_err(|e| (e.status(), e.body_text()))? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().unwrap_or_default().to_owned();
            let declared = field.content_type().unwrap_or("application/octet-stream").to_owned();
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| (e.status(), e.body_text()))? {
                if too_large || bytes.len() + chunk.len() > MAX_FILE_BYTES {
                    // Read on to the end so that the browser gets the answer, keep nothing.
                    too_large = true;
                    bytes = Vec::new();
                } else {
                    bytes.extend_from_slice(&chunk);
                }
            }
            if !file_name.is_empty() || !bytes.is_empty() {
                input.file = Some((file_name, declared, bytes));
            }
            continue;
        }
        let text = field.text().await.map_err(|e| (e.status(), e.body_text()))?;
        match name.as_str() {
            "csrf" => csrf = text,
            "title" => input.title = text,
            "description" => input.description = text,
            "kind" => input.kind = text,
            "url" => input.url = text,
            "tier" => input.tiers.push(text),
            _ => {}
        }
    }
    Ok((csrf, input, too_large))
}

/// `POST /admin/resources` (multipart): adds a file or a link.
pub(super) async fn add(State(s): State<AppState>, headers: HeaderMap, form: Multipart) -> Response {
    let who = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // A role that may not add reads no upload.
    if let Err(e) = who.0.require_admin() {
        let (_, nav, csrf, _) = who;
        return csrf.apply(error_page(Some(nav), e, "/admin/resources"));
    }
    let (token, input, too_large) = match read_form(form).await {
        Ok(x) => x,
        Err((status, why)) => {
            let too_big = status == StatusCode::PAYLOAD_TOO_LARGE;
            let message = if too_big { format!("is larger than the limit of {} MB", MAX_FILE_BYTES / (1024 * 1024)) } else { why };
            let typed = Typed { errors: HashMap::from([("file".to_owned(), message)]), ..Default::default() };
            let status = if too_big { status } else { StatusCode::BAD_REQUEST };
            return page(&s, who, typed, status).await;
        }
    };
    if !csrf_ok(&headers, &token) {
        let (_, nav, csrf, _) = who;
        return csrf.apply(forbidden_form(nav));
    }
    let mut typed = Typed {
        title: input.title.clone(),
        description: input.description.clone(),
        kind: input.kind.clone(),
        url: input.url.clone(),
        tiers: input.tiers.clone(),
        ..Default::default()
    };
    if too_large {
        typed.errors.insert("file".into(), format!("is larger than the limit of {} MB; nothing was saved", MAX_FILE_BYTES / (1024 * 1024)));
        return page(&s, who, typed, StatusCode::PAYLOAD_TOO_LARGE).await;
    }
    match enablement::add(s.store.as_ref(), &who.0, input).await {
        Ok(_) => see_other("/admin/resources?done=added"),
        Err(AppError::Invalid(fields)) => {
            typed.errors.extend(fields.into_iter().map(|f| (f.field, f.message)));
            page(&s, who, typed, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => {
            let (_, nav, csrf, _) = who;
            csrf.apply(error_page(Some(nav), e, "/admin/resources"))
        }
    }
}

/// The session when the form's token matches, else the 403 page.
async fn checked(s: &AppState, headers: &HeaderMap, token: &str) -> Result<Session, Response> {
    let who = signed_in(s, headers).await?;
    if !csrf_ok(headers, token) {
        let (_, nav, csrf, _) = who;
        return Err(csrf.apply(forbidden_form(nav)));
    }
    Ok(who)
}

async fn answer(s: &AppState, who: Session, result: Result<(), AppError>, done: &str) -> Response {
    match result {
        Ok(()) => see_other(&format!("/admin/resources?done={done}")),
        Err(AppError::Invalid(fields)) => {
            let typed = Typed { errors: fields.into_iter().map(|f| (f.field, f.message)).collect(), ..Default::default() };
            page(s, who, typed, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => {
            let (_, nav, csrf, _) = who;
            csrf.apply(error_page(Some(nav), e, "/admin/resources"))
        }
    }
}

/// `POST /admin/resources/{id}/visibility`: `tier` repeated; none means every partner.
pub(super) async fn visibility(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let token = form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
    let who = match checked(&s, &headers, token).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let tiers: Vec<String> = form.iter().filter(|(k, _)| k == "tier").map(|(_, v)| v.clone()).collect();
    let result = enablement::set_visibility(s.store.as_ref(), ctx(&who), &id, &tiers).await;
    answer(&s, who, result, "visibility").await
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/resources/{id}/delete`.
pub(super) async fn delete(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<CsrfOnly>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = enablement::delete(s.store.as_ref(), ctx(&who), &id).await;
    answer(&s, who, result, "deleted").await
}

fn ctx(who: &Session) -> &Ctx {
    &who.0
}
