//! partnerloop's storage adapter: one [`Store`] over SQLite or PostgreSQL,
//! chosen by the database URL's scheme at start.
//!
//! Rules of this crate:
//! - SQL is written once where it is portable. Placeholders are `$1, $2…`
//!   and must appear in ascending order of first use: SQLite numbers `$N`
//!   parameters by first appearance.
//! - Each query body is written once inside [`on_read!`]/[`on_write!`],
//!   which compile it for both engines; only engine-specific statements
//!   branch by hand.
//! - SQLite: WAL, a busy timeout, foreign keys on, `synchronous=FULL` by
//!   default. All writes go through a single-connection pool, so writers
//!   queue in-process instead of failing with SQLITE_BUSY; reads use a pool
//!   of their own and never wait for a writer.
//! - Every write method is one transaction, its audit row included.

use std::str::FromStr;
use std::time::Duration;

use partnerloop_app::error::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

mod crm;
mod enablement;
mod errors;
mod group_commit;
mod idempotency;
mod import;
mod inbound;
mod ledger;
mod ledger_bulk;
mod ledger_linear;
mod metrics;
mod notification_settings;
mod onboarding;
mod outbox;
mod payments;
mod payouts;
mod plan_usage;
mod portal_lists;
mod records;
mod recruitment;
mod referral_rows;
mod referral_writes;
mod register_batch;
mod rows;
mod scheduled;
mod settings_cache;
mod sign_in;
mod staff;
mod staff_admin;
mod store_impl;
mod tiers;
mod time;

pub use errors::UNIQUE_CONSTRAINTS;
pub use group_commit::RegistrationBatches;

/// How an SQLite database makes writes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSync {
    /// An acknowledged write survives power loss (the default).
    Full,
    /// Faster; a power loss may lose the last transactions, never corrupts.
    Normal,
}

impl FromStr for SqliteSync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(SqliteSync::Full),
            "normal" => Ok(SqliteSync::Normal),
            _ => Err(format!("'{s}' is not one of: full, normal")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub sqlite_synchronous: SqliteSync,
    /// Connections per process (PostgreSQL pool; SQLite read pool).
    pub max_connections: u32,
    pub busy_timeout: Duration,
    /// Most registrations stored in one group commit (1 turns grouping off).
    pub group_commit_max: usize,
    /// The SQLite writer's page cache, in MiB.
    pub sqlite_writer_cache_mib: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sqlite_synchronous: SqliteSync::Full,
            max_connections: 8,
            busy_timeout: Duration::from_secs(5),
            group_commit_max: group_commit::MAX_BATCH,
            sqlite_writer_cache_mib: 64,
        }
    }
}

pub(crate) enum Db {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres(PgPool),
}

/// The SQL store. Cheap to clone (pools are shared).
pub struct SqlStore {
    pub(crate) db: Db,
    pub(crate) registrations: tokio::sync::mpsc::Sender<group_commit::RegisterJob>,
    pub(crate) registration_batches: std::sync::Arc<group_commit::BatchCounters>,
    pub(crate) rules_cache: settings_cache::TtlCache<String, partnerloop_domain::rules::Rules>,
    pub(crate) labels_cache: settings_cache::TtlCache<String, std::collections::BTreeMap<String, String>>,
    pub(crate) workspace_cache: settings_cache::TtlCache<String, partnerloop_app::store::Workspace>,
    /// SQLite: how to open a connection that checkpoints the WAL.
    pub(crate) checkpointer: Option<SqliteConnectOptions>,
}

/// Runs `$body` with `$p` bound to the pool that serves reads.
macro_rules! on_read {
    ($self:expr, |$p:ident| $body:expr) => {
        match &$self.db {
            $crate::Db::Sqlite { read: $p, .. } => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}

/// Runs `$body` with `$p` bound to the pool that takes writes.
macro_rules! on_write {
    ($self:expr, |$p:ident| $body:expr) => {
        match &$self.db {
            $crate::Db::Sqlite { write: $p, .. } => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}
pub(crate) use {on_read, on_write};

/// The writer's automatic checkpoint, in WAL pages (64 MiB instead of
/// SQLite's 4 MiB: a page rewritten many times between checkpoints, a hot
/// index page, is copied to the file once).
macro_rules! wal_autocheckpoint {
    () => {
        "16384"
    };
}
pub(crate) use wal_autocheckpoint;

/// A writer connection set up for one bulk write (see [`bulk_writer!`]).
/// If it is dropped before [`finish_bulk!`] restored the writer's settings
/// (an error, a cancelled request), it is closed instead of going back to
/// the pool, so that those settings never reach other writes.
pub(crate) struct BulkWriter<DB: sqlx::Database> {
    pub(crate) conn: sqlx::pool::PoolConnection<DB>,
    pub(crate) altered: bool,
}

impl<DB: sqlx::Database> Drop for BulkWriter<DB> {
    fn drop(&mut self) {
        if self.altered {
            self.conn.close_on_drop();
        }
    }
}

/// A connection of the writer pool `$pool` for one bulk write (a
/// backfill set, a payout batch). On SQLite (`$sqlite`) its commit leaves
/// the WAL's checkpoint to [`SqlStore::checkpoint_in_background`] — the
/// writer does not first copy the whole write into the database file —
/// and the statements `$pragma` set what else the write needs (only what
/// [`finish_bulk!`] restores). Statements run on `&mut *writer.conn`.
macro_rules! bulk_writer {
    ($pool:expr, $sqlite:expr $(, $pragma:literal)*) => {{
        let mut writer = $crate::BulkWriter { conn: $pool.acquire().await.map_err($crate::errors::map)?, altered: $sqlite };
        if $sqlite {
            sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut *writer.conn).await.map_err($crate::errors::map)?;
            $(sqlx::query($pragma).execute(&mut *writer.conn).await.map_err($crate::errors::map)?;)*
        }
        writer
    }};
}
pub(crate) use bulk_writer;

/// Gives a [`bulk_writer!`] connection back to the pool with the writer's
/// own settings (foreign keys on, the automatic checkpoint), once its
/// transaction is over: the same connection, its page cache warm, serves
/// the next writes. Never fails the write, which is already committed or
/// rolled back: if the settings cannot be restored, the connection is
/// closed instead (see [`BulkWriter`]) and the failure logged.
macro_rules! finish_bulk {
    ($writer:expr) => {{
        let mut writer = $writer;
        if writer.altered {
            let restored: Result<(), sqlx::Error> = async {
                sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *writer.conn).await?;
                sqlx::query(concat!("PRAGMA wal_autocheckpoint = ", $crate::wal_autocheckpoint!())).execute(&mut *writer.conn).await?;
                Ok(())
            }
            .await;
            match restored {
                Ok(()) => writer.altered = false,
                Err(e) => tracing::warn!(error = %e, "could not restore the writer's settings after a bulk write; closing its connection"),
            }
        }
        drop(writer);
    }};
}
pub(crate) use finish_bulk;

/// Whether a URL names a database this store can open, and which engine.
pub fn engine_of(url: &str) -> Result<&'static str, String> {
    if url.starts_with("sqlite:") {
        Ok("sqlite")
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok("postgres")
    } else {
        Err("must start with sqlite:// or postgres://".into())
    }
}

impl SqlStore {
    /// Opens the database named by `url` (`sqlite://PATH` or `postgres://…`).
    /// An SQLite file is created when missing.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let mut checkpointer = None;
        let db = match engine_of(url).map_err(|e| StoreError::Other(e.into()))? {
            "sqlite" => {
                let sync = match options.sqlite_synchronous {
                    SqliteSync::Full => SqliteSynchronous::Full,
                    SqliteSync::Normal => SqliteSynchronous::Normal,
                };
                let base = SqliteConnectOptions::from_str(url)
                    .map_err(errors::map)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(sync)
                    .busy_timeout(options.busy_timeout)
                    .foreign_keys(true);
                // SQLite's default page cache (2 MiB) thrashes on large
                // indexes: the writer keeps 64 MiB (`sqlite_writer_cache_mib`),
                // readers 16 MiB each and share a memory map of the file.
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(
                        base.clone()
                            .pragma("cache_size", format!("-{}", u64::from(options.sqlite_writer_cache_mib.max(2)) * 1024))
                            .pragma("wal_autocheckpoint", wal_autocheckpoint!())
                            // `PRAGMA optimize` after a bulk write samples at most
                            // this many rows per index: milliseconds, not a scan.
                            .pragma("analysis_limit", "1000"),
                    )
                    .await
                    .map_err(errors::map)?;
                let read = SqlitePoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .connect_with(base.clone().read_only(true).pragma("cache_size", "-16384").pragma("mmap_size", "268435456"))
                    .await
                    .map_err(errors::map)?;
                checkpointer = Some(base.clone().create_if_missing(false));
                Db::Sqlite { read, write }
            }
            _ => {
                let opts = PgConnectOptions::from_str(url).map_err(errors::map)?;
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await
                    .map_err(errors::map)?;
                Db::Postgres(pool)
            }
        };
        let registration_batches = std::sync::Arc::new(group_commit::BatchCounters::default());
        let registrations = group_commit::spawn(&db, options.group_commit_max.max(1), registration_batches.clone());
        Ok(Self {
            db,
            registrations,
            registration_batches,
            rules_cache: settings_cache::TtlCache::new(),
            labels_cache: settings_cache::TtlCache::new(),
            workspace_cache: settings_cache::TtlCache::new(),
            checkpointer,
        })
    }

    /// Applies pending migrations. Safe to run from several processes at
    /// once on PostgreSQL (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite { write, .. } => {
                // SQLite has no advisory lock: a second process migrating the
                // same file at once fails on the first's tables. It then finds
                // the migration recorded and succeeds on a retry.
                let mut attempt = 0;
                loop {
                    match sqlx::migrate!("./migrations/sqlite").run(write).await {
                        Ok(()) => return Ok(()),
                        Err(_) if attempt < 5 => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                        }
                        Err(e) => return Err(StoreError::Other(Box::new(e))),
                    }
                }
            }
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await.map_err(|e| StoreError::Other(Box::new(e))),
        }
    }

    /// How the registration writer stored its batches since start: on
    /// SQLite a batch that falls back to one registration at a time is
    /// worth knowing about (it is correct, only slower).
    pub fn registration_batches(&self) -> RegistrationBatches {
        self.registration_batches.read()
    }

    /// After a bulk write (a CSV import; a backfill set does the same on its
    /// own connection): on SQLite the planner's statistics follow the
    /// tables' new sizes (`PRAGMA optimize`: cheap when nothing changed
    /// much, bounded by the writer's `analysis_limit`) — stale ones once
    /// made a payout batch walk an index in random order. PostgreSQL's
    /// autovacuum analyzes by itself and its planner reads a table's size
    /// as it plans.
    pub(crate) async fn refresh_statistics(&self) -> Result<(), StoreError> {
        if let Db::Sqlite { write, .. } = &self.db {
            sqlx::query("PRAGMA optimize").execute(write).await.map_err(errors::map)?;
        }
        Ok(())
    }

    /// SQLite: copies the WAL's committed pages into the database file on a
    /// connection of its own, in the background, after a bulk write whose
    /// commit skipped it ([`bulk_writer!`]). A passive checkpoint: it never
    /// waits for readers or the writer, which go on meanwhile; what it
    /// leaves is copied by the next one (the writer's automatic checkpoint
    /// included). The write was durable in the WAL at its commit.
    pub(crate) fn checkpoint_in_background(&self) {
        let Some(options) = self.checkpointer.clone() else { return };
        tokio::spawn(async move {
            use sqlx::{ConnectOptions, Connection};
            let done = match options.connect().await {
                Ok(mut conn) => {
                    let done = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await.map(|_| ());
                    let _ = conn.close().await;
                    done
                }
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "background WAL checkpoint failed; the writer's next automatic one will copy the pages");
            }
        });
    }

    /// Whether the writer's connection enforces foreign keys (always on
    /// PostgreSQL): a backfill set turns them off for its transaction and
    /// on again after it, or closes the connection (see `finish_bulk!`).
    /// For the tests.
    #[doc(hidden)]
    pub async fn writer_enforces_foreign_keys(&self) -> Result<bool, StoreError> {
        match &self.db {
            Db::Sqlite { write, .. } => {
                let on: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(write).await.map_err(errors::map)?;
                Ok(on == 1)
            }
            Db::Postgres(_) => Ok(true),
        }
    }

    /// Closes every connection (graceful shutdown).
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// Column names and portable types of every table, for the test that
    /// keeps the two engines' schemas identical.
    pub async fn schema_outline(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut cols: Vec<(String, String, String)> = match &self.db {
            Db::Sqlite { read, .. } => sqlx::query_as(
                "SELECT m.name, p.name, CASE WHEN p.pk = 1 AND lower(p.type) = 'integer' THEN 'bigint' ELSE lower(p.type) END
                 FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
            )
            .fetch_all(read)
            .await
            .map_err(errors::map)?,
            Db::Postgres(pool) => sqlx::query_as(
                "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%'",
            )
            .fetch_all(pool)
            .await
            .map_err(errors::map)?,
        };
        for c in &mut cols {
            c.2 = match c.2.as_str() {
                "text" => "text",
                "bigint" => "bigint",
                "integer" => "integer",
                "boolean" => "boolean",
                // File bytes: BLOB on SQLite, BYTEA on PostgreSQL.
                "blob" | "bytea" => "bytes",
                other => other,
            }
            .to_owned();
        }
        cols.sort();
        Ok(cols)
    }
}
