//! The raw one-row-per-commit rate of the database, the yardstick for
//! write throughput: how many single-row transactions per second the
//! engine makes durable with partnerloop's own settings (SQLite: WAL,
//! `synchronous=FULL`). `scripts/load.sh` prints it beside the HTTP POST
//! rate measured in the same run.
//!
//! `cargo bench --bench commit_rate` — SQLite always; PostgreSQL too when
//! `PARTNERLOOP_BENCH_POSTGRES_URL` is set. `PARTNERLOOP_BENCH_SECONDS`
//! (default 5) bounds each measurement.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

const CREATE: &str =
    "CREATE TABLE bench_rows (id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL)";
const INSERT: &str = "INSERT INTO bench_rows (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4)";

fn seconds() -> Duration {
    let s = std::env::var("PARTNERLOOP_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5u64);
    Duration::from_secs(s.clamp(1, 600))
}

macro_rules! measure {
    ($pool:expr, $limit:expr) => {{
        let started = Instant::now();
        let mut n: u64 = 0;
        while started.elapsed() < $limit {
            let mut tx = $pool.begin().await.expect("begin");
            sqlx::query(INSERT)
                .bind(format!("row_{n}"))
                .bind("wks_bench")
                .bind("A partner name of realistic length")
                .bind("2026-11-25T00:00:00.000000Z")
                .execute(&mut *tx)
                .await
                .expect("insert");
            tx.commit().await.expect("commit");
            n += 1;
        }
        n as f64 / started.elapsed().as_secs_f64()
    }};
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks harness-less benches for a list
    }
    let limit = seconds();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("commit_rate.db");
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .expect("url")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.expect("open SQLite");
    sqlx::query(CREATE).execute(&pool).await.expect("create");
    let rate = measure!(pool, limit);
    println!("raw_commit_rate engine=sqlite synchronous=FULL rows_per_second={rate:.0}");

    if let Ok(url) = std::env::var("PARTNERLOOP_BENCH_POSTGRES_URL") {
        let pool = PgPoolOptions::new().max_connections(1).connect(&url).await.expect("open PostgreSQL");
        sqlx::query("DROP TABLE IF EXISTS bench_rows").execute(&pool).await.expect("drop");
        sqlx::query(CREATE).execute(&pool).await.expect("create");
        let rate = measure!(pool, limit);
        sqlx::query("DROP TABLE bench_rows").execute(&pool).await.expect("drop");
        println!("raw_commit_rate engine=postgres synchronous_commit=on rows_per_second={rate:.0}");
    }
}
