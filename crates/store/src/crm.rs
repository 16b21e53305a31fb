//! CRM connections, per-referral sync state, webhook dedupe and the local
//! cache of CRM accounts and open deals (in `accounts` and `deals`).

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::crm::{CrmAccount, CrmKind};
use partnerloop_app::crm_sync::{CachedDeal, CrmConnection, CrmLink, CrmProgress, CrmSettings, CrmStore, SyncStatus};
use partnerloop_app::error::StoreError;
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_domain::deal::Stage;
use partnerloop_domain::ids::WorkspaceId;
use partnerloop_domain::referral::ReferralId;

use crate::errors::map;
use crate::records::insert_audit;
use crate::referral_writes::log_name;
use crate::rows::bad;
use crate::time::{from_text, opt_from_text, opt_to_text, to_text};
use crate::{SqlStore, on_read, on_write};

/// Rows per multi-row statement of the cache.
const CHUNK: usize = 200;

fn kind(s: &str) -> StoreResult<CrmKind> {
    match s {
        "hubspot" => Ok(CrmKind::Hubspot),
        "salesforce" => Ok(CrmKind::Salesforce),
        other => Err(StoreError::Other(format!("unknown CRM kind {other:?}").into())),
    }
}

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    workspace_id: String,
    kind: String,
    settings: String,
    secrets_sealed: String,
    poll_cursor: Option<String>,
    polled_at: Option<String>,
    backfill_cursor: Option<String>,
    backfilled_at: Option<String>,
    last_error: Option<String>,
    created_at: String,
    updated_at: String,
}

impl TryFrom<ConnectionRow> for CrmConnection {
    type Error = StoreError;
    fn try_from(r: ConnectionRow) -> StoreResult<Self> {
        let settings: CrmSettings = serde_json::from_str(&r.settings).map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(CrmConnection {
            workspace_id: WorkspaceId::from_string(r.workspace_id),
            kind: kind(&r.kind)?,
            settings,
            secrets_sealed: r.secrets_sealed,
            poll_cursor: r.poll_cursor,
            polled_at: opt_from_text(r.polled_at.as_deref())?,
            backfill_cursor: r.backfill_cursor,
            backfilled_at: opt_from_text(r.backfilled_at.as_deref())?,
            last_error: r.last_error,
            created_at: from_text(&r.created_at)?,
            updated_at: from_text(&r.updated_at)?,
        })
    }
}

macro_rules! connection_cols {
    () => {
        "workspace_id, kind, settings, secrets_sealed, poll_cursor, polled_at, backfill_cursor, backfilled_at, last_error, created_at, updated_at"
    };
}

type LinkRow = (String, String, Option<String>, Option<String>, Option<String>, String, Option<String>, Option<String>, String);

fn link(r: LinkRow) -> StoreResult<CrmLink> {
    let (referral_id, k, company_id, contact_id, deal_id, status, last_error, synced_at, updated_at) = r;
    Ok(CrmLink {
        referral_id: ReferralId::from_string(referral_id),
        kind: kind(&k)?,
        company_id,
        contact_id,
        deal_id,
        status: SyncStatus::parse("status", &status).map_err(bad)?,
        last_error,
        synced_at: opt_from_text(synced_at.as_deref())?,
        updated_at: from_text(&updated_at)?,
    })
}

#[async_trait]
impl CrmStore for SqlStore {
    async fn crm_connection(&self, ws: &WorkspaceId) -> StoreResult<Option<CrmConnection>> {
        let row: Option<ConnectionRow> =
            on_read!(self, |pool| sqlx::query_as(concat!("SELECT ", connection_cols!(), " FROM crm_connections WHERE workspace_id = $1"))
                .bind(ws.as_str())
                .fetch_optional(pool)
                .await
                .map_err(map)?);
        row.map(CrmConnection::try_from).transpose()
    }

    async fn crm_connections(&self) -> StoreResult<Vec<CrmConnection>> {
        let rows: Vec<ConnectionRow> =
            on_read!(self, |pool| sqlx::query_as(concat!("SELECT ", connection_cols!(), " FROM crm_connections ORDER BY workspace_id"))
                .fetch_all(pool)
                .await
                .map_err(map)?);
        rows.into_iter().map(CrmConnection::try_from).collect()
    }

    async fn put_crm_connection(&self, c: &CrmConnection, audit: &AuditEntry) -> StoreResult<()> {
        let settings = serde_json::to_string(&c.settings).map_err(|e| StoreError::Other(Box::new(e)))?;
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(concat!(
                "INSERT INTO crm_connections (",
                connection_cols!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (workspace_id) DO UPDATE SET kind = excluded.kind, settings = excluded.settings,
                   secrets_sealed = excluded.secrets_sealed, poll_cursor = excluded.poll_cursor, polled_at = excluded.polled_at,
                   backfill_cursor = excluded.backfill_cursor, backfilled_at = excluded.backfilled_at,
                   last_error = excluded.last_error, updated_at = excluded.updated_at"
            ))
            .bind(c.workspace_id.as_str())
            .bind(c.kind.as_str())
            .bind(&settings)
            .bind(&c.secrets_sealed)
            .bind(c.poll_cursor.as_deref())
            .bind(opt_to_text(c.polled_at))
            .bind(c.backfill_cursor.as_deref())
            .bind(opt_to_text(c.backfilled_at))
            .bind(c.last_error.as_deref())
            .bind(to_text(c.created_at))
            .bind(to_text(c.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, c.workspace_id, audit);
            tx.commit().await.map_err(map)
        })
    }

    async fn delete_crm_connection(&self, ws: &WorkspaceId, audit: &AuditEntry) -> StoreResult<bool> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let gone = sqlx::query("DELETE FROM crm_connections WHERE workspace_id = $1")
                .bind(ws.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map)?
                .rows_affected();
            if gone == 0 {
                return Ok(false);
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)?;
            Ok(true)
        })
    }

    async fn crm_progress(&self, ws: &WorkspaceId, p: &CrmProgress) -> StoreResult<()> {
        on_write!(self, |pool| {
            let q = match p {
                CrmProgress::Polled { cursor, at } => {
                    sqlx::query("UPDATE crm_connections SET poll_cursor = $1, polled_at = $2, last_error = NULL WHERE workspace_id = $3")
                        .bind(cursor.clone())
                        .bind(to_text(*at))
                        .bind(ws.as_str())
                }
                CrmProgress::Backfill { cursor, done_at } => sqlx::query(
                    "UPDATE crm_connections SET backfill_cursor = $1, backfilled_at = COALESCE($2, backfilled_at), last_error = NULL
                     WHERE workspace_id = $3",
                )
                .bind(cursor.clone())
                .bind(opt_to_text(*done_at))
                .bind(ws.as_str()),
                CrmProgress::Error { error, at: _ } => {
                    sqlx::query("UPDATE crm_connections SET last_error = $1 WHERE workspace_id = $2").bind(error.clone()).bind(ws.as_str())
                }
            };
            q.execute(pool).await.map_err(map)?;
            Ok(())
        })
    }

    async fn crm_link(&self, ws: &WorkspaceId, referral: &ReferralId) -> StoreResult<Option<CrmLink>> {
        let row: Option<LinkRow> = on_read!(self, |pool| sqlx::query_as(
            "SELECT referral_id, kind, company_id, contact_id, deal_id, status, last_error, synced_at, updated_at
             FROM crm_links WHERE referral_id = $1 AND workspace_id = $2"
        )
        .bind(referral.as_str())
        .bind(ws.as_str())
        .fetch_optional(pool)
        .await
        .map_err(map)?);
        row.map(link).transpose()
    }

    async fn put_crm_link(&self, ws: &WorkspaceId, l: &CrmLink) -> StoreResult<()> {
        on_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO crm_links (referral_id, workspace_id, kind, company_id, contact_id, deal_id, status, last_error, synced_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (referral_id) DO UPDATE SET kind = excluded.kind, company_id = excluded.company_id,
                   contact_id = excluded.contact_id, deal_id = excluded.deal_id, status = excluded.status,
                   last_error = excluded.last_error, synced_at = excluded.synced_at, updated_at = excluded.updated_at",
            )
            .bind(l.referral_id.as_str())
            .bind(ws.as_str())
            .bind(l.kind.as_str())
            .bind(l.company_id.as_deref())
            .bind(l.contact_id.as_deref())
            .bind(l.deal_id.as_deref())
            .bind(l.status.as_str())
            .bind(l.last_error.as_deref())
            .bind(opt_to_text(l.synced_at))
            .bind(to_text(l.updated_at))
            .execute(pool)
            .await
            .map_err(map)?;
            Ok(())
        })
    }

    async fn referral_by_crm_deal(&self, ws: &WorkspaceId, deal_id: &str) -> StoreResult<Option<ReferralId>> {
        let id: Option<String> =
            on_read!(self, |pool| sqlx::query_scalar("SELECT referral_id FROM crm_links WHERE workspace_id = $1 AND deal_id = $2 LIMIT 1")
                .bind(ws.as_str())
                .bind(deal_id)
                .fetch_optional(pool)
                .await
                .map_err(map)?);
        Ok(id.map(ReferralId::from_string))
    }

    async fn first_sight_of_crm_event(&self, ws: &WorkspaceId, event_id: &str, at: Timestamp) -> StoreResult<bool> {
        on_write!(self, |pool| {
            let n = sqlx::query(
                "INSERT INTO crm_seen_events (workspace_id, event_id, seen_at) VALUES ($1, $2, $3)
                 ON CONFLICT (workspace_id, event_id) DO NOTHING",
            )
            .bind(ws.as_str())
            .bind(event_id)
            .bind(to_text(at))
            .execute(pool)
            .await
            .map_err(map)?
            .rows_affected();
            Ok(n == 1)
        })
    }

    async fn cache_crm_records(
        &self,
        ws: &WorkspaceId,
        accounts: &[CrmAccount],
        deals: &[CachedDeal],
        currency: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let now_text = to_text(now);
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            for chunk in accounts.chunks(CHUNK) {
                // New domains join the fuzzy-name log; known ones keep their
                // status unless the CRM says they became a customer.
                let domains: Vec<String> = chunk.iter().filter_map(|a| a.domain.as_deref().map(str::to_lowercase)).collect();
                if domains.is_empty() {
                    continue;
                }
                let mut q = sqlx::QueryBuilder::new("SELECT domain FROM accounts WHERE workspace_id = ");
                q.push_bind(ws.as_str()).push(" AND domain IN (");
                let mut sep = q.separated(", ");
                for d in &domains {
                    sep.push_bind(d.as_str());
                }
                q.push(")");
                let known: std::collections::HashSet<String> =
                    q.build_query_scalar::<String>().fetch_all(&mut *tx).await.map_err(map)?.into_iter().collect();
                let mut seen = std::collections::HashSet::new();
                for a in chunk {
                    let Some(domain) = a.domain.as_deref().map(str::to_lowercase) else { continue };
                    if !seen.insert(domain.clone()) {
                        continue;
                    }
                    let id = partnerloop_app::ids::account_id(now);
                    let status = if a.is_customer { "customer" } else { "prospect" };
                    sqlx::query(
                        "INSERT INTO accounts (workspace_id, id, name, domain, status, owner_email, created_at, updated_at, crm_id)
                         VALUES ($1, $2, $3, $4, $5, NULL, $6, $6, $7)
                         ON CONFLICT (workspace_id, domain) DO UPDATE SET crm_id = excluded.crm_id, updated_at = excluded.updated_at,
                           status = CASE WHEN accounts.status = 'prospect' AND excluded.status = 'customer' THEN 'customer'
                                         ELSE accounts.status END",
                    )
                    .bind(ws.as_str())
                    .bind(id.as_str())
                    .bind(&a.name)
                    .bind(&domain)
                    .bind(status)
                    .bind(&now_text)
                    .bind(&a.crm_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
                    if !known.contains(&domain) {
                        log_name!(tx, ws, id.as_str(), &a.name, true);
                    }
                }
            }
            for d in deals {
                let name = d.deal.name.clone();
                let company = d.deal.company_name.clone().unwrap_or_else(|| name.clone());
                sqlx::query(
                    "INSERT INTO deals (workspace_id, id, name, company_name, company_domain, stage, amount_minor, currency, source,
                                        owner_email, created_at, closed_at, updated_at, crm_id)
                     VALUES ($1, $2, $3, $4, $5, $6, 0, $7, 'direct', NULL, $8, NULL, $8, $9)
                     ON CONFLICT (workspace_id, crm_id) WHERE crm_id IS NOT NULL DO UPDATE SET name = excluded.name,
                       company_name = excluded.company_name, company_domain = excluded.company_domain, stage = excluded.stage,
                       updated_at = excluded.updated_at",
                )
                .bind(ws.as_str())
                .bind(partnerloop_app::ids::deal_id(now).as_str())
                .bind(&name)
                .bind(&company)
                .bind(d.deal.company_domain.as_deref().map(str::to_lowercase))
                .bind(d.stage.as_str())
                .bind(currency)
                .bind(&now_text)
                .bind(&d.deal.crm_id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            }
            tx.commit().await.map_err(map)
        })
    }

    async fn set_cached_deal_stage(
        &self,
        ws: &WorkspaceId,
        crm_id: &str,
        stage: Stage,
        amount: Option<partnerloop_domain::Money>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let closed = matches!(stage, Stage::ClosedWon | Stage::ClosedLost);
        on_write!(self, |pool| {
            let n = sqlx::query(
                "UPDATE deals SET stage = $1, closed_at = CASE WHEN $2 THEN $3 ELSE NULL END, updated_at = $3,
                   amount_minor = COALESCE($4, amount_minor), currency = COALESCE($5, currency)
                 WHERE workspace_id = $6 AND crm_id = $7
                   AND (stage <> $1 OR ($4 IS NOT NULL AND (amount_minor <> $4 OR currency <> $5)))",
            )
            .bind(stage.as_str())
            .bind(closed)
            .bind(to_text(now))
            .bind(amount.map(|a| a.minor()))
            .bind(amount.map(|a| a.currency().code().to_owned()))
            .bind(ws.as_str())
            .bind(crm_id)
            .execute(pool)
            .await
            .map_err(map)?
            .rows_affected();
            Ok(n > 0)
        })
    }
}
