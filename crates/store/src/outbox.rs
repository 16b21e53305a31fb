//! The outbox: events waiting for fan-out, items waiting for delivery, the
//! attempt log.
//!
//! Rules: a claim is one UPDATE that bumps the attempt count and moves the
//! item's next attempt to the end of its lease; on PostgreSQL the rows are
//! chosen `FOR UPDATE SKIP LOCKED`, so concurrent dispatchers never take
//! the same item; on SQLite the single writer serialises claims. A finish
//! applies only while the item is still on the attempt it claimed.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::error::StoreError;
use partnerloop_app::outbox::{
    AfterAttempt, Attempt, Channel, NewOutboxItem, OutboxFilter, OutboxItem, OutboxStatus, OutboxStore, PendingEvent,
};
use partnerloop_app::store::{AuditEntry, Page, Paged, StoreResult};
use partnerloop_domain::ids::WorkspaceId;

use crate::errors::map;
use crate::records::insert_audit;
use crate::rows::bad;
use crate::time::{from_text, opt_from_text, to_text};
use crate::{Db, SqlStore, on_read, on_write};

const ITEM_COLUMNS: &str = "id, workspace_id, channel, idempotency_key, event, target, payload, status, attempts, next_attempt_at, last_error, created_at, delivered_at";

type ItemRow = (String, String, String, String, String, String, String, String, i64, String, Option<String>, String, Option<String>);

fn item(r: ItemRow) -> StoreResult<OutboxItem> {
    let (id, ws, channel, key, event, target, payload, status, attempts, next, last_error, created, delivered) = r;
    Ok(OutboxItem {
        id,
        workspace_id: WorkspaceId::from_string(ws),
        channel: Channel::parse("outbox.channel", &channel).map_err(bad)?,
        idempotency_key: key,
        event,
        target,
        payload: serde_json::from_str(&payload).map_err(|e| StoreError::Other(Box::new(e)))?,
        status: OutboxStatus::parse("outbox.status", &status).map_err(bad)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: from_text(&next)?,
        last_error,
        created_at: from_text(&created)?,
        delivered_at: opt_from_text(delivered.as_deref())?,
    })
}

/// Inserts items, skipping those whose key exists; returns how many were added.
macro_rules! insert_items {
    ($tx:expr, $items:expr) => {{
        let mut added = 0u64;
        for i in $items {
            let r = sqlx::query(
                "INSERT INTO outbox (id, workspace_id, channel, idempotency_key, event, target, payload, status, attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(&i.id)
            .bind(i.workspace_id.as_str())
            .bind(i.channel.as_str())
            .bind(&i.idempotency_key)
            .bind(&i.event)
            .bind(&i.target)
            .bind(i.payload.to_string())
            .bind(to_text(i.created_at))
            .execute(&mut *$tx)
            .await
            .map_err(map)?;
            added += r.rows_affected();
        }
        added
    }};
}

pub(crate) use insert_items;

#[async_trait]
impl OutboxStore for SqlStore {
    async fn pending_events(&self, limit: u32) -> StoreResult<Vec<PendingEvent>> {
        type Row = (String, String, String, String, String, String, String, Option<String>, Option<String>);
        let rows: Vec<Row> = on_read!(self, |pool| sqlx::query_as(
            "SELECT a.id, a.workspace_id, a.at, a.actor, a.action, a.entity, a.entity_id, a.before_state, a.after_state
             FROM pending_events p JOIN audit_log a ON a.id = p.audit_id ORDER BY p.audit_id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter()
            .map(|(id, ws, at, actor, action, entity, entity_id, before, after)| {
                let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
                Ok(PendingEvent {
                    audit_id: id,
                    workspace_id: WorkspaceId::from_string(ws),
                    entry: AuditEntry { at: from_text(&at)?, actor, action, entity, entity_id, before: json(before), after: json(after) },
                })
            })
            .collect()
    }

    async fn fan_out(&self, done: &[String], items: &[NewOutboxItem]) -> StoreResult<u64> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let added = insert_items!(tx, items);
            for id in done {
                sqlx::query("DELETE FROM pending_events WHERE audit_id = $1").bind(id).execute(&mut *tx).await.map_err(map)?;
            }
            tx.commit().await.map_err(map)?;
            Ok(added)
        })
    }

    async fn enqueue(&self, items: &[NewOutboxItem]) -> StoreResult<u64> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let added = insert_items!(tx, items);
            tx.commit().await.map_err(map)?;
            Ok(added)
        })
    }

    async fn enqueue_audited(&self, ws: &WorkspaceId, items: &[NewOutboxItem], audit: &AuditEntry) -> StoreResult<u64> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let added = insert_items!(tx, items);
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)?;
            Ok(added)
        })
    }

    async fn claim_outbox(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> StoreResult<Vec<OutboxItem>> {
        let lock = match self.db {
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Db::Sqlite { .. } => "",
        };
        let sql = format!(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $2
                          ORDER BY next_attempt_at LIMIT $3{lock})
             RETURNING {ITEM_COLUMNS}"
        );
        let rows: Vec<ItemRow> = on_write!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(to_text(lease_until))
            .bind(to_text(now))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(map)?);
        rows.into_iter().map(item).collect()
    }

    async fn finish_outbox(&self, id: &str, attempt: &Attempt, after: AfterAttempt, error: Option<&str>) -> StoreResult<()> {
        let (status, next, delivered) = match after {
            AfterAttempt::Delivered => ("delivered", attempt.at, Some(to_text(attempt.at))),
            AfterAttempt::RetryAt(t) => ("pending", t, None),
            AfterAttempt::Dead => ("dead", attempt.at, None),
        };
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO outbox_attempts (outbox_id, attempt, at, ok, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (outbox_id, attempt) DO NOTHING",
            )
            .bind(id)
            .bind(i64::from(attempt.attempt))
            .bind(to_text(attempt.at))
            .bind(attempt.ok)
            .bind(attempt.status_code.map(i32::from))
            .bind(attempt.error.as_deref())
            .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            sqlx::query(
                "UPDATE outbox SET status = $1, next_attempt_at = $2, last_error = $3, delivered_at = $4
                 WHERE id = $5 AND attempts = $6 AND status = 'pending'",
            )
            .bind(status)
            .bind(to_text(next))
            .bind(error)
            .bind(delivered)
            .bind(id)
            .bind(i64::from(attempt.attempt))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            tx.commit().await.map_err(map)
        })
    }

    async fn next_outbox_due(&self) -> StoreResult<Option<Timestamp>> {
        let next: Option<String> =
            on_read!(self, |pool| sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'")
                .fetch_one(pool)
                .await
                .map_err(map)?);
        opt_from_text(next.as_deref())
    }

    async fn outbox_item(&self, ws: &WorkspaceId, id: &str) -> StoreResult<OutboxItem> {
        let sql = format!("SELECT {ITEM_COLUMNS} FROM outbox WHERE workspace_id = $1 AND id = $2");
        let row: ItemRow = on_read!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(ws.as_str())
            .bind(id)
            .fetch_one(pool)
            .await
            .map_err(map)?);
        item(row)
    }

    async fn list_outbox(&self, ws: &WorkspaceId, f: &OutboxFilter, page: &Page) -> StoreResult<Paged<OutboxItem>> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM outbox WHERE workspace_id = $1 AND id > $2
               AND ($3 IS NULL OR channel = $3) AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR target = $5)
             ORDER BY id LIMIT $6"
        );
        let rows: Vec<ItemRow> = on_read!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(ws.as_str())
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(f.channel.map(|c| c.as_str()))
            .bind(f.status.map(|s| s.as_str()))
            .bind(f.target.as_deref())
            .bind(i64::from(page.limit) + 1)
            .fetch_all(pool)
            .await
            .map_err(map)?);
        let items = rows.into_iter().map(item).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_rows(items, page.limit, |i| i.id.clone()))
    }

    async fn outbox_attempts(&self, ws: &WorkspaceId, id: &str) -> StoreResult<Vec<Attempt>> {
        type Row = (i64, String, bool, Option<i32>, Option<String>, i64);
        let rows: Vec<Row> = on_read!(self, |pool| sqlx::query_as(
            "SELECT t.attempt, t.at, t.ok, t.status_code, t.error, t.duration_ms FROM outbox_attempts t
             JOIN outbox o ON o.id = t.outbox_id WHERE o.workspace_id = $1 AND t.outbox_id = $2 ORDER BY t.attempt",
        )
        .bind(ws.as_str())
        .bind(id)
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter()
            .map(|(attempt, at, ok, code, error, ms)| {
                Ok(Attempt {
                    attempt: u32::try_from(attempt).unwrap_or(0),
                    at: from_text(&at)?,
                    ok,
                    status_code: code.and_then(|c| u16::try_from(c).ok()),
                    error,
                    duration_ms: u64::try_from(ms).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn retry_outbox(&self, ws: &WorkspaceId, id: &str, now: Timestamp, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let r = sqlx::query(
                "UPDATE outbox SET status = 'pending', next_attempt_at = $1 WHERE workspace_id = $2 AND id = $3 AND status = 'dead'",
            )
            .bind(to_text(now))
            .bind(ws.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if r.rows_affected() == 0 {
                return Err(StoreError::Stale);
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    async fn insert_webhook_endpoint(
        &self,
        ws: &WorkspaceId,
        e: &partnerloop_app::outbox::WebhookEndpoint,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.insert_webhook_endpoint_(ws, e, audit).await
    }
    async fn update_webhook_endpoint(
        &self,
        ws: &WorkspaceId,
        e: &partnerloop_app::outbox::WebhookEndpoint,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.update_webhook_endpoint_(ws, e, audit).await
    }
    async fn delete_webhook_endpoint(&self, ws: &WorkspaceId, id: &str, audit: &AuditEntry) -> StoreResult<()> {
        self.delete_webhook_endpoint_(ws, id, audit).await
    }
    async fn webhook_endpoint(&self, ws: &WorkspaceId, id: &str) -> StoreResult<partnerloop_app::outbox::WebhookEndpoint> {
        self.webhook_endpoints_(ws, Some(id)).await?.pop().ok_or(StoreError::NotFound)
    }
    async fn webhook_endpoints(&self, ws: &WorkspaceId) -> StoreResult<Vec<partnerloop_app::outbox::WebhookEndpoint>> {
        self.webhook_endpoints_(ws, None).await
    }
    async fn notification_settings(&self, ws: &WorkspaceId) -> StoreResult<Option<partnerloop_app::outbox::NotificationSettings>> {
        self.notification_settings_(ws).await
    }
    async fn put_notification_settings(
        &self,
        ws: &WorkspaceId,
        s: &partnerloop_app::outbox::NotificationSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.put_notification_settings_(ws, s, audit).await
    }
    async fn preferences(
        &self,
        ws: &WorkspaceId,
        partner: &partnerloop_domain::ids::PartnerId,
    ) -> StoreResult<Vec<partnerloop_app::outbox::Preference>> {
        self.preferences_(ws, partner).await
    }
    async fn put_preferences(
        &self,
        ws: &WorkspaceId,
        prefs: &[partnerloop_app::outbox::Preference],
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.put_preferences_(ws, prefs, audit).await
    }
    async fn opted_out(
        &self,
        ws: &WorkspaceId,
        topic: partnerloop_app::outbox::Topic,
    ) -> StoreResult<Vec<partnerloop_domain::ids::ContactId>> {
        let ids: Vec<String> = on_read!(self, |pool| sqlx::query_scalar(
            "SELECT contact_id FROM notification_preferences WHERE workspace_id = $1 AND topic = $2 AND NOT enabled"
        )
        .bind(ws.as_str())
        .bind(topic.as_str())
        .fetch_all(pool)
        .await
        .map_err(map)?);
        Ok(ids.into_iter().map(partnerloop_domain::ids::ContactId::from_string).collect())
    }
}
