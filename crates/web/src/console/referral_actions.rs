//! The referral page's forms for admins and managers: extend the
//! protection (days and a reason) and move the deal's stage (with the
//! amount for `closed_won`).
//!
//! Rules: each POST needs its CSRF token (else 403, nothing changes) and
//! calls the API's use case with the staff user's `Ctx`, so roles and
//! states are checked there. A mistake redraws the page with the message
//! beside its field (422) and what was typed; a state conflict (409) is
//! shown above the form.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::{AppError, referrals};
use partnerloop_domain::Money;
use partnerloop_domain::deal::Stage;
use partnerloop_domain::referral::ReferralId;
use partnerloop_domain::validation::FieldError;
use serde::Deserialize;

use super::admin::{forbidden_form, referral_page, signed_in};
use super::pages::{ActionForms, error_page};
use super::{csrf_ok, see_other};
use crate::AppState;

#[derive(Debug, Deserialize)]
pub(super) struct ExtendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct StageForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
}

/// Puts each field's message beside its input; the rest above the forms.
fn place(forms: &mut ActionForms, errors: Vec<FieldError>) {
    for e in errors {
        let slot = match e.field.as_str() {
            "days" => &mut forms.days_error,
            "reason" => &mut forms.reason_error,
            "stage" => &mut forms.stage_error,
            f if f == "amount" || f.ends_with(".amount") => &mut forms.amount_error,
            f if f.ends_with(".currency") => &mut forms.currency_error,
            _ => &mut forms.message,
        };
        *slot = Some(e.message);
    }
}

/// The page again with the form's errors, or the error page for what a form cannot show.
async fn redraw(s: &AppState, headers: &HeaderMap, id: &ReferralId, mut forms: ActionForms, e: AppError) -> Response {
    let (ctx, nav, csrf, may_manage) = match signed_in(s, headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let status = match e {
        AppError::Invalid(fields) => {
            place(&mut forms, fields);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        AppError::Conflict { message, .. } => {
            forms.message = Some(message);
            StatusCode::CONFLICT
        }
        other => return csrf.apply(error_page(Some(nav), other, &format!("/admin/referrals/{id}"))),
    };
    referral_page(s, (ctx, nav, csrf, may_manage), id, forms, status).await
}

/// `POST /admin/referrals/{id}/extend`.
pub(super) async fn extend(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<ExtendForm>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&headers, &f.csrf) {
        return csrf.apply(forbidden_form(nav));
    }
    let id = ReferralId::from_string(id);
    let reason = f.reason.trim().to_owned();
    let mut errors = Vec::new();
    let days = f.days.trim().parse::<u32>().map_err(|_| FieldError::new("days", "must be a whole number of days from 1 to 365"));
    if let Err(e) = &days {
        errors.push(e.clone());
    }
    if reason.is_empty() {
        errors.push(FieldError::new("reason", "is required: say why the partner gets more time"));
    }
    let forms = ActionForms { days: f.days.clone(), reason: f.reason.clone(), ..ActionForms::default() };
    let result = match days {
        Ok(days) if errors.is_empty() => referrals::extend(s.store.as_ref(), &ctx, &id, days, reason).await.map(|_| ()),
        _ => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(()) => see_other(&format!("/admin/referrals/{id}")),
        Err(e) => redraw(&s, &headers, &id, forms, e).await,
    }
}

/// `POST /admin/referrals/{id}/stage`.
pub(super) async fn stage(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<StageForm>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&headers, &f.csrf) {
        return csrf.apply(forbidden_form(nav));
    }
    let id = ReferralId::from_string(id);
    let forms =
        ActionForms { stage: Some(f.stage.clone()), amount: f.amount.clone(), currency: f.currency.clone(), ..ActionForms::default() };
    let mut errors = Vec::new();
    let stage = Stage::parse("stage", f.stage.trim()).map_err(|e| errors.push(e)).ok();
    let amount = match f.amount.trim() {
        "" => None,
        a => Money::parse_positive("amount", a, f.currency.trim()).map_err(|e| errors.push(e)).ok(),
    };
    let result = match stage {
        Some(stage) if errors.is_empty() => referrals::change_stage(s.store.as_ref(), &ctx, &id, stage, amount).await.map(|_| ()),
        _ => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(()) => see_other(&format!("/admin/referrals/{id}")),
        Err(e) => redraw(&s, &headers, &id, forms, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_goes_beside_its_field() {
        let mut f = ActionForms::default();
        place(
            &mut f,
            vec![
                FieldError::new("days", "d"),
                FieldError::new("amount.amount", "a"),
                FieldError::new("amount.currency", "c"),
                FieldError::new("status", "s"),
            ],
        );
        assert_eq!(
            (f.days_error.as_deref(), f.amount_error.as_deref(), f.currency_error.as_deref(), f.message.as_deref()),
            (Some("d"), Some("a"), Some("c"), Some("s"))
        );
    }
}
