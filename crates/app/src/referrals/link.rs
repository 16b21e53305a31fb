//! The personal referral link `/r/{code}`: anyone (the prospect, the
//! partner's contacts) registers a lead for the partner whose code it is,
//! without an account.
//!
//! Rules: only an active partner's code works; any other (unknown, applied,
//! paused, archived) is "not found", so the link says nothing about the
//! partner. The registration is the ordinary one (channel `link`), so the
//! rules of engagement decide exactly as for the partner's own; what the
//! visitor learns is only that it was received — never the decision,
//! conflicts or anything of other partners.

use jiff::Timestamp;
use partnerloop_domain::partner::{Partner, PartnerStatus, ReferralCode};
use partnerloop_domain::referral::Channel;

use super::{ReferralForCreate, register};
use crate::ctx::Ctx;
use crate::error::AppError;
use crate::matching::NameMatcher;
use crate::store::{Registered, Store};

/// The active partner of a link's code, with the context its registrations run in.
pub async fn link_partner(store: &dyn Store, code: &str, now: Timestamp) -> Result<(Ctx, Partner), AppError> {
    let code = ReferralCode::parse("code", code).map_err(|_| AppError::NotFound)?;
    match store.partner_by_referral_code(code.as_str()).await? {
        Some((ws, p)) if p.status == PartnerStatus::Active => Ok((Ctx::system(ws, "link", now), p)),
        _ => Err(AppError::NotFound),
    }
}

/// Registers a lead through a partner's personal link.
pub async fn register_by_link(
    store: &dyn Store,
    matcher: &NameMatcher,
    code: &str,
    mut input: ReferralForCreate,
    now: Timestamp,
) -> Result<Registered, AppError> {
    let (ctx, partner) = link_partner(store, code, now).await?;
    input.partner_id = Some(partner.id);
    input.channel = Channel::Link;
    register(store, matcher, &ctx, input).await
}
