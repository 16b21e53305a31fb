//! Commission plans and tiers as the console shows them: which plan is the
//! default, and how many partners use each plan and hold each tier.
//!
//! Counts leave archived partners out: they earn nothing and hold no place
//! on the ladder that matters.

use partnerloop_app::error::StoreError;
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_domain::ids::{PlanId, WorkspaceId};

use crate::errors::map;
use crate::records::insert_audit;
use crate::time::to_text;
use crate::{SqlStore, on_read, on_write};

impl SqlStore {
    pub(crate) async fn set_default_plan_(&self, ws: &WorkspaceId, id: &PlanId, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM commission_plans WHERE workspace_id = $1 AND id = $2")
                .bind(ws.as_str())
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            sqlx::query("UPDATE commission_plans SET is_default = FALSE WHERE workspace_id = $1 AND is_default AND id <> $2")
                .bind(ws.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            sqlx::query("UPDATE commission_plans SET is_default = TRUE WHERE workspace_id = $1 AND id = $2")
                .bind(ws.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn partner_counts_by_plan_(&self, ws: &WorkspaceId) -> StoreResult<Vec<(Option<String>, i64)>> {
        on_read!(self, |pool| {
            sqlx::query_as(
                "SELECT commission_plan_id, COUNT(*) FROM partners WHERE workspace_id = $1 AND status <> 'archived'
                 GROUP BY commission_plan_id",
            )
            .bind(ws.as_str())
            .fetch_all(pool)
            .await
            .map_err(map)
        })
    }

    pub(crate) async fn partner_counts_by_tier_(&self, ws: &WorkspaceId) -> StoreResult<Vec<(Option<String>, i64)>> {
        on_read!(self, |pool| {
            sqlx::query_as("SELECT tier, COUNT(*) FROM partners WHERE workspace_id = $1 AND status <> 'archived' GROUP BY tier")
                .bind(ws.as_str())
                .fetch_all(pool)
                .await
                .map_err(map)
        })
    }
}
