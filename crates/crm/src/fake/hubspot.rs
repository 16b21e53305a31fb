//! An in-memory HubSpot on a local port: the CRM v3 objects, search, list
//! and batch read, v4 default associations, v3 pipelines and properties.
//!
//! Rules: every request body is validated against HubSpot's OpenAPI
//! documents; an invalid one gets 400 and is recorded as a violation, and
//! dropping a fake that recorded violations nobody took fails the test.
//! Bearer auth is required. A per-10-second limit answers 429 with
//! `policyName: SECONDLY` like HubSpot. Injected failures apply to the
//! next requests in order: a 500 before anything happens, a 500 *after*
//! the write (the answer is "lost"), or a 429 with `Retry-After`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::hubspot_routes::route;
use super::hubspot_store::{HubObject, Objects};
use super::spec::SpecValidator;
use crate::hubspot_webhook::sign_v3;

/// A failure the fake plays instead of (or after) the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 500 without doing anything.
    ServerError,
    /// Performs the request, then answers 500: the client never learns.
    ServerErrorAfterWrite,
    /// 429 with `Retry-After` in seconds.
    RateLimited { retry_after_secs: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    /// `METHOD /spec/path/{template}`, for counting calls per endpoint.
    pub endpoint: String,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub method: String,
    pub path: String,
    pub errors: Vec<String>,
    pub body: String,
}

pub(crate) struct HubState {
    pub objects: Objects,
    /// Custom property definitions per object type (`deals`, `companies`).
    pub property_defs: BTreeMap<String, BTreeMap<String, Value>>,
    /// Search does not see objects younger than this (HubSpot's index lag).
    pub search_lag: Duration,
    pub requests: Vec<RequestRecord>,
    pub violations: Vec<Violation>,
    pub failures: VecDeque<Failure>,
    pub endpoint_failures: Vec<(String, Failure)>,
    pub limit_per_10s: Option<u32>,
    pub window: VecDeque<Instant>,
    pub next_event_id: u64,
    pub validated_bodies: u64,
}

pub(crate) struct Shared {
    pub state: Mutex<HubState>,
    pub spec: SpecValidator,
}

/// A running fake HubSpot; stops when dropped.
pub struct FakeHubSpot {
    pub base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeHubSpot {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(HubState {
                objects: Objects::default(),
                property_defs: BTreeMap::new(),
                search_lag: Duration::ZERO,
                requests: Vec::new(),
                violations: Vec::new(),
                failures: VecDeque::new(),
                endpoint_failures: Vec::new(),
                limit_per_10s: None,
                window: VecDeque::new(),
                next_event_id: 1,
                validated_bodies: 0,
            }),
            spec: SpecValidator::hubspot(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("fake HubSpot cannot bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("fake HubSpot has no address: {e}"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base_url: format!("http://{addr}"), shared, server }
    }

    fn state(&self) -> MutexGuard<'_, HubState> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn companies(&self) -> Vec<HubObject> {
        self.state().objects.all("companies")
    }
    pub fn contacts(&self) -> Vec<HubObject> {
        self.state().objects.all("contacts")
    }
    pub fn deals(&self) -> Vec<HubObject> {
        self.state().objects.all("deals")
    }
    pub fn notes(&self) -> Vec<HubObject> {
        self.state().objects.all("notes")
    }
    pub fn deal(&self, id: &str) -> Option<HubObject> {
        self.state().objects.get("deals", id).cloned()
    }
    /// Definitions of the custom deal properties created through the API.
    pub fn deal_property_definitions(&self) -> BTreeMap<String, Value> {
        self.property_definitions("deals")
    }
    /// Custom property definitions of an object type (`companies`…).
    pub fn property_definitions(&self, object: &str) -> BTreeMap<String, Value> {
        self.state().property_defs.get(object).cloned().unwrap_or_default()
    }

    /// Search will not see objects created or changed less than `lag` ago,
    /// as HubSpot's search index lags behind writes by a few seconds.
    pub fn set_search_lag(&self, lag: Duration) {
        self.state().search_lag = lag;
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().requests.clone()
    }
    /// Requests made to one endpoint, e.g. `POST /crm/v3/objects/0-3`.
    pub fn calls_to(&self, endpoint: &str) -> usize {
        self.state().requests.iter().filter(|r| r.endpoint == endpoint).count()
    }
    /// Requests per endpoint (`METHOD /template`), e.g. to check batching.
    pub fn requests_per_endpoint(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for r in &self.state().requests {
            *counts.entry(r.endpoint.clone()).or_insert(0) += 1;
        }
        counts
    }
    pub fn request_count(&self) -> usize {
        self.state().requests.len()
    }
    /// Request bodies checked against the spec so far (valid or not).
    pub fn validated_bodies(&self) -> u64 {
        self.state().validated_bodies
    }
    pub fn violations(&self) -> Vec<Violation> {
        self.state().violations.clone()
    }
    /// Returns and forgets the violations (for tests that expect some).
    pub fn take_violations(&self) -> Vec<Violation> {
        std::mem::take(&mut self.state().violations)
    }

    /// The next `n` requests fail this way (queued after earlier ones).
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut state = self.state();
        state.failures.extend(std::iter::repeat_n(failure, n));
    }

    /// The next `n` requests to `endpoint` (e.g. `POST /crm/v3/objects/0-3`)
    /// fail this way; checked before the general queue.
    pub fn fail_next_at(&self, endpoint: &str, n: usize, failure: Failure) {
        let mut state = self.state();
        state.endpoint_failures.extend(std::iter::repeat_n((endpoint.to_string(), failure), n));
    }

    /// Number of companies, contacts, deals or notes.
    pub fn count(&self, kind: &str) -> usize {
        self.state().objects.count(kind)
    }

    /// At most `limit` requests per rolling 10 seconds (`None`: no limit).
    pub fn set_limit_per_10s(&self, limit: Option<u32>) {
        self.state().limit_per_10s = limit;
    }

    /// Adds `n` companies, every `customer_every`-th a customer.
    pub fn seed_companies(&self, n: usize, customer_every: usize) {
        let mut state = self.state();
        let now = Timestamp::now();
        for i in 0..n {
            let mut p = BTreeMap::new();
            p.insert("name".to_string(), format!("Seeded Company {i}"));
            p.insert("domain".to_string(), format!("seeded-{i}.example"));
            let stage = if customer_every > 0 && i % customer_every == 0 { "customer" } else { "lead" };
            p.insert("lifecyclestage".to_string(), stage.to_string());
            state.objects.create("companies", p, Vec::new(), now);
        }
    }

    /// Adds a deal directly, as a salesperson would in HubSpot.
    pub fn seed_deal(&self, name: &str, stage: &str, company_id: Option<&str>) -> String {
        let mut p = BTreeMap::new();
        p.insert("dealname".to_string(), name.to_string());
        p.insert("dealstage".to_string(), stage.to_string());
        p.insert("pipeline".to_string(), "default".to_string());
        p.insert("hs_is_closed".to_string(), matches!(stage, "closedwon" | "closedlost").to_string());
        let associations = company_id
            .map(|c| {
                vec![super::hubspot_store::HubAssociation {
                    to_type: "companies".into(),
                    to_id: c.into(),
                    type_id: 5,
                    category: "HUBSPOT_DEFINED".into(),
                }]
            })
            .unwrap_or_default();
        self.state().objects.create("deals", p, associations, Timestamp::now()).id
    }

    /// A stage change made in HubSpot's UI; returns the webhook body
    /// HubSpot would deliver for it (one `deal.propertyChange` event).
    pub fn change_deal_stage(&self, deal_id: &str, stage: &str) -> Vec<u8> {
        let mut state = self.state();
        let now = Timestamp::now();
        let mut props = serde_json::Map::new();
        props.insert("dealstage".into(), Value::String(stage.into()));
        props.insert("hs_is_closed".into(), Value::String(matches!(stage, "closedwon" | "closedlost").to_string()));
        state.objects.update("deals", deal_id, &props, now).unwrap_or_else(|| panic!("no deal {deal_id} in the fake"));
        let event_id = state.next_event_id;
        state.next_event_id += 1;
        let object_id: u64 = deal_id.parse().unwrap_or_default();
        serde_json::to_vec(&json!([{
            "eventId": event_id, "subscriptionId": 1, "portalId": 62515, "appId": 54321,
            "occurredAt": now.as_millisecond(), "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
            "objectId": object_id, "propertyName": "dealstage", "propertyValue": stage, "changeSource": "CRM", "sourceId": "userId:1"
        }]))
        .unwrap_or_default()
    }
}

/// Headers HubSpot would send with a webhook delivery to `full_url`:
/// (`X-HubSpot-Request-Timestamp`, `X-HubSpot-Signature-v3`).
pub fn sign_webhook(client_secret: &str, full_url: &str, body: &[u8], now: Timestamp) -> (String, String) {
    let ts = now.as_millisecond().to_string();
    let signature = sign_v3("POST", full_url, body, &ts, client_secret);
    (ts, signature)
}

impl Drop for FakeHubSpot {
    fn drop(&mut self) {
        self.server.abort();
        let violations = self.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!("requests to the fake HubSpot did not match HubSpot's spec: {violations:#?}");
        }
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn hub_error(status: StatusCode, category: &str, message: &str) -> Response {
    json_response(status, json!({"status": "error", "message": message, "correlationId": "fake", "category": category}))
}

async fn handle(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let endpoint = format!("{method} {}", shared.spec.template(method.as_str(), &path).unwrap_or_else(|| path.clone()));
    let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    let record = |state: &mut HubState, status: u16| {
        state.requests.push(RequestRecord {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            endpoint: endpoint.clone(),
            status,
        })
    };
    let authorised = headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7);
    if !authorised {
        record(&mut state, 401);
        return hub_error(StatusCode::UNAUTHORIZED, "INVALID_AUTHENTICATION", "Authentication credentials not found.");
    }
    if let Some(limit) = state.limit_per_10s {
        let now = Instant::now();
        while state.window.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(10)) {
            state.window.pop_front();
        }
        if state.window.len() >= limit as usize {
            let wait =
                state.window.front().map_or(Duration::from_secs(1), |t| Duration::from_secs(10).saturating_sub(now.duration_since(*t)));
            record(&mut state, 429);
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return rate_limited(secs);
        }
        state.window.push_back(now);
    }
    let failure = match state.endpoint_failures.iter().position(|(e, _)| *e == endpoint) {
        Some(i) => Some(state.endpoint_failures.remove(i).1),
        None => state.failures.pop_front(),
    };
    match failure {
        Some(Failure::ServerError) => {
            record(&mut state, 500);
            return hub_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "injected failure");
        }
        Some(Failure::RateLimited { retry_after_secs }) => {
            record(&mut state, 429);
            return rate_limited(retry_after_secs);
        }
        _ => {}
    }
    let parsed = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                let errors = vec![format!("body is not JSON: {e}")];
                state.violations.push(Violation {
                    method: method.to_string(),
                    path: path.clone(),
                    errors,
                    body: String::from_utf8_lossy(&body).into(),
                });
                record(&mut state, 400);
                return hub_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "Invalid input JSON");
            }
        }
    };
    if parsed.is_some() {
        state.validated_bodies += 1;
    }
    let checked = if path.starts_with("/crm/v3/properties/") {
        check_property_body(&method, parsed.as_ref())
    } else {
        shared.spec.validate(method.as_str(), &path, parsed.as_ref())
    };
    if let Err(errors) = checked {
        let message = errors.join("; ");
        state.violations.push(Violation {
            method: method.to_string(),
            path: path.clone(),
            errors,
            body: String::from_utf8_lossy(&body).into(),
        });
        record(&mut state, 400);
        return hub_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &message);
    }
    let (status, answer) = route(&mut state, &method, &path, &query, parsed.as_ref());
    if failure == Some(Failure::ServerErrorAfterWrite) {
        record(&mut state, 500);
        return hub_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "injected failure after the write");
    }
    record(&mut state, status.as_u16());
    json_response(status, answer)
}

fn rate_limited(retry_after_secs: u64) -> Response {
    let body = json!({"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
        "correlationId": "fake", "policyName": "SECONDLY"});
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("content-type", "application/json".to_string()), ("retry-after", retry_after_secs.to_string())],
        body.to_string(),
    )
        .into_response()
}

/// The properties API has no spec file here: its required fields
/// (name, label, type, fieldType, groupName; strings) are checked by hand.
fn check_property_body(method: &Method, body: Option<&Value>) -> Result<(), Vec<String>> {
    match (method.as_str(), body) {
        ("GET", None) => Ok(()),
        ("POST", Some(b)) => {
            let missing: Vec<String> = ["name", "label", "type", "fieldType", "groupName"]
                .iter()
                .filter(|k| !b.get(**k).is_some_and(Value::is_string))
                .map(|k| format!("property definition needs a string '{k}'"))
                .collect();
            if missing.is_empty() { Ok(()) } else { Err(missing) }
        }
        _ => Err(vec![format!("{method} is not a properties operation partnerloop uses")]),
    }
}
