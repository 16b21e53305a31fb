//! Lookups for inbound mail: who a sender is, across workspaces, and which
//! workspace a reply's referral belongs to.

use async_trait::async_trait;
use partnerloop_app::inbound::{InboundStore, SenderMatch};
use partnerloop_app::store::StoreResult;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::referral::ReferralId;

use crate::errors::map;
use crate::{SqlStore, on_read};

#[async_trait]
impl InboundStore for SqlStore {
    async fn partner_contacts_by_email(&self, email: &str) -> StoreResult<Vec<SenderMatch>> {
        let rows: Vec<(String, String, String)> = on_read!(self, |pool| sqlx::query_as(
            "SELECT c.workspace_id, w.slug, c.partner_id FROM partner_contacts c
             JOIN partners p ON p.id = c.partner_id JOIN workspaces w ON w.id = c.workspace_id
             WHERE c.email = $1 AND p.status = 'active' ORDER BY c.workspace_id",
        )
        .bind(email)
        .fetch_all(pool)
        .await
        .map_err(map)?);
        Ok(rows
            .into_iter()
            .map(|(ws, slug, partner)| SenderMatch {
                workspace_id: WorkspaceId::from_string(ws),
                workspace_slug: slug,
                partner_id: PartnerId::from_string(partner),
            })
            .collect())
    }

    async fn referral_workspace(&self, id: &ReferralId) -> StoreResult<WorkspaceId> {
        let ws: String = on_read!(self, |pool| sqlx::query_scalar("SELECT workspace_id FROM referrals WHERE id = $1")
            .bind(id.as_str())
            .fetch_one(pool)
            .await
            .map_err(map)?);
        Ok(WorkspaceId::from_string(ws))
    }
}
