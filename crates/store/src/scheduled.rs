//! What the notification schedule looks for: protection windows about to
//! end and open referrals that have not moved.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::notify::scheduled::ScheduleStore;
use partnerloop_app::store::StoreResult;
use partnerloop_domain::ids::WorkspaceId;
use partnerloop_domain::referral::Referral;

use crate::errors::map;
use crate::referral_rows::{LapsedRow, ReferralRow, referral_cols};
use crate::time::to_text;
use crate::{SqlStore, on_read, on_write};

#[async_trait]
impl ScheduleStore for SqlStore {
    async fn workspace_ids(&self) -> StoreResult<Vec<WorkspaceId>> {
        let ids: Vec<String> =
            on_read!(self, |pool| sqlx::query_scalar("SELECT id FROM workspaces ORDER BY id").fetch_all(pool).await.map_err(map)?);
        Ok(ids.into_iter().map(WorkspaceId::from_string).collect())
    }

    async fn referrals_expiring(&self, from: Timestamp, to: Timestamp, limit: u32) -> StoreResult<Vec<(WorkspaceId, Referral)>> {
        let rows: Vec<LapsedRow> = on_read!(self, |pool| sqlx::query_as(concat!(
            "SELECT workspace_id, ",
            referral_cols!(),
            " FROM referrals WHERE status = 'approved' AND protection_expires_at > $1 AND protection_expires_at <= $2
              ORDER BY protection_expires_at LIMIT $3"
        ))
        .bind(to_text(from))
        .bind(to_text(to))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter().map(|r| Ok((WorkspaceId::from_string(r.workspace_id), Referral::try_from(r.referral)?))).collect()
    }

    async fn digest_sent(&self, ws: &WorkspaceId, month: &str) -> StoreResult<bool> {
        let n: i64 = on_read!(self, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM instance_settings WHERE name = $1")
            .bind(format!("digest:{ws}:{month}"))
            .fetch_one(pool)
            .await
            .map_err(map)?);
        Ok(n > 0)
    }

    async fn mark_digest_sent(&self, ws: &WorkspaceId, month: &str) -> StoreResult<()> {
        on_write!(self, |pool| {
            sqlx::query("INSERT INTO instance_settings (name, value) VALUES ($1, 'sent') ON CONFLICT (name) DO NOTHING")
                .bind(format!("digest:{ws}:{month}"))
                .execute(pool)
                .await
                .map_err(map)?;
            Ok(())
        })
    }

    async fn stalled_referrals(&self, ws: &WorkspaceId, before: Timestamp, limit: u32) -> StoreResult<Vec<Referral>> {
        let rows: Vec<ReferralRow> = on_read!(self, |pool| sqlx::query_as(concat!(
            "SELECT ",
            referral_cols!(),
            " FROM referrals WHERE workspace_id = $1 AND status = 'approved' AND updated_at < $2 ORDER BY updated_at LIMIT $3"
        ))
        .bind(ws.as_str())
        .bind(to_text(before))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter().map(Referral::try_from).collect()
    }
}
