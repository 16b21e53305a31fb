//! Partner sign-in without a password, on SQLite and PostgreSQL: a link
//! opens exactly one session even when redeemed 32 times at once; GET
//! changes nothing; asking for a link answers the same for every address
//! and is rate-limited; the welcome mail carries a working link; a
//! referral's status link works without signing in and can be revoked.

mod common;

use common::{Engine, TestApp, body};
use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_engines!(
    a_link_opens_one_session_even_when_redeemed_32_times_at_once,
    asking_for_a_link_answers_the_same_for_every_address_and_is_rate_limited,
    the_welcome_mail_carries_a_working_sign_in_link,
    a_status_link_shows_the_referral_without_signing_in_and_can_be_revoked,
);

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find(|c| c.starts_with(&format!("{name}="))).map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn a_link_opens_one_session_even_when_redeemed_32_times_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let p = app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await;
    let id = p["id"].as_str().unwrap();
    let (s, link) = body(app.post(&format!("/api/v1/partners/{id}/magic-link"), &app.admin, &json!({})).await).await;
    assert_eq!(s, 201, "{link}");
    let url = format!("{}{}", app.base, link["url"].as_str().unwrap());
    let expires: Timestamp = link["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = expires.duration_since(Timestamp::now());
    assert!(ttl > SignedDuration::from_secs(9 * 60) && ttl <= SignedDuration::from_secs(600), "{ttl:?}");

    // A mail scanner's GET shows a button and uses nothing up.
    for _ in 0..2 {
        let page = app.client.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    }

    let client = no_redirects();
    let tries = (0..32).map(|_| client.post(&url).send());
    let answers = futures_join(tries).await;
    let winners: Vec<_> = answers.iter().filter(|r| r.status() == StatusCode::SEE_OTHER).collect();
    assert_eq!(winners.len(), 1, "{:?}", answers.iter().map(|r| r.status()).collect::<Vec<_>>());
    assert!(answers.iter().all(|r| r.status() == StatusCode::SEE_OTHER || r.status() == StatusCode::GONE));
    let winner = winners[0];
    assert_eq!(winner.headers()["location"], "/portal");
    let session = set_cookie(winner, "pl_session").expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");

    let home = client.get(format!("{}/portal", app.base)).header("cookie", cookie_value(&session)).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let text = home.text().await.unwrap();
    assert!(text.contains("Northwind") && text.contains("ada@northwind.example"), "{text}");
    let anonymous = client.get(format!("{}/portal", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(anonymous.contains("Email me a sign-in link") && !anonymous.contains("Northwind"));

    // Pruning keeps live sessions and forgets expired ones (with the link).
    let prune = partnerloop_app::signin::prune;
    assert_eq!(prune(app.store.as_ref(), Timestamp::now()).await.unwrap(), 0, "nothing has expired");
    let still = client.get(format!("{}/portal", app.base)).header("cookie", cookie_value(&session)).send().await.unwrap();
    assert!(still.text().await.unwrap().contains("Northwind"));
    let much_later = Timestamp::now() + SignedDuration::from_hours(24 * 400);
    assert_eq!(prune(app.store.as_ref(), much_later).await.unwrap(), 2, "the used link and the session");
    let gone = client.get(format!("{}/portal", app.base)).header("cookie", cookie_value(&session)).send().await.unwrap();
    assert!(!gone.text().await.unwrap().contains("Northwind"), "a pruned session signs nobody in");

    // A partner token may not make links.
    let key: Value = app.post(&format!("/api/v1/partners/{id}/api-keys"), &app.admin, &json!({})).await.json().await.unwrap();
    let r = app.post(&format!("/api/v1/partners/{id}/magic-link"), key["token"].as_str().unwrap(), &json!({})).await;
    assert_eq!(r.status(), 403);
    app.cleanup().await;
}

async fn futures_join(
    requests: impl Iterator<Item = impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static>,
) -> Vec<reqwest::Response> {
    let handles: Vec<_> = requests.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap());
    }
    out
}

/// The sign-in form's CSRF cookie and field.
async fn csrf(app: &TestApp) -> (String, String) {
    let r = no_redirects().get(format!("{}/portal", app.base)).send().await.unwrap();
    let c = cookie_value(&set_cookie(&r, "pl_csrf").expect("a CSRF cookie"));
    let field = c.split_once('=').unwrap().1.to_owned();
    assert!(r.text().await.unwrap().contains(&field), "the form carries the token");
    (c, field)
}

async fn ask(app: &TestApp, (cookie, field): &(String, String), email: &str) -> (StatusCode, String) {
    let r = no_redirects()
        .post(format!("{}/portal/login", app.base))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email={}&csrf={}", form_encode(email), form_encode(field)))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

fn form_encode(v: &str) -> String {
    v.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn asking_for_a_link_answers_the_same_for_every_address_and_is_rate_limited(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await;
    let token = csrf(&app).await;
    let known = ask(&app, &token, "Ada@Northwind.example").await;
    let unknown = ask(&app, &token, "nobody@nowhere.example").await;
    assert_eq!(known.0, 200);
    assert_eq!(known, unknown, "the same answer, byte for byte");
    let (_, outbox) = body(app.get("/api/v1/outbox?channel=email", &app.admin).await).await;
    let links: Vec<_> = outbox["data"].as_array().unwrap().iter().filter(|i| i["event"] == "partner.sign_in_requested").collect();
    assert_eq!(links.len(), 1, "a link is mailed to the known address only: {outbox}");
    assert_eq!(links[0]["target"], "ada@northwind.example");

    let (s, _) = ask(&app, &(token.0.clone(), "forged".into()), "ada@northwind.example").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the CSRF token must match its cookie");

    // Per email: a burst of 5, then refused.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(ask(&app, &token, "ada@northwind.example").await.0);
    }
    assert_eq!(statuses[..4], [StatusCode::OK; 4], "{statuses:?}");
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS, "the 6th request for one address: {statuses:?}");
    // Per client address: a burst of 20 across any emails.
    let mut refused_at = None;
    for i in 0..25 {
        if ask(&app, &token, &format!("someone{i}@nowhere.example")).await.0 == StatusCode::TOO_MANY_REQUESTS {
            refused_at = Some(i);
            break;
        }
    }
    assert!(refused_at.is_some_and(|i| i < 20), "the client's address is limited too: {refused_at:?}");
    app.cleanup().await;
}

async fn the_welcome_mail_carries_a_working_sign_in_link(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await;
    let cfg = app_links(&app).await;
    partnerloop_app::notify::fan_out_pending(app.store.as_ref(), &cfg, Timestamp::now(), 100).await.unwrap();
    partnerloop_app::notify::fan_out_pending(app.store.as_ref(), &cfg, Timestamp::now(), 100).await.unwrap();
    let (_, outbox) = body(app.get("/api/v1/outbox?channel=email", &app.admin).await).await;
    let welcome: Vec<_> =
        outbox["data"].as_array().unwrap().iter().filter(|i| i["idempotency_key"].as_str().unwrap().starts_with("welcome:")).collect();
    assert_eq!(welcome.len(), 1, "one welcome per contact: {outbox}");
    let (_, item) = body(app.get(&format!("/api/v1/outbox/{}", welcome[0]["id"].as_str().unwrap()), &app.admin).await).await;
    assert_eq!(item["payload"]["notice"]["kind"], "sign_in");
    assert_eq!(item["payload"]["notice"]["welcome"], true);
    let url = item["payload"]["notice"]["url"].as_str().unwrap();
    let r = no_redirects().post(format!("{}{url}", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the welcome link signs in");
    app.cleanup().await;
}

/// The link settings the server uses (relative URLs, the secret's link key).
async fn app_links(app: &TestApp) -> partnerloop_app::notify::NotifyConfig {
    let secret = partnerloop_app::Store::instance_setting_or_init(app.store.as_ref(), "secret_key", String::new()).await.unwrap();
    partnerloop_app::notify::NotifyConfig {
        base_url: String::new(),
        inbound_domain: "localhost".into(),
        link_key: partnerloop_app::notify::link_key(&secret),
        default_slack_workspace: None,
    }
}

async fn a_status_link_shows_the_referral_without_signing_in_and_can_be_revoked(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let p = app.partners_with_tokens(1).await.remove(0);
    let b = json!({"company": {"name": "Globex", "domain": "globex.example"}, "contact": {"name": "Hank", "email": "hank@globex.example"}});
    let (_, r) = body(app.post("/api/v1/referrals", &p.1, &b).await).await;
    let id = partnerloop_domain::referral::ReferralId::from_string(r["id"].as_str().unwrap());
    let cfg = app_links(&app).await;
    let url = format!("{}{}", app.base, cfg.status_url(&id, 0, Timestamp::now()));
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let text = page.text().await.unwrap();
    assert!(text.contains("Globex") && text.contains("Received by the sales team") && text.contains("Registered"), "{text}");
    assert!(!text.contains("no_conflict"), "no internal rule names on a partner page");

    let mut forged = url.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(app.client.get(&forged).send().await.unwrap().status(), 404);

    let (s, v) = body(app.post(&format!("/api/v1/referrals/{id}/status-links/revoke"), &app.admin, &json!({})).await).await;
    assert_eq!((s, v["version"].as_u64()), (200, Some(1)));
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 404, "revoked");
    let fresh = format!("{}{}", app.base, cfg.status_url(&id, 1, Timestamp::now()));
    assert_eq!(app.client.get(&fresh).send().await.unwrap().status(), 200, "links issued after the revocation work");
    let expired = format!("{}{}", app.base, cfg.status_url(&id, 1, Timestamp::now() - SignedDuration::from_hours(24 * 31)));
    assert_eq!(app.client.get(&expired).send().await.unwrap().status(), 404, "a link lasts 30 days");
    app.cleanup().await;
}
