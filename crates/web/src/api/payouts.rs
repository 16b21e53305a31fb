//! Paying partners over HTTP: payout details (admin or that partner), the
//! payer's settings, payout batches and their files, partner statements.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use partnerloop_app::ledger::{CommissionFilter, Payout, PayoutCreated};
use partnerloop_app::payouts::{self, ExportFormat, NachaSettings, PayoutSettings, SepaSettings};
use partnerloop_app::store::Page;
use partnerloop_domain::commission::PayoutId;
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::payout::{AbaRouting, Bic, Iban, PayoutMethod, PayoutMethodInput};
use partnerloop_domain::validation::required_text;
use partnerloop_domain::{Currency, FieldError, Validator};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::commissions::{CommissionOut, commission_out};
use super::dto::{MoneyDto, list_of};
use crate::AppState;
use crate::extract::{ApiJson, Auth, ListParams};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_payout, list_payouts))
        .routes(routes!(get_payout))
        .routes(routes!(export_payout))
        .routes(routes!(mark_paid))
        .routes(routes!(cancel_payout))
        .routes(routes!(put_settings, get_settings))
        .routes(routes!(put_details, get_details))
        .routes(routes!(statement))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutItemOut {
    pub partner_id: String,
    pub partner_name: String,
    pub amount: MoneyDto,
    /// paypal | sepa | ach | credit, or none: no payout details yet (the item shows in the `csv` export only)
    pub method: String,
    pub commission_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedOut {
    pub partner_id: String,
    pub balance: MoneyDto,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutOut {
    pub id: String,
    /// draft | paid | cancelled
    pub status: String,
    pub currency: String,
    pub total: MoneyDto,
    pub commission_count: u64,
    pub items: Vec<PayoutItemOut>,
    /// Partners with a payable balance that this batch left out, and why (on creation only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedOut>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    pub created_by: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub paid_at: Option<jiff::Timestamp>,
    pub reference: Option<String>,
}

async fn payout_out(s: &AppState, ctx: &partnerloop_app::Ctx, p: &Payout, with_ids: bool) -> Result<PayoutOut, ApiError> {
    let ids = if with_ids { payouts::commission_ids(s.store.as_ref(), ctx, &p.id).await? } else { Vec::new() };
    let items = p
        .items
        .iter()
        .map(|i| PayoutItemOut {
            partner_id: i.partner_id.to_string(),
            partner_name: i.partner_name.clone(),
            amount: MoneyDto::from(&i.amount),
            method: i.method.clone(),
            commission_ids: ids
                .iter()
                .find(|(partner, _)| *partner == i.partner_id)
                .map(|(_, c)| c.iter().map(|c| c.to_string()).collect())
                .unwrap_or_default(),
        })
        .collect();
    Ok(PayoutOut {
        id: p.id.to_string(),
        status: p.status.as_str().into(),
        currency: p.currency().code().into(),
        total: MoneyDto::from(&p.total),
        commission_count: p.commission_count,
        items,
        skipped: Vec::new(),
        created_at: p.created_at,
        created_by: p.created_by.clone(),
        paid_at: p.paid_at,
        reference: p.reference.clone(),
    })
}

list_of!(PayoutList, PayoutOut);

#[derive(Debug, Deserialize, ToSchema)]
pub struct PayoutCreate {
    /// ISO 4217 code; the batch takes payable commissions in this currency.
    pub currency: String,
}

/// Make a draft batch of every partner's payable balance in the currency
/// at or above the minimum (admin). 422 when nobody qualifies, with why.
#[utoipa::path(post, path = "/api/v1/payouts", tag = "payouts", request_body = PayoutCreate,
    responses((status = 201, body = PayoutOut), (status = 422, body = Problem)))]
async fn create_payout(State(s): State<AppState>, Auth(ctx): Auth, ApiJson(b): ApiJson<PayoutCreate>) -> Result<Response, ApiError> {
    let currency = Currency::parse("currency", &b.currency).map_err(|e| ApiError::from(vec![e]))?;
    let PayoutCreated { payout, skipped } = payouts::create(s.store.as_ref(), &ctx, currency).await?;
    let skipped_out: Vec<SkippedOut> = skipped
        .iter()
        .map(|k| SkippedOut { partner_id: k.partner_id.to_string(), balance: MoneyDto::from(&k.balance), reason: k.reason.clone() })
        .collect();
    let Some(payout) = payout else {
        let mut errors: Vec<FieldError> = skipped
            .iter()
            .map(|k| FieldError::new(format!("partners.{}", k.partner_id), format!("{} ({})", k.reason, k.balance)))
            .collect();
        if errors.is_empty() {
            errors.push(FieldError::new("currency", format!("nothing is payable in {currency}")));
        }
        return Err(ApiError::from(errors));
    };
    let mut out = payout_out(&s, &ctx, &payout, true).await?;
    out.skipped = skipped_out;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// List payout batches (admin).
#[utoipa::path(get, path = "/api/v1/payouts", tag = "payouts", params(ListParams), responses((status = 200, body = PayoutList)))]
async fn list_payouts(State(s): State<AppState>, Auth(ctx): Auth, Query(list): Query<ListParams>) -> Result<Json<PayoutList>, ApiError> {
    let page = list.page().map_err(|e| ApiError::from(vec![e]))?;
    let result = payouts::list(s.store.as_ref(), &ctx, &page).await?;
    let mut data = Vec::with_capacity(result.items.len());
    for p in &result.items {
        data.push(payout_out(&s, &ctx, p, false).await?);
    }
    Ok(Json(PayoutList { data, next_cursor: crate::extract::encode_cursor(result.next_after) }))
}

/// One payout batch with its items and their commissions (admin).
#[utoipa::path(get, path = "/api/v1/payouts/{id}", tag = "payouts", responses((status = 200, body = PayoutOut), (status = 404, body = Problem)))]
async fn get_payout(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<PayoutOut>, ApiError> {
    let p = payouts::get(s.store.as_ref(), &ctx, &PayoutId::from_string(id)).await?;
    Ok(Json(payout_out(&s, &ctx, &p, true).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// paypal_csv | sepa_xml | nacha | csv
    pub format: Option<String>,
}

/// The batch as a file for PayPal or the bank (admin): each file holds the
/// items whose payout method fits it; `csv` holds all.
#[utoipa::path(get, path = "/api/v1/payouts/{id}/export", tag = "payouts", params(ExportParams),
    responses((status = 200, description = "the file"), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn export_payout(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Query(q): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let format = ExportFormat::parse(q.format.as_deref().unwrap_or(""))?;
    let file = payouts::export(s.store.as_ref(), &s.sealer, &ctx, &PayoutId::from_string(id), format).await?;
    let disposition = format!("attachment; filename=\"{}\"", file.filename);
    Ok(([(header::CONTENT_TYPE, format.content_type().to_owned()), (header::CONTENT_DISPOSITION, disposition)], file.bytes).into_response())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct MarkPaidBody {
    /// The bank's or PayPal's reference for the transfer (optional).
    #[serde(default)]
    pub reference: Option<String>,
}

/// The batch was paid: its commissions become `paid` (admin). The body is
/// optional.
#[utoipa::path(post, path = "/api/v1/payouts/{id}/mark-paid", tag = "payouts", request_body(content = MarkPaidBody, description = "optional"),
    responses((status = 200, body = PayoutOut), (status = 409, body = Problem)))]
async fn mark_paid(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Json<PayoutOut>, ApiError> {
    let b: MarkPaidBody = if raw.iter().all(u8::is_ascii_whitespace) { MarkPaidBody::default() } else { crate::extract::parse_json(&raw)? };
    let p = payouts::mark_paid(s.store.as_ref(), &ctx, &PayoutId::from_string(id), b.reference).await?;
    Ok(Json(payout_out(&s, &ctx, &p, true).await?))
}

/// Cancel a draft batch: its commissions are payable again (admin).
#[utoipa::path(post, path = "/api/v1/payouts/{id}/cancel", tag = "payouts", responses((status = 200, body = PayoutOut), (status = 409, body = Problem)))]
async fn cancel_payout(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<PayoutOut>, ApiError> {
    let p = payouts::cancel(s.store.as_ref(), &ctx, &PayoutId::from_string(id)).await?;
    Ok(Json(payout_out(&s, &ctx, &p, false).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SepaBody {
    pub debtor_name: String,
    pub iban: String,
    #[serde(default)]
    pub bic: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NachaBody {
    /// The receiving bank's 9-digit routing number.
    pub immediate_destination: String,
    /// 10 characters (or 9 digits, given a leading space).
    pub immediate_origin: String,
    pub company_name: String,
    pub company_id: String,
    /// The originating bank's 9-digit routing number.
    pub odfi_routing: String,
    #[serde(default)]
    pub destination_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PayoutSettingsBody {
    /// Smallest balance paid out; smaller ones wait for the next batch.
    pub minimum: MoneyDto,
    #[serde(default)]
    pub sepa: Option<SepaBody>,
    #[serde(default)]
    pub nacha: Option<NachaBody>,
}

fn parse_settings(b: PayoutSettingsBody) -> Result<PayoutSettings, ApiError> {
    let mut v = Validator::new();
    let minimum = v.check(b.minimum.parse_non_negative("minimum"));
    let sepa = b.sepa.map(|p| {
        let name = v.check(required_text("sepa.debtor_name", &p.debtor_name, 70));
        let iban = v.check(Iban::parse("sepa.iban", &p.iban));
        let bic = v.check_opt(p.bic.filter(|b| !b.trim().is_empty()), |b| Bic::parse("sepa.bic", &b));
        Some(SepaSettings { debtor_name: name?, iban: iban?, bic: bic? })
    });
    let nacha = b.nacha.map(|n| {
        let dest = v.check(AbaRouting::parse("nacha.immediate_destination", &n.immediate_destination));
        let origin = n.immediate_origin.trim().to_owned();
        let origin = if origin.len() == 9 { format!(" {origin}") } else { origin };
        let origin_ok = origin.len() == 10 && origin.is_ascii();
        if !origin_ok {
            v.push(FieldError::new("nacha.immediate_origin", "must be 10 characters, or a 9-digit number"));
        }
        let company_name = v.check(required_text("nacha.company_name", &n.company_name, 16));
        let company_id = v.check(required_text("nacha.company_id", &n.company_id, 10));
        let odfi = v.check(AbaRouting::parse("nacha.odfi_routing", &n.odfi_routing));
        let destination_name = n.destination_name.unwrap_or_default();
        Some(NachaSettings {
            immediate_destination: dest?,
            immediate_origin: origin_ok.then_some(origin)?,
            company_name: company_name?,
            company_id: company_id?,
            odfi_routing: odfi?,
            destination_name,
        })
    });
    Ok(v.finish(|| {
        let sepa = match sepa {
            None => None,
            Some(s) => Some(s?),
        };
        let nacha = match nacha {
            None => None,
            Some(n) => Some(n?),
        };
        Some(PayoutSettings { minimum: minimum?, sepa, nacha })
    })?)
}

/// Set the payer: the payout minimum and the bank data the files need (admin).
#[utoipa::path(put, path = "/api/v1/settings/payouts", tag = "payouts", request_body = PayoutSettingsBody,
    responses((status = 200, description = "the settings, bank numbers masked"), (status = 422, body = Problem)))]
async fn put_settings(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(b): ApiJson<PayoutSettingsBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let settings = parse_settings(b)?;
    Ok(Json(payouts::put_settings(s.store.as_ref(), &s.sealer, &ctx, settings).await?))
}

/// The payer's settings, bank numbers masked (admin).
#[utoipa::path(get, path = "/api/v1/settings/payouts", tag = "payouts", responses((status = 200, description = "the settings"), (status = 404, body = Problem)))]
async fn get_settings(State(s): State<AppState>, Auth(ctx): Auth) -> Result<Json<serde_json::Value>, ApiError> {
    payouts::settings_view(s.store.as_ref(), &ctx).await?.map(Json).ok_or(ApiError::App(partnerloop_app::AppError::NotFound))
}

/// Set a partner's payout details (admin, or that partner). The answer
/// shows only the last 4 characters of account numbers.
#[utoipa::path(put, path = "/api/v1/partners/{id}/payout-details", tag = "partners",
    responses((status = 200, description = "the masked details"), (status = 422, body = Problem)))]
async fn put_details(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PayoutMethodInput>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let method = PayoutMethod::parse(b).map_err(ApiError::from)?;
    let masked = payouts::put_details(s.store.as_ref(), &s.sealer, &ctx, &PartnerId::from_string(id), method).await?;
    Ok(Json(serde_json::to_value(masked).unwrap_or_default()))
}

/// A partner's payout details, masked (admin, or that partner).
#[utoipa::path(get, path = "/api/v1/partners/{id}/payout-details", tag = "partners",
    responses((status = 200, description = "the masked details"), (status = 404, body = Problem)))]
async fn get_details(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    payouts::details(s.store.as_ref(), &ctx, &PartnerId::from_string(id))
        .await?
        .map(Json)
        .ok_or(ApiError::App(partnerloop_app::AppError::NotFound))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceOut {
    pub currency: String,
    pub pending: MoneyDto,
    pub payable: MoneyDto,
    pub paid: MoneyDto,
    pub reversed: MoneyDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementOut {
    pub partner_id: String,
    pub partner_name: String,
    /// The payout this statement is for, when one was asked for.
    pub payout_id: Option<String>,
    pub balances: Vec<BalanceOut>,
    /// One line per commission (of the payout, or the most recent).
    pub lines: Vec<StatementLine>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementLine {
    #[serde(flatten)]
    pub commission: CommissionOut,
    pub company_name: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementParams {
    pub payout_id: Option<String>,
}

/// A partner's statement: balances per currency and one line per
/// commission, for one payout or all (admin, or that partner).
#[utoipa::path(get, path = "/api/v1/partners/{id}/statement", tag = "partners", params(ListParams, StatementParams),
    responses((status = 200, body = StatementOut), (status = 404, body = Problem)))]
async fn statement(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Query(list): Query<ListParams>,
    Query(q): Query<StatementParams>,
) -> Result<Json<StatementOut>, ApiError> {
    let page: Page = list.page().map_err(|e| ApiError::from(vec![e]))?;
    let partner_id = PartnerId::from_string(id);
    let balances = partnerloop_app::commissions::balances(s.store.as_ref(), &ctx, &partner_id).await?;
    let partner = s.store.partner(&ctx.workspace_id, &partner_id).await.map_err(partnerloop_app::AppError::from)?;
    let payout_id = q.payout_id.filter(|p| !p.is_empty()).map(PayoutId::from_string);
    let filter = CommissionFilter { partner_id: Some(partner_id.clone()), payout_id: payout_id.clone(), ..Default::default() };
    let result = partnerloop_app::commissions::list(s.store.as_ref(), &ctx, filter, &page).await?;
    let referrals: Vec<_> = result.items.iter().map(|c| c.referral_id.clone()).collect();
    let names = s.store.referral_company_names(&ctx.workspace_id, &referrals).await.map_err(partnerloop_app::AppError::from)?;
    let lines = result
        .items
        .iter()
        .map(|c| StatementLine {
            commission: commission_out(c, ctx.now),
            company_name: names.get(&c.referral_id).cloned().unwrap_or_default(),
        })
        .collect();
    Ok(Json(StatementOut {
        partner_id: partner_id.to_string(),
        partner_name: partner.name,
        payout_id: payout_id.map(|p| p.to_string()),
        balances: balances
            .iter()
            .map(|b| BalanceOut {
                currency: b.currency.code().into(),
                pending: MoneyDto::from(&b.pending),
                payable: MoneyDto::from(&b.payable),
                paid: MoneyDto::from(&b.paid),
                reversed: MoneyDto::from(&b.reversed),
            })
            .collect(),
        lines,
        next_cursor: crate::extract::encode_cursor(result.next_after),
    }))
}
