//! CSV imports: one transaction for the whole file, statements prepared
//! once and reused, so 100,000 rows take seconds.

use partnerloop_app::error::StoreError;
use partnerloop_app::matching::referral_key;
use partnerloop_app::referrals::claim_keys;
use partnerloop_app::store::{AuditEntry, ImportBatch, StoreResult, TimelineEvent};
use partnerloop_domain::account::Account;
use partnerloop_domain::deal::Deal;
use partnerloop_domain::partner::Partner;

use partnerloop_domain::ids::{PartnerId, WorkspaceId};

use partnerloop_domain::referral::Referral;

use crate::errors::map;
use crate::records::{insert_account_row, insert_audit, insert_partner_rows};
use crate::referral_rows::reasons_to_json;
use crate::referral_writes::{insert_claims, insert_deal, insert_events, log_name, write_referral};
use crate::time::{opt_to_text, to_text};
use crate::{SqlStore, on_read, on_write};

impl SqlStore {
    pub(crate) async fn import_(&self, ws: &WorkspaceId, batch: ImportBatch) -> StoreResult<()> {
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            for a in &batch.accounts {
                insert_account_row!(tx, ws, a);
            }
            for p in &batch.partners {
                insert_partner_rows!(tx, ws, p);
            }
            for d in &batch.deals {
                insert_deal!(tx, ws, d);
            }
            for r in &batch.referrals {
                if let Some(d) = &r.deal {
                    insert_deal!(tx, ws, d);
                }
                let referral: &Referral = &r.referral;
                write_referral!(insert, tx, ws, referral);
                if r.claim {
                    insert_claims!(tx, ws, referral)?;
                    log_name!(tx, ws, referral_key(referral.partner_id.as_str(), referral.id.as_str()), &referral.company_name, true);
                }
                let events: &[TimelineEvent] = &r.events;
                insert_events!(tx, ws, referral.id, events);
                sqlx::query(
                    "UPDATE partners SET first_referral_at = $1 WHERE workspace_id = $2 AND id = $3 AND (first_referral_at IS NULL OR first_referral_at > $1)",
                )
                .bind(to_text(referral.created_at))
                .bind(ws.as_str())
                .bind(referral.partner_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            }
            let audit: &AuditEntry = &batch.audit;
            insert_audit!(tx, ws, audit);
            tx.commit().await.map_err(map)
        })
    }

    pub(crate) async fn account_domains_(&self, ws: &WorkspaceId) -> StoreResult<std::collections::HashSet<String>> {
        on_read!(self, |pool| {
            let rows: Vec<String> = sqlx::query_scalar("SELECT domain FROM accounts WHERE workspace_id = $1")
                .bind(ws.as_str())
                .fetch_all(pool)
                .await
                .map_err(map)?;
            Ok(rows.into_iter().collect())
        })
    }

    pub(crate) async fn partner_ids_by_contact_email_(
        &self,
        ws: &WorkspaceId,
    ) -> StoreResult<std::collections::HashMap<String, PartnerId>> {
        on_read!(self, |pool| {
            let rows: Vec<(String, String)> = sqlx::query_as("SELECT email, partner_id FROM partner_contacts WHERE workspace_id = $1")
                .bind(ws.as_str())
                .fetch_all(pool)
                .await
                .map_err(map)?;
            Ok(rows.into_iter().map(|(e, p)| (e, PartnerId::from_string(p))).collect())
        })
    }
}
