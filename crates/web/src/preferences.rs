//! A partner contact's email preferences without signing in: the link in
//! every partner mail (`/preferences/{token}`) and the one-click
//! unsubscribe of `List-Unsubscribe` (`/unsubscribe/{token}/{topic}`,
//! RFC 8058). GET only shows a page (mail scanners open links); POST
//! changes the preference. The token, signed per contact, is the key.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use partnerloop_app::notifications;
use partnerloop_app::outbox::{Preference, Topic};
use partnerloop_app::signin::{self, Holder};
use partnerloop_app::{AppError, Ctx};

use crate::AppState;
use crate::portal::{html, message};

#[derive(Template)]
#[template(path = "preferences.html")]
struct PreferencesPage {
    email: String,
    saved: bool,
    /// topic, label, subscribed
    topics: Vec<(&'static str, &'static str, bool)>,
}

#[derive(Template)]
#[template(path = "unsubscribe.html")]
struct UnsubscribePage {
    email: String,
    topic: &'static str,
    done: bool,
    preferences: String,
}

pub(crate) fn label(t: Topic) -> &'static str {
    match t {
        Topic::ReferralUpdates => "Updates on my referrals (decisions, stages, wins, protection)",
        Topic::Earnings => "Earnings (commissions, payouts, tier changes)",
        Topic::Digest => "The monthly digest",
        Topic::Announcements => "Announcements",
    }
}

/// The contact's address and current subscriptions.
pub(crate) async fn current(s: &AppState, ctx: &Ctx, h: &Holder) -> Result<(String, Vec<(Topic, bool)>), AppError> {
    let prefs = notifications::preferences(s.store.as_ref(), ctx, &h.partner_id).await?;
    let me = prefs["data"].as_array().into_iter().flatten().find(|c| c["contact_id"] == h.contact_id.as_str()).cloned().unwrap_or_default();
    let topics = Topic::ALL.iter().map(|t| (*t, me["topics"][t.as_str()].as_bool().unwrap_or(true))).collect();
    Ok((me["email"].as_str().unwrap_or_default().to_owned(), topics))
}

fn invalid() -> Response {
    message(StatusCode::NOT_FOUND, "This link is not valid", "Use the link at the bottom of a recent email from us.")
}

fn failed(e: AppError) -> Response {
    tracing::error!(error = %e, "email preferences failed");
    message(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Please try again in a moment.")
}

async fn show(s: &AppState, token: &str, changes: Option<Vec<(Topic, bool)>>) -> Response {
    let (ctx, h) = match signin::preferences_holder(s.store.as_ref(), &s.links, token, Timestamp::now()).await {
        Ok(Some(found)) => found,
        Ok(None) => return invalid(),
        Err(e) => return failed(e),
    };
    let saved = changes.is_some();
    if let Some(changes) = changes {
        let prefs = changes.into_iter().map(|(topic, enabled)| Preference { contact_id: h.contact_id.clone(), topic, enabled }).collect();
        if let Err(e) = notifications::put_preferences(s.store.as_ref(), &ctx, &h.partner_id, prefs).await {
            return failed(e);
        }
    }
    match current(s, &ctx, &h).await {
        Ok((email, topics)) => {
            let topics = topics.into_iter().map(|(t, on)| (t.as_str(), label(t), on)).collect();
            html(StatusCode::OK, PreferencesPage { email, saved, topics })
        }
        Err(e) => failed(e),
    }
}

/// `GET /preferences/{token}`
pub async fn page(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    show(&s, &token, None).await
}

/// `POST /preferences/{token}`: a checked box (`topic=on`) subscribes, an absent one opts out.
pub async fn save(State(s): State<AppState>, Path(token): Path<String>, body: axum::body::Bytes) -> Response {
    let form = String::from_utf8_lossy(&body);
    let checked: Vec<&str> = form.split('&').filter_map(|kv| kv.split_once('=').map(|(k, _)| k)).collect();
    let changes = Topic::ALL.iter().map(|t| (*t, checked.contains(&t.as_str()))).collect();
    show(&s, &token, Some(changes)).await
}

async fn unsubscribe_page(s: &AppState, token: &str, topic: &str, act: bool) -> Response {
    let Ok(topic) = Topic::parse("topic", topic) else {
        return invalid();
    };
    let (ctx, h) = match signin::preferences_holder(s.store.as_ref(), &s.links, token, Timestamp::now()).await {
        Ok(Some(found)) => found,
        Ok(None) => return invalid(),
        Err(e) => return failed(e),
    };
    if act {
        let off = vec![Preference { contact_id: h.contact_id.clone(), topic, enabled: false }];
        if let Err(e) = notifications::put_preferences(s.store.as_ref(), &ctx, &h.partner_id, off).await {
            return failed(e);
        }
    }
    match current(s, &ctx, &h).await {
        Ok((email, _)) => html(
            StatusCode::OK,
            UnsubscribePage { email, topic: label(topic), done: act, preferences: format!("{}/preferences/{token}", s.links.base_url) },
        ),
        Err(e) => failed(e),
    }
}

/// `GET /unsubscribe/{token}/{topic}`: asks first.
pub async fn unsubscribe_confirm(State(s): State<AppState>, Path((token, topic)): Path<(String, String)>) -> Response {
    unsubscribe_page(&s, &token, &topic, false).await
}

/// `POST /unsubscribe/{token}/{topic}`: the one-click unsubscribe (any body).
pub async fn unsubscribe(State(s): State<AppState>, Path((token, topic)): Path<(String, String)>) -> Response {
    unsubscribe_page(&s, &token, &topic, true).await
}
