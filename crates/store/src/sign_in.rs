//! Sign-in links, portal sessions and status-link versions.
//!
//! Rules: a link is redeemed by one UPDATE guarded by `used_at IS NULL`
//! and its expiry, together with the session insert, in one transaction:
//! of concurrent redemptions exactly one gets a session.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::signin::{Holder, SignInStore};
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_domain::ids::{ContactId, PartnerId, WorkspaceId};
use partnerloop_domain::referral::ReferralId;

use crate::errors::map;
use crate::records::insert_audit;
use crate::time::to_text;
use crate::{SqlStore, on_read, on_write};

fn holder((ws, partner, contact): (String, String, String)) -> Holder {
    Holder {
        workspace_id: WorkspaceId::from_string(ws),
        partner_id: PartnerId::from_string(partner),
        contact_id: ContactId::from_string(contact),
    }
}

#[async_trait]
impl SignInStore for SqlStore {
    async fn insert_sign_in_link(&self, token_hash: &str, h: &Holder, now: Timestamp, expires_at: Timestamp) -> StoreResult<()> {
        on_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO sign_in_links (token_hash, workspace_id, partner_id, contact_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(token_hash)
            .bind(h.workspace_id.as_str())
            .bind(h.partner_id.as_str())
            .bind(h.contact_id.as_str())
            .bind(to_text(now))
            .bind(to_text(expires_at))
            .execute(pool)
            .await
            .map_err(map)?;
            Ok(())
        })
    }

    async fn redeem_sign_in_link(
        &self,
        token_hash: &str,
        session_hash: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Option<Holder>> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let row: Option<(String, String, String)> = sqlx::query_as(
                "UPDATE sign_in_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
                 RETURNING workspace_id, partner_id, contact_id",
            )
            .bind(to_text(now))
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
            let Some(h) = row.map(holder) else {
                return Ok(None);
            };
            sqlx::query(
                "INSERT INTO portal_sessions (token_hash, workspace_id, partner_id, contact_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(session_hash)
            .bind(h.workspace_id.as_str())
            .bind(h.partner_id.as_str())
            .bind(h.contact_id.as_str())
            .bind(to_text(now))
            .bind(to_text(until))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            tx.commit().await.map_err(map)?;
            Ok(Some(h))
        })
    }

    async fn portal_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Holder>> {
        let row: Option<(String, String, String)> = on_read!(self, |pool| sqlx::query_as(
            "SELECT s.workspace_id, s.partner_id, s.contact_id FROM portal_sessions s JOIN partners p ON p.id = s.partner_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND p.status <> 'archived'",
        )
        .bind(token_hash)
        .bind(to_text(now))
        .fetch_optional(pool)
        .await
        .map_err(map)?);
        Ok(row.map(holder))
    }

    async fn end_portal_session(&self, token_hash: &str) -> StoreResult<bool> {
        on_write!(self, |pool| {
            let r = sqlx::query("DELETE FROM portal_sessions WHERE token_hash = $1").bind(token_hash).execute(pool).await.map_err(map)?;
            Ok(r.rows_affected() > 0)
        })
    }

    async fn prune_sign_in(&self, before: Timestamp) -> StoreResult<u64> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let mut gone = 0;
            for sql in [
                "DELETE FROM sign_in_links WHERE expires_at < $1",
                "DELETE FROM portal_sessions WHERE expires_at < $1",
                "DELETE FROM staff_sign_in_links WHERE expires_at < $1",
                "DELETE FROM staff_sessions WHERE expires_at < $1",
            ] {
                gone += sqlx::query(sql).bind(to_text(before)).execute(&mut *tx).await.map_err(map)?.rows_affected();
            }
            tx.commit().await.map_err(map)?;
            Ok(gone)
        })
    }

    async fn contact_holder(&self, contact: &ContactId) -> StoreResult<Option<Holder>> {
        let row: Option<(String, String, String)> =
            on_read!(self, |pool| sqlx::query_as("SELECT workspace_id, partner_id, id FROM partner_contacts WHERE id = $1")
                .bind(contact.as_str())
                .fetch_optional(pool)
                .await
                .map_err(map)?);
        Ok(row.map(holder))
    }

    async fn status_link_version(&self, referral: &ReferralId) -> StoreResult<u32> {
        let v: Option<i64> = on_read!(self, |pool| sqlx::query_scalar("SELECT version FROM status_link_versions WHERE referral_id = $1")
            .bind(referral.as_str())
            .fetch_optional(pool)
            .await
            .map_err(map)?);
        Ok(v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0))
    }

    async fn revoke_status_links(&self, ws: &WorkspaceId, referral: &ReferralId, audit: &AuditEntry) -> StoreResult<u32> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let v: i64 = sqlx::query_scalar(
                "INSERT INTO status_link_versions (referral_id, version) VALUES ($1, 1)
                 ON CONFLICT (referral_id) DO UPDATE SET version = status_link_versions.version + 1 RETURNING version",
            )
            .bind(referral.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)?;
            Ok(u32::try_from(v).unwrap_or(u32::MAX))
        })
    }
}
