//! Reading HubSpot's companies and open deals for conflict checks, one
//! list page (100, the list API's maximum) per call, companies first.
//!
//! Cursor: `c:<after>` while listing companies, `d:<after>` for deals.
//! A deals page lists its associated company ids; their names and domains
//! come from one `companies/batch/read` (≤ 100 inputs). Closed deals
//! (`hs_is_closed`) are skipped. Customers are companies whose
//! `lifecyclestage` is `customer`.

use std::collections::BTreeSet;

use partnerloop_app::crm::{BackfillPage, CrmAccount, CrmError, CrmOpenDeal};
use serde_json::{Value, json};

use super::client::HubSpotClient;
use super::{PROP_REFERRAL_ID, id_of, objects, prop};
use crate::http::encode_segment as encode;

pub const PAGE: usize = 100;

pub async fn backfill(client: &HubSpotClient, after: Option<&str>) -> Result<BackfillPage, CrmError> {
    match after {
        None => companies(client, "").await,
        Some(c) if c.starts_with("c:") => companies(client, &c[2..]).await,
        Some(d) if d.starts_with("d:") => deals(client, &d[2..]).await,
        Some(other) => Err(CrmError::Rejected { status: 0, message: format!("'{other}' is not a HubSpot backfill cursor") }),
    }
}

fn paging_after(answer: &Value) -> Option<String> {
    answer.pointer("/paging/next/after").and_then(Value::as_str).map(str::to_string)
}

fn with_after(path: String, after: &str) -> String {
    if after.is_empty() { path } else { format!("{path}&after={}", encode(after)) }
}

async fn companies(client: &HubSpotClient, after: &str) -> Result<BackfillPage, CrmError> {
    let path = with_after(format!("{}?limit={PAGE}&properties=name,domain,lifecyclestage&archived=false", objects::COMPANIES), after);
    let answer = client.get(&path).await?;
    let mut accounts = Vec::new();
    for company in answer.get("results").and_then(Value::as_array).into_iter().flatten() {
        accounts.push(CrmAccount {
            crm_id: id_of(company)?,
            name: prop(company, "name").unwrap_or_default().to_string(),
            domain: prop(company, "domain").map(str::to_string),
            is_customer: prop(company, "lifecyclestage") == Some("customer"),
        });
    }
    let next = Some(match paging_after(&answer) {
        Some(after) => format!("c:{after}"),
        None => "d:".to_string(),
    });
    Ok(BackfillPage { accounts, open_deals: Vec::new(), next })
}

async fn deals(client: &HubSpotClient, after: &str) -> Result<BackfillPage, CrmError> {
    let path = with_after(
        format!(
            "{}?limit={PAGE}&properties=dealname,dealstage,hs_is_closed,{PROP_REFERRAL_ID}&associations=companies&archived=false",
            objects::DEALS
        ),
        after,
    );
    let answer = client.get(&path).await?;
    let mut open = Vec::new();
    for deal in answer.get("results").and_then(Value::as_array).into_iter().flatten() {
        if prop(deal, "hs_is_closed") == Some("true") {
            continue;
        }
        let company = deal.pointer("/associations/companies/results/0/id").and_then(Value::as_str).map(str::to_string);
        open.push((deal, company));
    }
    let ids: BTreeSet<&str> = open.iter().filter_map(|(_, c)| c.as_deref()).collect();
    let mut companies = std::collections::HashMap::new();
    if !ids.is_empty() {
        let inputs: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
        let body = json!({"inputs": inputs, "properties": ["name", "domain"], "propertiesWithHistory": []});
        let read = client.post(&format!("{}/batch/read", objects::COMPANIES), &body).await?;
        for company in read.get("results").and_then(Value::as_array).into_iter().flatten() {
            companies.insert(id_of(company)?, (prop(company, "name").map(str::to_string), prop(company, "domain").map(str::to_string)));
        }
    }
    let mut open_deals = Vec::new();
    for (deal, company) in open {
        let (company_name, company_domain) = company.and_then(|c| companies.get(&c).cloned()).unwrap_or((None, None));
        open_deals.push(CrmOpenDeal {
            crm_id: id_of(deal)?,
            name: prop(deal, "dealname").unwrap_or_default().to_string(),
            company_domain,
            company_name,
            stage: prop(deal, "dealstage").unwrap_or_default().to_string(),
            referral_id: prop(deal, PROP_REFERRAL_ID).map(str::to_string),
        });
    }
    Ok(BackfillPage { accounts: Vec::new(), open_deals, next: paging_after(&answer).map(|a| format!("d:{a}")) })
}
