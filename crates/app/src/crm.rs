//! The CRM port: what partnerloop asks of a connected CRM (HubSpot,
//! Salesforce), in the product's words.
//!
//! Rules: every write is idempotent, because the outbox retries it — even
//! after a timeout where the first attempt did succeed. A connector finds
//! what it created before (by domain, email, referral id or an external id)
//! instead of creating it twice. Errors say whether a retry can help
//! ([`CrmError::is_retryable`]); a permanent one dead-letters the item.
//! Stage ids are the CRM's own, mapped from partnerloop's stages by
//! configuration before they reach a connector.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use partnerloop_domain::money::Money;

/// Which CRM holds the workspace's pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrmKind {
    /// No external CRM: partnerloop's own pipeline with configurable stages.
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

impl fmt::Display for CrmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CrmKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "native" => Ok(CrmKind::Native),
            "hubspot" => Ok(CrmKind::Hubspot),
            "salesforce" => Ok(CrmKind::Salesforce),
            other => Err(format!("'{other}' is not a CRM (native, hubspot, salesforce)")),
        }
    }
}

/// The referred company as the CRM should know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmCompany {
    pub name: String,
    /// Normalised domain (`acme.com`): the key that finds the company again.
    pub domain: Option<String>,
}

/// The referred contact person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmContact {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// A partner-sourced deal to create or update in the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealForSync {
    pub referral_id: String,
    pub partner_id: String,
    pub partner_name: String,
    pub company: CrmCompany,
    pub contact: Option<CrmContact>,
    pub deal_name: String,
    pub amount: Option<Money>,
    /// The CRM's stage id, already mapped from partnerloop's stage.
    pub stage: String,
    pub close_date: Option<Date>,
}

/// The CRM's ids for what a sync created or found; stored with the
/// referral and passed back as `known` on the next sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmRefs {
    pub company_id: Option<String>,
    pub contact_id: Option<String>,
    pub deal_id: String,
}

/// One stage of one of the CRM's deal pipelines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmStage {
    pub id: String,
    pub label: String,
    pub pipeline_id: String,
    pub closed_won: bool,
    pub closed_lost: bool,
}

/// A deal changed in the CRM (seen by polling or a webhook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmDealChange {
    pub deal_id: String,
    /// partnerloop's referral id when the deal is one partnerloop synced.
    pub referral_id: Option<String>,
    pub stage: String,
    pub amount: Option<Money>,
    pub changed_at: Timestamp,
}

/// One poll's worth of changes. Polls overlap by a few seconds so that
/// nothing is missed; the cursor remembers what the overlap already handed
/// out, but a change can still come twice (a cursor not stored after a
/// crash, a burst beyond the cursor's memory), so applying one twice must
/// be harmless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesPage {
    pub changes: Vec<CrmDealChange>,
    /// Opaque: store it and pass it to the next `changes_since`.
    pub cursor: String,
}

/// A company/account that exists in the CRM, for conflict checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmAccount {
    pub crm_id: String,
    pub name: String,
    pub domain: Option<String>,
    pub is_customer: bool,
}

/// An open deal in the CRM, for conflict checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmOpenDeal {
    pub crm_id: String,
    pub name: String,
    pub company_domain: Option<String>,
    pub company_name: Option<String>,
    pub stage: String,
    pub referral_id: Option<String>,
}

/// One page of a backfill; `next` is `None` on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackfillPage {
    pub accounts: Vec<CrmAccount>,
    pub open_deals: Vec<CrmOpenDeal>,
    pub next: Option<String>,
}

/// What went wrong talking to the CRM. Messages never contain tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrmError {
    #[error("the CRM's rate limit was reached; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// 5xx, network failure, timeout: retry later.
    #[error("the CRM is unavailable: {0}")]
    Unavailable(String),
    /// A permanent 4xx: retrying the same request cannot succeed.
    #[error("the CRM rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("the CRM refused the credentials: {0}")]
    Unauthorized(String),
    #[error("not found in the CRM: {0}")]
    NotFound(String),
}

impl CrmError {
    /// Whether the outbox should try again (rate limit, outage) rather
    /// than dead-letter the item.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CrmError::RateLimited { .. } | CrmError::Unavailable(_))
    }

    /// How long to wait before the retry, when the CRM said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CrmError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A connected CRM.
#[async_trait]
pub trait CrmConnector: Send + Sync {
    fn kind(&self) -> CrmKind;

    /// Makes the CRM ready for partnerloop. HubSpot: creates partnerloop's
    /// custom deal properties (partner name, partner id, referral id,
    /// partner-sourced flag) when absent. Salesforce: checks access.
    async fn prepare(&self) -> Result<(), CrmError>;

    /// The stages of every deal pipeline.
    async fn stages(&self) -> Result<Vec<CrmStage>, CrmError>;

    /// Creates or updates company, contact and deal. Idempotent: a retry
    /// (even after a timeout where the first attempt succeeded) never
    /// creates a second company, contact or deal — HubSpot searches by
    /// domain / email / referral id, Salesforce upserts by external id.
    /// `known` holds the refs of an earlier sync.
    async fn sync_deal(&self, deal: &DealForSync, known: Option<&CrmRefs>) -> Result<CrmRefs, CrmError>;

    async fn set_stage(&self, deal_id: &str, stage: &str, amount: Option<Money>) -> Result<(), CrmError>;

    /// Adds a note (e.g. a partner's reply) to the deal's timeline. `key`
    /// is the outbox item's idempotency key: a retry with the same key
    /// returns the note made before instead of adding a second one.
    async fn add_note(&self, deal_id: &str, key: &str, html_body: &str, at: Timestamp) -> Result<String, CrmError>;

    /// Deals modified since the cursor (`None`: since the beginning), by
    /// last-modified time, oldest first, one page at a time.
    async fn changes_since(&self, cursor: Option<&str>) -> Result<ChangesPage, CrmError>;

    /// One page of companies/accounts and open deals, for conflict checks.
    /// `after` is the previous page's `next`.
    async fn backfill(&self, after: Option<&str>) -> Result<BackfillPage, CrmError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crm_kind_round_trips_through_its_text() {
        for kind in [CrmKind::Native, CrmKind::Hubspot, CrmKind::Salesforce] {
            assert_eq!(kind.as_str().parse::<CrmKind>(), Ok(kind));
        }
        assert!("pipedrive".parse::<CrmKind>().is_err());
    }

    #[test]
    fn only_rate_limits_and_outages_are_retried() {
        assert!(CrmError::RateLimited { retry_after: Duration::from_secs(1) }.is_retryable());
        assert!(CrmError::Unavailable("503".into()).is_retryable());
        assert!(!CrmError::Rejected { status: 400, message: "bad".into() }.is_retryable());
        assert!(!CrmError::Unauthorized("401".into()).is_retryable());
        assert!(!CrmError::NotFound("deal 1".into()).is_retryable());
    }
}
