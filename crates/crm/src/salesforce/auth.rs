//! The JWT bearer assertion and the token exchange.

use jiff::Timestamp;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use partnerloop_app::crm::CrmError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{status_error, transport_error};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
}

/// An RS256 assertion valid for 3 minutes (Salesforce's maximum).
pub fn jwt_assertion(
    consumer_key: &str,
    username: &str,
    login_url: &str,
    private_key_pem: &str,
    now: Timestamp,
) -> Result<String, CrmError> {
    let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
        .map_err(|e| CrmError::Unauthorized(format!("the Salesforce private key is not an RSA PEM: {e}")))?;
    let claims = JwtClaims {
        iss: consumer_key.into(),
        sub: username.into(),
        aud: login_url.trim_end_matches('/').into(),
        exp: now.as_second() + 180,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key)
        .map_err(|e| CrmError::Unauthorized(format!("cannot sign the JWT: {e}")))
}

pub struct Session {
    pub token: String,
    pub instance_url: String,
}

/// `POST {login}/services/oauth2/token` with the jwt-bearer grant.
pub async fn exchange(http: &reqwest::Client, login_url: &str, assertion: &str) -> Result<Session, CrmError> {
    // An assertion is base64url and dots only: nothing to escape.
    let body = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
    let response = http
        .post(format!("{}/services/oauth2/token", login_url.trim_end_matches('/')))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| transport_error(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.map_err(|e| transport_error(&e))?;
    if !status.is_success() {
        // invalid_grant and friends are 400: credentials, not the request.
        return Err(match status_error(status, &headers, &text) {
            CrmError::Rejected { message, .. } => CrmError::Unauthorized(message),
            other => other,
        });
    }
    let answer: Value = serde_json::from_str(&text).map_err(|e| CrmError::Unavailable(format!("unreadable token answer: {e}")))?;
    let field = |k: &str| answer.get(k).and_then(Value::as_str).map(str::to_string);
    match (field("access_token"), field("instance_url")) {
        (Some(token), Some(instance_url)) => Ok(Session { token, instance_url }),
        _ => Err(CrmError::Unauthorized("the token answer lacks access_token or instance_url".into())),
    }
}
