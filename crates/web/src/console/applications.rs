//! `/admin/applications`: the partner applications queue, best score
//! first with each criterion's score, one application with its answers,
//! and the approve / reject forms (admins and managers; the use case
//! decides, other roles read).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::AppError;
use partnerloop_app::applications::{self, Application};
use partnerloop_domain::application::ApplicationStatus;
use partnerloop_domain::partner::Partner;
use serde::Deserialize;

use super::admin::{Session, finish, forbidden_form, nav_clone, signed_in};
use super::pages::{Nav, error_page, minute};
use super::{csrf_ok, see_other};
use crate::AppState;
use crate::portal::html;

/// One application in the queue.
pub(crate) struct ApplicationRow {
    pub id: String,
    pub company: String,
    pub kind: String,
    pub contact: String,
    pub total: u32,
    pub audience: u32,
    pub deal_size: u32,
    pub credibility: u32,
    pub responsiveness: u32,
    pub applied: String,
}

#[derive(Template)]
#[template(path = "admin_applications.html")]
struct ListPage {
    nav: Nav,
    status: String,
    statuses: Vec<(String, bool)>,
    rows: Vec<ApplicationRow>,
}

/// A criterion's line of the breakdown.
pub(crate) struct CriterionRow {
    pub name: &'static str,
    pub score: u32,
    pub weight: u32,
}

#[derive(Template)]
#[template(path = "admin_application.html")]
struct DetailPage {
    nav: Nav,
    id: String,
    partner_id: String,
    company: String,
    kind: String,
    website: String,
    contacts: Vec<(String, String)>,
    status: String,
    pending: bool,
    may_manage: bool,
    total: u32,
    criteria: Vec<CriterionRow>,
    answers: Vec<(&'static str, String)>,
    message: String,
    decision: Option<String>,
    reason: String,
    reason_error: Option<String>,
}

fn row(a: &Application, p: &Partner) -> ApplicationRow {
    ApplicationRow {
        id: a.id.clone(),
        company: p.name.clone(),
        kind: p.partner_type.to_string(),
        contact: p.contacts.first().map(|c| format!("{} <{}>", c.name, c.email.as_str())).unwrap_or_default(),
        total: a.score.total,
        audience: a.score.audience,
        deal_size: a.score.deal_size,
        credibility: a.score.credibility,
        responsiveness: a.score.responsiveness,
        applied: minute(a.created_at),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ListQuery {
    status: String,
}

/// `GET /admin/applications?status=`: pending ones (the queue) unless another status is asked for.
pub(super) async fn list(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let page = async {
        let status = match q.status.trim() {
            "" => ApplicationStatus::Pending,
            other => ApplicationStatus::parse("status", other).map_err(|e| AppError::Invalid(vec![e]))?,
        };
        let rows = applications::list(s.store.as_ref(), &ctx, status, 200).await?.iter().map(|(a, p)| row(a, p)).collect();
        Ok::<_, AppError>(ListPage {
            nav: nav_clone(&nav),
            status: status.to_string(),
            statuses: ApplicationStatus::ALL.iter().map(|st| (st.as_str().to_owned(), *st == status)).collect(),
            rows,
        })
    }
    .await;
    finish(csrf, page.map(|p| html(StatusCode::OK, p)).map_err(|e| (nav, e)), "/admin")
}

/// The application page, with the reject form's reason and its error when that form failed.
async fn detail_page(s: &AppState, who: Session, id: &str, reject: (String, Option<String>), status: StatusCode) -> Response {
    let (ctx, nav, csrf, may_manage) = who;
    let ctx = &ctx;
    let page = async {
        let (a, p) = applications::get(s.store.as_ref(), ctx, id).await?;
        let w = a.weights;
        Ok::<_, AppError>(DetailPage {
            nav: nav_clone(&nav),
            id: a.id.clone(),
            partner_id: p.id.to_string(),
            company: p.name.clone(),
            kind: p.partner_type.to_string(),
            website: p.website.as_ref().map(|w| w.as_str().to_owned()).unwrap_or_else(|| "—".into()),
            contacts: p.contacts.iter().map(|c| (c.name.clone(), c.email.as_str().to_owned())).collect(),
            status: a.status.to_string(),
            pending: a.status == ApplicationStatus::Pending,
            may_manage,
            total: a.score.total,
            criteria: vec![
                CriterionRow { name: "Audience overlap", score: a.score.audience, weight: w.audience },
                CriterionRow { name: "Deal-size alignment", score: a.score.deal_size, weight: w.deal_size },
                CriterionRow { name: "Credibility", score: a.score.credibility, weight: w.credibility },
                CriterionRow { name: "Responsiveness", score: a.score.responsiveness, weight: w.responsiveness },
            ],
            answers: vec![
                ("Industries served", a.industries.join(", ")),
                ("Typical client deal", a.typical_deal.to_string()),
                ("Years in business", a.years_in_business.to_string()),
                ("Clients today", a.client_count.to_string()),
                ("Introductions per quarter", a.referrals_per_quarter.to_string()),
                ("Answers about a lead", a.response_time.label().to_owned()),
                ("Applied", minute(a.created_at)),
            ],
            message: a.message.clone().unwrap_or_default(),
            decision: a.decided_at.map(|t| {
                format!("{} {} by {}", a.status, minute(t), a.decided_by.clone().unwrap_or_default())
                    + &a.decision_reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
            }),
            reason: reject.0,
            reason_error: reject.1,
        })
    }
    .await;
    finish(csrf, page.map(|p| html(status, p)).map_err(|e| (nav, e)), "/admin/applications")
}

/// `GET /admin/applications/{id}`.
pub(super) async fn detail(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let who = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    detail_page(&s, who, &id, (String::new(), None), StatusCode::OK).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DecisionForm {
    csrf: String,
    note: String,
    reason: String,
}

/// `POST /admin/applications/{id}/approve`: the partner becomes active and is welcomed by email.
pub(super) async fn approve(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&headers, &f.csrf) {
        return csrf.apply(forbidden_form(nav));
    }
    let back = format!("/admin/applications/{id}");
    match applications::approve(s.store.as_ref(), &ctx, &id, Some(f.note)).await {
        Ok(a) => see_other(&format!("/admin/partners/{}", a.partner_id)),
        Err(e) => csrf.apply(error_page(Some(nav), e, &back)),
    }
}

/// `POST /admin/applications/{id}/reject` (a reason is required).
pub(super) async fn reject(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<DecisionForm>) -> Response {
    let (ctx, nav, csrf, may_manage) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&headers, &f.csrf) {
        return csrf.apply(forbidden_form(nav));
    }
    match applications::reject(s.store.as_ref(), &ctx, &id, &f.reason).await {
        Ok(_) => see_other(&format!("/admin/applications/{id}")),
        Err(AppError::Invalid(errors)) => {
            let why = errors.into_iter().map(|e| e.message).collect::<Vec<_>>().join("; ");
            detail_page(&s, (ctx, nav, csrf, may_manage), &id, (f.reason, Some(why)), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => csrf.apply(error_page(Some(nav), e, &format!("/admin/applications/{id}"))),
    }
}
