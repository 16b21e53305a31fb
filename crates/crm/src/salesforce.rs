//! The Salesforce connector (REST API, version configurable, e.g. `v66.0`).
//!
//! Auth: a given access token + instance URL, or the OAuth 2.0 JWT bearer
//! flow (RS256 assertion: `iss` consumer key, `sub` username, `aud` login
//! URL, `exp` 3 minutes ahead), renewed once when a call answers 401.
//!
//! Idempotency by external-id upserts (`PATCH …/sobjects/{Object}/{Field}/{value}`):
//! Account by `Prm_Domain__c` (the domain, or `name:<lower-case name>`),
//! Contact by `Prm_Email__c`, Opportunity by `Prm_Referral_Id__c`, and the
//! note — a completed Task on the Opportunity — by `Prm_Key__c` (the
//! outbox key). A Task was chosen over ContentNote + ContentDocumentLink
//! because it is one call that upserts by external id; a ContentNote has
//! no external id, so a retry could not find it again cheaply. These
//! custom fields (External ID, unique) must exist in the org.
//!
//! Limits: `Sforce-Limit-Info: api-usage=n/N` is read on every answer;
//! at or above `backoff_at_usage` (default 90 %) of the daily allocation
//! calls are not made for `backoff_for` (15 min) and `RateLimited` is
//! returned; the next call after that probes the allocation again.
//! `REQUEST_LIMIT_EXCEEDED` (403) and 429 → `RateLimited`.

mod auth;
mod client;
mod connector;
mod soql;

pub use auth::{JwtClaims, jwt_assertion};
pub use client::SalesforceClient;
pub use connector::Salesforce;

use std::time::Duration;

use partnerloop_domain::money::Currency;

use crate::http::Secret;

pub const REFERRAL_FIELD: &str = "Prm_Referral_Id__c";
pub const ACCOUNT_KEY_FIELD: &str = "Prm_Domain__c";
pub const CONTACT_KEY_FIELD: &str = "Prm_Email__c";
pub const TASK_KEY_FIELD: &str = "Prm_Key__c";

#[derive(Debug, Clone)]
pub enum SalesforceAuth {
    /// A token obtained elsewhere (e.g. the client-credentials flow).
    AccessToken { token: Secret, instance_url: String },
    /// OAuth 2.0 JWT bearer flow.
    JwtBearer {
        /// `https://login.salesforce.com`, `https://test.salesforce.com` or the My Domain URL; also the `aud`.
        login_url: String,
        /// The connected app's consumer key (`iss`).
        consumer_key: String,
        /// The pre-authorised user (`sub`).
        username: String,
        /// RS256 private key, PEM (PKCS#1 or PKCS#8).
        private_key_pem: Secret,
    },
}

#[derive(Debug, Clone)]
pub struct SalesforceConfig {
    pub auth: SalesforceAuth,
    /// `v66.0`.
    pub api_version: String,
    pub timeout: Duration,
    /// Currency of Opportunity amounts (single-currency orgs).
    pub currency: Currency,
    /// CloseDate is required: used when a referral has none, days from now.
    pub default_close_days: i64,
    pub poll_overlap: Duration,
    /// Stop calling at this share of the daily API allocation (0.0–1.0).
    pub backoff_at_usage: f64,
    /// How long to stay away after seeing usage at or above that share,
    /// before one call probes the allocation again.
    pub backoff_for: Duration,
}

impl SalesforceConfig {
    pub fn new(auth: SalesforceAuth) -> Self {
        Self {
            auth,
            api_version: "v66.0".into(),
            timeout: Duration::from_secs(30),
            currency: Currency::USD,
            default_close_days: 90,
            poll_overlap: Duration::from_secs(5),
            backoff_at_usage: 0.9,
            backoff_for: Duration::from_secs(15 * 60),
        }
    }
}
