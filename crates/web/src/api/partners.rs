//! `/api/v1/partners`: the program's partners, their contacts and tokens.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use partnerloop_app::partners::{self, PartnerForCreate, PartnerForUpdate};
use partnerloop_app::store::PartnerFilter;
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::ids::{PartnerId, PlanId};
use partnerloop_domain::partner::{Partner, PartnerStatus, PartnerType};
use partnerloop_domain::plan::parse_tier_slug;
use partnerloop_domain::validation::required_text;
use partnerloop_domain::{Email, Validator};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{double_option, list_of, parse_time};
use crate::AppState;
use crate::extract::{ApiJson, Auth, ListParams};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_partner, list_partners))
        .routes(routes!(get_partner, update_partner))
        .routes(routes!(create_partner_api_key))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ContactIn {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PartnerCreate {
    pub name: String,
    /// consultant | agency | technology | customer | other
    #[serde(rename = "type")]
    pub partner_type: String,
    pub contact: ContactIn,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub commission_plan_id: Option<String>,
    /// applied | active | paused | archived (default active)
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub tier: Option<String>,
    /// For imports of history: RFC 3339 or YYYY-MM-DD (default now).
    #[serde(default)]
    pub created_at: Option<String>,
}

impl PartnerCreate {
    fn parse(self) -> Result<PartnerForCreate, ApiError> {
        let mut v = Validator::new();
        let name = v.check(required_text("name", &self.name, 200));
        let partner_type = v.check(PartnerType::parse("type", &self.partner_type));
        let contact_name = v.check(required_text("contact.name", &self.contact.name, 200));
        let contact_email = v.check(Email::parse("contact.email", &self.contact.email));
        let website = v.check_opt(self.website.filter(|w| !w.trim().is_empty()), |w| CompanyDomain::parse("website", &w));
        let status = v.check_opt(self.status, |s| PartnerStatus::parse("status", &s));
        let tier = v.check_opt(self.tier.filter(|t| !t.trim().is_empty()), |t| parse_tier_slug("tier", &t));
        let created_at = v.check_opt(self.created_at, |t| parse_time("created_at", &t));
        let plan = self.commission_plan_id.filter(|p| !p.is_empty()).map(PlanId::from_string);
        Ok(v.finish(|| {
            Some(PartnerForCreate {
                name: name?,
                partner_type: partner_type?,
                status: status?.unwrap_or(PartnerStatus::Active),
                tier: tier?,
                contact_name: contact_name?,
                contact_email: contact_email?,
                website: website?,
                commission_plan_id: plan,
                created_at: created_at?,
            })
        })?)
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PartnerUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub partner_type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// null clears the tier.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub tier: Option<Option<String>>,
    /// null clears the website.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub website: Option<Option<String>>,
    /// null detaches the plan (the workspace default applies).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub commission_plan_id: Option<Option<String>>,
}

impl PartnerUpdate {
    fn parse(self) -> Result<PartnerForUpdate, ApiError> {
        let mut v = Validator::new();
        let name = v.check_opt(self.name, |n| required_text("name", &n, 200));
        let partner_type = v.check_opt(self.partner_type, |t| PartnerType::parse("type", &t));
        let status = v.check_opt(self.status, |s| PartnerStatus::parse("status", &s));
        let tier = v.check_opt(self.tier, |t| match t.filter(|t| !t.trim().is_empty()) {
            None => Ok(None),
            Some(t) => parse_tier_slug("tier", &t).map(Some),
        });
        let website = v.check_opt(self.website, |w| match w.filter(|w| !w.trim().is_empty()) {
            None => Ok(None),
            Some(w) => CompanyDomain::parse("website", &w).map(Some),
        });
        let plan = self.commission_plan_id.map(|p| p.filter(|p| !p.is_empty()).map(PlanId::from_string));
        Ok(v.finish(|| {
            Some(PartnerForUpdate {
                name: name?,
                partner_type: partner_type?,
                status: status?,
                tier: tier?,
                website: website?,
                commission_plan_id: plan,
            })
        })?)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactOut {
    pub id: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerOut {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub partner_type: String,
    pub status: String,
    pub tier: Option<String>,
    pub referral_code: String,
    pub website: Option<String>,
    pub contacts: Vec<ContactOut>,
    pub commission_plan_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_referral_at: Option<jiff::Timestamp>,
}

impl From<&Partner> for PartnerOut {
    fn from(p: &Partner) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.clone(),
            partner_type: p.partner_type.as_str().to_owned(),
            status: p.status.as_str().to_owned(),
            tier: p.tier.clone(),
            referral_code: p.referral_code.as_str().to_owned(),
            website: p.website.as_ref().map(|w| w.as_str().to_owned()),
            contacts: p
                .contacts
                .iter()
                .map(|c| ContactOut { id: c.id.to_string(), name: c.name.clone(), email: c.email.to_string() })
                .collect(),
            commission_plan_id: p.commission_plan_id.as_ref().map(ToString::to_string),
            created_at: p.created_at,
            updated_at: p.updated_at,
            first_referral_at: p.first_referral_at,
        }
    }
}

list_of!(PartnerList, PartnerOut);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PartnerListParams {
    /// applied | active | paused | archived
    pub status: Option<String>,
}

/// Add a partner (admin).
#[utoipa::path(post, path = "/api/v1/partners", tag = "partners", request_body = PartnerCreate,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried POST safe")),
    responses((status = 201, body = PartnerOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_partner(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(body): ApiJson<PartnerCreate>,
) -> Result<(StatusCode, Json<PartnerOut>), ApiError> {
    let input = body.parse()?;
    let partner = partners::create(s.store.as_ref(), &ctx, input).await?;
    Ok((StatusCode::CREATED, Json(PartnerOut::from(&partner))))
}

/// List partners (a partner token sees only itself).
#[utoipa::path(get, path = "/api/v1/partners", tag = "partners", params(ListParams, PartnerListParams),
    responses((status = 200, body = PartnerList)))]
async fn list_partners(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(list): Query<ListParams>,
    Query(filter): Query<PartnerListParams>,
) -> Result<Json<PartnerList>, ApiError> {
    let mut v = Validator::new();
    let page = v.check(list.page());
    let status = v.check_opt(filter.status.filter(|s| !s.is_empty()), |s| PartnerStatus::parse("status", &s));
    let (page, status) = v.finish(|| Some((page?, status?)))?;
    let result = partners::list(s.store.as_ref(), &ctx, PartnerFilter { status, only: None }, &page).await?;
    Ok(Json(PartnerList::from_page(result, |x| PartnerOut::from(x))))
}

/// One partner.
#[utoipa::path(get, path = "/api/v1/partners/{id}", tag = "partners",
    responses((status = 200, body = PartnerOut), (status = 404, body = Problem)))]
async fn get_partner(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<PartnerOut>, ApiError> {
    let partner = partners::get(s.store.as_ref(), &ctx, &PartnerId::from_string(id)).await?;
    Ok(Json(PartnerOut::from(&partner)))
}

/// Change a partner (admin); only the fields given change.
#[utoipa::path(patch, path = "/api/v1/partners/{id}", tag = "partners", request_body = PartnerUpdate,
    responses((status = 200, body = PartnerOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_partner(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PartnerUpdate>,
) -> Result<Json<PartnerOut>, ApiError> {
    let change = body.parse()?;
    let partner = partners::update(s.store.as_ref(), &ctx, &PartnerId::from_string(id), change).await?;
    Ok(Json(PartnerOut::from(&partner)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ApiKeyCreate {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    /// Shown once; only its hash is stored.
    pub token: String,
}

/// Create an API token that acts as this partner (admin).
#[utoipa::path(post, path = "/api/v1/partners/{id}/api-keys", tag = "partners", request_body(content = Option<ApiKeyCreate>),
    responses((status = 201, body = TokenOut), (status = 404, body = Problem)))]
async fn create_partner_api_key(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<TokenOut>), ApiError> {
    let input: ApiKeyCreate =
        if body.iter().all(u8::is_ascii_whitespace) { ApiKeyCreate::default() } else { crate::extract::parse_json(&body)? };
    let token =
        partnerloop_app::auth::create_partner_key(s.store.as_ref(), &ctx, &PartnerId::from_string(id), input.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(TokenOut { token })))
}
