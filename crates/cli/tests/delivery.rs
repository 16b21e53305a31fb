//! Delivery against real peers: a real SMTP conversation with Debian's
//! aiosmtpd, and crash safety — the server is killed with SIGKILL again and
//! again while it delivers 1,000 webhooks to a receiver that dedupes by
//! `webhook-id`: every notification arrives, none is lost, and a duplicate
//! is only ever a repeat of one key.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::{Engine, TestApp, body};
use jiff::Timestamp;
use partnerloop_app::notify::NotifyConfig;
use partnerloop_jobs::Dispatcher;
use partnerloop_jobs::email::Mailer;
use partnerloop_jobs::http::HttpSender;
use serde_json::json;

const DEBIAN_PYTHON: &str = "/usr/bin/python3";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether a tool the test needs is here; in CI its absence is a failure.
fn tool_available(test: &str, ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(std::env::var("CI").is_err(), "{test}: {what} is missing (CI installs it)");
    eprintln!("SKIPPED {test}: {what} is not installed");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_smtp_conversation_delivers_headers_and_both_bodies() {
    let has = Command::new(DEBIAN_PYTHON).args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
    if !tool_available("a_real_smtp_conversation_delivers_headers_and_both_bodies", has, "python3-aiosmtpd") {
        return;
    }
    let maildir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut sink = Command::new(DEBIAN_PYTHON)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path().join("box"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let app = TestApp::spawn(Engine::Sqlite).await;
    let store: Arc<dyn partnerloop_app::Store> = app.store.clone();
    let cfg = NotifyConfig {
        base_url: "https://partners.vendor.example".into(),
        inbound_domain: "in.vendor.example".into(),
        link_key: b"k".to_vec(),
        default_slack_workspace: None,
    };
    let mailer = Mailer::smtp(&format!("smtp://127.0.0.1:{port}"), "partners@vendor.example").unwrap();
    let sealer = Arc::new(partnerloop_app::sealing::Sealer::random());
    let d = Dispatcher::new(store.clone(), cfg, Arc::new(mailer), Arc::new(HttpSender::new(store, sealer, None)));
    let p = app.partners_with_tokens(1).await.remove(0);
    let b = json!({"company": {"name": "Globex", "domain": "globex.example"}, "contact": {"name": "Hank", "email": "hank@globex.example"}});
    let (s, r) = body(app.post("/api/v1/referrals", &p.1, &b).await).await;
    assert_eq!(s, 201, "{r}");
    let round = d.drain(Timestamp::now()).await.unwrap();
    assert!(round.delivered >= 1 && round.dead == 0 && round.retried == 0, "{round:?}");

    let dir = maildir.path().join("box").join("new");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    let mail = files.iter().find(|m| m.contains("Your referral of Globex")).expect("the referral mail reached the SMTP server");
    let id = r["id"].as_str().unwrap();
    assert!(mail.contains("To: \"Contact of Partner 0\" <p0@partner0.example>"), "{mail}");
    assert!(mail.contains("From: \"Default workspace\" <partners@vendor.example>"));
    assert!(mail.contains(&format!("Message-ID: <referral.{id}@vendor.example>")));
    assert!(mail.contains("Reply-To: \"Default workspace\" <reply+"));
    assert!(mail.contains("X-Idempotency-Key: aud_"));
    assert!(mail.contains("Content-Type: multipart/alternative"));
    assert!(mail.contains("Content-Type: text/plain; charset=utf-8") && mail.contains("Content-Type: text/html; charset=utf-8"));
    assert!(mail.contains("We received your referral of Globex"), "the text body");
    assert!(mail.contains("<h1 style=3D"), "the HTML body");
    let (_, log) = body(app.get("/api/v1/outbox?channel=email", &app.admin).await).await;
    let item = log["data"].as_array().unwrap().iter().find(|i| i["status"] == "delivered").expect("delivered").clone();
    let (_, detail) = body(app.get(&format!("/api/v1/outbox/{}", item["id"].as_str().unwrap()), &app.admin).await).await;
    assert_eq!(detail["attempt_log"][0]["status_code"], 250, "the SMTP server's reply code is logged");
    let _ = sink.kill();
    let _ = sink.wait();
    app.cleanup().await;
}

#[derive(Clone, Default)]
struct Dedupe {
    seen: Arc<Mutex<HashMap<String, u32>>>,
}

async fn dedupe(axum::extract::State(d): axum::extract::State<Dedupe>, headers: HeaderMap) -> StatusCode {
    // A little work per call, so that kills land while deliveries are in flight.
    tokio::time::sleep(Duration::from_millis(3)).await;
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    *d.seen.lock().unwrap().entry(id).or_default() += 1;
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_repeatedly_loses_no_notification() {
    const N: usize = 1000;
    let secret = "crash-test-secret-0123456789abcdefghijklmnop";
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    let env = |c: &mut Command| {
        c.env("PARTNERLOOP_DATABASE_URL", &db)
            .env("PARTNERLOOP_SECRET_KEY", secret)
            .env("PARTNERLOOP_MAIL_DIR", dir.path().join("mail"))
            .env("PARTNERLOOP_OUTBOX_LEASE_SECONDS", "5")
            .env("PARTNERLOOP_LOG", "warn");
    };
    let bin = env!("CARGO_BIN_EXE_partnerloop");
    let mut migrate = Command::new(bin);
    migrate.arg("migrate");
    env(&mut migrate);
    assert!(migrate.status().unwrap().success());

    let d = Dedupe::default();
    let app = axum::Router::new().route("/hook", axum::routing::post(dedupe)).with_state(d.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The endpoint and 1,000 items, written as the server would.
    let store = partnerloop_store::SqlStore::connect(&db, &partnerloop_store::StoreOptions::default()).await.unwrap();
    let now = Timestamp::now();
    let ws = partnerloop_app::workspaces::ensure(&store, "default", now).await.unwrap();
    let ctx = partnerloop_app::Ctx::system(ws.id.clone(), "test", now);
    let sealer = partnerloop_app::sealing::Sealer::from_secret(secret);
    let input = partnerloop_app::notifications::EndpointInput { url, description: None, events: vec![], active: true };
    let (endpoint, _) = partnerloop_app::notifications::create_endpoint(&store, &sealer, &ctx, input).await.unwrap();
    let items: Vec<_> = (0..N)
        .map(|i| partnerloop_app::outbox::NewOutboxItem {
            id: partnerloop_app::ids::new_id("obx", now),
            workspace_id: ws.id.clone(),
            channel: partnerloop_app::outbox::Channel::Webhook,
            idempotency_key: format!("crash-{i}"),
            event: "test.event".into(),
            target: endpoint.id.clone(),
            payload: json!({"n": i}),
            created_at: now,
        })
        .collect();
    partnerloop_app::outbox::OutboxStore::enqueue(&store, &items).await.unwrap();
    store.close().await;

    let serve = || {
        let mut c = Command::new(bin);
        c.args(["serve", "--bind", &format!("127.0.0.1:{}", free_port())]).stdout(Stdio::null()).stderr(Stdio::null());
        env(&mut c);
        c.spawn().expect("spawn serve")
    };
    let mut kills = 0;
    let mut seen_before_kill = Vec::new();
    // Kill it while it works, as often as it takes to land kills mid-run.
    while kills < 6 {
        let mut child = serve();
        std::thread::sleep(Duration::from_millis(350 + 150 * kills));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        seen_before_kill.push(d.seen.lock().unwrap().len());
        if d.seen.lock().unwrap().len() == N {
            break;
        }
    }
    // Then let it finish (items claimed by a killed server wait out their lease).
    let mut child = serve();
    let started = Instant::now();
    while d.seen.lock().unwrap().len() < N && started.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let seen = d.seen.lock().unwrap().clone();
    let expected: HashSet<String> = (0..N).map(|i| format!("crash-{i}")).collect();
    let got: HashSet<String> = seen.keys().cloned().collect();
    assert_eq!(got.difference(&expected).count(), 0, "only our keys arrive");
    assert_eq!(expected.difference(&got).count(), 0, "every notification arrives (after {kills} kills: {seen_before_kill:?})");
    let repeats: u32 = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "crash test: {N} delivered across {kills} SIGKILLs (progress at each kill: {seen_before_kill:?}); {repeats} repeats of a key"
    );
    assert!(seen_before_kill.iter().any(|n| *n > 0 && *n < N), "at least one kill landed mid-delivery: {seen_before_kill:?}");
}
