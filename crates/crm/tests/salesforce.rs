//! The Salesforce connector against the fake Salesforce over real HTTP.

use jiff::Timestamp;
use jiff::civil::date;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use partnerloop_app::crm::{CrmCompany, CrmConnector, CrmContact, CrmError, DealForSync};
use partnerloop_crm::fake::{FAKE_SF_TOKEN, Failure, FakeSalesforce};
use partnerloop_crm::http::Secret;
use partnerloop_crm::salesforce::{JwtClaims, Salesforce, SalesforceAuth, SalesforceConfig, jwt_assertion};
use partnerloop_domain::money::{Currency, Money};
use serde_json::json;

const PRIVATE_KEY: &str = include_str!("fixtures/salesforce_test_key.pem");
const PUBLIC_KEY: &str = include_str!("fixtures/salesforce_test_key.pub.pem");

fn with_token(fake: &FakeSalesforce) -> Salesforce {
    Salesforce::new(SalesforceConfig::new(SalesforceAuth::AccessToken {
        token: Secret::new(FAKE_SF_TOKEN),
        instance_url: fake.base_url.clone(),
    }))
}

fn with_jwt(fake: &FakeSalesforce) -> Salesforce {
    fake.accept_jwt(PUBLIC_KEY, "3MVG9-consumer-key");
    Salesforce::new(SalesforceConfig::new(SalesforceAuth::JwtBearer {
        login_url: fake.base_url.clone(),
        consumer_key: "3MVG9-consumer-key".into(),
        username: "integration@acme.example".into(),
        private_key_pem: Secret::new(PRIVATE_KEY),
    }))
}

fn acme_deal(referral: &str) -> DealForSync {
    DealForSync {
        referral_id: referral.into(),
        partner_id: "prt_01".into(),
        partner_name: "Partner X".into(),
        company: CrmCompany { name: "ACME".into(), domain: Some("acme.com".into()) },
        contact: Some(CrmContact { email: "jane@acme.com".into(), first_name: Some("Jane".into()), last_name: None }),
        deal_name: "ACME via Partner X".into(),
        amount: Some(Money::from_minor(150_000, Currency::USD)),
        stage: "Prospecting".into(),
        close_date: Some(date(2026, 12, 31)),
    }
}

#[tokio::test]
async fn upserts_by_external_id_make_a_repeated_or_retried_sync_idempotent() {
    let fake = FakeSalesforce::start().await;
    let sf = with_token(&fake);
    sf.prepare().await.unwrap();
    let first = sf.sync_deal(&acme_deal("ref_1"), None).await.unwrap();
    let again = sf.sync_deal(&acme_deal("ref_1"), None).await.unwrap();
    fake.fail_next_at("PATCH /services/data/{v}/sobjects/Opportunity/Prm_Referral_Id__c/{value}", 1, Failure::ServerErrorAfterWrite);
    assert!(sf.sync_deal(&acme_deal("ref_1"), None).await.unwrap_err().is_retryable());
    let retried = sf.sync_deal(&acme_deal("ref_1"), None).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(first, retried);
    assert_eq!((fake.records("Account").len(), fake.records("Contact").len(), fake.records("Opportunity").len()), (1, 1, 1));

    let opp = fake.record("Opportunity", &first.deal_id).unwrap();
    assert_eq!(opp["Prm_Referral_Id__c"], "ref_1");
    assert_eq!(opp["Prm_Partner_Name__c"], "Partner X");
    assert_eq!(opp["Prm_Partner_Id__c"], "prt_01");
    assert_eq!(opp["Prm_Partner_Sourced__c"], true);
    assert_eq!(opp["LeadSource"], "Partner");
    assert_eq!(opp["Amount"], json!(1500.0));
    assert_eq!(opp["CloseDate"], "2026-12-31");
    assert_eq!(opp["StageName"], "Prospecting");
    assert_eq!(opp["AccountId"].as_str(), first.company_id.as_deref());
    let contact = fake.record("Contact", first.contact_id.as_deref().unwrap()).unwrap();
    assert_eq!((contact["LastName"].as_str(), contact["AccountId"].as_str()), (Some("jane"), first.company_id.as_deref()));
    assert_eq!(fake.record("Account", first.company_id.as_deref().unwrap()).unwrap()["Prm_Domain__c"], "acme.com");
    let upserts =
        fake.requests().iter().filter(|r| r.endpoint == "PATCH /services/data/{v}/sobjects/Opportunity/Prm_Referral_Id__c/{value}").count();
    assert_eq!(upserts, 4);
}

#[tokio::test]
async fn a_later_sync_with_known_refs_keeps_the_stage_salesforce_owns() {
    let fake = FakeSalesforce::start().await;
    let sf = with_token(&fake);
    let refs = sf.sync_deal(&acme_deal("ref_2"), None).await.unwrap();
    fake.change_stage(&refs.deal_id, "Negotiation/Review");
    let mut renamed = acme_deal("ref_2");
    renamed.deal_name = "ACME expansion".into();
    assert_eq!(sf.sync_deal(&renamed, Some(&refs)).await.unwrap(), refs);
    let opp = fake.record("Opportunity", &refs.deal_id).unwrap();
    assert_eq!((opp["Name"].as_str(), opp["StageName"].as_str()), (Some("ACME expansion"), Some("Negotiation/Review")));
    sf.set_stage(&refs.deal_id, "Closed Won", Some(Money::from_minor(120_050, Currency::USD))).await.unwrap();
    let opp = fake.record("Opportunity", &refs.deal_id).unwrap();
    assert_eq!((opp["StageName"].as_str(), opp["IsWon"].as_bool(), opp["Amount"].as_f64()), (Some("Closed Won"), Some(true), Some(1200.5)));
    assert!(matches!(sf.set_stage("006000000000000999", "Closed Won", None).await, Err(CrmError::NotFound(_))));
}

#[tokio::test]
async fn the_jwt_assertion_carries_the_right_claims_and_verifies_with_the_public_key() {
    let now = Timestamp::now();
    let jwt = jwt_assertion("3MVG9-consumer-key", "integration@acme.example", "https://login.salesforce.com/", PRIVATE_KEY, now).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["https://login.salesforce.com"]);
    let claims =
        jsonwebtoken::decode::<JwtClaims>(&jwt, &DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap(), &validation).unwrap().claims;
    assert_eq!(claims.iss, "3MVG9-consumer-key");
    assert_eq!(claims.sub, "integration@acme.example");
    assert_eq!(claims.aud, "https://login.salesforce.com");
    assert_eq!(claims.exp, now.as_second() + 180);
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert!(jwt_assertion("k", "u", "https://login.salesforce.com", "not a key", now).is_err());
}

#[tokio::test]
async fn the_jwt_bearer_flow_signs_in_and_signs_in_again_when_the_session_expires() {
    let fake = FakeSalesforce::start().await;
    let sf = with_jwt(&fake);
    sf.prepare().await.unwrap();
    assert_eq!(fake.assertions().len(), 1);
    assert_eq!(fake.assertions()[0].sub, "integration@acme.example");
    fake.expire_sessions();
    assert_eq!(sf.stages().await.unwrap().len(), 6);
    assert_eq!(fake.assertions().len(), 2);
    // A key the connected app does not know is refused, and not retried.
    fake.accept_jwt(PUBLIC_KEY, "another-app");
    fake.expire_sessions();
    let error = sf.stages().await.unwrap_err();
    assert!(matches!(error, CrmError::Unauthorized(_)), "{error:?}");
}

#[tokio::test]
async fn stages_mark_closed_won_and_closed_lost() {
    let fake = FakeSalesforce::start().await;
    let stages = with_token(&fake).stages().await.unwrap();
    let won: Vec<_> = stages.iter().filter(|s| s.closed_won).map(|s| s.id.as_str()).collect();
    let lost: Vec<_> = stages.iter().filter(|s| s.closed_lost).map(|s| s.id.as_str()).collect();
    assert_eq!((won, lost), (vec!["Closed Won"], vec!["Closed Lost"]));
}

#[tokio::test]
async fn a_note_is_one_completed_task_per_outbox_key() {
    let fake = FakeSalesforce::start().await;
    let sf = with_token(&fake);
    let refs = sf.sync_deal(&acme_deal("ref_3"), None).await.unwrap();
    let at = Timestamp::from_second(1_764_000_000).unwrap();
    let a = sf.add_note(&refs.deal_id, "item-1", "<p>Partner reply: signed &amp; sealed</p>", at).await.unwrap();
    let b = sf.add_note(&refs.deal_id, "item-1", "<p>Partner reply: signed &amp; sealed</p>", at).await.unwrap();
    assert_eq!(a, b);
    let tasks = fake.records("Task");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["WhatId"].as_str(), Some(refs.deal_id.as_str()));
    assert_eq!(tasks[0]["Status"], "Completed");
    assert_eq!(tasks[0]["Description"], "Partner reply: signed & sealed");
    assert_eq!(tasks[0]["ActivityDate"], "2025-11-24");
}

#[tokio::test]
async fn polling_follows_next_records_urls_and_sees_stage_changes() {
    let fake = FakeSalesforce::start().await;
    fake.set_page_size(3);
    let sf = with_token(&fake);
    for i in 0..7 {
        sf.sync_deal(&acme_deal(&format!("ref_{i}")), None).await.unwrap();
    }
    let mut cursor = None;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let page = sf.changes_since(cursor.as_deref()).await.unwrap();
        assert!(page.changes.len() <= 3);
        seen.extend(page.changes.iter().map(|c| c.referral_id.clone().unwrap()));
        cursor = Some(page.cursor);
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(fake.requests().iter().filter(|r| r.endpoint == "GET /services/data/{v}/query/{locator}").count(), 2);
    let target = fake.records("Opportunity")[2]["Id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    fake.change_stage(&target, "Closed Lost");
    let mut polled = Vec::new();
    for _ in 0..4 {
        let page = sf.changes_since(cursor.as_deref()).await.unwrap();
        polled.extend(page.changes);
        cursor = Some(page.cursor);
    }
    assert_eq!(polled.len(), 1, "only the new change, not the overlap again: {polled:?}");
    assert_eq!((polled[0].deal_id.as_str(), polled[0].stage.as_str()), (target.as_str(), "Closed Lost"));
    assert_eq!(polled[0].amount, Some(Money::from_minor(150_000, Currency::USD)));
}

#[tokio::test]
async fn backfill_reads_accounts_then_open_opportunities() {
    let fake = FakeSalesforce::start().await;
    fake.seed_accounts(25, 5);
    fake.set_page_size(10);
    let sf = with_token(&fake);
    sf.sync_deal(&acme_deal("ref_open"), None).await.unwrap();
    let won = sf.sync_deal(&acme_deal("ref_won"), None).await.unwrap();
    sf.set_stage(&won.deal_id, "Closed Won", None).await.unwrap();
    let (mut accounts, mut open, mut after, mut pages) = (Vec::new(), Vec::new(), None::<String>, 0);
    loop {
        let page = sf.backfill(after.as_deref()).await.unwrap();
        pages += 1;
        accounts.extend(page.accounts);
        open.extend(page.open_deals);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(accounts.len(), 26);
    assert_eq!(accounts.iter().filter(|a| a.is_customer).count(), 5);
    assert_eq!(accounts[0].domain.as_deref(), Some("seeded-0.example"));
    assert_eq!(pages, 4);
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].referral_id.as_deref(), open[0].company_domain.as_deref(), open[0].company_name.as_deref()),
        (Some("ref_open"), Some("acme.com"), Some("ACME"))
    );
}

#[tokio::test]
async fn the_daily_allocation_is_respected() {
    let fake = FakeSalesforce::start().await;
    let mut config =
        SalesforceConfig::new(SalesforceAuth::AccessToken { token: Secret::new(FAKE_SF_TOKEN), instance_url: fake.base_url.clone() });
    config.backoff_for = std::time::Duration::from_millis(300);
    let sf = Salesforce::new(config);
    fake.set_api_usage(100, 100);
    assert!(matches!(sf.prepare().await, Err(CrmError::RateLimited { .. })), "REQUEST_LIMIT_EXCEEDED");
    let calls = fake.requests().len();
    assert!(matches!(sf.prepare().await, Err(CrmError::RateLimited { .. })));
    assert_eq!(fake.requests().len(), calls, "no call while backing off");
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    fake.set_api_usage(88, 100);
    sf.prepare().await.unwrap();
    assert_eq!(sf.api_usage(), Some((89, 100)));
    sf.prepare().await.unwrap();
    let before = fake.requests().len();
    let error = sf.prepare().await.unwrap_err();
    assert!(matches!(error, CrmError::RateLimited { .. }) && error.is_retryable());
    assert_eq!(fake.requests().len(), before, "backed off without calling at 90 % of the allocation");
}

#[tokio::test]
async fn the_fake_refuses_unknown_fields_and_missing_required_ones() {
    let fake = FakeSalesforce::start().await;
    partnerloop_crm::http::install_crypto_provider();
    let http = reqwest::Client::new();
    let url = format!("{}/services/data/v66.0/sobjects/Opportunity/Prm_Referral_Id__c/x", fake.base_url);
    let typo = http
        .patch(&url)
        .bearer_auth(FAKE_SF_TOKEN)
        .json(&json!({"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-01-01", "Amout": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(typo.status(), 400);
    let missing = http.patch(&url).bearer_auth(FAKE_SF_TOKEN).json(&json!({"Name": "x"})).send().await.unwrap();
    assert_eq!(missing.status(), 400);
    let text_amount = http
        .patch(&url)
        .bearer_auth(FAKE_SF_TOKEN)
        .json(&json!({"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-01-01", "Amount": "1500.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(text_amount.status(), 400);
    let violations = fake.take_violations();
    assert_eq!(violations.len(), 3);
    assert!(violations[0].errors[0].contains("Amout"));
    assert!(violations[1].errors[0].contains("StageName"));
    assert!(fake.records("Opportunity").is_empty());
}
