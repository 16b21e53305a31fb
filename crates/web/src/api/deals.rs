//! `/api/v1/deals`: the vendor's direct pipeline (admin).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use partnerloop_app::deals::{self, DealForCreate};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::{Deal, DealSource, Stage};
use partnerloop_domain::ids::DealId;
use partnerloop_domain::validation::required_text;
use partnerloop_domain::{Email, Validator};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{MoneyDto, list_of, parse_time};
use crate::AppState;
use crate::extract::{ApiJson, Auth, ListParams};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_deal, list_deals)).routes(routes!(get_deal))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct CompanyDto {
    pub name: String,
    #[serde(default)]
    pub domain: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DealCreate {
    pub name: String,
    pub company: CompanyDto,
    /// new | qualified | meeting | proposal | negotiation | closed_won | closed_lost
    pub stage: String,
    pub amount: MoneyDto,
    /// Only `direct` here; partner deals come from referrals.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub owner_email: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub closed_at: Option<String>,
}

impl DealCreate {
    fn parse(self) -> Result<DealForCreate, ApiError> {
        let mut v = Validator::new();
        let name = v.check(required_text("name", &self.name, 200));
        let company_name = v.check(required_text("company.name", &self.company.name, 200));
        let domain = v.check_opt(self.company.domain.filter(|d| !d.trim().is_empty()), |d| CompanyDomain::parse("company.domain", &d));
        let stage = v.check(Stage::parse("stage", &self.stage));
        let amount = v.check(self.amount.parse_non_negative("amount"));
        let source = match self.source.as_deref() {
            None | Some("direct") => Some(DealSource::Direct),
            Some(other) => {
                v.push(partnerloop_domain::FieldError::new("source", format!("'{other}' is not allowed here: must be direct")));
                None
            }
        };
        let owner = v.check_opt(self.owner_email.filter(|e| !e.trim().is_empty()), |e| Email::parse("owner_email", &e));
        let created_at = v.check_opt(self.created_at, |t| parse_time("created_at", &t));
        let closed_at = v.check_opt(self.closed_at, |t| parse_time("closed_at", &t));
        Ok(v.finish(|| {
            Some(DealForCreate {
                name: name?,
                company_name: company_name?,
                company_domain: domain?,
                stage: stage?,
                amount: amount?,
                source: source?,
                owner_email: owner?,
                created_at: created_at?,
                closed_at: closed_at?,
            })
        })?)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DealOut {
    pub id: String,
    pub name: String,
    pub company: CompanyDto,
    pub stage: String,
    pub amount: MoneyDto,
    pub source: String,
    pub owner_email: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<jiff::Timestamp>,
}

impl From<&Deal> for DealOut {
    fn from(d: &Deal) -> Self {
        Self {
            id: d.id.to_string(),
            name: d.name.clone(),
            company: CompanyDto { name: d.company_name.clone(), domain: d.company_domain.as_ref().map(|c| c.as_str().to_owned()) },
            stage: d.stage.as_str().to_owned(),
            amount: MoneyDto::from(&d.amount),
            source: d.source.as_str().to_owned(),
            owner_email: d.owner_email.as_ref().map(ToString::to_string),
            created_at: d.created_at,
            closed_at: d.closed_at,
        }
    }
}

list_of!(DealList, DealOut);

/// Add a direct deal (admin). Open ones count as open direct opportunities.
#[utoipa::path(post, path = "/api/v1/deals", tag = "deals", request_body = DealCreate,
    responses((status = 201, body = DealOut), (status = 422, body = Problem)))]
async fn create_deal(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(body): ApiJson<DealCreate>,
) -> Result<(StatusCode, Json<DealOut>), ApiError> {
    let deal = deals::create(s.store.as_ref(), &ctx, body.parse()?).await?;
    Ok((StatusCode::CREATED, Json(DealOut::from(&deal))))
}

/// List deals (admin).
#[utoipa::path(get, path = "/api/v1/deals", tag = "deals", params(ListParams), responses((status = 200, body = DealList)))]
async fn list_deals(State(s): State<AppState>, Auth(ctx): Auth, Query(list): Query<ListParams>) -> Result<Json<DealList>, ApiError> {
    let page = list.page().map_err(|e| ApiError::from(vec![e]))?;
    let result = deals::list(s.store.as_ref(), &ctx, &page).await?;
    Ok(Json(DealList::from_page(result, |x| DealOut::from(x))))
}

/// One deal (admin).
#[utoipa::path(get, path = "/api/v1/deals/{id}", tag = "deals", responses((status = 200, body = DealOut), (status = 404, body = Problem)))]
async fn get_deal(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<DealOut>, ApiError> {
    let deal = deals::get(s.store.as_ref(), &ctx, &DealId::from_string(id)).await?;
    Ok(Json(DealOut::from(&deal)))
}
