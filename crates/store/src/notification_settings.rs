//! Webhook endpoints, a workspace's notification settings and partner
//! contacts' mail preferences.

use partnerloop_app::error::StoreError;
use partnerloop_app::outbox::{NotificationSettings, Preference, Topic, WebhookEndpoint};
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_domain::ids::{ContactId, PartnerId, WorkspaceId};

use crate::errors::map;
use crate::records::insert_audit;
use crate::time::{from_text, to_text};
use crate::{SqlStore, on_read, on_write};

type EndpointRow = (String, String, Option<String>, String, String, bool, String, String);

fn endpoint(r: EndpointRow) -> StoreResult<WebhookEndpoint> {
    let (id, url, description, events, secret_sealed, active, created, updated) = r;
    Ok(WebhookEndpoint {
        id,
        url,
        description,
        events: serde_json::from_str(&events).map_err(|e| StoreError::Other(Box::new(e)))?,
        secret_sealed,
        active,
        created_at: from_text(&created)?,
        updated_at: from_text(&updated)?,
    })
}

impl SqlStore {
    pub(crate) async fn insert_webhook_endpoint_(&self, ws: &WorkspaceId, e: &WebhookEndpoint, audit: &AuditEntry) -> StoreResult<()> {
        let events = serde_json::to_string(&e.events).unwrap_or_else(|_| "[]".into());
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, workspace_id, url, description, events, secret_sealed, active, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&e.id)
            .bind(ws.as_str())
            .bind(&e.url)
            .bind(e.description.as_deref())
            .bind(&events)
            .bind(&e.secret_sealed)
            .bind(e.active)
            .bind(to_text(e.created_at))
            .bind(to_text(e.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn update_webhook_endpoint_(&self, ws: &WorkspaceId, e: &WebhookEndpoint, audit: &AuditEntry) -> StoreResult<()> {
        let events = serde_json::to_string(&e.events).unwrap_or_else(|_| "[]".into());
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let r = sqlx::query(
                "UPDATE webhook_endpoints SET url = $1, description = $2, events = $3, secret_sealed = $4, active = $5, updated_at = $6
                 WHERE workspace_id = $7 AND id = $8",
            )
            .bind(&e.url)
            .bind(e.description.as_deref())
            .bind(&events)
            .bind(&e.secret_sealed)
            .bind(e.active)
            .bind(to_text(e.updated_at))
            .bind(ws.as_str())
            .bind(&e.id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn delete_webhook_endpoint_(&self, ws: &WorkspaceId, id: &str, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let r = sqlx::query("DELETE FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2")
                .bind(ws.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn webhook_endpoints_(&self, ws: &WorkspaceId, only: Option<&str>) -> StoreResult<Vec<WebhookEndpoint>> {
        let rows: Vec<EndpointRow> = on_read!(self, |pool| sqlx::query_as(
            "SELECT id, url, description, events, secret_sealed, active, created_at, updated_at FROM webhook_endpoints
             WHERE workspace_id = $1 AND ($2 IS NULL OR id = $2) ORDER BY id",
        )
        .bind(ws.as_str())
        .bind(only)
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter().map(endpoint).collect()
    }

    pub(crate) async fn notification_settings_(&self, ws: &WorkspaceId) -> StoreResult<Option<NotificationSettings>> {
        let row: Option<(Option<String>, String, i64, String)> = on_read!(self, |pool| sqlx::query_as(
            "SELECT slack_sealed, manager_emails, stalled_days, updated_at FROM notification_settings WHERE workspace_id = $1",
        )
        .bind(ws.as_str())
        .fetch_optional(pool)
        .await
        .map_err(map)?);
        row.map(|(slack_sealed, managers, stalled, updated)| {
            Ok(NotificationSettings {
                slack_sealed,
                manager_emails: serde_json::from_str(&managers).map_err(|e| StoreError::Other(Box::new(e)))?,
                stalled_days: u32::try_from(stalled).unwrap_or(14),
                updated_at: from_text(&updated)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn put_notification_settings_(
        &self,
        ws: &WorkspaceId,
        s: &NotificationSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let managers = serde_json::to_string(&s.manager_emails).unwrap_or_else(|_| "[]".into());
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO notification_settings (workspace_id, slack_sealed, manager_emails, stalled_days, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (workspace_id) DO UPDATE SET slack_sealed = excluded.slack_sealed, manager_emails = excluded.manager_emails,
                   stalled_days = excluded.stalled_days, updated_at = excluded.updated_at",
            )
            .bind(ws.as_str())
            .bind(s.slack_sealed.as_deref())
            .bind(&managers)
            .bind(i64::from(s.stalled_days))
            .bind(to_text(s.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn preferences_(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Vec<Preference>> {
        let rows: Vec<(String, String, bool)> = on_read!(self, |pool| sqlx::query_as(
            "SELECT p.contact_id, p.topic, p.enabled FROM notification_preferences p
             JOIN partner_contacts c ON c.id = p.contact_id WHERE p.workspace_id = $1 AND c.partner_id = $2 ORDER BY p.contact_id, p.topic",
        )
        .bind(ws.as_str())
        .bind(partner.as_str())
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter()
            .map(|(contact, topic, enabled)| {
                let topic = Topic::parse("notification_preferences.topic", &topic).map_err(crate::rows::bad)?;
                Ok(Preference { contact_id: ContactId::from_string(contact), topic, enabled })
            })
            .collect()
    }

    pub(crate) async fn put_preferences_(&self, ws: &WorkspaceId, prefs: &[Preference], audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            for p in prefs {
                sqlx::query(
                    "INSERT INTO notification_preferences (workspace_id, contact_id, topic, enabled) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (contact_id, topic) DO UPDATE SET enabled = excluded.enabled",
                )
                .bind(ws.as_str())
                .bind(p.contact_id.as_str())
                .bind(p.topic.as_str())
                .bind(p.enabled)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }
}
