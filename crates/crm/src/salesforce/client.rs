//! Salesforce HTTP calls: the session (given or by JWT, renewed on 401),
//! API-usage tracking from `Sforce-Limit-Info`, errors mapped.

use std::sync::Mutex;
use std::time::Instant;

use jiff::Timestamp;
use partnerloop_app::crm::CrmError;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::auth::{Session, exchange, jwt_assertion};
use super::{SalesforceAuth, SalesforceConfig};
use crate::http::{client, log_path, status_error, transport_error};

pub struct SalesforceClient {
    http: reqwest::Client,
    config: SalesforceConfig,
    session: tokio::sync::Mutex<Option<Session>>,
    /// Last `api-usage=used/max` seen, and when.
    usage: Mutex<Option<(u64, u64, Instant)>>,
}

/// What a call answered: status and JSON (Null for 204).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl SalesforceClient {
    pub fn new(config: SalesforceConfig) -> Self {
        Self { http: client(config.timeout), config, session: tokio::sync::Mutex::new(None), usage: Mutex::new(None) }
    }

    pub fn config(&self) -> &SalesforceConfig {
        &self.config
    }

    /// The daily API usage from the last answer: (used, allocation).
    pub fn api_usage(&self) -> Option<(u64, u64)> {
        self.usage.lock().unwrap_or_else(|p| p.into_inner()).map(|(used, max, _)| (used, max))
    }

    /// `/services/data/v66.0` + `rest`.
    pub fn data_path(&self, rest: &str) -> String {
        format!("/services/data/{}{}", self.config.api_version, rest)
    }

    async fn session(&self, renew: bool) -> Result<(String, String), CrmError> {
        let mut session = self.session.lock().await;
        if renew || session.is_none() {
            *session = Some(match &self.config.auth {
                SalesforceAuth::AccessToken { token, instance_url } => {
                    Session { token: token.expose().to_string(), instance_url: instance_url.clone() }
                }
                SalesforceAuth::JwtBearer { login_url, consumer_key, username, private_key_pem } => {
                    let assertion = jwt_assertion(consumer_key, username, login_url, private_key_pem.expose(), Timestamp::now())?;
                    exchange(&self.http, login_url, &assertion).await?
                }
            });
        }
        let s = session.as_ref().ok_or_else(|| CrmError::Unauthorized("no Salesforce session".into()))?;
        Ok((s.token.clone(), s.instance_url.trim_end_matches('/').to_string()))
    }

    /// One call to `path` (absolute path on the instance, e.g. a
    /// `nextRecordsUrl`); renews a JWT session once on 401.
    pub async fn call(&self, method: Method, path: &str, body: Option<String>) -> Result<Answer, CrmError> {
        let seen = *self.usage.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((used, max, at)) = seen
            && max > 0
            && used as f64 >= max as f64 * self.config.backoff_at_usage
            && at.elapsed() < self.config.backoff_for
        {
            tracing::warn!(used, max, "Salesforce API allocation nearly used up: backing off");
            return Err(CrmError::RateLimited { retry_after: self.config.backoff_for.saturating_sub(at.elapsed()) });
        }
        let mut renewed = false;
        loop {
            let (token, instance) = self.session(false).await?;
            let mut request = self.http.request(method.clone(), format!("{instance}{path}")).bearer_auth(&token);
            if let Some(body) = &body {
                request = request.header("content-type", "application/json").body(body.clone());
            }
            let response = request.send().await.map_err(|e| transport_error(&e))?;
            let status = response.status();
            let headers = response.headers().clone();
            if let Some(usage) = headers.get("sforce-limit-info").and_then(|v| v.to_str().ok()).and_then(parse_usage) {
                *self.usage.lock().unwrap_or_else(|p| p.into_inner()) = Some((usage.0, usage.1, Instant::now()));
            }
            let text = response.text().await.map_err(|e| transport_error(&e))?;
            if status.is_success() {
                let body = if text.trim().is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text).map_err(|e| CrmError::Unavailable(format!("unreadable answer: {e}")))?
                };
                return Ok(Answer { status, body });
            }
            if status == StatusCode::UNAUTHORIZED && !renewed && matches!(self.config.auth, SalesforceAuth::JwtBearer { .. }) {
                renewed = true;
                self.session(true).await?;
                continue;
            }
            if text.contains("REQUEST_LIMIT_EXCEEDED") {
                return Err(CrmError::RateLimited { retry_after: self.config.backoff_for });
            }
            tracing::warn!(method = %method, path = log_path(path), status = status.as_u16(), "Salesforce call failed");
            return Err(status_error(status, &headers, &text));
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, CrmError> {
        Ok(self.call(Method::GET, path, None).await?.body)
    }
}

/// `api-usage=25/15000` (possibly among other entries) → (25, 15000).
pub fn parse_usage(header: &str) -> Option<(u64, u64)> {
    let entry = header.split(',').map(str::trim).find_map(|e| e.strip_prefix("api-usage="))?;
    let (used, max) = entry.split_once('/')?;
    Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse_usage;

    #[test]
    fn api_usage_is_read_from_the_limit_header() {
        assert_eq!(parse_usage("api-usage=25/15000"), Some((25, 15000)));
        assert_eq!(parse_usage("per-app-api-usage=1/100, api-usage=7/100"), Some((7, 100)));
        assert_eq!(parse_usage("nonsense"), None);
    }
}
