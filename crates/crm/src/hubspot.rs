//! The HubSpot connector (CRM v3 objects, v4 associations, v3 pipelines
//! and properties), request shapes exactly as HubSpot's OpenAPI documents
//! state them: property values are strings; `associations` is always sent
//! (`[]` when none); search bodies carry filterGroups, properties, limit,
//! after and sorts; batches hold at most 100 inputs.
//!
//! Idempotency (every write may be retried by the outbox):
//! - deal: `partnerloop_referral_id` is a *unique* deal property, read back
//!   with `GET …/0-3/{referral}?idProperty=partnerloop_referral_id` (read
//!   after write consistent, unlike search) and a duplicate create is
//!   refused by HubSpot with 409, which we answer by reading it back;
//! - contact: HubSpot keeps emails unique: read by `idProperty=email`, a
//!   409 on create is read back the same way;
//! - company: search by domain (or by name when there is none) to find
//!   companies sales already has; when none, `companies/batch/upsert` by
//!   the unique `partnerloop_company_key`, so a retry after a lost answer
//!   updates the company it created instead of adding one;
//! - note: a marker `plk<hash of key>` ends the body; before creating, the
//!   deal's notes are listed through its v4 associations and read in
//!   batches to look for it.
//!
//! Only "does sales already have this company?" uses search, whose index
//! lags writes by seconds; everything a retry must find again is read by
//! unique property or through associations, which the search index does
//! not serve.
//!
//! Rate limiting: a client-side governor spaces calls evenly at
//! `requests_per_10s` (default 90, under the 100 of the smallest plan). A
//! 429 whose `Retry-After` is at most `max_inline_wait` is waited out once
//! inside the call; a longer one returns `CrmError::RateLimited` so the
//! outbox retries later. The token is sent only in `Authorization`, never
//! logged.

mod backfill;
mod changes;
mod client;
mod sync;

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::crm::{BackfillPage, ChangesPage, CrmConnector, CrmError, CrmKind, CrmRefs, CrmStage, DealForSync};
use partnerloop_domain::money::{Currency, Money};
use serde_json::{Value, json};

pub use client::HubSpotClient;

use crate::http::{Secret, decimal_text};

/// partnerloop's custom deal properties: (name, label, type, field type, unique).
pub const DEAL_PROPERTIES: [(&str, &str, &str, &str, bool); 4] = [
    (PROP_PARTNER_NAME, "Partner (partnerloop)", "string", "text", false),
    (PROP_PARTNER_ID, "Partner id (partnerloop)", "string", "text", false),
    (PROP_REFERRAL_ID, "Referral id (partnerloop)", "string", "text", true),
    (PROP_PARTNER_SOURCED, "Partner-sourced", "bool", "booleancheckbox", false),
];
pub const PROP_PARTNER_NAME: &str = "partnerloop_partner_name";
pub const PROP_PARTNER_ID: &str = "partnerloop_partner_id";
pub const PROP_REFERRAL_ID: &str = "partnerloop_referral_id";
pub const PROP_PARTNER_SOURCED: &str = "partnerloop_partner_sourced";

/// partnerloop's unique company key (the domain, or `name:<lower-case
/// name>`): companies partnerloop creates are upserted by it, so a retry
/// finds them even before HubSpot's search index does.
pub const COMPANY_KEY_PROPERTY: (&str, &str, &str, &str, bool) = (PROP_COMPANY_KEY, "Company key (partnerloop)", "string", "text", true);
pub const PROP_COMPANY_KEY: &str = "partnerloop_company_key";

/// Default association type ids (HUBSPOT_DEFINED).
pub mod assoc {
    pub const NOTE_TO_DEAL: u32 = 214;
    pub const DEAL_TO_COMPANY_PRIMARY: u32 = 5;
    pub const DEAL_TO_CONTACT: u32 = 3;
    pub const CONTACT_TO_COMPANY_PRIMARY: u32 = 1;
}

/// Object paths as HubSpot's spec files name them.
pub mod objects {
    pub const COMPANIES: &str = "/crm/v3/objects/companies";
    pub const CONTACTS: &str = "/crm/v3/objects/contacts";
    pub const DEALS: &str = "/crm/v3/objects/0-3";
    pub const NOTES: &str = "/crm/v3/objects/notes";
}

#[derive(Debug, Clone)]
pub struct HubSpotConfig {
    /// `https://api.hubapi.com`, or a fake's address in tests.
    pub base_url: String,
    /// Private-app or OAuth access token.
    pub token: Secret,
    /// Calls per rolling 10 seconds this client allows itself (HubSpot:
    /// 100 on Free/Starter, 190 on Professional/Enterprise per app).
    pub requests_per_10s: u32,
    /// A 429 asking to wait at most this long is waited out inside the
    /// call; a longer one is returned as `RateLimited`.
    pub max_inline_wait: Duration,
    pub timeout: Duration,
    /// The pipeline new deals go into.
    pub pipeline: String,
    /// Currency of amounts without `deal_currency_code`.
    pub currency: Currency,
    /// How far back each poll reaches before the last change seen.
    pub poll_overlap: Duration,
}

impl HubSpotConfig {
    pub fn new(base_url: impl Into<String>, token: Secret) -> Self {
        Self {
            base_url: base_url.into(),
            token,
            requests_per_10s: 90,
            max_inline_wait: Duration::from_secs(2),
            timeout: Duration::from_secs(20),
            pipeline: "default".into(),
            currency: Currency::USD,
            poll_overlap: Duration::from_secs(5),
        }
    }
}

/// HubSpot behind the [`CrmConnector`] port.
pub struct HubSpot {
    client: HubSpotClient,
    config: HubSpotConfig,
}

impl HubSpot {
    pub fn new(config: HubSpotConfig) -> Result<Self, CrmError> {
        Ok(Self { client: HubSpotClient::new(&config)?, config })
    }

    /// Calls made (including waited-out 429s) since start.
    pub fn calls_made(&self) -> u64 {
        self.client.calls_made()
    }

    /// 429 answers received since start.
    pub fn rate_limited_answers(&self) -> u64 {
        self.client.rate_limited_answers()
    }
}

/// Creates a custom property when absent (a 409 means an earlier or
/// concurrent attempt created it).
async fn ensure_property(
    client: &HubSpotClient,
    object: &str,
    group: &str,
    (name, label, kind, field_type, unique): (&str, &str, &str, &str, bool),
) -> Result<(), CrmError> {
    match client.get(&format!("/crm/v3/properties/{object}/{name}")).await {
        Ok(_) => return Ok(()),
        Err(CrmError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let mut body = json!({
        "name": name, "label": label, "type": kind, "fieldType": field_type,
        "groupName": group, "hasUniqueValue": unique,
        "description": "Set by partnerloop for partner-sourced records.",
    });
    if kind == "bool" {
        body["options"] = json!([
            {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": false},
            {"label": "No", "value": "false", "displayOrder": 1, "hidden": false}
        ]);
    }
    match client.send(reqwest::Method::POST, &format!("/crm/v3/properties/{object}"), Some(&body)).await {
        Ok(_) | Err(CrmError::Rejected { status: 409, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `"1500.00"`, exactly from minor units.
pub(crate) fn amount_property(amount: Money) -> String {
    decimal_text(amount)
}

/// A search body with every field the spec requires.
pub(crate) fn search_body(filters: Vec<Value>, properties: &[&str], limit: u32, after: &str, sorts: &[&str]) -> Value {
    json!({
        "filterGroups": [{"filters": filters}],
        "properties": properties,
        "limit": limit,
        "after": after,
        "sorts": sorts,
    })
}

pub(crate) fn filter(property: &str, operator: &str, value: &str) -> Value {
    json!({"propertyName": property, "operator": operator, "value": value})
}

pub(crate) fn association(to_id: &str, type_id: u32) -> Value {
    json!({"to": {"id": to_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]})
}

pub(crate) fn prop<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object.get("properties")?.get(name)?.as_str().filter(|s| !s.is_empty())
}

pub(crate) fn id_of(object: &Value) -> Result<String, CrmError> {
    object
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| CrmError::Unavailable("HubSpot answered without an id".into()))
}

#[async_trait]
impl CrmConnector for HubSpot {
    fn kind(&self) -> CrmKind {
        CrmKind::Hubspot
    }

    async fn prepare(&self) -> Result<(), CrmError> {
        for (name, label, kind, field_type, unique) in DEAL_PROPERTIES {
            ensure_property(&self.client, "deals", "dealinformation", (name, label, kind, field_type, unique)).await?;
        }
        ensure_property(&self.client, "companies", "companyinformation", COMPANY_KEY_PROPERTY).await
    }

    async fn stages(&self) -> Result<Vec<CrmStage>, CrmError> {
        let answer = self.client.get("/crm/v3/pipelines/deals").await?;
        let mut stages = Vec::new();
        for pipeline in answer.get("results").and_then(Value::as_array).into_iter().flatten() {
            let pipeline_id = pipeline.get("id").and_then(Value::as_str).unwrap_or_default();
            for stage in pipeline.get("stages").and_then(Value::as_array).into_iter().flatten() {
                let meta = |k: &str| stage.get("metadata").and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or_default().to_string();
                let closed = meta("isClosed") == "true";
                let probability: f64 = meta("probability").parse().unwrap_or(0.5);
                stages.push(CrmStage {
                    id: stage.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                    label: stage.get("label").and_then(Value::as_str).unwrap_or_default().to_string(),
                    pipeline_id: pipeline_id.to_string(),
                    closed_won: closed && probability >= 1.0,
                    closed_lost: closed && probability <= 0.0,
                });
            }
        }
        Ok(stages)
    }

    async fn sync_deal(&self, deal: &DealForSync, known: Option<&CrmRefs>) -> Result<CrmRefs, CrmError> {
        sync::sync_deal(&self.client, &self.config, deal, known).await
    }

    async fn set_stage(&self, deal_id: &str, stage: &str, amount: Option<Money>) -> Result<(), CrmError> {
        let mut properties = json!({"dealstage": stage});
        if let Some(amount) = amount {
            properties["amount"] = Value::String(amount_property(amount));
            properties["deal_currency_code"] = Value::String(amount.currency().code().to_string());
        }
        let path = format!("{}/{}", objects::DEALS, deal_id);
        self.client.send(reqwest::Method::PATCH, &path, Some(&json!({"properties": properties}))).await.map(|_| ())
    }

    async fn add_note(&self, deal_id: &str, key: &str, html_body: &str, at: Timestamp) -> Result<String, CrmError> {
        sync::add_note(&self.client, deal_id, key, html_body, at).await
    }

    async fn changes_since(&self, cursor: Option<&str>) -> Result<ChangesPage, CrmError> {
        changes::changes_since(&self.client, &self.config, cursor).await
    }

    async fn backfill(&self, after: Option<&str>) -> Result<BackfillPage, CrmError> {
        backfill::backfill(&self.client, after).await
    }
}
