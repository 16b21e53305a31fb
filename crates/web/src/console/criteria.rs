//! `/admin/applications/criteria`: the workspace's ideal-partner criteria
//! and their weights, read by every staff role and changed by admins and
//! managers (the use case decides: `Ctx::require_admin`).
//!
//! Rules: the POST needs its CSRF token; a bad value is shown beside its
//! field with what was typed (422) and nothing is saved. Amounts are in
//! the workspace currency, parsed exactly into minor units; weights are
//! whole numbers 0–100.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::{AppError, Ctx, applications};
use partnerloop_domain::application::{Criteria, Weights, industry_list};
use partnerloop_domain::money::Currency;
use partnerloop_domain::{FieldError, Money};
use serde::Deserialize;

use super::admin::{finish, forbidden_form, nav_clone, signed_in};
use super::pages::{Nav, error_page};
use super::{csrf_ok, see_other};
use crate::AppState;
use crate::portal::html;

/// The form as typed (every field text), with what to correct per field.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CriteriaInput {
    csrf: String,
    target_industries: String,
    deal_size_min: String,
    deal_size_max: String,
    referrals_per_quarter: String,
    weight_audience: String,
    weight_deal_size: String,
    weight_credibility: String,
    weight_responsiveness: String,
}

pub(crate) struct Input {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_criteria.html")]
struct CriteriaPage {
    nav: Nav,
    may_manage: bool,
    currency: String,
    saved: bool,
    industries: Input,
    band: Vec<Input>,
    weights: Vec<Input>,
    general: Vec<String>,
}

fn input(name: &'static str, label: &'static str, value: String) -> Input {
    Input { name, label, value, error: None }
}

fn amount(minor: i64, currency: Currency) -> String {
    Money::from_minor(minor, currency).amount_string()
}

fn input_of(c: &Criteria, currency: Currency) -> CriteriaInput {
    CriteriaInput {
        csrf: String::new(),
        target_industries: c.target_industries.join(", "),
        deal_size_min: c.deal_size_band.map(|b| amount(b.0, currency)).unwrap_or_default(),
        deal_size_max: c.deal_size_band.map(|b| amount(b.1, currency)).unwrap_or_default(),
        referrals_per_quarter: c.referrals_per_quarter.to_string(),
        weight_audience: c.weights.audience.to_string(),
        weight_deal_size: c.weights.deal_size.to_string(),
        weight_credibility: c.weights.credibility.to_string(),
        weight_responsiveness: c.weights.responsiveness.to_string(),
    }
}

/// Parses the form; every field's problem at once.
fn parse(f: &CriteriaInput, currency: Currency) -> Result<Criteria, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut whole = |field: &str, text: &str| -> u32 {
        text.trim().parse::<u32>().unwrap_or_else(|_| {
            errors.push(FieldError::new(field, "must be a whole number"));
            0
        })
    };
    let weights = Weights {
        audience: whole("weights.audience", &f.weight_audience),
        deal_size: whole("weights.deal_size", &f.weight_deal_size),
        credibility: whole("weights.credibility", &f.weight_credibility),
        responsiveness: whole("weights.responsiveness", &f.weight_responsiveness),
    };
    let referrals_per_quarter = whole("referrals_per_quarter", &f.referrals_per_quarter);
    let mut money = |field: &str, text: &str| match text.trim() {
        "" => None,
        t => Money::parse_non_negative(field, t, currency.code()).map_err(|e| errors.push(e)).ok().map(|m| m.minor()),
    };
    let (min, max) = (money("deal_size_min", &f.deal_size_min), money("deal_size_max", &f.deal_size_max));
    let band = match (f.deal_size_min.trim().is_empty(), f.deal_size_max.trim().is_empty()) {
        (true, true) => None,
        (false, true) => {
            errors.push(FieldError::new("deal_size_max", "give both ends of the band, or neither"));
            None
        }
        (true, false) => {
            errors.push(FieldError::new("deal_size_min", "give both ends of the band, or neither"));
            None
        }
        (false, false) => min.zip(max),
    };
    let criteria =
        Criteria { target_industries: industry_list(&f.target_industries), deal_size_band: band, referrals_per_quarter, weights };
    if errors.is_empty() {
        errors = criteria.check();
    }
    if errors.is_empty() { Ok(criteria) } else { Err(errors) }
}

fn page_of(nav: Nav, may_manage: bool, currency: Currency, f: &CriteriaInput, errors: Vec<FieldError>, saved: bool) -> CriteriaPage {
    let mut industries = input("target_industries", "Target industries (comma-separated)", f.target_industries.clone());
    let mut band = vec![
        input("deal_size_min", "Smallest deal that fits", f.deal_size_min.clone()),
        input("deal_size_max", "Largest deal that fits", f.deal_size_max.clone()),
        input("referrals_per_quarter", "Introductions per quarter for full responsiveness points", f.referrals_per_quarter.clone()),
    ];
    let mut weights = vec![
        input("weight_audience", "Audience overlap", f.weight_audience.clone()),
        input("weight_deal_size", "Deal-size alignment", f.weight_deal_size.clone()),
        input("weight_credibility", "Credibility", f.weight_credibility.clone()),
        input("weight_responsiveness", "Responsiveness", f.weight_responsiveness.clone()),
    ];
    let mut general = Vec::new();
    for e in errors {
        let name = match e.field.as_str() {
            "target_industries" => {
                industries.error = Some(e.message);
                continue;
            }
            f if f.starts_with("weights.") => format!("weight_{}", &f["weights.".len()..]),
            f => f.to_owned(),
        };
        match band.iter_mut().chain(weights.iter_mut()).find(|i| i.name == name) {
            Some(i) => i.error = Some(e.message),
            None => general.push(e.to_string()),
        }
    }
    CriteriaPage { nav, may_manage, currency: currency.code().to_owned(), saved, industries, band, weights, general }
}

async fn currency(s: &AppState, ctx: &Ctx) -> Result<Currency, AppError> {
    let code = s.store.workspace(&ctx.workspace_id).await?.currency;
    Ok(Currency::parse("currency", &code).unwrap_or(Currency::USD))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SavedQuery {
    saved: Option<String>,
}

/// `GET /admin/applications/criteria`.
pub(super) async fn show(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<SavedQuery>) -> Response {
    let (ctx, nav, csrf, may_manage) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let page = async {
        let c = applications::criteria(s.store.as_ref(), &ctx).await?;
        let cur = currency(&s, &ctx).await?;
        Ok::<_, AppError>(page_of(nav_clone(&nav), may_manage, cur, &input_of(&c, cur), vec![], q.saved.is_some()))
    }
    .await;
    finish(csrf, page.map(|p| html(StatusCode::OK, p)).map_err(|e| (nav, e)), "/admin/applications")
}

/// `POST /admin/applications/criteria`.
pub(super) async fn save(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<CriteriaInput>) -> Response {
    let (ctx, nav, csrf, may_manage) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&headers, &f.csrf) {
        return csrf.apply(forbidden_form(nav));
    }
    let cur = match currency(&s, &ctx).await {
        Ok(c) => c,
        Err(e) => return csrf.apply(error_page(Some(nav), e, "/admin/applications")),
    };
    let result = match parse(&f, cur) {
        Ok(c) => applications::put_criteria(s.store.as_ref(), &ctx, c).await.map(|_| ()),
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(()) => see_other("/admin/applications/criteria?saved=1"),
        Err(AppError::Invalid(errors)) => {
            let p = page_of(nav_clone(&nav), may_manage, cur, &f, errors, false);
            csrf.apply(html(StatusCode::UNPROCESSABLE_ENTITY, p))
        }
        Err(e) => csrf.apply(error_page(Some(nav), e, "/admin/applications/criteria")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_exact_minor_units_and_bad_fields_are_named() {
        let f = CriteriaInput {
            target_industries: "Retail, logistics".into(),
            deal_size_min: "10000".into(),
            deal_size_max: "50000.50".into(),
            referrals_per_quarter: "3".into(),
            weight_audience: "40".into(),
            weight_deal_size: "30".into(),
            weight_credibility: "20".into(),
            weight_responsiveness: "10".into(),
            ..Default::default()
        };
        let c = parse(&f, Currency::USD).unwrap();
        assert_eq!(c.deal_size_band, Some((1_000_000, 5_000_050)));
        assert_eq!(c.target_industries, ["retail", "logistics"]);
        let bad = CriteriaInput { weight_audience: "2.5".into(), deal_size_max: String::new(), ..f };
        let fields: Vec<String> = parse(&bad, Currency::USD).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["weights.audience", "deal_size_max"]);
    }
}
