//! `partnerloop`: the one binary. Parses configuration, picks the adapters
//! (this is the only crate that knows every concrete type) and runs a
//! command.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use partnerloop_app::{Ctx, Store, workspaces};
use partnerloop_store::SqlStore;

mod config;
mod crm;
mod demo;
mod export;
mod import;
mod outbox;
mod payouts;

use config::{Config, SettingsArgs};

#[derive(Debug, Parser)]
#[command(name = "partnerloop", version, about = "Referral partner programs that turn introductions into predictable pipeline.")]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (applies pending migrations first).
    Serve {
        /// Seed a demo workspace when the database is empty.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API tokens.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage staff users of the web console.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Import a CSV file of accounts, partners, direct deals or historic referrals.
    Import {
        #[arg(value_enum)]
        kind: import::Kind,
        file: std::path::PathBuf,
        #[arg(long, default_value = workspaces::DEFAULT_SLUG)]
        workspace: String,
        /// Import the good rows of a file that has bad ones (which are reported).
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Export referrals, commissions or partners as CSV or JSON (any size, streamed).
    Export {
        #[arg(value_enum)]
        kind: export::Kind,
        #[arg(long, value_enum, default_value = "csv")]
        format: export::Format,
        /// Write here instead of stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        #[arg(long, default_value = workspaces::DEFAULT_SLUG)]
        workspace: String,
    },
    /// Commissions: accrue what won referrals have not yet earned.
    Commissions {
        #[command(subcommand)]
        command: payouts::CommissionsCommand,
    },
    /// Payout batches: make one, export it for PayPal or the bank.
    Payouts {
        #[command(subcommand)]
        command: payouts::PayoutsCommand,
    },
    /// Seed demo data (partners, accounts, deals, plans) into a workspace.
    Demo {
        #[arg(long, default_value = workspaces::DEFAULT_SLUG)]
        workspace: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API token and print it, alone, on stdout.
    Create {
        #[arg(long, value_enum)]
        role: Role,
        /// Workspace slug; created when it does not exist.
        #[arg(long, default_value = workspaces::DEFAULT_SLUG)]
        workspace: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Role {
    Admin,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a staff user and print a single-use sign-in URL, alone, on stdout.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_enum)]
        role: StaffRoleArg,
        /// Workspace slug; created when it does not exist.
        #[arg(long, default_value = workspaces::DEFAULT_SLUG)]
        workspace: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StaffRoleArg {
    Admin,
    Manager,
    Finance,
    Sales,
}

impl From<StaffRoleArg> for partnerloop_app::staff::StaffRole {
    fn from(r: StaffRoleArg) -> Self {
        use partnerloop_app::staff::StaffRole;
        match r {
            StaffRoleArg::Admin => StaffRole::Admin,
            StaffRoleArg::Manager => StaffRole::Manager,
            StaffRoleArg::Finance => StaffRole::Finance,
            StaffRoleArg::Sales => StaffRole::Sales,
        }
    }
}

/// A use case's error in one line for the operator: field errors name their field.
fn one_line(e: &partnerloop_app::AppError) -> String {
    match e {
        partnerloop_app::AppError::Invalid(fields) => {
            fields.iter().map(|f| format!("--{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
        }
        partnerloop_app::AppError::Conflict { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// An import stopped by bad rows (already reported line by line).
#[derive(Debug, thiserror::Error)]
#[error("the import was refused")]
struct ImportRefused;

fn main() -> ExitCode {
    partnerloop_jobs::http::install_crypto_provider();
    let cli = Cli::parse();
    let config = match Config::load(&cli.settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("partnerloop: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("partnerloop: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<ImportRefused>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("partnerloop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr: stdout carries command output (tokens, URLs) alone.
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn open_store(config: &Config) -> anyhow::Result<Arc<SqlStore>> {
    let store = SqlStore::connect(&config.database_url, &config.store)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&config.database_url)))?;
    store.migrate().await.context("cannot apply database migrations")?;
    Ok(Arc::new(store))
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            open_store(&config).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Keys { command: KeysCommand::Create { role: Role::Admin, workspace, name } } => {
            let store = open_store(&config).await?;
            let now = jiff::Timestamp::now();
            let ws = workspaces::ensure(store.as_ref(), &workspace, now).await.map_err(|e| anyhow::anyhow!("--workspace: {e:?}"))?;
            let ctx = Ctx::system(ws.id, "cli", now);
            let token = partnerloop_app::auth::create_admin_key(store.as_ref(), &ctx, name.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the key: {e}"))?;
            println!("{token}");
            Ok(())
        }
        Command::Users { command: UsersCommand::Create { email, role, workspace } } => {
            let store = open_store(&config).await?;
            let now = jiff::Timestamp::now();
            let ws =
                workspaces::ensure(store.as_ref(), &workspace, now).await.map_err(|e| anyhow::anyhow!("--workspace: {}", one_line(&e)))?;
            let ctx = Ctx::system(ws.id, "cli", now);
            let (_, url) = partnerloop_app::staff::create_user(store.as_ref(), &config.base_url, &ctx, &email, role.into())
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the user: {}", one_line(&e)))?;
            println!("{url}");
            Ok(())
        }
        Command::Demo { workspace } => {
            let store = open_store(&config).await?;
            let token = demo::seed(store.as_ref(), &workspace).await?;
            println!("{token}");
            Ok(())
        }
        Command::Serve { demo } => serve(config, demo).await,
        Command::Export { kind, format, output, workspace } => {
            let store = open_store(&config).await?;
            export::run(store.as_ref(), &workspace, kind, format, output).await
        }
        Command::Commissions { command } => {
            let store = open_store(&config).await?;
            payouts::run_commissions(store.as_ref(), command).await
        }
        Command::Payouts { command } => {
            let store = open_store(&config).await?;
            let sealer = partnerloop_app::sealing::Sealer::from_secret(&secret_key(&config, store.as_ref()).await?);
            payouts::run(store.as_ref(), &sealer, command).await
        }
        Command::Import { kind, file, workspace, skip_invalid } => {
            let store = open_store(&config).await?;
            let now = jiff::Timestamp::now();
            let ws = workspaces::ensure(store.as_ref(), &workspace, now).await.map_err(|e| anyhow::anyhow!("--workspace: {e:?}"))?;
            let ctx = Ctx::system(ws.id, "import", now);
            match import::run(store.as_ref(), &ctx, kind, &file, skip_invalid).await? {
                Some(_) => Ok(()),
                None => Err(ImportRefused.into()),
            }
        }
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let now = jiff::Timestamp::now();
    workspaces::ensure(store.as_ref(), workspaces::DEFAULT_SLUG, now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let secret = secret_key(&config, store.as_ref()).await?;
    if demo && demo::is_empty(store.as_ref()).await? {
        let token = demo::seed(store.as_ref(), workspaces::DEFAULT_SLUG).await?;
        let ws = store.workspace_by_slug(workspaces::DEFAULT_SLUG).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let ctx = Ctx::system(ws.id, "demo", now);
        let (user, url) = partnerloop_app::staff::create_user(
            store.as_ref(),
            &config.base_url,
            &ctx,
            "admin@demo.example",
            partnerloop_app::staff::StaffRole::Admin,
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the demo staff user: {}", one_line(&e)))?;
        // Shown to the operator's terminal once, like `keys create`; never logged.
        println!(
            "Demo workspace seeded. Admin API token (shown once): {token}\nWeb console: sign in as {} with {url} (single use, {} minutes)",
            user.email,
            partnerloop_app::staff::LINK_MINUTES
        );
    }
    let listener = tokio::net::TcpListener::bind(config.bind).await.with_context(|| format!("cannot listen on {}", config.bind))?;
    log_setup(&config);
    tracing::info!(address = %config.bind, base_url = %config.base_url, database = store_engine(&store), "partnerloop is serving");
    let default_ws = store.workspace_by_slug(workspaces::DEFAULT_SLUG).await.map_err(|e| anyhow::anyhow!("{e}"))?.id;
    let jobs = tokio::spawn(run_scheduler(store.clone(), outbox::notify_config(&config, &secret, &default_ws)));
    // CRM connectors: one per connected workspace, built on first use.
    let sealer = Arc::new(partnerloop_app::sealing::Sealer::from_secret(&secret));
    crm::connect_from_env(store.as_ref(), &sealer, &config, &default_ws).await?;
    let hub = Arc::new(partnerloop_app::crm_sync::CrmHub::new(Arc::new(partnerloop_crm::Connectors), sealer));
    let crm_jobs = tokio::spawn(crm::run(store.clone(), hub.clone()));
    let crm_sender = partnerloop_jobs::crm::CrmSender::new(store.clone(), hub.clone());
    let dispatcher = Arc::new(outbox::dispatcher(&config, store.clone(), &secret, &default_ws)?.with_crm(Arc::new(crm_sender)));
    let delivering = tokio::spawn(dispatcher.run(std::future::pending()));
    let mut state = partnerloop_web::AppState::new(store.clone(), &secret)
        .with_links(outbox::notify_config(&config, &secret, &default_ws))
        .with_mail_setup(mail_setup(&config))
        .with_crm(hub);
    let intake = Arc::new(partnerloop_web::inbound::Intake::new(
        store.clone(),
        state.matcher.clone(),
        outbox::notify_config(&config, &secret, &default_ws),
    ));
    if let Some(key) = &config.inbound_key {
        state = state.with_inbound(key.expose(), intake.clone());
    }
    let receiving = match config.inbound_smtp_bind {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("PARTNERLOOP_INBOUND_SMTP_BIND: cannot listen on {addr}"))?;
            let receiver = partnerloop_mail::smtp_in::ReceiverConfig {
                hostname: config.inbound_domain.clone(),
                max_message_bytes: partnerloop_web::inbound::MAX_MESSAGE_BYTES,
                ..Default::default()
            };
            Some(tokio::spawn(partnerloop_mail::smtp_in::serve(listener, receiver, intake, std::future::pending::<()>())))
        }
        None => None,
    };
    partnerloop_web::serve(listener, partnerloop_web::router(state), shutdown_signal()).await.context("the server failed")?;
    // An item being delivered right now keeps its lease and is retried by
    // the next start: stopping never loses one.
    delivering.abort();
    if let Some(r) = receiving {
        r.abort();
    }
    jobs.abort();
    crm_jobs.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The instance's secret key: configured, or generated once and stored.
async fn secret_key(config: &Config, store: &dyn partnerloop_app::Store) -> anyhow::Result<String> {
    match &config.secret_key {
        Some(k) => Ok(k.expose().to_owned()),
        None => store
            .instance_setting_or_init("secret_key", partnerloop_app::auth::random_secret())
            .await
            .context("cannot store the generated secret key"),
    }
}

/// Periodic work: protection windows that lapsed are expired, freeing
/// their accounts; commissions whose hold ended become payable; partner
/// tiers are re-evaluated. Each run is idempotent, so several servers may run it.
async fn run_scheduler(store: Arc<SqlStore>, notify: partnerloop_app::notify::NotifyConfig) {
    // Tiers move on a 12-month window and a grace period counted in days:
    // hourly is prompt enough (admins evaluate on demand with POST
    // /api/v1/tiers/evaluate), and it keeps the one-minute loop cheap.
    const TIER_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Expiry warnings and stalled-deal alerts are keyed by what they are
    // about, so a run repeats nothing; every 10 minutes keeps them prompt.
    const NOTICES_EVERY: std::time::Duration = std::time::Duration::from_secs(600);
    let mut tiers_last_run: Option<std::time::Instant> = None;
    let mut notices_last_run: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        match partnerloop_app::referrals::expire_lapsed(store.as_ref(), jiff::Timestamp::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "protection windows expired"),
            Err(e) => tracing::error!(error = ?e, "expiring protection windows failed"),
        }
        match partnerloop_app::metrics::compact_counters(store.as_ref()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(folded = n, "KPI counters compacted"),
            Err(e) => tracing::error!(error = ?e, "compacting the KPI counters failed"),
        }
        match partnerloop_app::commissions::release_due(store.as_ref(), None, jiff::Timestamp::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "commissions became payable"),
            Err(e) => tracing::error!(error = ?e, "releasing commissions failed"),
        }
        if notices_last_run.is_none_or(|t| t.elapsed() >= NOTICES_EVERY) {
            notices_last_run = Some(std::time::Instant::now());
            match partnerloop_app::notify::scheduled::run(store.as_ref(), &notify, jiff::Timestamp::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "expiry warnings and stalled-deal alerts"),
                Err(e) => tracing::error!(error = ?e, "scheduled notices failed"),
            }
        }
        if tiers_last_run.is_none_or(|t| t.elapsed() >= TIER_EVERY) {
            tiers_last_run = Some(std::time::Instant::now());
            // Last month's digest, once per workspace (marked when queued).
            match partnerloop_app::notify::scheduled::digests(store.as_ref(), &notify, jiff::Timestamp::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "monthly digests"),
                Err(e) => tracing::error!(error = ?e, "monthly digests failed"),
            }
            match partnerloop_app::signin::prune(store.as_ref(), jiff::Timestamp::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired sign-in links and sessions"),
                Err(e) => tracing::error!(error = ?e, "pruning sign-in links failed"),
            }
            match partnerloop_app::tiers::evaluate_all(store.as_ref(), jiff::Timestamp::now()).await {
                Ok(r) if r.changed() == 0 => {}
                Ok(r) => tracing::info!(promoted = r.promoted, demoted = r.demoted, reassigned = r.reassigned, "partner tiers changed"),
                Err(e) => tracing::error!(error = ?e, "evaluating partner tiers failed"),
            }
        }
    }
}

/// The SMTP server's host and port, without the user name or password.
fn smtp_host(url: &str) -> &str {
    url.rsplit_once('@').map(|(_, h)| h).unwrap_or_else(|| url.split_once("://").map(|(_, h)| h).unwrap_or_default())
}

/// How mail leaves this server, in words for the console; no secrets.
fn mail_setup(c: &Config) -> String {
    match &c.smtp_url {
        Some(url) => format!("Sent over SMTP through {} as {}.", smtp_host(url.expose()), c.mail_from),
        None => format!("Written as .eml files under {} (no SMTP server configured), as {}.", c.mail_dir.display(), c.mail_from),
    }
}

/// One line per adapter saying how it is set up; secrets never appear.
fn log_setup(c: &Config) {
    match &c.smtp_url {
        Some(url) => tracing::info!(host = smtp_host(url.expose()), from = %c.mail_from, "mail: SMTP"),
        None => {
            tracing::info!(dir = %c.mail_dir.display(), from = %c.mail_from, "mail: written as .eml files")
        }
    }
    match c.inbound_smtp_bind {
        Some(addr) => {
            tracing::info!(%addr, domain = %c.inbound_domain, "inbound SMTP receiver: on")
        }
        None => tracing::info!(domain = %c.inbound_domain, "inbound SMTP receiver: off"),
    }
    tracing::info!(
        inbound_email_endpoint = c.inbound_key.is_some(),
        slack = c.slack_webhook_url.is_some(),
        hubspot = c.hubspot_token.is_some(),
        hubspot_webhooks_verified = c.hubspot_client_secret.is_some(),
        hubspot_base_url = %c.hubspot_base_url,
        salesforce = c.salesforce_instance_url.as_deref().unwrap_or("off"),
        salesforce_token = c.salesforce_token.is_some(),
        secret_key = if c.secret_key.is_some() { "configured" } else { "generated and stored" },
        "integrations"
    );
}

fn store_engine(store: &SqlStore) -> &'static str {
    store.engine()
}

/// Resolves on SIGTERM or Ctrl-C; the server then drains in-flight requests.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::smtp_host;

    #[test]
    fn the_smtp_host_never_carries_the_credentials() {
        assert_eq!(smtp_host("smtps://mailer:s3cr3t@smtp.example.com:465"), "smtp.example.com:465");
        assert_eq!(smtp_host("smtp://user:p@ss@word@mail.example:25"), "mail.example:25");
        assert_eq!(smtp_host("smtp://127.0.0.1:2525"), "127.0.0.1:2525");
    }
}
