//! The CRM port: what partnerloop asks of a CRM, in its own terms. The
//! HubSpot and Salesforce adapters (crate `partnerloop-crm`) implement it.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use partnerloop_domain::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrmKind {
    Native,
    Hubspot,
    Salesforce,
}

impl CrmKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CrmKind::Native => "native",
            CrmKind::Hubspot => "hubspot",
            CrmKind::Salesforce => "salesforce",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmCompany {
    pub name: String,
    pub domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmContact {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealForSync {
    pub referral_id: String,
    pub partner_id: String,
    pub partner_name: String,
    pub company: CrmCompany,
    pub contact: Option<CrmContact>,
    pub deal_name: String,
    pub amount: Option<Money>,
    /// The CRM's stage id, already mapped.
    pub stage: String,
    pub close_date: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmRefs {
    pub company_id: Option<String>,
    pub contact_id: Option<String>,
    pub deal_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmStage {
    pub id: String,
    pub label: String,
    pub pipeline_id: String,
    pub closed_won: bool,
    pub closed_lost: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmDealChange {
    pub deal_id: String,
    pub referral_id: Option<String>,
    pub stage: String,
    pub amount: Option<Money>,
    pub changed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesPage {
    pub changes: Vec<CrmDealChange>,
    /// Opaque to callers: given back to the next `changes_since`.
    pub cursor: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmAccount {
    pub crm_id: String,
    pub name: String,
    pub domain: Option<String>,
    pub is_customer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmOpenDeal {
    pub crm_id: String,
    pub name: String,
    pub company_domain: Option<String>,
    pub company_name: Option<String>,
    pub stage: String,
    pub referral_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillPage {
    pub accounts: Vec<CrmAccount>,
    pub open_deals: Vec<CrmOpenDeal>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrmError {
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    #[error("CRM unavailable: {0}")]
    Unavailable(String),
    #[error("CRM refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("CRM refused the credentials: {0}")]
    Unauthorized(String),
    #[error("not found in the CRM: {0}")]
    NotFound(String),
}

impl CrmError {
    /// Whether trying again later can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CrmError::RateLimited { .. } | CrmError::Unavailable(_))
    }
}

#[async_trait]
pub trait CrmConnector: Send + Sync {
    fn kind(&self) -> CrmKind;
    /// Creates what partnerloop needs in the CRM (custom properties) if absent.
    async fn prepare(&self) -> Result<(), CrmError>;
    async fn stages(&self) -> Result<Vec<CrmStage>, CrmError>;
    /// Idempotent: a retry never creates a second company, contact or deal.
    async fn sync_deal(&self, deal: &DealForSync, known: Option<&CrmRefs>) -> Result<CrmRefs, CrmError>;
    async fn set_stage(&self, deal_id: &str, stage: &str, amount: Option<Money>) -> Result<(), CrmError>;
    /// A retry with the same `key` adds no second note.
    async fn add_note(&self, deal_id: &str, key: &str, html_body: &str, at: Timestamp) -> Result<String, CrmError>;
    async fn changes_since(&self, cursor: Option<&str>) -> Result<ChangesPage, CrmError>;
    async fn backfill(&self, after: Option<&str>) -> Result<BackfillPage, CrmError>;
}
