//! The partner portal's pages, on SQLite and PostgreSQL: the home lists
//! only the signed-in partner's referrals; registering through the form
//! needs the CSRF token, keeps the input next to a field's error and shows
//! the decision; a reply lands on the timeline; another partner's referral
//! is 404; a portal session opens no admin page; earnings show a won
//! referral's commission; payout details and email preferences save with
//! their errors per field; signing out ends the session.

mod common;

use common::{Engine, TestApp, body};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_engines!(
    a_partner_registers_replies_and_sees_only_its_own_referrals,
    earnings_payout_details_and_preferences_show_and_save,
    a_rejection_can_be_disputed_once_and_staff_notes_stay_internal,
    a_payout_statement_lists_only_the_partners_own_lines,
);

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// A browser of one partner contact: its cookies and the page's CSRF token.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: String,
    csrf: String,
}

impl Browser {
    /// Signs the partner's first contact in through a magic link.
    async fn sign_in(app: &TestApp, partner: &str) -> Browser {
        let (s, link) = body(app.post(&format!("/api/v1/partners/{partner}/magic-link"), &app.admin, &json!({})).await).await;
        assert_eq!(s, 201, "{link}");
        let client = no_redirects();
        let r = client.post(format!("{}{}", app.base, link["url"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let session = set_cookie(&r, "pl_session").expect("a session cookie");
        let mut b = Browser { base: app.base.clone(), client, cookies: session, csrf: String::new() };
        // Any signed-in page hands out the CSRF cookie and puts its token in every form.
        let r = b.client.get(format!("{}/portal", b.base)).header("cookie", &b.cookies).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let csrf = set_cookie(&r, "pl_csrf").expect("a CSRF cookie");
        let page = r.text().await.unwrap();
        b.csrf = hidden(&page, "csrf");
        assert_eq!(csrf, format!("pl_csrf={}", b.csrf), "the forms carry the cookie's token");
        b.cookies = format!("{}; {csrf}", b.cookies);
        b
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self.client.get(format!("{}{path}", self.base)).header("cookie", &self.cookies).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// Posts a form (with this browser's CSRF token unless `csrf` is false).
    async fn post(&self, path: &str, fields: &[(&str, &str)], csrf: bool) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if csrf {
            form.push(("csrf", &self.csrf));
        }
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect();
        self.client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookies)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
            .send()
            .await
            .unwrap()
    }
}

fn form_encode(v: &str) -> String {
    v.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The value of the first hidden input named `name`.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} field in {page}")) + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn register_by_api(app: &TestApp, token: &str, company: &str) -> String {
    let domain = format!("{}.example", company.to_lowercase());
    let b = json!({"company": {"name": company, "domain": domain}, "contact": {"name": "Pat Buyer", "email": format!("pat@{domain}")}});
    let (s, r) = body(app.post("/api/v1/referrals", token, &b).await).await;
    assert_eq!(s, 201, "{r}");
    r["id"].as_str().unwrap().to_owned()
}

async fn referral_count(app: &TestApp, token: &str) -> usize {
    let (s, list) = body(app.get("/api/v1/referrals", token).await).await;
    assert_eq!(s, 200, "{list}");
    list["data"].as_array().unwrap().len()
}

async fn a_partner_registers_replies_and_sees_only_its_own_referrals(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let partners = app.partners_with_tokens(2).await;
    let (mine, my_token) = (&partners[0].0, &partners[0].1);
    register_by_api(&app, my_token, "Firstco").await;
    let theirs = register_by_api(&app, &partners[1].1, "Othercorp").await;

    let b = Browser::sign_in(&app, mine).await;
    let (s, home) = b.get("/portal").await;
    assert_eq!(s, 200);
    assert!(home.contains("Firstco") && !home.contains("Othercorp"), "{home}");
    assert!(home.contains("Protected until"), "{home}");
    for link in ["/portal/referrals/new", "/portal/earnings", "/portal/payout-details", "/portal/preferences", "/portal/logout"] {
        assert!(home.contains(&format!("\"{link}\"")), "the home links to {link}");
    }

    // The form needs its CSRF token: without it nothing is registered.
    let valid = [("company_name", "Acme Widgets"), ("contact_name", "Ann Buyer"), ("contact_email", "ann@acme-widgets.example")];
    let r = b.post("/portal/referrals/new", &valid, false).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(referral_count(&app, my_token).await, 1);

    // A bad email: the form again, the error next to the field, the input kept.
    let bad = [("company_name", "Acme Widgets"), ("contact_name", "Ann Buyer"), ("contact_email", "ann-at-acme")];
    let r = b.post("/portal/referrals/new", &bad, true).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"contact_email-error\""), "{page}");
    assert!(page.contains("value=\"Acme Widgets\"") && page.contains("value=\"ann-at-acme\""), "{page}");
    assert_eq!(referral_count(&app, my_token).await, 1);

    // A good one: registered through the portal, with the decision in words.
    let r = b.post("/portal/referrals/new", &valid, true).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    assert!(to.starts_with("/portal/referrals/") && to.ends_with("?registered=1"), "{to}");
    let id = to.trim_start_matches("/portal/referrals/").trim_end_matches("?registered=1").to_owned();
    let (s, page) = b.get(&to).await;
    assert_eq!(s, 200);
    assert!(page.contains("Registered. Approved: this company is registered to you until"), "{page}");
    let (_, api) = body(app.get(&format!("/api/v1/referrals/{id}"), my_token).await).await;
    assert_eq!((api["channel"].as_str(), api["company"]["name"].as_str()), (Some("portal"), Some("Acme Widgets")), "{api}");
    let (_, home) = b.get("/portal").await;
    assert!(home.contains(&format!("/portal/referrals/{id}")) && home.contains("Acme Widgets"));

    // The same account again: the existing registration, nothing new.
    let r = b.post("/portal/referrals/new", &valid, true).await;
    assert_eq!(location(&r), format!("/portal/referrals/{id}?existing=1"));
    assert_eq!(referral_count(&app, my_token).await, 2);

    // A reply lands on the timeline (and needs the CSRF token too).
    let r = b.post(&format!("/portal/referrals/{id}/reply"), &[("text", "Forged note")], false).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b.post(&format!("/portal/referrals/{id}/reply"), &[("text", "Their CFO wants a demo next week")], true).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = b.get(&format!("/portal/referrals/{id}")).await;
    assert!(page.contains("You sent a note: Their CFO wants a demo next week"), "{page}");
    assert!(!page.contains("Forged note"));
    let r = b.post(&format!("/portal/referrals/{id}/reply"), &[("text", "   ")], true).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, timeline) = body(app.get(&format!("/api/v1/referrals/{id}/timeline"), &app.admin).await).await;
    let replies: Vec<&Value> = timeline["data"].as_array().unwrap().iter().filter(|e| e["kind"] == "replied").collect();
    assert_eq!(replies.len(), 1, "{timeline}");

    // Another partner's referral does not exist for this one.
    let (s, page) = b.get(&format!("/portal/referrals/{theirs}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(!page.contains("Othercorp"));
    let r = b.post(&format!("/portal/referrals/{theirs}/reply"), &[("text", "hello")], true).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A portal session opens no admin page.
    for path in ["/admin", "/admin/referrals", &format!("/admin/referrals/{theirs}")] {
        let (s, page) = b.get(path).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{path}: {page}");
    }
    let r = b.client.get(format!("{}/admin", app.base)).header("cookie", &b.cookies).send().await.unwrap();
    assert_eq!(location(&r), "/login");

    // Signing out needs the token, then ends the session.
    let r = b.post("/portal/logout", &[], false).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(b.get("/portal").await.1.contains("Firstco"), "still signed in");
    let r = b.post("/portal/logout", &[], true).await;
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/portal".to_owned()));
    let (s, page) = b.get("/portal").await;
    assert!(s == 200 && page.contains("Email me a sign-in link") && !page.contains("Firstco"), "{page}");
    let (s, _) = b.get("/portal/earnings").await;
    assert_eq!(s, StatusCode::SEE_OTHER, "signed-out pages send to the sign-in form");
    app.cleanup().await;
}

async fn earnings_payout_details_and_preferences_show_and_save(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = json!({"name": "Standard", "kind": "percent", "rate": "0.10", "default": true});
    let (s, p) = body(app.post("/api/v1/commission-plans", &app.admin, &plan).await).await;
    assert_eq!(s, 201, "{p}");
    let partners = app.partners_with_tokens(2).await;
    let won = register_by_api(&app, &partners[0].1, "Wonco").await;
    let stage = json!({"stage": "closed_won", "amount": {"amount": "12000.00", "currency": "USD"}});
    let (s, r) = body(app.post(&format!("/api/v1/referrals/{won}/stage"), &app.admin, &stage).await).await;
    assert_eq!((s, r["status"].as_str()), (200, Some("won")), "{r}");
    // The other partner's win must not show.
    let other = register_by_api(&app, &partners[1].1, "Elsewhere").await;
    let stage = json!({"stage": "closed_won", "amount": {"amount": "50000.00", "currency": "USD"}});
    assert_eq!(app.post(&format!("/api/v1/referrals/{other}/stage"), &app.admin, &stage).await.status(), 200);

    let ladder = json!({"measure": "won_revenue", "currency": "USD", "tiers": [
        {"slug": "bronze", "name": "Bronze", "benefits": "Partner portal", "threshold": 0},
        {"slug": "silver", "name": "Silver", "benefits": "Co-marketing", "threshold": {"amount": "5000.00", "currency": "USD"}},
        {"slug": "gold", "name": "Gold", "benefits": "Dedicated manager", "threshold": {"amount": "50000.00", "currency": "USD"}},
    ]});
    let r = app.request(reqwest::Method::PUT, "/api/v1/tiers", Some(&app.admin)).json(&ladder).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.post("/api/v1/tiers/evaluate", &app.admin, &json!({})).await.status(), 200);

    let b = Browser::sign_in(&app, &partners[0].0).await;
    let (s, page) = b.get("/portal/earnings").await;
    assert_eq!(s, 200);
    assert!(page.contains("Wonco") && page.contains("1200.00 USD"), "{page}");
    assert!(!page.contains("Elsewhere") && !page.contains("5000.00 USD"), "{page}");
    let (_, home) = b.get("/portal").await;
    assert!(home.contains("1200.00 USD"), "the home's earnings summary: {home}");
    assert!(home.contains("Your tier: Silver") && home.contains("Co-marketing"), "{home}");
    assert!(home.contains("Next tier, Gold: 38000.00 USD more in won deals to go."), "{home}");
    let (_, detail) = b.get(&format!("/portal/referrals/{won}")).await;
    assert!(detail.contains("Won"), "{detail}");

    // Payout details: validation errors per field, then saved and shown masked.
    let (s, page) = b.get("/portal/payout-details").await;
    assert!(s == 200 && page.contains("Not set yet"), "{page}");
    let r = b.post("/portal/payout-details", &[("method", "sepa"), ("account_name", "Wonco Partners"), ("iban", "DE00 1234")], true).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"iban-error\"") && page.contains("value=\"Wonco Partners\""), "{page}");
    let r = b.post("/portal/payout-details", &[("method", "paypal")], true).await;
    assert!(r.text().await.unwrap().contains("id=\"email-error\""));
    let r = b
        .post(
            "/portal/payout-details",
            &[("method", "sepa"), ("account_name", "Wonco Partners"), ("iban", "DE89 3704 0044 0532 0130 00")],
            false,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b
        .post(
            "/portal/payout-details",
            &[("method", "sepa"), ("account_name", "Wonco Partners"), ("iban", "DE89 3704 0044 0532 0130 00")],
            true,
        )
        .await;
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/portal/payout-details?saved=1".to_owned()));
    let (_, page) = b.get("/portal/payout-details?saved=1").await;
    assert!(page.contains("Saved.") && page.contains("3000") && !page.contains("DE89370400440532013000"), "{page}");
    let (_, api) = body(app.get(&format!("/api/v1/partners/{}/payout-details", partners[0].0), &app.admin).await).await;
    assert_eq!(api["method"], "sepa", "{api}");

    // Email preferences: an unchecked topic is opted out.
    let (s, page) = b.get("/portal/preferences").await;
    assert!(s == 200 && page.contains("p0@partner0.example"), "{page}");
    let r = b.post("/portal/preferences", &[("referral_updates", "on"), ("earnings", "on")], true).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Saved."));
    let (_, prefs) = body(app.get(&format!("/api/v1/partners/{}/notification-preferences", partners[0].0), &app.admin).await).await;
    let topics = &prefs["data"][0]["topics"];
    assert_eq!((topics["earnings"].as_bool(), topics["digest"].as_bool()), (Some(true), Some(false)), "{prefs}");
    let r = b.post("/portal/preferences", &[("earnings", "on")], false).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.cleanup().await;
}

async fn a_rejection_can_be_disputed_once_and_staff_notes_stay_internal(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r =
        app.request(reqwest::Method::PUT, "/api/v1/rules", Some(&app.admin)).json(&json!({"auto_approve": false})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let partners = app.partners_with_tokens(1).await;
    let b = Browser::sign_in(&app, &partners[0].0).await;

    // Registered through the form, the decision waits for a partner manager.
    let fields = [("company_name", "Initech"), ("contact_name", "Bill Lumbergh"), ("contact_email", "bill@initech.example")];
    let r = b.post("/portal/referrals/new", &fields, true).await;
    let to = location(&r);
    let rejected = to.trim_start_matches("/portal/referrals/").trim_end_matches("?registered=1").to_owned();
    let (_, page) = b.get(&to).await;
    assert!(page.contains("Registered. Under review"), "{page}");
    assert!(!page.contains("Dispute the decision"), "only a rejection can be disputed");
    let fields = [("company_name", "Hooli"), ("contact_name", "Gavin Belson"), ("contact_email", "gavin@hooli.example")];
    let to = location(&b.post("/portal/referrals/new", &fields, true).await);
    let approved = to.trim_start_matches("/portal/referrals/").trim_end_matches("?registered=1").to_owned();

    // The reason of a rejection is for the partner (as in its mail); an approval note stays internal.
    let r = app.post(&format!("/api/v1/referrals/{rejected}/reject"), &app.admin, &json!({"reason": "the account team owns it"})).await;
    assert_eq!(r.status(), 200);
    let r = app.post(&format!("/api/v1/referrals/{approved}/approve"), &app.admin, &json!({"note": "INTERNAL: fast track"})).await;
    assert_eq!(r.status(), 200);
    let (_, page) = b.get(&format!("/portal/referrals/{approved}")).await;
    assert!(page.contains("Approved: this company is registered to you until") && !page.contains("INTERNAL"), "{page}");
    let (s, page) = b.get(&format!("/portal/referrals/{rejected}")).await;
    assert_eq!(s, 200);
    assert!(page.contains("Not accepted") && page.contains("Dispute the decision"), "{page}");
    assert!(page.contains("rejected by a partner manager: the account team owns it"), "{page}");

    // A dispute needs words and the token, then lands once.
    let r = b.post(&format!("/portal/referrals/{rejected}/dispute"), &[("text", "  ")], true).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("id=\"dispute-error\""));
    let r = b.post(&format!("/portal/referrals/{rejected}/dispute"), &[("text", "We met them first")], false).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b.post(&format!("/portal/referrals/{rejected}/dispute"), &[("text", "We met them first at a trade fair")], true).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = b.get(&format!("/portal/referrals/{rejected}")).await;
    assert!(page.contains("You disputed the decision: We met them first at a trade fair"), "{page}");
    assert!(!page.contains("Dispute the decision"), "{page}");
    let (_, api) = body(app.get(&format!("/api/v1/referrals/{rejected}"), &app.admin).await).await;
    assert_eq!(api["dispute"], "open", "{api}");
    let r = b.post(&format!("/portal/referrals/{rejected}/dispute"), &[("text", "Again")], true).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    app.cleanup().await;
}

async fn a_payout_statement_lists_only_the_partners_own_lines(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = json!({"name": "Instant", "kind": "percent", "rate": "0.10", "default": true, "hold_days": 0});
    assert_eq!(body(app.post("/api/v1/commission-plans", &app.admin, &plan).await).await.0, 201);
    let partners = app.partners_with_tokens(3).await;
    for (i, (company, amount)) in [("Wonco", "12000.00"), ("Elsewhere", "50000.00")].into_iter().enumerate() {
        let id = register_by_api(&app, &partners[i].1, company).await;
        let stage = json!({"stage": "closed_won", "amount": {"amount": amount, "currency": "USD"}});
        assert_eq!(app.post(&format!("/api/v1/referrals/{id}/stage"), &app.admin, &stage).await.status(), 200);
    }
    // One batch pays both partners.
    let (s, batch) = body(app.post("/api/v1/payouts", &app.admin, &json!({"currency": "USD"})).await).await;
    assert_eq!(s, 201, "{batch}");
    let batch_id = batch["id"].as_str().unwrap().to_owned();
    let r = app.request(reqwest::Method::POST, &format!("/api/v1/payouts/{batch_id}/mark-paid"), Some(&app.admin)).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let b = Browser::sign_in(&app, &partners[0].0).await;
    let (_, earnings) = b.get("/portal/earnings").await;
    assert!(earnings.contains(&format!("<a href=\"/portal/statements/{batch_id}\">")), "the payout links its statement: {earnings}");
    let (s, page) = b.get(&format!("/portal/statements/{batch_id}")).await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("<dd id=\"statement-total\">1200.00 USD</dd>") && page.contains("Wonco"), "{page}");
    assert!(!page.contains("Elsewhere") && !page.contains("5000.00 USD"), "another partner's line in the same batch stays hidden: {page}");
    // The other partner of the batch sees its own line only; a partner the batch paid nothing sees nothing.
    let other = Browser::sign_in(&app, &partners[1].0).await;
    let (_, page) = other.get(&format!("/portal/statements/{batch_id}")).await;
    assert!(page.contains("<dd id=\"statement-total\">5000.00 USD</dd>") && !page.contains("Wonco"), "{page}");
    let third = Browser::sign_in(&app, &partners[2].0).await;
    assert_eq!(third.get(&format!("/portal/statements/{batch_id}")).await.0, 404);
    assert_eq!(b.get("/portal/statements/pay_unknown").await.0, 404);
    app.cleanup().await;
}
