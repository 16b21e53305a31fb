//! What the SQL-seeded benchmarks (`metrics`, `dashboard`) share: the
//! engine dialects' row generators, seeding, and timing. Each benchmark
//! keeps its own generators (their dates and mixes differ).

use std::future::Future;
use std::time::{Duration, Instant};

pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Generated rows per engine: `{N}` rows, `{P}` partners; `$1` the workspace.
pub struct Dialect {
    pub partners: &'static str,
    pub referrals: &'static str,
    pub deals: &'static str,
}

/// A valid, unique referral code for partner `i` (both engines): `PB` and
/// six base-31 digits of `i` in the codes' alphabet.
fn referral_code() -> String {
    let digits: Vec<String> =
        (0..6).map(|k| format!("substr('ABCDEFGHJKMNPQRSTUVWXYZ23456789', (i / {}) % 31 + 1, 1)", 31_i64.pow(k))).collect();
    format!("'PB' || {}", digits.join(" || "))
}

/// PostgreSQL's format for the stored time text (`{T}` in the generators).
pub const PG_TIME: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'";

macro_rules! seed_rows {
    ($pool:expr, $d:expr, $ws:expr, $partners:expr, $referrals:expr, $deals:expr) => {{
        let sql = |t: &str, n: usize| {
            t.replace("{N}", &n.to_string())
                .replace("{P}", &$partners.to_string())
                .replace("{T}", PG_TIME)
                .replace("{CODE}", &referral_code())
        };
        for (template, n) in [($d.partners, $partners), ($d.referrals, $referrals), ($d.deals, $deals)] {
            sqlx::query(sqlx::AssertSqlSafe(sql(template, n))).bind($ws).execute(&$pool).await.unwrap();
        }
        // As a database in use would have: statistics for the planner (and
        // PostgreSQL's visibility map, which index-only scans need).
        sqlx::query(if $d.partners.starts_with("WITH") { "ANALYZE" } else { "VACUUM ANALYZE" }).execute(&$pool).await.unwrap();
    }};
}

/// Writes the generated rows into the database at `url`, with the dialect of its engine.
pub async fn seed(url: &str, dialects: (&Dialect, &Dialect), ws: &str, partners: usize, referrals: usize, deals: usize) {
    let (sqlite, postgres) = dialects;
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        seed_rows!(pool, sqlite, ws, partners, referrals, deals);
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        seed_rows!(pool, postgres, ws, partners, referrals, deals);
        pool.close().await;
    }
}

/// Runs `f` `n` times (after one warm-up run) and returns p50 and p99.
pub async fn time<F, Fut>(n: usize, mut f: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    f().await;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        samples.push(t.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.50), at(0.99))
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
