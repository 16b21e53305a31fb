//! Salesforce behind the [`CrmConnector`] port (rules in [`super`]).

use async_trait::async_trait;
use jiff::{Timestamp, ToSpan};
use partnerloop_app::crm::{
    BackfillPage, ChangesPage, CrmAccount, CrmConnector, CrmDealChange, CrmError, CrmKind, CrmOpenDeal, CrmRefs, CrmStage, DealForSync,
};
use partnerloop_domain::money::Money;
use reqwest::Method;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::client::SalesforceClient;
use super::soql::{literal, parse_datetime, query_path};
use super::{ACCOUNT_KEY_FIELD, CONTACT_KEY_FIELD, REFERRAL_FIELD, SalesforceConfig, TASK_KEY_FIELD};
use crate::http::{decimal_text, encode_segment, money_from_text};
use crate::seen::Seen;

pub struct Salesforce {
    client: SalesforceClient,
}

/// A record body whose `Amount` is a JSON number written from the exact
/// decimal text (serde_json's `Value` would go through f64).
#[derive(Serialize)]
struct Record {
    #[serde(flatten)]
    fields: Map<String, Value>,
    #[serde(rename = "Amount", skip_serializing_if = "Option::is_none")]
    amount: Option<Box<RawValue>>,
}

fn record(fields: Value, amount: Option<Money>) -> Result<String, CrmError> {
    let fields = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let amount = amount
        .map(|a| RawValue::from_string(decimal_text(a)))
        .transpose()
        .map_err(|e| CrmError::Rejected { status: 0, message: format!("amount is not a JSON number: {e}") })?;
    serde_json::to_string(&Record { fields, amount }).map_err(|e| CrmError::Rejected { status: 0, message: e.to_string() })
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

impl Salesforce {
    pub fn new(config: SalesforceConfig) -> Self {
        Self { client: SalesforceClient::new(config) }
    }

    /// Last daily API usage seen: (used, allocation).
    pub fn api_usage(&self) -> Option<(u64, u64)> {
        self.client.api_usage()
    }

    /// Upsert by external id; returns the record id.
    async fn upsert(&self, object: &str, field: &str, value: &str, body: String) -> Result<String, CrmError> {
        let path = self.client.data_path(&format!("/sobjects/{object}/{field}/{}", encode_segment(value)));
        let answer = self.client.call(Method::PATCH, &path, Some(body)).await?;
        if let Some(id) = text(&answer.body, "id") {
            return Ok(id);
        }
        // Older API versions answer an update with 204 and no body.
        let found = self.client.get(&format!("{path}?fields=Id")).await?;
        text(&found, "Id").ok_or_else(|| CrmError::Unavailable(format!("{object} upsert answered without an id")))
    }

    async fn query(&self, soql: &str) -> Result<Value, CrmError> {
        self.client.get(&query_path(&self.client.data_path(""), soql)).await
    }

    fn close_date(&self, deal: &DealForSync) -> String {
        let days = self.client.config().default_close_days;
        deal.close_date.unwrap_or_else(|| Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().saturating_add(days.days())).to_string()
    }
}

#[async_trait]
impl CrmConnector for Salesforce {
    fn kind(&self) -> CrmKind {
        CrmKind::Salesforce
    }

    /// Checks the credentials and the API (the org's limits resource).
    async fn prepare(&self) -> Result<(), CrmError> {
        self.client.get(&self.client.data_path("/limits")).await.map(|_| ())
    }

    async fn stages(&self) -> Result<Vec<CrmStage>, CrmError> {
        let answer = self
            .query("SELECT ApiName, MasterLabel, IsClosed, IsWon FROM OpportunityStage WHERE IsActive = true ORDER BY SortOrder")
            .await?;
        Ok(answer
            .get("records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|r| {
                let closed = r.get("IsClosed").and_then(Value::as_bool) == Some(true);
                let won = r.get("IsWon").and_then(Value::as_bool) == Some(true);
                CrmStage {
                    id: text(r, "ApiName").unwrap_or_default(),
                    label: text(r, "MasterLabel").unwrap_or_default(),
                    pipeline_id: "Opportunity".into(),
                    closed_won: closed && won,
                    closed_lost: closed && !won,
                }
            })
            .collect())
    }

    async fn sync_deal(&self, deal: &DealForSync, known: Option<&CrmRefs>) -> Result<CrmRefs, CrmError> {
        let account_id = match known.and_then(|k| k.company_id.clone()) {
            Some(id) => id,
            None => {
                let key = deal.company.domain.clone().unwrap_or_else(|| format!("name:{}", deal.company.name.trim().to_lowercase()));
                let body = json!({"Name": deal.company.name, "Website": deal.company.domain});
                self.upsert("Account", ACCOUNT_KEY_FIELD, &key, record(body, None)?).await?
            }
        };
        let contact_id = match (&deal.contact, known.and_then(|k| k.contact_id.clone())) {
            (None, _) => None,
            (Some(_), Some(id)) => Some(id),
            (Some(c), None) => {
                let email = c.email.trim().to_lowercase();
                // LastName is required on a Contact.
                let last = c.last_name.clone().unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
                let body = json!({"Email": email, "FirstName": c.first_name, "LastName": last, "AccountId": account_id});
                Some(self.upsert("Contact", CONTACT_KEY_FIELD, &email, record(body, None)?).await?)
            }
        };
        let mut fields = json!({
            "Name": deal.deal_name, "CloseDate": self.close_date(deal), "AccountId": account_id, "LeadSource": "Partner",
            "Prm_Partner_Name__c": deal.partner_name, "Prm_Partner_Id__c": deal.partner_id, "Prm_Partner_Sourced__c": true,
        });
        let deal_id = match known {
            // The CRM owns the stage once the deal exists: set_stage moves it.
            Some(k) => {
                let path = self.client.data_path(&format!("/sobjects/Opportunity/{}", encode_segment(&k.deal_id)));
                self.client.call(Method::PATCH, &path, Some(record(fields, deal.amount)?)).await?;
                k.deal_id.clone()
            }
            None => {
                fields["StageName"] = Value::String(deal.stage.clone());
                self.upsert("Opportunity", REFERRAL_FIELD, &deal.referral_id, record(fields, deal.amount)?).await?
            }
        };
        Ok(CrmRefs { company_id: Some(account_id), contact_id, deal_id })
    }

    async fn set_stage(&self, deal_id: &str, stage: &str, amount: Option<Money>) -> Result<(), CrmError> {
        let path = self.client.data_path(&format!("/sobjects/Opportunity/{}", encode_segment(deal_id)));
        self.client.call(Method::PATCH, &path, Some(record(json!({"StageName": stage}), amount)?)).await.map(|_| ())
    }

    async fn add_note(&self, deal_id: &str, key: &str, html_body: &str, at: Timestamp) -> Result<String, CrmError> {
        let body = json!({
            "WhatId": deal_id, "Subject": "Partner reply (partnerloop)", "Description": plain_text(html_body),
            "Status": "Completed", "Priority": "Normal", "ActivityDate": at.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
        });
        self.upsert("Task", TASK_KEY_FIELD, key, record(body, None)?).await
    }

    async fn changes_since(&self, cursor: Option<&str>) -> Result<ChangesPage, CrmError> {
        let (since_ms, mut seen, next_url) = parse_cursor(cursor)?;
        let answer = match &next_url {
            Some(url) => self.client.get(url).await?,
            None => {
                let since = Timestamp::from_millisecond(since_ms).unwrap_or(Timestamp::UNIX_EPOCH);
                self.query(&format!(
                    "SELECT Id, StageName, Amount, {REFERRAL_FIELD}, SystemModstamp FROM Opportunity WHERE SystemModstamp >= {} ORDER BY SystemModstamp ASC",
                    literal(since)
                ))
                .await?
            }
        };
        let currency = self.client.config().currency;
        let mut changes = Vec::new();
        for r in answer.get("records").and_then(Value::as_array).into_iter().flatten() {
            let Some(changed_at) = text(r, "SystemModstamp").and_then(|t| parse_datetime(&t)) else { continue };
            changes.push(CrmDealChange {
                deal_id: text(r, "Id").unwrap_or_default(),
                referral_id: text(r, REFERRAL_FIELD),
                stage: text(r, "StageName").unwrap_or_default(),
                amount: r.get("Amount").filter(|a| a.is_number()).and_then(|a| money_from_text(&a.to_string(), currency)),
                changed_at,
            });
        }
        let changes = seen.keep_new(changes);
        let overlap = i64::try_from(self.client.config().poll_overlap.as_millis()).unwrap_or(i64::MAX);
        let cursor = match text(&answer, "nextRecordsUrl") {
            // Keep the query's own start while its pages last.
            Some(url) => {
                seen.prune(since_ms);
                format!("sf1:{since_ms}:{}:{url}", seen.text())
            }
            None => {
                let since_next = seen.newest().map_or(since_ms, |n| since_ms.max(n.saturating_sub(overlap)));
                seen.prune(since_next);
                format!("sf1:{since_next}:{}", seen.text())
            }
        };
        Ok(ChangesPage { changes, cursor })
    }

    async fn backfill(&self, after: Option<&str>) -> Result<BackfillPage, CrmError> {
        let (phase, url) = match after {
            None => ("a", None),
            Some(c) => match c.split_once(':') {
                Some(("a", u)) if !u.is_empty() => ("a", Some(u)),
                Some(("o", u)) => ("o", Some(u).filter(|u| !u.is_empty())),
                _ => return Err(CrmError::Rejected { status: 0, message: format!("'{c}' is not a Salesforce backfill cursor") }),
            },
        };
        let answer = match (phase, url) {
            (_, Some(url)) => self.client.get(url).await?,
            ("a", None) => self.query("SELECT Id, Name, Website, Type FROM Account ORDER BY Id").await?,
            _ => {
                self.query(&format!(
                    "SELECT Id, Name, StageName, {REFERRAL_FIELD}, Account.Name, Account.Website FROM Opportunity WHERE IsClosed = false ORDER BY Id"
                ))
                .await?
            }
        };
        let records = answer.get("records").and_then(Value::as_array).cloned().unwrap_or_default();
        let next_url = text(&answer, "nextRecordsUrl");
        let mut page = BackfillPage::default();
        if phase == "a" {
            page.accounts = records
                .iter()
                .map(|r| CrmAccount {
                    crm_id: text(r, "Id").unwrap_or_default(),
                    name: text(r, "Name").unwrap_or_default(),
                    domain: text(r, "Website").map(|w| website_domain(&w)),
                    is_customer: text(r, "Type").is_some_and(|t| t.starts_with("Customer")),
                })
                .collect();
            page.next = Some(next_url.map_or_else(|| "o:".to_string(), |u| format!("a:{u}")));
        } else {
            page.open_deals = records
                .iter()
                .map(|r| {
                    let account = r.get("Account").filter(|a| a.is_object());
                    CrmOpenDeal {
                        crm_id: text(r, "Id").unwrap_or_default(),
                        name: text(r, "Name").unwrap_or_default(),
                        company_domain: account.and_then(|a| text(a, "Website")).map(|w| website_domain(&w)),
                        company_name: account.and_then(|a| text(a, "Name")),
                        stage: text(r, "StageName").unwrap_or_default(),
                        referral_id: text(r, REFERRAL_FIELD),
                    }
                })
                .collect();
            page.next = next_url.map(|u| format!("o:{u}"));
        }
        Ok(page)
    }
}

/// `sf1:<since ms>:<seen>[:<nextRecordsUrl>]` (see [`crate::seen`]).
fn parse_cursor(cursor: Option<&str>) -> Result<(i64, Seen, Option<String>), CrmError> {
    let Some(c) = cursor else { return Ok((0, Seen::default(), None)) };
    let bad = || CrmError::Rejected { status: 0, message: format!("'{c}' is not a Salesforce change cursor") };
    let mut parts = c.splitn(4, ':');
    if parts.next() != Some("sf1") {
        return Err(bad());
    }
    let since = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let seen = Seen::parse(parts.next().unwrap_or_default()).ok_or_else(bad)?;
    Ok((since, seen, parts.next().filter(|u| u.starts_with('/')).map(str::to_string)))
}

/// `https://www.acme.com/about` → `acme.com`.
fn website_domain(website: &str) -> String {
    let host = website.trim().trim_start_matches("https://").trim_start_matches("http://");
    let host = host.split(['/', '?', '#']).next().unwrap_or_default();
    host.trim_start_matches("www.").to_ascii_lowercase()
}

/// Task descriptions are plain text: tags out, paragraphs as lines.
fn plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let name = tag.trim_start_matches('/').split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
                if matches!(name.as_str(), "p" | "br" | "div" | "li") && !out.ends_with('\n') && !out.is_empty() {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    out.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use partnerloop_domain::money::Currency;

    #[test]
    fn amounts_are_exact_json_numbers() {
        let body = record(json!({"Name": "x"}), Some(Money::from_minor(9_007_199_254_740_993, Currency::USD))).unwrap();
        assert_eq!(body, r#"{"Name":"x","Amount":90071992547409.93}"#);
        assert_eq!(record(json!({}), Some(Money::from_minor(150_000, Currency::USD))).unwrap(), r#"{"Amount":1500.00}"#);
    }

    #[test]
    fn notes_become_plain_text_and_websites_domains() {
        assert_eq!(plain_text("<p>Hi &amp; thanks</p><p>Jane</p>"), "Hi & thanks\nJane");
        assert_eq!(website_domain("https://www.Acme.com/about"), "acme.com");
        let (since, seen, url) = parse_cursor(Some("sf1:5:006A.7:/services/data/v66.0/query/01g-2")).unwrap();
        assert_eq!((since, seen.text(), url.as_deref()), (5, "006A.7".to_string(), Some("/services/data/v66.0/query/01g-2")));
        assert!(parse_cursor(Some("hs1:0:0")).is_err());
    }
}
