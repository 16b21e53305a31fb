//! Console dashboard benchmark: `GET /admin` (counts, the KPIs of the last
//! 12 months with each month's, and four SVG charts) for a workspace with a
//! year of data: 1,000 partners, 100,000 referrals and 5,000 direct deals,
//! timed over HTTP on a local socket with a signed-in staff admin's cookie
//! (so a figure is the server's time plus one localhost round trip).
//!
//! The data is generated in SQL before the clock starts, as in
//! `benches/metrics.rs`: 15 % won (every 11th in EUR), 10 % lost, 40 % open
//! across the five stages, 5 % awaiting review, 15 % rejected, 15 %
//! expired, registered over the last 365 days; partners joined one to two
//! years ago.
//!
//! `cargo bench --bench dashboard`. Sizes: `BENCH_PARTNERS` (1000),
//! `BENCH_REFERRALS` (100000), `BENCH_REQUESTS` (200). SQLite always;
//! PostgreSQL too when `PARTNERLOOP_BENCH_POSTGRES_URL` names a server (a
//! fresh database is created and dropped), else it says so.

#[path = "common/mod.rs"]
mod common;

use common::{Dialect, env, ms, seed, time};
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use partnerloop_app::staff::{self, StaffRole};
use partnerloop_app::{Ctx, workspaces};
use partnerloop_store::{SqlStore, StoreOptions};

const SQLITE: Dialect = Dialect {
    partners: "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {N})
        INSERT INTO partners (workspace_id, id, name, type, status, tier, referral_code, created_at, updated_at, first_referral_at)
        SELECT $1, printf('prt_bench%08d', i), 'Bench Partner ' || i, 'agency', CASE WHEN i % 50 = 0 THEN 'paused' ELSE 'active' END,
          CASE WHEN i % 10 = 0 THEN 'gold' END, {CODE}, created, created,
          CASE WHEN i % 5 <> 0 THEN strftime('%Y-%m-%dT%H:%M:%S.000000Z', created, '+' || (i % 30) || ' days') END
        FROM (SELECT i, strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now', '-' || (365 + i % 365) || ' days') AS created FROM n)",
    referrals: "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {N})
        INSERT INTO referrals (workspace_id, id, partner_id, status, channel, company_name, company_domain, contact_name, contact_email,
          estimated_minor, estimated_currency, outcome, reasons, decided_at, decided_by, stage, amount_minor, amount_currency, closed_at,
          created_at, updated_at)
        SELECT $1, printf('ref_bench%010d', i), printf('prt_bench%08d', i % {P}),
          CASE WHEN i % 20 < 3 THEN 'won' WHEN i % 20 < 5 THEN 'lost' WHEN i % 20 < 13 THEN 'approved' WHEN i % 20 = 13 THEN 'pending_review'
               WHEN i % 20 < 17 THEN 'rejected' ELSE 'expired' END,
          'csv', 'Company ' || i, 'company' || i || '.example', 'Buyer', 'buyer@company' || i || '.example', 100000 + (i % 997) * 100, 'USD',
          CASE WHEN i % 20 = 13 THEN 'review' WHEN i % 20 BETWEEN 14 AND 16 THEN 'rejected' ELSE 'approved' END, '[]',
          CASE WHEN i % 20 = 14 THEN strftime('%Y-%m-%dT%H:%M:%S.000000Z', created, '+' || (i % 48) || ' hours') ELSE created END,
          CASE WHEN i % 20 = 14 THEN 'admin:key_bench' ELSE 'rules' END,
          CASE WHEN i % 20 < 3 THEN 'closed_won' WHEN i % 20 < 5 THEN 'closed_lost'
               WHEN i % 20 < 13 THEN CASE i % 5 WHEN 0 THEN 'new' WHEN 1 THEN 'qualified' WHEN 2 THEN 'meeting' WHEN 3 THEN 'proposal' ELSE 'negotiation' END END,
          CASE WHEN i % 20 < 3 THEN 100000 + (i % 997) * 100 + (i % 7) END,
          CASE WHEN i % 20 < 3 THEN CASE WHEN i % 11 = 0 THEN 'EUR' ELSE 'USD' END END,
          CASE WHEN i % 20 < 5 THEN strftime('%Y-%m-%dT%H:%M:%S.000000Z', created, '+' || (1 + i % 60) || ' days') END,
          created, created
        FROM (SELECT i, strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now', '-' || (i % 365) || ' days', '-' || (i % 86400) || ' seconds') AS created FROM n)",
    deals: "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {N})
        INSERT INTO deals (workspace_id, id, name, company_name, company_domain, stage, amount_minor, currency, source, created_at, closed_at, updated_at)
        SELECT $1, printf('deal_bench%08d', i), 'Deal ' || i, 'Direct ' || i, 'direct' || i || '.example',
          CASE i % 4 WHEN 0 THEN 'closed_won' WHEN 1 THEN 'closed_won' WHEN 2 THEN 'closed_lost' ELSE 'proposal' END,
          50000 + (i % 991) * 100, 'USD', 'direct', created,
          CASE WHEN i % 4 < 3 THEN strftime('%Y-%m-%dT%H:%M:%S.000000Z', created, '+' || (1 + i % 90) || ' days') END, created
        FROM (SELECT i, strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now', '-' || (i % 365) || ' days') AS created FROM n)",
};

const POSTGRES: Dialect = Dialect {
    partners: "INSERT INTO partners (workspace_id, id, name, type, status, tier, referral_code, created_at, updated_at, first_referral_at)
        SELECT $1, 'prt_bench' || lpad(i::text, 8, '0'), 'Bench Partner ' || i, 'agency', CASE WHEN i % 50 = 0 THEN 'paused' ELSE 'active' END,
          CASE WHEN i % 10 = 0 THEN 'gold' END, {CODE}, to_char(c, {T}), to_char(c, {T}),
          CASE WHEN i % 5 <> 0 THEN to_char(c + make_interval(days => i % 30), {T}) END
        FROM (SELECT i, (now() AT TIME ZONE 'UTC') - make_interval(days => 365 + i % 365) AS c FROM generate_series(0, {N} - 1) AS i) s",
    referrals: "INSERT INTO referrals (workspace_id, id, partner_id, status, channel, company_name, company_domain, contact_name, contact_email,
          estimated_minor, estimated_currency, outcome, reasons, decided_at, decided_by, stage, amount_minor, amount_currency, closed_at,
          created_at, updated_at)
        SELECT $1, 'ref_bench' || lpad(i::text, 10, '0'), 'prt_bench' || lpad((i % {P})::text, 8, '0'),
          CASE WHEN i % 20 < 3 THEN 'won' WHEN i % 20 < 5 THEN 'lost' WHEN i % 20 < 13 THEN 'approved' WHEN i % 20 = 13 THEN 'pending_review'
               WHEN i % 20 < 17 THEN 'rejected' ELSE 'expired' END,
          'csv', 'Company ' || i, 'company' || i || '.example', 'Buyer', 'buyer@company' || i || '.example', 100000 + (i % 997) * 100, 'USD',
          CASE WHEN i % 20 = 13 THEN 'review' WHEN i % 20 BETWEEN 14 AND 16 THEN 'rejected' ELSE 'approved' END, '[]',
          CASE WHEN i % 20 = 14 THEN to_char(c + make_interval(hours => i % 48), {T}) ELSE to_char(c, {T}) END,
          CASE WHEN i % 20 = 14 THEN 'admin:key_bench' ELSE 'rules' END,
          CASE WHEN i % 20 < 3 THEN 'closed_won' WHEN i % 20 < 5 THEN 'closed_lost'
               WHEN i % 20 < 13 THEN CASE i % 5 WHEN 0 THEN 'new' WHEN 1 THEN 'qualified' WHEN 2 THEN 'meeting' WHEN 3 THEN 'proposal' ELSE 'negotiation' END END,
          CASE WHEN i % 20 < 3 THEN 100000 + (i % 997) * 100 + (i % 7) END,
          CASE WHEN i % 20 < 3 THEN CASE WHEN i % 11 = 0 THEN 'EUR' ELSE 'USD' END END,
          CASE WHEN i % 20 < 5 THEN to_char(c + make_interval(days => 1 + i % 60), {T}) END,
          to_char(c, {T}), to_char(c, {T})
        FROM (SELECT i, date_trunc('second', now() AT TIME ZONE 'UTC') - make_interval(days => i % 365, secs => i % 86400) AS c
              FROM generate_series(0, {N} - 1) AS i) s",
    deals: "INSERT INTO deals (workspace_id, id, name, company_name, company_domain, stage, amount_minor, currency, source, created_at, closed_at, updated_at)
        SELECT $1, 'deal_bench' || lpad(i::text, 8, '0'), 'Deal ' || i, 'Direct ' || i, 'direct' || i || '.example',
          CASE i % 4 WHEN 0 THEN 'closed_won' WHEN 1 THEN 'closed_won' WHEN 2 THEN 'closed_lost' ELSE 'proposal' END,
          50000 + (i % 991) * 100, 'USD', 'direct', to_char(c, {T}),
          CASE WHEN i % 4 < 3 THEN to_char(c + make_interval(days => 1 + i % 90), {T}) END, to_char(c, {T})
        FROM (SELECT i, date_trunc('second', now() AT TIME ZONE 'UTC') - make_interval(days => i % 365) AS c
              FROM generate_series(0, {N} - 1) AS i) s",
};

/// The `Set-Cookie` pairs of a response, as `name=value`.
fn cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .map(str::to_owned)
        .collect()
}

/// Signs a new staff admin in through its link, as a browser does; returns the `Cookie` header.
async fn staff_cookie(client: &reqwest::Client, base: &str, store: &SqlStore, ctx: &Ctx) -> String {
    let (_, url) = staff::create_user(store, base, ctx, "bench@console.example", StaffRole::Admin).await.expect("staff user");
    let page = client.get(&url).send().await.expect("link page");
    let csrf_cookie = cookies(&page).into_iter().find(|c| c.starts_with("pl_staff_csrf=")).expect("a CSRF cookie");
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
    let r = client
        .post(&url)
        .header("cookie", &csrf_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .expect("redeem link");
    assert_eq!(r.status(), 303, "the link signs in");
    let session = cookies(&r).into_iter().find(|c| c.starts_with("pl_staff=")).expect("a session cookie");
    format!("{session}; {csrf_cookie}")
}

async fn run(engine: &str, url: &str, partners: usize, referrals: usize, requests: usize) {
    partnerloop_jobs::http::install_crypto_provider();
    let store = Arc::new(SqlStore::connect(url, &StoreOptions::default()).await.expect("open"));
    store.migrate().await.expect("migrate");
    let now = Timestamp::now();
    let ws = workspaces::ensure(store.as_ref(), "default", now).await.expect("workspace");
    let t = Instant::now();
    seed(url, (&SQLITE, &POSTGRES), ws.id.as_str(), partners, referrals, 5_000).await;
    eprintln!("{engine}: seeded {partners} partners, {referrals} referrals and 5,000 direct deals in {:.1} s", t.elapsed().as_secs_f64());
    // The scheduler's fold of the KPI counters' deltas (every minute).
    partnerloop_app::metrics::MetricsStore::compact_metric_counters(store.as_ref()).await.expect("compact");

    let secret = partnerloop_app::Store::instance_setting_or_init(store.as_ref(), "secret_key", partnerloop_app::auth::random_secret())
        .await
        .expect("secret");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = partnerloop_web::router(partnerloop_web::AppState::new(store.clone(), &secret));
    tokio::spawn(partnerloop_web::serve(listener, router, std::future::pending()));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let cookie = staff_cookie(&client, &base, &store, &Ctx::system(ws.id.clone(), "bench", now)).await;

    let page = client.get(format!("{base}/admin")).header("cookie", &cookie).send().await.expect("dashboard");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("body");
    assert_eq!(page.matches("<svg ").count(), 4, "four charts");
    eprintln!("{engine}: the dashboard is {} KB", page.len() / 1024);

    let (p50, p99) = time(requests, || {
        let (client, cookie, url) = (client.clone(), cookie.clone(), format!("{base}/admin"));
        async move {
            let r = client.get(url).header("cookie", cookie).send().await.expect("dashboard");
            assert_eq!(r.status(), 200);
            r.bytes().await.expect("body");
        }
    })
    .await;
    println!("{engine}: GET /admin, {partners} partners, {referrals} referrals: p50 {} p99 {} ({requests} requests)", ms(p50), ms(p99));
    store.close().await;
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let partners = env("BENCH_PARTNERS", 1_000);
    let referrals = env("BENCH_REFERRALS", 100_000);
    let requests = env("BENCH_REQUESTS", 200);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("dashboard.db").display());
    run("sqlite", &url, partners, referrals, requests).await;
    match std::env::var("PARTNERLOOP_BENCH_POSTGRES_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let name = format!("pl_bench_{}", ulid::Ulid::new().to_string().to_lowercase());
            let admin = sqlx::PgPool::connect(&admin_url).await.expect("connect to PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.expect("create database");
            let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin_url.clone());
            run("postgres", &format!("{base}/{name}"), partners, referrals, requests).await;
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&admin).await;
        }
        _ => println!("postgres: skipped (set PARTNERLOOP_BENCH_POSTGRES_URL=postgres://… to run it)"),
    }
}
