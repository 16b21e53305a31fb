//! `/admin/users`: the workspace's staff users — invite one (the sign-in
//! link is mailed and shown here once), change a role, disable or enable.
//! Admins only (the use cases decide); other roles get the 403 page.
//!
//! Rules: every POST needs its CSRF token. Disabling signs the user out
//! at once. Nobody disables themselves and the last enabled admin stays
//! one: those are refused with 409 and change nothing.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::staff::StaffRole;
use partnerloop_app::{Actor, AppError, staff_admin};
use serde::Deserialize;

use super::admin::{Session, finish, forbidden_form, nav_clone, signed_in};
use super::pages::{Nav, error_page, minute};
use super::{csrf_ok, see_other};
use crate::AppState;
use crate::portal::html;

pub(crate) struct UserRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    pub has_password: bool,
    pub last_sign_in: String,
    pub created: String,
    pub me: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
pub(crate) struct UsersPage {
    pub nav: Nav,
    pub rows: Vec<UserRow>,
    pub roles: Vec<&'static str>,
    pub email: String,
    pub role: String,
    pub errors: HashMap<String, String>,
    pub notice: Option<String>,
    /// The sign-in link of a user just invited, shown this once.
    pub link: Option<String>,
}

impl UsersPage {
    pub(crate) fn err(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

#[derive(Default)]
struct Typed {
    email: String,
    role: String,
    errors: HashMap<String, String>,
    notice: Option<String>,
    link: Option<String>,
}

async fn page(s: &AppState, who: Session, typed: Typed, status: StatusCode) -> Response {
    let (ctx, nav, csrf, _) = who;
    let me = match &ctx.actor {
        Actor::Staff { user_id, .. } => user_id.clone(),
        _ => String::new(),
    };
    let result = async {
        let rows = staff_admin::list(s.store.as_ref(), &ctx)
            .await?
            .into_iter()
            .map(|r| UserRow {
                me: r.user.id == me,
                id: r.user.id,
                email: r.user.email,
                role: r.user.role.to_string(),
                disabled: r.user.disabled,
                has_password: r.user.has_password,
                last_sign_in: r.last_sign_in.map(minute).unwrap_or_else(|| "never".into()),
                created: minute(r.user.created_at),
            })
            .collect();
        Ok::<_, AppError>(UsersPage {
            nav: nav_clone(&nav),
            rows,
            roles: StaffRole::ALL.iter().map(|r| r.as_str()).collect(),
            email: typed.email,
            role: if typed.role.is_empty() { "sales".into() } else { typed.role },
            errors: typed.errors,
            notice: typed.notice,
            link: typed.link,
        })
    }
    .await;
    finish(csrf, result.map(|p| html(status, p)).map_err(|e| (nav, e)), "/admin")
}

/// `GET /admin/users`.
pub(super) async fn list(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&s, &headers).await {
        Ok(who) => page(&s, who, Typed::default(), StatusCode::OK).await,
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

fn failed(who: Session, e: AppError) -> Response {
    let (_, nav, csrf, _) = who;
    csrf.apply(error_page(Some(nav), e, "/admin/users"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct InviteForm {
    csrf: String,
    email: String,
    role: String,
}

/// `POST /admin/users`: invites a user; the page shows its link once.
pub(super) async fn invite(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<InviteForm>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match staff_admin::invite(s.store.as_ref(), &s.links.base_url, &who.0, &f.email, &f.role).await {
        Ok((user, url)) => {
            let typed = Typed {
                notice: Some(format!(
                    "{} is invited as {}: the sign-in link below is mailed to them. It works once, for 10 minutes.",
                    user.email, user.role
                )),
                link: Some(url),
                ..Default::default()
            };
            page(&s, who, typed, StatusCode::OK).await
        }
        Err(AppError::Invalid(fields)) => {
            let typed = Typed {
                email: f.email,
                role: f.role,
                errors: fields.into_iter().map(|e| (e.field, e.message)).collect(),
                ..Default::default()
            };
            page(&s, who, typed, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(AppError::Conflict { message, field }) => {
            let typed = Typed {
                email: f.email,
                role: f.role,
                errors: HashMap::from([(field.unwrap_or_else(|| "email".into()), message)]),
                ..Default::default()
            };
            page(&s, who, typed, StatusCode::CONFLICT).await
        }
        Err(e) => failed(who, e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RoleForm {
    csrf: String,
    role: String,
}

/// `POST /admin/users/{id}/role`.
pub(super) async fn set_role(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<RoleForm>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match staff_admin::set_role(s.store.as_ref(), &who.0, &id, &f.role).await {
        Ok(()) => see_other("/admin/users"),
        Err(e) => failed(who, e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CsrfOnly {
    csrf: String,
}

/// `POST /admin/users/{id}/disable`: signs the user out everywhere at once.
pub(super) async fn disable(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<CsrfOnly>) -> Response {
    status(s, headers, id, f, true).await
}

/// `POST /admin/users/{id}/enable`.
pub(super) async fn enable(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<CsrfOnly>) -> Response {
    status(s, headers, id, f, false).await
}

async fn status(s: AppState, headers: HeaderMap, id: String, f: CsrfOnly, disabled: bool) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match staff_admin::set_disabled(s.store.as_ref(), &who.0, &id, disabled).await {
        Ok(()) => see_other("/admin/users"),
        Err(e) => failed(who, e),
    }
}
