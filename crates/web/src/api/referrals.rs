//! `/api/v1/referrals`: deal registrations, their decisions, review,
//! protection and pipeline stages. A partner token sees only its own
//! referrals, and of a decision only what does not reveal other partners
//! or the vendor's own records.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use partnerloop_app::referrals::{self, DisputeResolution, ReferralForCreate};
use partnerloop_app::store::{ReferralFilter, Registered, TimelineEvent};
use partnerloop_app::{Actor, Ctx};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::Stage;
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::referral::{Channel, Referral, ReferralId, ReferralStatus};
use partnerloop_domain::rules::redact_for_partner;
use partnerloop_domain::validation::{optional_text, required_text};
use partnerloop_domain::{Email, FieldError, Validator};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::deals::CompanyDto;
use super::dto::{MoneyDto, list_of};
use crate::AppState;
use crate::extract::{ApiJson, Auth, ListParams};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_referral, list_referrals))
        .routes(routes!(get_referral))
        .routes(routes!(referral_timeline))
        .routes(routes!(approve_referral))
        .routes(routes!(reject_referral))
        .routes(routes!(extend_referral))
        .routes(routes!(change_stage))
        .routes(routes!(dispute_referral))
        .routes(routes!(resolve_dispute))
        .routes(routes!(review_queue))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ContactDto {
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReferralCreate {
    /// Required with an admin token; a partner token implies its own partner.
    #[serde(default)]
    pub partner_id: Option<String>,
    pub company: CompanyDto,
    pub contact: ContactDto,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub estimated_value: Option<MoneyDto>,
}

impl ReferralCreate {
    fn parse(self, channel: Channel) -> Result<ReferralForCreate, ApiError> {
        let mut v = Validator::new();
        let company_name = v.check(required_text("company.name", &self.company.name, 200));
        let domain = v.check_opt(self.company.domain.filter(|d| !d.trim().is_empty()), |d| CompanyDomain::parse("company.domain", &d));
        let contact_name = v.check(required_text("contact.name", &self.contact.name, 200));
        let contact_email = v.check(Email::parse("contact.email", &self.contact.email));
        let title = v.check(optional_text("contact.title", self.contact.title.as_deref(), 200));
        let context = v.check(optional_text("context", self.context.as_deref(), 10_000));
        let estimated = v.check_opt(self.estimated_value, |m| m.parse_non_negative("estimated_value"));
        Ok(v.finish(|| {
            Some(ReferralForCreate {
                partner_id: self.partner_id.filter(|p| !p.is_empty()).map(PartnerId::from_string),
                company_name: company_name?,
                company_domain: domain?,
                contact_name: contact_name?,
                contact_email: contact_email?,
                contact_title: title?,
                context: context?,
                estimated_value: estimated?,
                channel,
            })
        })?)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonOut {
    /// active_referral_other_partner | existing_customer | off_limits_account | open_direct_opportunity | possible_duplicate | no_conflict
    pub rule: String,
    pub detail: String,
    pub conflicting_id: Option<String>,
    /// Name similarity of a possible duplicate (admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionOut {
    /// approved | review | rejected
    pub outcome: String,
    pub reasons: Vec<ReasonOut>,
    #[schema(value_type = String, format = DateTime)]
    pub decided_at: jiff::Timestamp,
    pub decided_by: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProtectionOut {
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: jiff::Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactOut {
    pub name: String,
    pub email: String,
    pub title: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralOut {
    pub id: String,
    pub partner_id: String,
    /// pending_review | approved | rejected | won | lost | expired | withdrawn
    pub status: String,
    pub channel: String,
    pub company: CompanyDto,
    pub contact: ContactOut,
    pub context: Option<String>,
    pub estimated_value: Option<MoneyDto>,
    pub decision: DecisionOut,
    pub protection: Option<ProtectionOut>,
    pub stage: Option<String>,
    /// The stage as partners read it (configurable per workspace).
    pub stage_label: Option<String>,
    pub deal_id: Option<String>,
    /// The won (or lost) amount.
    pub amount: Option<MoneyDto>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<jiff::Timestamp>,
    /// open | upheld | overturned, when the partner disputed a rejection.
    pub dispute: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
}

/// How a partner sees who acted: never another principal's id.
fn actor_for(ctx: &Ctx, actor: &str) -> String {
    match &ctx.actor {
        Actor::Partner { partner_id, .. } => {
            if actor == format!("partner:{partner_id}") {
                "you".into()
            } else if actor.starts_with("system:") || actor == "rules" {
                "partnerloop".into()
            } else {
                "partner manager".into()
            }
        }
        _ => actor.to_owned(),
    }
}

pub fn referral_out(ctx: &Ctx, r: &Referral, labels: &[(Stage, String)]) -> ReferralOut {
    let partner_view = ctx.partner_scope().is_some();
    let reasons = if partner_view { redact_for_partner(&r.decision.reasons) } else { r.decision.reasons.clone() };
    ReferralOut {
        id: r.id.to_string(),
        partner_id: r.partner_id.to_string(),
        status: r.status.as_str().to_owned(),
        channel: r.channel.as_str().to_owned(),
        company: CompanyDto { name: r.company_name.clone(), domain: Some(r.company_domain.as_str().to_owned()) },
        contact: ContactOut { name: r.contact_name.clone(), email: r.contact_email.to_string(), title: r.contact_title.clone() },
        context: r.context.clone(),
        estimated_value: r.estimated_value.as_ref().map(MoneyDto::from),
        decision: DecisionOut {
            outcome: r.decision.outcome.as_str().to_owned(),
            reasons: reasons
                .into_iter()
                .map(|x| ReasonOut { rule: x.rule.as_str().to_owned(), detail: x.detail, conflicting_id: x.conflicting_id, score: x.score })
                .collect(),
            decided_at: r.decision.decided_at,
            decided_by: actor_for(ctx, &r.decision.decided_by),
        },
        protection: r.protection.map(|p| ProtectionOut { starts_at: p.starts_at, expires_at: p.expires_at }),
        stage: r.stage.map(|s| s.as_str().to_owned()),
        stage_label: r.stage.map(|s| partnerloop_app::pipeline::label_of(labels, s)),
        deal_id: if partner_view { None } else { r.deal_id.as_ref().map(ToString::to_string) },
        amount: r.amount.as_ref().map(MoneyDto::from),
        closed_at: r.closed_at,
        dispute: r.dispute.map(|d| d.as_str().to_owned()),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

list_of!(ReferralList, ReferralOut);

async fn with_labels(s: &AppState, ctx: &Ctx, r: &Referral) -> Result<ReferralOut, ApiError> {
    let labels = partnerloop_app::pipeline::labels(s.store.as_ref(), ctx).await?;
    Ok(referral_out(ctx, r, &labels))
}

/// Register a referral. 201 for a new registration whatever the decision;
/// 200 when this partner already holds an active registration of the
/// account (that one is returned, nothing new is created).
#[utoipa::path(post, path = "/api/v1/referrals", tag = "referrals", request_body = ReferralCreate,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried POST safe")),
    responses((status = 201, body = ReferralOut), (status = 200, body = ReferralOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn register_referral(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(body): ApiJson<ReferralCreate>,
) -> Result<(StatusCode, Json<ReferralOut>), ApiError> {
    let input = body.parse(Channel::Api)?;
    let labels = partnerloop_app::pipeline::labels(s.store.as_ref(), &ctx).await?;
    match referrals::register(s.store.as_ref(), &s.matcher, &ctx, input).await? {
        Registered::Created(r) => Ok((StatusCode::CREATED, Json(referral_out(&ctx, &r, &labels)))),
        Registered::Existing(r) => Ok((StatusCode::OK, Json(referral_out(&ctx, &r, &labels)))),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReferralListParams {
    pub status: Option<String>,
    pub partner_id: Option<String>,
}

/// List referrals (a partner token: its own only).
#[utoipa::path(get, path = "/api/v1/referrals", tag = "referrals", params(ListParams, ReferralListParams), responses((status = 200, body = ReferralList)))]
async fn list_referrals(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(list): Query<ListParams>,
    Query(filter): Query<ReferralListParams>,
) -> Result<Json<ReferralList>, ApiError> {
    let mut v = Validator::new();
    let page = v.check(list.page());
    let status = v.check_opt(filter.status.filter(|s| !s.is_empty()), |s| ReferralStatus::parse("status", &s));
    let (page, status) = v.finish(|| Some((page?, status?)))?;
    let filter = ReferralFilter { status, partner_id: filter.partner_id.filter(|p| !p.is_empty()).map(PartnerId::from_string) };
    let result = referrals::list(s.store.as_ref(), &ctx, filter, &page).await?;
    let labels = partnerloop_app::pipeline::labels(s.store.as_ref(), &ctx).await?;
    Ok(Json(ReferralList::from_page(result, |r| referral_out(&ctx, r, &labels))))
}

/// One referral.
#[utoipa::path(get, path = "/api/v1/referrals/{id}", tag = "referrals", responses((status = 200, body = ReferralOut), (status = 404, body = Problem)))]
async fn get_referral(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<ReferralOut>, ApiError> {
    let r = referrals::get(s.store.as_ref(), &ctx, &ReferralId::from_string(id)).await?;
    Ok(Json(with_labels(&s, &ctx, &r).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    /// submitted | decided | approved | rejected | extended | stage_changed | won | lost | expired | disputed | dispute_resolved
    pub kind: String,
    pub actor: String,
    pub summary: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    pub data: Vec<TimelineEntry>,
}

fn timeline_out(ctx: &Ctx, events: Vec<TimelineEvent>) -> Timeline {
    let partner_view = ctx.partner_scope().is_some();
    Timeline {
        data: events
            .into_iter()
            .map(|e| TimelineEntry {
                at: e.at,
                actor: actor_for(ctx, &e.actor),
                summary: if partner_view && e.kind == "decided" {
                    format!("decided {}", e.summary.split_whitespace().nth(1).unwrap_or_default())
                } else {
                    e.summary
                },
                kind: e.kind,
            })
            .collect(),
    }
}

/// Everything that happened to a referral, oldest first, with its actor.
#[utoipa::path(get, path = "/api/v1/referrals/{id}/timeline", tag = "referrals", responses((status = 200, body = Timeline), (status = 404, body = Problem)))]
async fn referral_timeline(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<Timeline>, ApiError> {
    let events = referrals::timeline(s.store.as_ref(), &ctx, &ReferralId::from_string(id)).await?;
    Ok(Json(timeline_out(&ctx, events)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ApproveBody {
    #[serde(default)]
    pub note: Option<String>,
}

fn optional_body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) { Ok(T::default()) } else { crate::extract::parse_json(bytes) }
}

/// Approve a referral pending review (admin): it gets protection and a deal.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/approve", tag = "referrals", request_body(content = Option<ApproveBody>),
    responses((status = 200, body = ReferralOut), (status = 409, body = Problem)))]
async fn approve_referral(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<ReferralOut>, ApiError> {
    let b: ApproveBody = optional_body(&body)?;
    let note = optional_text("note", b.note.as_deref(), 2000).map_err(|e| ApiError::from(vec![e]))?;
    let r = referrals::approve(s.store.as_ref(), &ctx, &ReferralId::from_string(id), note).await?;
    Ok(Json(with_labels(&s, &ctx, &r).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RejectBody {
    pub reason: String,
}

/// Reject a referral pending review (admin), saying why.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/reject", tag = "referrals", request_body = RejectBody,
    responses((status = 200, body = ReferralOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn reject_referral(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<RejectBody>,
) -> Result<Json<ReferralOut>, ApiError> {
    let reason = required_text("reason", &b.reason, 2000).map_err(|e| ApiError::from(vec![e]))?;
    let r = referrals::reject(s.store.as_ref(), &ctx, &ReferralId::from_string(id), reason).await?;
    Ok(Json(with_labels(&s, &ctx, &r).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ExtendBody {
    pub days: i64,
    pub reason: String,
}

/// Extend an active protection window (admin).
#[utoipa::path(post, path = "/api/v1/referrals/{id}/extend", tag = "referrals", request_body = ExtendBody,
    responses((status = 200, body = ReferralOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn extend_referral(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ExtendBody>,
) -> Result<Json<ReferralOut>, ApiError> {
    let mut v = Validator::new();
    let days = v.check(
        u32::try_from(b.days).ok().filter(|d| (1..=365).contains(d)).ok_or_else(|| FieldError::new("days", "must be from 1 to 365")),
    );
    let reason = v.check(required_text("reason", &b.reason, 2000));
    let (days, reason) = v.finish(|| Some((days?, reason?)))?;
    let r = referrals::extend(s.store.as_ref(), &ctx, &ReferralId::from_string(id), days, reason).await?;
    Ok(Json(with_labels(&s, &ctx, &r).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StageBody {
    /// new | qualified | meeting | proposal | negotiation | closed_won | closed_lost
    pub stage: String,
    /// Required for closed_won.
    #[serde(default)]
    pub amount: Option<MoneyDto>,
}

/// Move the referral through the native pipeline (admin).
#[utoipa::path(post, path = "/api/v1/referrals/{id}/stage", tag = "referrals", request_body = StageBody,
    responses((status = 200, body = ReferralOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn change_stage(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<StageBody>,
) -> Result<Json<ReferralOut>, ApiError> {
    let mut v = Validator::new();
    let stage = v.check(Stage::parse("stage", &b.stage));
    let amount = v.check_opt(b.amount, |m| m.parse_positive("amount"));
    let (stage, amount) = v.finish(|| Some((stage?, amount?)))?;
    let r = referrals::change_stage(s.store.as_ref(), &ctx, &ReferralId::from_string(id), stage, amount).await?;
    Ok(Json(with_labels(&s, &ctx, &r).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DisputeBody {
    pub message: String,
}

/// Dispute a rejection (the partner, or an admin on its behalf).
#[utoipa::path(post, path = "/api/v1/referrals/{id}/dispute", tag = "referrals", request_body = DisputeBody,
    responses((status = 200, body = ReferralOut), (status = 409, body = Problem)))]
async fn dispute_referral(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<DisputeBody>,
) -> Result<Json<ReferralOut>, ApiError> {
    let message = required_text("message", &b.message, 5000).map_err(|e| ApiError::from(vec![e]))?;
    let r = referrals::dispute(s.store.as_ref(), &ctx, &ReferralId::from_string(id), message).await?;
    Ok(Json(with_labels(&s, &ctx, &r).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResolveBody {
    /// upheld (the rejection stands) | overturned (the referral is approved)
    pub resolution: String,
    pub note: String,
}

/// Resolve a partner's dispute (admin).
#[utoipa::path(post, path = "/api/v1/referrals/{id}/dispute/resolve", tag = "referrals", request_body = ResolveBody,
    responses((status = 200, body = ReferralOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn resolve_dispute(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ResolveBody>,
) -> Result<Json<ReferralOut>, ApiError> {
    let mut v = Validator::new();
    let resolution = match b.resolution.as_str() {
        "upheld" => Some(DisputeResolution::Upheld),
        "overturned" => Some(DisputeResolution::Overturned),
        other => v.check(Err(FieldError::new("resolution", format!("'{other}' is not one of: upheld, overturned")))),
    };
    let note = v.check(required_text("note", &b.note, 2000));
    let (resolution, note) = v.finish(|| Some((resolution?, note?)))?;
    let r = referrals::resolve_dispute(s.store.as_ref(), &ctx, &ReferralId::from_string(id), resolution, note).await?;
    Ok(Json(with_labels(&s, &ctx, &r).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItem {
    #[serde(flatten)]
    pub referral: ReferralOut,
    /// Seconds since the registration: the review SLA clock.
    pub age_seconds: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewQueue {
    pub data: Vec<QueueItem>,
    pub next_cursor: Option<String>,
}

/// Referrals waiting for a partner manager, oldest first, with their age (admin).
#[utoipa::path(get, path = "/api/v1/review-queue", tag = "referrals", params(ListParams), responses((status = 200, body = ReviewQueue)))]
async fn review_queue(State(s): State<AppState>, Auth(ctx): Auth, Query(list): Query<ListParams>) -> Result<Json<ReviewQueue>, ApiError> {
    ctx.require_admin()?;
    let page = list.page().map_err(|e| ApiError::from(vec![e]))?;
    let filter = ReferralFilter { status: Some(ReferralStatus::PendingReview), partner_id: None };
    let labels = partnerloop_app::pipeline::labels(s.store.as_ref(), &ctx).await?;
    let result = referrals::list(s.store.as_ref(), &ctx, filter, &page).await?;
    let data = result
        .items
        .iter()
        .map(|r| QueueItem { age_seconds: ctx.now.duration_since(r.created_at).as_secs(), referral: referral_out(&ctx, r, &labels) })
        .collect();
    Ok(Json(ReviewQueue { data, next_cursor: crate::extract::encode_cursor(result.next_after) }))
}
