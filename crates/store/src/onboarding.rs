//! The onboarding checklist's items and the partners' ticks.
//!
//! Rules: every query names the workspace, so an item id of another
//! workspace is not found. A tick that changes nothing (ticked twice)
//! writes no audit row.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::error::StoreError;
use partnerloop_app::onboarding::{AutoCheck, OnboardingItem, OnboardingStore};
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_domain::ids::{PartnerId, WorkspaceId};

use crate::errors::map;
use crate::records::insert_audit;
use crate::time::{from_text, to_text};
use crate::{SqlStore, on_read, on_write};

type ItemRow = (String, String, i64, String, String, Option<String>, Option<String>, String, String);

fn item((id, ws, sort_order, title, description, link, auto, created, updated): ItemRow) -> StoreResult<OnboardingItem> {
    let auto = AutoCheck::parse("auto", auto.as_deref().unwrap_or("")).map_err(|e| StoreError::Other(e.to_string().into()))?;
    Ok(OnboardingItem {
        id,
        workspace_id: WorkspaceId::from_string(ws),
        position: sort_order,
        title,
        description,
        link,
        auto,
        created_at: from_text(&created)?,
        updated_at: from_text(&updated)?,
    })
}

#[async_trait]
impl OnboardingStore for SqlStore {
    async fn onboarding_items(&self, ws: &WorkspaceId) -> StoreResult<Vec<OnboardingItem>> {
        let rows: Vec<ItemRow> = on_read!(self, |pool| sqlx::query_as(
            "SELECT id, workspace_id, sort_order, title, description, link, auto, created_at, updated_at FROM onboarding_items
             WHERE workspace_id = $1 ORDER BY sort_order, id"
        )
        .bind(ws.as_str())
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter().map(item).collect()
    }

    async fn insert_onboarding_item(&self, i: &OnboardingItem, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            // The workspace row's lock serialises concurrent adds on
            // PostgreSQL, so that each gets its own next position.
            sqlx::query("UPDATE workspaces SET name = name WHERE id = $1")
                .bind(i.workspace_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            sqlx::query(
                "INSERT INTO onboarding_items (id, workspace_id, sort_order, title, description, link, auto, created_at, updated_at)
                 SELECT $1, $2, COALESCE(MAX(sort_order), 0) + 1, $3, $4, $5, $6, $7, $8 FROM onboarding_items WHERE workspace_id = $2",
            )
            .bind(&i.id)
            .bind(i.workspace_id.as_str())
            .bind(&i.title)
            .bind(&i.description)
            .bind(i.link.as_deref())
            .bind(i.auto.map(|a| a.as_str()))
            .bind(to_text(i.created_at))
            .bind(to_text(i.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, i.workspace_id, audit);
            tx.commit().await.map_err(map)?;
            Ok(())
        })
    }

    async fn update_onboarding_item(&self, i: &OnboardingItem, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let done = sqlx::query(
                "UPDATE onboarding_items SET title = $1, description = $2, link = $3, auto = $4, updated_at = $5
                 WHERE workspace_id = $6 AND id = $7",
            )
            .bind(&i.title)
            .bind(&i.description)
            .bind(i.link.as_deref())
            .bind(i.auto.map(|a| a.as_str()))
            .bind(to_text(i.updated_at))
            .bind(i.workspace_id.as_str())
            .bind(&i.id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit!(tx, i.workspace_id, audit);
            tx.commit().await.map_err(map)?;
            Ok(())
        })
    }

    async fn delete_onboarding_item(&self, ws: &WorkspaceId, id: &str, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query("DELETE FROM onboarding_progress WHERE workspace_id = $1 AND item_id = $2")
                .bind(ws.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            let done = sqlx::query("DELETE FROM onboarding_items WHERE workspace_id = $1 AND id = $2")
                .bind(ws.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)?;
            Ok(())
        })
    }

    async fn move_onboarding_item(&self, ws: &WorkspaceId, id: &str, up: bool, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let mine: i64 = sqlx::query_scalar("SELECT sort_order FROM onboarding_items WHERE workspace_id = $1 AND id = $2")
                .bind(ws.as_str())
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map)?;
            let neighbour: Option<(String, i64)> = if up {
                sqlx::query_as(
                    "SELECT id, sort_order FROM onboarding_items WHERE workspace_id = $1 AND sort_order < $2 ORDER BY sort_order DESC LIMIT 1",
                )
            } else {
                sqlx::query_as(
                    "SELECT id, sort_order FROM onboarding_items WHERE workspace_id = $1 AND sort_order > $2 ORDER BY sort_order LIMIT 1",
                )
            }
            .bind(ws.as_str())
            .bind(mine)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
            let Some((other, theirs)) = neighbour else {
                return Ok(());
            };
            for (item, to) in [(id, theirs), (other.as_str(), mine)] {
                sqlx::query("UPDATE onboarding_items SET sort_order = $1 WHERE workspace_id = $2 AND id = $3")
                    .bind(to)
                    .bind(ws.as_str())
                    .bind(item)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)?;
            Ok(())
        })
    }

    async fn onboarding_ticks(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Vec<(String, Timestamp)>> {
        let rows: Vec<(String, String)> = on_read!(self, |pool| sqlx::query_as(
            "SELECT item_id, done_at FROM onboarding_progress WHERE workspace_id = $1 AND partner_id = $2"
        )
        .bind(ws.as_str())
        .bind(partner.as_str())
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter().map(|(id, at)| Ok((id, from_text(&at)?))).collect()
    }

    async fn tick_onboarding_item(
        &self,
        ws: &WorkspaceId,
        partner: &PartnerId,
        item: &str,
        done: bool,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let known: Option<String> = sqlx::query_scalar("SELECT id FROM onboarding_items WHERE workspace_id = $1 AND id = $2")
                .bind(ws.as_str())
                .bind(item)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
            if known.is_none() {
                return Err(StoreError::NotFound);
            }
            let changed = if done {
                sqlx::query(
                    "INSERT INTO onboarding_progress (workspace_id, partner_id, item_id, done_at, done_by) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (partner_id, item_id) DO NOTHING",
                )
                .bind(ws.as_str())
                .bind(partner.as_str())
                .bind(item)
                .bind(to_text(audit.at))
                .bind(&audit.actor)
                .execute(&mut *tx)
                .await
                .map_err(map)?
            } else {
                sqlx::query("DELETE FROM onboarding_progress WHERE workspace_id = $1 AND partner_id = $2 AND item_id = $3")
                    .bind(ws.as_str())
                    .bind(partner.as_str())
                    .bind(item)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?
            };
            if changed.rows_affected() > 0 {
                insert_audit!(tx, ws, audit);
            }
            tx.commit().await.map_err(map)?;
            Ok(())
        })
    }
}
