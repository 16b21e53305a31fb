//! `/api/v1/pipeline/stages`: the native pipeline's stages and the
//! partner-friendly labels this workspace gives them.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use partnerloop_app::pipeline;
use partnerloop_domain::deal::Stage;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_stages, put_stages))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageOut {
    pub stage: String,
    /// What partners read for this stage.
    pub label: String,
    pub closed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stages {
    pub data: Vec<StageOut>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StageLabelsIn {
    /// stage → label; an empty label restores the default.
    pub labels: BTreeMap<String, String>,
}

fn out(labels: Vec<(Stage, String)>) -> Stages {
    Stages { data: labels.into_iter().map(|(s, label)| StageOut { stage: s.as_str().to_owned(), label, closed: s.is_closed() }).collect() }
}

/// The pipeline's stages in order, with their partner-friendly labels.
#[utoipa::path(get, path = "/api/v1/pipeline/stages", tag = "referrals", responses((status = 200, body = Stages)))]
async fn get_stages(State(s): State<AppState>, Auth(ctx): Auth) -> Result<Json<Stages>, ApiError> {
    Ok(Json(out(pipeline::labels(s.store.as_ref(), &ctx).await?)))
}

/// Rename stages for partners (admin).
#[utoipa::path(put, path = "/api/v1/pipeline/stages", tag = "referrals", request_body = StageLabelsIn,
    responses((status = 200, body = Stages), (status = 422, body = Problem)))]
async fn put_stages(State(s): State<AppState>, Auth(ctx): Auth, ApiJson(body): ApiJson<StageLabelsIn>) -> Result<Json<Stages>, ApiError> {
    Ok(Json(out(pipeline::set_labels(s.store.as_ref(), &ctx, body.labels).await?)))
}
