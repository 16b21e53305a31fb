//! HTTP deliveries: outbound webhooks signed per the Standard Webhooks
//! spec, and Slack incoming-webhook messages.
//!
//! Rules: a webhook carries `webhook-id` (the item's idempotency key: the
//! same on every retry), `webhook-timestamp` (seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//! under the endpoint's secret (`whsec_` + base64). A 2xx is delivered;
//! 410 Gone and a deleted or disabled endpoint are permanent; anything
//! else is retried. TLS is rustls with the ring provider and the webpki
//! roots, like every other client in the binary.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use partnerloop_app::notifications::{secret_context, slack_context};
use partnerloop_app::outbox::{Channel, OutboxItem};
use partnerloop_app::sealing::Sealer;
use partnerloop_app::{Store, StoreError};
use partnerloop_domain::ids::WorkspaceId;
use sha2::Sha256;

use crate::transport::{Delivered, Failure, Transport};

/// The `webhook-signature` value for a message (Standard Webhooks v1).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).map_err(|e| format!("webhook secret is not base64: {e}"))?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// Makes ring the process's TLS crypto provider (reqwest is built without
/// one of its own, so that one provider serves sqlx, lettre and reqwest).
/// Idempotent; call before building any HTTP client.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client for outbound calls: rustls + ring + webpki roots, timeouts.
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    let builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .user_agent("partnerloop-webhooks/1");
    let builder = match tls {
        Ok(cfg) => builder.tls_backend_preconfigured(cfg),
        Err(e) => {
            tracing::error!(error = %e, "TLS setup failed: outbound HTTPS will not work");
            builder
        }
    };
    builder.build().unwrap_or_default()
}

/// Delivers webhook and Slack items.
pub struct HttpSender {
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    client: reqwest::Client,
    /// The Slack URL from the environment, for this workspace.
    default_slack: Option<(WorkspaceId, String)>,
}

impl HttpSender {
    pub fn new(store: Arc<dyn Store>, sealer: Arc<Sealer>, default_slack: Option<(WorkspaceId, String)>) -> Self {
        Self { store, sealer, client: client(), default_slack }
    }

    async fn post(&self, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Result<Delivered, Failure> {
        let mut req = self.client.post(url).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.body(body).send().await.map_err(|e| Failure::transient(format!("POST failed: {}", without_url(&e))))?;
        let code = resp.status().as_u16();
        match code {
            200..=299 => Ok(Some(code)),
            410 => Err(Failure::Permanent { code: Some(code), error: "the receiver answered 410 Gone".into() }),
            _ => Err(Failure::Transient { code: Some(code), error: format!("the receiver answered {code}") }),
        }
    }

    async fn webhook(&self, item: &OutboxItem) -> Result<Delivered, Failure> {
        let endpoint = match self.store.webhook_endpoint(&item.workspace_id, &item.target).await {
            Ok(e) => e,
            Err(StoreError::NotFound) => return Err(Failure::permanent("the endpoint was deleted")),
            Err(e) => return Err(Failure::transient(format!("reading the endpoint: {e}"))),
        };
        if !endpoint.active {
            return Err(Failure::permanent("the endpoint is disabled"));
        }
        let secret = self
            .sealer
            .open(&secret_context(&item.workspace_id, &endpoint.id), &endpoint.secret_sealed)
            .map_err(|_| Failure::permanent("the endpoint's secret cannot be opened (was PARTNERLOOP_SECRET_KEY changed?)"))?;
        let secret = String::from_utf8(secret).map_err(|_| Failure::permanent("the endpoint's secret is not text"))?;
        let body = item.payload.to_string().into_bytes();
        let ts = jiff::Timestamp::now().as_second();
        let signature = sign(&secret, &item.idempotency_key, ts, &body).map_err(Failure::permanent)?;
        let headers =
            [("webhook-id", item.idempotency_key.clone()), ("webhook-timestamp", ts.to_string()), ("webhook-signature", signature)];
        self.post(&endpoint.url, &headers, body).await
    }

    async fn slack(&self, item: &OutboxItem) -> Result<Delivered, Failure> {
        let stored =
            self.store.notification_settings(&item.workspace_id).await.map_err(|e| Failure::transient(format!("reading settings: {e}")))?;
        let url = match stored.and_then(|s| s.slack_sealed) {
            Some(sealed) => {
                let raw = self
                    .sealer
                    .open(&slack_context(&item.workspace_id), &sealed)
                    .map_err(|_| Failure::permanent("the Slack URL cannot be opened (was PARTNERLOOP_SECRET_KEY changed?)"))?;
                String::from_utf8(raw).map_err(|_| Failure::permanent("the Slack URL is not text"))?
            }
            None => match &self.default_slack {
                Some((ws, url)) if ws == &item.workspace_id => url.clone(),
                _ => return Err(Failure::permanent("Slack is not configured for this workspace any more")),
            },
        };
        match self.post(&url, &[], item.payload.to_string().into_bytes()).await {
            // Slack answers 4xx for a revoked or wrong webhook: retrying cannot help.
            Err(Failure::Transient { code: Some(c), error }) if (400..500).contains(&c) && c != 429 => {
                Err(Failure::Permanent { code: Some(c), error })
            }
            other => other,
        }
    }
}

/// A reqwest error without its URL (a Slack URL is a credential).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "request error"
    } else {
        "transport error"
    };
    kind.to_owned()
}

#[async_trait]
impl Transport for HttpSender {
    async fn deliver(&self, item: &OutboxItem) -> Result<Delivered, Failure> {
        match item.channel {
            Channel::Webhook => self.webhook(item).await,
            Channel::Slack => self.slack(item).await,
            other => Err(Failure::permanent(format!("no HTTP delivery for {} items", other.as_str()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sign;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
