//! Partners, accounts, direct deals and commission plans.

use jiff::Timestamp;
use partnerloop_app::error::StoreError;
use partnerloop_app::store::{AuditEntry, Page, Paged, PartnerFilter, StoreResult};
use partnerloop_domain::account::Account;
use partnerloop_domain::deal::Deal;
use partnerloop_domain::ids::{AccountId, DealId, PartnerId, PlanId, WorkspaceId};
use partnerloop_domain::partner::Partner;
use partnerloop_domain::plan::{CommissionPlan, PlanKind};

use crate::errors::map;
use crate::rows::{AccountRow, ContactRow, DealRow, PartnerContactRow, PartnerRow, PlanRow};
use crate::time::{opt_to_text, to_text};
use crate::{SqlStore, on_read, on_write};

/// Writes one audit row inside the transaction `$tx` — and, when its
/// action is an event others hear about, queues it for the outbox fan-out
/// in the same transaction (the transactional outbox's write side).
macro_rules! insert_audit {
    ($tx:expr, $ws:expr, $a:expr) => {{
        let a: &partnerloop_app::store::AuditEntry = $a;
        let audit_id = partnerloop_app::ids::audit_id(a.at).into_string();
        sqlx::query(
            "INSERT INTO audit_log (id, workspace_id, at, actor, action, entity, entity_id, before_state, after_state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&audit_id)
        .bind($ws.as_str())
        .bind(to_text(a.at))
        .bind(&a.actor)
        .bind(&a.action)
        .bind(&a.entity)
        .bind(&a.entity_id)
        .bind(a.before.as_ref().map(|v| v.to_string()))
        .bind(a.after.as_ref().map(|v| v.to_string()))
        .execute(&mut *$tx)
        .await
        .map_err(map)?;
        if partnerloop_app::notify::is_event(&a.action) {
            sqlx::query("INSERT INTO pending_events (audit_id, workspace_id) VALUES ($1, $2)")
                .bind(&audit_id)
                .bind($ws.as_str())
                .execute(&mut *$tx)
                .await
                .map_err(map)?;
        }
    }};
}
pub(crate) use insert_audit;

/// Binds one `audit_log` row (id, workspace, then the entry) into a
/// `push_values` row `$b`.
macro_rules! push_audit_row {
    ($b:expr, $id:expr, $ws:expr, $a:expr) => {{
        let a: &partnerloop_app::store::AuditEntry = $a;
        $b.push_bind($id)
            .push_bind($ws)
            .push_bind($crate::time::to_text(a.at))
            .push_bind(a.actor.as_str())
            .push_bind(a.action.as_str())
            .push_bind(a.entity.as_str())
            .push_bind(a.entity_id.as_str())
            .push_bind(a.before.as_ref().map(|v| v.to_string()))
            .push_bind(a.after.as_ref().map(|v| v.to_string()));
    }};
}
pub(crate) use push_audit_row;

/// Inserts many audit rows (and their pending events) with multi-row
/// statements inside the transaction `$tx`: 9 columns × 500 rows per statement.
macro_rules! insert_audits {
    ($tx:expr, $ws:expr, $entries:expr) => {{
        let entries: &[AuditEntry] = $entries;
        let rows: Vec<(String, &AuditEntry)> = entries.iter().map(|a| (partnerloop_app::ids::audit_id(a.at).into_string(), a)).collect();
        for chunk in rows.chunks(500) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO audit_log (id, workspace_id, at, actor, action, entity, entity_id, before_state, after_state) ",
            );
            q.push_values(chunk, |mut b, (id, a)| $crate::records::push_audit_row!(b, id.as_str(), $ws.as_str(), a));
            q.build().execute(&mut *$tx).await.map_err(map)?;
            let events: Vec<&String> =
                chunk.iter().filter(|(_, a)| partnerloop_app::notify::is_event(&a.action)).map(|(id, _)| id).collect();
            if !events.is_empty() {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO pending_events (audit_id, workspace_id) ");
                q.push_values(events, |mut b, id| {
                    b.push_bind(id.as_str()).push_bind($ws.as_str());
                });
                q.build().execute(&mut *$tx).await.map_err(map)?;
            }
        }
    }};
}
pub(crate) use insert_audits;

/// Inserts the rows of one partner inside the transaction `$tx`.
macro_rules! insert_partner_rows {
    ($tx:expr, $ws:expr, $p:expr) => {{
        let p: &Partner = $p;
        sqlx::query(concat!(
            "INSERT INTO partners (workspace_id, ",
            $crate::records::partner_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind($ws.as_str())
        .bind(p.id.as_str())
        .bind(&p.name)
        .bind(p.partner_type.as_str())
        .bind(p.status.as_str())
        .bind(p.tier.as_deref())
        .bind(p.referral_code.as_str())
        .bind(p.website.as_ref().map(|w| w.as_str()))
        .bind(p.commission_plan_id.as_ref().map(|i| i.as_str()))
        .bind(to_text(p.created_at))
        .bind(to_text(p.updated_at))
        .bind(opt_to_text(p.first_referral_at))
        .execute(&mut *$tx)
        .await
        .map_err(map)?;
        for c in &p.contacts {
            sqlx::query(
                "INSERT INTO partner_contacts (id, workspace_id, partner_id, name, email, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(c.id.as_str())
            .bind($ws.as_str())
            .bind(p.id.as_str())
            .bind(&c.name)
            .bind(c.email.as_str())
            .bind(to_text(p.created_at))
            .execute(&mut *$tx)
            .await
            .map_err(map)?;
        }
    }};
}
pub(crate) use insert_partner_rows;

/// Inserts the rows of one account inside the transaction `$tx`.
macro_rules! insert_account_row {
    ($tx:expr, $ws:expr, $a:expr) => {{
        let a: &Account = $a;
        sqlx::query(concat!(
            "INSERT INTO accounts (workspace_id, ",
            $crate::records::account_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind($ws.as_str())
        .bind(a.id.as_str())
        .bind(&a.name)
        .bind(a.domain.as_str())
        .bind(a.status.as_str())
        .bind(a.owner_email.as_ref().map(|e| e.as_str()))
        .bind(to_text(a.created_at))
        .bind(to_text(a.updated_at))
        .execute(&mut *$tx)
        .await
        .map_err(map)?;
        crate::referral_writes::log_name!($tx, $ws, a.id.as_str(), &a.name, true);
    }};
}

macro_rules! partner_cols {
    () => {
        "id, name, type, status, tier, referral_code, website, commission_plan_id, created_at, updated_at, first_referral_at"
    };
}
macro_rules! account_cols {
    () => {
        "id, name, domain, status, owner_email, created_at, updated_at"
    };
}
macro_rules! deal_cols {
    () => {
        "id, name, company_name, company_domain, stage, amount_minor, currency, source, owner_email, created_at, closed_at, updated_at"
    };
}
macro_rules! plan_cols {
    () => {
        "id, name, kind, rate, flat_minor, flat_currency, tier_rates, cap_minor, cap_currency, minimum_minor, minimum_currency, hold_days, is_default, created_at, volume_bands, band_period, recurring_months, recurring_hold_from"
    };
}

pub(crate) use {account_cols, partner_cols, plan_cols};

/// One record of `$table` by workspace and id, decoded through `$row`.
macro_rules! fetch_by_id {
    ($self:expr, $row:ty, $cols:expr, $table:literal, $ws:expr, $id:expr) => {
        $crate::on_read!($self, |pool| {
            let row: $row = sqlx::query_as(concat!("SELECT ", $cols, " FROM ", $table, " WHERE workspace_id = $1 AND id = $2"))
                .bind($ws.as_str())
                .bind($id.as_str())
                .fetch_one(pool)
                .await
                .map_err($crate::errors::map)?;
            row.try_into()
        })
    };
}
pub(crate) use fetch_by_id;

/// One page of `$table` in id order, decoded through `$row` into `$record`.
macro_rules! fetch_page {
    ($self:expr, $row:ty, $record:ty, $cols:expr, $table:literal, $ws:expr, $page:expr) => {
        $crate::on_read!($self, |pool| {
            let rows: Vec<$row> = sqlx::query_as(concat!(
                "SELECT ",
                $cols,
                " FROM ",
                $table,
                " WHERE workspace_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
            ))
            .bind($ws.as_str())
            .bind($page.after.as_deref())
            .bind(i64::from($page.limit) + 1)
            .fetch_all(pool)
            .await
            .map_err($crate::errors::map)?;
            let items = rows.into_iter().map(<$record>::try_from).collect::<Result<Vec<_>, _>>()?;
            Ok(Paged::from_rows(items, $page.limit, |r: &$record| r.id.to_string()))
        })
    };
}

/// The page filter shared by the partner list and its contacts query.
macro_rules! partner_page_where {
    () => {
        "workspace_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR id = $3) AND ($4 IS NULL OR id > $4)"
    };
}

fn page_limit(page: &Page) -> i64 {
    i64::from(page.limit) + 1
}

impl SqlStore {
    pub(crate) async fn insert_partner_(&self, ws: &WorkspaceId, p: &Partner, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            insert_partner_rows!(tx, ws, p);
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    /// One partner with its contacts, in one query.
    pub(crate) async fn partner_(&self, ws: &WorkspaceId, id: &PartnerId) -> StoreResult<Partner> {
        let rows: Vec<PartnerContactRow> = on_read!(self, |pool| {
            sqlx::query_as(
                "SELECT p.id, p.name, p.type, p.status, p.tier, p.referral_code, p.website, p.commission_plan_id, p.created_at, p.updated_at,
                        p.first_referral_at, c.id AS c_id, c.name AS c_name, c.email AS c_email
                 FROM partners p LEFT JOIN partner_contacts c ON c.partner_id = p.id
                 WHERE p.workspace_id = $1 AND p.id = $2 ORDER BY c.id",
            )
            .bind(ws.as_str())
            .bind(id.as_str())
            .fetch_all(pool)
            .await
            .map_err(map)?
        });
        let mut partner = None;
        let mut contacts = Vec::new();
        for r in rows {
            if let (Some(cid), Some(name), Some(email)) = (r.c_id, r.c_name, r.c_email) {
                contacts.push(ContactRow { id: cid, partner_id: r.p.id.clone(), name, email });
            }
            partner.get_or_insert(r.p);
        }
        partner.ok_or(StoreError::NotFound)?.into_partner(&contacts)
    }

    pub(crate) async fn list_partners_(&self, ws: &WorkspaceId, f: &PartnerFilter, page: &Page) -> StoreResult<Paged<Partner>> {
        on_read!(self, |pool| {
            let rows: Vec<PartnerRow> = sqlx::query_as(concat!(
                "SELECT ",
                partner_cols!(),
                " FROM partners WHERE ",
                partner_page_where!(),
                " ORDER BY id LIMIT $5"
            ))
            .bind(ws.as_str())
            .bind(f.status.map(|s| s.as_str()))
            .bind(f.only.as_ref().map(|p| p.as_str()))
            .bind(page.after.as_deref())
            .bind(page_limit(page))
            .fetch_all(pool)
            .await
            .map_err(map)?;
            let contacts: Vec<ContactRow> = sqlx::query_as(concat!(
                "SELECT id, partner_id, name, email FROM partner_contacts WHERE partner_id IN (SELECT id FROM partners WHERE ",
                partner_page_where!(),
                " ORDER BY id LIMIT $5) ORDER BY id"
            ))
            .bind(ws.as_str())
            .bind(f.status.map(|s| s.as_str()))
            .bind(f.only.as_ref().map(|p| p.as_str()))
            .bind(page.after.as_deref())
            .bind(page_limit(page))
            .fetch_all(pool)
            .await
            .map_err(map)?;
            let partners = rows.into_iter().map(|r| r.into_partner(&contacts)).collect::<Result<Vec<_>, _>>()?;
            Ok(Paged::from_rows(partners, page.limit, |p| p.id.to_string()))
        })
    }

    pub(crate) async fn update_partner_(&self, ws: &WorkspaceId, p: &Partner, expected: Timestamp, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            let done = sqlx::query(
                "UPDATE partners SET name = $1, type = $2, status = $3, tier = $4, website = $5, commission_plan_id = $6, updated_at = $7
                 WHERE workspace_id = $8 AND id = $9 AND updated_at = $10",
            )
            .bind(&p.name)
            .bind(p.partner_type.as_str())
            .bind(p.status.as_str())
            .bind(p.tier.as_deref())
            .bind(p.website.as_ref().map(|w| w.as_str()))
            .bind(p.commission_plan_id.as_ref().map(|i| i.as_str()))
            .bind(to_text(p.updated_at))
            .bind(ws.as_str())
            .bind(p.id.as_str())
            .bind(to_text(expected))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Stale);
            }
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn insert_account_(&self, ws: &WorkspaceId, a: &Account, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            insert_account_row!(tx, ws, a);
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn account_(&self, ws: &WorkspaceId, id: &AccountId) -> StoreResult<Account> {
        fetch_by_id!(self, AccountRow, account_cols!(), "accounts", ws, id)
    }

    pub(crate) async fn list_accounts_(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<Account>> {
        fetch_page!(self, AccountRow, Account, account_cols!(), "accounts", ws, page)
    }

    pub(crate) async fn insert_deal_(&self, ws: &WorkspaceId, d: &Deal, audit: &AuditEntry) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            crate::referral_writes::insert_deal!(tx, ws, d);
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn deal_(&self, ws: &WorkspaceId, id: &DealId) -> StoreResult<Deal> {
        fetch_by_id!(self, DealRow, deal_cols!(), "deals", ws, id)
    }

    pub(crate) async fn list_deals_(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<Deal>> {
        fetch_page!(self, DealRow, Deal, deal_cols!(), "deals", ws, page)
    }

    pub(crate) async fn insert_plan_(&self, ws: &WorkspaceId, p: &CommissionPlan, audit: &AuditEntry) -> StoreResult<()> {
        let (rate, flat, tiers) = match &p.kind {
            PlanKind::Percent { rate } => (Some(rate.to_string()), None, None),
            PlanKind::Flat { amount } => (None, Some(*amount), None),
            PlanKind::Tiered { rates } => {
                let map: std::collections::BTreeMap<&str, String> = rates.iter().map(|(t, r)| (t.as_str(), r.to_string())).collect();
                (None, None, Some(serde_json::to_string(&map).map_err(|e| StoreError::Other(Box::new(e)))?))
            }
        };
        let volume = match &p.volume {
            Some(v) => {
                let bands: Vec<(u32, String)> = v.bands.iter().map(|b| (b.from, b.rate.to_string())).collect();
                Some(serde_json::to_string(&bands).map_err(|e| StoreError::Other(Box::new(e)))?)
            }
            None => None,
        };
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            if p.is_default {
                sqlx::query("UPDATE commission_plans SET is_default = FALSE WHERE workspace_id = $1 AND is_default")
                    .bind(ws.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
            }
            sqlx::query(concat!(
                "INSERT INTO commission_plans (workspace_id, ",
                plan_cols!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
            ))
            .bind(ws.as_str())
            .bind(p.id.as_str())
            .bind(&p.name)
            .bind(p.kind.name())
            .bind(rate.as_deref())
            .bind(flat.map(|m| m.minor()))
            .bind(flat.map(|m| m.currency().code().to_owned()))
            .bind(tiers.as_deref())
            .bind(p.cap.map(|m| m.minor()))
            .bind(p.cap.map(|m| m.currency().code().to_owned()))
            .bind(p.minimum.map(|m| m.minor()))
            .bind(p.minimum.map(|m| m.currency().code().to_owned()))
            .bind(i32::try_from(p.hold_days).unwrap_or(i32::MAX))
            .bind(p.is_default)
            .bind(to_text(p.created_at))
            .bind(volume.as_deref())
            .bind(p.volume.as_ref().map(|v| v.period.as_str()))
            .bind(p.recurring.map(|r| i32::try_from(r.months).unwrap_or(i32::MAX)))
            .bind(p.recurring.map(|r| r.hold_from.as_str()))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn plan_(&self, ws: &WorkspaceId, id: &PlanId) -> StoreResult<CommissionPlan> {
        fetch_by_id!(self, PlanRow, plan_cols!(), "commission_plans", ws, id)
    }

    pub(crate) async fn list_plans_(&self, ws: &WorkspaceId, page: &Page) -> StoreResult<Paged<CommissionPlan>> {
        fetch_page!(self, PlanRow, CommissionPlan, plan_cols!(), "commission_plans", ws, page)
    }
}
