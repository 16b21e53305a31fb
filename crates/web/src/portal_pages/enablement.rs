//! The portal's enablement library (`/portal/resources`) and onboarding
//! checklist (`/portal/onboarding`), and the checklist card of the home.
//!
//! Rules: a partner sees and opens only what its current tier may see;
//! anything else is the 404 page and counts nothing. A file is always a
//! download (`Content-Disposition: attachment`) with `nosniff` and a
//! sandboxing CSP, typed as what it declared only for inert document and
//! image types (`application/octet-stream` otherwise, HTML included); a
//! link answers 303 to its URL. Ticking an item needs the form's CSRF token.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use partnerloop_app::enablement::{self as library, Opened};
use partnerloop_app::onboarding;
use partnerloop_app::{AppError, Ctx};
use partnerloop_domain::ids::PartnerId;
use serde::Deserialize;

use super::{Nav, Session, csrf_ok, error_page, expired_form, session};
use crate::AppState;
use crate::console::see_other;
use crate::portal::html;

pub(crate) struct ChecklistItem {
    pub id: String,
    pub title: String,
    pub description: String,
    pub link: String,
    pub done: bool,
    /// How an automatic item gets done; empty for one the partner ticks.
    pub auto: &'static str,
}

/// The home's card: progress and the items.
pub(crate) struct ChecklistCard {
    pub done: usize,
    pub total: usize,
    pub items: Vec<ChecklistItem>,
}

async fn checklist(s: &AppState, ctx: &Ctx, partner: &PartnerId) -> Result<ChecklistCard, AppError> {
    let p = onboarding::progress(s.store.as_ref(), ctx, partner).await?;
    Ok(ChecklistCard {
        done: p.done(),
        total: p.total(),
        items: p
            .items
            .into_iter()
            .map(|i| ChecklistItem {
                done: i.done_at.is_some(),
                auto: i.item.auto.map_or("", |a| a.label()),
                id: i.item.id,
                title: i.item.title,
                description: i.item.description,
                link: i.item.link.unwrap_or_default(),
            })
            .collect(),
    })
}

/// The home's checklist card, when the workspace has a checklist.
pub(crate) async fn checklist_card(s: &AppState, ctx: &Ctx, partner: &PartnerId) -> Result<Option<ChecklistCard>, AppError> {
    let card = checklist(s, ctx, partner).await?;
    Ok(Some(card).filter(|c| c.total > 0))
}

pub(crate) struct ResourceRow {
    pub id: String,
    pub title: String,
    pub description: String,
    pub kind: &'static str,
    pub what: String,
    pub link: bool,
}

#[derive(Template)]
#[template(path = "portal_resources.html")]
struct ResourcesPage {
    nav: Nav,
    rows: Vec<ResourceRow>,
}

#[derive(Template)]
#[template(path = "portal_onboarding.html")]
struct OnboardingPage {
    nav: Nav,
    card: ChecklistCard,
}

/// `GET /portal/resources`: what this partner's tier may see.
pub async fn resources(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let sess: Session = signed_in!(s, headers);
    match library::for_partner(s.store.as_ref(), &sess.ctx).await {
        Ok(list) => {
            let rows = list
                .into_iter()
                .map(|r| {
                    let (what, link) = match &r.content {
                        library::Content::File(f) => (f.name.clone(), false),
                        library::Content::Link(u) => (u.clone(), true),
                    };
                    ResourceRow { id: r.id, title: r.title, description: r.description, kind: r.kind.label(), what, link }
                })
                .collect();
            sess.finish(html(StatusCode::OK, ResourcesPage { nav: sess.nav(), rows }))
        }
        Err(e) => error_page(&sess, e),
    }
}

/// `Content-Disposition` for a stored (already safe) file name: an ASCII
/// fallback and the UTF-8 name percent-encoded.
fn disposition(name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' }).filter(|c| *c != '"' && *c != '\\').collect();
    let encoded: String = name
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// `GET /portal/resources/{id}`: the file as a download, or 303 to the link; counted.
pub async fn open(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let sess: Session = signed_in!(s, headers);
    match library::open(s.store.as_ref(), &sess.ctx, &id).await {
        Ok((_, Opened::Link(url))) => see_other(&url),
        Ok((_, Opened::File { info, bytes })) => {
            let mut r = bytes.into_response();
            let h = r.headers_mut();
            let put = |h: &mut HeaderMap, k: header::HeaderName, v: &str| {
                if let Ok(v) = HeaderValue::from_str(v) {
                    h.insert(k, v);
                }
            };
            put(h, header::CONTENT_TYPE, library::served_content_type(&info.content_type));
            put(h, header::CONTENT_DISPOSITION, &disposition(&info.name));
            put(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
            put(h, header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox");
            put(h, header::CACHE_CONTROL, "private, no-store");
            r
        }
        Err(e) => error_page(&sess, e),
    }
}

/// `GET /portal/onboarding`: the checklist with a tick box per item.
pub async fn checklist_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let sess: Session = signed_in!(s, headers);
    match checklist(&s, &sess.ctx, &sess.holder.partner_id).await {
        Ok(card) => sess.finish(html(StatusCode::OK, OnboardingPage { nav: sess.nav(), card })),
        Err(e) => error_page(&sess, e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TickForm {
    csrf: String,
    /// `1` ticks, `0` unticks.
    done: String,
}

/// `POST /portal/onboarding/{id}`: ticks or unticks one item.
pub async fn tick(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<TickForm>) -> Response {
    let sess: Session = signed_in!(s, headers);
    if !csrf_ok(&headers, &f.csrf) {
        return expired_form(&sess);
    }
    match onboarding::tick(s.store.as_ref(), &sess.ctx, &id, f.done != "0").await {
        Ok(()) => see_other("/portal/onboarding"),
        Err(e) => error_page(&sess, e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_download_is_an_attachment_whatever_its_name() {
        assert_eq!(super::disposition("deck.pdf"), "attachment; filename=\"deck.pdf\"; filename*=UTF-8''deck.pdf");
        assert_eq!(
            super::disposition("Übersicht 1.pdf"),
            "attachment; filename=\"_bersicht 1.pdf\"; filename*=UTF-8''%C3%9Cbersicht%201.pdf"
        );
    }
}
