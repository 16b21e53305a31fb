//! `/admin/onboarding`: the workspace's onboarding checklist — add, edit,
//! remove and reorder items. Any staff role reads; admins and managers
//! change (the use cases decide: `Ctx::require_admin`).
//!
//! Rules: every POST needs its CSRF token; a mistake redraws the page
//! with the message beside the form's field (422) and nothing saved.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::AppError;
use partnerloop_app::onboarding::{self, AutoCheck, ItemInput};
use serde::Deserialize;

use super::admin::{Session, finish, forbidden_form, nav_clone, signed_in};
use super::pages::{Nav, error_page};
use super::{csrf_ok, see_other};
use crate::AppState;
use crate::portal::html;

pub(crate) struct ItemRow {
    pub id: String,
    pub title: String,
    pub description: String,
    pub link: String,
    pub auto: String,
    pub auto_label: &'static str,
    pub first: bool,
    pub last: bool,
}

#[derive(Template)]
#[template(path = "admin_onboarding.html")]
pub(crate) struct OnboardingPage {
    pub nav: Nav,
    pub may_manage: bool,
    pub items: Vec<ItemRow>,
    pub autos: Vec<(&'static str, &'static str)>,
    /// The form that failed (`new` or an item id), what it was sent with, and its errors.
    pub failed: String,
    pub typed: ItemForm,
    pub errors: HashMap<String, String>,
}

impl OnboardingPage {
    pub(crate) fn err(&self, form: &str, field: &str) -> Option<&str> {
        if self.failed == form { self.errors.get(field).map(String::as_str) } else { None }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ItemForm {
    pub csrf: String,
    pub title: String,
    pub description: String,
    pub link: String,
    pub auto: String,
}

impl ItemForm {
    fn input(&self) -> ItemInput {
        ItemInput { title: self.title.clone(), description: self.description.clone(), link: self.link.clone(), auto: self.auto.clone() }
    }
}

async fn page(s: &AppState, who: Session, failed: &str, typed: ItemForm, errors: HashMap<String, String>, status: StatusCode) -> Response {
    let (ctx, nav, csrf, may_manage) = who;
    let result = async {
        let items = onboarding::items(s.store.as_ref(), &ctx).await?;
        let n = items.len();
        let mut rows: Vec<ItemRow> = items
            .into_iter()
            .enumerate()
            .map(|(i, it)| ItemRow {
                id: it.id,
                title: it.title,
                description: it.description,
                link: it.link.unwrap_or_default(),
                auto: it.auto.map(|a| a.as_str()).unwrap_or_default().to_owned(),
                auto_label: it.auto.map_or("ticked by the partner", |a| a.label()),
                first: i == 0,
                last: i + 1 == n,
            })
            .collect();
        // The item whose form failed shows what was typed.
        if let Some(row) = rows.iter_mut().find(|r| r.id == failed && !typed.title.is_empty()) {
            (row.title, row.description, row.link, row.auto) =
                (typed.title.clone(), typed.description.clone(), typed.link.clone(), typed.auto.clone());
        }
        Ok::<_, AppError>(OnboardingPage {
            nav: nav_clone(&nav),
            may_manage,
            items: rows,
            autos: AutoCheck::ALL.iter().map(|a| (a.as_str(), a.label())).collect(),
            failed: failed.to_owned(),
            typed,
            errors,
        })
    }
    .await;
    finish(csrf, result.map(|p| html(status, p)).map_err(|e| (nav, e)), "/admin")
}

/// `GET /admin/onboarding`.
pub(super) async fn show(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&s, &headers).await {
        Ok(who) => page(&s, who, "", ItemForm::default(), HashMap::new(), StatusCode::OK).await,
        Err(r) => r,
    }
}

async fn checked(s: &AppState, headers: &HeaderMap, token: &str) -> Result<Session, Response> {
    let who = signed_in(s, headers).await?;
    if !csrf_ok(headers, token) {
        let (_, nav, csrf, _) = who;
        return Err(csrf.apply(forbidden_form(nav)));
    }
    Ok(who)
}

async fn answer(s: &AppState, who: Session, form: &str, typed: ItemForm, result: Result<(), AppError>) -> Response {
    match result {
        Ok(()) => see_other("/admin/onboarding"),
        Err(AppError::Invalid(fields)) => {
            let errors = fields.into_iter().map(|f| (f.field, f.message)).collect();
            page(s, who, form, typed, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => {
            let (_, nav, csrf, _) = who;
            csrf.apply(error_page(Some(nav), e, "/admin/onboarding"))
        }
    }
}

/// `POST /admin/onboarding`: adds an item at the end.
pub(super) async fn add(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<ItemForm>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = onboarding::add_item(s.store.as_ref(), &who.0, &f.input()).await.map(|_| ());
    answer(&s, who, "new", f, result).await
}

/// `POST /admin/onboarding/{id}`: edits an item.
pub(super) async fn edit(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<ItemForm>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = onboarding::edit_item(s.store.as_ref(), &who.0, &id, &f.input()).await;
    answer(&s, who, &id, f, result).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct MoveForm {
    csrf: String,
    direction: String,
}

/// `POST /admin/onboarding/{id}/move`: `direction` up or down.
pub(super) async fn move_item(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<MoveForm>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match f.direction.as_str() {
        "up" | "down" => onboarding::move_item(s.store.as_ref(), &who.0, &id, f.direction == "up").await,
        _ => Err(AppError::invalid("direction", "must be up or down")),
    };
    answer(&s, who, &id, ItemForm::default(), result).await
}

/// `POST /admin/onboarding/{id}/delete`.
pub(super) async fn delete(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<MoveForm>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = onboarding::remove_item(s.store.as_ref(), &who.0, &id).await;
    answer(&s, who, &id, ItemForm::default(), result).await
}
