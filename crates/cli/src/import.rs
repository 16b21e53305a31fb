//! `partnerloop import accounts|partners|deals|referrals FILE.csv`.
//!
//! The file is read record by record (never whole into memory), every row
//! parsed into domain values, then checked against the other rows and the
//! stored data. Any bad row: every problem is printed as
//! `FILE:LINE: field: reason` and nothing is imported (exit status 1),
//! unless `--skip-invalid`, which imports the good rows. The good rows are
//! written in one transaction. A progress bar shows on a terminal.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use clap::ValueEnum;
use partnerloop_app::accounts::AccountForCreate;
use partnerloop_app::deals::DealForCreate;
use partnerloop_app::import::{self, Line, LineError, Plan, ReferralRow};
use partnerloop_app::partners::PartnerForCreate;
use partnerloop_app::{Ctx, Store};
use partnerloop_domain::account::AccountStatus;
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::{DealSource, Stage};
use partnerloop_domain::partner::{PartnerStatus, PartnerType};
use partnerloop_domain::referral::ReferralStatus;
use partnerloop_domain::validation::{optional_text, parse_time, required_text};
use partnerloop_domain::{Email, FieldError, Money, Validator};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Accounts,
    Partners,
    Deals,
    Referrals,
}

impl Kind {
    /// (required columns, optional columns), as in API.md.
    fn columns(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Kind::Partners => (&["name", "type", "contact_name", "contact_email"], &["created_at"]),
            Kind::Accounts => (&["name", "domain", "status"], &["owner_email"]),
            Kind::Deals => {
                (&["name", "company_name", "company_domain", "stage", "amount", "currency"], &["owner_email", "created_at", "closed_at"])
            }
            Kind::Referrals => (
                &["partner_contact_email", "company_name", "contact_name", "contact_email"],
                &["company_domain", "context", "created_at", "status", "stage", "amount", "currency", "closed_at"],
            ),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Accounts => "accounts",
            Kind::Partners => "partners",
            Kind::Deals => "deals",
            Kind::Referrals => "referrals",
        }
    }
}

/// One CSV record by column name; empty cells are absent.
struct Row<'a> {
    cells: HashMap<&'a str, &'a str>,
}

impl Row<'_> {
    fn opt(&self, col: &str) -> Option<&str> {
        self.cells.get(col).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn req(&self, col: &str) -> &str {
        self.opt(col).unwrap_or_default()
    }

    fn time(&self, v: &mut Validator, col: &str) -> Option<Option<jiff::Timestamp>> {
        v.check_opt(self.opt(col), |t| parse_time(col, t))
    }

    fn email(&self, v: &mut Validator, col: &str) -> Option<Email> {
        v.check(Email::parse(col, self.req(col)))
    }

    /// `amount` and `currency` as one Money; the field names are the columns.
    fn money(&self, v: &mut Validator) -> Option<Option<Money>> {
        match (self.opt("amount"), self.opt("currency")) {
            (None, None) => Some(None),
            (Some(a), Some(c)) => v
                .check(Money::parse_non_negative("m", a, c).map_err(|e| FieldError::new(e.field.trim_start_matches("m."), e.message)))
                .map(Some),
            (Some(_), None) => v.check(Err(FieldError::new("currency", "is required with an amount"))),
            (None, Some(_)) => v.check(Err(FieldError::new("amount", "is required with a currency"))),
        }
    }
}

fn parse_partner(r: &Row) -> Result<PartnerForCreate, Vec<FieldError>> {
    let mut v = Validator::new();
    let name = v.check(required_text("name", r.req("name"), 200));
    let partner_type = v.check(PartnerType::parse("type", r.req("type")));
    let contact_name = v.check(required_text("contact_name", r.req("contact_name"), 200));
    let contact_email = r.email(&mut v, "contact_email");
    let created_at = r.time(&mut v, "created_at");
    v.finish(|| {
        Some(PartnerForCreate {
            name: name?,
            partner_type: partner_type?,
            status: PartnerStatus::Active,
            tier: None,
            contact_name: contact_name?,
            contact_email: contact_email?,
            website: None,
            commission_plan_id: None,
            created_at: created_at?,
        })
    })
}

fn parse_account(r: &Row) -> Result<AccountForCreate, Vec<FieldError>> {
    let mut v = Validator::new();
    let name = v.check(required_text("name", r.req("name"), 200));
    let domain = v.check(CompanyDomain::parse("domain", r.req("domain")));
    let status = v.check(AccountStatus::parse("status", r.req("status")));
    let owner = v.check_opt(r.opt("owner_email"), |e| Email::parse("owner_email", e));
    v.finish(|| Some(AccountForCreate { name: name?, domain: domain?, status: status?, owner_email: owner? }))
}

fn parse_deal(r: &Row) -> Result<DealForCreate, Vec<FieldError>> {
    let mut v = Validator::new();
    let name = v.check(required_text("name", r.req("name"), 200));
    let company_name = v.check(required_text("company_name", r.req("company_name"), 200));
    let domain = v.check(CompanyDomain::parse("company_domain", r.req("company_domain")));
    let stage = v.check(Stage::parse("stage", r.req("stage")));
    let amount = match r.money(&mut v) {
        Some(Some(m)) => Some(m),
        Some(None) => v.check(Err(FieldError::new("amount", "is required"))),
        None => None,
    };
    let owner = v.check_opt(r.opt("owner_email"), |e| Email::parse("owner_email", e));
    let created_at = r.time(&mut v, "created_at");
    let closed_at = r.time(&mut v, "closed_at");
    v.finish(|| {
        Some(DealForCreate {
            name: name?,
            company_name: company_name?,
            company_domain: Some(domain?),
            stage: stage?,
            amount: amount?,
            source: DealSource::Direct,
            owner_email: owner?,
            created_at: created_at?,
            closed_at: closed_at?,
        })
    })
}

fn parse_referral(r: &Row) -> Result<ReferralRow, Vec<FieldError>> {
    let mut v = Validator::new();
    let partner = r.email(&mut v, "partner_contact_email");
    let company_name = v.check(required_text("company_name", r.req("company_name"), 200));
    let domain = v.check_opt(r.opt("company_domain"), |d| CompanyDomain::parse("company_domain", d));
    let contact_name = v.check(required_text("contact_name", r.req("contact_name"), 200));
    let contact_email = r.email(&mut v, "contact_email");
    let context = v.check(optional_text("context", r.opt("context"), 10_000));
    let created_at = r.time(&mut v, "created_at");
    let status = v.check_opt(r.opt("status"), |s| ReferralStatus::parse("status", s));
    let stage = v.check_opt(r.opt("stage"), |s| Stage::parse("stage", s));
    let amount = r.money(&mut v);
    let closed_at = r.time(&mut v, "closed_at");
    v.finish(|| {
        Some(ReferralRow {
            partner_contact_email: partner?,
            company_name: company_name?,
            company_domain: domain?,
            contact_name: contact_name?,
            contact_email: contact_email?,
            context: context?,
            created_at: created_at?,
            status: status?,
            stage: stage?,
            amount: amount?,
            closed_at: closed_at?,
        })
    })
}

/// Reads, checks and (when allowed) writes one file. Returns the number of
/// records imported, or `None` when bad rows stopped the import.
pub async fn run(store: &dyn Store, ctx: &Ctx, kind: Kind, path: &Path, skip_invalid: bool) -> anyhow::Result<Option<usize>> {
    let file = path.display().to_string();
    let size = std::fs::metadata(path).with_context(|| format!("{file}: cannot read"))?.len();
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(path).with_context(|| format!("{file}: cannot read"))?;
    let headers = reader.headers().with_context(|| format!("{file}:1: the header row is not valid CSV"))?.clone();
    let (required, optional) = kind.columns();
    let names: Vec<&str> = headers.iter().map(str::trim).collect();
    let mut errors: Vec<LineError> = Vec::new();
    for col in required.iter().filter(|c| !names.contains(c)) {
        errors.push(LineError::new(1, *col, "required column is missing from the header"));
    }
    for col in names.iter().filter(|c| !required.contains(c) && !optional.contains(c)) {
        errors.push(LineError::new(1, *col, format!("unknown column; expected {}", [required, optional].concat().join(","))));
    }
    if !errors.is_empty() {
        report(&file, &errors);
        return Ok(None);
    }

    let progress = indicatif::ProgressBar::new(size);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {bytes}/{total_bytes} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    progress.set_message(format!("reading {file}"));
    let mut accounts = Vec::new();
    let mut partners = Vec::new();
    let mut deals = Vec::new();
    let mut referrals = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                errors.push(LineError::new(line, "row", format!("not valid CSV: {e}")));
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        if record.len() != names.len() {
            errors.push(LineError::new(line, "row", format!("has {} fields, the header has {}", record.len(), names.len())));
            continue;
        }
        let row = Row { cells: names.iter().copied().zip(record.iter()).collect() };
        let parsed = match kind {
            Kind::Accounts => parse_account(&row).map(|r| accounts.push(Line { line, row: r })),
            Kind::Partners => parse_partner(&row).map(|r| partners.push(Line { line, row: r })),
            Kind::Deals => parse_deal(&row).map(|r| deals.push(Line { line, row: r })),
            Kind::Referrals => parse_referral(&row).map(|r| referrals.push(Line { line, row: r })),
        };
        if let Err(fields) = parsed {
            errors.extend(fields.into_iter().map(|f| LineError::new(line, f.field, f.message)));
        }
        if line.is_multiple_of(1000) {
            progress.set_position(record.position().map_or(0, |p| p.byte()));
        }
    }
    progress.set_message(format!("checking {file}"));
    let app = |e: partnerloop_app::AppError| anyhow::anyhow!("{file}: {e:?}");
    let mut plan: Plan = match kind {
        Kind::Accounts => import::plan_accounts(store, ctx, &file, accounts).await.map_err(app)?,
        Kind::Partners => import::plan_partners(store, ctx, &file, partners).await.map_err(app)?,
        Kind::Deals => import::plan_deals(ctx, &file, deals),
        Kind::Referrals => import::plan_referrals(store, ctx, &file, referrals).await.map_err(app)?,
    };
    progress.finish_and_clear();
    errors.append(&mut plan.errors);
    errors.sort_by_key(|e| e.line);
    if !errors.is_empty() {
        report(&file, &errors);
        if !skip_invalid {
            eprintln!("{file}: {} problem(s); nothing was imported (use --skip-invalid to import the good rows)", errors.len());
            return Ok(None);
        }
        eprintln!("{file}: skipping {} problem(s), importing the good rows", errors.len());
    }
    let count = import::write(store, ctx, plan).await.map_err(app)?;
    println!("imported {count} {} from {file}", kind.noun());
    Ok(Some(count))
}

fn report(file: &str, errors: &[LineError]) {
    for e in errors {
        eprintln!("{file}:{}: {}: {}", e.line, e.field, e.message);
    }
}
