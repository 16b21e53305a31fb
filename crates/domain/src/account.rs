//! Accounts: the companies the vendor already knows, which decide conflicts.

use crate::partner::text_enum;

text_enum!(
    /// `customer` and `off_limits` accounts cannot be registered by partners.
    AccountStatus { Prospect = "prospect", Customer = "customer", OffLimits = "off_limits" }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: crate::ids::AccountId,
    pub name: String,
    pub domain: crate::company::CompanyDomain,
    pub status: AccountStatus,
    pub owner_email: Option<crate::Email>,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
}
