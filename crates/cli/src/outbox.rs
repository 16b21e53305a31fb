//! Wiring of the outbox dispatcher: which transports this installation
//! delivers through, from the configuration.

use std::sync::Arc;

use partnerloop_app::Store;
use partnerloop_app::notify::NotifyConfig;
use partnerloop_domain::ids::WorkspaceId;
use partnerloop_jobs::Dispatcher;
use partnerloop_jobs::email::Mailer;
use partnerloop_jobs::http::HttpSender;

use crate::config::Config;

pub fn notify_config(config: &Config, secret: &str, default_ws: &WorkspaceId) -> NotifyConfig {
    NotifyConfig {
        base_url: config.base_url.trim_end_matches('/').to_owned(),
        inbound_domain: config.inbound_domain.clone(),
        link_key: partnerloop_app::notify::link_key(secret),
        default_slack_workspace: config.slack_webhook_url.as_ref().map(|_| default_ws.clone()),
    }
}

pub fn dispatcher(config: &Config, store: Arc<dyn Store>, secret: &str, default_ws: &WorkspaceId) -> anyhow::Result<Dispatcher> {
    let mail = match &config.smtp_url {
        Some(url) => Mailer::smtp(url.expose(), &config.mail_from).map_err(|e| anyhow::anyhow!(e))?,
        None => Mailer::files(config.mail_dir.clone(), &config.mail_from),
    };
    let sealer = Arc::new(partnerloop_app::sealing::Sealer::from_secret(secret));
    let slack = config.slack_webhook_url.as_ref().map(|u| (default_ws.clone(), u.expose().to_owned()));
    let http = HttpSender::new(store.clone(), sealer, slack);
    Ok(Dispatcher::new(store, notify_config(config, secret, default_ws), Arc::new(mail), Arc::new(http)).with_lease(config.outbox_lease))
}
