//! `GET /admin/audit?action=&after=`: the workspace's audit log, newest
//! first, 50 rows a page, optionally of one action (admins and managers:
//! the use case decides).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::{AppError, staff};
use serde::Deserialize;

use super::admin::{finish, nav_clone, signed_in};
use super::pages::{self, minute};
use crate::AppState;
use crate::portal::html;

#[derive(Debug, Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    after: Option<String>,
}

/// A JSON state in one line, cut to a readable length.
fn brief(v: Option<&serde_json::Value>) -> String {
    let Some(v) = v else { return String::new() };
    let text = v.to_string();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

pub(super) async fn list(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<AuditQuery>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let page = async {
        let action = q.action.trim();
        if action.len() > 100 || !action.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_') {
            return Err(AppError::invalid("action", "is an action name like referral.approved"));
        }
        let action = Some(action).filter(|a| !a.is_empty());
        let list = staff::audit_log(s.store.as_ref(), &ctx, action, &pages::page(50, q.after.clone())).await?;
        Ok::<_, AppError>(pages::Audit {
            nav: nav_clone(&nav),
            action: action.unwrap_or("").to_owned(),
            rows: list
                .items
                .iter()
                .map(|(_, a)| pages::AuditRow {
                    at: minute(a.at),
                    actor: a.actor.clone(),
                    action: a.action.clone(),
                    entity: format!("{} {}", a.entity, a.entity_id),
                    before: brief(a.before.as_ref()),
                    after: brief(a.after.as_ref()),
                })
                .collect(),
            next: list.next_after.map(|n| format!("/admin/audit?action={}&after={n}", action.unwrap_or(""))),
        })
    }
    .await;
    finish(csrf, page.map(|p| html(StatusCode::OK, p)).map_err(|e| (nav, e)), "/admin")
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_states_are_cut_on_a_character_boundary() {
        let v = serde_json::json!({ "note": "é".repeat(400) });
        let b = super::brief(Some(&v));
        assert!(b.ends_with('…') && b.chars().count() == 301);
        assert_eq!(super::brief(None), "");
    }
}
