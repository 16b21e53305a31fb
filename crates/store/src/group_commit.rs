//! Group commit for registrations. Durable registrations are bounded by
//! commits (each one an fsync on SQLite with `synchronous=FULL`), so
//! concurrent registrations are queued to one writer task that stores as
//! many as are waiting (up to [`MAX_BATCH`]) in one transaction: each in a
//! savepoint of its own, so one failing registration never affects
//! another, and all acknowledged together once the commit is durable.
//! On SQLite the batch is first tried as a whole in a few multi-row
//! statements ([`crate::register_batch`]); if any of them fails, the batch
//! is stored one registration at a time as on PostgreSQL.
//! A registration is answered only after its batch committed.

use partnerloop_app::error::StoreError;
use partnerloop_app::matching::referral_key;
use partnerloop_app::referrals::{audit_view, claim_keys, decision_summary};
use partnerloop_app::store::{NewRegistration, StoreResult, TimelineEvent};
use partnerloop_domain::ids::WorkspaceId;
use partnerloop_domain::referral::{Outcome, Referral, ReferralStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{PgConnection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::Db;
use crate::errors::map;
use crate::records::insert_audit;
use crate::referral_rows::reasons_to_json;
use crate::referral_rows::{claim_holders, lose_claim};
use crate::referral_writes::{insert_claims, insert_deal, insert_events, is_claim_conflict, log_name, write_referral};
use crate::time::{opt_to_text, to_text};
use partnerloop_domain::deal::Deal;

pub(crate) const MAX_BATCH: usize = 128;

pub(crate) enum JobOutcome {
    Created(Box<Referral>),
    /// The partner already holds the account: that referral's id.
    Existing(String),
}

pub(crate) struct RegisterJob {
    pub ws: WorkspaceId,
    pub registration: NewRegistration,
    pub reply: oneshot::Sender<StoreResult<JobOutcome>>,
}

/// How the writer stored its batches so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistrationBatches {
    /// Batches stored whole by the SQLite fast path.
    pub whole: u64,
    /// Batches the fast path gave back, then stored one registration at a time.
    pub fell_back: u64,
}

#[derive(Default)]
pub(crate) struct BatchCounters {
    whole: AtomicU64,
    fell_back: AtomicU64,
}

impl BatchCounters {
    pub(crate) fn read(&self) -> RegistrationBatches {
        RegistrationBatches { whole: self.whole.load(Ordering::Relaxed), fell_back: self.fell_back.load(Ordering::Relaxed) }
    }
}

/// Starts the writer task of `db`; it ends when the last sender is dropped.
pub(crate) fn spawn(db: &Db, max_batch: usize, counters: Arc<BatchCounters>) -> mpsc::Sender<RegisterJob> {
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
    match db {
        Db::Sqlite { write, .. } => {
            tokio::spawn(run_sqlite(write.clone(), rx, max_batch, counters));
        }
        Db::Postgres(pool) => {
            tokio::spawn(run_postgres(pool.clone(), rx, max_batch, counters));
        }
    }
    tx
}

/// The whole batch at once, or `None` to store it one by one (nothing of
/// it written then).
async fn sqlite_whole(conn: &mut SqliteConnection, jobs: &[RegisterJob], counters: &BatchCounters) -> Option<Vec<JobOutcome>> {
    match crate::register_batch::store_batch(conn, jobs).await {
        Ok(outcomes) => {
            counters.whole.fetch_add(1, Ordering::Relaxed);
            Some(outcomes)
        }
        Err(e) => {
            tracing::info!(error = %e, registrations = jobs.len(), "a registration batch is stored one at a time");
            counters.fell_back.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// PostgreSQL has no whole-batch path: several servers may claim at once.
async fn postgres_whole(_: &mut PgConnection, _: &[RegisterJob], _: &BatchCounters) -> Option<Vec<JobOutcome>> {
    None
}

/// Stores one registration inside the open transaction `$tx`, in its own
/// savepoint. A lost claim (a concurrent registration of another partner
/// won the account) re-decides with that evidence.
macro_rules! register_one {
    ($tx:expr, $ws:expr, $registration:expr) => {{
        let ws: &WorkspaceId = $ws;
        let NewRegistration { mut referral, mut deal, mut events, mut audit, redecide, first_referral } = $registration;
        let result: StoreResult<JobOutcome> = async {
            let mut job = sqlx::Acquire::begin(&mut *$tx).await.map_err(map)?;
            if referral.status == ReferralStatus::Approved {
                if let Some(d) = &deal {
                    insert_deal!(job, ws, d);
                }
                write_referral!(insert, job, ws, &referral);
                match insert_claims!(job, ws, &referral) {
                    Ok(()) => {}
                    Err(e) if is_claim_conflict(&e) => {
                        // Only the deal and the referral are in the savepoint
                        // yet: undo them and start it again, rather than pay
                        // a second savepoint on every registration that wins.
                        job.rollback().await.map_err(map)?;
                        job = sqlx::Acquire::begin(&mut *$tx).await.map_err(map)?;
                        let keys = claim_keys(referral.company_domain.as_str(), referral.contact_email.as_str());
                        let holders = claim_holders!(&mut *job, ws, &keys, referral.updated_at);
                        let Some(winner) = holders.first() else { return Err(e) };
                        if winner.partner_id == referral.partner_id.as_str() {
                            job.commit().await.map_err(map)?;
                            return Ok(JobOutcome::Existing(winner.referral_id.clone()));
                        }
                        lose_claim(&mut referral, winner, &redecide);
                        deal = None;
                        audit.after = Some(audit_view(&referral));
                        write_referral!(insert, job, ws, &referral);
                    }
                    Err(e) => return Err(e),
                }
            } else {
                write_referral!(insert, job, ws, &referral);
            }
            let _ = &deal;
            events.push(TimelineEvent {
                at: referral.decision.decided_at,
                kind: "decided".into(),
                actor: "system:rules".into(),
                summary: decision_summary(&referral.decision),
            });
            insert_events!(job, ws, referral.id, &events);
            insert_audit!(job, ws, &audit);
            if referral.decision.outcome == Outcome::Approved {
                log_name!(job, ws, referral_key(referral.partner_id.as_str(), referral.id.as_str()), &referral.company_name, true);
            }
            if first_referral {
                sqlx::query("UPDATE partners SET first_referral_at = $1 WHERE workspace_id = $2 AND id = $3 AND first_referral_at IS NULL")
                    .bind(to_text(referral.created_at))
                    .bind(ws.as_str())
                    .bind(referral.partner_id.as_str())
                    .execute(&mut *job)
                    .await
                    .map_err(map)?;
            }
            job.commit().await.map_err(map)?;
            Ok(JobOutcome::Created(Box::new(referral)))
        }
        .await;
        result
    }};
}

macro_rules! batcher {
    ($name:ident, $pool:ty, $whole:ident) => {
        async fn $name(pool: $pool, mut rx: mpsc::Receiver<RegisterJob>, max_batch: usize, counters: Arc<BatchCounters>) {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < max_batch {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let mut tx = match pool.begin().await {
                    Ok(tx) => tx,
                    Err(e) => {
                        fail_all(jobs.into_iter().map(|j| j.reply), &e.to_string());
                        continue;
                    }
                };
                let mut results = Vec::with_capacity(jobs.len());
                if let Some(outcomes) = $whole(&mut tx, &jobs, &counters).await {
                    results.extend(jobs.into_iter().zip(outcomes).map(|(job, outcome)| (job.reply, Ok(outcome))));
                } else {
                    for job in jobs {
                        let outcome = register_one!(tx, &job.ws, job.registration);
                        results.push((job.reply, outcome));
                    }
                }
                match tx.commit().await {
                    Ok(()) => {
                        for (reply, outcome) in results {
                            let _ = reply.send(outcome);
                        }
                    }
                    Err(e) => fail_all(results.into_iter().map(|(r, _)| r), &e.to_string()),
                }
            }
        }
    };
}

batcher!(run_sqlite, sqlx::SqlitePool, sqlite_whole);
batcher!(run_postgres, sqlx::PgPool, postgres_whole);

fn fail_all(replies: impl Iterator<Item = oneshot::Sender<StoreResult<JobOutcome>>>, why: &str) {
    for reply in replies {
        let _ = reply.send(Err(StoreError::Other(format!("the registration batch failed to commit: {why}").into())));
    }
}
