//! Writing partner-sourced deals and notes to HubSpot, idempotently (see
//! the rules in [`super`]).

use jiff::Timestamp;
use partnerloop_app::crm::{CrmCompany, CrmContact, CrmError, CrmRefs, DealForSync};
use reqwest::Method;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::client::HubSpotClient;
use super::{
    HubSpotConfig, PROP_COMPANY_KEY, PROP_PARTNER_ID, PROP_PARTNER_NAME, PROP_PARTNER_SOURCED, PROP_REFERRAL_ID, amount_property, assoc,
    association, filter, id_of, objects, search_body,
};
use crate::http::encode_segment as encode;

pub async fn sync_deal(
    client: &HubSpotClient,
    config: &HubSpotConfig,
    deal: &DealForSync,
    known: Option<&CrmRefs>,
) -> Result<CrmRefs, CrmError> {
    // `…_looked_up`: not from `known`, so perhaps not yet on an existing deal.
    let (company_id, company_looked_up) = match known.and_then(|k| k.company_id.clone()) {
        Some(id) => (id, false),
        None => (find_or_create_company(client, &deal.company).await?, true),
    };
    let (contact_id, contact_looked_up) = match (&deal.contact, known.and_then(|k| k.contact_id.clone())) {
        (None, _) => (None, false),
        (Some(_), Some(id)) => (Some(id), false),
        (Some(contact), None) => (Some(find_or_create_contact(client, contact, &company_id).await?), true),
    };
    let existing = match known {
        Some(k) => Some(k.deal_id.clone()),
        None => find_deal(client, &deal.referral_id).await?,
    };
    let deal_id = match existing {
        Some(deal_id) => {
            // The CRM owns the stage once the deal exists: set_stage moves it.
            let properties = deal_properties(config, deal, false);
            client.send(Method::PATCH, &format!("{}/{}", objects::DEALS, deal_id), Some(&json!({"properties": properties}))).await?;
            // Default associations are idempotent: PUT them rather than read first.
            if company_looked_up {
                associate(client, &deal_id, "companies", &company_id).await?;
            }
            if let (true, Some(contact_id)) = (contact_looked_up, &contact_id) {
                associate(client, &deal_id, "contacts", contact_id).await?;
            }
            deal_id
        }
        None => {
            let mut associations = vec![association(&company_id, assoc::DEAL_TO_COMPANY_PRIMARY)];
            if let Some(contact_id) = &contact_id {
                associations.push(association(contact_id, assoc::DEAL_TO_CONTACT));
            }
            let body = json!({"properties": deal_properties(config, deal, true), "associations": associations});
            match client.post(objects::DEALS, &body).await {
                Ok(created) => id_of(&created)?,
                // The unique referral id exists: an earlier attempt created it.
                Err(CrmError::Rejected { status: 409, .. }) => find_deal(client, &deal.referral_id)
                    .await?
                    .ok_or_else(|| CrmError::Unavailable("HubSpot reported a duplicate deal it cannot find yet".into()))?,
                Err(e) => return Err(e),
            }
        }
    };
    Ok(CrmRefs { company_id: Some(company_id), contact_id, deal_id })
}

fn deal_properties(config: &HubSpotConfig, deal: &DealForSync, with_stage: bool) -> Map<String, Value> {
    let mut p = Map::new();
    let mut set = |k: &str, v: String| {
        p.insert(k.to_string(), Value::String(v));
    };
    set("dealname", deal.deal_name.clone());
    if with_stage {
        set("pipeline", config.pipeline.clone());
        set("dealstage", deal.stage.clone());
    }
    if let Some(amount) = deal.amount {
        set("amount", amount_property(amount));
        set("deal_currency_code", amount.currency().code().to_string());
    }
    if let Some(date) = deal.close_date {
        set("closedate", format!("{date}T00:00:00Z"));
    }
    set(PROP_PARTNER_NAME, deal.partner_name.clone());
    set(PROP_PARTNER_ID, deal.partner_id.clone());
    set(PROP_REFERRAL_ID, deal.referral_id.clone());
    set(PROP_PARTNER_SOURCED, "true".into());
    p
}

/// The deal partnerloop created for this referral, read by the unique
/// property (consistent right after the write, unlike search).
async fn find_deal(client: &HubSpotClient, referral_id: &str) -> Result<Option<String>, CrmError> {
    let path = format!("{}/{}?idProperty={}&properties={}", objects::DEALS, encode(referral_id), PROP_REFERRAL_ID, PROP_REFERRAL_ID);
    match client.get(&path).await {
        Ok(found) => Ok(Some(id_of(&found)?)),
        Err(CrmError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn find_or_create_company(client: &HubSpotClient, company: &CrmCompany) -> Result<String, CrmError> {
    let by = match &company.domain {
        Some(domain) => filter("domain", "EQ", domain),
        None => filter("name", "EQ", &company.name),
    };
    let found = client.post(&format!("{}/search", objects::COMPANIES), &search_body(vec![by], &["name", "domain"], 1, "0", &[])).await?;
    if let Some(first) = found.get("results").and_then(Value::as_array).and_then(|r| r.first()) {
        return id_of(first);
    }
    let key = match &company.domain {
        Some(domain) => domain.to_ascii_lowercase(),
        None => format!("name:{}", company.name.trim().to_lowercase()),
    };
    let mut properties = json!({"name": company.name});
    if let Some(domain) = &company.domain {
        properties["domain"] = Value::String(domain.clone());
    }
    let body = json!({"inputs": [{"idProperty": PROP_COMPANY_KEY, "id": key, "properties": properties}]});
    let answer = client.post(&format!("{}/batch/upsert", objects::COMPANIES), &body).await?;
    let first = answer.pointer("/results/0").ok_or_else(|| CrmError::Unavailable("HubSpot's company upsert answered no result".into()))?;
    id_of(first)
}

async fn find_or_create_contact(client: &HubSpotClient, contact: &CrmContact, company_id: &str) -> Result<String, CrmError> {
    let email = contact.email.trim().to_ascii_lowercase();
    let read = format!("{}/{}?idProperty=email&properties=email", objects::CONTACTS, encode(&email));
    match client.get(&read).await {
        Ok(found) => return id_of(&found),
        Err(CrmError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let mut properties = json!({"email": email});
    if let Some(first) = &contact.first_name {
        properties["firstname"] = Value::String(first.clone());
    }
    if let Some(last) = &contact.last_name {
        properties["lastname"] = Value::String(last.clone());
    }
    let body = json!({"properties": properties, "associations": [association(company_id, assoc::CONTACT_TO_COMPANY_PRIMARY)]});
    match client.post(objects::CONTACTS, &body).await {
        Ok(created) => id_of(&created),
        // Emails are unique in HubSpot: an earlier attempt created it.
        Err(CrmError::Rejected { status: 409, .. }) => id_of(&client.get(&read).await?),
        Err(e) => Err(e),
    }
}

/// Default (unlabelled) association deal → company/contact, v4; idempotent.
async fn associate(client: &HubSpotClient, deal_id: &str, to: &str, to_id: &str) -> Result<(), CrmError> {
    let path = format!("/crm/v4/objects/deals/{deal_id}/associations/default/{to}/{to_id}");
    client.send(Method::PUT, &path, None).await.map(|_| ())
}

/// The token that ends a note's body and finds it again: `plk` + 32 hex
/// digits of SHA-256(key), one word for HubSpot's token search.
pub fn note_marker(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("plk{hex}")
}

pub async fn add_note(client: &HubSpotClient, deal_id: &str, key: &str, html_body: &str, at: Timestamp) -> Result<String, CrmError> {
    let marker = note_marker(key);
    if let Some(id) = find_note(client, deal_id, &marker).await? {
        return Ok(id);
    }
    let body = json!({
        "properties": {
            "hs_timestamp": at.round(jiff::Unit::Millisecond).unwrap_or(at).to_string(),
            "hs_note_body": format!("{html_body}<p><small>partnerloop {marker}</small></p>"),
        },
        "associations": [association(deal_id, assoc::NOTE_TO_DEAL)],
    });
    id_of(&client.post(objects::NOTES, &body).await?)
}

/// The deal's note carrying `marker`, read through the deal's note
/// associations (v4) and `notes/batch/read` (≤ 100 per call): both are
/// consistent right after a write, unlike search.
async fn find_note(client: &HubSpotClient, deal_id: &str, marker: &str) -> Result<Option<String>, CrmError> {
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/crm/v4/objects/deals/{}/associations/notes?limit=500", encode(deal_id));
        if let Some(after) = &after {
            path.push_str(&format!("&after={}", encode(after)));
        }
        let page = client.get(&path).await?;
        let ids: Vec<String> = page
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| match r.get("toObjectId") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        for chunk in ids.chunks(100) {
            let inputs: Vec<Value> = chunk.iter().map(|id| json!({"id": id})).collect();
            let body = json!({"inputs": inputs, "properties": ["hs_note_body"], "propertiesWithHistory": []});
            let read = client.post(&format!("{}/batch/read", objects::NOTES), &body).await?;
            for note in read.get("results").and_then(Value::as_array).into_iter().flatten() {
                if super::prop(note, "hs_note_body").is_some_and(|b| b.contains(marker)) {
                    return Ok(Some(id_of(note)?));
                }
            }
        }
        match page.pointer("/paging/next/after").and_then(Value::as_str) {
            Some(next) => after = Some(next.to_string()),
            None => return Ok(None),
        }
    }
}
