//! `/admin/settings`: the CRM connection, notification settings, webhook
//! endpoints and the outbox's dead letters (admins and managers: the use
//! cases decide, `Ctx::require_admin`; other roles get their 403 page).
//!
//! Rules: secrets are written, never read back — the CRM token and client
//! secret, the Slack URL and an endpoint's signing secret show only as
//! "set"; an empty secret field keeps the stored one. A new endpoint's
//! signing secret is shown once, on the page that answers its creation.
//! Every POST needs its CSRF token; a mistake redraws the page with the
//! message beside its field (422) and nothing saved.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::crm_sync::{self, CrmConnectionInput, CrmSecrets, CrmSettings};
use partnerloop_app::notifications::{self, EndpointInput, SettingsInput};
use partnerloop_app::outbox::{OutboxFilter, OutboxStatus};
use partnerloop_app::{AppError, Ctx};
use serde::Deserialize;

use super::admin::{Session, finish, forbidden_form, nav_clone, signed_in};
use super::pages::{self, error_page, minute};
use super::{csrf_ok, see_other};
use crate::AppState;
use crate::portal::html;

/// What the page shows besides the stored state: typed values, errors per field, a notice.
#[derive(Default)]
pub(crate) struct Typed {
    pub values: HashMap<&'static str, String>,
    pub errors: HashMap<String, String>,
    pub notice: Option<String>,
}

async fn page(s: &AppState, who: Session, typed: Typed, status: StatusCode) -> Response {
    let (ctx, nav, csrf, _) = who;
    let result = async {
        let crm = match crm_sync::connection(s.store.as_ref(), &ctx).await {
            Ok(c) => Some(pages::CrmRow {
                kind: c.kind.as_str().to_owned(),
                base_url: c.settings.base_url.clone().unwrap_or_else(|| "default".into()),
                account: c
                    .settings
                    .portal_id
                    .map(|p| format!("portal {p}"))
                    .or_else(|| c.settings.organization_id.as_ref().map(|o| format!("org {o}")))
                    .unwrap_or_else(|| "—".into()),
                polled: c.polled_at.map(minute).unwrap_or_else(|| "never".into()),
                backfilled: c.backfilled_at.map(minute).unwrap_or_else(|| "never".into()),
                last_error: c.last_error.clone(),
            }),
            Err(AppError::NotFound) => None,
            Err(e) => return Err(e),
        };
        let n = notifications::settings(s.store.as_ref(), &ctx).await?;
        let endpoints = notifications::endpoints(s.store.as_ref(), &ctx).await?;
        let filter = OutboxFilter { channel: None, status: Some(OutboxStatus::Dead), target: None };
        let dead = notifications::outbox(s.store.as_ref(), &ctx, &filter, &pages::page(50, None)).await?;
        let typed_or = |k: &'static str, stored: String| typed.values.get(k).cloned().unwrap_or(stored);
        Ok::<_, AppError>(pages::SettingsPage {
            nav: nav_clone(&nav),
            mail: s.mail_setup.as_deref().map(str::to_owned),
            crm,
            slack_set: n.as_ref().is_some_and(|n| n.slack_sealed.is_some()),
            managers: typed_or("managers", n.as_ref().map(|n| n.manager_emails.join("\n")).unwrap_or_default()),
            stalled_days: typed_or("stalled_days", n.as_ref().map_or(14, |n| n.stalled_days).to_string()),
            endpoints: endpoints
                .iter()
                .map(|e| pages::EndpointRow {
                    id: e.id.clone(),
                    url: e.url.clone(),
                    events: if e.events.is_empty() { "all".into() } else { e.events.join(", ") },
                    active: e.active,
                })
                .collect(),
            dead: dead
                .items
                .iter()
                .map(|i| pages::DeadRow {
                    id: i.id.clone(),
                    channel: i.channel.to_string(),
                    event: i.event.clone(),
                    target: i.target.clone(),
                    attempts: i.attempts,
                    last_error: i.last_error.clone().unwrap_or_default(),
                })
                .collect(),
            crm_kind: typed_or("crm_kind", String::new()),
            crm_base_url: typed_or("crm_base_url", String::new()),
            crm_account: typed_or("crm_account", String::new()),
            endpoint_url: typed_or("endpoint_url", String::new()),
            endpoint_events: typed_or("endpoint_events", String::new()),
            errors: typed.errors,
            notice: typed.notice,
        })
    }
    .await;
    finish(csrf, result.map(|p| html(status, p)).map_err(|e| (nav, e)), "/admin")
}

/// `GET /admin/settings`.
pub(super) async fn show(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&s, &headers).await {
        Ok(who) => page(&s, who, Typed::default(), StatusCode::OK).await,
        Err(r) => r,
    }
}

/// After a POST's use case: back to the page, or the page with the errors.
async fn answer(s: &AppState, who: Session, mut typed: Typed, result: Result<Option<String>, AppError>) -> Response {
    match result {
        Ok(None) => see_other("/admin/settings"),
        Ok(Some(notice)) => {
            typed.notice = Some(notice);
            typed.values.clear();
            page(s, who, typed, StatusCode::OK).await
        }
        Err(AppError::Invalid(fields)) => {
            typed.errors.extend(fields.into_iter().map(|f| (f.field, f.message)));
            page(s, who, typed, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => {
            let (_, nav, csrf, _) = who;
            csrf.apply(error_page(Some(nav), e, "/admin/settings"))
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

fn ctx_of(who: &Session) -> &Ctx {
    &who.0
}

#[derive(Debug, Deserialize)]
pub(super) struct NotificationsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    managers: String,
    #[serde(default)]
    stalled_days: String,
    #[serde(default)]
    slack_webhook_url: String,
    #[serde(default)]
    remove_slack: Option<String>,
}

/// `POST /admin/settings/notifications`.
pub(super) async fn save_notifications(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<NotificationsForm>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut typed = Typed::default();
    typed.values.insert("managers", f.managers.clone());
    typed.values.insert("stalled_days", f.stalled_days.clone());
    let result = match f.stalled_days.trim().parse::<u32>() {
        Err(_) => Err(AppError::invalid("stalled_days", "must be a whole number of days from 1 to 365")),
        Ok(stalled_days) => {
            let input = SettingsInput {
                slack_webhook_url: if f.remove_slack.is_some() {
                    Some(String::new())
                } else {
                    Some(f.slack_webhook_url.trim().to_owned()).filter(|u| !u.is_empty())
                },
                manager_emails: f.managers.split([',', '\n', ' ']).map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect(),
                stalled_days,
            };
            notifications::put_settings(s.store.as_ref(), &s.sealer, ctx_of(&who), input).await.map(|_| None)
        }
    };
    answer(&s, who, typed, result).await
}

#[derive(Debug, Deserialize)]
pub(super) struct EndpointForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    events: String,
}

/// `POST /admin/settings/webhooks`: a new endpoint; its signing secret is shown once.
pub(super) async fn add_endpoint(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<EndpointForm>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut typed = Typed::default();
    typed.values.insert("endpoint_url", f.url.clone());
    typed.values.insert("endpoint_events", f.events.clone());
    let input = EndpointInput {
        url: f.url.trim().to_owned(),
        description: None,
        events: f.events.split([',', ' ']).map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect(),
        active: true,
    };
    let result = notifications::create_endpoint(s.store.as_ref(), &s.sealer, ctx_of(&who), input)
        .await
        .map(|(e, secret)| Some(format!("Endpoint {} added. Its signing secret, shown this once: {secret}", e.url)));
    answer(&s, who, typed, result).await
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/settings/webhooks/{id}/delete`.
pub(super) async fn delete_endpoint(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let result = notifications::delete_endpoint(s.store.as_ref(), ctx_of(&who), &id).await.map(|()| None);
    answer(&s, who, Typed::default(), result).await
}

/// `POST /admin/settings/outbox/{id}/retry`: a dead letter is tried again now.
pub(super) async fn retry(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<TokenForm>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let result = notifications::retry(s.store.as_ref(), ctx_of(&who), &id)
        .await
        .map(|i| Some(format!("{} {} will be tried again now.", i.event, i.id)));
    answer(&s, who, Typed::default(), result).await
}

#[derive(Debug, Deserialize)]
pub(super) struct CrmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    base_url: String,
    /// HubSpot portal id or Salesforce organization id.
    #[serde(default)]
    account: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    client_secret: String,
}

fn blank_none(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|v| !v.is_empty())
}

/// `POST /admin/settings/crm`: connect or reconnect; empty secrets keep the stored ones.
pub(super) async fn connect_crm(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<CrmForm>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut typed = Typed::default();
    typed.values.insert("crm_kind", f.kind.clone());
    typed.values.insert("crm_base_url", f.base_url.clone());
    typed.values.insert("crm_account", f.account.clone());
    let mut settings = CrmSettings { base_url: blank_none(&f.base_url), ..CrmSettings::default() };
    let result = match (f.kind.as_str(), blank_none(&f.account)) {
        ("hubspot", Some(a)) => match a.parse::<u64>() {
            Ok(p) => {
                settings.portal_id = Some(p);
                Ok(())
            }
            Err(_) => Err(AppError::invalid("settings.portal_id", "a HubSpot portal id is a number")),
        },
        ("salesforce", Some(a)) => {
            settings.organization_id = Some(a);
            Ok(())
        }
        _ => Ok(()),
    };
    let result = match result {
        Ok(()) => {
            let secrets = CrmSecrets { token: blank_none(&f.token), client_secret: blank_none(&f.client_secret), private_key_pem: None };
            let input = CrmConnectionInput { kind: f.kind.trim().to_owned(), settings, secrets };
            crm_sync::connect(s.store.as_ref(), &s.sealer, ctx_of(&who), input).await.map(|_| None)
        }
        Err(e) => Err(e),
    };
    answer(&s, who, typed, result).await
}
