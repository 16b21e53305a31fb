//! Referral writes: registration (with the first-registration-wins claim),
//! state changes, and the rules of engagement.

use partnerloop_app::error::StoreError;
use partnerloop_app::matching::referral_key;
use partnerloop_app::referrals::claim_keys;
use partnerloop_app::store::{AuditEntry, ReferralChange, StoreResult, TimelineEvent};
use partnerloop_domain::deal::Deal;
use partnerloop_domain::ids::WorkspaceId;
use partnerloop_domain::referral::{Referral, ReferralStatus};
use partnerloop_domain::rules::Rules;

use crate::errors::map;
use crate::records::insert_audit;
use crate::referral_rows::{actions_to_json, reasons_to_json};
use crate::time::{opt_to_text, to_text};
use crate::{SqlStore, on_write};

/// Inserts every column of a new referral (changes go through
/// `change_referral_`, guarded by the expected status and update time).
macro_rules! write_referral {
    (insert, $tx:expr, $ws:expr, $r:expr) => {{
        let r: &Referral = $r;
        sqlx::query(concat!(
            "INSERT INTO referrals (workspace_id, ",
            crate::referral_rows::referral_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)"
        ))
        .bind($ws.as_str())
        .bind(r.id.as_str())
        .bind(r.partner_id.as_str())
        .bind(r.status.as_str())
        .bind(r.channel.as_str())
        .bind(&r.company_name)
        .bind(r.company_domain.as_str())
        .bind(&r.contact_name)
        .bind(r.contact_email.as_str())
        .bind(r.contact_title.as_deref())
        .bind(r.context.as_deref())
        .bind(r.estimated_value.map(|m| m.minor()))
        .bind(r.estimated_value.map(|m| m.currency().code().to_owned()))
        .bind(r.decision.outcome.as_str())
        .bind(reasons_to_json(&r.decision.reasons))
        .bind(to_text(r.decision.decided_at))
        .bind(&r.decision.decided_by)
        .bind(opt_to_text(r.protection.map(|p| p.starts_at)))
        .bind(opt_to_text(r.protection.map(|p| p.expires_at)))
        .bind(r.stage.map(|s| s.as_str()))
        .bind(r.deal_id.as_ref().map(|d| d.as_str()))
        .bind(r.amount.map(|m| m.minor()))
        .bind(r.amount.map(|m| m.currency().code().to_owned()))
        .bind(opt_to_text(r.closed_at))
        .bind(r.dispute.map(|d| d.as_str()))
        .bind(to_text(r.created_at))
        .bind(to_text(r.updated_at))
        .execute(&mut *$tx)
        .await
        .map_err(map)?
    }};
}

macro_rules! insert_deal {
    ($tx:expr, $ws:expr, $d:expr) => {{
        let d: &Deal = $d;
        sqlx::query(
            "INSERT INTO deals (workspace_id, id, name, company_name, company_domain, stage, amount_minor, currency, source, owner_email, created_at, closed_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind($ws.as_str())
        .bind(d.id.as_str())
        .bind(&d.name)
        .bind(&d.company_name)
        .bind(d.company_domain.as_ref().map(|c| c.as_str()))
        .bind(d.stage.as_str())
        .bind(d.amount.minor())
        .bind(d.amount.currency().code())
        .bind(d.source.as_str())
        .bind(d.owner_email.as_ref().map(|e| e.as_str()))
        .bind(to_text(d.created_at))
        .bind(opt_to_text(d.closed_at))
        .bind(to_text(d.updated_at))
        .execute(&mut *$tx)
        .await
        .map_err(map)?;
    }};
}

/// Claims the referral's keys, first dropping claims of the same keys
/// whose protection has already ended (their referral is not active any
/// more). A key held by an active claim fails the insert on the unique
/// index `protection_claims_key_uq` — the database, not this code, decides
/// who was first.
macro_rules! insert_claims {
    ($tx:expr, $ws:expr, $r:expr) => {{
        let r: &Referral = $r;
        let keys = claim_keys(r.company_domain.as_str(), r.contact_email.as_str());
        let expires = to_text(r.protection.map(|p| p.expires_at).unwrap_or(r.updated_at));
        sqlx::query("DELETE FROM protection_claims WHERE workspace_id = $1 AND match_key IN ($2, $3, $4) AND expires_at <= $5")
            .bind($ws.as_str())
            .bind(crate::referral_rows::nth_key(&keys, 0))
            .bind(crate::referral_rows::nth_key(&keys, 1))
            .bind(crate::referral_rows::nth_key(&keys, 2))
            .bind(to_text(r.updated_at))
            .execute(&mut *$tx)
            .await
            .map_err(map)?;
        let mut q =
            sqlx::QueryBuilder::new("INSERT INTO protection_claims (workspace_id, match_key, referral_id, partner_id, expires_at) ");
        q.push_values(&keys, |mut b, key| {
            b.push_bind($ws.as_str())
                .push_bind(key.as_str())
                .push_bind(r.id.as_str())
                .push_bind(r.partner_id.as_str())
                .push_bind(expires.as_str());
        });
        let inserted: Result<(), StoreError> = q.build().execute(&mut *$tx).await.map(|_| ()).map_err(map);
        inserted
    }};
}

macro_rules! insert_events {
    ($tx:expr, $ws:expr, $referral_id:expr, $events:expr) => {{
        let events: &[TimelineEvent] = $events;
        if !events.is_empty() {
            // One id base per write keeps a write's events in order.
            let base = partnerloop_app::ids::event_id(events[0].at);
            let mut q = sqlx::QueryBuilder::new("INSERT INTO referral_events (id, workspace_id, referral_id, at, kind, actor, summary) ");
            q.push_values(events.iter().enumerate(), |mut b, (n, e)| {
                b.push_bind(format!("{base}_{n:03}"))
                    .push_bind($ws.as_str())
                    .push_bind($referral_id.as_str())
                    .push_bind(to_text(e.at))
                    .push_bind(e.kind.as_str())
                    .push_bind(e.actor.as_str())
                    .push_bind(e.summary.as_str());
            });
            q.build().execute(&mut *$tx).await.map_err(map)?;
        }
    }};
}

pub(crate) use {insert_claims, insert_deal, insert_events, write_referral};

macro_rules! log_name {
    ($tx:expr, $ws:expr, $entity:expr, $name:expr, $active:expr) => {{
        sqlx::query("INSERT INTO name_index_log (workspace_id, entity_id, name, active) VALUES ($1, $2, $3, $4)")
            .bind($ws.as_str())
            .bind($entity)
            .bind($name)
            .bind($active)
            .execute(&mut *$tx)
            .await
            .map_err(map)?;
    }};
}
pub(crate) use log_name;

pub(crate) fn is_claim_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict { constraint } if constraint == "protection_claims_key_uq")
}

impl SqlStore {
    pub(crate) async fn put_rules_(&self, ws: &WorkspaceId, rules: &Rules, audit: &AuditEntry) -> StoreResult<()> {
        let bp = (rules.fuzzy_threshold * 10_000.0).round() as i32;
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO rules_of_engagement (workspace_id, protection_days, auto_approve, fuzzy_threshold_bp, actions, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (workspace_id) DO UPDATE SET protection_days = excluded.protection_days, auto_approve = excluded.auto_approve,
                 fuzzy_threshold_bp = excluded.fuzzy_threshold_bp, actions = excluded.actions, updated_at = excluded.updated_at",
            )
            .bind(ws.as_str())
            .bind(i32::try_from(rules.protection_days).unwrap_or(i32::MAX))
            .bind(rules.auto_approve)
            .bind(bp)
            .bind(actions_to_json(rules))
            .bind(to_text(audit.at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn change_referral_(&self, ws: &WorkspaceId, c: ReferralChange) -> StoreResult<()> {
        let r = &c.after;
        let key = referral_key(r.partner_id.as_str(), r.id.as_str());
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            if let Some(d) = &c.deal_insert {
                insert_deal!(tx, ws, d);
            }
            let done = sqlx::query(
                "UPDATE referrals SET status = $1, outcome = $2, reasons = $3, decided_at = $4, decided_by = $5, protection_starts_at = $6,
                 protection_expires_at = $7, stage = $8, deal_id = $9, amount_minor = $10, amount_currency = $11, closed_at = $12,
                 dispute_status = $13, updated_at = $14
                 WHERE workspace_id = $15 AND id = $16 AND status = $17 AND updated_at = $18",
            )
            .bind(r.status.as_str())
            .bind(r.decision.outcome.as_str())
            .bind(reasons_to_json(&r.decision.reasons))
            .bind(to_text(r.decision.decided_at))
            .bind(&r.decision.decided_by)
            .bind(opt_to_text(r.protection.map(|p| p.starts_at)))
            .bind(opt_to_text(r.protection.map(|p| p.expires_at)))
            .bind(r.stage.map(|s| s.as_str()))
            .bind(r.deal_id.as_ref().map(|d| d.as_str()))
            .bind(r.amount.map(|m| m.minor()))
            .bind(r.amount.map(|m| m.currency().code().to_owned()))
            .bind(opt_to_text(r.closed_at))
            .bind(r.dispute.map(|d| d.as_str()))
            .bind(to_text(r.updated_at))
            .bind(ws.as_str())
            .bind(r.id.as_str())
            .bind(c.before_status.as_str())
            .bind(to_text(c.before_updated_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Stale);
            }
            if c.claim {
                insert_claims!(tx, ws, r)?;
                log_name!(tx, ws, &key, &r.company_name, true);
            } else if c.release {
                sqlx::query("DELETE FROM protection_claims WHERE referral_id = $1")
                    .bind(r.id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
                log_name!(tx, ws, &key, &r.company_name, false);
            } else if let (ReferralStatus::Approved, Some(p)) = (r.status, r.protection) {
                sqlx::query("UPDATE protection_claims SET expires_at = $1 WHERE referral_id = $2")
                    .bind(to_text(p.expires_at))
                    .bind(r.id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
            }
            if let Some(d) = &c.deal_update {
                sqlx::query("UPDATE deals SET stage = $1, amount_minor = $2, currency = $3, closed_at = $4, updated_at = $5 WHERE workspace_id = $6 AND id = $7")
                    .bind(d.stage.as_str())
                    .bind(d.amount.minor())
                    .bind(d.amount.currency().code())
                    .bind(opt_to_text(d.closed_at))
                    .bind(to_text(d.updated_at))
                    .bind(ws.as_str())
                    .bind(d.id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
            }
            if let Some(a) = &c.customer_account {
                let inserted = sqlx::query(
                    "INSERT INTO accounts (workspace_id, id, name, domain, status, owner_email, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, 'customer', $5, $6, $7)
                     ON CONFLICT (workspace_id, domain) DO UPDATE SET status = 'customer', updated_at = excluded.updated_at",
                )
                .bind(ws.as_str())
                .bind(a.id.as_str())
                .bind(&a.name)
                .bind(a.domain.as_str())
                .bind(a.owner_email.as_ref().map(|e| e.as_str()))
                .bind(to_text(a.created_at))
                .bind(to_text(a.updated_at))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
                if inserted.rows_affected() == 1 {
                    log_name!(tx, ws, a.id.as_str(), &a.name, true);
                }
            }
            insert_events!(tx, ws, r.id, &c.events);
            crate::ledger::apply_ledger!(tx, ws, &c.ledger, c.audit.at, &c.audit.actor);
            insert_audit!(tx, ws, &c.audit);
            tx.commit().await.map_err(map)
        })
    }
}
