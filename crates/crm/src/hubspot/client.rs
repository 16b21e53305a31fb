//! HubSpot HTTP calls: bearer token, even spacing by a governor, one
//! inline wait on a short 429, statuses mapped to `CrmError`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use partnerloop_app::crm::CrmError;
use reqwest::Method;
use serde_json::Value;

use super::HubSpotConfig;
use crate::http::{Secret, client, log_path, retry_after, status_error, transport_error};

pub struct HubSpotClient {
    http: reqwest::Client,
    base_url: String,
    token: Secret,
    limiter: DefaultDirectRateLimiter,
    max_inline_wait: Duration,
    calls: AtomicU64,
    limited: AtomicU64,
}

impl HubSpotClient {
    pub fn new(config: &HubSpotConfig) -> Result<Self, CrmError> {
        let per_10s = NonZeroU32::new(config.requests_per_10s)
            .ok_or_else(|| CrmError::Rejected { status: 0, message: "requests_per_10s must be at least 1".into() })?;
        // Evenly spaced with a burst of one: no 10-second window ever sees
        // more than `requests_per_10s` (+1 at its edge) calls from us.
        let period = Duration::from_secs(10) / per_10s.get();
        let quota = Quota::with_period(period).ok_or_else(|| CrmError::Rejected { status: 0, message: "rate limit too high".into() })?;
        Ok(Self {
            http: client(config.timeout),
            base_url: config.base_url.trim_end_matches('/').to_string(),
            token: config.token.clone(),
            limiter: RateLimiter::direct(quota),
            max_inline_wait: config.max_inline_wait,
            calls: AtomicU64::new(0),
            limited: AtomicU64::new(0),
        })
    }

    pub fn calls_made(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn rate_limited_answers(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    pub async fn get(&self, path_and_query: &str) -> Result<Value, CrmError> {
        self.send(Method::GET, path_and_query, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CrmError> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// One call; a 429 asking for at most `max_inline_wait` is retried once.
    pub async fn send(&self, method: Method, path_and_query: &str, body: Option<&Value>) -> Result<Value, CrmError> {
        let url = format!("{}{}", self.base_url, path_and_query);
        let mut waited = false;
        loop {
            self.limiter.until_ready().await;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mut request = self.http.request(method.clone(), &url).bearer_auth(self.token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| transport_error(&e))?;
            let status = response.status();
            let headers = response.headers().clone();
            let text = response.text().await.map_err(|e| transport_error(&e))?;
            if status.is_success() {
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                return serde_json::from_str(&text).map_err(|e| CrmError::Unavailable(format!("HubSpot answered unreadable JSON: {e}")));
            }
            if status.as_u16() == 429 {
                self.limited.fetch_add(1, Ordering::Relaxed);
                let wait = retry_after(&headers).unwrap_or(Duration::from_secs(1));
                if !waited && wait <= self.max_inline_wait {
                    tracing::debug!(method = %method, path = log_path(path_and_query), ?wait, "HubSpot rate limit: waiting");
                    tokio::time::sleep(wait).await;
                    waited = true;
                    continue;
                }
            }
            let error = status_error(status, &headers, &text);
            if !matches!(error, CrmError::NotFound(_)) {
                tracing::warn!(method = %method, path = log_path(path_and_query), status = status.as_u16(), "HubSpot call failed");
            }
            return Err(error);
        }
    }
}
