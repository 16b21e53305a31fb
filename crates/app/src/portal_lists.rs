//! The partner portal's lists, newest first and paged by cursor: the
//! partner's referrals and its commissions.
//!
//! Rules: only a partner context reads these, and only its own records
//! (the partner comes from the context, never from input). A page holds at
//! most `limit` records whose id is below the cursor's; the next cursor is
//! the last id shown when more may follow — the API's convention
//! (`next_after`, sent as an opaque `?cursor=`), in the other direction.

use async_trait::async_trait;
use partnerloop_domain::commission::Commission;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::referral::Referral;

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::store::{Page, Paged, Store, StoreResult};

#[async_trait]
pub trait PortalListStore: Send + Sync {
    /// Up to `limit` of the partner's referrals with an id below `before`, newest first.
    async fn partner_referrals_before(
        &self,
        ws: &WorkspaceId,
        partner: &PartnerId,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Referral>>;
    /// Up to `limit` of the partner's commissions with an id below `before`, newest first.
    async fn partner_commissions_before(
        &self,
        ws: &WorkspaceId,
        partner: &PartnerId,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Commission>>;
}

fn own(ctx: &Ctx) -> Result<&PartnerId, AppError> {
    ctx.partner_scope().ok_or_else(|| AppError::Forbidden("the portal's lists are a partner's own".into()))
}

/// One page of the signed-in partner's referrals, newest first.
pub async fn referrals(store: &dyn Store, ctx: &Ctx, page: &Page) -> Result<Paged<Referral>, AppError> {
    let partner = own(ctx)?;
    let limit = page.limit.clamp(1, 500);
    let rows = store.partner_referrals_before(&ctx.workspace_id, partner, page.after.as_deref(), limit + 1).await?;
    Ok(Paged::from_rows(rows, limit, |r| r.id.to_string()))
}

/// One page of the signed-in partner's commissions, newest first.
pub async fn commissions(store: &dyn Store, ctx: &Ctx, page: &Page) -> Result<Paged<Commission>, AppError> {
    let partner = own(ctx)?;
    let limit = page.limit.clamp(1, 500);
    let rows = store.partner_commissions_before(&ctx.workspace_id, partner, page.after.as_deref(), limit + 1).await?;
    Ok(Paged::from_rows(rows, limit, |c| c.id.to_string()))
}
