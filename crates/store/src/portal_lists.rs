//! The partner portal's lists, newest first: a partner's referrals and
//! commissions with an id below a cursor.

use async_trait::async_trait;
use partnerloop_app::portal_lists::PortalListStore;
use partnerloop_app::store::StoreResult;
use partnerloop_domain::commission::Commission;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::referral::Referral;

use crate::errors::map;
use crate::ledger::{CommissionRow, commission_cols};
use crate::referral_rows::{ReferralRow, referral_cols};
use crate::{SqlStore, on_read};

#[async_trait]
impl PortalListStore for SqlStore {
    async fn partner_referrals_before(
        &self,
        ws: &WorkspaceId,
        partner: &PartnerId,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Referral>> {
        let rows: Vec<ReferralRow> = on_read!(self, |pool| sqlx::query_as(concat!(
            "SELECT ",
            referral_cols!(),
            " FROM referrals WHERE workspace_id = $1 AND partner_id = $2 AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        ))
        .bind(ws.as_str())
        .bind(partner.as_str())
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter().map(Referral::try_from).collect()
    }

    async fn partner_commissions_before(
        &self,
        ws: &WorkspaceId,
        partner: &PartnerId,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Commission>> {
        let rows: Vec<CommissionRow> = on_read!(self, |pool| sqlx::query_as(concat!(
            "SELECT ",
            commission_cols!(),
            " FROM commissions WHERE workspace_id = $1 AND partner_id = $2 AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        ))
        .bind(ws.as_str())
        .bind(partner.as_str())
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(map)?);
        rows.into_iter().map(Commission::try_from).collect()
    }
}
