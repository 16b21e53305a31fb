//! The enablement library: resources, their bytes, tiers and downloads.
//!
//! Rules: lists never read `resource_files`; a download reads the bytes,
//! writes its row and bumps the counter in one transaction, and only when
//! the resource is visible to the partner's tier (the same condition as
//! the partner's list, written once in [`VISIBLE`]).

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::enablement::{Content, EnablementStore, FileInfo, Resource, ResourceKind, Visibility};
use partnerloop_app::error::StoreError;
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_domain::ids::{PartnerId, WorkspaceId};

use crate::errors::map;
use crate::records::insert_audit;
use crate::time::{from_text, to_text};
use crate::{SqlStore, on_read, on_write};

macro_rules! resource_cols {
    () => {
        "r.id, r.workspace_id, r.title, r.description, r.kind, r.all_tiers, r.url, r.file_name, r.content_type, r.size_bytes, r.sha256, \
         r.downloads, r.created_at, r.updated_at"
    };
}

/// A partner of tier `$2` (NULL: none) sees resource `r`.
macro_rules! visible {
    () => {
        "(r.all_tiers OR EXISTS (SELECT 1 FROM resource_tiers t WHERE t.resource_id = r.id AND t.tier_slug = $2))"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    workspace_id: String,
    title: String,
    description: String,
    kind: String,
    all_tiers: bool,
    url: Option<String>,
    file_name: Option<String>,
    content_type: Option<String>,
    size_bytes: Option<i64>,
    sha256: Option<String>,
    downloads: i64,
    created_at: String,
    updated_at: String,
}

fn resource(r: Row, tiers: Vec<String>) -> StoreResult<Resource> {
    let kind = ResourceKind::parse("kind", &r.kind).map_err(|e| StoreError::Other(e.to_string().into()))?;
    let content = match (r.url, r.file_name) {
        (Some(url), _) => Content::Link(url),
        (None, Some(name)) => Content::File(FileInfo {
            name,
            content_type: r.content_type.unwrap_or_else(|| "application/octet-stream".into()),
            size: u64::try_from(r.size_bytes.unwrap_or(0)).unwrap_or(0),
            sha256: r.sha256.unwrap_or_default(),
        }),
        (None, None) => return Err(StoreError::Other(format!("resource {} has neither a file nor a link", r.id).into())),
    };
    Ok(Resource {
        id: r.id,
        workspace_id: WorkspaceId::from_string(r.workspace_id),
        title: r.title,
        description: r.description,
        kind,
        visibility: if r.all_tiers { Visibility::AllPartners } else { Visibility::Tiers(tiers) },
        content,
        downloads: r.downloads,
        created_at: from_text(&r.created_at)?,
        updated_at: from_text(&r.updated_at)?,
    })
}

impl SqlStore {
    /// Rows with their tier slugs (one more query for all of them).
    async fn with_tiers(&self, rows: Vec<Row>) -> StoreResult<Vec<Resource>> {
        let ws = match rows.first() {
            Some(r) => r.workspace_id.clone(),
            None => return Ok(vec![]),
        };
        let tiers: Vec<(String, String)> = on_read!(self, |pool| sqlx::query_as(
            "SELECT t.resource_id, t.tier_slug FROM resource_tiers t JOIN resources r ON r.id = t.resource_id
             WHERE r.workspace_id = $1 AND r.deleted_at IS NULL ORDER BY t.tier_slug"
        )
        .bind(&ws)
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter()
            .map(|r| {
                let mine = tiers.iter().filter(|(id, _)| *id == r.id).map(|(_, s)| s.clone()).collect();
                resource(r, mine)
            })
            .collect()
    }
}

#[async_trait]
impl EnablementStore for SqlStore {
    async fn insert_resource(&self, r: &Resource, bytes: Option<&[u8]>, audit: &AuditEntry) -> StoreResult<()> {
        let (url, file) = match &r.content {
            Content::Link(u) => (Some(u.as_str()), None),
            Content::File(f) => (None, Some(f)),
        };
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO resources (id, workspace_id, title, description, kind, all_tiers, url, file_name, content_type, size_bytes,
                 sha256, downloads, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $13)",
            )
            .bind(&r.id)
            .bind(r.workspace_id.as_str())
            .bind(&r.title)
            .bind(&r.description)
            .bind(r.kind.as_str())
            .bind(r.visibility == Visibility::AllPartners)
            .bind(url)
            .bind(file.map(|f| f.name.as_str()))
            .bind(file.map(|f| f.content_type.as_str()))
            .bind(file.map(|f| i64::try_from(f.size).unwrap_or(i64::MAX)))
            .bind(file.map(|f| f.sha256.as_str()))
            .bind(to_text(r.created_at))
            .bind(to_text(r.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if let Some(b) = bytes {
                sqlx::query("INSERT INTO resource_files (resource_id, workspace_id, bytes) VALUES ($1, $2, $3)")
                    .bind(&r.id)
                    .bind(r.workspace_id.as_str())
                    .bind(b)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
            }
            if let Visibility::Tiers(slugs) = &r.visibility {
                for s in slugs {
                    sqlx::query("INSERT INTO resource_tiers (resource_id, tier_slug) VALUES ($1, $2)")
                        .bind(&r.id)
                        .bind(s)
                        .execute(&mut *tx)
                        .await
                        .map_err(map)?;
                }
            }
            insert_audit!(tx, r.workspace_id, audit);
            tx.commit().await.map_err(map)?;
            Ok(())
        })
    }

    async fn resources(&self, ws: &WorkspaceId) -> StoreResult<Vec<Resource>> {
        let rows: Vec<Row> = on_read!(self, |pool| sqlx::query_as(concat!(
            "SELECT ",
            resource_cols!(),
            " FROM resources r WHERE r.workspace_id = $1 AND r.deleted_at IS NULL ORDER BY r.id DESC"
        ))
        .bind(ws.as_str())
        .fetch_all(pool)
        .await
        .map_err(map)?);
        self.with_tiers(rows).await
    }

    async fn resources_for_tier(&self, ws: &WorkspaceId, tier: Option<&str>) -> StoreResult<Vec<Resource>> {
        let rows: Vec<Row> = on_read!(self, |pool| sqlx::query_as(concat!(
            "SELECT ",
            resource_cols!(),
            " FROM resources r WHERE r.workspace_id = $1 AND r.deleted_at IS NULL AND ",
            visible!(),
            " ORDER BY r.id DESC"
        ))
        .bind(ws.as_str())
        .bind(tier)
        .fetch_all(pool)
        .await
        .map_err(map)?);
        self.with_tiers(rows).await
    }

    async fn resource(&self, ws: &WorkspaceId, id: &str) -> StoreResult<Resource> {
        let row: Row = on_read!(self, |pool| sqlx::query_as(concat!(
            "SELECT ",
            resource_cols!(),
            " FROM resources r WHERE r.workspace_id = $1 AND r.id = $2 AND r.deleted_at IS NULL"
        ))
        .bind(ws.as_str())
        .bind(id)
        .fetch_one(pool)
        .await
        .map_err(map)?);
        let mut all = self.with_tiers(vec![row]).await?;
        all.pop().ok_or(StoreError::NotFound)
    }

    async fn set_resource_visibility(&self, ws: &WorkspaceId, id: &str, v: &Visibility, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let done = sqlx::query(
                "UPDATE resources SET all_tiers = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4 AND deleted_at IS NULL",
            )
            .bind(*v == Visibility::AllPartners)
            .bind(to_text(audit.at))
            .bind(ws.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM resource_tiers WHERE resource_id = $1").bind(id).execute(&mut *tx).await.map_err(map)?;
            if let Visibility::Tiers(slugs) = v {
                for s in slugs {
                    sqlx::query("INSERT INTO resource_tiers (resource_id, tier_slug) VALUES ($1, $2)")
                        .bind(id)
                        .bind(s)
                        .execute(&mut *tx)
                        .await
                        .map_err(map)?;
                }
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)?;
            Ok(())
        })
    }

    async fn delete_resource(&self, ws: &WorkspaceId, id: &str, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let done = sqlx::query(
                "UPDATE resources SET deleted_at = $1, updated_at = $1 WHERE workspace_id = $2 AND id = $3 AND deleted_at IS NULL",
            )
            .bind(to_text(audit.at))
            .bind(ws.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM resource_files WHERE resource_id = $1").bind(id).execute(&mut *tx).await.map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)?;
            Ok(())
        })
    }

    async fn open_resource(
        &self,
        ws: &WorkspaceId,
        id: &str,
        partner: &PartnerId,
        tier: Option<&str>,
        download_id: &str,
        now: Timestamp,
    ) -> StoreResult<(Resource, Option<Vec<u8>>)> {
        let (row, bytes) = on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let row: Option<Row> = sqlx::query_as(concat!(
                "SELECT ",
                resource_cols!(),
                " FROM resources r WHERE r.workspace_id = $1 AND r.deleted_at IS NULL AND ",
                visible!(),
                " AND r.id = $3"
            ))
            .bind(ws.as_str())
            .bind(tier)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
            let Some(mut row) = row else {
                return Err(StoreError::NotFound);
            };
            let counted = sqlx::query("UPDATE resources SET downloads = downloads + 1 WHERE id = $1 AND deleted_at IS NULL")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            if counted.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            row.downloads += 1;
            sqlx::query("INSERT INTO resource_downloads (id, workspace_id, resource_id, partner_id, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(download_id)
                .bind(ws.as_str())
                .bind(id)
                .bind(partner.as_str())
                .bind(to_text(now))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            let bytes: Option<Vec<u8>> = match row.file_name {
                Some(_) => Some(
                    sqlx::query_scalar("SELECT bytes FROM resource_files WHERE resource_id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map)?,
                ),
                None => None,
            };
            tx.commit().await.map_err(map)?;
            (row, bytes)
        });
        let mut all = self.with_tiers(vec![row]).await?;
        Ok((all.pop().ok_or(StoreError::NotFound)?, bytes))
    }
}
