//! Commissions-ledger benchmark: accrue and release the commissions of
//! 1,000,000 won referrals of 10,000 partners and build one payout batch
//! over all of them, through the same use cases the server and the CLI run
//! (`commissions::accrue_missing`, `commissions::release_due`,
//! `payouts::create`), then export the batch as CSV.
//!
//! The won history is generated in SQL before the clock starts; the
//! reported peak memory is the process's peak resident set over the timed
//! part only (reset through /proc/self/clear_refs before it starts).
//!
//! `cargo bench --bench ledger`. Sizes: `BENCH_WON` (1000000),
//! `BENCH_PARTNERS` (10000). SQLite always (`synchronous=FULL`);
//! PostgreSQL too when `PARTNERLOOP_BENCH_POSTGRES_URL` names a server
//! (a fresh database is created and dropped).

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use partnerloop_app::payouts::{self, ExportFormat};
use partnerloop_app::plans::{self, PlanForCreate};
use partnerloop_app::sealing::Sealer;
use partnerloop_app::{Ctx, workspaces};
use partnerloop_domain::Currency;
use partnerloop_domain::payout::PayoutMethod;
use partnerloop_domain::plan::{PlanKind, Rate};
use partnerloop_store::{SqlStore, StoreOptions};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Peak resident memory since the last reset, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The generated rows, per engine: `{N}` is the row count, `{P}` the partner count.
struct Dialect {
    partners: &'static str,
    referrals: &'static str,
}

const SQLITE: Dialect = Dialect {
    partners: "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {N})
        INSERT INTO partners (workspace_id, id, name, type, status, tier, referral_code, website, commission_plan_id, created_at, updated_at, first_referral_at)
        SELECT $1, printf('prt_bench%08d', i), 'Bench Partner ' || i, 'agency', 'active', NULL, 'BENCH' || i, NULL, NULL, $2, $2, NULL FROM n",
    referrals: "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {N})
        INSERT INTO referrals (workspace_id, id, partner_id, status, channel, company_name, company_domain, contact_name, contact_email,
          contact_title, context, estimated_minor, estimated_currency, outcome, reasons, decided_at, decided_by, protection_starts_at,
          protection_expires_at, stage, deal_id, amount_minor, amount_currency, closed_at, dispute_status, created_at, updated_at)
        SELECT $1, printf('ref_bench%010d', i), printf('prt_bench%08d', i % {P}), 'won', 'csv', 'Company ' || i, 'company' || i || '.example',
          'Buyer', 'buyer@company' || i || '.example', NULL, NULL, NULL, NULL, 'approved', '[]', $2, 'bench', NULL, NULL, 'closed_won', NULL,
          100000 + (i % 997) * 100 + (i % 7), 'USD', strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now', '-' || (31 + i % 365) || ' days'), NULL, $2, $2
        FROM n",
};

const POSTGRES: Dialect = Dialect {
    partners: "INSERT INTO partners (workspace_id, id, name, type, status, tier, referral_code, website, commission_plan_id, created_at, updated_at, first_referral_at)
        SELECT $1, 'prt_bench' || lpad(i::text, 8, '0'), 'Bench Partner ' || i, 'agency', 'active', NULL, 'BENCH' || i, NULL, NULL, $2, $2, NULL
        FROM generate_series(0, {N} - 1) AS i",
    referrals: "INSERT INTO referrals (workspace_id, id, partner_id, status, channel, company_name, company_domain, contact_name, contact_email,
          contact_title, context, estimated_minor, estimated_currency, outcome, reasons, decided_at, decided_by, protection_starts_at,
          protection_expires_at, stage, deal_id, amount_minor, amount_currency, closed_at, dispute_status, created_at, updated_at)
        SELECT $1, 'ref_bench' || lpad(i::text, 10, '0'), 'prt_bench' || lpad((i % {P})::text, 8, '0'), 'won', 'csv', 'Company ' || i,
          'company' || i || '.example', 'Buyer', 'buyer@company' || i || '.example', NULL, NULL, NULL, NULL, 'approved', '[]', $2, 'bench',
          NULL, NULL, 'closed_won', NULL, 100000 + (i % 997) * 100 + (i % 7), 'USD',
          to_char((now() AT TIME ZONE 'UTC') - make_interval(days => 31 + i % 365), 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), NULL, $2, $2
        FROM generate_series(0, {N} - 1) AS i",
};

macro_rules! seed_rows {
    ($pool:expr, $d:expr, $ws:expr, $now:expr, $partners:expr, $won:expr, $details:expr, $masked:expr) => {{
        let sql = |t: &str, n: usize| t.replace("{N}", &n.to_string()).replace("{P}", &$partners.to_string());
        sqlx::query(sqlx::AssertSqlSafe(sql($d.partners, $partners))).bind($ws).bind($now).execute(&$pool).await.unwrap();
        for chunk in $details.chunks(5000) {
            let mut q =
                sqlx::QueryBuilder::new("INSERT INTO payout_details (workspace_id, partner_id, method, sealed, masked, updated_at) ");
            q.push_values(chunk, |mut b, (id, sealed): &(String, String)| {
                b.push_bind($ws).push_bind(id.as_str()).push_bind("credit").push_bind(sealed.as_str()).push_bind($masked).push_bind($now);
            });
            q.build().execute(&$pool).await.unwrap();
        }
        sqlx::query(sqlx::AssertSqlSafe(sql($d.referrals, $won))).bind($ws).bind($now).execute(&$pool).await.unwrap();
        // As a database in use would have: statistics for the planner.
        sqlx::query("ANALYZE").execute(&$pool).await.unwrap();
    }};
}

/// Generates `partners` partners with sealed payout details and `won` won
/// referrals closed 31 to 395 days ago (so every commission is past a
/// 30-day hold), spread evenly over the partners.
async fn seed(url: &str, ws: &str, sealer: &Sealer, partners: usize, won: usize) {
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let credit = serde_json::to_vec(&PayoutMethod::Credit).unwrap();
    let masked = serde_json::to_string(&PayoutMethod::Credit.masked()).unwrap();
    let details: Vec<(String, String)> = (0..partners)
        .map(|i| {
            let id = format!("prt_bench{i:08}");
            let sealed = sealer.seal(&format!("payout-details/{ws}/{id}"), &credit);
            (id, sealed)
        })
        .collect();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        seed_rows!(pool, SQLITE, ws, now.as_str(), partners, won, details, masked.as_str());
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        seed_rows!(pool, POSTGRES, ws, now.as_str(), partners, won, details, masked.as_str());
        pool.close().await;
    }
}

async fn run(engine: &str, url: &str, partners: usize, won: usize) {
    let options = StoreOptions { sqlite_writer_cache_mib: env("BENCH_SQLITE_CACHE_MIB", 64) as u32, ..StoreOptions::default() };
    let store = Arc::new(SqlStore::connect(url, &options).await.expect("open"));
    store.migrate().await.expect("migrate");
    let now = Timestamp::now();
    let ws = workspaces::ensure(store.as_ref(), "default", now).await.expect("workspace");
    let ctx = Ctx::system(ws.id.clone(), "bench", now);
    plans::create(
        store.as_ref(),
        &ctx,
        PlanForCreate {
            name: "Ten percent".into(),
            kind: PlanKind::Percent { rate: Rate::parse("rate", "0.1").unwrap() },
            cap: None,
            minimum: None,
            hold_days: 30,
            is_default: true,
            volume: None,
            recurring: None,
        },
    )
    .await
    .expect("plan");
    let sealer = Sealer::from_secret("bench-secret-key-bench-secret-key");
    let t = Instant::now();
    seed(url, ws.id.as_str(), &sealer, partners, won).await;
    eprintln!("{engine}: seeded {partners} partners and {won} won referrals in {:.1} s", t.elapsed().as_secs_f64());

    reset_peak_rss();
    let start = Instant::now();
    let t = Instant::now();
    let backfill = partnerloop_app::commissions::accrue_missing(store.as_ref(), &ctx).await.expect("accrue");
    let accrue_s = t.elapsed().as_secs_f64();
    let accrue_peak = peak_rss_mib();
    eprintln!("{engine}: accrued {} commissions in {accrue_s:.2} s", backfill.accrued);
    assert_eq!(backfill.accrued as usize, won);
    let t = Instant::now();
    let released = partnerloop_app::commissions::release_due(store.as_ref(), Some(&ws.id), Timestamp::now()).await.expect("release");
    let release_s = t.elapsed().as_secs_f64();
    let release_peak = peak_rss_mib();
    eprintln!("{engine}: released {released} commissions in {release_s:.2} s");
    assert_eq!(released as usize, won);
    let t = Instant::now();
    let created =
        payouts::create(store.as_ref(), &Ctx::system(ws.id.clone(), "bench", Timestamp::now()), Currency::USD).await.expect("payout");
    let batch_s = t.elapsed().as_secs_f64();
    let payout = created.payout.expect("a batch");
    assert_eq!(payout.commission_count as usize, won);
    assert_eq!(payout.items.len(), partners);
    let total_s = start.elapsed().as_secs_f64();
    let peak = peak_rss_mib();
    // SQLite: the batch's commit left its checkpoint (copying the WAL into
    // the database file) to a background connection; how long that went on.
    if let Some(path) = url.strip_prefix("sqlite://") {
        let t = Instant::now();
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).busy_timeout(std::time::Duration::from_secs(120));
        let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
        loop {
            let (busy, log, done): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut conn).await.unwrap();
            if busy == 0 && log == done {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        eprintln!("{engine}: the background checkpoint after the batch took {:.2} s more", t.elapsed().as_secs_f64());
        if std::env::var("BENCH_DBSTAT").is_ok() {
            let sizes: Vec<(String, i64, i64, i64)> = sqlx::query_as(
                "SELECT name, COUNT(*), SUM(pgsize), SUM(payload) FROM dbstat WHERE name LIKE 'commissions%' OR name LIKE 'sqlite_autoindex_commissions%' GROUP BY name",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            for (name, pages, bytes, payload) in sizes {
                eprintln!("{engine}: {name}: {pages} pages, {} MiB, payload {} MiB", bytes >> 20, payload >> 20);
            }
        }
        sqlx::Connection::close(conn).await.unwrap();
    }
    let t = Instant::now();
    let file = payouts::export(store.as_ref(), &sealer, &ctx, &payout.id, ExportFormat::Csv).await.expect("export");
    let export_s = t.elapsed().as_secs_f64();
    println!(
        "{engine}: {won} won referrals, {partners} partners: accrue {accrue_s:.2} s, release {release_s:.2} s, batch {batch_s:.2} s \
         = {total_s:.2} s; peak RSS {peak:.0} MiB (after accrue {accrue_peak:.0}, release {release_peak:.0}); batch total {}; CSV export of {} lines {export_s:.2} s",
        payout.total,
        file.bytes.iter().filter(|b| **b == b'\n').count() - 1
    );
    store.close().await;
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let won = env("BENCH_WON", 1_000_000);
    let partners = env("BENCH_PARTNERS", 10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    run("sqlite", &url, partners, won).await;
    if let Ok(admin_url) = std::env::var("PARTNERLOOP_BENCH_POSTGRES_URL") {
        let name = format!("pl_bench_{}", ulid::Ulid::new().to_string().to_lowercase());
        let admin = sqlx::PgPool::connect(&admin_url).await.expect("connect to PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.expect("create database");
        let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin_url.clone());
        run("postgres", &format!("{base}/{name}"), partners, won).await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&admin).await;
    }
}
