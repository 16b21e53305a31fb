//! Maps sqlx errors to the store's errors. Unique violations carry the
//! unique index's name on both engines: PostgreSQL reports it, SQLite names
//! the columns, which the table below translates.

use partnerloop_app::error::StoreError;

/// Each unique index and the column list SQLite reports for it.
pub const UNIQUE_CONSTRAINTS: &[(&str, &str)] = &[
    ("workspaces_slug_uq", "workspaces.slug"),
    ("commission_plans_name_uq", "commission_plans.workspace_id, commission_plans.name"),
    ("commission_plans_default_uq", "commission_plans.workspace_id"),
    ("partners_referral_code_uq", "partners.referral_code"),
    ("partner_contacts_email_uq", "partner_contacts.workspace_id, partner_contacts.email"),
    ("api_keys_token_hash_uq", "api_keys.token_hash"),
    ("accounts_domain_uq", "accounts.workspace_id, accounts.domain"),
    ("protection_claims_key_uq", "protection_claims.workspace_id, protection_claims.match_key"),
    (
        "commissions_accrual_uq",
        "commissions.workspace_id, commissions.referral_id, commissions.won_seq, commissions.kind, commissions.payment_id",
    ),
    ("commissions_adjusts_uq", "commissions.adjusts_id"),
    ("outbox_key_uq", "outbox.idempotency_key"),
    ("deals_crm_uq", "deals.workspace_id, deals.crm_id"),
    ("staff_users_email_uq", "staff_users.workspace_id, staff_users.email"),
    ("partner_applications_partner_uq", "partner_applications.partner_id"),
];

pub(crate) fn map(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let constraint = match db.constraint() {
                Some(name) => name.to_owned(),
                None => {
                    let msg = db.message();
                    let cols = msg.rsplit_once(": ").map(|(_, c)| c).unwrap_or(msg);
                    UNIQUE_CONSTRAINTS.iter().find(|(_, c)| *c == cols).map(|(n, _)| (*n).to_owned()).unwrap_or_else(|| msg.to_owned())
                }
            };
            StoreError::Conflict { constraint }
        }
        // PostgreSQL gave up one of two transactions that wanted each
        // other's rows: nothing was written, and trying again is safe.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")) => StoreError::Stale,
        other => StoreError::Other(Box::new(other)),
    }
}
