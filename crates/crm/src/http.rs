//! What both connectors share about HTTP: the client (rustls with the ring
//! provider, timeouts), the mapping of statuses to [`CrmError`], money as
//! CRM text, and secrets that never print.
//!
//! Rules: 429 → `RateLimited` (with `Retry-After` when given, else one
//! second); 5xx, timeouts and refused connections → `Unavailable`; 401/403
//! → `Unauthorized`; 404 → `NotFound`; any other 4xx → `Rejected`. Error
//! messages carry the CRM's message, cut short, never a request header.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use partnerloop_app::crm::CrmError;
use partnerloop_domain::money::{Currency, Money};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use rust_decimal::Decimal;

/// A credential: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Makes ring the process's TLS provider (idempotent); reqwest is built
/// without one of its own so that sqlx, lettre and reqwest share it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for CRM calls: rustls + ring + webpki roots.
pub fn client(timeout: Duration) -> reqwest::Client {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    let builder = reqwest::Client::builder().timeout(timeout).connect_timeout(Duration::from_secs(5)).user_agent("partnerloop-crm/1");
    let builder = match tls {
        Ok(cfg) => builder.tls_backend_preconfigured(cfg),
        Err(_) => builder,
    };
    builder.build().unwrap_or_default()
}

/// `Retry-After` in seconds (HubSpot and Salesforce send seconds).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    text.parse::<u64>()
        .ok()
        .map(Duration::from_secs)
        .or_else(|| text.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64))
}

/// The error for a non-2xx answer.
pub fn status_error(status: StatusCode, headers: &HeaderMap, body: &str) -> CrmError {
    let message = short(body);
    match status.as_u16() {
        429 => CrmError::RateLimited { retry_after: retry_after(headers).unwrap_or(Duration::from_secs(1)) },
        401 | 403 => CrmError::Unauthorized(format!("{status}: {message}")),
        404 => CrmError::NotFound(message),
        s if status.is_server_error() => CrmError::Unavailable(format!("{s}: {message}")),
        s => CrmError::Rejected { status: s, message },
    }
}

/// The error for a request that got no answer.
pub fn transport_error(e: &reqwest::Error) -> CrmError {
    // Without the URL: a Salesforce upsert URL carries an email address.
    CrmError::Unavailable(e.without_url_ref().to_string())
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let kind = if self.is_timeout() {
            "timed out"
        } else if self.is_connect() {
            "could not connect"
        } else if self.is_decode() {
            "unreadable answer"
        } else {
            "request failed"
        };
        kind.to_string()
    }
}

fn short(body: &str) -> String {
    let text = body.trim();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// A path fit for logs: no query, and at most the first four segments
/// (`/crm/v3/objects/contacts`), since later ones can be email addresses.
pub fn log_path(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    path.split('/').take(5).collect::<Vec<_>>().join("/")
}

/// Percent-encodes one path or query segment (ids may hold `@`, `+`, spaces).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `1500.00` from minor units and the currency's exponent, exactly.
pub fn decimal_text(money: Money) -> String {
    money.amount_string()
}

/// Reads a CRM amount ("1500", "1500.5", 1500.25) into money, rounding
/// half-even to the currency's minor unit when the CRM stored more digits.
pub fn money_from_text(text: &str, currency: Currency) -> Option<Money> {
    let value: Decimal = text.trim().parse().ok().or_else(|| Decimal::from_scientific(text.trim()).ok())?;
    Money::from_decimal_half_even(value, currency).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_written_from_minor_units_without_floats() {
        let usd = Currency::USD;
        assert_eq!(decimal_text(Money::from_minor(150_000, usd)), "1500.00");
        assert_eq!(decimal_text(Money::from_minor(1, usd)), "0.01");
        let jpy = Currency::parse("c", "JPY").unwrap();
        assert_eq!(decimal_text(Money::from_minor(1500, jpy)), "1500");
        let kwd = Currency::parse("c", "KWD").unwrap();
        assert_eq!(decimal_text(Money::from_minor(1_500_125, kwd)), "1500.125");
        assert_eq!(decimal_text(Money::from_minor(9_007_199_254_740_993, usd)), "90071992547409.93");
    }

    #[test]
    fn amounts_are_read_back_exactly() {
        assert_eq!(money_from_text("1500", Currency::USD), Some(Money::from_minor(150_000, Currency::USD)));
        assert_eq!(money_from_text("1500.5", Currency::USD), Some(Money::from_minor(150_050, Currency::USD)));
        assert_eq!(money_from_text("0.125", Currency::USD), Some(Money::from_minor(12, Currency::USD)));
        assert_eq!(money_from_text("abc", Currency::USD), None);
    }

    #[test]
    fn statuses_map_to_retryable_or_permanent_errors() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(status_error(StatusCode::TOO_MANY_REQUESTS, &h, ""), CrmError::RateLimited { retry_after: Duration::from_secs(7) });
        assert!(status_error(StatusCode::BAD_GATEWAY, &HeaderMap::new(), "").is_retryable());
        assert!(matches!(status_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), "x"), CrmError::Rejected { status: 400, .. }));
        assert!(matches!(status_error(StatusCode::UNAUTHORIZED, &HeaderMap::new(), ""), CrmError::Unauthorized(_)));
        assert!(format!("{:?}", Secret::new("pat-na1-123")).find("pat-na1").is_none());
        assert_eq!(log_path("/crm/v3/objects/contacts/jane%40acme.com?idProperty=email"), "/crm/v3/objects/contacts");
    }
}
