//! `partnerloop payouts run|export` and `partnerloop commissions accrue`:
//! the money side from the command line.
//!
//! `run` makes a draft batch and prints its id alone on stdout (a summary
//! goes to stderr), so scripts can chain `export`; `export` writes the file
//! to stdout or to `--output`.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use partnerloop_app::payouts::{self, ExportFormat};
use partnerloop_app::sealing::Sealer;
use partnerloop_app::{AppError, Ctx, Store, workspaces};
use partnerloop_domain::Currency;
use partnerloop_domain::commission::PayoutId;

#[derive(Debug, Subcommand)]
pub enum PayoutsCommand {
    /// Make a draft batch of every payable balance at or above the minimum; prints its id.
    Run {
        /// ISO 4217 currency of the batch (default: the workspace's).
        #[arg(long)]
        currency: Option<String>,
        #[arg(long, default_value = workspaces::DEFAULT_SLUG)]
        workspace: String,
    },
    /// Write a batch as a file for PayPal or the bank.
    Export {
        id: String,
        /// paypal_csv | sepa_xml | nacha | csv
        #[arg(long)]
        format: String,
        /// Write here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
        #[arg(long, default_value = workspaces::DEFAULT_SLUG)]
        workspace: String,
    },
}

fn app_error(e: AppError) -> anyhow::Error {
    match e {
        AppError::Invalid(errors) => {
            anyhow::anyhow!(errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))
        }
        AppError::Conflict { message, field } => anyhow::anyhow!("{}{message}", field.map(|f| format!("{f}: ")).unwrap_or_default()),
        AppError::NotFound => anyhow::anyhow!("no such payout"),
        other => anyhow::anyhow!("{other}"),
    }
}

pub async fn run(store: &dyn Store, sealer: &Sealer, command: PayoutsCommand) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    match command {
        PayoutsCommand::Run { currency, workspace } => {
            let ws = workspaces::ensure(store, &workspace, now).await.map_err(app_error).context("--workspace")?;
            let code = currency.unwrap_or_else(|| ws.currency.clone());
            let currency = Currency::parse("--currency", &code).map_err(|e| anyhow::anyhow!("{e}"))?;
            let ctx = Ctx::system(ws.id, "payouts run", now);
            let created = payouts::create(store, &ctx, currency).await.map_err(app_error)?;
            for k in &created.skipped {
                eprintln!("skipped {}: {} ({})", k.partner_id, k.reason, k.balance);
            }
            let Some(p) = created.payout else {
                anyhow::bail!("nothing to pay in {currency}: no partner has a payable balance at or above the minimum with payout details");
            };
            eprintln!("draft payout {}: {} to {} partners ({} commissions)", p.id, p.total, p.items.len(), p.commission_count);
            println!("{}", p.id);
            Ok(())
        }
        PayoutsCommand::Export { id, format, output, workspace } => {
            let ws = workspaces::ensure(store, &workspace, now).await.map_err(app_error).context("--workspace")?;
            let format = ExportFormat::parse(&format).map_err(app_error).context("--format")?;
            let ctx = Ctx::system(ws.id, "payouts export", now);
            let file = payouts::export(store, sealer, &ctx, &PayoutId::from_string(id.clone()), format)
                .await
                .map_err(app_error)
                .with_context(|| format!("payout {id}"))?;
            match output {
                Some(path) => std::fs::write(&path, &file.bytes).with_context(|| format!("cannot write {}", path.display()))?,
                None => std::io::stdout().write_all(&file.bytes).context("cannot write to stdout")?,
            }
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CommissionsCommand {
    /// Accrue the commission of every won referral that has none (imported
    /// history, wins from before a plan existed), at its won date.
    Accrue {
        #[arg(long, default_value = workspaces::DEFAULT_SLUG)]
        workspace: String,
    },
}

pub async fn run_commissions(store: &dyn Store, command: CommissionsCommand) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    match command {
        CommissionsCommand::Accrue { workspace } => {
            let ws = workspaces::ensure(store, &workspace, now).await.map_err(app_error).context("--workspace")?;
            let ctx = Ctx::system(ws.id, "commissions accrue", now);
            let report = partnerloop_app::commissions::accrue_missing(store, &ctx).await.map_err(app_error)?;
            let released = partnerloop_app::commissions::release_due(store, Some(&ctx.workspace_id), now).await.map_err(app_error)?;
            println!(
                "{} commissions accrued ({} now payable); {} won referrals without a plan",
                report.accrued, released, report.without_plan
            );
            Ok(())
        }
    }
}
