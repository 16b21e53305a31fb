//! Demo data: a real program with a year of history — plans, tiers,
//! dozens of partners, accounts that decide conflicts, hundreds of
//! registrations with their reviews, deals, commissions and paid payouts,
//! and a direct pipeline ([`history`]) — so the API, the console and every
//! chart answer with data at once. Seeded through the same use cases as the API, so it is audited
//! and valid like any other data.

use anyhow::{Context as _, anyhow};
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::accounts::{self, AccountForCreate};
use partnerloop_app::deals::{self, DealForCreate};
use partnerloop_app::partners::{self, PartnerForCreate};
use partnerloop_app::plans::{self, PlanForCreate};
use partnerloop_app::store::{Page, PartnerFilter};
use partnerloop_app::{AppError, Ctx, Store, workspaces};
use partnerloop_domain::account::AccountStatus;
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::{DealSource, Stage};
use partnerloop_domain::partner::{PartnerStatus, PartnerType};
use partnerloop_domain::plan::{PlanKind, Rate};
use partnerloop_domain::{Currency, Email, FieldError, Money};

mod history;
mod program;

fn field<T>(r: Result<T, FieldError>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow!("demo data is invalid: {e}"))
}

fn app<T>(r: Result<T, AppError>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow!("demo seeding failed: {e:?}"))
}

/// Whether the default workspace has no partners yet.
pub async fn is_empty(store: &dyn Store) -> anyhow::Result<bool> {
    let ws = app(workspaces::ensure(store, workspaces::DEFAULT_SLUG, Timestamp::now()).await)?;
    let page =
        store.list_partners(&ws.id, &PartnerFilter::default(), &Page { limit: 1, after: None }).await.context("cannot read partners")?;
    Ok(page.items.is_empty())
}

/// Seeds the workspace and returns a new admin token for it.
pub async fn seed(store: &dyn Store, workspace: &str) -> anyhow::Result<String> {
    let now = Timestamp::now();
    let ws = app(workspaces::ensure(store, workspace, now).await)?;
    let ctx = Ctx::system(ws.id.clone(), "demo", now);
    let usd = Currency::USD;
    let days_ago = |d: i64| now - SignedDuration::from_hours(24 * d);

    let standard = app(plans::create(
        store,
        &ctx,
        PlanForCreate {
            name: "Standard 15%".into(),
            kind: PlanKind::Percent { rate: field(Rate::parse("rate", "0.15"))? },
            cap: Some(Money::from_minor(2_500_000, usd)),
            minimum: None,
            hold_days: 30,
            is_default: true,
            volume: None,
            recurring: None,
        },
    )
    .await)?;
    app(plans::create(
        store,
        &ctx,
        PlanForCreate {
            name: "Customer referral bounty".into(),
            kind: PlanKind::Flat { amount: Money::from_minor(50_000, usd) },
            cap: None,
            minimum: None,
            hold_days: 30,
            is_default: false,
            volume: None,
            recurring: None,
        },
    )
    .await)?;
    let tiered = app(plans::create(
        store,
        &ctx,
        PlanForCreate {
            name: "Agency tiers".into(),
            kind: PlanKind::Tiered {
                rates: [("bronze", "0.10"), ("silver", "0.15"), ("gold", "0.20")]
                    .into_iter()
                    .map(|(t, r)| Ok((t.to_owned(), field(Rate::parse("rates", r))?)))
                    .collect::<anyhow::Result<_>>()?,
            },
            cap: None,
            minimum: None,
            hold_days: 45,
            is_default: false,
            volume: None,
            recurring: None,
        },
    )
    .await)?;

    let partner_rows = [
        ("Northwind Consulting", PartnerType::Consultant, "Ada Park", "ada@northwind.example", "northwind.example", Some("gold"), 320),
        ("Brightlane Agency", PartnerType::Agency, "Ben Ortiz", "ben@brightlane.example", "brightlane.example", Some("silver"), 210),
        ("Stackbridge", PartnerType::Technology, "Chen Wu", "chen@stackbridge.example", "stackbridge.example", None, 150),
        ("Harbor & Co", PartnerType::Customer, "Dana Reyes", "dana@harbor.example", "harbor.example", None, 90),
        ("Quill Advisory", PartnerType::Consultant, "Eli Novak", "eli@quill.example", "quill.example", Some("bronze"), 20),
    ];
    let mut members = Vec::new();
    for (name, kind, contact, email, site, tier, age) in partner_rows {
        let plan = match kind {
            PartnerType::Agency => Some(tiered.id.clone()),
            _ => Some(standard.id.clone()),
        };
        let partner = app(partners::create(
            store,
            &ctx,
            PartnerForCreate {
                name: name.into(),
                partner_type: kind,
                status: PartnerStatus::Active,
                tier: tier.map(str::to_owned),
                contact_name: contact.into(),
                contact_email: field(Email::parse("email", email))?,
                website: Some(field(CompanyDomain::parse("website", site))?),
                commission_plan_id: plan,
                created_at: Some(days_ago(age)),
            },
        )
        .await)?;
        members.push(partner);
    }

    let account_rows = [
        ("Initech", "initech.example", AccountStatus::Customer),
        ("Umbrella Corporation", "umbrella.example", AccountStatus::OffLimits),
        ("Soylent", "soylent.example", AccountStatus::Prospect),
        ("Hooli", "hooli.example", AccountStatus::Customer),
    ];
    for (name, domain, status) in account_rows {
        app(accounts::create(
            store,
            &ctx,
            AccountForCreate {
                name: name.into(),
                domain: field(CompanyDomain::parse("domain", domain))?,
                status,
                owner_email: Some(field(Email::parse("owner_email", "sam@vendor.example"))?),
            },
        )
        .await)?;
    }

    let deal_rows = [
        ("Soylent platform", "Soylent", "soylent.example", Stage::Proposal, 3_600_000, 40, None),
        ("Initech expansion", "Initech", "initech.example", Stage::ClosedWon, 1_800_000, 200, Some(150)),
        ("Hooli pilot", "Hooli", "hooli.example", Stage::ClosedWon, 950_000, 120, Some(60)),
        ("Vandelay imports", "Vandelay Industries", "vandelay.example", Stage::ClosedLost, 1_200_000, 90, Some(30)),
    ];
    for (name, company, domain, stage, cents, age, closed) in deal_rows {
        app(deals::create(
            store,
            &ctx,
            DealForCreate {
                name: name.into(),
                company_name: company.into(),
                company_domain: Some(field(CompanyDomain::parse("domain", domain))?),
                stage,
                amount: Money::from_minor(cents, usd),
                source: DealSource::Direct,
                owner_email: Some(field(Email::parse("owner_email", "sam@vendor.example"))?),
                created_at: Some(days_ago(age)),
                closed_at: closed.map(days_ago),
            },
        )
        .await)?;
    }

    // A few registrations through the real rules: one approved and moving
    // through the pipeline, one waiting for review (the sales team already
    // works Soylent), one rejected (Initech is a customer), one won.
    let joined: Vec<_> = members.iter().map(|p| (p.id.clone(), p.created_at)).collect();
    let active = history::seed(store, &ws.id, now, &joined).await?;
    program::seed(store, &ws.id, now, &active[..active.len().min(12)]).await?;

    let matcher = partnerloop_app::matching::NameMatcher::new();
    let registrations = [
        (
            0,
            "Globex Corporation",
            "globex.example",
            "Hank Scorpio",
            "hank@globex.example",
            "Replacing spreadsheets; budget approved for Q1",
        ),
        (1, "Soylent", "soylent.example", "Sol Green", "sol@soylent.example", "Met at a trade show"),
        (2, "Initech", "initech.example", "Bill Lumbergh", "bill@initech.example", "Wants the premium tier"),
        (1, "Pied Piper", "piedpiper.example", "Richard Hendricks", "richard@piedpiper.example", "Compression startup, series A"),
    ];
    for (i, company, domain, contact, email, context) in registrations {
        let partner = &members[i];
        let pctx = Ctx::new(ws.id.clone(), partnerloop_app::Actor::Partner { partner_id: partner.id.clone(), key_id: None }, now);
        let input = partnerloop_app::referrals::ReferralForCreate {
            partner_id: None,
            company_name: company.into(),
            company_domain: Some(field(CompanyDomain::parse("domain", domain))?),
            contact_name: contact.into(),
            contact_email: field(Email::parse("email", email))?,
            contact_title: None,
            context: Some(context.into()),
            estimated_value: Some(Money::from_minor(2_400_000, usd)),
            channel: partnerloop_domain::referral::Channel::Api,
        };
        let registered = app(partnerloop_app::referrals::register(store, &matcher, &pctx, input).await)?;
        if let partnerloop_app::store::Registered::Created(r) = registered {
            match company {
                "Globex Corporation" => {
                    app(partnerloop_app::referrals::change_stage(store, &ctx, &r.id, Stage::Proposal, None).await)?;
                }
                // Won: its commission accrues by the partner's (tiered) plan.
                "Pied Piper" => {
                    let won = Some(Money::from_minor(4_800_000, usd));
                    app(partnerloop_app::referrals::change_stage(store, &ctx, &r.id, Stage::ClosedWon, won).await)?;
                }
                _ => {}
            }
        }
    }

    app(partnerloop_app::auth::create_admin_key(store, &ctx, Some("demo")).await)
}
