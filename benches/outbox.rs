//! Outbox throughput: the dispatcher delivers `BENCH_ITEMS` emails to an
//! SMTP sink on loopback, then as many signed webhooks to a local HTTP
//! receiver, on SQLite (`synchronous=FULL`), and reports items/s for each.
//! The sink speaks just enough SMTP (EHLO, MAIL, RCPT, DATA, RSET, QUIT) to
//! accept every message; it runs in this process, on the same two cores.
//!
//! `cargo bench --bench outbox`. Sizes: `BENCH_ITEMS` (5000).
//! Then it idles for 5 s and reports the dispatcher's CPU time while idle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use partnerloop_app::notify::NotifyConfig;
use partnerloop_app::notify::notice::{MailPayload, Mailbox, Notice};
use partnerloop_app::outbox::{Channel, NewOutboxItem, OutboxStore};
use partnerloop_app::{Ctx, workspaces};
use partnerloop_jobs::Dispatcher;
use partnerloop_jobs::email::Mailer;
use partnerloop_jobs::http::HttpSender;
use partnerloop_store::{SqlStore, StoreOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn smtp_sink() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r);
                let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                let mut line = String::new();
                let mut in_data = false;
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            let _ = w.write_all(b"250 queued\r\n").await;
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    port
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    partnerloop_jobs::http::install_crypto_provider();
    let n: usize = std::env::var("BENCH_ITEMS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = Arc::new(SqlStore::connect(&url, &StoreOptions::default()).await.unwrap());
        store.migrate().await.unwrap();
        let now = Timestamp::now();
        let ws = workspaces::ensure(store.as_ref(), "default", now).await.unwrap();
        let port = smtp_sink().await;

        let receiver = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, receiver).await });

        let secret = "bench-secret-0123456789abcdefghijklmnopqrstuv";
        let sealer = partnerloop_app::sealing::Sealer::from_secret(secret);
        let ctx = Ctx::system(ws.id.clone(), "bench", now);
        let input = partnerloop_app::notifications::EndpointInput { url: hook, description: None, events: vec![], active: true };
        let (endpoint, _) = partnerloop_app::notifications::create_endpoint(store.as_ref(), &sealer, &ctx, input).await.unwrap();

        let dyn_store: Arc<dyn partnerloop_app::Store> = store.clone();
        let cfg = NotifyConfig {
            base_url: "http://x".into(),
            inbound_domain: "x.example".into(),
            link_key: vec![1],
            default_slack_workspace: None,
        };
        let mailer = Mailer::smtp(&format!("smtp://127.0.0.1:{port}"), "partners@vendor.example").unwrap();
        let http = HttpSender::new(dyn_store.clone(), Arc::new(sealer), None);
        let d = Arc::new(Dispatcher::new(dyn_store, cfg, Arc::new(mailer), Arc::new(http)));

        for (label, channel) in
            [("emails to a loopback SMTP sink", Channel::Email), ("signed webhooks to a loopback receiver", Channel::Webhook)]
        {
            let items: Vec<NewOutboxItem> = (0..n)
                .map(|i| {
                    let payload = match channel {
                        Channel::Email => serde_json::to_value(MailPayload {
                            to: Mailbox { name: Some(format!("Partner {i}")), email: format!("p{i}@partner.example") },
                            workspace: "Bench".into(),
                            notice: Notice::StageChanged { company: format!("Company {i}"), stage_label: "Qualified".into() },
                            referral_id: Some(format!("ref_{i}")),
                            starts_thread: false,
                            reply_to: Some("reply+abc@x.example".into()),
                            status_url: Some("http://x/status/abc".into()),
                            preferences_url: None,
                            unsubscribe_url: None,
                        })
                        .unwrap(),
                        _ => serde_json::json!({"type": "referral.stage_changed", "data": {"n": i}}),
                    };
                    NewOutboxItem {
                        id: partnerloop_app::ids::new_id("obx", now),
                        workspace_id: ws.id.clone(),
                        channel,
                        idempotency_key: format!("{}-{i}", channel.as_str()),
                        event: "bench".into(),
                        target: if channel == Channel::Email { format!("p{i}@partner.example") } else { endpoint.id.clone() },
                        payload,
                        created_at: now,
                    }
                })
                .collect();
            store.enqueue(&items).await.unwrap();
            let started = Instant::now();
            let r = d.drain(Timestamp::now()).await.unwrap();
            let secs = started.elapsed().as_secs_f64();
            assert_eq!(r.delivered as usize, n, "{r:?}");
            println!("{label}: {n} in {secs:.2} s = {:.0} items/s", n as f64 / secs);
        }

        let running = tokio::spawn(d.clone().run(std::future::pending()));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = cpu_seconds();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let idle = cpu_seconds() - before;
        running.abort();
        println!("idle dispatcher: {:.3} CPU-seconds over 5 s ({:.2}% of one core)", idle, idle / 5.0 * 100.0);
    });
}
