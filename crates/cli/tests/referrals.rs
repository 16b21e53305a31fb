//! Deal registration through HTTP, on SQLite and PostgreSQL: every rule of
//! engagement, the configured actions, review, disputes, protection,
//! stages, expiry, and the first-registration race.

mod common;

use common::{Engine, TestApp, body, problem_fields};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

on_both_engines!(
    a_new_account_is_approved_with_protection_a_deal_and_a_timeline,
    the_same_partner_registering_again_gets_its_referral_back,
    the_company_domain_is_normalised_or_taken_from_the_email,
    a_second_partner_cannot_claim_an_active_registration,
    customers_off_limits_and_direct_opportunities_decide_by_the_rules,
    a_similar_company_name_goes_to_review_with_its_score,
    configured_actions_and_auto_approval_change_decisions,
    the_review_queue_approves_and_rejects,
    protection_is_extended_and_expires_freeing_the_account,
    stages_win_and_lose_and_a_win_makes_a_customer,
    a_partner_disputes_a_rejection_and_the_resolution_is_recorded,
    bad_registrations_are_refused_and_store_nothing,
    of_concurrent_registrations_of_one_account_exactly_one_is_approved,
    without_the_unique_claim_the_race_test_catches_double_approval,
    partners_read_the_stage_labels_the_workspace_chose,
);

async fn partners_read_the_stage_labels_the_workspace_chose(engine: Engine) {
    let p = Program::new(engine, 1).await;
    let (_, r) = p.register(0, "Globex", Some("globex.example"), "a@globex.example").await;
    assert_eq!(r["stage_label"], "Received by the sales team");
    let put = |b: Value| p.app.request(reqwest::Method::PUT, "/api/v1/pipeline/stages", Some(&p.app.admin)).json(&b).send();
    let (s, problem) = body(put(json!({"labels": {"proposal": "x".repeat(61), "signed": "Signed"}})).await.unwrap()).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["labels.proposal".to_owned(), "labels.signed".to_owned()]));
    let (s, stages) = body(put(json!({"labels": {"new": "With our team", "proposal": "Proposal out"}})).await.unwrap()).await;
    assert_eq!(s, 200);
    let labels: Vec<_> = stages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["stage"].as_str().unwrap().to_owned(), x["label"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(labels[0], ("new".to_owned(), "With our team".to_owned()));
    assert_eq!(labels[3], ("proposal".to_owned(), "Proposal out".to_owned()));
    assert_eq!(labels.len(), 7, "every stage, in pipeline order");
    let (_, seen) = body(p.app.get(&format!("/api/v1/referrals/{}", r["id"].as_str().unwrap()), p.token(0)).await).await;
    assert_eq!(seen["stage_label"], "With our team");
    let r2 =
        p.app.request(reqwest::Method::PUT, "/api/v1/pipeline/stages", Some(p.token(0))).json(&json!({"labels": {}})).send().await.unwrap();
    assert_eq!(r2.status(), 403);
    let (_, reset) = body(put(json!({"labels": {"new": ""}})).await.unwrap()).await;
    assert_eq!(reset["data"][0]["label"], "Received by the sales team", "an empty label restores the default");
    p.app.cleanup().await;
}

struct Program {
    app: TestApp,
    partners: Vec<(String, String)>,
}

impl Program {
    /// A workspace with `n` active partners, each with its own token.
    async fn new(engine: Engine, n: usize) -> Program {
        let app = TestApp::spawn(engine).await;
        let partners = app.partners_with_tokens(n).await;
        Program { app, partners }
    }

    fn token(&self, i: usize) -> &str {
        &self.partners[i].1
    }

    fn id(&self, i: usize) -> &str {
        &self.partners[i].0
    }

    async fn register(&self, i: usize, company: &str, domain: Option<&str>, email: &str) -> (u16, Value) {
        let mut b = json!({"company": {"name": company}, "contact": {"name": "Hank Scorpio", "email": email, "title": "CEO"},
                           "context": "Replacing spreadsheets", "estimated_value": {"amount": "24000.00", "currency": "USD"}});
        if let Some(d) = domain {
            b["company"]["domain"] = json!(d);
        }
        body(self.app.post("/api/v1/referrals", self.token(i), &b).await).await
    }

    async fn admin_post(&self, path: &str, b: Value) -> (u16, Value) {
        body(self.app.post(path, &self.app.admin, &b).await).await
    }

    async fn admin_get(&self, path: &str) -> Value {
        body(self.app.get(path, &self.app.admin).await).await.1
    }
}

fn rules(r: &Value) -> Vec<String> {
    r["decision"]["reasons"].as_array().unwrap().iter().map(|x| x["rule"].as_str().unwrap().to_owned()).collect()
}

async fn a_new_account_is_approved_with_protection_a_deal_and_a_timeline(engine: Engine) {
    let p = Program::new(engine, 1).await;
    let (status, r) = p.register(0, "Globex Corporation", Some("globex.example"), "hank@globex.example").await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["status"], "approved");
    assert_eq!(r["channel"], "api");
    assert_eq!(r["partner_id"], p.id(0));
    assert_eq!(r["decision"]["outcome"], "approved");
    assert_eq!(rules(&r), ["no_conflict"]);
    assert_eq!(r["stage"], "new");
    assert_eq!(r["estimated_value"], json!({"amount": "24000.00", "currency": "USD"}));
    let starts: Timestamp = r["protection"]["starts_at"].as_str().unwrap().parse().unwrap();
    let expires: Timestamp = r["protection"]["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires.duration_since(starts), SignedDuration::from_hours(24 * 60), "the default window is 60 days");

    let admin_view = p.admin_get(&format!("/api/v1/referrals/{}", r["id"].as_str().unwrap())).await;
    let deal = p.admin_get(&format!("/api/v1/deals/{}", admin_view["deal_id"].as_str().unwrap())).await;
    assert_eq!(deal["source"], "partner");
    assert_eq!(deal["stage"], "new");
    assert!(r["deal_id"].is_null(), "a partner does not see the vendor's deal id");

    let partner = p.admin_get(&format!("/api/v1/partners/{}", p.id(0))).await;
    assert_eq!(partner["first_referral_at"], r["created_at"]);
    let timeline = p.admin_get(&format!("/api/v1/referrals/{}/timeline", r["id"].as_str().unwrap())).await;
    let kinds: Vec<_> = timeline["data"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["submitted", "decided"]);
    assert_eq!(timeline["data"][0]["actor"], format!("partner:{}", p.id(0)));
    let (_, own) = body(p.app.get(&format!("/api/v1/referrals/{}/timeline", r["id"].as_str().unwrap()), p.token(0)).await).await;
    assert_eq!(own["data"][0]["actor"], "you");
    p.app.cleanup().await;
}

async fn the_same_partner_registering_again_gets_its_referral_back(engine: Engine) {
    let p = Program::new(engine, 1).await;
    let (s1, first) = p.register(0, "Globex", Some("globex.example"), "hank@globex.example").await;
    assert_eq!(s1, 201);
    // Same account by domain (another contact), and by contact email (another domain).
    let (s2, again) = p.register(0, "Globex Inc", Some("https://www.globex.example"), "other@globex.example").await;
    assert_eq!(s2, 200);
    assert_eq!(again["id"], first["id"]);
    let (s3, again) = p.register(0, "Globex", Some("globex-holdings.example"), "hank@globex.example").await;
    assert_eq!(s3, 200);
    assert_eq!(again["id"], first["id"]);
    let list = body(p.app.get("/api/v1/referrals", p.token(0)).await).await.1;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "nothing new was created");
    p.app.cleanup().await;
}

async fn the_company_domain_is_normalised_or_taken_from_the_email(engine: Engine) {
    let p = Program::new(engine, 1).await;
    let (_, r) = p.register(0, "Acme UK", Some("https://www.Sub.Acme.co.uk/x"), "jo@acme.co.uk").await;
    assert_eq!(r["company"]["domain"], "acme.co.uk");
    let (status, r) = p.register(0, "Initech", None, "bill@mail.initech.example").await;
    assert_eq!(status, 201);
    assert_eq!(r["company"]["domain"], "initech.example", "taken from the contact's email");
    let (status, problem) = p.register(0, "Hooli", None, "gavin.belson@gmail.com").await;
    assert_eq!(status, 422, "a free-mail address names no company");
    assert_eq!(problem_fields(&problem), ["company.domain"]);
    let (status, r) = p.register(0, "Hooli", Some("hooli.example"), "gavin.belson@gmail.com").await;
    assert_eq!(status, 201);
    assert_eq!(r["company"]["domain"], "hooli.example");
    p.app.cleanup().await;
}

async fn a_second_partner_cannot_claim_an_active_registration(engine: Engine) {
    let p = Program::new(engine, 3).await;
    let (_, first) = p.register(0, "Globex", Some("globex.example"), "hank@globex.example").await;
    let (status, second) = p.register(1, "Globex Corporation", Some("www.globex.example"), "mindy@globex.example").await;
    assert_eq!(status, 201, "a registration is created whatever the decision");
    assert_eq!(second["status"], "rejected");
    assert_eq!(rules(&second), ["active_referral_other_partner"]);
    // The partner learns only that the account is taken, and until when.
    let reason = &second["decision"]["reasons"][0];
    assert!(reason["conflicting_id"].is_null());
    let until = &first["protection"]["expires_at"].as_str().unwrap()[..10];
    assert_eq!(reason["detail"], format!("this account is already registered until {until}"));
    assert!(!second.to_string().contains(p.id(0)), "nothing names the other partner");
    // The admin sees the evidence.
    let admin = p.admin_get(&format!("/api/v1/referrals/{}", second["id"].as_str().unwrap())).await;
    assert_eq!(admin["decision"]["reasons"][0]["conflicting_id"], first["id"]);
    // The same contact email on another domain is the same account.
    let (_, third) = p.register(2, "Globex Europe", Some("globex.eu.example"), "hank@globex.example").await;
    assert_eq!(third["status"], "rejected");
    let admin = p.admin_get(&format!("/api/v1/referrals/{}", third["id"].as_str().unwrap())).await;
    assert!(admin["decision"]["reasons"][0]["detail"].as_str().unwrap().contains("same email"));
    // Partner 1 cannot read partner 0's referral.
    let r = p.app.get(&format!("/api/v1/referrals/{}", first["id"].as_str().unwrap()), p.token(1)).await;
    assert_eq!(r.status(), 404);
    p.app.cleanup().await;
}

async fn customers_off_limits_and_direct_opportunities_decide_by_the_rules(engine: Engine) {
    let p = Program::new(engine, 1).await;
    for (name, domain, status) in [("Initech", "initech.example", "customer"), ("Umbrella", "umbrella.example", "off_limits")] {
        let (s, _) = p.admin_post("/api/v1/accounts", json!({"name": name, "domain": domain, "status": status})).await;
        assert_eq!(s, 201);
    }
    p.admin_post(
        "/api/v1/deals",
        json!({"name": "Soylent platform", "company": {"name": "Soylent", "domain": "soylent.example"},
        "stage": "proposal", "amount": {"amount": "36000.00", "currency": "USD"}}),
    )
    .await;
    p.admin_post(
        "/api/v1/deals",
        json!({"name": "Old Vandelay deal", "company": {"name": "Vandelay", "domain": "vandelay.example"},
        "stage": "closed_lost", "amount": {"amount": "1.00", "currency": "USD"}}),
    )
    .await;

    let (_, r) = p.register(0, "Initech", Some("initech.example"), "bill@initech.example").await;
    assert_eq!((r["status"].as_str(), rules(&r)), (Some("rejected"), vec!["existing_customer".to_owned()]));
    assert_eq!(r["decision"]["reasons"][0]["detail"], "this company is already a customer");
    let (_, r) = p.register(0, "Umbrella", Some("umbrella.example"), "wesker@umbrella.example").await;
    assert_eq!((r["status"].as_str(), rules(&r)), (Some("rejected"), vec!["off_limits_account".to_owned()]));
    let (_, r) = p.register(0, "Soylent", Some("soylent.example"), "sol@soylent.example").await;
    assert_eq!((r["status"].as_str(), rules(&r)), (Some("pending_review"), vec!["open_direct_opportunity".to_owned()]));
    assert_eq!(r["decision"]["outcome"], "review");
    assert!(r["protection"].is_null(), "no protection while in review");
    let (_, r) = p.register(0, "Vandelay", Some("vandelay.example"), "art@vandelay.example").await;
    assert_eq!(r["status"], "approved", "a closed direct deal is no open opportunity");
    p.app.cleanup().await;
}

async fn a_similar_company_name_goes_to_review_with_its_score(engine: Engine) {
    let p = Program::new(engine, 2).await;
    p.admin_post("/api/v1/accounts", json!({"name": "Globex Corporation", "domain": "globex.example", "status": "prospect"})).await;
    let (_, r) = p.register(0, "The Globx Corp.", Some("globex-intl.example"), "ann@globex-intl.example").await;
    assert_eq!(r["status"], "pending_review", "{r}");
    assert_eq!(rules(&r), ["possible_duplicate"]);
    let admin = p.admin_get(&format!("/api/v1/referrals/{}", r["id"].as_str().unwrap())).await;
    let reason = &admin["decision"]["reasons"][0];
    assert!(reason["conflicting_id"].as_str().unwrap().starts_with("acc_"));
    let score = reason["score"].as_f64().unwrap();
    assert!((0.9..1.0).contains(&score), "{score}");
    assert!(r["decision"]["reasons"][0]["score"].is_null(), "partners see no scores");

    // Active registrations are matched too, but never the partner's own.
    let (_, first) = p.register(0, "Initech Systems", Some("initech.example"), "bill@initech.example").await;
    assert_eq!(first["status"], "approved");
    let (_, own) = p.register(0, "Initech Sytems", Some("initech-systems.example"), "peter@initech-systems.example").await;
    assert_eq!(own["status"], "approved", "{own}");
    let (_, other) = p.register(1, "Initech Systms", Some("initech-sys.example"), "mike@initech-sys.example").await;
    assert_eq!(other["status"], "pending_review");
    // An exact domain match is not also a fuzzy duplicate of the same account.
    let (_, exact) = p.register(1, "Globex Corporation", Some("globex.example"), "ceo@globex.example").await;
    assert_eq!(rules(&exact), ["no_conflict"], "{exact}");
    p.app.cleanup().await;
}

async fn configured_actions_and_auto_approval_change_decisions(engine: Engine) {
    let p = Program::new(engine, 1).await;
    let (_, defaults) = body(p.app.get("/api/v1/rules", p.token(0)).await).await;
    assert_eq!(
        defaults,
        json!({"protection_days": 60, "auto_approve": true, "fuzzy_threshold": 0.9, "actions": {
        "active_referral_other_partner": "reject", "existing_customer": "reject", "off_limits_account": "reject",
        "open_direct_opportunity": "review", "possible_duplicate": "review"}})
    );
    let r =
        p.app.request(reqwest::Method::PUT, "/api/v1/rules", Some(p.token(0))).json(&json!({"auto_approve": false})).send().await.unwrap();
    assert_eq!(r.status(), 403, "partners cannot change the rules");

    let put = |b: Value| p.app.request(reqwest::Method::PUT, "/api/v1/rules", Some(&p.app.admin)).json(&b).send();
    let (s, problem) = body(
        put(json!({"protection_days": 0, "fuzzy_threshold": 2, "actions": {"existing_customer": "ignore", "no_such_rule": "reject"}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(problem_fields(&problem), ["actions.existing_customer", "actions.no_such_rule", "protection_days", "fuzzy_threshold"]);
    let (s, saved) = body(
        put(json!({"protection_days": 30, "actions": {"open_direct_opportunity": "reject", "existing_customer": "review"}})).await.unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(saved["actions"]["open_direct_opportunity"], "reject");
    assert_eq!(saved["auto_approve"], true, "fields left out keep their value");

    p.admin_post("/api/v1/deals", json!({"name": "D", "company": {"name": "Soylent", "domain": "soylent.example"}, "stage": "new", "amount": {"amount": "1.00", "currency": "USD"}})).await;
    p.admin_post("/api/v1/accounts", json!({"name": "Initech", "domain": "initech.example", "status": "customer"})).await;
    let (_, r) = p.register(0, "Soylent", Some("soylent.example"), "a@soylent.example").await;
    assert_eq!(r["status"], "rejected");
    let (_, r) = p.register(0, "Initech", Some("initech.example"), "a@initech.example").await;
    assert_eq!(r["status"], "pending_review");
    let (_, r) = p.register(0, "Hooli", Some("hooli.example"), "a@hooli.example").await;
    let starts: Timestamp = r["protection"]["starts_at"].as_str().unwrap().parse().unwrap();
    let expires: Timestamp = r["protection"]["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires.duration_since(starts), SignedDuration::from_hours(24 * 30));

    put(json!({"auto_approve": false})).await.unwrap();
    let (_, r) = p.register(0, "Pied Piper", Some("piedpiper.example"), "r@piedpiper.example").await;
    assert_eq!((r["status"].as_str(), rules(&r)), (Some("pending_review"), vec!["no_conflict".to_owned()]));
    p.app.cleanup().await;
}

async fn the_review_queue_approves_and_rejects(engine: Engine) {
    let p = Program::new(engine, 2).await;
    p.admin_post("/api/v1/rules", json!({})).await;
    p.app.request(reqwest::Method::PUT, "/api/v1/rules", Some(&p.app.admin)).json(&json!({"auto_approve": false})).send().await.unwrap();
    let (_, a) = p.register(0, "Globex", Some("globex.example"), "a@globex.example").await;
    let (_, b) = p.register(1, "Globex", Some("globex.example"), "b@globex.example").await;
    let (_, c) = p.register(1, "Hooli", Some("hooli.example"), "c@hooli.example").await;
    let queue = p.admin_get("/api/v1/review-queue").await;
    let ids: Vec<_> = queue["data"].as_array().unwrap().iter().map(|x| x["id"].clone()).collect();
    assert_eq!(ids, [a["id"].clone(), b["id"].clone(), c["id"].clone()], "oldest first");
    assert!(queue["data"][0]["age_seconds"].as_i64().unwrap() >= 0);
    assert_eq!(p.app.get("/api/v1/review-queue", p.token(0)).await.status(), 403);

    let (s, approved) =
        p.admin_post(&format!("/api/v1/referrals/{}/approve", a["id"].as_str().unwrap()), json!({"note": "known intro"})).await;
    assert_eq!(s, 200, "{approved}");
    assert_eq!(approved["status"], "approved");
    assert!(approved["protection"]["expires_at"].is_string());
    assert!(approved["decision"]["decided_by"].as_str().unwrap().starts_with("admin:"));
    // The account is now taken: approving the other partner's registration is a conflict.
    let (s, problem) = p.admin_post(&format!("/api/v1/referrals/{}/approve", b["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(s, 409, "{problem}");
    let (s, problem) = p.admin_post(&format!("/api/v1/referrals/{}/reject", c["id"].as_str().unwrap()), json!({"reason": ""})).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["reason".to_owned()]));
    let (s, rejected) =
        p.admin_post(&format!("/api/v1/referrals/{}/reject", c["id"].as_str().unwrap()), json!({"reason": "not a fit"})).await;
    assert_eq!((s, rejected["status"].as_str()), (200, Some("rejected")));
    let (s, _) = p.admin_post(&format!("/api/v1/referrals/{}/approve", c["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(s, 409, "a rejected referral is not approved by the review endpoint");
    let r = p.app.post(&format!("/api/v1/referrals/{}/approve", b["id"].as_str().unwrap()), p.token(1), &json!({})).await;
    assert_eq!(r.status(), 403, "partners cannot approve");
    let timeline = p.admin_get(&format!("/api/v1/referrals/{}/timeline", c["id"].as_str().unwrap())).await;
    assert_eq!(timeline["data"][2]["summary"], "rejected: not a fit");
    p.app.cleanup().await;
}

async fn protection_is_extended_and_expires_freeing_the_account(engine: Engine) {
    let p = Program::new(engine, 2).await;
    let (_, r) = p.register(0, "Globex", Some("globex.example"), "a@globex.example").await;
    let id = r["id"].as_str().unwrap();
    let (s, problem) = p.admin_post(&format!("/api/v1/referrals/{id}/extend"), json!({"days": 0, "reason": ""})).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["days".to_owned(), "reason".to_owned()]));
    let (s, extended) = p.admin_post(&format!("/api/v1/referrals/{id}/extend"), json!({"days": 30, "reason": "long procurement"})).await;
    assert_eq!(s, 200);
    let before: Timestamp = r["protection"]["expires_at"].as_str().unwrap().parse().unwrap();
    let after: Timestamp = extended["protection"]["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(after.duration_since(before), SignedDuration::from_hours(24 * 30));

    // Nothing lapses early…
    let now = Timestamp::now();
    assert_eq!(
        partnerloop_app::referrals::expire_lapsed(p.app.store.as_ref(), now + SignedDuration::from_hours(24 * 89)).await.unwrap(),
        0
    );
    // …and after the (extended) window the account is free again.
    let later = now + SignedDuration::from_hours(24 * 91);
    assert_eq!(partnerloop_app::referrals::expire_lapsed(p.app.store.as_ref(), later).await.unwrap(), 1);
    let expired = p.admin_get(&format!("/api/v1/referrals/{id}")).await;
    assert_eq!(expired["status"], "expired");
    let timeline = p.admin_get(&format!("/api/v1/referrals/{id}/timeline")).await;
    let last = timeline["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["kind"].as_str(), last["actor"].as_str()), (Some("expired"), Some("system:scheduler")));
    let (_, second) = p.register(1, "Globex", Some("globex.example"), "b@globex.example").await;
    assert_eq!(second["status"], "approved", "{second}");
    let (s, _) = p.admin_post(&format!("/api/v1/referrals/{id}/extend"), json!({"days": 5, "reason": "too late"})).await;
    assert_eq!(s, 409);
    p.app.cleanup().await;
}

async fn stages_win_and_lose_and_a_win_makes_a_customer(engine: Engine) {
    let p = Program::new(engine, 2).await;
    let (_, won) = p.register(0, "Globex", Some("globex.example"), "a@globex.example").await;
    let (_, lost) = p.register(0, "Hooli", Some("hooli.example"), "a@hooli.example").await;
    let pp = &p;
    let stage = |id: &Value, b: Value| {
        let path = format!("/api/v1/referrals/{}/stage", id.as_str().unwrap());
        async move { pp.admin_post(&path, b).await }
    };
    let (s, r) = stage(&won["id"], json!({"stage": "qualified"})).await;
    assert_eq!((s, r["stage"].as_str(), r["status"].as_str()), (200, Some("qualified"), Some("approved")));
    let (s, problem) = stage(&won["id"], json!({"stage": "closed_won"})).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["amount".to_owned()]));
    let (s, problem) = stage(&won["id"], json!({"stage": "signed"})).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["stage".to_owned()]));
    let (s, r) = stage(&won["id"], json!({"stage": "closed_won", "amount": {"amount": "30000.00", "currency": "USD"}})).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!((r["status"].as_str(), r["amount"]["amount"].as_str()), (Some("won"), Some("30000.00")));
    assert!(r["closed_at"].is_string());
    let deal = p.admin_get(&format!("/api/v1/deals/{}", r["deal_id"].as_str().unwrap())).await;
    assert_eq!((deal["stage"].as_str(), deal["amount"]["amount"].as_str()), (Some("closed_won"), Some("30000.00")));
    // The won company is a customer now: another partner's registration is refused for that.
    let (_, next) = p.register(1, "Globex", Some("globex.example"), "x@globex.example").await;
    assert_eq!(rules(&next), ["existing_customer"]);

    let (_, r) = stage(&lost["id"], json!({"stage": "closed_lost"})).await;
    assert_eq!(r["status"], "lost");
    let (_, r) = stage(&lost["id"], json!({"stage": "negotiation"})).await;
    assert_eq!((r["status"].as_str(), r["stage"].as_str()), (Some("approved"), Some("negotiation")), "a lost deal can be reopened");
    let r = p
        .app
        .post(
            &format!("/api/v1/referrals/{}/stage", lost["id"].as_str().unwrap()),
            p.token(0),
            &json!({"stage": "closed_won", "amount": {"amount": "1.00", "currency": "USD"}}),
        )
        .await;
    assert_eq!(r.status(), 403, "partners do not move stages");
    p.app.cleanup().await;
}

async fn a_partner_disputes_a_rejection_and_the_resolution_is_recorded(engine: Engine) {
    let p = Program::new(engine, 1).await;
    p.admin_post("/api/v1/accounts", json!({"name": "Initech", "domain": "initech.example", "status": "customer"})).await;
    p.admin_post("/api/v1/accounts", json!({"name": "Hooli", "domain": "hooli.example", "status": "off_limits"})).await;
    let (_, a) = p.register(0, "Initech", Some("initech.example"), "bill@initech.example").await;
    let (_, b) = p.register(0, "Hooli", Some("hooli.example"), "gavin@hooli.example").await;
    let dispute = |id: &Value| format!("/api/v1/referrals/{}/dispute", id.as_str().unwrap());
    let (s, r) =
        body(p.app.post(&dispute(&a["id"]), p.token(0), &json!({"message": "This is a new division, not the customer"})).await).await;
    assert_eq!((s, r["dispute"].as_str()), (200, Some("open")));
    let (s, _) = body(p.app.post(&dispute(&a["id"]), p.token(0), &json!({"message": "again"})).await).await;
    assert_eq!(s, 409, "one dispute per rejection");
    body(p.app.post(&dispute(&b["id"]), p.token(0), &json!({"message": "please"})).await).await;

    let resolve = |id: &Value| format!("/api/v1/referrals/{}/dispute/resolve", id.as_str().unwrap());
    let (s, r) = p.admin_post(&resolve(&a["id"]), json!({"resolution": "overturned", "note": "separate buying unit"})).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!((r["status"].as_str(), r["dispute"].as_str()), (Some("approved"), Some("overturned")));
    assert!(r["protection"].is_object());
    let (s, r) = p.admin_post(&resolve(&b["id"]), json!({"resolution": "upheld", "note": "off-limits by contract"})).await;
    assert_eq!((s, r["status"].as_str(), r["dispute"].as_str()), (200, Some("rejected"), Some("upheld")));
    let timeline = body(p.app.get(&format!("/api/v1/referrals/{}/timeline", b["id"].as_str().unwrap()), p.token(0)).await).await.1;
    let kinds: Vec<_> = timeline["data"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["submitted", "decided", "disputed", "dispute_resolved"]);
    assert_eq!(timeline["data"][3]["actor"], "partner manager");
    p.app.cleanup().await;
}

async fn bad_registrations_are_refused_and_store_nothing(engine: Engine) {
    let p = Program::new(engine, 2).await;
    let pp = &p;
    let post = |token: &str, b: Value| {
        let token = token.to_owned();
        async move { body(pp.app.post("/api/v1/referrals", &token, &b).await).await }
    };
    let good = json!({"company": {"name": "Globex", "domain": "globex.example"}, "contact": {"name": "H", "email": "h@globex.example"}});
    let mut empty = good.clone();
    empty["company"]["name"] = json!(" ");
    let (s, problem) = post(p.token(0), empty).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["company.name".to_owned()]));
    let mut bad_email = good.clone();
    bad_email["contact"]["email"] = json!("hank at globex");
    let (s, problem) = post(p.token(0), bad_email).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["contact.email".to_owned()]));
    let mut other = good.clone();
    other["partner_id"] = json!(p.id(1));
    let (s, _) = post(p.token(0), other).await;
    assert_eq!(s, 403, "a partner token cannot register for another partner");
    let mut unknown = good.clone();
    unknown["partner_id"] = json!("prt_nope");
    let (s, problem) = post(&p.app.admin, unknown).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["partner_id".to_owned()]));
    let (s, problem) = post(&p.app.admin, good.clone()).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["partner_id".to_owned()]), "an admin must name the partner");
    let mut negative = good.clone();
    negative["estimated_value"] = json!({"amount": "-1", "currency": "USD"});
    let (s, problem) = post(p.token(0), negative).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["estimated_value.amount".to_owned()]));
    // A paused partner cannot register.
    p.app.patch(&format!("/api/v1/partners/{}", p.id(1)), &p.app.admin, &json!({"status": "paused"})).await;
    let (s, problem) = post(p.token(1), good.clone()).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["partner_id".to_owned()]));

    let all = p.admin_get("/api/v1/referrals").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 0, "nothing was stored");
    // The account is still free.
    let (s, r) = post(p.token(0), good).await;
    assert_eq!((s, r["status"].as_str()), (201, Some("approved")));
    p.app.cleanup().await;
}

/// Runs `rounds` races of 50 partners registering one new account at once,
/// half by its domain and half by its contact's email on other domains;
/// returns how many were approved in each round.
async fn race(p: &Program, rounds: usize) -> Vec<usize> {
    // Dissimilar names, so that no round is a fuzzy duplicate of another.
    const NAMES: [&str; 8] = ["Globex", "Initech", "Hooli", "Soylent", "Umbrella", "Vandelay", "Wonka", "Cyberdyne"];
    let mut approved_per_round = Vec::new();
    for round in 0..rounds {
        let name = NAMES[round % NAMES.len()];
        let slug = name.to_lowercase();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(50));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let client = p.app.client.clone();
            let base = p.app.base.clone();
            let token = p.token(i).to_owned();
            let start = start.clone();
            let (domain, email) = if i % 2 == 0 {
                (format!("{slug}{round}.example"), format!("buyer{i}@{slug}{round}.example"))
            } else {
                (format!("{slug}{round}-{i}.example"), format!("ceo@{slug}{round}.example"))
            };
            tasks.push(tokio::spawn(async move {
                // Open the connection and warm the token first, then all start at once.
                client.get(format!("{base}/api/v1/rules")).bearer_auth(&token).send().await.unwrap();
                start.wait().await;
                let r = client
                    .post(format!("{base}/api/v1/referrals"))
                    .bearer_auth(token)
                    .json(&json!({"company": {"name": name, "domain": domain}, "contact": {"name": "C", "email": email}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                r.json::<Value>().await.unwrap()["status"].as_str().unwrap().to_owned()
            }));
        }
        let mut approved = 0;
        for t in tasks {
            if t.await.unwrap() == "approved" {
                approved += 1;
            }
        }
        approved_per_round.push(approved);
    }
    approved_per_round
}

async fn of_concurrent_registrations_of_one_account_exactly_one_is_approved(engine: Engine) {
    let p = Program::new(engine, 50).await;
    let rounds = race(&p, 6).await;
    assert!(rounds.iter().all(|n| *n == 1), "approved per round: {rounds:?}");
    p.app.cleanup().await;
}

async fn without_the_unique_claim_the_race_test_catches_double_approval(engine: Engine) {
    let p = Program::new(engine, 50).await;
    drop_claim_uniqueness(&p.app.database_url, engine).await;
    let rounds = race(&p, 6).await;
    assert!(rounds.iter().any(|n| *n > 1), "the race must be caught without the constraint: {rounds:?}");
    p.app.cleanup().await;
}

async fn drop_claim_uniqueness(url: &str, engine: Engine) {
    let sql = "DROP INDEX protection_claims_key_uq";
    match engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}
