//! Configuration: one typed struct, layered defaults → TOML file →
//! `PARTNERLOOP_*` environment → command-line flags (a flag wins).
//! A bad value stops the start with one line naming the variable and why.
//! Secrets are wrapped so that `Debug` never shows them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use partnerloop_store::{SqliteSync, StoreOptions};
use serde::Deserialize;

/// A secret value: usable, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Settings given as flags or environment variables (clap reads both:
/// the flag wins). Every one may also come from the `--config` file.
#[derive(Debug, Args, Default)]
pub struct SettingsArgs {
    /// TOML file with settings (keys as the variables below, lower-case, without PARTNERLOOP_).
    #[arg(long, global = true, env = "PARTNERLOOP_CONFIG")]
    pub config: Option<PathBuf>,
    /// sqlite://PATH or postgres://…
    #[arg(long, global = true, env = "PARTNERLOOP_DATABASE_URL")]
    pub database_url: Option<String>,
    /// HTTP listen address.
    #[arg(long, global = true, env = "PARTNERLOOP_BIND")]
    pub bind: Option<String>,
    /// Public URL used in links sent to people (default http:// + bind).
    #[arg(long, global = true, env = "PARTNERLOOP_BASE_URL")]
    pub base_url: Option<String>,
    /// smtp://[user:pass@]host:port or smtps://…; unset writes .eml files.
    #[arg(long, global = true, env = "PARTNERLOOP_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    #[arg(long, global = true, env = "PARTNERLOOP_MAIL_DIR")]
    pub mail_dir: Option<String>,
    #[arg(long, global = true, env = "PARTNERLOOP_MAIL_FROM")]
    pub mail_from: Option<String>,
    #[arg(long, global = true, env = "PARTNERLOOP_INBOUND_SMTP_BIND")]
    pub inbound_smtp_bind: Option<String>,
    #[arg(long, global = true, env = "PARTNERLOOP_INBOUND_DOMAIN")]
    pub inbound_domain: Option<String>,
    #[arg(long, global = true, env = "PARTNERLOOP_SLACK_WEBHOOK_URL", hide_env_values = true)]
    pub slack_webhook_url: Option<String>,
    #[arg(long, global = true, env = "PARTNERLOOP_HUBSPOT_TOKEN", hide_env_values = true)]
    pub hubspot_token: Option<String>,
    #[arg(long, global = true, env = "PARTNERLOOP_HUBSPOT_CLIENT_SECRET", hide_env_values = true)]
    pub hubspot_client_secret: Option<String>,
    #[arg(long, global = true, env = "PARTNERLOOP_HUBSPOT_BASE_URL")]
    pub hubspot_base_url: Option<String>,
    #[arg(long, global = true, env = "PARTNERLOOP_SALESFORCE_INSTANCE_URL")]
    pub salesforce_instance_url: Option<String>,
    #[arg(long, global = true, env = "PARTNERLOOP_SALESFORCE_TOKEN", hide_env_values = true)]
    pub salesforce_token: Option<String>,
    /// Shared secret that POST /inbound/email?key= must carry (unset: endpoint off).
    #[arg(long, global = true, env = "PARTNERLOOP_INBOUND_KEY", hide_env_values = true)]
    pub inbound_key: Option<String>,
    /// Signs magic links and reply addresses (default: generated and stored on first start).
    #[arg(long, global = true, env = "PARTNERLOOP_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// SQLite durability: full (default: an acknowledged write survives power loss) or normal.
    #[arg(long, global = true, env = "PARTNERLOOP_SQLITE_SYNCHRONOUS")]
    pub sqlite_synchronous: Option<String>,
    /// Database connections per process.
    #[arg(long, global = true, env = "PARTNERLOOP_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<String>,
    /// Seconds an outbox item stays claimed by a dispatcher before another
    /// may retry it (default 300; a crashed server's items wait this long).
    #[arg(long, global = true, env = "PARTNERLOOP_OUTBOX_LEASE_SECONDS")]
    pub outbox_lease_seconds: Option<String>,
    /// Log filter (tracing EnvFilter syntax), default "info".
    #[arg(long, global = true, env = "PARTNERLOOP_LOG")]
    pub log: Option<String>,
}

/// The same settings as read from the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    bind: Option<String>,
    base_url: Option<String>,
    smtp_url: Option<String>,
    mail_dir: Option<String>,
    mail_from: Option<String>,
    inbound_smtp_bind: Option<String>,
    inbound_domain: Option<String>,
    slack_webhook_url: Option<String>,
    hubspot_token: Option<String>,
    hubspot_client_secret: Option<String>,
    hubspot_base_url: Option<String>,
    salesforce_instance_url: Option<String>,
    salesforce_token: Option<String>,
    inbound_key: Option<String>,
    secret_key: Option<String>,
    sqlite_synchronous: Option<String>,
    db_max_connections: Option<String>,
    outbox_lease_seconds: Option<String>,
    log: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub bind: SocketAddr,
    pub base_url: String,
    pub smtp_url: Option<Secret>,
    pub mail_dir: PathBuf,
    pub mail_from: String,
    pub inbound_smtp_bind: Option<SocketAddr>,
    pub inbound_domain: String,
    pub slack_webhook_url: Option<Secret>,
    pub hubspot_token: Option<Secret>,
    pub hubspot_client_secret: Option<Secret>,
    pub hubspot_base_url: String,
    pub salesforce_instance_url: Option<String>,
    pub salesforce_token: Option<Secret>,
    pub inbound_key: Option<Secret>,
    pub secret_key: Option<Secret>,
    pub store: StoreOptions,
    pub outbox_lease: std::time::Duration,
    pub log: String,
}

/// A refused setting: `PARTNERLOOP_BIND: 'x' is not …`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn refuse(var: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("PARTNERLOOP_{var}: {why}"))
}

fn http_url(var: &str, value: &str) -> Result<String, ConfigError> {
    let rest = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) => Ok(value.trim_end_matches('/').to_owned()),
        _ => Err(refuse(var, format!("'{value}' is not an http:// or https:// URL"))),
    }
}

fn socket(var: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| refuse(var, format!("'{value}' is not a listen address like 127.0.0.1:8080")))
}

fn min_secret(var: &str, value: String, min: usize) -> Result<Secret, ConfigError> {
    if value.len() < min {
        return Err(refuse(var, format!("is too short: use at least {min} characters")));
    }
    Ok(Secret(value))
}

fn smtp(value: String) -> Result<Secret, ConfigError> {
    let rest = value.strip_prefix("smtps://").or_else(|| value.strip_prefix("smtp://"));
    let host_port = rest.map(|r| r.rsplit_once('@').map(|(_, h)| h).unwrap_or(r));
    match host_port.and_then(|hp| hp.trim_end_matches('/').rsplit_once(':')) {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(Secret(value)),
        // The value may hold a password: never echo it.
        _ => Err(refuse("SMTP_URL", "is not smtp://[user:pass@]host:port or smtps://…")),
    }
}

fn load_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
        let at = line.map(|l| format!(":{l}")).unwrap_or_default();
        ConfigError(format!("{}{at}: {}", path.display(), e.message()))
    })
}

impl Config {
    pub fn load(args: &SettingsArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(p) => load_file(p)?,
            None => FileSettings::default(),
        };
        macro_rules! pick {
            ($name:ident) => {
                args.$name.clone().or(file.$name).filter(|v| !v.is_empty())
            };
        }
        let database_url = pick!(database_url).unwrap_or_else(|| "sqlite://partnerloop.db".into());
        partnerloop_store::engine_of(&database_url).map_err(|why| refuse("DATABASE_URL", why))?;
        let bind = socket("BIND", &pick!(bind).unwrap_or_else(|| "127.0.0.1:8080".into()))?;
        let base_url = match pick!(base_url) {
            Some(u) => http_url("BASE_URL", &u)?,
            None => format!("http://{bind}"),
        };
        let mail_from = pick!(mail_from).unwrap_or_else(|| "partners@localhost".into());
        if !mail_from.contains('@') || mail_from.contains(char::is_whitespace) || mail_from.starts_with('@') || mail_from.ends_with('@') {
            return Err(refuse("MAIL_FROM", format!("'{mail_from}' is not an email address")));
        }
        let inbound_domain = pick!(inbound_domain).unwrap_or_else(|| "localhost".into()).to_lowercase();
        if !inbound_domain.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')) {
            return Err(refuse("INBOUND_DOMAIN", format!("'{inbound_domain}' is not a domain name")));
        }
        let sqlite_synchronous = match pick!(sqlite_synchronous) {
            Some(s) => s.parse::<SqliteSync>().map_err(|why| refuse("SQLITE_SYNCHRONOUS", why))?,
            None => SqliteSync::Full,
        };
        let max_connections = match pick!(db_max_connections) {
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| refuse("DB_MAX_CONNECTIONS", format!("'{s}' is not a number from 1 to 1000")))?,
            None => StoreOptions::default().max_connections,
        };
        let outbox_lease = match pick!(outbox_lease_seconds) {
            Some(s) => s
                .parse::<u64>()
                .ok()
                .filter(|n| (5..=86_400).contains(n))
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| refuse("OUTBOX_LEASE_SECONDS", format!("'{s}' is not a number of seconds from 5 to 86400")))?,
            None => std::time::Duration::from_secs(300),
        };
        Ok(Config {
            database_url,
            bind,
            base_url,
            smtp_url: pick!(smtp_url).map(smtp).transpose()?,
            mail_dir: PathBuf::from(pick!(mail_dir).unwrap_or_else(|| "./mail".into())),
            mail_from,
            inbound_smtp_bind: pick!(inbound_smtp_bind).map(|v| socket("INBOUND_SMTP_BIND", &v)).transpose()?,
            inbound_domain,
            slack_webhook_url: pick!(slack_webhook_url)
                .map(|u| http_url("SLACK_WEBHOOK_URL", &u).map_err(|_| refuse("SLACK_WEBHOOK_URL", "is not an https:// URL")).map(Secret))
                .transpose()?,
            hubspot_token: pick!(hubspot_token).map(Secret),
            hubspot_client_secret: pick!(hubspot_client_secret).map(Secret),
            hubspot_base_url: http_url("HUBSPOT_BASE_URL", &pick!(hubspot_base_url).unwrap_or_else(|| "https://api.hubapi.com".into()))?,
            salesforce_instance_url: pick!(salesforce_instance_url).map(|u| http_url("SALESFORCE_INSTANCE_URL", &u)).transpose()?,
            salesforce_token: pick!(salesforce_token).map(Secret),
            inbound_key: pick!(inbound_key).map(|k| min_secret("INBOUND_KEY", k, 16)).transpose()?,
            secret_key: pick!(secret_key).map(|k| min_secret("SECRET_KEY", k, 32)).transpose()?,
            store: StoreOptions { sqlite_synchronous, max_connections, ..StoreOptions::default() },
            outbox_lease,
            log: pick!(log).unwrap_or_else(|| "info".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(f: impl FnOnce(&mut SettingsArgs)) -> Result<Config, ConfigError> {
        let mut a = SettingsArgs::default();
        f(&mut a);
        Config::load(&a)
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let c = load(|_| {}).unwrap();
        assert_eq!(c.database_url, "sqlite://partnerloop.db");
        assert_eq!(c.base_url, "http://127.0.0.1:8080");
        assert_eq!(c.mail_dir, PathBuf::from("./mail"));
        assert_eq!(c.hubspot_base_url, "https://api.hubapi.com");
    }

    #[test]
    fn each_bad_value_is_refused_with_its_variable_name() {
        type Setter = Box<dyn Fn(&mut SettingsArgs)>;
        let cases: Vec<(&str, Setter)> = vec![
            ("PARTNERLOOP_DATABASE_URL", Box::new(|a| a.database_url = Some("mysql://x".into()))),
            ("PARTNERLOOP_BIND", Box::new(|a| a.bind = Some("nowhere".into()))),
            ("PARTNERLOOP_BASE_URL", Box::new(|a| a.base_url = Some("ftp://x".into()))),
            ("PARTNERLOOP_SMTP_URL", Box::new(|a| a.smtp_url = Some("smtp://user:hunter2@host".into()))),
            ("PARTNERLOOP_MAIL_FROM", Box::new(|a| a.mail_from = Some("nobody".into()))),
            ("PARTNERLOOP_INBOUND_SMTP_BIND", Box::new(|a| a.inbound_smtp_bind = Some("25".into()))),
            ("PARTNERLOOP_INBOUND_DOMAIN", Box::new(|a| a.inbound_domain = Some("bad domain".into()))),
            ("PARTNERLOOP_SLACK_WEBHOOK_URL", Box::new(|a| a.slack_webhook_url = Some("hooks".into()))),
            ("PARTNERLOOP_HUBSPOT_BASE_URL", Box::new(|a| a.hubspot_base_url = Some("api.hubapi.com".into()))),
            ("PARTNERLOOP_SALESFORCE_INSTANCE_URL", Box::new(|a| a.salesforce_instance_url = Some("x".into()))),
            ("PARTNERLOOP_INBOUND_KEY", Box::new(|a| a.inbound_key = Some("short".into()))),
            ("PARTNERLOOP_SECRET_KEY", Box::new(|a| a.secret_key = Some("short".into()))),
            ("PARTNERLOOP_SQLITE_SYNCHRONOUS", Box::new(|a| a.sqlite_synchronous = Some("off".into()))),
            ("PARTNERLOOP_DB_MAX_CONNECTIONS", Box::new(|a| a.db_max_connections = Some("0".into()))),
            ("PARTNERLOOP_OUTBOX_LEASE_SECONDS", Box::new(|a| a.outbox_lease_seconds = Some("1".into()))),
        ];
        for (var, set) in cases {
            let err = load(|a| set(a)).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{var}: ")), "{var}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
            assert!(!err.contains("hunter2"), "a secret leaked: {err}");
        }
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let c = load(|a| a.secret_key = Some("k".repeat(40))).unwrap();
        assert!(!format!("{c:?}").contains("kkkk"));
    }

    #[test]
    fn the_file_fills_what_flags_and_environment_leave_unset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partnerloop.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9999\"\nmail_dir = \"/var/mail/pl\"\n").unwrap();
        let c = load(|a| {
            a.config = Some(path.clone());
            a.mail_dir = Some("/flag/wins".into());
        })
        .unwrap();
        assert_eq!(c.bind.port(), 9999);
        assert_eq!(c.mail_dir, PathBuf::from("/flag/wins"));
    }

    #[test]
    fn an_unknown_file_key_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:1\"\nbnid = 3\n").unwrap();
        let err = load(|a| a.config = Some(path.clone())).unwrap_err().to_string();
        assert!(err.contains("bad.toml:2"), "{err}");
        assert!(err.contains("bnid"), "{err}");
    }
}
