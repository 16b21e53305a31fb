//! partnerloop's CRM connectors: HubSpot and Salesforce behind app's
//! [`CrmConnector`](partnerloop_app::crm::CrmConnector) port, HubSpot's
//! webhook v3 signature check, and (feature `fake`) in-memory servers that
//! speak both APIs for tests and benchmarks.

pub mod http;
pub mod hubspot;
pub mod hubspot_webhook;
pub mod salesforce;
pub mod salesforce_outbound;
mod seen;

#[cfg(feature = "fake")]
pub mod fake;

mod factory;
pub use factory::Connectors;
