//! The admin pages: referrals (with the review queue), a
//! referral with its decision and timeline and the approve / reject forms,
//! partners with search (one partner's page is `partner.rs`), and the staff
//! user's own account.
//! Each handler needs a staff session (else 303 to `/login`) and calls the
//! API's use cases with the staff user's `Ctx`.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use partnerloop_app::store::{Page, PartnerFilter, ReferralFilter};
use partnerloop_app::{AppError, Ctx, partners, referrals, staff};
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::referral::{ReferralId, ReferralStatus};
use serde::Deserialize;

use super::pages::{self, Nav, error_page, minute};
use super::{Csrf, csrf_ok, see_other, staff_of};
use crate::AppState;
use crate::portal::html;

const PAGE: u32 = 50;

/// A signed-in staff user: its context, the navigation bar, the CSRF token, and whether it may manage.
pub(super) type Session = (Ctx, Nav, Csrf, bool);

/// The staff user, its context and the page's CSRF token; or the redirect to `/login`.
pub(super) async fn signed_in(s: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    let Some(h) = staff_of(s, headers).await else {
        return Err(see_other("/login"));
    };
    let csrf = Csrf::of(s, headers);
    let nav = Nav::of(&h, &csrf.token);
    Ok((h.ctx(Timestamp::now()), nav, csrf, h.role.may_manage()))
}

/// Renders a page result, with the CSRF cookie when it is new.
pub(super) fn finish(csrf: Csrf, page: Result<Response, (Nav, AppError)>, back: &str) -> Response {
    match page {
        Ok(r) => csrf.apply(r),
        Err((nav, e)) => csrf.apply(error_page(Some(nav), e, back)),
    }
}

pub(super) fn count(rows: &[(String, i64)], key: &str) -> i64 {
    rows.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n)
}

pub(super) fn money(currency: &str, minor: i64) -> String {
    match partnerloop_domain::money::Currency::parse("currency", currency) {
        Ok(c) => partnerloop_domain::Money::from_minor(minor, c).to_string(),
        Err(_) => format!("{minor} {currency} (minor units)"),
    }
}

pub(super) fn nav_clone(n: &Nav) -> Nav {
    Nav { email: n.email.clone(), role: n.role.clone(), csrf: n.csrf.clone() }
}

/// The names of the partners of some referrals, in one query.
async fn partner_names(s: &AppState, ctx: &Ctx, ids: impl Iterator<Item = PartnerId>) -> Result<HashMap<PartnerId, String>, AppError> {
    let mut ids: Vec<PartnerId> = ids.collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids.dedup();
    Ok(s.store.partner_names(&ctx.workspace_id, &ids).await?)
}

#[derive(Debug, Deserialize)]
pub(super) struct ReferralQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: Option<String>,
}

/// `GET /admin/referrals?status=&after=`: the list; with
/// `status=pending_review` it is the review queue, oldest first, with ages.
pub(super) async fn referrals(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<ReferralQuery>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let page = async {
        let status = match q.status.trim() {
            "" => None,
            other => Some(ReferralStatus::parse("status", other).map_err(|e| AppError::Invalid(vec![e]))?),
        };
        let filter = ReferralFilter { status, partner_id: None };
        let list = referrals::list(s.store.as_ref(), &ctx, filter, &Page { limit: PAGE, after: q.after.clone() }).await?;
        let names = partner_names(&s, &ctx, list.items.iter().map(|r| r.partner_id.clone())).await?;
        let review = status == Some(ReferralStatus::PendingReview);
        let rows = list
            .items
            .iter()
            .map(|r| pages::ReferralRow {
                id: r.id.to_string(),
                company: r.company_name.clone(),
                domain: r.company_domain.as_str().to_owned(),
                partner_id: r.partner_id.to_string(),
                partner: names.get(&r.partner_id).cloned().unwrap_or_default(),
                status: r.status.to_string(),
                created: minute(r.created_at),
                age: pages::age(r.created_at, ctx.now),
            })
            .collect();
        let status_text = status.map(|s| s.as_str()).unwrap_or("");
        Ok::<_, AppError>(pages::Referrals {
            nav: nav_clone(&nav),
            heading: if review { "Review queue".into() } else { "Referrals".into() },
            statuses: ReferralStatus::ALL.iter().map(|st| (st.as_str().to_owned(), st.as_str() == status_text)).collect(),
            show_age: review,
            rows,
            next: list.next_after.map(|a| format!("/admin/referrals?status={status_text}&after={a}")),
        })
    }
    .await;
    finish(csrf, page.map(|p| html(StatusCode::OK, p)).map_err(|e| (nav, e)), "/admin/referrals")
}

/// `GET /admin/referrals/{id}`: one referral, its decision and timeline.
pub(super) async fn referral(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (ctx, nav, csrf, may_manage) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = ReferralId::from_string(id);
    referral_page(&s, (ctx, nav, csrf, may_manage), &id, pages::ActionForms::default(), StatusCode::OK).await
}

/// The referral page, with what a failed action form asks to correct.
pub(super) async fn referral_page(s: &AppState, who: Session, id: &ReferralId, forms: pages::ActionForms, status: StatusCode) -> Response {
    let (ctx, nav, csrf, may_manage) = who;
    let ctx = &ctx;
    let page = async {
        let r = referrals::get(s.store.as_ref(), ctx, id).await?;
        let partner = partners::get(s.store.as_ref(), ctx, &r.partner_id).await?.name;
        let timeline = referrals::timeline(s.store.as_ref(), ctx, id).await?;
        let mut forms = forms;
        if forms.currency.is_empty() {
            forms.currency = match r.amount.or(r.estimated_value) {
                Some(m) => m.currency().code().to_owned(),
                None => s.store.workspace(&ctx.workspace_id).await?.currency,
            };
        }
        let protected = r.status == ReferralStatus::Approved && r.protection.is_some_and(|p| p.expires_at > ctx.now);
        let movable = matches!(r.status, ReferralStatus::Approved | ReferralStatus::Won | ReferralStatus::Lost);
        Ok::<_, AppError>(pages::ReferralDetail {
            nav: nav_clone(&nav),
            id: r.id.to_string(),
            company: r.company_name.clone(),
            status: r.status.to_string(),
            partner_id: r.partner_id.to_string(),
            partner,
            domain: r.company_domain.as_str().to_owned(),
            contact: format!(
                "{} <{}>{}",
                r.contact_name,
                r.contact_email.as_str(),
                r.contact_title.as_deref().map(|t| format!(", {t}")).unwrap_or_default()
            ),
            context: r.context.clone().unwrap_or_default(),
            estimated: r.estimated_value.map(|m| m.to_string()).unwrap_or_else(|| "—".into()),
            amount: r.amount.map(|m| m.to_string()).unwrap_or_else(|| "—".into()),
            channel: r.channel.to_string(),
            created: minute(r.created_at),
            protection: r
                .protection
                .map(|p| format!("{} to {}", minute(p.starts_at), minute(p.expires_at)))
                .unwrap_or_else(|| "none".into()),
            stage: r.stage.map(|st| st.to_string()).unwrap_or_else(|| "—".into()),
            stages: partnerloop_domain::deal::Stage::ALL
                .iter()
                .map(|st| (st.as_str().to_owned(), forms.stage.as_deref().map_or(r.stage == Some(*st), |f| f == st.as_str())))
                .collect(),
            outcome: r.decision.outcome.to_string(),
            decided: format!("decided {} by {}", minute(r.decision.decided_at), r.decision.decided_by),
            reasons: r
                .decision
                .reasons
                .iter()
                .map(|x| pages::ReasonRow {
                    rule: x.rule.to_string(),
                    detail: x.detail.clone(),
                    conflicting: x.conflicting_id.clone().unwrap_or_default(),
                })
                .collect(),
            reviewable: r.status == ReferralStatus::PendingReview,
            extendable: may_manage && protected,
            movable: may_manage && movable,
            may_manage,
            forms,
            timeline: timeline
                .into_iter()
                .map(|e| pages::EventRow { at: minute(e.at), kind: e.kind, actor: e.actor, summary: e.summary })
                .collect(),
        })
    }
    .await;
    finish(csrf, page.map(|p| html(status, p)).map_err(|e| (nav, e)), "/admin/referrals")
}

#[derive(Debug, Deserialize)]
pub(super) struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    reason: String,
}

pub(super) fn forbidden_form(nav: Nav) -> Response {
    error_page(Some(nav), AppError::Forbidden("the form's security token is missing or stale; reload the page".into()), "/admin")
}

/// `POST /admin/referrals/{id}/approve`.
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
    let id = ReferralId::from_string(id);
    let note = Some(f.note.trim().to_owned()).filter(|n| !n.is_empty());
    let back = format!("/admin/referrals/{id}");
    match referrals::approve(s.store.as_ref(), &ctx, &id, note).await {
        Ok(_) => see_other(&back),
        Err(e) => csrf.apply(error_page(Some(nav), e, &back)),
    }
}

/// `POST /admin/referrals/{id}/reject` (a reason is required).
pub(super) async fn reject(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<DecisionForm>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&headers, &f.csrf) {
        return csrf.apply(forbidden_form(nav));
    }
    let id = ReferralId::from_string(id);
    let back = format!("/admin/referrals/{id}");
    let reason = f.reason.trim();
    if reason.is_empty() {
        return csrf.apply(error_page(Some(nav), AppError::invalid("reason", "is required to reject"), &back));
    }
    match referrals::reject(s.store.as_ref(), &ctx, &id, reason.to_owned()).await {
        Ok(_) => see_other(&back),
        Err(e) => csrf.apply(error_page(Some(nav), e, &back)),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct PartnerQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: Option<String>,
}

fn partner_row(p: &partnerloop_domain::partner::Partner) -> pages::PartnerRow {
    pages::PartnerRow {
        id: p.id.to_string(),
        name: p.name.clone(),
        kind: p.partner_type.to_string(),
        status: p.status.to_string(),
        tier: p.tier.clone().unwrap_or_default(),
        contacts: p.contacts.iter().map(|c| c.email.as_str()).collect::<Vec<_>>().join(", "),
        created: minute(p.created_at),
    }
}

/// `GET /admin/partners?q=`: every partner, or those whose name or contact email contains `q`.
pub(super) async fn partners(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<PartnerQuery>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let page = async {
        let needle = q.q.trim();
        let (rows, next) = if needle.is_empty() {
            let list =
                partners::list(s.store.as_ref(), &ctx, PartnerFilter::default(), &Page { limit: PAGE, after: q.after.clone() }).await?;
            (list.items.iter().map(partner_row).collect(), list.next_after.map(|a| format!("/admin/partners?after={a}")))
        } else {
            (staff::search_partners(s.store.as_ref(), &ctx, needle, 100).await?.iter().map(partner_row).collect(), None)
        };
        Ok::<_, AppError>(pages::Partners { nav: nav_clone(&nav), q: needle.to_owned(), rows, next })
    }
    .await;
    finish(csrf, page.map(|p| html(StatusCode::OK, p)).map_err(|e| (nav, e)), "/admin/partners")
}

/// `GET /admin/account`: set or change one's own password.
pub(super) async fn account(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    account_page(&s, &ctx, nav, csrf, StatusCode::OK, None).await
}

async fn account_page(s: &AppState, ctx: &Ctx, nav: Nav, csrf: Csrf, status: StatusCode, message: Option<&str>) -> Response {
    let user_id = match &ctx.actor {
        partnerloop_app::Actor::Staff { user_id, .. } => user_id.clone(),
        _ => return see_other("/login"),
    };
    match s.store.staff_user(&ctx.workspace_id, &user_id).await {
        Ok(u) => csrf.apply(html(status, pages::Account { nav, has_password: u.has_password, message })),
        Err(e) => csrf.apply(error_page(Some(nav), e.into(), "/admin")),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// `POST /admin/account`: sets the password (argon2id, off the async workers).
pub(super) async fn set_password(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<PasswordForm>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&headers, &f.csrf) {
        return csrf.apply(forbidden_form(nav));
    }
    let password = f.password;
    let hashed = tokio::task::spawn_blocking(move || staff::hash_new_password(&password))
        .await
        .unwrap_or_else(|_| Err(AppError::invalid("password", "could not be hashed")));
    let result = match hashed {
        Ok(hash) => staff::set_own_password(s.store.as_ref(), &ctx, &hash).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => account_page(&s, &ctx, nav, csrf, StatusCode::OK, Some("Your password is set.")).await,
        Err(e) => csrf.apply(error_page(Some(nav), e, "/admin/account")),
    }
}
