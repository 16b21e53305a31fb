//! The JSON API under `/api/v1`. Each resource module owns its router; this
//! module joins them and describes the whole API as one OpenAPI document.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

pub mod accounts;
pub mod commissions;
pub mod crm;
pub mod deals;
pub mod dto;
pub mod metrics;
pub mod notifications;
pub mod partners;
pub mod payouts;
pub mod pipeline;
pub mod plans;
pub mod referrals;
pub mod rules;
pub mod signin;
pub mod tiers;

#[derive(OpenApi)]
#[openapi(
    info(title = "partnerloop API", version = "1", description = "Referral partner programs: partners, registrations, commissions, payouts."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(crate::problem::Problem, crate::problem::ProblemField)),
    tags(
        (name = "partners", description = "Partners, contacts and partner tokens"),
        (name = "accounts", description = "Companies the vendor already has"),
        (name = "deals", description = "The vendor's direct pipeline"),
        (name = "commissions", description = "Commission plans and the commissions ledger"),
        (name = "payouts", description = "Payout batches, their files, and the payer's settings"),
        (name = "tiers", description = "The partner tier ladder, evaluation, and each partner's tier, progress and history"),
        (name = "notifications", description = "Webhook endpoints, Slack and partner-manager settings, mail preferences, the outbox and its delivery log"),
        (name = "referrals", description = "Deal registration, rules of engagement, review and the native pipeline"),
        (name = "metrics", description = "Program KPIs, per period, partner, tier and month; each partner's scorecard"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// Every authenticated API route, with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(partners::router())
        .merge(accounts::router())
        .merge(deals::router())
        .merge(plans::router())
        .merge(referrals::router())
        .merge(rules::router())
        .merge(pipeline::router())
        .merge(commissions::router())
        .merge(payouts::router())
        .merge(notifications::router())
        .merge(crm::router())
        .merge(signin::router())
        .merge(tiers::router())
        .merge(metrics::router())
}
