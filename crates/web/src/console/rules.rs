//! `/admin/rules`: the rules of engagement, read by every staff role and
//! changed by admins and managers (the use case decides: `Ctx::require_admin`).
//!
//! Rules: the POST needs its CSRF token; a bad value is shown beside its
//! field with what was typed (422) and nothing is saved; a good one saves
//! every field at once through `rules::put`, which writes the audit row.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::{AppError, Ctx, rules};
use partnerloop_domain::rules::{Action, RuleId, Rules};
use partnerloop_domain::validation::FieldError;
use serde::Deserialize;

use super::admin::{finish, forbidden_form, nav_clone, signed_in};
use super::pages::{self, Nav, error_page};
use super::{Csrf, csrf_ok, see_other};
use crate::AppState;
use crate::portal::html;

const RULES: [RuleId; 5] = [
    RuleId::ActiveReferralOtherPartner,
    RuleId::ExistingCustomer,
    RuleId::OffLimitsAccount,
    RuleId::OpenDirectOpportunity,
    RuleId::PossibleDuplicate,
];

/// The form's fields as typed, and what to correct.
fn form_of(r: &Rules) -> pages::RulesForm {
    pages::RulesForm {
        protection_days: r.protection_days.to_string(),
        auto_approve: r.auto_approve,
        fuzzy_threshold: r.fuzzy_threshold.to_string(),
        protection_days_error: None,
        fuzzy_threshold_error: None,
        actions: RULES
            .iter()
            .map(|id| pages::RuleAction { rule: id.as_str(), chosen: r.actions.get(*id).as_str().to_owned(), error: None })
            .collect(),
        saved: false,
    }
}

async fn page(
    s: &AppState,
    ctx: &Ctx,
    nav: Nav,
    csrf: Csrf,
    may_manage: bool,
    form: Option<pages::RulesForm>,
    status: StatusCode,
) -> Response {
    let result = async {
        let form = match form {
            Some(f) => f,
            None => form_of(&rules::get(s.store.as_ref(), ctx).await?),
        };
        Ok::<_, AppError>(pages::RulesPage {
            nav: nav_clone(&nav),
            may_manage,
            choices: [Action::Approve, Action::Review, Action::Reject].iter().map(|a| a.as_str()).collect(),
            form,
        })
    }
    .await;
    finish(csrf, result.map(|p| html(status, p)).map_err(|e| (nav, e)), "/admin")
}

/// `GET /admin/rules`.
pub(super) async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<SavedQuery>,
) -> Response {
    let (ctx, nav, csrf, may_manage) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if q.saved.is_some() {
        let mut f = match rules::get(s.store.as_ref(), &ctx).await {
            Ok(r) => form_of(&r),
            Err(e) => return csrf.apply(error_page(Some(nav), e, "/admin")),
        };
        f.saved = true;
        return page(&s, &ctx, nav, csrf, may_manage, Some(f), StatusCode::OK).await;
    }
    page(&s, &ctx, nav, csrf, may_manage, None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub(super) struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
}

/// The form as posted: `protection_days`, `auto_approve` (a checkbox),
/// `fuzzy_threshold` and one `action_{rule}` per rule.
#[derive(Debug, Deserialize)]
pub(super) struct RulesInput {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    protection_days: String,
    #[serde(default)]
    auto_approve: Option<String>,
    #[serde(default)]
    fuzzy_threshold: String,
    #[serde(flatten)]
    rest: std::collections::HashMap<String, String>,
}

/// Parses the form; every field's problem at once.
fn parse(input: &RulesInput) -> (pages::RulesForm, Result<Rules, Vec<FieldError>>) {
    let mut errors = Vec::new();
    let days = input
        .protection_days
        .trim()
        .parse::<u32>()
        .map_err(|_| errors.push(FieldError::new("protection_days", "must be a whole number of days")));
    let threshold = input
        .fuzzy_threshold
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite())
        .ok_or_else(|| errors.push(FieldError::new("fuzzy_threshold", "must be a number like 0.9")));
    let mut actions = Rules::default().actions;
    let mut rows = Vec::new();
    for id in RULES {
        let typed = input.rest.get(&format!("action_{}", id.as_str())).cloned().unwrap_or_default();
        match Action::parse(&format!("actions.{}", id.as_str()), typed.trim()) {
            Ok(a) => actions.set(id, a),
            Err(e) => errors.push(e),
        }
        rows.push(pages::RuleAction { rule: id.as_str(), chosen: typed, error: None });
    }
    let form = pages::RulesForm {
        protection_days: input.protection_days.clone(),
        auto_approve: input.auto_approve.is_some(),
        fuzzy_threshold: input.fuzzy_threshold.clone(),
        protection_days_error: None,
        fuzzy_threshold_error: None,
        actions: rows,
        saved: false,
    };
    let rules = match (days, threshold) {
        (Ok(protection_days), Ok(fuzzy_threshold)) => {
            Some(Rules { protection_days, auto_approve: input.auto_approve.is_some(), fuzzy_threshold, actions })
        }
        _ => None,
    };
    // The ranges too, so that every field's problem shows at once (the use case checks them again).
    if let Some(r) = &rules
        && !errors.is_empty()
    {
        errors.extend(r.check());
    }
    match rules {
        Some(r) if errors.is_empty() => (form, Ok(r)),
        _ => (form, Err(errors)),
    }
}

fn place(form: &mut pages::RulesForm, errors: Vec<FieldError>) {
    for e in errors {
        match e.field.as_str() {
            "protection_days" => form.protection_days_error = Some(e.message),
            "fuzzy_threshold" => form.fuzzy_threshold_error = Some(e.message),
            f => {
                if let Some(row) = form.actions.iter_mut().find(|r| f.strip_prefix("actions.") == Some(r.rule)) {
                    row.error = Some(e.message);
                }
            }
        }
    }
}

/// `POST /admin/rules`.
pub(super) async fn save(State(s): State<AppState>, headers: HeaderMap, Form(input): Form<RulesInput>) -> Response {
    let (ctx, nav, csrf, may_manage) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&headers, &input.csrf) {
        return csrf.apply(forbidden_form(nav));
    }
    let (mut form, parsed) = parse(&input);
    let result = match parsed {
        Ok(r) => rules::put(s.store.as_ref(), &ctx, r).await.map(|_| ()),
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(()) => see_other("/admin/rules?saved=1"),
        Err(AppError::Invalid(errors)) => {
            place(&mut form, errors);
            page(&s, &ctx, nav, csrf, may_manage, Some(form), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => csrf.apply(error_page(Some(nav), e, "/admin/rules")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(days: &str, threshold: &str, action: &str) -> RulesInput {
        let mut rest = std::collections::HashMap::new();
        for id in RULES {
            rest.insert(format!("action_{}", id.as_str()), "review".to_owned());
        }
        rest.insert("action_existing_customer".into(), action.into());
        RulesInput { csrf: String::new(), protection_days: days.into(), auto_approve: None, fuzzy_threshold: threshold.into(), rest }
    }

    #[test]
    fn a_good_form_is_every_rule_and_a_bad_one_names_each_field() {
        let (_, r) = parse(&input("30", "0.8", "reject"));
        let r = r.unwrap();
        assert_eq!((r.protection_days, r.auto_approve, r.fuzzy_threshold), (30, false, 0.8));
        assert_eq!((r.actions.existing_customer, r.actions.possible_duplicate), (Action::Reject, Action::Review));
        let (mut form, r) = parse(&input("x", "NaN", "maybe"));
        place(&mut form, r.unwrap_err());
        assert!(form.protection_days_error.is_some() && form.fuzzy_threshold_error.is_some());
        let row = form.actions.iter().find(|a| a.rule == "existing_customer").unwrap();
        assert!(row.error.is_some() && row.chosen == "maybe");
        assert!(form.actions.iter().filter(|a| a.error.is_some()).count() == 1);
    }
}
