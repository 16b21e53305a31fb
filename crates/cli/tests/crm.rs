//! The HubSpot connector end to end, on SQLite and PostgreSQL, against the
//! fake HubSpot (real HTTP; every request body it receives is validated
//! against HubSpot's OpenAPI documents, and a violation fails the test):
//! connect → an approved referral becomes company, contact and deal
//! (through an outage and a 429: exactly one deal) → a reply becomes a
//! note → a stage change here moves the deal → a signed webhook moves the
//! referral (bad signature, stale timestamp refused; not echoed back) →
//! the partner hears of the win. Backfill feeds the conflict checks and
//! polling picks up stage changes without webhooks.

mod common;

use std::sync::Arc;

use common::{Engine, TestApp, body, problem_fields};
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::Store as _;
use partnerloop_app::crm_sync::CrmHub;
use partnerloop_app::notify::NotifyConfig;
use partnerloop_crm::Connectors;
use partnerloop_crm::fake::{FAKE_SF_TOKEN, Failure, FakeHubSpot, FakeSalesforce, sign_webhook};
use partnerloop_jobs::Dispatcher;
use partnerloop_jobs::crm::CrmSender;
use partnerloop_jobs::email::Mailer;
use partnerloop_jobs::http::HttpSender;
use reqwest::Method;
use serde_json::{Value, json};

on_both_engines!(
    an_approved_referral_reaches_hubspot_and_its_stage_comes_back_by_webhook,
    backfilled_accounts_and_deals_feed_conflict_checks_and_polling_follows_stages,
    salesforce_gets_the_opportunity_and_outbound_messages_and_polling_move_the_referral,
);

const PUBLIC: &str = "https://partners.vendor.example";
const CLIENT_SECRET: &str = "hubspot-app-client-secret";

struct Harness {
    app: TestApp,
    dispatcher: Dispatcher,
    mail_dir: tempfile::TempDir,
    fake: FakeHubSpot,
}

impl Harness {
    async fn new(engine: Engine) -> Harness {
        let fake = FakeHubSpot::start().await;
        let links = || NotifyConfig {
            base_url: PUBLIC.into(),
            inbound_domain: "in.vendor.example".into(),
            link_key: b"test link key".to_vec(),
            default_slack_workspace: None,
        };
        let app = TestApp::spawn_with(engine, |s| {
            let hub = Arc::new(CrmHub::new(Arc::new(Connectors), s.sealer.clone()));
            s.with_links(links()).with_crm(hub)
        })
        .await;
        let secret = app.store.instance_setting_or_init("secret_key", String::new()).await.unwrap();
        let sealer = Arc::new(partnerloop_app::sealing::Sealer::from_secret(&secret));
        let store: Arc<dyn partnerloop_app::Store> = app.store.clone();
        let mail_dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(CrmHub::new(Arc::new(Connectors), sealer.clone()));
        let dispatcher = Dispatcher::new(
            store.clone(),
            links(),
            Arc::new(Mailer::files(mail_dir.path().to_owned(), "partners@vendor.example")),
            Arc::new(HttpSender::new(store.clone(), sealer, None)),
        )
        .with_crm(Arc::new(CrmSender::new(store, hub)));
        Harness { app, dispatcher, mail_dir, fake }
    }

    async fn connect(&self) -> Value {
        let b = json!({
            "kind": "hubspot",
            "settings": {"base_url": self.fake.base_url, "portal_id": 62515},
            "secrets": {"token": "pat-na1-test-token", "client_secret": CLIENT_SECRET},
        });
        let r = self.app.request(Method::PUT, "/api/v1/settings/crm", Some(&self.app.admin)).json(&b).send().await.unwrap();
        let (s, v) = body(r).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    async fn register(&self, token: &str, company: &str, domain: &str) -> Value {
        let b = json!({
            "company": {"name": company, "domain": domain},
            "contact": {"name": "Pat Buyer", "email": format!("pat@{domain}")},
            "estimated_value": {"amount": "24000.00", "currency": "USD"},
        });
        let (s, r) = body(self.app.post("/api/v1/referrals", token, &b).await).await;
        assert_eq!(s, 201, "{r}");
        r
    }

    async fn drain(&self, at: Timestamp) {
        self.dispatcher.drain(at).await.expect("drain");
    }

    async fn crm_state(&self, id: &str) -> (u16, Value) {
        body(self.app.get(&format!("/api/v1/referrals/{id}/crm"), &self.app.admin).await).await
    }

    async fn webhook(&self, payload: &[u8], secret: &str, at: Timestamp) -> (u16, Value) {
        let (ts, sig) = sign_webhook(secret, &format!("{PUBLIC}/webhooks/hubspot"), payload, at);
        let r = self
            .app
            .client
            .post(format!("{}/webhooks/hubspot", self.app.base))
            .header("content-type", "application/json")
            .header("x-hubspot-request-timestamp", ts)
            .header("x-hubspot-signature-v3", sig)
            .body(payload.to_vec())
            .send()
            .await
            .unwrap();
        body(r).await
    }

    fn mails(&self) -> Vec<String> {
        std::fs::read_dir(self.mail_dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    }
}

async fn an_approved_referral_reaches_hubspot_and_its_stage_comes_back_by_webhook(engine: Engine) {
    let h = Harness::new(engine).await;
    let plan = json!({"name": "Standard", "kind": "percent", "rate": "0.10", "default": true});
    assert_eq!(h.app.post("/api/v1/commission-plans", &h.app.admin, &plan).await.status(), 201);
    let (_, partner_token) = h.app.partners_with_tokens(1).await.remove(0);

    // Bad settings are refused field by field; nothing is stored.
    for (b, field) in [
        (json!({"kind": "pipedrive"}), "kind"),
        (json!({"kind": "hubspot"}), "secrets.token"),
        (json!({"kind": "hubspot", "secrets": {"token": "t"}, "settings": {"stage_map": {"123": "won"}}}), "settings.stage_map.123"),
        (json!({"kind": "hubspot", "secrets": {"token": "t"}, "settings": {"base_url": "ftp://x"}}), "settings.base_url"),
    ] {
        let r = h.app.request(Method::PUT, "/api/v1/settings/crm", Some(&h.app.admin)).json(&b).send().await.unwrap();
        let (s, p) = body(r).await;
        assert_eq!(s, 422, "{p}");
        assert_eq!(problem_fields(&p), [field], "{p}");
    }
    assert_eq!(h.app.get("/api/v1/settings/crm", &h.app.admin).await.status(), 404);
    let shown = h.connect().await;
    let text = shown.to_string();
    assert!(!text.contains("pat-na1-test-token") && !text.contains(CLIENT_SECRET), "secrets are never shown: {text}");
    assert_eq!(shown["stage_map"]["closedwon"], "closed_won");
    assert_eq!(h.app.get("/api/v1/settings/crm", &partner_token).await.status(), 403, "admins only");

    // Approved at once; the first attempts meet an outage and a rate limit.
    h.fake.fail_next(1, Failure::ServerError);
    h.fake.fail_next(1, Failure::RateLimited { retry_after_secs: 30 });
    let r = h.register(&partner_token, "Globex", "globex.example").await;
    assert_eq!(r["status"], "approved", "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    let mut at = Timestamp::now();
    h.drain(at).await;
    let (s, state) = h.crm_state(&id).await;
    assert_eq!(s, 200, "{state}");
    assert_eq!(state["status"], "pending", "retried, not given up: {state}");
    assert!(state["last_error"].as_str().unwrap().contains("unavailable"), "{state}");
    for _ in 0..3 {
        at += SignedDuration::from_hours(1);
        h.drain(at).await;
    }
    let (_, state) = h.crm_state(&id).await;
    assert_eq!(state["status"], "synced", "{state}");
    assert!(state["last_error"].is_null());
    assert_eq!((h.fake.count("companies"), h.fake.count("contacts"), h.fake.count("deals")), (1, 1, 1), "exactly one of each");
    let deal_id = state["deal_id"].as_str().unwrap().to_owned();
    let deal = h.fake.deal(&deal_id).unwrap();
    assert_eq!(deal.prop("partnerloop_referral_id"), Some(id.as_str()));
    assert_eq!(deal.prop("partnerloop_partner_name"), Some("Partner 0"));
    assert_eq!(deal.prop("partnerloop_partner_sourced"), Some("true"));
    assert_eq!(deal.prop("amount"), Some("24000.00"));
    assert!(deal.prop("dealname").unwrap().starts_with("Globex"), "{:?}", deal.prop("dealname"));
    assert!(deal.associations.iter().any(|a| a.to_type == "companies"), "{:?}", deal.associations);
    assert!(deal.associations.iter().any(|a| a.to_type == "contacts"), "{:?}", deal.associations);
    assert_eq!(h.fake.companies()[0].prop("domain"), Some("globex.example"));
    assert_eq!(h.fake.contacts()[0].prop("email"), Some("pat@globex.example"));

    // A reply (here as a note by the system) becomes one note on the deal.
    let ws = h.app.store.workspace_by_slug("default").await.unwrap();
    let ctx = partnerloop_app::Ctx::system(ws.id.clone(), "test", Timestamp::now());
    let rid = partnerloop_domain::referral::ReferralId::from_string(&id);
    partnerloop_app::referrals::reply(h.app.store.as_ref(), &ctx, &rid, "Their CFO signs <Friday>".into()).await.unwrap();
    at += SignedDuration::from_hours(1);
    h.drain(at).await;
    h.drain(at).await;
    let notes = h.fake.notes();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].prop("hs_note_body").unwrap().contains("Their CFO signs &lt;Friday&gt;"), "{:?}", notes[0]);
    assert!(notes[0].associations.iter().any(|a| a.to_type == "deals" && a.to_id == deal_id), "{:?}", notes[0].associations);

    // A stage change made here moves the HubSpot deal.
    let (s, v) = body(h.app.post(&format!("/api/v1/referrals/{id}/stage"), &h.app.admin, &json!({"stage": "qualified"})).await).await;
    assert_eq!(s, 200, "{v}");
    at += SignedDuration::from_hours(1);
    h.drain(at).await;
    assert_eq!(h.fake.deal(&deal_id).unwrap().prop("dealstage"), Some("qualifiedtobuy"));

    // Closed won in HubSpot: the webhook is verified before anything moves.
    let payload = h.fake.change_deal_stage(&deal_id, "closedwon");
    let (s, p) = h.webhook(&payload, "not the secret", Timestamp::now()).await;
    assert_eq!(s, 401, "{p}");
    let (s, p) = h.webhook(&payload, CLIENT_SECRET, Timestamp::now() - SignedDuration::from_mins(10)).await;
    assert_eq!(s, 401, "a stale timestamp: {p}");
    let (_, r) = body(h.app.get(&format!("/api/v1/referrals/{id}"), &h.app.admin).await).await;
    assert_eq!(r["status"], "approved", "nothing moved yet");
    let (s, p) = h.webhook(&payload, CLIENT_SECRET, Timestamp::now()).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["applied"], 1);
    let (s, p) = h.webhook(&payload, CLIENT_SECRET, Timestamp::now()).await;
    assert_eq!((s, p["applied"].as_u64()), (200, Some(0)), "a redelivered event is applied once");
    let (_, r) = body(h.app.get(&format!("/api/v1/referrals/{id}"), &h.app.admin).await).await;
    assert_eq!(r["status"], "won", "{r}");
    assert_eq!(r["amount"], json!({"amount": "24000.00", "currency": "USD"}));
    let (_, timeline) = body(h.app.get(&format!("/api/v1/referrals/{id}/timeline"), &h.app.admin).await).await;
    assert!(timeline["data"].as_array().unwrap().iter().any(|e| e["kind"] == "won" && e["actor"] == "system:hubspot"), "{timeline}");

    // The partner hears of the win; HubSpot is not told what it said.
    let patches_before = h.fake.requests().iter().filter(|r| r.method == "PATCH").count();
    at += SignedDuration::from_hours(1);
    h.drain(at).await;
    assert!(h.mails().iter().any(|m| m.contains("Globex") && m.contains("signed")), "the won mail");
    assert_eq!(h.fake.requests().iter().filter(|r| r.method == "PATCH").count(), patches_before, "no echo to HubSpot");
    assert!(h.fake.validated_bodies() >= 5);
    assert!(h.fake.violations().is_empty(), "{:?}", h.fake.violations());
    h.app.cleanup().await;
}

async fn backfilled_accounts_and_deals_feed_conflict_checks_and_polling_follows_stages(engine: Engine) {
    let h = Harness::new(engine).await;
    let (_, partner_token) = h.app.partners_with_tokens(1).await.remove(0);
    h.fake.seed_companies(250, 5);
    let lead = h.fake.companies().into_iter().find(|c| c.prop("domain") == Some("seeded-1.example")).unwrap();
    let open_deal = h.fake.seed_deal("Seeded 1 expansion", "qualifiedtobuy", Some(&lead.id));
    h.fake.seed_deal("Old one", "closedlost", Some(&lead.id));
    // Approved before the CRM was connected: pushed to it once connected.
    let prior = h.register(&partner_token, "Prior Corp", "prior.example").await;
    assert_eq!(prior["status"], "approved");
    h.drain(Timestamp::now()).await;
    h.connect().await;

    let (s, sync) = body(h.app.post("/api/v1/settings/crm/sync", &h.app.admin, &json!({})).await).await;
    assert_eq!(s, 200, "{sync}");
    assert_eq!(sync["cached"], 251, "250 companies and the one open deal: {sync}");
    let (_, conn) = body(h.app.get("/api/v1/settings/crm", &h.app.admin).await).await;
    assert!(conn["backfilled_at"].is_string() && conn["last_error"].is_null(), "{conn}");

    // A HubSpot customer is off the table; an open HubSpot deal needs review.
    let customer = h.register(&partner_token, "Seeded Company 0", "seeded-0.example").await;
    assert_eq!(customer["status"], "rejected", "{customer}");
    assert!(customer["decision"]["reasons"].as_array().unwrap().iter().any(|r| r["rule"] == "existing_customer"), "{customer}");
    let open = h.register(&partner_token, "Seeded Company 1", "seeded-1.example").await;
    assert_eq!(open["status"], "pending_review", "{open}");
    assert!(open["decision"]["reasons"].as_array().unwrap().iter().any(|r| r["rule"] == "open_direct_opportunity"), "{open}");

    // Polling (no webhook) follows a stage change made in HubSpot.
    let fresh = h.register(&partner_token, "Initech", "initech.example").await;
    let id = fresh["id"].as_str().unwrap();
    h.drain(Timestamp::now()).await;
    let (_, state) = h.crm_state(id).await;
    let deal_id = state["deal_id"].as_str().expect("synced").to_owned();
    let (_, prior_state) = h.crm_state(prior["id"].as_str().unwrap()).await;
    assert_eq!(prior_state["status"], "synced", "{prior_state}");
    let prior_deal = h.fake.deal(prior_state["deal_id"].as_str().unwrap()).unwrap();
    assert_eq!(prior_deal.prop("partnerloop_referral_id"), prior["id"].as_str());
    h.connect().await;
    h.drain(Timestamp::now()).await;
    assert_eq!(h.fake.count("deals"), 4, "connecting the same CRM again pushes nothing twice (2 seeded + 2 synced)");
    h.fake.change_deal_stage(&deal_id, "presentationscheduled");
    let (s, sync) = body(h.app.post("/api/v1/settings/crm/sync", &h.app.admin, &json!({})).await).await;
    assert_eq!(s, 200, "{sync}");
    assert!(sync["changed"].as_u64().unwrap() >= 1, "{sync}");
    let (_, r) = body(h.app.get(&format!("/api/v1/referrals/{id}"), &h.app.admin).await).await;
    assert_eq!(r["stage"], "proposal", "{r}");

    // The cached direct deal follows HubSpot too: closed, it stops blocking.
    h.fake.change_deal_stage(&open_deal, "closedlost");
    let (s, sync) = body(h.app.post("/api/v1/settings/crm/sync", &h.app.admin, &json!({})).await).await;
    assert_eq!(s, 200, "{sync}");
    let (_, deals) = body(h.app.get("/api/v1/deals?limit=500", &h.app.admin).await).await;
    let cached = deals["data"].as_array().unwrap().iter().find(|d| d["name"] == "Seeded 1 expansion").cloned().expect("cached deal");
    assert_eq!(cached["stage"], "closed_lost", "{cached}");
    let other = h.app.create_partner(&h.app.admin, "Other Partner", "o@other-partner.example").await;
    let key: Value = h
        .app
        .post(&format!("/api/v1/partners/{}/api-keys", other["id"].as_str().unwrap()), &h.app.admin, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let again = h.register(key["token"].as_str().unwrap(), "Seeded Company 1", "seeded-1.example").await;
    assert!(
        !again["decision"]["reasons"].as_array().unwrap().iter().any(|r| r["rule"] == "open_direct_opportunity"),
        "a closed CRM deal no longer conflicts: {again}"
    );

    // A CRM outage during sync is reported and recorded, not hidden.
    h.fake.fail_next(5, Failure::ServerError);
    let (s, p) = body(h.app.post("/api/v1/settings/crm/sync", &h.app.admin, &json!({})).await).await;
    assert_eq!(s, 502, "{p}");
    let (_, conn) = body(h.app.get("/api/v1/settings/crm", &h.app.admin).await).await;
    assert!(conn["last_error"].as_str().is_some_and(|e| e.contains("unavailable")), "{conn}");
    assert!(h.fake.violations().is_empty(), "{:?}", h.fake.violations());
    h.app.cleanup().await;
}

const ORG: &str = "00D000000000001EAA";

fn outbound_message(notification: &str, opportunity: &str, stage: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">
  <OrganizationId>{ORG}</OrganizationId><ActionId>04k000000000001AAA</ActionId>
  <Notification><Id>{notification}</Id>
   <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
    <sf:Id>{opportunity}</sf:Id><sf:StageName>{stage}</sf:StageName>
   </sObject>
  </Notification>
 </notifications></soapenv:Body>
</soapenv:Envelope>"#
    )
}

async fn salesforce_gets_the_opportunity_and_outbound_messages_and_polling_move_the_referral(engine: Engine) {
    let h = Harness::new(engine).await;
    let sf = FakeSalesforce::start().await;
    let (_, partner_token) = h.app.partners_with_tokens(1).await.remove(0);
    let b = json!({
        "kind": "salesforce",
        "settings": {"base_url": sf.base_url, "organization_id": ORG},
        "secrets": {"token": FAKE_SF_TOKEN, "client_secret": "sf-outbound-key"},
    });
    let r = h.app.request(Method::PUT, "/api/v1/settings/crm", Some(&h.app.admin)).json(&b).send().await.unwrap();
    let (s, v) = body(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stage_map"]["Closed Won"], "closed_won");

    let r = h.register(&partner_token, "Umbrella", "umbrella.example").await;
    let id = r["id"].as_str().unwrap().to_owned();
    h.drain(Timestamp::now()).await;
    h.drain(Timestamp::now()).await;
    let (_, state) = h.crm_state(&id).await;
    assert_eq!(state["status"], "synced", "{state}");
    let opportunities = sf.records("Opportunity");
    assert_eq!(opportunities.len(), 1, "{opportunities:?}");
    let opp = &opportunities[0];
    assert_eq!(opp["Prm_Referral_Id__c"], id.as_str());
    assert_eq!(opp["StageName"], "Prospecting");
    assert_eq!(opp["Amount"], json!(24000.0));
    let opp_id = opp["Id"].as_str().unwrap().to_owned();
    assert_eq!(state["deal_id"], opp_id.as_str());
    assert_eq!(sf.records("Account").len(), 1);

    // A salesperson moves the Opportunity; Salesforce sends an Outbound
    // Message, which needs the key; then it moves the referral, once.
    sf.change_stage(&opp_id, "Negotiation/Review");
    let msg = outbound_message("04l000000000001AAA", &opp_id, "Negotiation/Review");
    let post = |key: &'static str, body: String| {
        h.app.client.post(format!("{}/webhooks/salesforce?key={key}", h.app.base)).header("content-type", "text/xml").body(body).send()
    };
    assert_eq!(post("wrong", msg.clone()).await.unwrap().status(), 401);
    let ok = post("sf-outbound-key", msg.clone()).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("<Ack>true</Ack>"));
    let (_, r) = body(h.app.get(&format!("/api/v1/referrals/{id}"), &h.app.admin).await).await;
    assert_eq!(r["stage"], "negotiation", "{r}");
    let other_org = msg.replace(ORG, "00D999999999999AAA");
    assert_eq!(post("sf-outbound-key", other_org).await.unwrap().status(), 404);

    // Closed Won in Salesforce, seen by polling alone.
    sf.change_stage(&opp_id, "Closed Won");
    let (s, sync) = body(h.app.post("/api/v1/settings/crm/sync", &h.app.admin, &json!({})).await).await;
    assert_eq!(s, 200, "{sync}");
    let (_, r) = body(h.app.get(&format!("/api/v1/referrals/{id}"), &h.app.admin).await).await;
    assert_eq!(r["status"], "won", "{r}");
    assert_eq!(r["amount"], json!({"amount": "24000.00", "currency": "USD"}));
    assert!(sf.violations().is_empty(), "{:?}", sf.violations());
    h.app.cleanup().await;
}
