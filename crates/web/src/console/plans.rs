//! `/admin/plans`: the workspace's commission plans — what each pays, its
//! cap, minimum, hold and recurrence, which is the default and how many
//! partners earn by it — and the form that adds one. Every staff role
//! reads; admins and managers add plans and choose the default (the use
//! cases decide: `Ctx::require_admin`).
//!
//! Rules: every POST needs its CSRF token. The form's inputs are named as
//! the fields of `POST /api/v1/commission-plans` (`rate`, `amount.amount`,
//! `rates.gold`, `bands[1].from`, `recurring.months`, …) and parse through
//! the API's own validation, so a mistake is named the same way in both and
//! is shown beside its input with what was typed (422), nothing stored.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::{AppError, plans, tiers};
use partnerloop_domain::FieldError;
use partnerloop_domain::ids::PlanId;
use partnerloop_domain::plan::{CommissionPlan, DEFAULT_HOLD_DAYS, PlanKind, Rate};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::admin::{Session, finish, forbidden_form, nav_clone, signed_in};
use super::pages::{Nav, error_page, minute, page as list_page};
use super::{csrf_ok, see_other};
use crate::AppState;
use crate::api::dto::MoneyDto;
use crate::api::plans::{BandDto, PlanCreate, RecurringDto};
use crate::portal::html;

/// How many volume-band rows the form offers.
pub(crate) const BAND_ROWS: usize = 4;
const PAGE: u32 = 100;

/// `0.15` as people read it: `15 %`.
pub(crate) fn percent(r: &Rate) -> String {
    format!("{} %", (r.as_decimal() * Decimal::ONE_HUNDRED).normalize())
}

pub(crate) struct PlanRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    /// What the plan pays, one line per rate.
    pub pays: Vec<String>,
    pub cap: String,
    pub minimum: String,
    pub hold_days: u32,
    pub recurring: String,
    pub default: bool,
    /// Partners assigned this plan, and (for the default) those without one.
    pub assigned: i64,
    pub by_default: i64,
    pub created: String,
}

fn row(p: &CommissionPlan, usage: &plans::PlanUsage) -> PlanRow {
    let mut pays = match &p.kind {
        PlanKind::Percent { rate } => vec![format!("{} of the won amount", percent(rate))],
        PlanKind::Flat { amount } => vec![format!("{amount} per won referral")],
        PlanKind::Tiered { rates } => rates.iter().map(|(t, r)| format!("{t}: {}", percent(r))).collect(),
    };
    if let Some(v) = &p.volume {
        pays.extend(v.bands.iter().map(|b| format!("from win {} in a {}: {}", b.from, v.period.as_str(), percent(&b.rate))));
    }
    PlanRow {
        id: p.id.to_string(),
        name: p.name.clone(),
        kind: p.kind.name(),
        pays,
        cap: p.cap.map(|m| m.to_string()).unwrap_or_else(|| "—".into()),
        minimum: p.minimum.map(|m| m.to_string()).unwrap_or_else(|| "—".into()),
        hold_days: p.hold_days,
        recurring: p
            .recurring
            .map(|r| format!("{} months of payments, hold from {}", r.months, r.hold_from.as_str().replace('_', " ")))
            .unwrap_or_else(|| "no".into()),
        default: p.is_default,
        assigned: usage.assigned_to(&p.id),
        by_default: if p.is_default { usage.without_plan } else { 0 },
        created: minute(p.created_at),
    }
}

/// One input of the form: its name (the API's field), what it holds, its error.
pub(crate) struct Input {
    pub name: String,
    pub label: String,
    pub value: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_plans.html")]
pub(crate) struct PlansPage {
    pub nav: Nav,
    pub may_manage: bool,
    pub rows: Vec<PlanRow>,
    pub next: Option<String>,
    /// Partners with no plan of their own while the workspace has no default.
    pub unplanned: i64,
    /// One rate input per tier on the ladder.
    pub tier_rates: Vec<Input>,
    /// Volume bands: the `from` and `rate` inputs of each row.
    pub bands: Vec<(Input, Input)>,
    pub typed: HashMap<String, String>,
    pub errors: HashMap<String, String>,
    /// Errors that name no input of the form.
    pub general: Vec<String>,
    pub notice: Option<String>,
}

impl PlansPage {
    pub(crate) fn val(&self, field: &str) -> &str {
        self.typed.get(field).map(String::as_str).unwrap_or("")
    }

    pub(crate) fn err(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

/// The fields the form shows an error beside (besides tier rates and bands).
const PLACED: [&str; 17] = [
    "name",
    "kind",
    "rate",
    "amount",
    "amount.amount",
    "amount.currency",
    "rates",
    "band_period",
    "bands",
    "cap.amount",
    "cap.currency",
    "minimum.amount",
    "minimum.currency",
    "hold_days",
    "recurring",
    "recurring.months",
    "recurring.hold_from",
];

/// What a failed POST leaves for the page: what was typed and what is wrong.
#[derive(Default)]
pub(crate) struct Failed {
    pub typed: HashMap<String, String>,
    pub errors: Vec<FieldError>,
}

async fn render(
    s: &AppState,
    who: Session,
    after: Option<String>,
    failed: Option<Failed>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let (ctx, nav, csrf, may_manage) = who;
    let result = async {
        let list = plans::list(s.store.as_ref(), &ctx, &list_page(PAGE, after)).await?;
        let usage = plans::usage(s.store.as_ref(), &ctx).await?;
        let has_default = s.store.default_plan(&ctx.workspace_id).await?.is_some();
        let ladder = match tiers::ladder(s.store.as_ref(), &ctx).await {
            Ok(l) => l.ladder.tiers().iter().map(|t| (t.slug.clone(), t.name.clone())).collect(),
            Err(AppError::NotFound) => Vec::new(),
            Err(e) => return Err(e),
        };
        let currency = s.store.workspace(&ctx.workspace_id).await?.currency;
        let fresh = failed.is_none();
        let Failed { mut typed, errors } = failed.unwrap_or_default();
        if fresh {
            typed.insert("hold_days".into(), DEFAULT_HOLD_DAYS.to_string());
            typed.insert("kind".into(), "percent".into());
            for f in ["amount.currency", "cap.currency", "minimum.currency"] {
                typed.insert(f.into(), currency.clone());
            }
        }
        let mut errors: HashMap<String, String> = errors.into_iter().map(|e| (e.field, e.message)).collect();
        let mut input = |name: String, label: String| {
            let error = errors.remove(&name);
            Input { value: typed.get(&name).cloned().unwrap_or_default(), name, label, error }
        };
        let tier_rates: Vec<Input> = ladder.iter().map(|(slug, name)| input(format!("rates.{slug}"), format!("{name} ({slug})"))).collect();
        let bands = (0..BAND_ROWS)
            .map(|i| {
                (input(format!("bands[{i}].from"), format!("From win (band {})", i + 1)), input(format!("bands[{i}].rate"), "Rate".into()))
            })
            .collect();
        let general = errors.iter().filter(|(f, _)| !PLACED.contains(&f.as_str())).map(|(f, m)| format!("{f}: {m}")).collect();
        Ok::<_, AppError>(PlansPage {
            nav: nav_clone(&nav),
            may_manage,
            unplanned: if has_default { 0 } else { usage.without_plan },
            rows: list.items.iter().map(|p| row(p, &usage)).collect(),
            next: list.next_after.map(|a| format!("/admin/plans?after={a}")),
            tier_rates,
            bands,
            typed,
            errors,
            general,
            notice,
        })
    }
    .await;
    finish(csrf, result.map(|p| html(status, p)).map_err(|e| (nav, e)), "/admin")
}

#[derive(Debug, Deserialize)]
pub(super) struct PlansQuery {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    default_set: Option<String>,
}

/// `GET /admin/plans`.
pub(super) async fn list(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<PlansQuery>) -> Response {
    let who = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let notice = match (&q.created, &q.default_set) {
        (Some(_), _) => Some("The plan is added.".to_owned()),
        (_, Some(_)) => Some("The default plan is changed.".to_owned()),
        _ => None,
    };
    render(&s, who, q.after, None, notice, StatusCode::OK).await
}

fn text(form: &HashMap<String, String>, field: &str) -> String {
    form.get(field).map(|v| v.trim().to_owned()).unwrap_or_default()
}

fn given(form: &HashMap<String, String>, field: &str) -> Option<String> {
    Some(text(form, field)).filter(|v| !v.is_empty())
}

/// A whole number as typed; anything else becomes -1, which the API's
/// range checks refuse under the same field name with the allowed range.
fn whole(typed: &str) -> i64 {
    typed.parse::<i64>().unwrap_or(-1)
}

fn money(form: &HashMap<String, String>, field: &str) -> Option<MoneyDto> {
    given(form, &format!("{field}.amount")).map(|amount| MoneyDto { amount, currency: text(form, &format!("{field}.currency")) })
}

/// The form as the API's body: empty inputs are absent fields.
pub(crate) fn body_of(form: &HashMap<String, String>) -> PlanCreate {
    let rates: std::collections::BTreeMap<String, String> = form
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("rates.")?.to_owned(), v.trim().to_owned())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    // Bands up to the last row with anything in it; a blank row before it is an error of its own.
    let rows: Vec<(String, String)> =
        (0..BAND_ROWS).map(|i| (text(form, &format!("bands[{i}].from")), text(form, &format!("bands[{i}].rate")))).collect();
    let used = rows.iter().rposition(|(f, r)| !f.is_empty() || !r.is_empty()).map_or(0, |i| i + 1);
    let bands: Vec<BandDto> = rows[..used].iter().map(|(from, rate)| BandDto { from: whole(from), rate: rate.clone() }).collect();
    PlanCreate {
        name: text(form, "name"),
        kind: text(form, "kind"),
        rate: given(form, "rate"),
        amount: money(form, "amount"),
        rates: Some(rates).filter(|r| !r.is_empty()),
        cap: money(form, "cap"),
        minimum: money(form, "minimum"),
        hold_days: given(form, "hold_days").map(|d| whole(&d)),
        default: Some(form.contains_key("default")),
        bands: Some(bands).filter(|b| !b.is_empty()),
        band_period: given(form, "band_period"),
        recurring: given(form, "recurring.months")
            .map(|m| RecurringDto { months: whole(&m), hold_from: given(form, "recurring.hold_from") }),
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

/// `POST /admin/plans`: adds a plan.
pub(super) async fn create(State(s): State<AppState>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let who = match checked(&s, &headers, form.get("csrf").map_or("", String::as_str)).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // Who may not add plans learns that first, not what is wrong with the form.
    if let Err(e) = who.0.require_admin() {
        let (_, nav, csrf, _) = who;
        return csrf.apply(error_page(Some(nav), e, "/admin/plans"));
    }
    let result = match body_of(&form).parse() {
        Ok(input) => plans::create(s.store.as_ref(), &who.0, input).await.map(|_| ()),
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    let errors = match result {
        Ok(()) => return see_other("/admin/plans?created=1"),
        Err(AppError::Invalid(errors)) => errors,
        Err(AppError::Conflict { message, field: Some(field) }) => vec![FieldError::new(field, message)],
        Err(e) => {
            let (_, nav, csrf, _) = who;
            return csrf.apply(error_page(Some(nav), e, "/admin/plans"));
        }
    };
    let mut typed = form;
    typed.remove("csrf");
    render(&s, who, None, Some(Failed { typed, errors }), None, StatusCode::UNPROCESSABLE_ENTITY).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct TokenForm {
    csrf: String,
}

/// `POST /admin/plans/{id}/default`: makes the plan the workspace's default.
pub(super) async fn make_default(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match plans::set_default(s.store.as_ref(), &who.0, &PlanId::from_string(id)).await {
        Ok(_) => see_other("/admin/plans?default_set=1"),
        Err(e) => {
            let (_, nav, csrf, _) = who;
            csrf.apply(error_page(Some(nav), e, "/admin/plans"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_form_parses_like_the_api_body_and_names_the_same_fields() {
        let ok = body_of(&form(&[
            ("name", "Gold"),
            ("kind", "tiered"),
            ("rates.gold", "0.2"),
            ("rates.silver", ""),
            ("bands[0].from", "1"),
            ("bands[0].rate", "0.1"),
            ("bands[1].from", "6"),
            ("bands[1].rate", "0.15"),
            ("band_period", "quarter"),
            ("cap.amount", ""),
            ("cap.currency", "USD"),
            ("hold_days", "45"),
            ("default", "on"),
        ]))
        .parse()
        .unwrap();
        assert_eq!((ok.hold_days, ok.is_default, ok.cap), (45, true, None));
        assert!(matches!(&ok.kind, PlanKind::Tiered { rates } if rates.len() == 1));
        assert_eq!(ok.volume.unwrap().bands.len(), 2);

        let bad = body_of(&form(&[("name", "P"), ("kind", "percent"), ("rate", "15"), ("hold_days", "soon"), ("bands[1].rate", "0.1")]))
            .parse()
            .unwrap_err();
        let fields: Vec<&str> = bad.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["rate", "hold_days", "band_period"]);
    }
}
