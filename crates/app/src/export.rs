//! Exports of referrals, commissions and partners, page by page (keyset
//! pagination by id through the store's lists), so any size streams in
//! constant memory. One flat record shape per kind: CSV columns or JSON
//! object keys, the same names either way.
//!
//! Rules: admin (or the system) only — an export is the whole workspace.
//! Money is an amount string and a currency column, times RFC 3339 UTC.

use partnerloop_domain::Money;
use partnerloop_domain::commission::Commission;
use partnerloop_domain::partner::Partner;
use partnerloop_domain::referral::Referral;

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::ledger::CommissionFilter;
use crate::store::{Page, PartnerFilter, ReferralFilter, Store};

/// Records read from the store per page.
pub const PAGE_SIZE: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Referrals,
    Commissions,
    Partners,
}

impl ExportKind {
    /// The record's fields, in order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            ExportKind::Referrals => &[
                "id",
                "partner_id",
                "status",
                "channel",
                "company_name",
                "company_domain",
                "contact_name",
                "contact_email",
                "stage",
                "amount",
                "currency",
                "estimated_amount",
                "estimated_currency",
                "outcome",
                "decided_at",
                "decided_by",
                "protection_expires_at",
                "closed_at",
                "created_at",
            ],
            ExportKind::Commissions => &[
                "id",
                "partner_id",
                "referral_id",
                "plan_id",
                "kind",
                "amount",
                "currency",
                "status",
                "rule",
                "available_at",
                "payout_id",
                "created_at",
            ],
            ExportKind::Partners => &[
                "id",
                "name",
                "type",
                "status",
                "tier",
                "referral_code",
                "website",
                "contact_name",
                "contact_email",
                "commission_plan_id",
                "first_referral_at",
                "created_at",
            ],
        }
    }
}

/// One record: a value (or none) per column.
pub type Record = Vec<Option<String>>;

fn t(ts: jiff::Timestamp) -> Option<String> {
    Some(ts.to_string())
}

fn amount(m: Option<&Money>) -> [Option<String>; 2] {
    [m.map(Money::amount_string), m.map(|m| m.currency().code().to_owned())]
}

fn referral_record(r: &Referral) -> Record {
    let [amt, cur] = amount(r.amount.as_ref());
    let [est, est_cur] = amount(r.estimated_value.as_ref());
    vec![
        Some(r.id.to_string()),
        Some(r.partner_id.to_string()),
        Some(r.status.as_str().into()),
        Some(r.channel.as_str().into()),
        Some(r.company_name.clone()),
        Some(r.company_domain.as_str().into()),
        Some(r.contact_name.clone()),
        Some(r.contact_email.as_str().into()),
        r.stage.map(|s| s.as_str().into()),
        amt,
        cur,
        est,
        est_cur,
        Some(r.decision.outcome.as_str().into()),
        t(r.decision.decided_at),
        Some(r.decision.decided_by.clone()),
        r.protection.and_then(|p| t(p.expires_at)),
        r.closed_at.and_then(t),
        t(r.created_at),
    ]
}

fn commission_record(c: &Commission, now: jiff::Timestamp) -> Record {
    let [amt, cur] = amount(Some(&c.amount));
    vec![
        Some(c.id.to_string()),
        Some(c.partner_id.to_string()),
        Some(c.referral_id.to_string()),
        c.plan_id.as_ref().map(|p| p.to_string()),
        Some(c.kind.as_str().into()),
        amt,
        cur,
        Some(c.status_at(now).as_str().into()),
        Some(c.rule.clone()),
        t(c.available_at),
        c.payout_id.as_ref().map(|p| p.to_string()),
        t(c.created_at),
    ]
}

fn partner_record(p: &Partner) -> Record {
    let contact = p.contacts.first();
    vec![
        Some(p.id.to_string()),
        Some(p.name.clone()),
        Some(p.partner_type.as_str().into()),
        Some(p.status.as_str().into()),
        p.tier.clone(),
        Some(p.referral_code.as_str().into()),
        p.website.as_ref().map(|w| w.as_str().into()),
        contact.map(|c| c.name.clone()),
        contact.map(|c| c.email.as_str().into()),
        p.commission_plan_id.as_ref().map(|id| id.to_string()),
        p.first_referral_at.and_then(t),
        t(p.created_at),
    ]
}

/// Hands every record of `kind` to `write`, one page at a time, in id
/// order; returns how many there were. `write` failing stops the export.
pub async fn export<E>(
    store: &dyn Store,
    ctx: &Ctx,
    kind: ExportKind,
    mut write: impl FnMut(&[Record]) -> Result<(), E>,
) -> Result<u64, ExportError<E>> {
    ctx.require_admin().map_err(ExportError::App)?;
    let ws = &ctx.workspace_id;
    let mut page = Page { limit: PAGE_SIZE, after: None };
    let mut total = 0;
    loop {
        let (records, next): (Vec<Record>, Option<String>) = match kind {
            ExportKind::Referrals => {
                let p = store.list_referrals(ws, &ReferralFilter::default(), &page).await.map_err(|e| ExportError::App(e.into()))?;
                (p.items.iter().map(referral_record).collect(), p.next_after)
            }
            ExportKind::Commissions => {
                let p = store
                    .list_commissions(ws, &CommissionFilter::default(), ctx.now, &page)
                    .await
                    .map_err(|e| ExportError::App(e.into()))?;
                (p.items.iter().map(|c| commission_record(c, ctx.now)).collect(), p.next_after)
            }
            ExportKind::Partners => {
                let p = store.list_partners(ws, &PartnerFilter::default(), &page).await.map_err(|e| ExportError::App(e.into()))?;
                (p.items.iter().map(partner_record).collect(), p.next_after)
            }
        };
        total += records.len() as u64;
        write(&records).map_err(ExportError::Write)?;
        match next {
            Some(after) => page.after = Some(after),
            None => return Ok(total),
        }
    }
}

/// Why an export stopped: the store, or the writer.
#[derive(Debug, thiserror::Error)]
pub enum ExportError<E> {
    #[error(transparent)]
    App(AppError),
    #[error("cannot write the export")]
    Write(E),
}
