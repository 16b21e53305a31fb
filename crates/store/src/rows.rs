//! Database rows and their conversion into domain records. A row that does
//! not parse back is a storage error, never a panic.

use partnerloop_app::error::StoreError;
use partnerloop_app::store::{ApiKeyRecord, AuditEntry, KeyKind, Workspace};
use partnerloop_domain::account::{Account, AccountStatus};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::{Deal, DealSource, Stage};
use partnerloop_domain::ids::*;
use partnerloop_domain::partner::{Contact, Partner, PartnerStatus, PartnerType, ReferralCode};
use partnerloop_domain::plan::{BandPeriod, CommissionPlan, HoldFrom, PlanKind, Rate, Recurring, VolumeBand, VolumeBands};
use partnerloop_domain::{Currency, Email, FieldError, Money};

use crate::time::{from_text, opt_from_text};

pub(crate) fn bad(e: FieldError) -> StoreError {
    StoreError::Other(format!("stored value does not parse: {e}").into())
}

fn money(minor: Option<i64>, currency: Option<&str>) -> Result<Option<Money>, StoreError> {
    match (minor, currency) {
        (Some(m), Some(c)) => Ok(Some(Money::from_minor(m, Currency::parse("currency", c).map_err(bad)?))),
        _ => Ok(None),
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct WorkspaceRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub currency: String,
    pub created_at: String,
}

impl TryFrom<WorkspaceRow> for Workspace {
    type Error = StoreError;
    fn try_from(r: WorkspaceRow) -> Result<Self, StoreError> {
        Ok(Workspace {
            id: WorkspaceId::from_string(r.id),
            slug: r.slug,
            name: r.name,
            currency: r.currency,
            created_at: from_text(&r.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    pub id: String,
    pub workspace_id: String,
    pub kind: String,
    pub partner_id: Option<String>,
    pub name: Option<String>,
    pub token_hash: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl TryFrom<ApiKeyRow> for ApiKeyRecord {
    type Error = StoreError;
    fn try_from(r: ApiKeyRow) -> Result<Self, StoreError> {
        Ok(ApiKeyRecord {
            id: ApiKeyId::from_string(r.id),
            workspace_id: WorkspaceId::from_string(r.workspace_id),
            kind: if r.kind == "admin" { KeyKind::Admin } else { KeyKind::Partner },
            partner_id: r.partner_id.map(PartnerId::from_string),
            name: r.name,
            token_hash: r.token_hash,
            created_at: from_text(&r.created_at)?,
            revoked_at: opt_from_text(r.revoked_at.as_deref())?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PartnerRow {
    pub id: String,
    pub name: String,
    #[sqlx(rename = "type")]
    pub partner_type: String,
    pub status: String,
    pub tier: Option<String>,
    pub referral_code: String,
    pub website: Option<String>,
    pub commission_plan_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub first_referral_at: Option<String>,
}

/// A partner joined with one of its contacts (none: all `c_` are NULL).
#[derive(sqlx::FromRow)]
pub(crate) struct PartnerContactRow {
    #[sqlx(flatten)]
    pub p: PartnerRow,
    pub c_id: Option<String>,
    pub c_name: Option<String>,
    pub c_email: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ContactRow {
    pub id: String,
    pub partner_id: String,
    pub name: String,
    pub email: String,
}

impl PartnerRow {
    /// The partner with those of `contacts` that are its own, in id order.
    pub fn into_partner(self, contacts: &[ContactRow]) -> Result<Partner, StoreError> {
        let contacts = contacts
            .iter()
            .filter(|c| c.partner_id == self.id)
            .map(|c| {
                Ok(Contact {
                    id: ContactId::from_string(c.id.clone()),
                    name: c.name.clone(),
                    email: Email::parse("email", &c.email).map_err(bad)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Partner {
            id: PartnerId::from_string(self.id),
            name: self.name,
            partner_type: PartnerType::parse("type", &self.partner_type).map_err(bad)?,
            status: PartnerStatus::parse("status", &self.status).map_err(bad)?,
            tier: self.tier,
            referral_code: ReferralCode::parse("referral_code", &self.referral_code).map_err(bad)?,
            website: self.website.map(|w| CompanyDomain::parse("website", &w)).transpose().map_err(bad)?,
            commission_plan_id: self.commission_plan_id.map(PlanId::from_string),
            contacts,
            created_at: from_text(&self.created_at)?,
            updated_at: from_text(&self.updated_at)?,
            first_referral_at: opt_from_text(self.first_referral_at.as_deref())?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    pub id: String,
    pub name: String,
    pub domain: String,
    pub status: String,
    pub owner_email: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(Account {
            id: AccountId::from_string(r.id),
            name: r.name,
            domain: CompanyDomain::parse("domain", &r.domain).map_err(bad)?,
            status: AccountStatus::parse("status", &r.status).map_err(bad)?,
            owner_email: r.owner_email.map(|e| Email::parse("owner_email", &e)).transpose().map_err(bad)?,
            created_at: from_text(&r.created_at)?,
            updated_at: from_text(&r.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DealRow {
    pub id: String,
    pub name: String,
    pub company_name: String,
    pub company_domain: Option<String>,
    pub stage: String,
    pub amount_minor: i64,
    pub currency: String,
    pub source: String,
    pub owner_email: Option<String>,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub updated_at: String,
}

impl TryFrom<DealRow> for Deal {
    type Error = StoreError;
    fn try_from(r: DealRow) -> Result<Self, StoreError> {
        Ok(Deal {
            id: DealId::from_string(r.id),
            name: r.name,
            company_name: r.company_name,
            company_domain: r.company_domain.map(|d| CompanyDomain::parse("company_domain", &d)).transpose().map_err(bad)?,
            stage: Stage::parse("stage", &r.stage).map_err(bad)?,
            amount: Money::from_minor(r.amount_minor, Currency::parse("currency", &r.currency).map_err(bad)?),
            source: DealSource::parse("source", &r.source).map_err(bad)?,
            owner_email: r.owner_email.map(|e| Email::parse("owner_email", &e)).transpose().map_err(bad)?,
            created_at: from_text(&r.created_at)?,
            closed_at: opt_from_text(r.closed_at.as_deref())?,
            updated_at: from_text(&r.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PlanRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub rate: Option<String>,
    pub flat_minor: Option<i64>,
    pub flat_currency: Option<String>,
    pub tier_rates: Option<String>,
    pub cap_minor: Option<i64>,
    pub cap_currency: Option<String>,
    pub minimum_minor: Option<i64>,
    pub minimum_currency: Option<String>,
    pub hold_days: i32,
    pub is_default: bool,
    pub created_at: String,
    pub volume_bands: Option<String>,
    pub band_period: Option<String>,
    pub recurring_months: Option<i32>,
    pub recurring_hold_from: Option<String>,
}

impl TryFrom<PlanRow> for CommissionPlan {
    type Error = StoreError;
    fn try_from(r: PlanRow) -> Result<Self, StoreError> {
        let kind = match r.kind.as_str() {
            "percent" => PlanKind::Percent { rate: Rate::parse("rate", r.rate.as_deref().unwrap_or_default()).map_err(bad)? },
            "flat" => PlanKind::Flat {
                amount: money(r.flat_minor, r.flat_currency.as_deref())?.ok_or_else(|| bad(FieldError::new("flat", "missing")))?,
            },
            _ => {
                let map: std::collections::BTreeMap<String, String> =
                    serde_json::from_str(r.tier_rates.as_deref().unwrap_or("{}")).map_err(|e| StoreError::Other(Box::new(e)))?;
                let rates =
                    map.into_iter().map(|(t, v)| Ok((t, Rate::parse("rates", &v).map_err(bad)?))).collect::<Result<_, StoreError>>()?;
                PlanKind::Tiered { rates }
            }
        };
        let volume = match (r.volume_bands.as_deref(), r.band_period.as_deref()) {
            (Some(json), Some(period)) => {
                let raw: Vec<(u32, String)> = serde_json::from_str(json).map_err(|e| StoreError::Other(Box::new(e)))?;
                let bands = raw
                    .into_iter()
                    .map(|(from, rate)| Ok(VolumeBand { from, rate: Rate::parse("bands", &rate).map_err(bad)? }))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Some(VolumeBands::new(BandPeriod::parse("band_period", period).map_err(bad)?, bands).map_err(bad)?)
            }
            _ => None,
        };
        let recurring = match (r.recurring_months, r.recurring_hold_from.as_deref()) {
            (Some(m), Some(h)) => Some(Recurring {
                months: u32::try_from(m).map_err(|_| StoreError::Other("recurring_months out of range".into()))?,
                hold_from: HoldFrom::parse("recurring_hold_from", h).map_err(bad)?,
            }),
            _ => None,
        };
        Ok(CommissionPlan {
            id: PlanId::from_string(r.id),
            name: r.name,
            kind,
            cap: money(r.cap_minor, r.cap_currency.as_deref())?,
            minimum: money(r.minimum_minor, r.minimum_currency.as_deref())?,
            hold_days: u32::try_from(r.hold_days).map_err(|e| StoreError::Other(Box::new(e)))?,
            is_default: r.is_default,
            created_at: from_text(&r.created_at)?,
            volume,
            recurring,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub before_state: Option<String>,
    pub after_state: Option<String>,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        let json = |s: Option<String>| -> Result<Option<serde_json::Value>, StoreError> {
            s.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Other(Box::new(e)))).transpose()
        };
        Ok(AuditEntry {
            at: from_text(&r.at)?,
            actor: r.actor,
            action: r.action,
            entity: r.entity,
            entity_id: r.entity_id,
            before: json(r.before_state)?,
            after: json(r.after_state)?,
        })
    }
}
