//! The outbox dispatcher: fans out pending events, claims due items under a
//! lease, delivers them concurrently, records every attempt.
//!
//! Rules: an item is claimed before it is sent (its attempt count goes up
//! and it is hidden for [`LEASE`]), so a crash mid-delivery means one more
//! attempt after the lease, never a lost item. A transient failure waits
//! [`backoff`]; a permanent one, or the [`MAX_ATTEMPTS`]th, is dead. When
//! idle the loop sleeps until the next due item or a poll interval, so an
//! idle server costs two indexed reads per interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use partnerloop_app::Store;
use partnerloop_app::notify::{NotifyConfig, fan_out_pending};
use partnerloop_app::outbox::{AfterAttempt, Attempt, Channel, LEASE, MAX_ATTEMPTS, OutboxItem, backoff};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::transport::{Failure, Transport};

/// Items claimed per round.
const BATCH: u32 = 128;
/// Deliveries in flight at once.
const CONCURRENCY: usize = 32;
/// Events fanned out per round.
const FANOUT_BATCH: u32 = 500;
/// Longest sleep while idle.
const POLL: Duration = Duration::from_millis(500);

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub events: u64,
    pub delivered: u64,
    pub retried: u64,
    pub dead: u64,
}

impl Round {
    pub fn idle(&self) -> bool {
        self.events == 0 && self.delivered == 0 && self.retried == 0 && self.dead == 0
    }
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    notify: NotifyConfig,
    mail: Arc<dyn Transport>,
    http: Arc<dyn Transport>,
    /// CRM writes; without a CRM set up, CRM items wait.
    crm: Option<Arc<dyn Transport>>,
    /// Wakes the loop early (a test, or a write that wants prompt delivery).
    pub wake: Arc<Notify>,
    lease: jiff::SignedDuration,
}

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, notify: NotifyConfig, mail: Arc<dyn Transport>, http: Arc<dyn Transport>) -> Self {
        Self { store, notify, mail, http, crm: None, wake: Arc::new(Notify::new()), lease: LEASE }
    }

    /// Delivers CRM items through `crm`.
    pub fn with_crm(mut self, crm: Arc<dyn Transport>) -> Self {
        self.crm = Some(crm);
        self
    }

    /// How long a claimed item stays hidden from other dispatchers.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = jiff::SignedDuration::try_from(lease).unwrap_or(LEASE);
        self
    }

    fn transport(&self, channel: Channel) -> Option<Arc<dyn Transport>> {
        match channel {
            Channel::Email => Some(self.mail.clone()),
            Channel::Webhook | Channel::Slack => Some(self.http.clone()),
            Channel::Crm => self.crm.clone(),
        }
    }

    /// Fans out every pending event, then delivers one batch of due items,
    /// as of `now`.
    pub async fn round(&self, now: Timestamp) -> anyhow::Result<Round> {
        let mut r = Round::default();
        loop {
            let n =
                fan_out_pending(self.store.as_ref(), &self.notify, now, FANOUT_BATCH).await.map_err(|e| anyhow::anyhow!("fan-out: {e}"))?;
            r.events += n;
            if n < u64::from(FANOUT_BATCH) {
                break;
            }
        }
        let items =
            self.store.claim_outbox(now, now + self.lease, BATCH).await.map_err(|e| anyhow::anyhow!("claiming outbox items: {e}"))?;
        let gate = Arc::new(Semaphore::new(CONCURRENCY));
        let mut running = JoinSet::new();
        for item in items {
            let Some(t) = self.transport(item.channel) else {
                // A CRM item without a CRM transport (not wired in this
                // process) waits out its lease and is claimed again.
                continue;
            };
            let store = self.store.clone();
            let gate = gate.clone();
            running.spawn(async move {
                let _permit = gate.acquire_owned().await;
                deliver_one(store.as_ref(), t.as_ref(), &item, now).await
            });
        }
        while let Some(done) = running.join_next().await {
            match done {
                Ok(Ok(AfterAttempt::Delivered)) => r.delivered += 1,
                Ok(Ok(AfterAttempt::RetryAt(_))) => r.retried += 1,
                Ok(Ok(AfterAttempt::Dead)) => r.dead += 1,
                Ok(Err(e)) => tracing::error!(error = %e, "recording a delivery failed; the item is retried after its lease"),
                Err(e) => tracing::error!(error = %e, "a delivery task panicked; the item is retried after its lease"),
            }
        }
        Ok(r)
    }

    /// Runs rounds at `now` until nothing is left to do now (tests, CLI).
    pub async fn drain(&self, now: Timestamp) -> anyhow::Result<Round> {
        let mut total = Round::default();
        loop {
            let r = self.round(now).await?;
            if r.idle() {
                return Ok(total);
            }
            total.events += r.events;
            total.delivered += r.delivered;
            total.retried += r.retried;
            total.dead += r.dead;
        }
    }

    /// The server's loop, until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let busy = match self.round(Timestamp::now()).await {
                Ok(r) => !r.idle(),
                Err(e) => {
                    tracing::error!(error = %e, "outbox round failed");
                    false
                }
            };
            if busy {
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::task::yield_now() => continue,
                }
            }
            let wait = match self.store.next_outbox_due().await {
                Ok(Some(t)) => Duration::try_from(t.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO).min(POLL),
                _ => POLL,
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Delivers one claimed item and records the attempt; returns what became of it.
async fn deliver_one(store: &dyn Store, t: &dyn Transport, item: &OutboxItem, now: Timestamp) -> anyhow::Result<AfterAttempt> {
    let started = Instant::now();
    let result = t.deliver(item).await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (attempt, after) = match &result {
        Ok(code) => {
            (Attempt { attempt: item.attempts, at: now, ok: true, status_code: *code, error: None, duration_ms }, AfterAttempt::Delivered)
        }
        Err(f) => {
            let after = match f {
                Failure::Permanent { .. } => AfterAttempt::Dead,
                Failure::Transient { .. } | Failure::Later { .. } if item.attempts >= MAX_ATTEMPTS => AfterAttempt::Dead,
                Failure::Transient { .. } => AfterAttempt::RetryAt(now + backoff(item.attempts, rand_jitter(&item.id))),
                Failure::Later { after, .. } => {
                    let asked = jiff::SignedDuration::try_from(*after).unwrap_or(jiff::SignedDuration::ZERO);
                    AfterAttempt::RetryAt(now + backoff(item.attempts, rand_jitter(&item.id)).max(asked))
                }
            };
            (
                Attempt {
                    attempt: item.attempts,
                    at: now,
                    ok: false,
                    status_code: f.code(),
                    error: Some(f.error().to_owned()),
                    duration_ms,
                },
                after,
            )
        }
    };
    match (&result, after) {
        (Ok(_), _) => tracing::debug!(id = %item.id, channel = item.channel.as_str(), event = %item.event, "delivered"),
        (Err(f), AfterAttempt::Dead) => {
            tracing::warn!(id = %item.id, channel = item.channel.as_str(), attempts = item.attempts, error = f.error(), "dead-lettered")
        }
        (Err(f), _) => {
            tracing::info!(id = %item.id, channel = item.channel.as_str(), attempts = item.attempts, error = f.error(), "will retry")
        }
    }
    store.finish_outbox(&item.id, &attempt, after, attempt.error.as_deref()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(after)
}

/// Jitter that spreads retries of items failed together; derived from the
/// id so it needs no random source.
fn rand_jitter(id: &str) -> u32 {
    id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 1000
}
