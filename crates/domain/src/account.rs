//! Accounts: the companies the vendor already knows, which decide conflicts.

use crate::partner::text_enum;

text_enum!(
    /// `customer` and `off_limits` accounts cannot be registered by partners.
    AccountStatus { Prospect = "prospect", Customer = "customer", OffLimits = "off_limits" }
);
