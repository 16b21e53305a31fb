//! Idempotency keys: the first request with a key claims it, runs, and
//! saves its response; a repeat gets that response back. A claim whose
//! request never finished (a crash) is taken over after `ABANDONED_AFTER`.

use jiff::{SignedDuration, Timestamp};
use partnerloop_app::store::{IdempotencyClaim, SavedResponse, StoreResult};

use crate::errors::map;
use crate::time::to_text;
use crate::{SqlStore, on_write};

const ABANDONED_AFTER: SignedDuration = SignedDuration::from_secs(300);

#[derive(sqlx::FromRow)]
struct ClaimRow {
    request_hash: String,
    status: Option<i32>,
    content_type: Option<String>,
    body: Option<String>,
}

impl SqlStore {
    pub(crate) async fn claim_(&self, scope: &str, key: &str, hash: &str, now: Timestamp) -> StoreResult<IdempotencyClaim> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(scope)
            .bind(key)
            .bind(hash)
            .bind(to_text(now))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if inserted.rows_affected() == 1 {
                tx.commit().await.map_err(map)?;
                return Ok(IdempotencyClaim::New);
            }
            let row: ClaimRow =
                sqlx::query_as("SELECT request_hash, status, content_type, body FROM idempotency_keys WHERE scope = $1 AND key = $2")
                    .bind(scope)
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map)?;
            let claim = if row.request_hash != hash {
                IdempotencyClaim::Mismatch
            } else if let Some(status) = row.status {
                IdempotencyClaim::Replay(SavedResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    content_type: row.content_type.unwrap_or_default(),
                    body: row.body.unwrap_or_default(),
                })
            } else {
                let taken_over = sqlx::query(
                    "UPDATE idempotency_keys SET created_at = $1 WHERE scope = $2 AND key = $3 AND status IS NULL AND created_at < $4",
                )
                .bind(to_text(now))
                .bind(scope)
                .bind(key)
                .bind(to_text(now - ABANDONED_AFTER))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
                if taken_over.rows_affected() == 1 { IdempotencyClaim::New } else { IdempotencyClaim::InProgress }
            };
            tx.commit().await.map_err(map)?;
            Ok(claim)
        })
    }

    pub(crate) async fn save_response_(&self, scope: &str, key: &str, r: &SavedResponse) -> StoreResult<()> {
        on_write!(self, |pool| {
            sqlx::query("UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3 WHERE scope = $4 AND key = $5")
                .bind(i32::from(r.status))
                .bind(&r.content_type)
                .bind(&r.body)
                .bind(scope)
                .bind(key)
                .execute(pool)
                .await
                .map_err(map)?;
            Ok(())
        })
    }

    pub(crate) async fn release_(&self, scope: &str, key: &str) -> StoreResult<()> {
        on_write!(self, |pool| {
            sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL")
                .bind(scope)
                .bind(key)
                .execute(pool)
                .await
                .map_err(map)?;
            Ok(())
        })
    }
}
