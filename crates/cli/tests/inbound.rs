//! Inbound mail, on SQLite and PostgreSQL: a real SMTP client (swaks)
//! delivers to the built-in receiver — the warm intro with `register@` in
//! CC registers a referral, a reply to `reply+TOKEN@` lands on the
//! timeline (quoted history stripped) and is announced to the partner
//! manager; strangers and bad tokens are turned away. And
//! `POST /inbound/email?key=`.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{Engine, TestApp, body};
use jiff::Timestamp;
use partnerloop_app::notify::NotifyConfig;
use partnerloop_web::inbound::Intake;
use serde_json::{Value, json};

on_both_engines!(mail_registers_referrals_and_replies_land_on_the_timeline, the_inbound_endpoint_needs_its_key_and_refuses_unreadable_mail);

const DOMAIN: &str = "in.vendor.example";
const KEY: &[u8] = b"inbound test link key";

fn notify() -> NotifyConfig {
    NotifyConfig {
        base_url: "https://partners.vendor.example".into(),
        inbound_domain: DOMAIN.into(),
        link_key: KEY.to_vec(),
        default_slack_workspace: None,
    }
}

fn swaks_available() -> bool {
    let ok = Command::new("swaks").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var("CI").is_err(), "swaks is missing (CI installs it)");
        eprintln!("SKIPPED inbound SMTP tests: swaks is not installed");
    }
    ok
}

/// Sends `message` over SMTP with swaks; true when the server took it.
fn swaks(port: u16, from: &str, to: &str, message: &str) -> bool {
    let mut child = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{port}"), "--from", from, "--to", to, "--data", "-", "--silent", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("swaks");
    child.stdin.take().unwrap().write_all(message.replace('\n', "\r\n").as_bytes()).unwrap();
    child.wait().unwrap().success()
}

async fn referrals(app: &TestApp) -> Vec<Value> {
    let v: Value = app.get("/api/v1/referrals", &app.admin).await.json().await.unwrap();
    v["data"].as_array().unwrap().clone()
}

async fn mail_registers_referrals_and_replies_land_on_the_timeline(engine: Engine) {
    if !swaks_available() {
        return;
    }
    let app = TestApp::spawn(engine).await;
    let store: Arc<dyn partnerloop_app::Store> = app.store.clone();
    let intake = Arc::new(Intake::new(store.clone(), Arc::default(), notify()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(partnerloop_mail::smtp_in::serve(listener, Default::default(), intake, std::future::pending::<()>()));
    app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await;
    let r = app
        .request(reqwest::Method::PUT, "/api/v1/settings/notifications", Some(&app.admin))
        .json(&json!({"manager_emails": ["lead@vendor.example"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The warm intro: to the prospect, register@ in CC; our server sees the CC copy.
    let intro = format!(
        "From: Ada Park <ada@northwind.example>\nTo: Hank Scorpio <hank@globex.example>\nCc: register@{DOMAIN}\n\
         Subject: Intro: Globex x Vendor\nMessage-ID: <intro-1@northwind.example>\n\n\
         Hank, meet the Vendor team. Globex is replacing spreadsheets; budget approved for Q1.\n\n-- \nAda Park\nNorthwind\n"
    );
    let sent =
        tokio::task::spawn_blocking(move || swaks(port, "ada@northwind.example", &format!("register@{DOMAIN}"), &intro)).await.unwrap();
    assert!(sent, "the receiver took the intro");
    let all = referrals(&app).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let r = &all[0];
    assert_eq!((r["channel"].as_str(), r["status"].as_str()), (Some("email"), Some("approved")));
    assert_eq!(r["company"]["domain"], "globex.example");
    assert_eq!(r["contact"]["email"], "hank@globex.example");
    assert_eq!(r["contact"]["name"], "Hank Scorpio");
    assert!(r["context"].as_str().unwrap().contains("budget approved for Q1"), "{r}");
    let id = r["id"].as_str().unwrap().to_owned();

    // The partner replies to the thread: the reply, without the quote, joins the timeline.
    let token = partnerloop_domain::reply_token::encode(KEY, &partnerloop_domain::referral::ReferralId::from_string(&id));
    let to = format!("reply+{token}@{DOMAIN}");
    let reply = format!(
        "From: Ada Park <ada@northwind.example>\nTo: {to}\nSubject: Re: Your referral of Globex\n\n\
         They signed the NDA today.\n\nOn Tue, 24 Nov 2026 at 10:00, Vendor <partners@vendor.example> wrote:\n> We received your referral of Globex\n"
    );
    let to2 = to.clone();
    assert!(tokio::task::spawn_blocking(move || swaks(port, "ada@northwind.example", &to2, &reply)).await.unwrap());
    let (_, timeline) = body(app.get(&format!("/api/v1/referrals/{id}/timeline"), &app.admin).await).await;
    let replied: Vec<&Value> = timeline["data"].as_array().unwrap().iter().filter(|e| e["kind"] == "replied").collect();
    assert_eq!(replied.len(), 1, "{timeline}");
    assert_eq!(replied[0]["summary"], "They signed the NDA today.");
    assert!(replied[0]["actor"].as_str().unwrap().starts_with("partner:"));

    // The partner manager hears about the reply.
    partnerloop_app::notify::fan_out_pending(store.as_ref(), &notify(), Timestamp::now(), 100).await.unwrap();
    let (_, outbox) = body(app.get("/api/v1/outbox?channel=email", &app.admin).await).await;
    assert!(
        outbox["data"].as_array().unwrap().iter().any(|i| i["event"] == "referral.replied" && i["target"] == "lead@vendor.example"),
        "{outbox}"
    );

    // A stranger's mail is taken and dropped; a forged reply address is refused at RCPT.
    let stranger = format!("From: x@stranger.example\nTo: someone@acme.example\nCc: register@{DOMAIN}\nSubject: hi\n\nhello\n");
    assert!(
        tokio::task::spawn_blocking(move || swaks(port, "x@stranger.example", &format!("register@{DOMAIN}"), &stranger)).await.unwrap()
    );
    assert_eq!(referrals(&app).await.len(), 1, "nothing registered for a stranger");
    let forged = format!("reply+{}@{DOMAIN}", "0".repeat(token.len()));
    let msg = format!("From: ada@northwind.example\nTo: {forged}\nSubject: x\n\nhi\n");
    assert!(
        !tokio::task::spawn_blocking(move || swaks(port, "ada@northwind.example", &forged, &msg)).await.unwrap(),
        "a bad token is refused"
    );
    app.cleanup().await;
}

async fn the_inbound_endpoint_needs_its_key_and_refuses_unreadable_mail(engine: Engine) {
    let secret_key = "an-inbound-key-of-some-length";
    let app = TestApp::spawn_with(engine, |s| {
        let intake = Arc::new(Intake::new(s.store.clone(), s.matcher.clone(), notify()));
        s.with_inbound(secret_key, intake)
    })
    .await;
    app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await;
    let post = |key: &str, raw: String| {
        app.client.post(format!("{}/inbound/email?key={key}", app.base)).header("content-type", "message/rfc822").body(raw).send()
    };
    let structured = format!(
        "From: ada@northwind.example\nTo: register@{DOMAIN}\nSubject: New lead\nMessage-ID: <s-1@northwind.example>\n\n\
         Company: Initech\nContact: Bill Lumbergh\nEmail: bill@initech.example\nNotes: Wants a demo next week.\n"
    );
    let (s, _) = body(post("wrong", structured.clone()).await.unwrap()).await;
    assert_eq!(s, 401);
    let (s, out) = body(post(secret_key, structured.clone()).await.unwrap()).await;
    assert_eq!((s, out["outcome"].as_str(), out["created"].as_bool()), (200, Some("registered"), Some(true)), "{out}");
    let (_, again) = body(post(secret_key, structured).await.unwrap()).await;
    assert_eq!(
        (again["outcome"].as_str(), again["created"].as_bool()),
        (Some("registered"), Some(false)),
        "the same lead again: its referral"
    );
    assert_eq!(again["referral_id"], out["referral_id"]);
    let (_, r) = body(app.get(&format!("/api/v1/referrals/{}", out["referral_id"].as_str().unwrap()), &app.admin).await).await;
    assert_eq!((r["company"]["name"].as_str(), r["contact"]["name"].as_str()), (Some("Initech"), Some("Bill Lumbergh")));
    assert_eq!(r["context"], "Wants a demo next week.");

    // No prospect in the mail: dropped, and the partner is told why (once).
    let empty =
        format!("From: ada@northwind.example\nTo: register@{DOMAIN}\nSubject: lead\nMessage-ID: <e-1@northwind.example>\n\nCall me.\n");
    let (_, out) = body(post(secret_key, empty.clone()).await.unwrap()).await;
    assert_eq!(out["outcome"], "dropped", "{out}");
    body(post(secret_key, empty).await.unwrap()).await;
    let (_, outbox) = body(app.get("/api/v1/outbox?channel=email", &app.admin).await).await;
    let refusals: Vec<_> = outbox["data"].as_array().unwrap().iter().filter(|i| i["event"] == "registration.refused").collect();
    assert_eq!(refusals.len(), 1, "one answer per message: {outbox}");
    assert_eq!(refusals[0]["target"], "ada@northwind.example");

    let (s, p) = body(post(secret_key, "this is not a mail message".into()).await.unwrap()).await;
    assert_eq!(s, 422, "{p}");
    let stranger = format!("From: x@stranger.example\nTo: register@{DOMAIN}\nSubject: hi\n\nCompany: A\nEmail: a@a-corp.example\n");
    let (_, out) = body(post(secret_key, stranger).await.unwrap()).await;
    assert_eq!(out["outcome"], "dropped");
    assert_eq!(out["reason"], "x@stranger.example is not a partner contact");
    app.cleanup().await;

    // Without a key the endpoint does not exist.
    let plain = TestApp::spawn(engine).await;
    let r = plain.client.post(format!("{}/inbound/email?key=x", plain.base)).body("x").send().await.unwrap();
    assert_eq!(r.status(), 404);
    plain.cleanup().await;
}
