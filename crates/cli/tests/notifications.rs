//! Notifications through the outbox, on SQLite and PostgreSQL: partner mail
//! with threading and reply addresses, preferences, signed webhooks with
//! filters, retries and a delivery log, Slack, dead letters, and two
//! dispatchers on one PostgreSQL never delivering an item twice.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use common::{Engine, TestApp, body};
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::notify::NotifyConfig;
use partnerloop_jobs::Dispatcher;
use partnerloop_jobs::email::Mailer;
use partnerloop_jobs::http::HttpSender;
use serde_json::{Value, json};

on_both_engines!(
    referral_news_reaches_the_partner_by_mail_in_one_thread,
    webhooks_are_signed_filtered_retried_and_logged,
    slack_hears_registrations_and_wins_and_its_url_stays_secret,
    a_permanent_failure_is_dead_lettered_and_can_be_retried_by_hand,
    the_schedule_warns_of_expiring_protection_and_stalled_deals_once,
    announcements_reach_a_tier_and_respect_opt_outs,
    the_monthly_digest_goes_out_once_with_a_one_click_unsubscribe,
    commissions_that_become_payable_are_announced_once_per_partner_and_currency,
);

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// A local HTTP receiver: records every POST; answers from a script of
/// statuses per path (then 200).
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Received>>>,
    pub script: Arc<Mutex<HashMap<String, Vec<u16>>>>,
}

impl Receiver {
    pub async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = axum::Router::new().route("/{name}", axum::routing::post(receive)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, base)
    }

    pub fn answer(&self, path: &str, statuses: &[u16]) {
        self.script.lock().unwrap().insert(path.to_owned(), statuses.to_vec());
    }

    pub fn got(&self, path: &str) -> Vec<Received> {
        self.got.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }
}

async fn receive(State(r): State<Receiver>, Path(name): Path<String>, headers: HeaderMap, body: String) -> StatusCode {
    r.got.lock().unwrap().push(Received { path: name.clone(), headers, body: serde_json::from_str(&body).unwrap_or(Value::Null) });
    let status = r.script.lock().unwrap().get_mut(&name).and_then(|s| if s.is_empty() { None } else { Some(s.remove(0)) }).unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

struct Harness {
    app: TestApp,
    dispatcher: Dispatcher,
    mail_dir: tempfile::TempDir,
    partner: String,
    partner_token: String,
}

impl Harness {
    async fn new(engine: Engine) -> Harness {
        let app = TestApp::spawn(engine).await;
        let secret = partnerloop_app::Store::instance_setting_or_init(app.store.as_ref(), "secret_key", String::new()).await.unwrap();
        let mail_dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn partnerloop_app::Store> = app.store.clone();
        let sealer = Arc::new(partnerloop_app::sealing::Sealer::from_secret(&secret));
        let cfg = NotifyConfig {
            base_url: "https://partners.vendor.example".into(),
            inbound_domain: "in.vendor.example".into(),
            link_key: b"test link key".to_vec(),
            default_slack_workspace: None,
        };
        let mail = Mailer::files(mail_dir.path().to_owned(), "partners@vendor.example");
        let dispatcher = Dispatcher::new(store.clone(), cfg, Arc::new(mail), Arc::new(HttpSender::new(store, sealer, None)));
        let plan = json!({"name": "Standard", "kind": "percent", "rate": "0.10", "default": true});
        assert_eq!(app.post("/api/v1/commission-plans", &app.admin, &plan).await.status(), 201);
        let p = app.partners_with_tokens(1).await.remove(0);
        // The setup's own events (the partner's creation) are delivered
        // before a test subscribes to anything.
        dispatcher.drain(Timestamp::now()).await.expect("drain");
        let h = Harness { app, dispatcher, mail_dir, partner: p.0, partner_token: p.1 };
        let setup = h.mails();
        assert_eq!(setup.len(), 1, "the new partner's welcome mail");
        assert!(header(&setup[0], "Subject") == Some("Welcome to the partner program") && text_part(&setup[0]).contains("/portal/login/"));
        for f in std::fs::read_dir(h.mail_dir.path()).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        h
    }

    async fn register(&self, company: &str) -> Value {
        let slug: String = company.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let domain = format!("{slug}.example");
        let b = json!({"company": {"name": company, "domain": domain}, "contact": {"name": "Pat Buyer", "email": format!("pat@{domain}")}});
        let (s, r) = body(self.app.post("/api/v1/referrals", &self.partner_token, &b).await).await;
        assert_eq!(s, 201, "{r}");
        r
    }

    async fn stage(&self, id: &str, stage: &str, amount: Option<&str>) {
        let mut b = json!({"stage": stage});
        if let Some(a) = amount {
            b["amount"] = json!({"amount": a, "currency": "USD"});
        }
        let (s, r) = body(self.app.post(&format!("/api/v1/referrals/{id}/stage"), &self.app.admin, &b).await).await;
        assert_eq!(s, 200, "{r}");
    }

    /// Every mail written so far, as text, oldest first.
    fn mails(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.mail_dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| (e.metadata().unwrap().modified().unwrap(), std::fs::read_to_string(e.path()).unwrap()))
            .collect();
        files.sort_by_key(|f| f.0);
        files.into_iter().map(|f| f.1).collect()
    }

    async fn drain(&self, now: Timestamp) {
        self.dispatcher.drain(now).await.expect("drain");
    }
}

fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    mail.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

/// The decoded text/plain part of a mail (quoted-printable undone).
fn text_part(mail: &str) -> String {
    let start = mail.find("Content-Type: text/plain").expect("a text part");
    let part = &mail[start..];
    let body = &part[part.find("\r\n\r\n").map(|i| i + 4).or_else(|| part.find("\n\n").map(|i| i + 2)).unwrap()..];
    let end = body.find("\n--").unwrap_or(body.len());
    let qp = body[..end].replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::new();
    let bytes = qp.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&qp[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn referral_news_reaches_the_partner_by_mail_in_one_thread(engine: Engine) {
    let h = Harness::new(engine).await;
    let r = h.register("Globex").await;
    let id = r["id"].as_str().unwrap();
    h.drain(Timestamp::now()).await;
    let mails = h.mails();
    assert_eq!(mails.len(), 1, "one mail to the partner's one contact");
    let first = &mails[0];
    assert_eq!(header(first, "To"), Some("\"Contact of Partner 0\" <p0@partner0.example>"));
    assert_eq!(header(first, "Subject"), Some("Your referral of Globex"));
    let thread = format!("<referral.{id}@vendor.example>");
    assert_eq!(header(first, "Message-ID"), Some(thread.as_str()), "the first mail starts the thread");
    let reply_to = header(first, "Reply-To").unwrap();
    let token = reply_to.split("reply+").nth(1).and_then(|t| t.split('@').next()).expect("a reply address");
    assert_eq!(
        partnerloop_domain::reply_token::decode(b"test link key", token).unwrap().as_str(),
        id,
        "the reply address names the referral, signed"
    );
    assert!(reply_to.ends_with("@in.vendor.example>"), "{reply_to}");
    let text = text_part(first);
    assert!(text.contains("We received your referral of Globex"), "{text}");
    assert!(text.contains("it is approved"), "{text}");
    assert!(text.contains("https://partners.vendor.example/status/"), "the read-only status link: {text}");
    let unsubscribe = header(first, "List-Unsubscribe").expect("a List-Unsubscribe header");
    assert!(
        unsubscribe.starts_with("<https://partners.vendor.example/unsubscribe/") && unsubscribe.ends_with("/referral_updates>"),
        "{unsubscribe}"
    );
    assert_eq!(header(first, "List-Unsubscribe-Post"), Some("List-Unsubscribe=One-Click"));
    assert!(first.contains("Content-Type: text/html"), "an HTML part too");

    h.stage(id, "qualified", None).await;
    h.stage(id, "closed_won", Some("20000.00")).await;
    h.drain(Timestamp::now()).await;
    let mails = h.mails();
    assert_eq!(mails.len(), 3, "stage change and win");
    for m in &mails[1..] {
        assert_eq!(header(m, "In-Reply-To"), Some(thread.as_str()));
        assert_eq!(header(m, "References"), Some(thread.as_str()));
        assert_eq!(header(m, "Subject"), Some("Re: Your referral of Globex"));
    }
    // Delivered concurrently: found by content, not by order.
    let texts: Vec<String> = mails[1..].iter().map(|m| text_part(m)).collect();
    assert!(texts.iter().any(|t| t.contains("It is now: Qualified")), "{texts:?}");
    let won = texts.iter().find(|t| t.contains("signed")).expect("the won mail").clone();
    assert!(won.contains("Deal amount: 20000.00 USD") && won.contains("Your commission:"), "{won}");

    // The contact opts out of referral updates: no more mail about referrals.
    let p: Value = h.app.get(&format!("/api/v1/partners/{}", h.partner), &h.partner_token).await.json().await.unwrap();
    let contact = p["contacts"][0]["id"].as_str().unwrap();
    let b = json!({"contacts": [{"contact_id": contact, "topics": {"referral_updates": false}}]});
    let r = h
        .app
        .request(reqwest::Method::PUT, &format!("/api/v1/partners/{}/notification-preferences", h.partner), Some(&h.partner_token))
        .json(&b)
        .send()
        .await
        .unwrap();
    let (s, prefs) = body(r).await;
    assert_eq!(s, 200, "{prefs}");
    assert_eq!(prefs["data"][0]["topics"]["referral_updates"], false);
    assert_eq!(prefs["data"][0]["topics"]["earnings"], true);
    h.register("Initech").await;
    h.drain(Timestamp::now()).await;
    assert_eq!(h.mails().len(), 3, "an opted-out contact gets no referral mail");

    // Another partner's token cannot read or change these preferences.
    let other = h.app.create_partner(&h.app.admin, "Other", "o@other.example").await;
    let key: Value = h
        .app
        .post(&format!("/api/v1/partners/{}/api-keys", other["id"].as_str().unwrap()), &h.app.admin, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let r = h.app.get(&format!("/api/v1/partners/{}/notification-preferences", h.partner), key["token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 404);
    h.app.cleanup().await;
}

fn verify(secret: &str, r: &Received) -> bool {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", r.body).as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    r.headers["webhook-signature"].to_str().unwrap() == expected
}

async fn webhooks_are_signed_filtered_retried_and_logged(engine: Engine) {
    let h = Harness::new(engine).await;
    let (rx, base) = Receiver::start().await;
    let (s, wins) =
        body(h.app.post("/api/v1/webhooks", &h.app.admin, &json!({"url": format!("{base}/wins"), "events": ["referral.won"]})).await).await;
    assert_eq!(s, 201, "{wins}");
    let (_, all) = body(h.app.post("/api/v1/webhooks", &h.app.admin, &json!({"url": format!("{base}/all")})).await).await;
    let (s, bad) = body(h.app.post("/api/v1/webhooks", &h.app.admin, &json!({"url": "ftp://x", "events": ["referral.nope"]})).await).await;
    assert_eq!(s, 422);
    assert_eq!(common::problem_fields(&bad), vec!["url", "events[0]"]);
    let listed: Value = h.app.get("/api/v1/webhooks", &h.app.admin).await.json().await.unwrap();
    assert!(listed["data"][0].get("secret").is_none(), "the secret is shown only once");
    let r = h.app.get("/api/v1/webhooks", &h.partner_token).await;
    assert_eq!(r.status(), 403, "partners do not manage webhooks");

    rx.answer("wins", &[503]);
    let referral = h.register("Hooli").await;
    let id = referral["id"].as_str().unwrap();
    h.stage(id, "closed_won", Some("1000.00")).await;
    let now = Timestamp::now();
    h.drain(now).await;

    let got_all = rx.got("all");
    let mut types: Vec<_> = got_all.iter().map(|r| r.body["type"].as_str().unwrap().to_owned()).collect();
    types.sort();
    assert_eq!(
        types,
        vec!["referral.registered", "referral.stage_changed", "referral.won"],
        "every event (delivered concurrently: no order)"
    );
    for r in &got_all {
        assert!(verify(all["secret"].as_str().unwrap(), r), "signed with the endpoint's secret");
    }
    assert!(got_all.iter().all(|r| r.body["data"]["id"] == id));
    assert_eq!(rx.got("wins").len(), 1, "one failed attempt so far");

    // Retried after its backoff, with the same webhook-id.
    h.drain(now + SignedDuration::from_secs(3600)).await;
    let got_wins = rx.got("wins");
    assert_eq!(got_wins.len(), 2);
    assert_eq!(got_wins[0].headers["webhook-id"], got_wins[1].headers["webhook-id"], "a retry is recognisably the same message");
    assert!(verify(wins["secret"].as_str().unwrap(), &got_wins[1]));
    assert_eq!(got_wins[1].body["type"], "referral.won");

    let wins_id = wins["id"].as_str().unwrap();
    let (s, log) = body(h.app.get(&format!("/api/v1/webhooks/{wins_id}/deliveries"), &h.app.admin).await).await;
    assert_eq!(s, 200, "{log}");
    assert_eq!(log["data"].as_array().unwrap().len(), 1);
    assert_eq!(log["data"][0]["status"], "delivered");
    assert_eq!(log["data"][0]["attempts"], 2);
    let item = log["data"][0]["id"].as_str().unwrap();
    let (_, detail) = body(h.app.get(&format!("/api/v1/outbox/{item}"), &h.app.admin).await).await;
    let attempts = detail["attempt_log"].as_array().unwrap();
    assert_eq!((attempts[0]["ok"].clone(), attempts[0]["status_code"].clone()), (json!(false), json!(503)));
    assert_eq!((attempts[1]["ok"].clone(), attempts[1]["status_code"].clone()), (json!(true), json!(200)));

    // A rotated secret signs the next delivery; the old one no longer does.
    let (s, rotated) = body(
        h.app
            .request(reqwest::Method::PUT, &format!("/api/v1/webhooks/{wins_id}"), Some(&h.app.admin))
            .json(&json!({"url": format!("{base}/wins"), "events": ["referral.won"], "rotate_secret": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{rotated}");
    let second = h.register("Pied Piper").await;
    h.stage(second["id"].as_str().unwrap(), "closed_won", Some("10.00")).await;
    h.drain(Timestamp::now()).await;
    let last = rx.got("wins").pop().unwrap();
    assert!(verify(rotated["secret"].as_str().unwrap(), &last) && !verify(wins["secret"].as_str().unwrap(), &last));
    h.app.cleanup().await;
}

async fn slack_hears_registrations_and_wins_and_its_url_stays_secret(engine: Engine) {
    let h = Harness::new(engine).await;
    let (rx, base) = Receiver::start().await;
    let url = format!("{base}/slack");
    let r = h
        .app
        .request(reqwest::Method::PUT, "/api/v1/settings/notifications", Some(&h.app.admin))
        .json(&json!({"slack_webhook_url": url, "manager_emails": ["lead@vendor.example"], "stalled_days": 10}))
        .send()
        .await
        .unwrap();
    let (s, settings) = body(r).await;
    assert_eq!(s, 200, "{settings}");
    assert_eq!(settings["slack"], true);
    assert!(!settings.to_string().contains(&base), "the Slack URL is never shown back");

    // Auto-approval off: the registration needs review; Slack and the manager hear it.
    let mut rules: Value = h.app.get("/api/v1/rules", &h.app.admin).await.json().await.unwrap();
    rules["auto_approve"] = json!(false);
    let r = h.app.request(reqwest::Method::PUT, "/api/v1/rules", Some(&h.app.admin)).json(&rules).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let referral = h.register("Umbrella <Corp>").await;
    h.drain(Timestamp::now()).await;
    let got = rx.got("slack");
    assert_eq!(got.len(), 1);
    let text = got[0].body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(text.contains("Review needed") && text.contains("Umbrella &lt;Corp&gt;"), "escaped, marked for review: {text}");
    let link = got[0].body["blocks"][1]["elements"][0]["url"].as_str().unwrap();
    assert!(link.ends_with(referral["id"].as_str().unwrap()), "{link}");
    let to_manager = h.mails().into_iter().filter(|m| header(m, "To") == Some("lead@vendor.example")).collect::<Vec<_>>();
    assert_eq!(to_manager.len(), 1, "the partner manager is asked to review");
    assert!(header(&to_manager[0], "Subject").unwrap().starts_with("Review needed: Partner 0 registered"));

    let id = referral["id"].as_str().unwrap();
    let r = h.app.post(&format!("/api/v1/referrals/{id}/approve"), &h.app.admin, &json!({"note": "welcome"})).await;
    assert_eq!(r.status(), 200);
    h.stage(id, "closed_won", Some("5000.00")).await;
    h.drain(Timestamp::now()).await;
    let got = rx.got("slack");
    assert_eq!(got.len(), 2, "approval is not announced; the win is");
    assert!(got[1].body["text"].as_str().unwrap().contains("Won"), "{}", got[1].body);
    h.app.cleanup().await;
}

async fn a_permanent_failure_is_dead_lettered_and_can_be_retried_by_hand(engine: Engine) {
    let h = Harness::new(engine).await;
    let (rx, base) = Receiver::start().await;
    let (_, e) = body(
        h.app.post("/api/v1/webhooks", &h.app.admin, &json!({"url": format!("{base}/gone"), "events": ["referral.registered"]})).await,
    )
    .await;
    rx.answer("gone", &[410]);
    h.register("Soylent").await;
    h.drain(Timestamp::now()).await;
    let (_, dead) = body(h.app.get("/api/v1/outbox?status=dead", &h.app.admin).await).await;
    let items = dead["data"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{dead}");
    assert_eq!(items[0]["target"], e["id"]);
    assert_eq!(items[0]["last_error"], "the receiver answered 410 Gone");
    let item = items[0]["id"].as_str().unwrap();
    let (s, _) = body(h.app.post(&format!("/api/v1/outbox/{item}/retry"), &h.app.admin, &json!({})).await).await;
    assert_eq!(s, 200);
    h.drain(Timestamp::now()).await;
    let (_, again) = body(h.app.get(&format!("/api/v1/outbox/{item}"), &h.app.admin).await).await;
    assert_eq!(again["status"], "delivered", "{again}");
    let (s, _) = body(h.app.post(&format!("/api/v1/outbox/{item}/retry"), &h.app.admin, &json!({})).await).await;
    assert_eq!(s, 409, "only a dead item can be retried");
    let (s, bad) = body(h.app.get("/api/v1/outbox?status=lost", &h.app.admin).await).await;
    assert_eq!((s, common::problem_fields(&bad)), (422, vec!["status".to_owned()]));
    h.app.cleanup().await;
}

/// Two dispatchers (two processes' worth: two stores, two pools) drain one
/// PostgreSQL outbox at once: each item reaches the receiver exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dispatchers_on_postgres_never_deliver_an_item_twice() {
    if !common::postgres_available("two_dispatchers_on_postgres_never_deliver_an_item_twice") {
        return;
    }
    let h = Harness::new(Engine::Postgres).await;
    let (rx, base) = Receiver::start().await;
    let (_, e) = body(h.app.post("/api/v1/webhooks", &h.app.admin, &json!({"url": format!("{base}/count")})).await).await;
    let ws = partnerloop_app::Store::workspace_by_slug(h.app.store.as_ref(), "default").await.unwrap().id;
    let now = Timestamp::now();
    let items: Vec<_> = (0..400)
        .map(|i| partnerloop_app::outbox::NewOutboxItem {
            id: partnerloop_app::ids::new_id("obx", now),
            workspace_id: ws.clone(),
            channel: partnerloop_app::outbox::Channel::Webhook,
            idempotency_key: format!("load-{i}"),
            event: "test.event".into(),
            target: e["id"].as_str().unwrap().into(),
            payload: json!({"n": i}),
            created_at: now,
        })
        .collect();
    assert_eq!(partnerloop_app::outbox::OutboxStore::enqueue(h.app.store.as_ref(), &items).await.unwrap(), 400);
    assert_eq!(partnerloop_app::outbox::OutboxStore::enqueue(h.app.store.as_ref(), &items).await.unwrap(), 0, "keys are unique");

    let secret = partnerloop_app::Store::instance_setting_or_init(h.app.store.as_ref(), "secret_key", String::new()).await.unwrap();
    let other: Arc<dyn partnerloop_app::Store> =
        Arc::new(partnerloop_store::SqlStore::connect(&h.app.database_url, &partnerloop_store::StoreOptions::default()).await.unwrap());
    let sealer = Arc::new(partnerloop_app::sealing::Sealer::from_secret(&secret));
    let cfg = NotifyConfig { base_url: String::new(), inbound_domain: "x".into(), link_key: vec![1], default_slack_workspace: None };
    let second = Dispatcher::new(
        other.clone(),
        cfg,
        Arc::new(Mailer::files(h.mail_dir.path().to_owned(), "a@b.example")),
        Arc::new(HttpSender::new(other, sealer, None)),
    );
    let (a, b) = tokio::join!(h.dispatcher.drain(now), second.drain(now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.delivered + b.delivered, 400, "{a:?} {b:?}");
    let got = rx.got("count");
    let mut keys: Vec<_> = got.iter().map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!((got.len(), keys.len()), (400, 400), "every item once, none twice");
    h.app.cleanup().await;
}

async fn the_schedule_warns_of_expiring_protection_and_stalled_deals_once(engine: Engine) {
    let h = Harness::new(engine).await;
    let r = h
        .app
        .request(reqwest::Method::PUT, "/api/v1/settings/notifications", Some(&h.app.admin))
        .json(&json!({"manager_emails": ["lead@vendor.example"], "stalled_days": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    h.register("Wayne Enterprises").await; // approved, protected for 60 days
    h.drain(Timestamp::now()).await;
    let before = h.mails().len();
    let cfg = NotifyConfig {
        base_url: "https://partners.vendor.example".into(),
        inbound_domain: "in.vendor.example".into(),
        link_key: b"test link key".to_vec(),
        default_slack_workspace: None,
    };
    let schedule = partnerloop_app::notify::scheduled::run;

    // Day 40: idle for 40 days (stalled), protection ends in 20 (no warning yet).
    let day40 = Timestamp::now() + SignedDuration::from_hours(24 * 40);
    assert_eq!(schedule(h.app.store.as_ref(), &cfg, day40).await.unwrap(), 1, "the stalled alert");
    // Day 54: protection ends within 7 days.
    let day54 = Timestamp::now() + SignedDuration::from_hours(24 * 54);
    assert_eq!(schedule(h.app.store.as_ref(), &cfg, day54).await.unwrap(), 1, "the expiry warning; the stall was announced already");
    assert_eq!(schedule(h.app.store.as_ref(), &cfg, day54).await.unwrap(), 0, "a second run repeats nothing");
    h.drain(day54).await;
    let mails = h.mails();
    assert_eq!(mails.len(), before + 2, "one stall alert, one expiry warning");
    let stalled = mails.iter().find(|m| header(m, "To") == Some("lead@vendor.example")).expect("the manager's alert");
    assert_eq!(header(stalled, "Subject"), Some("Stalled: Wayne Enterprises (Partner 0) has not moved in 40 days"));
    let warning = mails.iter().find(|m| text_part(m).contains("Protection of Wayne Enterprises ends on")).expect("the partner's warning");
    assert_eq!(header(warning, "To"), Some("\"Contact of Partner 0\" <p0@partner0.example>"));
    h.app.cleanup().await;
}

async fn announcements_reach_a_tier_and_respect_opt_outs(engine: Engine) {
    let h = Harness::new(engine).await;
    let gold = h.app.create_partner(&h.app.admin, "Gold Co", "g@gold.example").await;
    let gold_id = gold["id"].as_str().unwrap();
    assert_eq!(h.app.patch(&format!("/api/v1/partners/{gold_id}"), &h.app.admin, &json!({"tier": "gold"})).await.status(), 200);
    let app = &h.app;
    let post = |b: Value| async move { body(app.post("/api/v1/announcements", &app.admin, &b).await).await };
    let (s, out) = post(json!({"subject": "Gold perks", "body": "Double commission in March.\n\nThank you.", "tier": "gold"})).await;
    assert_eq!((s, out["mails"].as_u64()), (201, Some(1)), "{out}");
    // Partner 0's contact opts out of announcements; an announcement to all reaches Gold Co only.
    let p: Value = h.app.get(&format!("/api/v1/partners/{}", h.partner), &h.app.admin).await.json().await.unwrap();
    let b = json!({"contacts": [{"contact_id": p["contacts"][0]["id"], "topics": {"announcements": false}}]});
    let r = h
        .app
        .request(reqwest::Method::PUT, &format!("/api/v1/partners/{}/notification-preferences", h.partner), Some(&h.app.admin))
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, out) = post(json!({"subject": "New deck", "body": "It is in the library."})).await;
    assert_eq!(out["mails"], 1, "{out}");
    let (s, bad) = post(json!({"subject": " ", "body": ""})).await;
    assert_eq!((s, common::problem_fields(&bad)), (422, vec!["subject".to_owned(), "body".to_owned()]));
    h.drain(Timestamp::now()).await;
    let mails: Vec<_> = h.mails().into_iter().filter(|m| header(m, "To") == Some("\"Contact of Gold Co\" <g@gold.example>")).collect();
    assert!(mails.iter().any(|m| text_part(m).contains("Double commission in March.")), "{mails:?}");
    h.app.cleanup().await;
}

async fn the_monthly_digest_goes_out_once_with_a_one_click_unsubscribe(engine: Engine) {
    let h = Harness::new(engine).await;
    let r = h.register("Acme Rockets").await;
    h.stage(r["id"].as_str().unwrap(), "qualified", None).await;
    h.drain(Timestamp::now()).await;
    let before = h.mails().len();
    let cfg = NotifyConfig {
        base_url: String::new(),
        inbound_domain: "in.vendor.example".into(),
        link_key: links_key(&h).await,
        default_slack_workspace: None,
    };
    let next_month = Timestamp::now() + SignedDuration::from_hours(24 * 35);
    let digests = partnerloop_app::notify::scheduled::digests;
    assert_eq!(digests(h.app.store.as_ref(), &cfg, next_month).await.unwrap(), 1, "one contact, one digest");
    assert_eq!(digests(h.app.store.as_ref(), &cfg, next_month).await.unwrap(), 0, "once per month");
    h.drain(next_month).await;
    let mails = h.mails();
    assert_eq!(mails.len(), before + 1);
    let digest =
        mails.iter().find(|m| header(m, "Subject").is_some_and(|s| s.starts_with("Your partner digest for "))).expect("the digest");
    assert!(text_part(digest).contains("Qualified: 1"), "{}", text_part(digest));
    let url = header(digest, "List-Unsubscribe").unwrap().trim_matches(|c| c == '<' || c == '>').to_owned();
    assert!(url.ends_with("/digest"), "{url}");

    // A mail scanner's GET changes nothing; the one-click POST unsubscribes.
    let page = h.app.client.get(format!("{}{url}", h.app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Unsubscribe p0@partner0.example?"));
    let prefs = format!("/api/v1/partners/{}/notification-preferences", h.partner);
    let (_, p) = body(h.app.get(&prefs, &h.app.admin).await).await;
    assert_eq!(p["data"][0]["topics"]["digest"], true);
    let done = h.app.client.post(format!("{}{url}", h.app.base)).body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(done.status(), 200);
    let (_, p) = body(h.app.get(&prefs, &h.app.admin).await).await;
    assert_eq!(p["data"][0]["topics"]["digest"], false);
    assert_eq!(p["data"][0]["topics"]["referral_updates"], true, "only that topic");

    // The preferences page shows and saves every topic.
    let prefs_url = url.rsplit_once('/').unwrap().0.replace("/unsubscribe/", "/preferences/");
    let page = h.app.client.get(format!("{}{prefs_url}", h.app.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("name=\"referral_updates\" checked") && !page.contains("name=\"digest\" checked"), "{page}");
    let saved = h
        .app
        .client
        .post(format!("{}{prefs_url}", h.app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("digest=on")
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    let (_, p) = body(h.app.get(&prefs, &h.app.admin).await).await;
    assert_eq!(p["data"][0]["topics"], json!({"referral_updates": false, "earnings": false, "digest": true, "announcements": false}));
    let forged = h.app.client.get(format!("{}/preferences/{}", h.app.base, "0".repeat(50))).send().await.unwrap();
    assert_eq!(forged.status(), 404);
    h.app.cleanup().await;
}

async fn commissions_that_become_payable_are_announced_once_per_partner_and_currency(engine: Engine) {
    let h = Harness::new(engine).await;
    for (company, amount) in [("Acme Rockets", "20000.00"), ("Globex", "5000.00")] {
        let r = h.register(company).await;
        h.stage(r["id"].as_str().unwrap(), "closed_won", Some(amount)).await;
    }
    h.drain(Timestamp::now()).await;
    let before = h.mails().len();
    let release = partnerloop_app::commissions::release_due;
    assert_eq!(release(h.app.store.as_ref(), None, Timestamp::now()).await.unwrap(), 0, "still on hold");
    h.drain(Timestamp::now()).await;
    assert_eq!(h.mails().len(), before, "nothing payable, nothing said");

    // After the 30-day hold both commissions become payable: one mail.
    let later = Timestamp::now() + SignedDuration::from_hours(24 * 31);
    assert_eq!(release(h.app.store.as_ref(), None, later).await.unwrap(), 2);
    assert_eq!(release(h.app.store.as_ref(), None, later).await.unwrap(), 0);
    h.drain(later).await;
    let mails = h.mails();
    assert_eq!(mails.len(), before + 1, "one mail for both commissions");
    let mail = mails.last().unwrap();
    assert_eq!(header(mail, "Subject"), Some("Commission payable: 2500.00 USD"));
    let text = text_part(mail);
    assert!(text.contains("2 commissions are now payable"), "{text}");
    assert!(text.contains("Payable balance: 2500.00 USD"), "{text}");
    let unsubscribe = header(mail, "List-Unsubscribe").unwrap();
    assert!(unsubscribe.ends_with("/earnings>"), "under the earnings topic: {unsubscribe}");

    // The event is in the audit log, by the scheduler, with the sum.
    use partnerloop_app::Store as _;
    let ws = h.app.store.workspace_by_slug("default").await.unwrap();
    let log = h.app.store.audit_for(&ws.id, &h.partner).await.unwrap();
    let rows: Vec<_> = log.iter().filter(|e| e.action == "commission.released").collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor, "scheduler");
    let after = rows[0].after.clone().unwrap();
    assert_eq!(after["amount"], json!({"amount": "2500.00", "currency": "USD"}));
    assert_eq!(after["commissions"], 2);
    h.app.cleanup().await;
}

/// The link key the server derives from its secret.
async fn links_key(h: &Harness) -> Vec<u8> {
    let secret = partnerloop_app::Store::instance_setting_or_init(h.app.store.as_ref(), "secret_key", String::new()).await.unwrap();
    partnerloop_app::notify::link_key(&secret)
}
