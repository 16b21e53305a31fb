//! Paying partners: their payout details, the payer's settings, payout
//! batches, the files a bank or PayPal takes, and partner statements.
//!
//! Rules: payout details and the payer's bank data are sealed before they
//! reach the store and opened only to write a payout file; what anyone
//! reads back is the masked view. A partner reads and sets only its own
//! details; everything else here is for admins. A batch is made from what
//! is payable now (due commissions are released first) and is a draft
//! until marked paid; a draft can be cancelled, a paid batch cannot.

use partnerloop_domain::commission::{CommissionId, PayoutId, PayoutStatus};
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::payout::{
    AbaRouting, Bic, Iban, MaskedPayoutMethod, NachaPayer, PayoutFileInput, PayoutLine, PayoutMethod, SepaPayer, generic_csv, nacha,
    paypal_csv, sepa_xml,
};
use partnerloop_domain::{Currency, Money};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::{AppError, StoreError};
use crate::ledger::{NewPayout, Payout, PayoutCreated, SealedPayoutDetails, SealedPayoutSettings};
use crate::sealing::Sealer;
use crate::store::{AuditEntry, Page, Paged, Store};

fn details_context(ctx: &Ctx, partner: &PartnerId) -> String {
    format!("payout-details/{}/{}", ctx.workspace_id, partner)
}

fn settings_context(ctx: &Ctx) -> String {
    format!("payout-settings/{}", ctx.workspace_id)
}

fn sealed_unreadable(e: impl std::fmt::Display) -> AppError {
    AppError::Store(StoreError::Other(format!("stored payout data cannot be read: {e}").into()))
}

/// Only the partner itself, or an admin.
fn own_or_admin(ctx: &Ctx, partner: &PartnerId) -> Result<(), AppError> {
    match ctx.partner_scope() {
        Some(own) if own != partner => Err(AppError::NotFound),
        _ => Ok(()),
    }
}

pub async fn put_details(
    store: &dyn Store,
    sealer: &Sealer,
    ctx: &Ctx,
    partner: &PartnerId,
    method: PayoutMethod,
) -> Result<MaskedPayoutMethod, AppError> {
    own_or_admin(ctx, partner)?;
    store.partner(&ctx.workspace_id, partner).await?;
    let plain = serde_json::to_vec(&method).map_err(sealed_unreadable)?;
    let masked = method.masked();
    let masked_json = serde_json::to_string(&masked).map_err(sealed_unreadable)?;
    let record = SealedPayoutDetails {
        partner_id: partner.clone(),
        method: method.kind().to_owned(),
        sealed: sealer.seal(&details_context(ctx, partner), &plain),
        masked: masked_json.clone(),
        updated_at: ctx.now,
    };
    // The audit log holds the masked view only.
    let a = AuditEntry::of(
        ctx,
        "partner.payout_details_set",
        "partner",
        partner.as_str(),
        serde_json::from_str(&masked_json).unwrap_or_default(),
    );
    store.put_payout_details(&ctx.workspace_id, &record, &a).await?;
    Ok(masked)
}

/// The masked view of a partner's details, as stored JSON.
pub async fn details(store: &dyn Store, ctx: &Ctx, partner: &PartnerId) -> Result<Option<serde_json::Value>, AppError> {
    own_or_admin(ctx, partner)?;
    store.partner(&ctx.workspace_id, partner).await?;
    let Some(d) = store.payout_details(&ctx.workspace_id, partner).await? else { return Ok(None) };
    Ok(Some(serde_json::from_str(&d.masked).map_err(sealed_unreadable)?))
}

/// Opens the sealed payout details of `partners` (read in one go), by partner.
async fn open_details(
    store: &dyn Store,
    sealer: &Sealer,
    ctx: &Ctx,
    partners: &[PartnerId],
) -> Result<std::collections::HashMap<PartnerId, PayoutMethod>, AppError> {
    let mut out = std::collections::HashMap::with_capacity(partners.len());
    for d in store.payout_details_of(&ctx.workspace_id, partners).await? {
        let plain = sealer.open(&details_context(ctx, &d.partner_id), &d.sealed).map_err(sealed_unreadable)?;
        out.insert(d.partner_id, serde_json::from_slice(&plain).map_err(sealed_unreadable)?);
    }
    Ok(out)
}

/// The payer's SEPA account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SepaSettings {
    pub debtor_name: String,
    pub iban: Iban,
    pub bic: Option<Bic>,
}

/// The payer's NACHA origination data, as its bank (the ODFI) set it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NachaSettings {
    pub immediate_destination: AbaRouting,
    pub immediate_origin: String,
    pub company_name: String,
    pub company_id: String,
    pub odfi_routing: AbaRouting,
    #[serde(default)]
    pub destination_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutSettings {
    pub minimum: Money,
    pub sepa: Option<SepaSettings>,
    pub nacha: Option<NachaSettings>,
}

#[derive(Serialize, Deserialize)]
struct SealedPayer {
    sepa: Option<SepaSettings>,
    nacha: Option<NachaSettings>,
}

/// What anyone may read back of the settings.
pub fn masked_settings(s: &PayoutSettings) -> serde_json::Value {
    json!({
        "minimum": {"amount": s.minimum.amount_string(), "currency": s.minimum.currency().code()},
        "sepa": s.sepa.as_ref().map(|p| json!({"debtor_name": p.debtor_name, "iban_last4": p.iban.last4(), "bic": p.bic.as_ref().map(|b| b.as_str())})),
        "nacha": s.nacha.as_ref().map(|n| json!({
            "immediate_destination": n.immediate_destination.as_str(), "immediate_origin": n.immediate_origin,
            "company_name": n.company_name, "company_id": n.company_id, "odfi_routing": n.odfi_routing.as_str(),
        })),
    })
}

pub async fn put_settings(store: &dyn Store, sealer: &Sealer, ctx: &Ctx, s: PayoutSettings) -> Result<serde_json::Value, AppError> {
    ctx.require_admin()?;
    let plain = serde_json::to_vec(&SealedPayer { sepa: s.sepa.clone(), nacha: s.nacha.clone() }).map_err(sealed_unreadable)?;
    let masked = masked_settings(&s);
    let record = SealedPayoutSettings {
        minimum: s.minimum,
        sealed: sealer.seal(&settings_context(ctx), &plain),
        masked: masked.to_string(),
        updated_at: ctx.now,
    };
    store
        .put_payout_settings(
            &ctx.workspace_id,
            &record,
            &AuditEntry::of(ctx, "payout_settings.set", "workspace", ctx.workspace_id.as_str(), masked.clone()),
        )
        .await?;
    Ok(masked)
}

pub async fn settings_view(store: &dyn Store, ctx: &Ctx) -> Result<Option<serde_json::Value>, AppError> {
    ctx.require_admin()?;
    let Some(s) = store.payout_settings(&ctx.workspace_id).await? else { return Ok(None) };
    Ok(Some(serde_json::from_str(&s.masked).map_err(sealed_unreadable)?))
}

async fn open_settings(store: &dyn Store, sealer: &Sealer, ctx: &Ctx) -> Result<Option<PayoutSettings>, AppError> {
    let Some(s) = store.payout_settings(&ctx.workspace_id).await? else { return Ok(None) };
    let plain = sealer.open(&settings_context(ctx), &s.sealed).map_err(sealed_unreadable)?;
    let payer: SealedPayer = serde_json::from_slice(&plain).map_err(sealed_unreadable)?;
    Ok(Some(PayoutSettings { minimum: s.minimum, sepa: payer.sepa, nacha: payer.nacha }))
}

/// Makes a draft batch of everything payable in `currency`.
pub async fn create(store: &dyn Store, ctx: &Ctx, currency: Currency) -> Result<PayoutCreated, AppError> {
    ctx.require_payouts()?;
    crate::commissions::release_due(store, Some(&ctx.workspace_id), ctx.now).await?;
    let minimum = store.payout_settings(&ctx.workspace_id).await?.map(|s| s.minimum).unwrap_or(Money::zero(currency));
    let new = NewPayout { id: crate::ids::payout_id(ctx.now), currency, minimum, at: ctx.now, actor: ctx.actor.audit_name() };
    let a = AuditEntry::of(ctx, "payout.created", "payout", new.id.as_str(), json!({"currency": currency.code()}));
    Ok(store.create_payout(&ctx.workspace_id, &new, &a).await?)
}

pub async fn get(store: &dyn Store, ctx: &Ctx, id: &PayoutId) -> Result<Payout, AppError> {
    ctx.require_payouts()?;
    Ok(store.payout(&ctx.workspace_id, id).await?)
}

pub async fn list(store: &dyn Store, ctx: &Ctx, page: &Page) -> Result<Paged<Payout>, AppError> {
    ctx.require_payouts()?;
    Ok(store.list_payouts(&ctx.workspace_id, page).await?)
}

/// The commissions of a batch, grouped per partner in item order.
pub async fn commission_ids(store: &dyn Store, ctx: &Ctx, id: &PayoutId) -> Result<Vec<(PartnerId, Vec<CommissionId>)>, AppError> {
    ctx.require_payouts()?;
    let mut out: Vec<(PartnerId, Vec<CommissionId>)> = Vec::new();
    for (partner, c) in store.payout_commission_ids(&ctx.workspace_id, id).await? {
        match out.last_mut() {
            Some((p, ids)) if *p == partner => ids.push(c),
            _ => out.push((partner, vec![c])),
        }
    }
    Ok(out)
}

/// The batch was paid; `reference` is the bank's or PayPal's for the transfer, when known.
pub async fn mark_paid(store: &dyn Store, ctx: &Ctx, id: &PayoutId, reference: Option<String>) -> Result<Payout, AppError> {
    ctx.require_payouts()?;
    let reference =
        partnerloop_domain::validation::optional_text("reference", reference.as_deref(), 200).map_err(|e| AppError::Invalid(vec![e]))?;
    let a = AuditEntry::of(ctx, "payout.paid", "payout", id.as_str(), json!({"reference": reference}));
    match store.mark_payout_paid(&ctx.workspace_id, id, reference.as_deref(), &a).await {
        Ok(()) => get(store, ctx, id).await,
        Err(StoreError::Stale) => Err(not_a_draft(store, ctx, id).await),
        Err(e) => Err(e.into()),
    }
}

pub async fn cancel(store: &dyn Store, ctx: &Ctx, id: &PayoutId) -> Result<Payout, AppError> {
    ctx.require_payouts()?;
    let a = AuditEntry::of(ctx, "payout.cancelled", "payout", id.as_str(), json!({}));
    match store.cancel_payout(&ctx.workspace_id, id, &a).await {
        Ok(()) => get(store, ctx, id).await,
        Err(StoreError::Stale) => Err(not_a_draft(store, ctx, id).await),
        Err(e) => Err(e.into()),
    }
}

async fn not_a_draft(store: &dyn Store, ctx: &Ctx, id: &PayoutId) -> AppError {
    match store.payout(&ctx.workspace_id, id).await {
        Ok(p) => AppError::conflict(Some("status"), format!("the payout is {}: only a draft can change", p.status)),
        Err(e) => e.into(),
    }
}

/// The formats a batch exports to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    PaypalCsv,
    SepaXml,
    Nacha,
    Csv,
}

impl ExportFormat {
    pub fn parse(input: &str) -> Result<Self, AppError> {
        match input {
            "paypal_csv" => Ok(Self::PaypalCsv),
            "sepa_xml" => Ok(Self::SepaXml),
            "nacha" => Ok(Self::Nacha),
            "csv" => Ok(Self::Csv),
            other => Err(AppError::invalid("format", format!("'{other}' is not one of: paypal_csv, sepa_xml, nacha, csv"))),
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            Self::PaypalCsv | Self::Csv => "text/csv; charset=utf-8",
            Self::SepaXml => "application/xml",
            Self::Nacha => "text/plain; charset=us-ascii",
        }
    }

    pub fn extension(&self) -> &'static str {
        match self {
            Self::PaypalCsv | Self::Csv => "csv",
            Self::SepaXml => "xml",
            Self::Nacha => "ach",
        }
    }
}

/// One export file of a batch.
pub struct Export {
    pub format: ExportFormat,
    pub filename: String,
    pub bytes: Vec<u8>,
}

pub async fn export(store: &dyn Store, sealer: &Sealer, ctx: &Ctx, id: &PayoutId, format: ExportFormat) -> Result<Export, AppError> {
    ctx.require_payouts()?;
    let payout = store.payout(&ctx.workspace_id, id).await?;
    if payout.status == PayoutStatus::Cancelled {
        return Err(AppError::conflict(Some("status"), "the payout was cancelled: there is nothing to pay"));
    }
    let partners: Vec<PartnerId> = payout.items.iter().map(|i| i.partner_id.clone()).collect();
    let mut methods = open_details(store, sealer, ctx, &partners).await?;
    let mut lines = Vec::with_capacity(payout.items.len());
    for item in &payout.items {
        let method = methods.remove(&item.partner_id);
        lines.push(PayoutLine {
            line_id: line_id(&payout.id, &item.partner_id),
            partner_id: item.partner_id.to_string(),
            partner_name: item.partner_name.clone(),
            amount: item.amount,
            method,
            note: format!("Partner commissions, payout {}", payout.id),
        });
    }
    let input = PayoutFileInput {
        // The EPC character set has no underscore.
        batch_id: payout.id.to_string().replace('_', "-"),
        created_at: payout.created_at,
        execution_date: (ctx.now.to_zoned(jiff::tz::TimeZone::UTC).date()),
        currency: payout.currency(),
        lines,
    };
    let file_error = |e: partnerloop_domain::payout::PayoutFileError| AppError::conflict(Some("format"), e.to_string());
    let bytes = match format {
        ExportFormat::PaypalCsv => paypal_csv(&input).map_err(file_error)?,
        ExportFormat::Csv => generic_csv(&input).map_err(file_error)?,
        ExportFormat::SepaXml => {
            let s = open_settings(store, sealer, ctx)
                .await?
                .and_then(|s| s.sepa)
                .ok_or_else(|| AppError::conflict(Some("sepa"), "set the payer's SEPA account first (PUT /api/v1/settings/payouts)"))?;
            let payer = SepaPayer { debtor_name: s.debtor_name, iban: s.iban, bic: s.bic };
            sepa_xml(&input, &payer).map_err(file_error)?.into_bytes()
        }
        ExportFormat::Nacha => {
            let n = open_settings(store, sealer, ctx)
                .await?
                .and_then(|s| s.nacha)
                .ok_or_else(|| AppError::conflict(Some("nacha"), "set the payer's NACHA details first (PUT /api/v1/settings/payouts)"))?;
            let payer = NachaPayer {
                destination_name: n.destination_name.clone(),
                origin_name: n.company_name.clone(),
                immediate_destination: n.immediate_destination,
                immediate_origin: n.immediate_origin,
                company_name: n.company_name,
                company_id: n.company_id,
                odfi_routing: n.odfi_routing,
            };
            nacha(&input, &payer, 'A').map_err(file_error)?.into_bytes()
        }
    };
    Ok(Export { format, filename: format!("{}.{}", payout.id, format.extension()), bytes })
}

/// A payout line's id: unique per batch and partner, at most 30 characters.
fn line_id(payout: &PayoutId, partner: &PartnerId) -> String {
    let tail = |s: &str| s.chars().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect::<String>();
    format!("{}-{}", tail(payout.as_str()), tail(partner.as_str())).to_uppercase()
}
