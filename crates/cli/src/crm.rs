//! CRM wiring: the default workspace's connection from the environment
//! (`PARTNERLOOP_HUBSPOT_*`, `PARTNERLOOP_SALESFORCE_*`), and the periodic
//! poll and backfill.

use std::sync::Arc;

use partnerloop_app::crm::CrmKind;
use partnerloop_app::crm_sync::{self, CrmConnectionInput, CrmHub, CrmSecrets, CrmSettings};
use partnerloop_app::sealing::Sealer;
use partnerloop_app::{Ctx, Store};
use partnerloop_domain::ids::WorkspaceId;

use crate::config::Config;

/// Connects the default workspace's CRM from the environment when it names
/// one and the stored connection differs (token, secret or URL); settings
/// made through the API (stage map, pipeline, portal) are kept.
pub async fn connect_from_env(store: &dyn Store, sealer: &Sealer, config: &Config, ws: &WorkspaceId) -> anyhow::Result<()> {
    let (kind, base_url, secrets) = match (&config.hubspot_token, &config.salesforce_token) {
        (Some(token), _) => (
            CrmKind::Hubspot,
            config.hubspot_base_url.clone(),
            CrmSecrets {
                token: Some(token.expose().to_owned()),
                client_secret: config.hubspot_client_secret.as_ref().map(|s| s.expose().to_owned()),
                private_key_pem: None,
            },
        ),
        (None, Some(token)) => {
            let Some(url) = &config.salesforce_instance_url else {
                anyhow::bail!("PARTNERLOOP_SALESFORCE_TOKEN needs PARTNERLOOP_SALESFORCE_INSTANCE_URL");
            };
            (CrmKind::Salesforce, url.clone(), CrmSecrets { token: Some(token.expose().to_owned()), ..Default::default() })
        }
        (None, None) => return Ok(()),
    };
    let existing = store.crm_connection(ws).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut settings = CrmSettings::default();
    if let Some(c) = &existing
        && c.kind == kind
    {
        let stored = c.secrets(sealer).ok();
        if c.settings.base_url.as_deref() == Some(base_url.as_str())
            && stored.as_ref().is_some_and(|s| s.token == secrets.token && s.client_secret == secrets.client_secret)
        {
            return Ok(());
        }
        settings = c.settings.clone();
    }
    settings.base_url = Some(base_url);
    let ctx = Ctx::system(ws.clone(), "cli", jiff::Timestamp::now());
    let input = CrmConnectionInput { kind: kind.as_str().to_owned(), settings, secrets };
    crm_sync::connect(store, sealer, &ctx, input).await.map_err(|e| anyhow::anyhow!("the CRM connection from the environment: {e:?}"))?;
    tracing::info!(crm = kind.as_str(), "the default workspace's CRM is connected from the environment");
    Ok(())
}

/// Polls every connected CRM for stage changes (every minute) and reads
/// accounts and open deals into the conflict-check cache (resumable; in
/// full once a day). Safe on several servers: changes apply idempotently.
pub async fn run(store: Arc<dyn Store>, hub: Arc<CrmHub>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if store.crm_connections().await.map(|c| c.is_empty()).unwrap_or(true) {
            continue;
        }
        match crm_sync::poll_all(store.as_ref(), &hub, jiff::Timestamp::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(changed = n, "CRM stage changes applied"),
            Err(e) => tracing::error!(error = ?e, "polling CRMs failed"),
        }
        match crm_sync::backfill_all(store.as_ref(), &hub, jiff::Timestamp::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(cached = n, "CRM accounts and open deals cached"),
            Err(e) => tracing::error!(error = ?e, "reading CRM accounts failed"),
        }
    }
}
