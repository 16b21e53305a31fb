//! The fuzzy company-name matcher: one in-memory [`NameIndex`] per
//! workspace, fed by the store's append-only name log. Before each search
//! the index catches up with the log, so it reflects every committed
//! change this server or another one made (on PostgreSQL, a transaction
//! committing out of sequence order may be seen one search late; exact
//! domain and email conflicts never depend on this index).

use std::collections::HashMap;
use std::sync::RwLock;

use partnerloop_domain::fuzzy::{NameIndex, NameMatch};
use partnerloop_domain::ids::WorkspaceId;
use partnerloop_domain::names::fold_company_name;

use crate::store::{Store, StoreResult};

const LOG_PAGE: u32 = 20_000;

#[derive(Default)]
struct WorkspaceIndex {
    index: NameIndex,
    last_seq: i64,
}

#[derive(Default)]
pub struct NameMatcher {
    /// Searches share a read lock; only applying new log entries writes.
    workspaces: RwLock<HashMap<WorkspaceId, WorkspaceIndex>>,
}

impl NameMatcher {
    pub fn new() -> Self {
        Self::default()
    }

    fn last_seq(&self, ws: &WorkspaceId) -> i64 {
        self.workspaces.read().map(|m| m.get(ws).map_or(0, |w| w.last_seq)).unwrap_or(0)
    }

    /// Applies every log entry newer than what this index has seen.
    pub async fn catch_up(&self, store: &dyn Store, ws: &WorkspaceId) -> StoreResult<()> {
        loop {
            let after = self.last_seq(ws);
            let entries = store.name_log_since(ws, after, LOG_PAGE).await?;
            let count = entries.len();
            if count == 0 && self.workspaces.read().is_ok_and(|m| m.contains_key(ws)) {
                return Ok(());
            }
            if let Ok(mut map) = self.workspaces.write() {
                let w = map.entry(ws.clone()).or_default();
                for e in entries {
                    if e.seq <= w.last_seq {
                        continue;
                    }
                    if e.active {
                        w.index.insert(&e.entity_id, &fold_company_name(&e.name));
                    } else {
                        w.index.remove(&e.entity_id);
                    }
                    w.last_seq = e.seq;
                }
            }
            if count < LOG_PAGE as usize {
                return Ok(());
            }
        }
    }

    /// Names similar to `name` (not yet folded) at or above `threshold`.
    pub async fn search(
        &self,
        store: &dyn Store,
        ws: &WorkspaceId,
        name: &str,
        threshold: f64,
        limit: usize,
    ) -> StoreResult<Vec<NameMatch>> {
        self.catch_up(store, ws).await?;
        let folded = fold_company_name(name);
        Ok(self
            .workspaces
            .read()
            .map(|m| m.get(ws).map(|w| w.index.search(&folded, threshold, limit)).unwrap_or_default())
            .unwrap_or_default())
    }
}

/// The name-log key of a referral: it carries the partner, so that a
/// partner's own registrations are never its duplicates.
pub fn referral_key(partner_id: &str, referral_id: &str) -> String {
    format!("{partner_id}/{referral_id}")
}

/// The record id and, for a referral, its partner, of a name-log key.
pub fn parse_key(key: &str) -> (&str, Option<&str>) {
    match key.split_once('/') {
        Some((partner, referral)) => (referral, Some(partner)),
        None => (key, None),
    }
}
