//! An in-memory Salesforce on a local port: the OAuth token endpoint (JWT
//! bearer, checked against a public key you give it), sObject upsert by
//! external id and update by id, SOQL queries with `nextRecordsUrl`
//! paging, `/limits`, and the daily API allocation (`Sforce-Limit-Info`,
//! `REQUEST_LIMIT_EXCEEDED`).
//!
//! Salesforce publishes no static OpenAPI document, so bodies are checked
//! against the fields each object has here (unknown field → 400
//! `INVALID_FIELD`, missing required field on create → 400
//! `REQUIRED_FIELD_MISSING`); such violations are recorded, and dropping
//! a fake that recorded some fails the test.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};

use super::hubspot::{Failure, RequestRecord, Violation};
use super::salesforce_data::{data_route, stage_is_closed};
use crate::salesforce::JwtClaims;

pub(crate) struct SfState {
    pub records: BTreeMap<String, Vec<Map<String, Value>>>,
    pub next_id: u64,
    pub requests: Vec<RequestRecord>,
    pub violations: Vec<Violation>,
    pub failures: VecDeque<Failure>,
    pub endpoint_failures: Vec<(String, Failure)>,
    pub api_used: u64,
    pub api_max: u64,
    pub tokens: Vec<String>,
    pub assertions: Vec<JwtClaims>,
    pub jwt: Option<(String, String)>,
    pub page_size: usize,
    pub locators: HashMap<String, Vec<Map<String, Value>>>,
    pub base_url: String,
}

/// A running fake Salesforce; stops when dropped.
pub struct FakeSalesforce {
    /// Both the login URL and the instance URL.
    pub base_url: String,
    state: Arc<Mutex<SfState>>,
    server: tokio::task::JoinHandle<()>,
}

/// The token the fake always accepts (for `SalesforceAuth::AccessToken`).
pub const FAKE_SF_TOKEN: &str = "00Dfake!static-token";

impl FakeSalesforce {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("fake Salesforce cannot bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("fake Salesforce has no address: {e}"));
        let base_url = format!("http://{addr}");
        let mut records = BTreeMap::new();
        let stages = [
            ("Prospecting", false, false),
            ("Qualification", false, false),
            ("Proposal/Price Quote", false, false),
            ("Negotiation/Review", false, false),
            ("Closed Won", true, true),
            ("Closed Lost", true, false),
        ];
        let stage_records = stages
            .iter()
            .enumerate()
            .map(|(i, (name, closed, won))| {
                let mut m = Map::new();
                m.insert("Id".into(), json!(format!("01J{i:012}")));
                for (k, v) in [("ApiName", json!(name)), ("MasterLabel", json!(name)), ("IsClosed", json!(closed)), ("IsWon", json!(won))] {
                    m.insert(k.into(), v);
                }
                m.insert("IsActive".into(), json!(true));
                m.insert("SortOrder".into(), json!(i));
                m
            })
            .collect();
        records.insert("OpportunityStage".to_string(), stage_records);
        let state = Arc::new(Mutex::new(SfState {
            records,
            next_id: 0,
            requests: Vec::new(),
            violations: Vec::new(),
            failures: VecDeque::new(),
            endpoint_failures: Vec::new(),
            api_used: 0,
            api_max: 15_000,
            tokens: vec![FAKE_SF_TOKEN.to_string()],
            assertions: Vec::new(),
            jwt: None,
            page_size: 2000,
            locators: HashMap::new(),
            base_url: base_url.clone(),
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base_url, state, server }
    }

    fn state(&self) -> MutexGuard<'_, SfState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accept JWT assertions signed by this key for this consumer key.
    pub fn accept_jwt(&self, public_key_pem: &str, consumer_key: &str) {
        self.state().jwt = Some((public_key_pem.to_string(), consumer_key.to_string()));
    }
    /// Claims of the assertions that verified.
    pub fn assertions(&self) -> Vec<JwtClaims> {
        self.state().assertions.clone()
    }
    /// Forget issued tokens (except the static one): sessions expire.
    pub fn expire_sessions(&self) {
        self.state().tokens.retain(|t| t == FAKE_SF_TOKEN);
    }
    pub fn set_page_size(&self, n: usize) {
        self.state().page_size = n.max(1);
    }
    /// The daily allocation and what is used of it.
    pub fn set_api_usage(&self, used: u64, max: u64) {
        let mut s = self.state();
        s.api_used = used;
        s.api_max = max;
    }
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.state().failures.extend(std::iter::repeat_n(failure, n));
    }
    /// The next `n` requests to `endpoint` (as in [`RequestRecord::endpoint`],
    /// e.g. `PATCH /services/data/{v}/sobjects/Opportunity/Prm_Referral_Id__c/{value}`) fail.
    pub fn fail_next_at(&self, endpoint: &str, n: usize, failure: Failure) {
        self.state().endpoint_failures.extend(std::iter::repeat_n((endpoint.to_string(), failure), n));
    }
    pub fn records(&self, object: &str) -> Vec<Map<String, Value>> {
        self.state().records.get(object).cloned().unwrap_or_default()
    }
    pub fn record(&self, object: &str, id: &str) -> Option<Map<String, Value>> {
        self.records(object).into_iter().find(|r| r.get("Id").and_then(Value::as_str) == Some(id))
    }
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().requests.clone()
    }
    /// Requests per endpoint (`METHOD /template`), e.g. to check batching.
    pub fn requests_per_endpoint(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for r in &self.state().requests {
            *counts.entry(r.endpoint.clone()).or_insert(0) += 1;
        }
        counts
    }
    pub fn violations(&self) -> Vec<Violation> {
        self.state().violations.clone()
    }
    pub fn take_violations(&self) -> Vec<Violation> {
        std::mem::take(&mut self.state().violations)
    }

    /// Adds `n` accounts, every `customer_every`-th of Type "Customer - Direct".
    pub fn seed_accounts(&self, n: usize, customer_every: usize) {
        let mut s = self.state();
        for i in 0..n {
            let kind = if customer_every > 0 && i % customer_every == 0 { "Customer - Direct" } else { "Prospect" };
            let fields = json!({"Name": format!("Seeded Account {i}"), "Website": format!("https://www.seeded-{i}.example"), "Type": kind});
            insert(&mut s, "Account", fields.as_object().cloned().unwrap_or_default());
        }
    }

    /// A stage change made by a salesperson in Salesforce.
    pub fn change_stage(&self, opportunity_id: &str, stage: &str) {
        let mut s = self.state();
        let now = modstamp(Timestamp::now());
        let record = s
            .records
            .get_mut("Opportunity")
            .and_then(|rs| rs.iter_mut().find(|r| r.get("Id").and_then(Value::as_str) == Some(opportunity_id)))
            .unwrap_or_else(|| panic!("no Opportunity {opportunity_id} in the fake"));
        record.insert("StageName".into(), json!(stage));
        let (closed, won) = stage_is_closed(stage);
        record.insert("IsClosed".into(), json!(closed));
        record.insert("IsWon".into(), json!(won));
        record.insert("SystemModstamp".into(), json!(now));
    }
}

impl Drop for FakeSalesforce {
    fn drop(&mut self) {
        self.server.abort();
        let violations = self.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!("requests to the fake Salesforce were invalid: {violations:#?}");
        }
    }
}

pub(crate) fn modstamp(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Stores a new record with an id of the object's key prefix.
pub(crate) fn insert(s: &mut SfState, object: &str, mut fields: Map<String, Value>) -> String {
    s.next_id += 1;
    let prefix = match object {
        "Account" => "001",
        "Contact" => "003",
        "Opportunity" => "006",
        "Task" => "00T",
        _ => "0XX",
    };
    let id = format!("{prefix}{:015}", s.next_id);
    fields.insert("Id".into(), json!(id));
    fields.insert("SystemModstamp".into(), json!(modstamp(Timestamp::now())));
    s.records.entry(object.to_string()).or_default().push(fields);
    id
}

fn sf_error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (status, json!([{"message": message, "errorCode": code, "fields": []}]))
}

async fn handle(State(state): State<Arc<Mutex<SfState>>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let endpoint = format!("{method} {}", endpoint_of(&path));
    let (status, answer) = if path == "/services/oauth2/token" && method == Method::POST {
        token(&mut s, &body)
    } else {
        let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
        if !s.tokens.iter().any(|t| t == token) {
            sf_error(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid")
        } else {
            s.api_used += 1;
            if s.api_used > s.api_max {
                sf_error(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            } else {
                let failure = match s.endpoint_failures.iter().position(|(e, _)| *e == endpoint) {
                    Some(i) => Some(s.endpoint_failures.remove(i).1),
                    None => s.failures.pop_front(),
                };
                match failure {
                    Some(Failure::ServerError) => sf_error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN_EXCEPTION", "injected failure"),
                    Some(Failure::RateLimited { .. }) => sf_error(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "injected limit"),
                    Some(Failure::ServerErrorAfterWrite) => {
                        let _ = data_route(&mut s, &method, &path, &query, &body);
                        sf_error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN_EXCEPTION", "injected failure after the write")
                    }
                    None => data_route(&mut s, &method, &path, &query, &body),
                }
            }
        }
    };
    s.requests.push(RequestRecord { method: method.to_string(), path: path.clone(), query, endpoint, status: status.as_u16() });
    let usage = format!("api-usage={}/{}", s.api_used.min(s.api_max), s.api_max);
    if status == StatusCode::NO_CONTENT {
        return (status, [("sforce-limit-info", usage)]).into_response();
    }
    (status, [("content-type", "application/json".to_string()), ("sforce-limit-info", usage)], answer.to_string()).into_response()
}

/// `/services/data/v66.0/sobjects/Opportunity/Prm_Referral_Id__c/r1` →
/// `/services/data/{v}/sobjects/Opportunity/Prm_Referral_Id__c/{value}`.
fn endpoint_of(path: &str) -> String {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["services", "data", _, "sobjects", obj, field, _] => format!("/services/data/{{v}}/sobjects/{obj}/{field}/{{value}}"),
        ["services", "data", _, "sobjects", obj, _] => format!("/services/data/{{v}}/sobjects/{obj}/{{id}}"),
        ["services", "data", _, "query", _] => "/services/data/{v}/query/{locator}".into(),
        ["services", "data", _, rest @ ..] => format!("/services/data/{{v}}/{}", rest.join("/")),
        _ => path.to_string(),
    }
}

fn token(s: &mut SfState, body: &[u8]) -> (StatusCode, Value) {
    let form = String::from_utf8_lossy(body).to_string();
    let field = |k: &str| form.split('&').filter_map(|kv| kv.split_once('=')).find(|(a, _)| *a == k).map(|(_, v)| v.to_string());
    let invalid = |d: &str| (StatusCode::BAD_REQUEST, json!({"error": "invalid_grant", "error_description": d}));
    if field("grant_type").as_deref() != Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") {
        return invalid("unsupported grant type");
    }
    let Some((public_key, consumer_key)) = s.jwt.clone() else { return invalid("no connected app accepts JWTs here") };
    let Some(assertion) = field("assertion") else { return invalid("no assertion") };
    let Ok(key) = DecodingKey::from_rsa_pem(public_key.as_bytes()) else { return invalid("bad certificate") };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[s.base_url.as_str()]);
    validation.set_issuer(&[consumer_key.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = match jsonwebtoken::decode::<JwtClaims>(&assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => return invalid(&format!("assertion rejected: {e}")),
    };
    if claims.exp > Timestamp::now().as_second() + 300 {
        return invalid("expiration too far in the future");
    }
    s.assertions.push(claims);
    let token = format!("00Dfake!jwt-{}", s.tokens.len());
    s.tokens.push(token.clone());
    let now = Timestamp::now().as_millisecond().to_string();
    (
        StatusCode::OK,
        json!({"access_token": token, "instance_url": s.base_url, "id": format!("{}/id/00D/005", s.base_url), "token_type": "Bearer", "issued_at": now, "signature": "fake"}),
    )
}
