//! `/api/v1/accounts`: companies the vendor already has (admin).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use partnerloop_app::accounts::{self, AccountForCreate};
use partnerloop_domain::account::{Account, AccountStatus};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::ids::AccountId;
use partnerloop_domain::validation::required_text;
use partnerloop_domain::{Email, Validator};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::list_of;
use crate::AppState;
use crate::extract::{ApiJson, Auth, ListParams};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_account, list_accounts)).routes(routes!(get_account))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AccountCreate {
    pub name: String,
    pub domain: String,
    /// prospect | customer | off_limits
    pub status: String,
    #[serde(default)]
    pub owner_email: Option<String>,
}

impl AccountCreate {
    fn parse(self) -> Result<AccountForCreate, ApiError> {
        let mut v = Validator::new();
        let name = v.check(required_text("name", &self.name, 200));
        let domain = v.check(CompanyDomain::parse("domain", &self.domain));
        let status = v.check(AccountStatus::parse("status", &self.status));
        let owner = v.check_opt(self.owner_email.filter(|e| !e.trim().is_empty()), |e| Email::parse("owner_email", &e));
        Ok(v.finish(|| Some(AccountForCreate { name: name?, domain: domain?, status: status?, owner_email: owner? }))?)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    pub id: String,
    pub name: String,
    pub domain: String,
    pub status: String,
    pub owner_email: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
}

impl From<&Account> for AccountOut {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.to_string(),
            name: a.name.clone(),
            domain: a.domain.as_str().to_owned(),
            status: a.status.as_str().to_owned(),
            owner_email: a.owner_email.as_ref().map(ToString::to_string),
            created_at: a.created_at,
        }
    }
}

list_of!(AccountList, AccountOut);

/// Add an account: a prospect, a customer or an off-limits company (admin).
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = AccountCreate,
    responses((status = 201, body = AccountOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_account(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(body): ApiJson<AccountCreate>,
) -> Result<(StatusCode, Json<AccountOut>), ApiError> {
    let account = accounts::create(s.store.as_ref(), &ctx, body.parse()?).await?;
    Ok((StatusCode::CREATED, Json(AccountOut::from(&account))))
}

/// List accounts (admin).
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", params(ListParams), responses((status = 200, body = AccountList)))]
async fn list_accounts(State(s): State<AppState>, Auth(ctx): Auth, Query(list): Query<ListParams>) -> Result<Json<AccountList>, ApiError> {
    let page = list.page().map_err(|e| ApiError::from(vec![e]))?;
    let result = accounts::list(s.store.as_ref(), &ctx, &page).await?;
    Ok(Json(AccountList::from_page(result, |x| AccountOut::from(x))))
}

/// One account (admin).
#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "accounts", responses((status = 200, body = AccountOut), (status = 404, body = Problem)))]
async fn get_account(State(s): State<AppState>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Json<AccountOut>, ApiError> {
    let account = accounts::get(s.store.as_ref(), &ctx, &AccountId::from_string(id)).await?;
    Ok(Json(AccountOut::from(&account)))
}
