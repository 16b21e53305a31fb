//! `/admin/payouts`: payout batches for finance staff, managers and admins.
//!
//! Rules: every page and form calls the payout use cases with the staff
//! user's `Ctx`, which accept admin, manager and finance (`Ctx::require_payouts`);
//! a sales user gets their 403 page. POSTs need the CSRF token. Exports are
//! downloads (`Content-Disposition: attachment`) of the use case's file.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use partnerloop_app::payouts::{self, ExportFormat};
use partnerloop_app::{AppError, Ctx};
use partnerloop_domain::Currency;
use partnerloop_domain::commission::PayoutId;
use partnerloop_domain::commission::PayoutStatus;
use serde::Deserialize;

use super::admin::{finish, forbidden_form, nav_clone, signed_in};
use super::pages::{self, Nav, error_page, minute};
use super::{Csrf, csrf_ok, see_other};
use crate::AppState;
use crate::portal::html;

pub(crate) const FORMATS: [&str; 4] = ["csv", "paypal_csv", "sepa_xml", "nacha"];

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    after: Option<String>,
}

/// `GET /admin/payouts`: the batches, newest first, and the form for a new one.
pub(super) async fn list(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    list_page(&s, &ctx, nav, csrf, q.after, StatusCode::OK, pages::PayoutMessage::default()).await
}

async fn list_page(
    s: &AppState,
    ctx: &Ctx,
    nav: Nav,
    csrf: Csrf,
    after: Option<String>,
    status: StatusCode,
    message: pages::PayoutMessage,
) -> Response {
    let page = async {
        let list = payouts::list(s.store.as_ref(), ctx, &pages::page(50, after)).await?;
        let mut message = message;
        if message.currency.is_empty() {
            message.currency = s.store.workspace(&ctx.workspace_id).await?.currency;
        }
        Ok::<_, AppError>(pages::Payouts {
            nav: nav_clone(&nav),
            rows: list
                .items
                .iter()
                .map(|p| pages::PayoutRow {
                    id: p.id.to_string(),
                    status: p.status.to_string(),
                    total: p.total.to_string(),
                    partners: p.items.len(),
                    commissions: p.commission_count,
                    created: minute(p.created_at),
                })
                .collect(),
            next: list.next_after.map(|a| format!("/admin/payouts?after={a}")),
            message,
        })
    }
    .await;
    finish(csrf, page.map(|p| html(status, p)).map_err(|e| (nav, e)), "/admin")
}

#[derive(Debug, Deserialize)]
pub(super) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    currency: String,
}

/// `POST /admin/payouts`: a draft batch of everything payable in one currency.
pub(super) async fn create(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<CreateForm>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&headers, &f.csrf) {
        return csrf.apply(forbidden_form(nav));
    }
    let mut message = pages::PayoutMessage { currency: f.currency.trim().to_owned(), ..Default::default() };
    let currency = match Currency::parse("currency", f.currency.trim()) {
        Ok(c) => c,
        Err(e) => {
            message.currency_error = Some(e.message);
            return list_page(&s, &ctx, nav, csrf, None, StatusCode::UNPROCESSABLE_ENTITY, message).await;
        }
    };
    match payouts::create(s.store.as_ref(), &ctx, currency).await {
        Ok(created) => match created.payout {
            Some(p) => see_other(&format!("/admin/payouts/{}", p.id)),
            None => {
                message.notice = Some(format!(
                    "No partner has a payable balance in {currency} at or above the minimum: nothing was made.{}",
                    if created.skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" {} partner(s) were left for later.", created.skipped.len())
                    }
                ));
                list_page(&s, &ctx, nav, csrf, None, StatusCode::OK, message).await
            }
        },
        Err(e) => csrf.apply(error_page(Some(nav), e, "/admin/payouts")),
    }
}

/// `GET /admin/payouts/{id}`: a batch, its items, its exports and the mark-paid form.
pub(super) async fn detail(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let page = async {
        let p = payouts::get(s.store.as_ref(), &ctx, &PayoutId::from_string(id)).await?;
        Ok::<_, AppError>(pages::PayoutDetail {
            nav: nav_clone(&nav),
            id: p.id.to_string(),
            status: p.status.to_string(),
            total: p.total.to_string(),
            created: format!("{} by {}", minute(p.created_at), p.created_by),
            paid: p
                .paid_at
                .map(|t| format!("{}{}", minute(t), p.reference.as_deref().map(|r| format!(", reference {r}")).unwrap_or_default())),
            draft: p.status == PayoutStatus::Draft,
            exportable: p.status != PayoutStatus::Cancelled,
            formats: FORMATS.to_vec(),
            items: p
                .items
                .iter()
                .map(|i| pages::PayoutItemRow {
                    partner_id: i.partner_id.to_string(),
                    partner: i.partner_name.clone(),
                    amount: i.amount.to_string(),
                    commissions: i.commission_count,
                    method: i.method.clone(),
                })
                .collect(),
        })
    }
    .await;
    finish(csrf, page.map(|p| html(StatusCode::OK, p)).map_err(|e| (nav, e)), "/admin/payouts")
}

/// `GET /admin/payouts/{id}/export/{format}`: the file.
pub(super) async fn export(State(s): State<AppState>, headers: HeaderMap, Path((id, format)): Path<(String, String)>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let back = format!("/admin/payouts/{id}");
    let file = match ExportFormat::parse(&format) {
        Ok(f) => payouts::export(s.store.as_ref(), &s.sealer, &ctx, &PayoutId::from_string(id), f).await,
        Err(e) => Err(e),
    };
    match file {
        Ok(file) => {
            let disposition = format!("attachment; filename=\"{}\"", file.filename);
            let headers = [
                (header::CONTENT_TYPE, file.format.content_type().to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ];
            (headers, file.bytes).into_response()
        }
        Err(e) => csrf.apply(error_page(Some(nav), e, &back)),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct PaidForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reference: String,
}

/// `POST /admin/payouts/{id}/paid`: the transfer went out.
pub(super) async fn mark_paid(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<PaidForm>) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&headers, &f.csrf) {
        return csrf.apply(forbidden_form(nav));
    }
    let back = format!("/admin/payouts/{id}");
    let reference = Some(f.reference.trim().to_owned()).filter(|r| !r.is_empty());
    match payouts::mark_paid(s.store.as_ref(), &ctx, &PayoutId::from_string(id), reference).await {
        Ok(_) => see_other(&back),
        Err(e) => csrf.apply(error_page(Some(nav), e, &back)),
    }
}
