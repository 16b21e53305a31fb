//! The console's askama pages and how errors become pages.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::AppError;
use partnerloop_app::staff::StaffHolder;

use crate::portal::html;

/// What the navigation bar shows: who is signed in, and the sign-out form's token.
pub(crate) struct Nav {
    pub email: String,
    pub role: String,
    pub csrf: String,
}

impl Nav {
    pub(crate) fn of(h: &StaffHolder, csrf: &str) -> Self {
        Self { email: h.email.clone(), role: h.role.to_string(), csrf: csrf.to_owned() }
    }
}

#[derive(Template)]
#[template(path = "console_login.html")]
pub(crate) struct LoginPage<'a> {
    pub title: &'a str,
    pub message: Option<&'a str>,
    pub email: &'a str,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "console_link.html")]
pub(crate) struct LinkPage<'a> {
    pub token: &'a str,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "console_message.html")]
pub(crate) struct MessagePage<'a> {
    pub nav: Option<Nav>,
    pub title: &'a str,
    pub lines: Vec<String>,
    pub back: &'a str,
}

#[derive(Template)]
#[template(path = "admin_dashboard.html")]
pub(crate) struct Dashboard {
    pub nav: Nav,
    pub workspace: String,
    pub active_partners: i64,
    pub all_partners: i64,
    pub applications: i64,
    pub review_queue: i64,
    pub oldest_review: Option<String>,
    pub approved: i64,
    pub won: i64,
    pub lost: i64,
    pub pipeline: Vec<String>,
    pub by_status: Vec<(String, i64)>,
    pub partners_by_status: Vec<(String, i64)>,
    /// The KPI period, `from to to`.
    pub period: String,
    pub activation: String,
    pub activation_of: String,
    pub conversion: String,
    pub conversion_of: String,
    pub revenue: String,
    pub deal_partner: String,
    pub deal_direct: String,
    pub first_referral: String,
    pub charts: Vec<super::charts::Chart>,
}

pub(crate) struct ReferralRow {
    pub id: String,
    pub company: String,
    pub domain: String,
    pub partner_id: String,
    pub partner: String,
    pub status: String,
    pub created: String,
    pub age: String,
}

#[derive(Template)]
#[template(path = "admin_referrals.html")]
pub(crate) struct Referrals {
    pub nav: Nav,
    pub heading: String,
    pub statuses: Vec<(String, bool)>,
    pub show_age: bool,
    pub rows: Vec<ReferralRow>,
    pub next: Option<String>,
}

pub(crate) struct ReasonRow {
    pub rule: String,
    pub detail: String,
    pub conflicting: String,
}

pub(crate) struct EventRow {
    pub at: String,
    pub kind: String,
    pub actor: String,
    pub summary: String,
}

#[derive(Template)]
#[template(path = "admin_referral.html")]
pub(crate) struct ReferralDetail {
    pub nav: Nav,
    pub id: String,
    pub company: String,
    pub status: String,
    pub partner_id: String,
    pub partner: String,
    pub domain: String,
    pub contact: String,
    pub context: String,
    pub estimated: String,
    pub amount: String,
    pub channel: String,
    pub created: String,
    pub protection: String,
    pub stage: String,
    /// Every stage, and whether the stage form selects it.
    pub stages: Vec<(String, bool)>,
    pub outcome: String,
    pub decided: String,
    pub reasons: Vec<ReasonRow>,
    pub reviewable: bool,
    /// An admin or manager, and the protection is active.
    pub extendable: bool,
    /// An admin or manager, and the referral is approved, won or lost.
    pub movable: bool,
    pub may_manage: bool,
    pub forms: ActionForms,
    pub timeline: Vec<EventRow>,
}

/// What the extend and stage forms were sent with, and what to correct, per field.
#[derive(Default)]
pub(crate) struct ActionForms {
    pub days: String,
    pub reason: String,
    pub days_error: Option<String>,
    pub reason_error: Option<String>,
    /// The stage form's choice when it failed; else the referral's stage is selected.
    pub stage: Option<String>,
    pub amount: String,
    pub currency: String,
    pub stage_error: Option<String>,
    pub amount_error: Option<String>,
    pub currency_error: Option<String>,
    /// Why the action cannot be done now (a conflict), or a security-token failure.
    pub message: Option<String>,
}

pub(crate) struct PartnerRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub tier: String,
    pub contacts: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin_partners.html")]
pub(crate) struct Partners {
    pub nav: Nav,
    pub q: String,
    pub rows: Vec<PartnerRow>,
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_account.html")]
pub(crate) struct Account<'a> {
    pub nav: Nav,
    pub has_password: bool,
    pub message: Option<&'a str>,
}

pub(crate) fn page(limit: u32, after: Option<String>) -> partnerloop_app::store::Page {
    partnerloop_app::store::Page { limit, after }
}

pub(crate) struct PayoutRow {
    pub id: String,
    pub status: String,
    pub total: String,
    pub partners: usize,
    pub commissions: u64,
    pub created: String,
}

/// The new-batch form's state: what was typed, what is wrong, what happened.
#[derive(Default)]
pub(crate) struct PayoutMessage {
    pub currency: String,
    pub currency_error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_payouts.html")]
pub(crate) struct Payouts {
    pub nav: Nav,
    pub rows: Vec<PayoutRow>,
    pub next: Option<String>,
    pub message: PayoutMessage,
}

pub(crate) struct PayoutItemRow {
    pub partner_id: String,
    pub partner: String,
    pub amount: String,
    pub commissions: u64,
    pub method: String,
}

#[derive(Template)]
#[template(path = "admin_payout.html")]
pub(crate) struct PayoutDetail {
    pub nav: Nav,
    pub id: String,
    pub status: String,
    pub total: String,
    pub created: String,
    pub paid: Option<String>,
    pub draft: bool,
    pub exportable: bool,
    pub formats: Vec<&'static str>,
    pub items: Vec<PayoutItemRow>,
}

pub(crate) struct RuleAction {
    pub rule: &'static str,
    pub chosen: String,
    pub error: Option<String>,
}

/// The rules form as typed, with what to correct per field.
pub(crate) struct RulesForm {
    pub protection_days: String,
    pub auto_approve: bool,
    pub fuzzy_threshold: String,
    pub protection_days_error: Option<String>,
    pub fuzzy_threshold_error: Option<String>,
    pub actions: Vec<RuleAction>,
    pub saved: bool,
}

#[derive(Template)]
#[template(path = "admin_rules.html")]
pub(crate) struct RulesPage {
    pub nav: Nav,
    pub may_manage: bool,
    pub choices: Vec<&'static str>,
    pub form: RulesForm,
}

pub(crate) struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub before: String,
    pub after: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
pub(crate) struct Audit {
    pub nav: Nav,
    pub action: String,
    pub rows: Vec<AuditRow>,
    pub next: Option<String>,
}

pub(crate) struct CrmRow {
    pub kind: String,
    pub base_url: String,
    pub account: String,
    pub polled: String,
    pub backfilled: String,
    pub last_error: Option<String>,
}

pub(crate) struct EndpointRow {
    pub id: String,
    pub url: String,
    pub events: String,
    pub active: bool,
}

pub(crate) struct DeadRow {
    pub id: String,
    pub channel: String,
    pub event: String,
    pub target: String,
    pub attempts: u32,
    pub last_error: String,
}

#[derive(Template)]
#[template(path = "admin_settings.html")]
pub(crate) struct SettingsPage {
    pub nav: Nav,
    /// How the server delivers mail (set by its operator, read-only here).
    pub mail: Option<String>,
    pub crm: Option<CrmRow>,
    pub slack_set: bool,
    pub managers: String,
    pub stalled_days: String,
    pub endpoints: Vec<EndpointRow>,
    pub dead: Vec<DeadRow>,
    pub crm_kind: String,
    pub crm_base_url: String,
    pub crm_account: String,
    pub endpoint_url: String,
    pub endpoint_events: String,
    /// Field (as the use case names it) → message.
    pub errors: std::collections::HashMap<String, String>,
    pub notice: Option<String>,
}

impl SettingsPage {
    /// The message for the first of these fields that has one (`events[0]` counts as `events`).
    pub(crate) fn err(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(k, _)| *k == field || k.starts_with(&format!("{field}["))).map(|(_, m)| m.as_str())
    }
}

pub(crate) fn minute(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// A waiting time in words: `3 d 4 h`, `2 h 5 min`, `7 min`.
pub(crate) fn age(since: Timestamp, now: Timestamp) -> String {
    let d = now.duration_since(since).max(SignedDuration::ZERO);
    let mins = d.as_secs() / 60;
    let (days, hours, minutes) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else {
        format!("{minutes} min")
    }
}

/// A use case's error as a console page; internal errors are logged, never shown.
pub(crate) fn error_page(nav: Option<Nav>, e: AppError, back: &str) -> Response {
    let (status, title, lines) = match e {
        AppError::NotFound => (StatusCode::NOT_FOUND, "Not found", vec!["There is no such record in this workspace.".to_owned()]),
        AppError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not allowed", vec![format!("Your role may not do this ({why}).")]),
        AppError::Unauthorized => (StatusCode::UNAUTHORIZED, "Please sign in", vec![]),
        AppError::Invalid(fields) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check the form",
            fields.into_iter().map(|f| format!("{}: {}", f.field, f.message)).collect(),
        ),
        AppError::Conflict { message, .. } => (StatusCode::CONFLICT, "That cannot be done now", vec![message]),
        AppError::Store(e) => {
            tracing::error!(error = %crate::problem::error_chain(&e), "a console page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", vec!["Please try again in a moment.".to_owned()])
        }
    };
    html(status, MessagePage { nav, title, lines, back })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_the_largest_units() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(age(t, t + SignedDuration::from_mins(7)), "7 min");
        assert_eq!(age(t, t + SignedDuration::from_mins(125)), "2 h 5 min");
        assert_eq!(age(t, t + SignedDuration::from_hours(76)), "3 d 4 h");
        assert_eq!(age(t + SignedDuration::from_mins(1), t), "0 min");
    }
}
