//! The staff web console: sign-in (`/login`, `/logout`) and the admin
//! pages under `/admin`, server-rendered with askama.
//!
//! Rules of this module:
//! - A staff session is the `pl_staff` cookie (HttpOnly, SameSite=Lax,
//!   Secure on https); only its SHA-256 is stored. A partner's portal
//!   cookie opens nothing here: `/admin` without a staff session redirects
//!   to `/login`.
//! - Every form, sign-in included, carries a CSRF token that must equal the
//!   `pl_staff_csrf` cookie (double submit, compared in constant time); a
//!   POST without it is refused with 403 and changes nothing. The cookie is
//!   kept across pages so that several tabs work.
//! - Handlers call the same use cases as the API with the staff user's
//!   `Ctx`, so roles are enforced in one place (`Ctx::require_admin`).

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use partnerloop_app::staff::{self, StaffHolder};

use crate::AppState;
use crate::portal::{cookie, secure};

mod admin;
mod applications;
mod audit;
mod charts;
mod criteria;
mod dashboard;
mod library;
mod login;
mod onboarding;
mod pages;
mod partner;
mod payouts;
mod plans;
mod referral_actions;
mod rules;
mod settings;
mod tiers;
mod users;

pub(crate) const SESSION_COOKIE: &str = "pl_staff";
const CSRF_COOKIE: &str = "pl_staff_csrf";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/login/{token}", get(login::link_page).post(login::redeem))
        .route("/logout", post(login::logout))
        .route("/admin", get(dashboard::dashboard))
        .route("/admin/referrals", get(admin::referrals))
        .route("/admin/referrals/{id}", get(admin::referral))
        .route("/admin/referrals/{id}/approve", post(admin::approve))
        .route("/admin/referrals/{id}/reject", post(admin::reject))
        .route("/admin/referrals/{id}/extend", post(referral_actions::extend))
        .route("/admin/referrals/{id}/stage", post(referral_actions::stage))
        .route("/admin/partners", get(admin::partners))
        .route("/admin/partners/{id}", get(partner::show))
        .route("/admin/partners/{id}/status", post(partner::set_status))
        .route("/admin/partners/{id}/plan", post(partner::set_plan))
        .route("/admin/applications", get(applications::list))
        .route("/admin/applications/criteria", get(criteria::show).post(criteria::save))
        .route("/admin/applications/{id}", get(applications::detail))
        .route("/admin/applications/{id}/approve", post(applications::approve))
        .route("/admin/applications/{id}/reject", post(applications::reject))
        .route("/admin/payouts", get(payouts::list).post(payouts::create))
        .route("/admin/payouts/{id}", get(payouts::detail))
        .route("/admin/payouts/{id}/export/{format}", get(payouts::export))
        .route("/admin/payouts/{id}/paid", post(payouts::mark_paid))
        .route("/admin/plans", get(plans::list).post(plans::create))
        .route("/admin/plans/{id}/default", post(plans::make_default))
        .route("/admin/tiers", get(tiers::show).post(tiers::save))
        .route("/admin/tiers/evaluate", post(tiers::evaluate))
        .route("/admin/rules", get(rules::show).post(rules::save))
        .route("/admin/audit", get(audit::list))
        .route("/admin/settings", get(settings::show))
        .route("/admin/settings/notifications", post(settings::save_notifications))
        .route("/admin/settings/webhooks", post(settings::add_endpoint))
        .route("/admin/settings/webhooks/{id}/delete", post(settings::delete_endpoint))
        .route("/admin/settings/outbox/{id}/retry", post(settings::retry))
        .route("/admin/settings/crm", post(settings::connect_crm))
        .route("/admin/account", get(admin::account).post(admin::set_password))
        .route(
            "/admin/resources",
            get(library::list).post(library::add).layer(axum::extract::DefaultBodyLimit::max(library::UPLOAD_BODY_LIMIT)),
        )
        .route("/admin/resources/{id}/visibility", post(library::visibility))
        .route("/admin/resources/{id}/delete", post(library::delete))
        .route("/admin/onboarding", get(onboarding::show).post(onboarding::add))
        .route("/admin/onboarding/{id}", post(onboarding::edit))
        .route("/admin/onboarding/{id}/move", post(onboarding::move_item))
        .route("/admin/onboarding/{id}/delete", post(onboarding::delete))
        .route("/admin/users", get(users::list).post(users::invite))
        .route("/admin/users/{id}/role", post(users::set_role))
        .route("/admin/users/{id}/disable", post(users::disable))
        .route("/admin/users/{id}/enable", post(users::enable))
}

/// The CSRF token of this browser: the cookie's, or a new one to set.
pub(crate) struct Csrf {
    pub token: String,
    set: Option<HeaderValue>,
}

impl Csrf {
    pub(crate) fn of(s: &AppState, headers: &HeaderMap) -> Self {
        if let Some(t) = cookie(headers, CSRF_COOKIE).filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Self { token: t.to_owned(), set: None };
        }
        let token = partnerloop_app::signin::token_hash(&partnerloop_app::auth::random_secret());
        let c = format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}", secure(s));
        Self { token, set: c.parse().ok() }
    }

    /// Adds the cookie to a response when it is new.
    pub(crate) fn apply(self, mut r: Response) -> Response {
        if let Some(v) = self.set {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        r
    }
}

/// Whether a submitted form's token matches the browser's cookie.
pub(crate) fn csrf_ok(headers: &HeaderMap, submitted: &str) -> bool {
    match cookie(headers, CSRF_COOKIE) {
        Some(c) if !submitted.is_empty() => constant_time_eq(c.as_bytes(), submitted.as_bytes()),
        _ => false,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signed-in staff user, if the request carries a live session.
pub(crate) async fn staff_of(s: &AppState, headers: &HeaderMap) -> Option<StaffHolder> {
    let token = cookie(headers, SESSION_COOKIE)?;
    match staff::session(s.store.as_ref(), token, Timestamp::now()).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "reading a staff session failed");
            None
        }
    }
}

pub(crate) fn see_other(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

/// The session cookie for `token` (empty with `Max-Age=0` to clear it).
pub(crate) fn session_cookie(s: &AppState, token: &str, max_age: i64) -> Option<HeaderValue> {
    format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}", secure(s)).parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn csrf_tokens_compare_whole() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"ab"));
    }
}
