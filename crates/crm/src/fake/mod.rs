//! In-memory HubSpot and Salesforce servers (feature `fake`) for tests and
//! benchmarks: real HTTP on a local port, state you can inspect, failures
//! you can inject. The fake HubSpot validates every request body against
//! HubSpot's published OpenAPI documents.

mod hubspot;
mod hubspot_routes;
mod hubspot_store;
pub mod spec;

pub use hubspot::{Failure, FakeHubSpot, RequestRecord, Violation, sign_webhook};
pub use hubspot_store::{HubAssociation, HubObject};

mod salesforce;
mod salesforce_data;
mod soql;

pub use salesforce::{FAKE_SF_TOKEN, FakeSalesforce};
