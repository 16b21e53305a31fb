//! KPI benchmark: every KPI of `GET /api/v1/metrics` for a workspace with
//! 10,000 partners and 1,000,000 referrals (plus 50,000 direct deals),
//! through the use case the handler calls (`metrics::workspace_metrics`),
//! timed over repeated queries: all time, the last quarter, twelve months
//! grouped by month, and one partner's scorecard.
//!
//! The data is generated in SQL (one `INSERT … SELECT` per table, in one
//! statement each) before the clock starts: 15 % won (every 11th in EUR),
//! 10 % lost, 40 % open across the five stages, 5 % awaiting review, 15 %
//! rejected (a third of them by a person, after 0–47 hours), 15 % expired,
//! registered over the last two years.
//!
//! `cargo bench --bench metrics`. Sizes: `BENCH_PARTNERS` (10000),
//! `BENCH_REFERRALS` (1000000), `BENCH_QUERIES` (40 per figure). SQLite
//! always; PostgreSQL too when `PARTNERLOOP_BENCH_POSTGRES_URL` names a
//! server (a fresh database is created and dropped), else it says so.

#[path = "common/mod.rs"]
mod common;

use common::{Dialect, env, ms, seed, time};
use std::sync::Arc;
use std::time::Instant;

use jiff::{Timestamp, ToSpan};
use partnerloop_app::metrics::{self, MetricsQuery, MetricsStore as _};
use partnerloop_app::{Ctx, workspaces};
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::metrics::Period;
use partnerloop_store::{SqlStore, StoreOptions};

const SQLITE: Dialect = Dialect {
    partners: "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {N})
        INSERT INTO partners (workspace_id, id, name, type, status, tier, referral_code, created_at, updated_at, first_referral_at)
        SELECT $1, printf('prt_bench%08d', i), 'Bench Partner ' || i, 'agency', CASE WHEN i % 50 = 0 THEN 'paused' ELSE 'active' END,
          CASE WHEN i % 10 = 0 THEN 'gold' END, {CODE}, created, created,
          CASE WHEN i % 5 <> 0 THEN strftime('%Y-%m-%dT%H:%M:%S.000000Z', created, '+' || (i % 30) || ' days') END
        FROM (SELECT i, strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now', '-' || (730 + i % 365) || ' days') AS created FROM n)",
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
        FROM (SELECT i, strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now', '-' || (61 + i % 669) || ' days', '-' || (i % 86400) || ' seconds') AS created FROM n)",
    deals: "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {N})
        INSERT INTO deals (workspace_id, id, name, company_name, company_domain, stage, amount_minor, currency, source, created_at, closed_at, updated_at)
        SELECT $1, printf('deal_bench%08d', i), 'Deal ' || i, 'Direct ' || i, 'direct' || i || '.example',
          CASE i % 4 WHEN 0 THEN 'closed_won' WHEN 1 THEN 'closed_won' WHEN 2 THEN 'closed_lost' ELSE 'proposal' END,
          50000 + (i % 991) * 100, 'USD', 'direct', created,
          CASE WHEN i % 4 < 3 THEN strftime('%Y-%m-%dT%H:%M:%S.000000Z', created, '+' || (1 + i % 90) || ' days') END, created
        FROM (SELECT i, strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now', '-' || (91 + i % 639) || ' days') AS created FROM n)",
};

const POSTGRES: Dialect = Dialect {
    partners: "INSERT INTO partners (workspace_id, id, name, type, status, tier, referral_code, created_at, updated_at, first_referral_at)
        SELECT $1, 'prt_bench' || lpad(i::text, 8, '0'), 'Bench Partner ' || i, 'agency', CASE WHEN i % 50 = 0 THEN 'paused' ELSE 'active' END,
          CASE WHEN i % 10 = 0 THEN 'gold' END, {CODE}, to_char(c, {T}), to_char(c, {T}),
          CASE WHEN i % 5 <> 0 THEN to_char(c + make_interval(days => i % 30), {T}) END
        FROM (SELECT i, (now() AT TIME ZONE 'UTC') - make_interval(days => 730 + i % 365) AS c FROM generate_series(0, {N} - 1) AS i) s",
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
        FROM (SELECT i, date_trunc('second', now() AT TIME ZONE 'UTC') - make_interval(days => 61 + i % 669, secs => i % 86400) AS c
              FROM generate_series(0, {N} - 1) AS i) s",
    deals: "INSERT INTO deals (workspace_id, id, name, company_name, company_domain, stage, amount_minor, currency, source, created_at, closed_at, updated_at)
        SELECT $1, 'deal_bench' || lpad(i::text, 8, '0'), 'Deal ' || i, 'Direct ' || i, 'direct' || i || '.example',
          CASE i % 4 WHEN 0 THEN 'closed_won' WHEN 1 THEN 'closed_won' WHEN 2 THEN 'closed_lost' ELSE 'proposal' END,
          50000 + (i % 991) * 100, 'USD', 'direct', to_char(c, {T}),
          CASE WHEN i % 4 < 3 THEN to_char(c + make_interval(days => 1 + i % 90), {T}) END, to_char(c, {T})
        FROM (SELECT i, date_trunc('second', now() AT TIME ZONE 'UTC') - make_interval(days => 91 + i % 639) AS c
              FROM generate_series(0, {N} - 1) AS i) s",
};

async fn run(engine: &str, url: &str, partners: usize, referrals: usize, queries: usize) {
    let store = Arc::new(SqlStore::connect(url, &StoreOptions::default()).await.expect("open"));
    store.migrate().await.expect("migrate");
    let now = Timestamp::now();
    let ws = workspaces::ensure(store.as_ref(), "default", now).await.expect("workspace");
    let t = Instant::now();
    seed(url, (&SQLITE, &POSTGRES), ws.id.as_str(), partners, referrals, 50_000).await;
    eprintln!("{engine}: seeded {partners} partners, {referrals} referrals and 50,000 direct deals in {:.1} s", t.elapsed().as_secs_f64());
    // The inserts appended a counter delta per referral (migration 0015);
    // the scheduler folds them every minute, as here.
    let t = Instant::now();
    let folded = store.compact_metric_counters().await.expect("compact");
    eprintln!("{engine}: folded {folded} KPI counter deltas in {:.1} s", t.elapsed().as_secs_f64());
    let ctx = Ctx::system(ws.id.clone(), "bench", Timestamp::now());

    let all = metrics::workspace_metrics(store.as_ref(), &ctx, MetricsQuery::default()).await.expect("metrics");
    let r = &all.report;
    assert_eq!(r.won.partner + r.lost.partner, (referrals / 4) as u64, "won and lost are a quarter of the referrals");
    assert_eq!(r.referrals_registered, referrals as u64);
    eprintln!(
        "{engine}: all time: conversion {:?}, revenue {}, avg partner {:?} / direct {:?}, activation {:?}, median days {:?}, dormant {}, review median h {:?}",
        r.referral_to_closed_won_rate,
        r.partner_sourced_revenue,
        r.average_deal_size.partner.map(|m| m.to_string()),
        r.average_deal_size.direct.map(|m| m.to_string()),
        r.partner_activation_rate,
        r.median_days_to_first_referral,
        r.dormant_partners,
        r.median_review_hours
    );

    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let quarter = Period::new(Some(today - 3.months()), Some(today)).unwrap();
    let year = Period::new(Some((today - 12.months()).first_of_month()), Some(today)).unwrap();
    let partner = PartnerId::from_string("prt_bench00000042");
    let figures = [
        ("all KPIs, all time", MetricsQuery::default()),
        ("all KPIs, last quarter", MetricsQuery { period: quarter, ..Default::default() }),
        ("all KPIs, 12 months grouped by month (13 periods + total)", MetricsQuery { period: year, by_month: true, ..Default::default() }),
    ];
    for (name, q) in figures {
        let (p50, p99) = time(queries, || {
            let q = q.clone();
            let store = store.clone();
            let ctx = Ctx::system(ws.id.clone(), "bench", Timestamp::now());
            async move {
                metrics::workspace_metrics(store.as_ref(), &ctx, q).await.expect("metrics");
            }
        })
        .await;
        println!("{engine}: {name}: p50 {} p99 {} ({queries} queries)", ms(p50), ms(p99));
    }
    let (p50, p99) = time(queries, || {
        let store = store.clone();
        let ctx = Ctx::system(ws.id.clone(), "bench", Timestamp::now());
        let partner = partner.clone();
        async move {
            metrics::scorecard(store.as_ref(), &ctx, &partner, Period::default(), None).await.expect("scorecard");
        }
    })
    .await;
    println!("{engine}: one partner's scorecard, all time: p50 {} p99 {} ({queries} queries)", ms(p50), ms(p99));
    store.close().await;
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let partners = env("BENCH_PARTNERS", 10_000);
    let referrals = env("BENCH_REFERRALS", 1_000_000);
    let queries = env("BENCH_QUERIES", 40);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("metrics.db").display());
    run("sqlite", &url, partners, referrals, queries).await;
    match std::env::var("PARTNERLOOP_BENCH_POSTGRES_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let name = format!("pl_bench_{}", ulid::Ulid::new().to_string().to_lowercase());
            let admin = sqlx::PgPool::connect(&admin_url).await.expect("connect to PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.expect("create database");
            let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin_url.clone());
            run("postgres", &format!("{base}/{name}"), partners, referrals, queries).await;
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&admin).await;
        }
        _ => println!("postgres: skipped (set PARTNERLOOP_BENCH_POSTGRES_URL=postgres://… to run it)"),
    }
}
