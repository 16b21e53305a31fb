//! Observability: request ids, request metrics and the Prometheus endpoint.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use partnerloop_domain::metrics::{self, Report};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkspaceLabels {
    workspace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CurrencyLabels {
    workspace: String,
    currency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    workspace: String,
    stage: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The program KPIs per workspace (all time, the workspace's currency),
/// recomputed at most every [`KPI_REFRESH`] when scraped.
struct KpiGauges {
    activation_rate: Family<WorkspaceLabels, FloatGauge>,
    conversion_rate: Family<WorkspaceLabels, FloatGauge>,
    active_partners: Family<WorkspaceLabels, Gauge>,
    dormant_partners: Family<WorkspaceLabels, Gauge>,
    referrals: Family<WorkspaceLabels, Gauge>,
    awaiting_review: Family<WorkspaceLabels, Gauge>,
    revenue: Family<CurrencyLabels, FloatGauge>,
    pipeline: Family<StageLabels, Gauge>,
    refreshed: tokio::sync::Mutex<Option<Instant>>,
}

/// How long scraped KPIs may be old: their queries read large indexes, so a
/// scrape every few seconds must not run them every time.
pub const KPI_REFRESH: Duration = Duration::from_secs(30);

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    kpis: KpiGauges,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("partnerloop");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let in_flight = Gauge::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer HTTP requests", duration.clone());
        registry.register("http_requests_in_flight", "HTTP requests being answered", in_flight.clone());
        let kpis = KpiGauges {
            activation_rate: Family::default(),
            conversion_rate: Family::default(),
            active_partners: Family::default(),
            dormant_partners: Family::default(),
            referrals: Family::default(),
            awaiting_review: Family::default(),
            revenue: Family::default(),
            pipeline: Family::default(),
            refreshed: tokio::sync::Mutex::new(None),
        };
        let k = &kpis;
        registry.register(
            "kpi_partner_activation_rate",
            "Partners with a referral / active partners (all time)",
            k.activation_rate.clone(),
        );
        registry.register("kpi_referral_to_closed_won_rate", "Won / (won + lost) referrals (all time)", k.conversion_rate.clone());
        registry.register("kpi_active_partners", "Partners whose status is active", k.active_partners.clone());
        registry.register("kpi_dormant_partners", "Active partners without a referral in 90 days", k.dormant_partners.clone());
        registry.register("kpi_referrals_registered", "Referrals registered (all time)", k.referrals.clone());
        registry.register("kpi_referrals_awaiting_review", "Referrals waiting for review", k.awaiting_review.clone());
        registry.register("kpi_partner_sourced_revenue", "Won referral amounts per currency, major units (all time)", k.revenue.clone());
        registry.register("kpi_open_pipeline_referrals", "Open partner-sourced referrals by stage", k.pipeline.clone());
        Self { registry, requests, duration, in_flight, kpis }
    }

    /// Replaces the KPI gauges with these workspaces' reports.
    fn set_kpis(&self, reports: &[(String, Report)]) {
        let k = &self.kpis;
        k.activation_rate.clear();
        k.conversion_rate.clear();
        for f in [&k.active_partners, &k.dormant_partners, &k.referrals, &k.awaiting_review] {
            f.clear();
        }
        k.revenue.clear();
        k.pipeline.clear();
        for (slug, r) in reports {
            let ws = WorkspaceLabels { workspace: slug.clone() };
            if let Some(v) = r.partner_activation_rate {
                k.activation_rate.get_or_create(&ws).set(metrics::number(v));
            }
            if let Some(v) = r.referral_to_closed_won_rate {
                k.conversion_rate.get_or_create(&ws).set(metrics::number(v));
            }
            k.active_partners.get_or_create(&ws).set(gauge(r.active_partners));
            k.dormant_partners.get_or_create(&ws).set(gauge(r.dormant_partners));
            k.referrals.get_or_create(&ws).set(gauge(r.referrals_registered));
            k.awaiting_review.get_or_create(&ws).set(gauge(r.awaiting_review));
            for (currency, f) in &r.by_currency {
                let labels = CurrencyLabels { workspace: slug.clone(), currency: currency.clone() };
                k.revenue.get_or_create(&labels).set(metrics::number(f.partner_sourced_revenue.to_decimal()));
            }
            for s in &r.pipeline {
                k.pipeline.get_or_create(&StageLabels { workspace: slug.clone(), stage: s.stage.as_str().into() }).set(gauge(s.count));
            }
        }
    }

    /// Recomputes the KPI gauges when they are older than [`KPI_REFRESH`]
    /// (one scrape at a time computes; the others wait and reuse it). A
    /// failure is logged and leaves the previous values.
    async fn refresh_kpis(&self, store: &dyn partnerloop_app::Store) {
        let mut refreshed = self.kpis.refreshed.lock().await;
        if refreshed.is_some_and(|t| t.elapsed() < KPI_REFRESH) {
            return;
        }
        match partnerloop_app::metrics::all_workspaces(store, jiff::Timestamp::now()).await {
            Ok(reports) => {
                self.set_kpis(&reports);
                *refreshed = Some(Instant::now());
            }
            Err(e) => tracing::error!(error = ?e, "computing KPI gauges failed"),
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts and times every request by route template (never by raw path,
/// which would give every record its own series).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let metrics: &Arc<Metrics> = &state.metrics;
    metrics.in_flight.inc();
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.in_flight.dec();
    metrics.duration.get_or_create(&RouteLabels { method: method.clone(), route: route.clone() }).observe(started.elapsed().as_secs_f64());
    metrics.requests.get_or_create(&RequestLabels { method, route, status: response.status().as_u16() }).inc();
    response
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub async fn prometheus(State(state): State<AppState>) -> Response {
    state.metrics.refresh_kpis(state.store.as_ref()).await;
    let mut r = state.metrics.render().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}

/// Request ids are ULIDs: sortable, and unique across servers.
#[derive(Clone, Default)]
pub struct UlidRequestId;

impl MakeRequestId for UlidRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&ulid::Ulid::new().to_string()).ok().map(RequestId::new)
    }
}

/// The request path as logs show it: the secret segment of sign-in,
/// status, preferences and unsubscribe links is masked (a link that has
/// not been used yet must not be readable from the logs).
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in ["/login/", "/portal/login/", "/status/", "/preferences/", "/unsubscribe/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
            return format!("{prefix}***{tail}").into();
        }
    }
    path.into()
}

#[cfg(test)]
mod log_path_tests {
    use super::loggable_path;

    #[test]
    fn link_tokens_are_masked_in_logged_paths() {
        assert_eq!(loggable_path("/login/abcDEF123"), "/login/***");
        assert_eq!(loggable_path("/portal/login/abc"), "/portal/login/***");
        assert_eq!(loggable_path("/unsubscribe/tok/digest"), "/unsubscribe/***/digest");
        assert_eq!(loggable_path("/admin/referrals/ref_1"), "/admin/referrals/ref_1");
        assert_eq!(loggable_path("/login"), "/login");
    }
}
