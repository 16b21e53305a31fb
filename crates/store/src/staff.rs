//! Staff users, their sign-in links and sessions, and the console's counts.
//!
//! Rules: a link is redeemed by one UPDATE guarded by `used_at IS NULL`
//! and its expiry, together with the session insert and the audit row, in
//! one transaction: of concurrent redemptions exactly one gets a session.
//! A session counts only while unexpired, unrevoked and its user enabled.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_app::staff::{ConsoleCounts, NewStaffLink, PasswordHash, StaffHolder, StaffRole, StaffStore, StaffUser};
use partnerloop_app::store::{AuditEntry, StoreResult};
use partnerloop_app::{StoreError, staff};
use partnerloop_domain::ids::{PartnerId, WorkspaceId};

use crate::errors::map;
use crate::records::insert_audit;
use crate::time::{from_text, opt_from_text, to_text};
use crate::{SqlStore, on_read, on_write};

type UserRow = (String, String, String, String, Option<String>, bool, String, String);

fn role(s: &str) -> StoreResult<StaffRole> {
    StaffRole::parse(s).ok_or_else(|| StoreError::Other(format!("unknown staff role {s}").into()))
}

fn user((id, ws, email, r, hash, disabled, created, updated): UserRow) -> StoreResult<(StaffUser, Option<PasswordHash>)> {
    let u = StaffUser {
        id,
        workspace_id: WorkspaceId::from_string(ws),
        email,
        role: role(&r)?,
        has_password: hash.is_some(),
        disabled,
        created_at: from_text(&created)?,
        updated_at: from_text(&updated)?,
    };
    Ok((u, hash.map(PasswordHash)))
}

/// `%needle%` for LIKE, with the wildcards in `needle` taken literally.
fn like_pattern(needle: &str) -> String {
    let mut p = String::from("%");
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[async_trait]
impl StaffStore for SqlStore {
    async fn insert_staff_user(
        &self,
        u: &StaffUser,
        password: Option<&PasswordHash>,
        link: Option<&NewStaffLink>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO staff_users (id, workspace_id, email, role, password_hash, disabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&u.id)
            .bind(u.workspace_id.as_str())
            .bind(&u.email)
            .bind(u.role.as_str())
            .bind(password.map(|p| p.0.as_str()))
            .bind(u.disabled)
            .bind(to_text(u.created_at))
            .bind(to_text(u.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if let Some(l) = link {
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
            }
            insert_audit!(tx, u.workspace_id, audit);
            tx.commit().await.map_err(map)?;
            Ok(())
        })
    }

    async fn staff_users_by_email(&self, email: &str) -> StoreResult<Vec<(StaffUser, Option<PasswordHash>)>> {
        let rows: Vec<UserRow> = on_read!(self, |pool| {
            sqlx::query_as(
            "SELECT id, workspace_id, email, role, password_hash, disabled, created_at, updated_at FROM staff_users WHERE email = $1 ORDER BY id"
        )
        .bind(email)
        .fetch_all(pool)
        .await
        .map_err(map)?
        });
        rows.into_iter().map(user).collect()
    }

    async fn staff_user(&self, ws: &WorkspaceId, id: &str) -> StoreResult<StaffUser> {
        let row: UserRow = on_read!(self, |pool| {
            sqlx::query_as(
            "SELECT id, workspace_id, email, role, password_hash, disabled, created_at, updated_at FROM staff_users WHERE workspace_id = $1 AND id = $2"
        )
        .bind(ws.as_str())
        .bind(id)
        .fetch_one(pool)
        .await
        .map_err(map)?
        });
        Ok(user(row)?.0)
    }

    async fn list_staff_users(&self, ws: &WorkspaceId) -> StoreResult<Vec<StaffUser>> {
        let rows: Vec<UserRow> = on_read!(self, |pool| {
            sqlx::query_as(
            "SELECT id, workspace_id, email, role, password_hash, disabled, created_at, updated_at FROM staff_users WHERE workspace_id = $1 ORDER BY email"
        )
        .bind(ws.as_str())
        .fetch_all(pool)
        .await
        .map_err(map)?
        });
        rows.into_iter().map(|r| user(r).map(|(u, _)| u)).collect()
    }

    async fn set_staff_password(&self, ws: &WorkspaceId, id: &str, password: &PasswordHash, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let done = sqlx::query("UPDATE staff_users SET password_hash = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4")
                .bind(&password.0)
                .bind(to_text(audit.at))
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

    async fn insert_staff_link(&self, u: &StaffUser, l: &NewStaffLink, now: Timestamp) -> StoreResult<()> {
        on_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO staff_sign_in_links (token_hash, workspace_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&l.token_hash)
            .bind(u.workspace_id.as_str())
            .bind(&u.id)
            .bind(to_text(now))
            .bind(to_text(l.expires_at))
            .execute(pool)
            .await
            .map_err(map)?;
            Ok(())
        })
    }

    async fn redeem_staff_link(
        &self,
        token_hash: &str,
        session_hash: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Option<StaffHolder>> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let row: Option<(String, String)> = sqlx::query_as(
                "UPDATE staff_sign_in_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
                 RETURNING workspace_id, user_id",
            )
            .bind(to_text(now))
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
            let Some((ws, user_id)) = row else {
                return Ok(None);
            };
            let (email, r, disabled): (String, String, bool) =
                sqlx::query_as("SELECT email, role, disabled FROM staff_users WHERE id = $1")
                    .bind(&user_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map)?;
            if disabled {
                // Rolled back on drop: the link stays unused, and useless.
                return Ok(None);
            }
            let h = StaffHolder { workspace_id: WorkspaceId::from_string(ws), user_id, email, role: role(&r)? };
            sqlx::query(
                "INSERT INTO staff_sessions (token_hash, workspace_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(session_hash)
            .bind(h.workspace_id.as_str())
            .bind(&h.user_id)
            .bind(to_text(now))
            .bind(to_text(until))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, h.workspace_id, &staff::sign_in_audit(&h, now, "link"));
            tx.commit().await.map_err(map)?;
            Ok(Some(h))
        })
    }

    async fn open_staff_session(&self, h: &StaffHolder, session_hash: &str, until: Timestamp, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO staff_sessions (token_hash, workspace_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(session_hash)
            .bind(h.workspace_id.as_str())
            .bind(&h.user_id)
            .bind(to_text(audit.at))
            .bind(to_text(until))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, h.workspace_id, audit);
            tx.commit().await.map_err(map)?;
            Ok(())
        })
    }

    async fn staff_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<StaffHolder>> {
        let row: Option<(String, String, String, String)> = on_read!(self, |pool| sqlx::query_as(
            "SELECT s.workspace_id, s.user_id, u.email, u.role FROM staff_sessions s JOIN staff_users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.revoked_at IS NULL AND NOT u.disabled",
        )
        .bind(token_hash)
        .bind(to_text(now))
        .fetch_optional(pool)
        .await
        .map_err(map)?);
        match row {
            Some((ws, user_id, email, r)) => {
                Ok(Some(StaffHolder { workspace_id: WorkspaceId::from_string(ws), user_id, email, role: role(&r)? }))
            }
            None => Ok(None),
        }
    }

    async fn revoke_staff_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<bool> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let row: Option<(String, String)> = sqlx::query_as(
                "UPDATE staff_sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL RETURNING workspace_id, user_id",
            )
            .bind(to_text(now))
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
            let Some((ws, user_id)) = row else {
                return Ok(false);
            };
            let ws = WorkspaceId::from_string(ws);
            insert_audit!(tx, ws, &staff::sign_out_audit(&user_id, now));
            tx.commit().await.map_err(map)?;
            Ok(true)
        })
    }

    async fn console_counts(&self, ws: &WorkspaceId) -> StoreResult<ConsoleCounts> {
        on_read!(self, |pool| {
            let partners: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, COUNT(*) FROM partners WHERE workspace_id = $1 GROUP BY status ORDER BY status")
                    .bind(ws.as_str())
                    .fetch_all(pool)
                    .await
                    .map_err(map)?;
            let referrals: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, COUNT(*) FROM referrals WHERE workspace_id = $1 GROUP BY status ORDER BY status")
                    .bind(ws.as_str())
                    .fetch_all(pool)
                    .await
                    .map_err(map)?;
            let pipeline: Vec<(String, i64)> = sqlx::query_as(
                "SELECT COALESCE(amount_currency, estimated_currency), CAST(SUM(COALESCE(amount_minor, estimated_minor)) AS BIGINT)
                 FROM referrals WHERE workspace_id = $1 AND status = 'approved' AND COALESCE(amount_minor, estimated_minor) IS NOT NULL
                 GROUP BY 1 ORDER BY 1",
            )
            .bind(ws.as_str())
            .fetch_all(pool)
            .await
            .map_err(map)?;
            let oldest: Option<String> =
                sqlx::query_scalar("SELECT MIN(created_at) FROM referrals WHERE workspace_id = $1 AND status = 'pending_review'")
                    .bind(ws.as_str())
                    .fetch_one(pool)
                    .await
                    .map_err(map)?;
            Ok(ConsoleCounts { partners, referrals, pipeline, oldest_review: opt_from_text(oldest.as_deref())? })
        })
    }

    async fn audit_log(
        &self,
        ws: &WorkspaceId,
        action: Option<&str>,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<(String, AuditEntry)>> {
        type Row = (String, String, String, String, String, String, Option<String>, Option<String>);
        let rows: Vec<Row> = on_read!(self, |pool| sqlx::query_as(
            "SELECT id, at, actor, action, entity, entity_id, before_state, after_state FROM audit_log
             WHERE workspace_id = $1 AND ($2 = '' OR action = $2) AND ($3 = '' OR id < $3)
             ORDER BY id DESC LIMIT $4",
        )
        .bind(ws.as_str())
        .bind(action.unwrap_or(""))
        .bind(before.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(map))?;
        rows.into_iter()
            .map(|(id, at, actor, action, entity, entity_id, before_state, after_state)| {
                let row = crate::rows::AuditRow { at, actor, action, entity, entity_id, before_state, after_state };
                Ok((id, AuditEntry::try_from(row)?))
            })
            .collect()
    }

    async fn search_partner_ids(&self, ws: &WorkspaceId, needle: &str, limit: u32) -> StoreResult<Vec<PartnerId>> {
        let pattern = like_pattern(needle);
        let ids: Vec<String> = on_read!(self, |pool| sqlx::query_scalar(
            "SELECT p.id FROM partners p WHERE p.workspace_id = $1
             AND (LOWER(p.name) LIKE $2 ESCAPE '\\'
                  OR EXISTS (SELECT 1 FROM partner_contacts c WHERE c.partner_id = p.id AND c.email LIKE $2 ESCAPE '\\'))
             ORDER BY p.id LIMIT $3",
        )
        .bind(ws.as_str())
        .bind(&pattern)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(map)?);
        Ok(ids.into_iter().map(PartnerId::from_string).collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_in_a_search_are_literal() {
        assert_eq!(super::like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(super::like_pattern(""), "%%");
    }
}
