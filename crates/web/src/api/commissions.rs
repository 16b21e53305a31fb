//! `/api/v1/commissions`: the ledger as partners and admins read it;
//! reversal by an admin.

use axum::Json;
use axum::extract::{Path, Query, State};
use partnerloop_app::commissions;
use partnerloop_app::ledger::{CommissionFilter, LedgerEntry};
use partnerloop_domain::Validator;
use partnerloop_domain::commission::{Commission, CommissionId, CommissionStatus, PayoutId};
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::referral::ReferralId;
use partnerloop_domain::validation::required_text;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{MoneyDto, list_of};
use crate::AppState;
use crate::extract::{ApiJson, Auth, ListParams};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_commissions))
        .routes(routes!(get_commission))
        .routes(routes!(reverse_commission))
        .routes(routes!(record_payment, list_payments))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommissionOut {
    pub id: String,
    pub partner_id: String,
    pub referral_id: String,
    pub plan_id: Option<String>,
    /// accrual | adjustment (a negative correction of a paid commission).
    pub kind: String,
    pub amount: MoneyDto,
    /// pending | payable | paid | reversed, as of now.
    pub status: String,
    /// How the amount was computed, in words.
    pub rule: String,
    #[schema(value_type = String, format = DateTime)]
    pub available_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    /// The payout batch that holds it, once batched.
    pub payout_id: Option<String>,
    /// For an adjustment: the paid commission it corrects.
    pub adjusts: Option<String>,
}

pub fn commission_out(c: &Commission, now: jiff::Timestamp) -> CommissionOut {
    CommissionOut {
        id: c.id.to_string(),
        partner_id: c.partner_id.to_string(),
        referral_id: c.referral_id.to_string(),
        plan_id: c.plan_id.as_ref().map(|p| p.to_string()),
        kind: c.kind.as_str().into(),
        amount: MoneyDto::from(&c.amount),
        status: c.status_at(now).as_str().into(),
        rule: c.rule.clone(),
        available_at: c.available_at,
        created_at: c.created_at,
        payout_id: c.payout_id.as_ref().map(|p| p.to_string()),
        adjusts: c.adjusts.as_ref().map(|p| p.to_string()),
    }
}

list_of!(CommissionList, CommissionOut);

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryOut {
    pub seq: i64,
    /// accrued | released | reversed | adjusted | batched | unbatched | paid
    pub kind: String,
    pub amount: MoneyDto,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    pub actor: String,
    pub reason: String,
    pub payout_id: Option<String>,
}

fn entry_out(e: &LedgerEntry) -> EntryOut {
    EntryOut {
        seq: e.seq,
        kind: e.kind.as_str().into(),
        amount: MoneyDto::from(&e.amount),
        at: e.at,
        actor: e.actor.clone(),
        reason: e.reason.clone(),
        payout_id: e.payout_id.as_ref().map(|p| p.to_string()),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommissionDetail {
    #[serde(flatten)]
    pub commission: CommissionOut,
    /// Every ledger entry of this commission, oldest first.
    pub entries: Vec<EntryOut>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommissionListParams {
    pub partner_id: Option<String>,
    /// pending | payable | paid | reversed (as of now)
    pub status: Option<String>,
    pub referral_id: Option<String>,
    pub payout_id: Option<String>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// List commissions (a partner token: its own only).
#[utoipa::path(get, path = "/api/v1/commissions", tag = "commissions", params(ListParams, CommissionListParams),
    responses((status = 200, body = CommissionList), (status = 422, body = Problem)))]
async fn list_commissions(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(list): Query<ListParams>,
    Query(q): Query<CommissionListParams>,
) -> Result<Json<CommissionList>, ApiError> {
    let mut v = Validator::new();
    let page = v.check(list.page());
    let status = v.check_opt(non_empty(q.status), |s| CommissionStatus::parse("status", &s));
    let (page, status) = v.finish(|| Some((page?, status?)))?;
    let filter = CommissionFilter {
        partner_id: non_empty(q.partner_id).map(PartnerId::from_string),
        referral_id: non_empty(q.referral_id).map(ReferralId::from_string),
        payout_id: non_empty(q.payout_id).map(PayoutId::from_string),
        status,
    };
    let result = commissions::list(s.store.as_ref(), &ctx, filter, &page).await?;
    Ok(Json(CommissionList::from_page(result, |c| commission_out(c, ctx.now))))
}

/// One commission with its ledger entries.
#[utoipa::path(get, path = "/api/v1/commissions/{id}", tag = "commissions",
    responses((status = 200, body = CommissionDetail), (status = 404, body = Problem)))]
async fn get_commission(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<CommissionDetail>, ApiError> {
    let (c, entries) = commissions::get(s.store.as_ref(), &ctx, &CommissionId::from_string(id)).await?;
    Ok(Json(CommissionDetail { commission: commission_out(&c, ctx.now), entries: entries.iter().map(entry_out).collect() }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReverseBody {
    pub reason: String,
}

/// Take a commission back (admin). Before payout it becomes `reversed`;
/// once paid, a negative adjustment is booked and returned, and the next
/// payout nets it out.
#[utoipa::path(post, path = "/api/v1/commissions/{id}/reverse", tag = "commissions", request_body = ReverseBody,
    responses((status = 200, body = CommissionOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn reverse_commission(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReverseBody>,
) -> Result<Json<CommissionOut>, ApiError> {
    let reason = required_text("reason", &b.reason, 1000).map_err(|e| ApiError::from(vec![e]))?;
    let c = commissions::reverse(s.store.as_ref(), &ctx, &CommissionId::from_string(id), reason).await?;
    Ok(Json(commission_out(&c, ctx.now)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PaymentBody {
    /// What the customer paid.
    pub amount: MoneyDto,
    /// When (RFC 3339 or YYYY-MM-DD, UTC).
    pub paid_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentOut {
    pub id: String,
    pub referral_id: String,
    pub amount: MoneyDto,
    #[schema(value_type = String, format = DateTime)]
    pub paid_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    /// The commission this payment earned (recurring plans), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commission: Option<CommissionOut>,
    /// Why it earned none, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn payment_out(p: &partnerloop_app::ledger::Payment) -> PaymentOut {
    PaymentOut {
        id: p.id.to_string(),
        referral_id: p.referral_id.to_string(),
        amount: MoneyDto::from(&p.amount),
        paid_at: p.paid_at,
        created_at: p.created_at,
        commission: None,
        note: None,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentList {
    pub data: Vec<PaymentOut>,
}

/// Record a customer payment on a won referral (admin). Under a recurring
/// plan it earns the plan's rate of the payment.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/payments", tag = "commissions", request_body = PaymentBody,
    responses((status = 201, body = PaymentOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn record_payment(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PaymentBody>,
) -> Result<(axum::http::StatusCode, Json<PaymentOut>), ApiError> {
    let mut v = Validator::new();
    let amount = v.check(b.amount.parse_positive("amount"));
    let paid_at = v.check(partnerloop_domain::validation::parse_time("paid_at", &b.paid_at));
    let (amount, paid_at) = v.finish(|| Some((amount?, paid_at?)))?;
    let r = partnerloop_app::payments::record(s.store.as_ref(), &ctx, &ReferralId::from_string(id), amount, paid_at).await?;
    let mut out = payment_out(&r.payment);
    out.commission = r.commission.as_ref().map(|c| commission_out(c, ctx.now));
    out.note = r.note;
    Ok((axum::http::StatusCode::CREATED, Json(out)))
}

/// The customer payments of a referral (admin, or its partner).
#[utoipa::path(get, path = "/api/v1/referrals/{id}/payments", tag = "commissions", responses((status = 200, body = PaymentList), (status = 404, body = Problem)))]
async fn list_payments(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<PaymentList>, ApiError> {
    let list = partnerloop_app::payments::list(s.store.as_ref(), &ctx, &ReferralId::from_string(id)).await?;
    Ok(Json(PaymentList { data: list.iter().map(payment_out).collect() }))
}
