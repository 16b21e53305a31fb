//! HubSpot webhook deliveries: the v3 signature and the event payload.
//!
//! Rules (HubSpot "Validating requests", v3): the signed text is
//! `METHOD + full URL HubSpot called + raw body + timestamp header`, the
//! signature `base64(HMAC-SHA256(app client secret, text))`, compared in
//! constant time; a timestamp more than 300 s away from now is refused
//! (both directions: a clock ahead of ours is as suspect as a replay).
//! Behind a proxy the URL must be rebuilt from the configured public base
//! URL, exactly as HubSpot called it. Delivery is at least once and out of
//! order: deduplicate on `eventId`, then read the deal for its stage.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::Deserialize;
use sha2::Sha256;

/// How far the request timestamp may be from now.
pub const MAX_SKEW_MS: i64 = 300_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-HubSpot-Request-Timestamp header is missing or not a number")]
    BadTimestamp,
    #[error("the request timestamp is more than 5 minutes away from now")]
    Stale,
    #[error("the X-HubSpot-Signature-v3 header is missing or not base64")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
}

/// The v3 signature for a request (what HubSpot sends; tests sign with it).
pub fn sign_v3(method: &str, full_url: &str, body: &[u8], timestamp: &str, client_secret: &str) -> String {
    STANDARD.encode(mac(method, full_url, body, timestamp, client_secret).finalize().into_bytes())
}

fn mac(method: &str, full_url: &str, body: &[u8], timestamp: &str, client_secret: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(client_secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(method.to_ascii_uppercase().as_bytes());
    mac.update(full_url.as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac
}

/// Checks `X-HubSpot-Signature-v3` against the request as received.
pub fn verify_signature_v3(
    method: &str,
    full_url: &str,
    body: &[u8],
    timestamp_header: &str,
    signature_header: &str,
    client_secret: &str,
    now: Timestamp,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp_header.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    if (now.as_millisecond() - ts).abs() > MAX_SKEW_MS {
        return Err(SignatureError::Stale);
    }
    let given = STANDARD.decode(signature_header.trim()).map_err(|_| SignatureError::Malformed)?;
    mac(method, full_url, body, timestamp_header, client_secret).verify_slice(&given).map_err(|_| SignatureError::Mismatch)
}

/// One event of a delivery (a JSON array of up to 100).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubSpotEvent {
    /// Deduplication key: HubSpot delivers at least once.
    pub event_id: u64,
    pub subscription_id: Option<u64>,
    pub portal_id: Option<u64>,
    pub app_id: Option<u64>,
    /// Milliseconds since the epoch.
    pub occurred_at: i64,
    pub subscription_type: String,
    #[serde(default)]
    pub attempt_number: u32,
    /// The deal id for `deal.*` events.
    pub object_id: u64,
    pub property_name: Option<String>,
    pub property_value: Option<String>,
    pub change_source: Option<String>,
}

impl HubSpotEvent {
    /// The new stage when this is a `deal.propertyChange` of `dealstage`.
    pub fn deal_stage_change(&self) -> Option<(String, &str)> {
        (self.subscription_type == "deal.propertyChange" && self.property_name.as_deref() == Some("dealstage"))
            .then(|| (self.object_id.to_string(), self.property_value.as_deref().unwrap_or_default()))
    }

    pub fn occurred_at(&self) -> Option<Timestamp> {
        Timestamp::from_millisecond(self.occurred_at).ok()
    }
}

/// Parses a delivery, keeping `deal.propertyChange` events, each
/// `eventId` once (in order of first appearance).
pub fn parse_events(body: &[u8]) -> Result<Vec<HubSpotEvent>, serde_json::Error> {
    let all: Vec<HubSpotEvent> = serde_json::from_slice(body)?;
    let mut seen = std::collections::HashSet::new();
    Ok(all.into_iter().filter(|e| e.subscription_type == "deal.propertyChange" && seen.insert(e.event_id)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://example.com/hooks/hubspot";

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(ms).unwrap()
    }

    #[test]
    fn the_documented_example_verifies() {
        let expected = "rNgcgQ+5+gYFGbP8aUNbnuAUVKJBpqQJMC2lGiDnW58=";
        assert_eq!(sign_v3("POST", URL, b"[]", "1700000000000", "secret"), expected);
        assert_eq!(verify_signature_v3("POST", URL, b"[]", "1700000000000", expected, "secret", at(1_700_000_100_000)), Ok(()));
    }

    #[test]
    fn a_changed_body_url_or_secret_does_not_verify() {
        let sig = sign_v3("POST", URL, b"[]", "1700000000000", "secret");
        let now = at(1_700_000_000_000);
        assert_eq!(verify_signature_v3("POST", URL, b"[ ]", "1700000000000", &sig, "secret", now), Err(SignatureError::Mismatch));
        assert_eq!(
            verify_signature_v3("POST", "https://example.com/hooks/other", b"[]", "1700000000000", &sig, "secret", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify_signature_v3("POST", URL, b"[]", "1700000000000", &sig, "other", now), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature_v3("POST", URL, b"[]", "1700000000000", "not base64!", "secret", now), Err(SignatureError::Malformed));
    }

    #[test]
    fn stale_or_future_timestamps_are_refused_even_when_signed() {
        let sig = sign_v3("POST", URL, b"[]", "1700000000000", "secret");
        assert_eq!(
            verify_signature_v3("POST", URL, b"[]", "1700000000000", &sig, "secret", at(1_700_000_300_001)),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature_v3("POST", URL, b"[]", "1700000000000", &sig, "secret", at(1_699_999_699_999)),
            Err(SignatureError::Stale)
        );
        assert_eq!(verify_signature_v3("POST", URL, b"[]", "1700000000000", &sig, "secret", at(1_700_000_300_000)), Ok(()));
        assert_eq!(verify_signature_v3("POST", URL, b"[]", "yesterday", &sig, "secret", at(0)), Err(SignatureError::BadTimestamp));
    }

    #[test]
    fn deal_stage_changes_are_parsed_and_deduplicated_on_event_id() {
        let body = br#"[
          {"eventId":1,"subscriptionId":123,"portalId":62515,"appId":54321,"occurredAt":1764000000000,
           "subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":456,
           "propertyName":"dealstage","propertyValue":"closedwon","changeSource":"CRM","sourceId":"userId:1"},
          {"eventId":1,"subscriptionId":123,"portalId":62515,"appId":54321,"occurredAt":1764000000000,
           "subscriptionType":"deal.propertyChange","attemptNumber":1,"objectId":456,
           "propertyName":"dealstage","propertyValue":"closedwon"},
          {"eventId":2,"occurredAt":1764000000001,"subscriptionType":"contact.creation","objectId":9},
          {"eventId":3,"occurredAt":1764000000002,"subscriptionType":"deal.propertyChange","objectId":457,
           "propertyName":"amount","propertyValue":"10"}
        ]"#;
        let events = parse_events(body).unwrap();
        assert_eq!(events.iter().map(|e| e.event_id).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(events[0].deal_stage_change(), Some(("456".to_string(), "closedwon")));
        assert_eq!(events[1].deal_stage_change(), None);
        assert_eq!(events[0].occurred_at().map(|t| t.as_millisecond()), Some(1_764_000_000_000));
        assert!(parse_events(b"{\"eventId\":1}").is_err());
    }
}
