//! Staff user management: invitations, roles, disabling.
//!
//! Rules: a role or status change first locks the workspace's row (an
//! UPDATE that changes nothing), so concurrent changes of one workspace's
//! staff run one after the other; the change is undone (the transaction
//! dropped) when it leaves no enabled admin. Disabling revokes the user's
//! sessions and uses up its pending sign-in links in the same transaction.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::error::StoreError;
use partnerloop_app::outbox::NewOutboxItem;
use partnerloop_app::staff::{NewStaffLink, StaffRole, StaffUser};
use partnerloop_app::staff_admin::{StaffAdminStore, StaffChange};
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_domain::ids::WorkspaceId;

use crate::errors::map;
use crate::outbox::insert_items;
use crate::records::insert_audit;
use crate::time::{from_text, to_text};
use crate::{SqlStore, on_read, on_write};

/// Locks the workspace row, applies `$change` (a block using `tx`), and
/// commits unless no enabled admin is left.
macro_rules! guarded {
    ($self:expr, $ws:expr, $audit:expr, |$tx:ident| $change:block) => {
        on_write!($self, |pool| {
            let mut $tx = pool.begin().await.map_err(map)?;
            sqlx::query("UPDATE workspaces SET name = name WHERE id = $1").bind($ws.as_str()).execute(&mut *$tx).await.map_err(map)?;
            $change
            let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staff_users WHERE workspace_id = $1 AND role = 'admin' AND NOT disabled")
                .bind($ws.as_str())
                .fetch_one(&mut *$tx)
                .await
                .map_err(map)?;
            if admins == 0 {
                // Dropped without commit: nothing changes.
                return Ok(StaffChange::LastAdmin);
            }
            insert_audit!($tx, $ws, $audit);
            $tx.commit().await.map_err(map)?;
            Ok(StaffChange::Done)
        })
    };
}

#[async_trait]
impl StaffAdminStore for SqlStore {
    async fn invite_staff_user(&self, u: &StaffUser, l: &NewStaffLink, mail: &NewOutboxItem, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO staff_users (id, workspace_id, email, role, password_hash, disabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, NULL, $5, $6, $6)",
            )
            .bind(&u.id)
            .bind(u.workspace_id.as_str())
            .bind(&u.email)
            .bind(u.role.as_str())
            .bind(u.disabled)
            .bind(to_text(u.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            sqlx::query(
                "INSERT INTO staff_sign_in_links (token_hash, workspace_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&l.token_hash)
            .bind(u.workspace_id.as_str())
            .bind(&u.id)
            .bind(to_text(u.created_at))
            .bind(to_text(l.expires_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_items!(tx, std::slice::from_ref(mail));
            insert_audit!(tx, u.workspace_id, audit);
            tx.commit().await.map_err(map)?;
            Ok(())
        })
    }

    async fn set_staff_role(&self, ws: &WorkspaceId, id: &str, role: StaffRole, audit: &AuditEntry) -> StoreResult<StaffChange> {
        guarded!(self, ws, audit, |tx| {
            let done = sqlx::query("UPDATE staff_users SET role = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4")
                .bind(role.as_str())
                .bind(to_text(audit.at))
                .bind(ws.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        })
    }

    async fn set_staff_disabled(&self, ws: &WorkspaceId, id: &str, disabled: bool, audit: &AuditEntry) -> StoreResult<StaffChange> {
        guarded!(self, ws, audit, |tx| {
            let done = sqlx::query("UPDATE staff_users SET disabled = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4")
                .bind(disabled)
                .bind(to_text(audit.at))
                .bind(ws.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            if disabled {
                sqlx::query("UPDATE staff_sessions SET revoked_at = $1 WHERE workspace_id = $2 AND user_id = $3 AND revoked_at IS NULL")
                    .bind(to_text(audit.at))
                    .bind(ws.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
                sqlx::query("UPDATE staff_sign_in_links SET used_at = $1 WHERE workspace_id = $2 AND user_id = $3 AND used_at IS NULL")
                    .bind(to_text(audit.at))
                    .bind(ws.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
            }
        })
    }

    async fn staff_last_sign_ins(&self, ws: &WorkspaceId) -> StoreResult<Vec<(String, Timestamp)>> {
        let rows: Vec<(String, Option<String>)> = on_read!(self, |pool| sqlx::query_as(
            "SELECT user_id, MAX(created_at) FROM staff_sessions WHERE workspace_id = $1 GROUP BY user_id"
        )
        .bind(ws.as_str())
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter().filter_map(|(id, at)| at.map(|at| from_text(&at).map(|t| (id, t)))).collect()
    }
}
