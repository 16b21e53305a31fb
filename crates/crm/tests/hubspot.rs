//! The HubSpot connector against the fake HubSpot over real HTTP. Every
//! fake checks each request body against HubSpot's OpenAPI documents and
//! fails the test on drop if any did not match.

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::date;
use partnerloop_app::crm::{CrmCompany, CrmConnector, CrmContact, CrmError, CrmRefs, DealForSync};
use partnerloop_crm::fake::{Failure, FakeHubSpot, HubObject, sign_webhook};
use partnerloop_crm::http::Secret;
use partnerloop_crm::hubspot::{HubSpot, HubSpotConfig};
use partnerloop_crm::hubspot_webhook::{parse_events, verify_signature_v3};
use partnerloop_domain::money::{Currency, Money};

fn connector(fake: &FakeHubSpot) -> HubSpot {
    let mut config = HubSpotConfig::new(&fake.base_url, Secret::new("pat-test-token"));
    config.requests_per_10s = 10_000;
    HubSpot::new(config).unwrap()
}

fn acme_deal(referral: &str) -> DealForSync {
    DealForSync {
        referral_id: referral.into(),
        partner_id: "prt_01".into(),
        partner_name: "Partner X".into(),
        company: CrmCompany { name: "ACME".into(), domain: Some("acme.com".into()) },
        contact: Some(CrmContact { email: "Jane@Acme.com".into(), first_name: Some("Jane".into()), last_name: Some("Doe".into()) }),
        deal_name: "ACME – via Partner X".into(),
        amount: Some(Money::from_minor(150_000, Currency::USD)),
        stage: "appointmentscheduled".into(),
        close_date: Some(date(2026, 12, 31)),
    }
}

/// What the outbox does: retry retryable errors (without waiting, here).
async fn with_retries(hubspot: &HubSpot, deal: &DealForSync) -> (CrmRefs, usize) {
    for attempt in 1..=20 {
        match hubspot.sync_deal(deal, None).await {
            Ok(refs) => return (refs, attempt),
            Err(e) if e.is_retryable() => continue,
            Err(e) => panic!("permanent error: {e}"),
        }
    }
    panic!("no success in 20 attempts");
}

fn linked(object: &HubObject, to: &str, type_id: u32) -> Vec<String> {
    object.associations.iter().filter(|a| a.to_type == to && a.type_id == type_id).map(|a| a.to_id.clone()).collect()
}

#[tokio::test]
async fn a_referral_becomes_a_partner_sourced_deal_with_company_and_contact() {
    let fake = FakeHubSpot::start().await;
    let hubspot = connector(&fake);
    hubspot.prepare().await.unwrap();
    let refs = hubspot.sync_deal(&acme_deal("ref_1"), None).await.unwrap();

    let companies = fake.companies();
    assert_eq!(companies.len(), 1);
    assert_eq!((companies[0].prop("name"), companies[0].prop("domain")), (Some("ACME"), Some("acme.com")));
    assert_eq!(companies[0].prop("partnerloop_company_key"), Some("acme.com"));
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].prop("email"), Some("jane@acme.com"));
    assert_eq!(contacts[0].prop("firstname"), Some("Jane"));
    assert_eq!(linked(&contacts[0], "companies", 1), vec![companies[0].id.clone()]);

    let deal = fake.deal(&refs.deal_id).unwrap();
    assert_eq!(deal.prop("dealname"), Some("ACME – via Partner X"));
    assert_eq!(deal.prop("amount"), Some("1500.00"));
    assert_eq!(deal.prop("deal_currency_code"), Some("USD"));
    assert_eq!(deal.prop("dealstage"), Some("appointmentscheduled"));
    assert_eq!(deal.prop("pipeline"), Some("default"));
    assert_eq!(deal.prop("closedate"), Some("2026-12-31T00:00:00Z"));
    assert_eq!(deal.prop("partnerloop_partner_name"), Some("Partner X"));
    assert_eq!(deal.prop("partnerloop_partner_id"), Some("prt_01"));
    assert_eq!(deal.prop("partnerloop_referral_id"), Some("ref_1"));
    assert_eq!(deal.prop("partnerloop_partner_sourced"), Some("true"));
    assert_eq!(linked(&deal, "companies", 5), vec![companies[0].id.clone()]);
    assert_eq!(linked(&deal, "contacts", 3), vec![contacts[0].id.clone()]);
    assert_eq!(
        refs,
        CrmRefs { company_id: Some(companies[0].id.clone()), contact_id: Some(contacts[0].id.clone()), deal_id: deal.id.clone() }
    );

    let defs = fake.deal_property_definitions();
    assert_eq!(defs.len(), 4);
    assert_eq!(defs["partnerloop_referral_id"]["hasUniqueValue"], true);
    assert_eq!(defs["partnerloop_partner_sourced"]["fieldType"], "booleancheckbox");
    assert_eq!(fake.property_definitions("companies")["partnerloop_company_key"]["hasUniqueValue"], true);
    // prepare is idempotent: properties that exist are left alone.
    hubspot.prepare().await.unwrap();
    assert_eq!(fake.calls_to("POST /crm/v3/properties/deals"), 4);
    assert_eq!(fake.calls_to("POST /crm/v3/properties/companies"), 1);
}

#[tokio::test]
async fn syncing_the_same_referral_again_creates_nothing_new() {
    let fake = FakeHubSpot::start().await;
    let hubspot = connector(&fake);
    hubspot.prepare().await.unwrap();
    let first = hubspot.sync_deal(&acme_deal("ref_2"), None).await.unwrap();
    let mut renamed = acme_deal("ref_2");
    renamed.deal_name = "ACME expansion".into();
    let again = hubspot.sync_deal(&renamed, None).await.unwrap();
    let with_known = hubspot.sync_deal(&renamed, Some(&first)).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(first, with_known);
    assert_eq!((fake.count("companies"), fake.count("contacts"), fake.count("deals")), (1, 1, 1));
    assert_eq!(fake.deal(&first.deal_id).unwrap().prop("dealname"), Some("ACME expansion"));
    assert_eq!(fake.calls_to("POST /crm/v3/objects/0-3"), 1);
}

#[tokio::test]
async fn answers_lost_after_the_write_are_retried_without_duplicates() {
    let fake = FakeHubSpot::start().await;
    let hubspot = connector(&fake);
    hubspot.prepare().await.unwrap();
    // Search does not see the new company yet: the unique key must.
    fake.set_search_lag(Duration::from_secs(30));
    fake.fail_next_at("POST /crm/v3/objects/companies/batch/upsert", 1, Failure::ServerErrorAfterWrite);
    fake.fail_next_at("POST /crm/v3/objects/contacts", 1, Failure::ServerErrorAfterWrite);
    fake.fail_next_at("POST /crm/v3/objects/0-3", 1, Failure::ServerErrorAfterWrite);
    let (refs, attempts) = with_retries(&hubspot, &acme_deal("ref_3")).await;
    assert_eq!(attempts, 4, "three lost answers, then success");
    assert_eq!(fake.calls_to("POST /crm/v3/objects/companies/batch/upsert"), 4);
    assert_eq!((fake.count("companies"), fake.count("contacts"), fake.count("deals")), (1, 1, 1));
    assert_eq!(fake.deals()[0].id, refs.deal_id);
    assert_eq!(linked(&fake.deals()[0], "companies", 5).len(), 1);
}

#[tokio::test]
async fn outages_and_rate_limits_are_retried_by_the_caller_into_exactly_one_deal() {
    let fake = FakeHubSpot::start().await;
    let hubspot = connector(&fake);
    hubspot.prepare().await.unwrap();
    fake.fail_next(3, Failure::ServerError);
    fake.fail_next(2, Failure::RateLimited { retry_after_secs: 30 });
    let first = hubspot.sync_deal(&acme_deal("ref_4"), None).await.unwrap_err();
    assert!(matches!(first, CrmError::Unavailable(_)), "{first:?}");
    for _ in 0..2 {
        assert!(matches!(hubspot.sync_deal(&acme_deal("ref_4"), None).await, Err(CrmError::Unavailable(_))));
    }
    let limited = hubspot.sync_deal(&acme_deal("ref_4"), None).await.unwrap_err();
    assert_eq!(limited, CrmError::RateLimited { retry_after: Duration::from_secs(30) });
    assert!(limited.is_retryable());
    let (_, attempts) = with_retries(&hubspot, &acme_deal("ref_4")).await;
    assert_eq!(attempts, 2, "one more 429, then success");
    assert_eq!((fake.count("companies"), fake.count("contacts"), fake.count("deals")), (1, 1, 1));
}

#[tokio::test]
async fn a_short_retry_after_is_waited_out_inside_the_call() {
    let fake = FakeHubSpot::start().await;
    let hubspot = connector(&fake);
    hubspot.prepare().await.unwrap();
    fake.fail_next(1, Failure::RateLimited { retry_after_secs: 1 });
    let started = std::time::Instant::now();
    hubspot.sync_deal(&acme_deal("ref_5"), None).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(hubspot.rate_limited_answers(), 1);
    assert_eq!(fake.count("deals"), 1);
}

#[tokio::test]
async fn the_fakes_secondly_limit_answers_429_which_the_connector_reports() {
    let fake = FakeHubSpot::start().await;
    fake.set_limit_per_10s(Some(3));
    let hubspot = connector(&fake);
    hubspot.stages().await.unwrap();
    hubspot.stages().await.unwrap();
    hubspot.stages().await.unwrap();
    match hubspot.stages().await {
        Err(CrmError::RateLimited { retry_after }) => {
            assert!(retry_after > Duration::from_secs(2) && retry_after <= Duration::from_secs(10))
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    assert_eq!(fake.requests().iter().filter(|r| r.status == 429).count(), 1);
}

#[tokio::test]
async fn a_rejected_token_is_unauthorized_and_not_retried() {
    let fake = FakeHubSpot::start().await;
    let hubspot = HubSpot::new(HubSpotConfig::new(&fake.base_url, Secret::new(""))).unwrap();
    let error = hubspot.stages().await.unwrap_err();
    assert!(matches!(error, CrmError::Unauthorized(_)), "{error:?}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_note_added_twice_with_one_key_is_one_note_on_the_deal() {
    let fake = FakeHubSpot::start().await;
    let hubspot = connector(&fake);
    hubspot.prepare().await.unwrap();
    let refs = hubspot.sync_deal(&acme_deal("ref_6"), None).await.unwrap();
    // Search cannot see the notes yet: the check must not rely on it.
    fake.set_search_lag(Duration::from_secs(30));
    let at = Timestamp::from_second(1_764_000_000).unwrap();
    let first = hubspot.add_note(&refs.deal_id, "outbox-item-1", "<p>Partner reply: they signed</p>", at).await.unwrap();
    let again = hubspot.add_note(&refs.deal_id, "outbox-item-1", "<p>Partner reply: they signed</p>", at).await.unwrap();
    assert_eq!(first, again);
    fake.fail_next_at("POST /crm/v3/objects/notes", 1, Failure::ServerErrorAfterWrite);
    assert!(hubspot.add_note(&refs.deal_id, "outbox-item-2", "<p>Second reply</p>", at).await.unwrap_err().is_retryable());
    let second = hubspot.add_note(&refs.deal_id, "outbox-item-2", "<p>Second reply</p>", at).await.unwrap();
    assert_ne!(first, second);
    let notes = fake.notes();
    assert_eq!(notes.len(), 2);
    for note in &notes {
        assert_eq!(linked(note, "deals", 214), vec![refs.deal_id.clone()]);
        assert_eq!(note.prop("hs_timestamp"), Some("2025-11-24T16:00:00Z"));
    }
    assert!(notes[0].prop("hs_note_body").unwrap().starts_with("<p>Partner reply: they signed</p>"));
}

#[tokio::test]
async fn stage_changes_are_written_and_polled_back() {
    let fake = FakeHubSpot::start().await;
    let hubspot = connector(&fake);
    hubspot.prepare().await.unwrap();
    let refs = hubspot.sync_deal(&acme_deal("ref_7"), None).await.unwrap();
    let first = hubspot.changes_since(None).await.unwrap();
    assert_eq!(first.changes.len(), 1);
    assert_eq!(first.changes[0].stage, "appointmentscheduled");
    assert_eq!(first.changes[0].referral_id.as_deref(), Some("ref_7"));
    assert_eq!(first.changes[0].amount, Some(Money::from_minor(150_000, Currency::USD)));

    tokio::time::sleep(Duration::from_millis(5)).await;
    let quiet = hubspot.changes_since(Some(&first.cursor)).await.unwrap();
    assert_eq!(quiet.changes, vec![], "the overlap does not hand out a change twice");
    fake.change_deal_stage(&refs.deal_id, "closedwon");
    let next = hubspot.changes_since(Some(&quiet.cursor)).await.unwrap();
    assert_eq!(next.changes.len(), 1);
    let change = &next.changes[0];
    assert_eq!((change.deal_id.as_str(), change.stage.as_str()), (refs.deal_id.as_str(), "closedwon"));
    assert!(change.changed_at > first.changes[0].changed_at);

    hubspot.set_stage(&refs.deal_id, "closedlost", Some(Money::from_minor(99_950, Currency::USD))).await.unwrap();
    let deal = fake.deal(&refs.deal_id).unwrap();
    assert_eq!((deal.prop("dealstage"), deal.prop("amount")), (Some("closedlost"), Some("999.50")));
    assert!(matches!(hubspot.set_stage("999999", "closedwon", None).await, Err(CrmError::NotFound(_))));
}

#[tokio::test]
async fn polling_pages_through_many_changes_without_losing_any() {
    let fake = FakeHubSpot::start().await;
    for i in 0..250 {
        fake.seed_deal(&format!("Deal {i}"), "qualifiedtobuy", None);
    }
    let mut cursor: Option<String> = None;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let page = hubspot_poll(&fake, cursor.as_deref()).await;
        assert!(page.changes.len() <= 100);
        seen.extend(page.changes.iter().map(|c| c.deal_id.clone()));
        cursor = Some(page.cursor);
    }
    assert_eq!(seen.len(), 250);
}

async fn hubspot_poll(fake: &FakeHubSpot, cursor: Option<&str>) -> partnerloop_app::crm::ChangesPage {
    connector(fake).changes_since(cursor).await.unwrap()
}

#[tokio::test]
async fn stages_come_from_the_pipelines_with_won_and_lost_marked() {
    let fake = FakeHubSpot::start().await;
    let stages = connector(&fake).stages().await.unwrap();
    assert_eq!(stages.len(), 7);
    let won: Vec<_> = stages.iter().filter(|s| s.closed_won).map(|s| s.id.as_str()).collect();
    let lost: Vec<_> = stages.iter().filter(|s| s.closed_lost).map(|s| s.id.as_str()).collect();
    assert_eq!((won, lost), (vec!["closedwon"], vec!["closedlost"]));
}

#[tokio::test]
async fn backfill_pages_through_companies_then_open_deals_at_most_100_per_call() {
    let fake = FakeHubSpot::start().await;
    fake.seed_companies(250, 10);
    let acme = fake.companies()[0].id.clone();
    fake.seed_deal("Open one", "qualifiedtobuy", Some(&acme));
    fake.seed_deal("Open two", "contractsent", None);
    fake.seed_deal("Won", "closedwon", Some(&acme));
    let hubspot = connector(&fake);
    let (mut accounts, mut open, mut after, mut pages) = (Vec::new(), Vec::new(), None::<String>, 0);
    loop {
        let page = hubspot.backfill(after.as_deref()).await.unwrap();
        pages += 1;
        assert!(page.accounts.len() <= 100);
        accounts.extend(page.accounts);
        open.extend(page.open_deals);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(accounts.len(), 250);
    assert_eq!(accounts.iter().filter(|a| a.is_customer).count(), 25);
    assert_eq!(accounts.iter().map(|a| a.crm_id.as_str()).collect::<std::collections::BTreeSet<_>>().len(), 250);
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].company_domain.as_deref(), Some("seeded-0.example"));
    assert_eq!(open[1].company_domain, None);
    assert_eq!(pages, 4);
    assert_eq!(fake.calls_to("GET /crm/v3/objects/companies"), 3);
    assert!(fake.requests().iter().filter(|r| r.method == "GET").all(|r| r.query.contains("limit=100")));
    assert_eq!(fake.calls_to("POST /crm/v3/objects/companies/batch/read"), 1);
    let per_endpoint = fake.requests_per_endpoint();
    assert_eq!(per_endpoint.values().sum::<usize>(), 5, "{per_endpoint:?}");
}

#[tokio::test]
async fn a_signed_stage_change_webhook_verifies_and_parses() {
    let fake = FakeHubSpot::start().await;
    let deal = fake.seed_deal("Via webhook", "qualifiedtobuy", None);
    let body = fake.change_deal_stage(&deal, "closedwon");
    let url = "https://partnerloop.example/webhooks/hubspot?workspace=w1";
    let now = Timestamp::now();
    let (ts, signature) = sign_webhook("client-secret", url, &body, now);
    verify_signature_v3("POST", url, &body, &ts, &signature, "client-secret", now).unwrap();
    assert!(verify_signature_v3("POST", url, &body, &ts, &signature, "another-secret", now).is_err());
    let events = parse_events(&body).unwrap();
    assert_eq!(events[0].deal_stage_change(), Some((deal, "closedwon")));
}

#[tokio::test]
async fn the_fake_rejects_and_records_bodies_that_break_hubspots_spec() {
    let fake = FakeHubSpot::start().await;
    partnerloop_crm::http::install_crypto_provider();
    let http = reqwest::Client::new();
    let send = |body: serde_json::Value| http.post(format!("{}/crm/v3/objects/0-3", fake.base_url)).bearer_auth("t").json(&body).send();
    let number_amount = send(serde_json::json!({"properties": {"dealname": "x", "amount": 1500}, "associations": []})).await.unwrap();
    assert_eq!(number_amount.status(), 400);
    let no_associations = send(serde_json::json!({"properties": {"dealname": "x"}})).await.unwrap();
    assert_eq!(no_associations.status(), 400);
    let search = http
        .post(format!("{}/crm/v3/objects/companies/search", fake.base_url))
        .bearer_auth("t")
        .json(&serde_json::json!({"filterGroups": [], "properties": [], "limit": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 400);
    let violations = fake.take_violations();
    assert_eq!(violations.len(), 3, "{violations:#?}");
    assert!(violations[0].errors.iter().any(|e| e.contains("amount")), "{:?}", violations[0].errors);
    assert!(violations[1].errors.iter().any(|e| e.contains("associations")), "{:?}", violations[1].errors);
    assert!(violations[2].errors.iter().any(|e| e.contains("after")), "{:?}", violations[2].errors);
    assert_eq!(fake.count("deals"), 0);
}

#[tokio::test]
async fn every_request_of_a_whole_session_matches_hubspots_spec() {
    let fake = FakeHubSpot::start().await;
    fake.seed_companies(120, 3);
    let hubspot = connector(&fake);
    hubspot.prepare().await.unwrap();
    hubspot.stages().await.unwrap();
    let mut no_contact = acme_deal("ref_8");
    no_contact.contact = None;
    no_contact.company.domain = None;
    no_contact.amount = None;
    no_contact.close_date = None;
    let a = hubspot.sync_deal(&acme_deal("ref_9"), None).await.unwrap();
    hubspot.sync_deal(&no_contact, None).await.unwrap();
    let mut new_contact = acme_deal("ref_9");
    new_contact.contact = Some(CrmContact { email: "bob@acme.com".into(), first_name: None, last_name: None });
    let known = CrmRefs { contact_id: None, ..a.clone() };
    hubspot.sync_deal(&new_contact, Some(&known)).await.unwrap();
    // A contact sales already had is associated to the existing deal too.
    let mut existing_contact = acme_deal("ref_9");
    existing_contact.contact = Some(CrmContact { email: "jane@acme.com".into(), first_name: None, last_name: None });
    let b = hubspot.sync_deal(&no_contact, None).await.unwrap();
    hubspot
        .sync_deal(&DealForSync { referral_id: "ref_8".into(), ..existing_contact }, Some(&CrmRefs { contact_id: None, ..b }))
        .await
        .unwrap();
    hubspot.add_note(&a.deal_id, "k1", "<p>hello</p>", Timestamp::now()).await.unwrap();
    hubspot.set_stage(&a.deal_id, "closedwon", Some(Money::from_minor(1, Currency::USD))).await.unwrap();
    let page = hubspot.changes_since(None).await.unwrap();
    hubspot.changes_since(Some(&page.cursor)).await.unwrap();
    let mut after = None;
    while let Some(next) = hubspot.backfill(after.as_deref()).await.unwrap().next {
        after = Some(next);
    }
    assert_eq!(fake.violations(), vec![]);
    assert!(fake.validated_bodies() >= 15, "only {} bodies validated", fake.validated_bodies());
    // Lookups that find nothing answer 404; nothing else failed.
    assert!(fake.requests().iter().all(|r| r.status < 400 || (r.status == 404 && r.method == "GET")), "{:#?}", fake.requests());
    assert_eq!(fake.deals().len(), 2);
    assert_eq!(linked(&fake.deal(&a.deal_id).unwrap(), "contacts", 3).len(), 2, "the new contact is associated to the existing deal");
    let ref_8 = fake.deals().into_iter().find(|d| d.prop("partnerloop_referral_id") == Some("ref_8")).unwrap();
    let jane = fake.contacts().into_iter().find(|c| c.prop("email") == Some("jane@acme.com")).unwrap();
    assert!(ref_8.associations.iter().any(|x| x.to_type == "contacts" && x.to_id == jane.id));
    assert_eq!(fake.contacts().len(), 2);
}
