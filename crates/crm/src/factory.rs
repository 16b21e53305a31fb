//! Builds HubSpot and Salesforce connectors from a workspace's stored
//! connection (settings + opened secrets).

use std::sync::Arc;

use partnerloop_app::crm::{CrmConnector, CrmKind};
use partnerloop_app::crm_sync::{ConnectorFactory, CrmSecrets, CrmSettings};
use partnerloop_domain::Currency;

use crate::http::Secret;
use crate::hubspot::{HubSpot, HubSpotConfig};
use crate::salesforce::{Salesforce, SalesforceAuth, SalesforceConfig};

/// The real connectors, as the binary wires them in.
#[derive(Debug, Default, Clone, Copy)]
pub struct Connectors;

impl ConnectorFactory for Connectors {
    fn build(&self, kind: CrmKind, s: &CrmSettings, secrets: &CrmSecrets, currency: &str) -> Result<Arc<dyn CrmConnector>, String> {
        let currency = Currency::parse("currency", currency).map_err(|e| e.to_string())?;
        match kind {
            CrmKind::Hubspot => {
                let token = secrets.token.clone().ok_or("the HubSpot token is not set")?;
                let mut c = HubSpotConfig::new(s.base_url.clone().unwrap_or_else(|| "https://api.hubapi.com".into()), Secret::new(token));
                if let Some(n) = s.requests_per_10s {
                    c.requests_per_10s = n;
                }
                if let Some(p) = &s.pipeline {
                    c.pipeline = p.clone();
                }
                c.currency = currency;
                Ok(Arc::new(HubSpot::new(c).map_err(|e| e.to_string())?))
            }
            CrmKind::Salesforce => {
                let instance_url = s.base_url.clone().ok_or("the Salesforce instance URL is not set")?;
                let auth = match (&secrets.private_key_pem, &s.client_id, &s.username) {
                    (Some(key), Some(client_id), Some(username)) => SalesforceAuth::JwtBearer {
                        login_url: s.login_url.clone().unwrap_or_else(|| "https://login.salesforce.com".into()),
                        consumer_key: client_id.clone(),
                        username: username.clone(),
                        private_key_pem: Secret::new(key.clone()),
                    },
                    _ => SalesforceAuth::AccessToken {
                        token: Secret::new(secrets.token.clone().ok_or("the Salesforce access token is not set")?),
                        instance_url,
                    },
                };
                let mut c = SalesforceConfig::new(auth);
                if let Some(v) = &s.api_version {
                    c.api_version = v.clone();
                }
                c.currency = currency;
                Ok(Arc::new(Salesforce::new(c)))
            }
            CrmKind::Native => Err("the native pipeline needs no connector".into()),
        }
    }
}
