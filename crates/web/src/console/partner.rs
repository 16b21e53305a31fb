//! `/admin/partners/{id}`: one partner — its contacts, tier with progress
//! and history, commission plan, onboarding and referrals — and the forms
//! that manage it: its status (active, paused, archived) and its own
//! commission plan (or the workspace's default).
//!
//! Rules: every staff role reads; the forms change the partner through
//! `partners::update` (the API's PATCH), so only admins and managers may,
//! and each change is audited with the partner before and after. Every POST
//! needs its CSRF token; a bad choice is shown beside its form (422) and
//! nothing changes.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::partners::{self, PartnerForUpdate};
use partnerloop_app::store::{Page, ReferralFilter};
use partnerloop_app::{AppError, Ctx, plans, referrals, tiers};
use partnerloop_domain::ids::{PartnerId, PlanId};
use partnerloop_domain::partner::PartnerStatus;
use serde::Deserialize;

use super::admin::{Session, finish, forbidden_form, nav_clone, signed_in};
use super::pages::{Nav, error_page, minute};
use super::{csrf_ok, see_other};
use crate::AppState;
use crate::portal::html;

/// The statuses staff set by hand; `applied` belongs to the applications queue.
const SETTABLE: [PartnerStatus; 3] = [PartnerStatus::Active, PartnerStatus::Paused, PartnerStatus::Archived];

pub(crate) struct PartnerReferralRow {
    pub id: String,
    pub company: String,
    pub status: String,
    pub created: String,
}

pub(crate) struct TierHistoryRow {
    pub at: String,
    pub from: String,
    pub to: String,
    pub value: String,
    pub actor: String,
    pub reason: String,
}

/// Where the partner stands on the ladder.
pub(crate) struct TierStanding {
    pub tier: String,
    pub benefits: String,
    pub value: String,
    pub next: Option<String>,
    pub at_risk: Option<String>,
}

/// What the management forms were sent with, and what to correct.
#[derive(Default)]
pub(crate) struct ManageForms {
    pub status: Option<String>,
    pub status_error: Option<String>,
    pub plan: Option<String>,
    pub plan_error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_partner.html")]
pub(crate) struct PartnerDetail {
    pub nav: Nav,
    pub may_manage: bool,
    /// Per currency: pending, payable, paid, reversed.
    pub earnings: Vec<(String, String, String, String, String)>,
    pub id: String,
    pub name: String,
    pub status: String,
    pub kind: String,
    pub tier: String,
    pub code: String,
    pub website: String,
    pub created: String,
    pub first_referral: String,
    /// The plan it earns by, in words.
    pub plan: String,
    pub contacts: Vec<(String, String)>,
    pub referrals: Vec<PartnerReferralRow>,
    /// Onboarding: items done, items in all, and each item's title with when it was done.
    pub onboarding_done: usize,
    pub onboarding_total: usize,
    pub onboarding: Vec<(String, Option<String>)>,
    /// None without a ladder.
    pub standing: Option<TierStanding>,
    pub history: Vec<TierHistoryRow>,
    /// The status choices and the plan choices (id, label), with which is selected.
    pub statuses: Vec<(&'static str, bool)>,
    pub plans: Vec<(String, String, bool)>,
    pub forms: ManageForms,
}

fn standing(p: tiers::TierProgress) -> TierStanding {
    let m = p.measure;
    let window = match m.currency() {
        None => "won referrals in the trailing 12 months".to_owned(),
        Some(_) => "won revenue in the trailing 12 months".to_owned(),
    };
    TierStanding {
        tier: match (&p.current, &p.tier) {
            (Some(t), _) => format!("{} ({})", t.name, t.slug),
            (None, Some(slug)) => format!("{slug} (not on the ladder)"),
            (None, None) => "none".into(),
        },
        benefits: p.current.as_ref().map(|t| t.benefits.clone()).unwrap_or_default(),
        value: format!("{} {window}", m.describe(p.value)),
        next: p.next.as_ref().map(|(t, left)| format!("{}: {} more", t.name, m.describe(*left))),
        at_risk: p.at_risk_since.map(|since| {
            let until = p.demotion_at.map(|d| format!("; loses the tier {} unless it requalifies", minute(d))).unwrap_or_default();
            format!("below its tier's threshold since {}{until}", minute(since))
        }),
    }
}

async fn detail(
    s: &AppState,
    ctx: &Ctx,
    nav: &Nav,
    may_manage: bool,
    id: &PartnerId,
    forms: ManageForms,
) -> Result<PartnerDetail, AppError> {
    let store = s.store.as_ref();
    let p = partners::get(store, ctx, id).await?;
    let filter = ReferralFilter { status: None, partner_id: Some(p.id.clone()) };
    let list = referrals::list(store, ctx, filter, &Page { limit: 200, after: None }).await?;
    let progress = partnerloop_app::onboarding::progress(store, ctx, &p.id).await?;
    let all_plans = plans::list(store, ctx, &Page { limit: 500, after: None }).await?.items;
    let default = all_plans.iter().find(|x| x.is_default).map(|x| x.name.clone());
    let plan = match &p.commission_plan_id {
        Some(pid) => match all_plans.iter().find(|x| &x.id == pid) {
            Some(x) => x.name.clone(),
            None => plans::get(store, ctx, pid).await?.name,
        },
        None => match &default {
            Some(d) => format!("the workspace default ({d})"),
            None => "none: the workspace has no default plan".into(),
        },
    };
    let standing = match tiers::progress(store, ctx, &p.id).await {
        Ok(x) => Some(standing(x)),
        Err(AppError::NotFound) => None,
        Err(e) => return Err(e),
    };
    let history = tiers::history(store, ctx, &p.id).await?;
    let earnings = partnerloop_app::commissions::balances(store, ctx, &p.id).await?;
    let chosen_status = forms.status.clone().unwrap_or_else(|| p.status.as_str().to_owned());
    let chosen_plan = forms.plan.clone().unwrap_or_else(|| p.commission_plan_id.as_ref().map(|i| i.to_string()).unwrap_or_default());
    let mut plan_choices = vec![(
        String::new(),
        format!("Workspace default{}", default.map(|d| format!(" ({d})")).unwrap_or_default()),
        chosen_plan.is_empty(),
    )];
    plan_choices.extend(all_plans.iter().map(|x| (x.id.to_string(), x.name.clone(), chosen_plan == x.id.as_str())));
    Ok(PartnerDetail {
        onboarding_done: progress.done(),
        onboarding_total: progress.total(),
        onboarding: progress.items.iter().map(|i| (i.item.title.clone(), i.done_at.map(minute))).collect(),
        nav: nav_clone(nav),
        may_manage,
        earnings: earnings
            .iter()
            .map(|b| {
                (b.currency.code().to_owned(), b.pending.to_string(), b.payable.to_string(), b.paid.to_string(), b.reversed.to_string())
            })
            .collect(),
        id: p.id.to_string(),
        name: p.name.clone(),
        status: p.status.to_string(),
        kind: p.partner_type.to_string(),
        tier: p.tier.clone().unwrap_or_else(|| "—".into()),
        code: p.referral_code.as_str().to_owned(),
        website: p.website.as_ref().map(|w| w.as_str().to_owned()).unwrap_or_else(|| "—".into()),
        created: minute(p.created_at),
        first_referral: p.first_referral_at.map(minute).unwrap_or_else(|| "—".into()),
        plan,
        contacts: p.contacts.iter().map(|c| (c.name.clone(), c.email.as_str().to_owned())).collect(),
        referrals: list
            .items
            .iter()
            .map(|r| PartnerReferralRow {
                id: r.id.to_string(),
                company: r.company_name.clone(),
                status: r.status.to_string(),
                created: minute(r.created_at),
            })
            .collect(),
        standing,
        history: history
            .iter()
            .rev()
            .map(|h| TierHistoryRow {
                at: minute(h.at),
                from: h.from_tier.clone().unwrap_or_else(|| "none".into()),
                to: h.to_tier.clone().unwrap_or_else(|| "none".into()),
                value: h.measure.describe(h.value),
                actor: h.actor.clone(),
                reason: h.reason.clone(),
            })
            .collect(),
        statuses: SETTABLE.iter().map(|st| (st.as_str(), st.as_str() == chosen_status)).collect(),
        plans: plan_choices,
        forms,
    })
}

async fn page(s: &AppState, who: Session, id: &PartnerId, forms: ManageForms, status: StatusCode) -> Response {
    let (ctx, nav, csrf, may_manage) = who;
    let result = detail(s, &ctx, &nav, may_manage, id, forms).await;
    finish(csrf, result.map(|p| html(status, p)).map_err(|e| (nav, e)), "/admin/partners")
}

/// `GET /admin/partners/{id}`.
pub(super) async fn show(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match signed_in(&s, &headers).await {
        Ok(who) => page(&s, who, &PartnerId::from_string(id), ManageForms::default(), StatusCode::OK).await,
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct StatusForm {
    csrf: String,
    status: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PlanForm {
    csrf: String,
    commission_plan_id: String,
}

async fn checked(s: &AppState, headers: &HeaderMap, token: &str) -> Result<Session, Response> {
    let who = signed_in(s, headers).await?;
    if !csrf_ok(headers, token) {
        let (_, nav, csrf, _) = who;
        return Err(csrf.apply(forbidden_form(nav)));
    }
    Ok(who)
}

/// The outcome of a management form: back to the page, or the page with the error beside the form.
async fn answer(
    s: &AppState,
    who: Session,
    id: &PartnerId,
    result: Result<(), AppError>,
    failed: impl FnOnce(String) -> ManageForms,
) -> Response {
    match result {
        Ok(()) => see_other(&format!("/admin/partners/{id}")),
        Err(AppError::Invalid(fields)) => {
            let message = fields.into_iter().map(|f| f.message).collect::<Vec<_>>().join("; ");
            page(s, who, id, failed(message), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => {
            let (_, nav, csrf, _) = who;
            csrf.apply(error_page(Some(nav), e, &format!("/admin/partners/{id}")))
        }
    }
}

/// `POST /admin/partners/{id}/status`: active, paused or archived.
pub(super) async fn set_status(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<StatusForm>,
) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = PartnerId::from_string(id);
    let typed = f.status.trim().to_owned();
    let result = match SETTABLE.iter().find(|st| st.as_str() == typed) {
        Some(st) => {
            let change = PartnerForUpdate { status: Some(*st), ..Default::default() };
            partners::update(s.store.as_ref(), &who.0, &id, change).await.map(|_| ())
        }
        None => Err(AppError::invalid("status", "must be one of: active, paused, archived")),
    };
    answer(&s, who, &id, result, |e| ManageForms { status: Some(typed.clone()), status_error: Some(e), ..Default::default() }).await
}

/// `POST /admin/partners/{id}/plan`: its own plan, or none (the workspace's default).
pub(super) async fn set_plan(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<PlanForm>) -> Response {
    let who = match checked(&s, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = PartnerId::from_string(id);
    let typed = f.commission_plan_id.trim().to_owned();
    let plan = Some(typed.clone()).filter(|t| !t.is_empty()).map(PlanId::from_string);
    let change = PartnerForUpdate { commission_plan_id: Some(plan), ..Default::default() };
    let result = partners::update(s.store.as_ref(), &who.0, &id, change).await.map(|_| ());
    answer(&s, who, &id, result, |e| ManageForms { plan: Some(typed.clone()), plan_error: Some(e), ..Default::default() }).await
}
