//! The demo program's recruiting and enablement: ideal-partner criteria
//! with applications in the queue (one approved, one rejected), an
//! onboarding checklist partners have worked through, and an enablement
//! library (links and a file) per tier with downloads — through the same use
//! cases as the console, the forms and the portal.

use jiff::{SignedDuration, Timestamp};
use partnerloop_app::applications::{self, ApplicationForCreate, Applied};
use partnerloop_app::enablement::{self, ResourceForCreate};
use partnerloop_app::onboarding::{self, ItemInput};
use partnerloop_app::{Actor, Ctx, Store};
use partnerloop_domain::application::{Criteria, ResponseTime, Weights};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::partner::PartnerType;
use partnerloop_domain::{Currency, Email, Money};

use super::{app, field};

/// Seeds it; `partners` are active partners (most active first), who tick
/// items and open resources.
pub async fn seed(store: &dyn Store, ws: &WorkspaceId, now: Timestamp, partners: &[PartnerId]) -> anyhow::Result<()> {
    let days_ago = |d: i64| now - SignedDuration::from_hours(24 * d);
    let admin = |at: Timestamp| Ctx::system(ws.clone(), "demo", at);

    let criteria = Criteria {
        target_industries: ["logistics", "healthcare", "retail", "financial services", "manufacturing"].map(str::to_owned).to_vec(),
        deal_size_band: Some((1_000_000, 10_000_000)),
        referrals_per_quarter: 4,
        weights: Weights { audience: 35, deal_size: 25, credibility: 20, responsiveness: 20 },
    };
    app(applications::put_criteria(store, &admin(days_ago(200)), criteria).await)?;

    let applicants = [
        (
            "Crestline Advisory",
            PartnerType::Consultant,
            "Maya Lindqvist",
            "maya@crestline.example",
            &["logistics", "retail"][..],
            4_500_000,
            9,
            25,
            6,
            ResponseTime::SameDay,
            12,
        ),
        (
            "Pixelwerk Studio",
            PartnerType::Agency,
            "Jonah Reed",
            "jonah@pixelwerk.example",
            &["media", "retail"][..],
            800_000,
            3,
            12,
            2,
            ResponseTime::TwoDays,
            9,
        ),
        (
            "Ledgerly",
            PartnerType::Technology,
            "Ana Sousa",
            "ana@ledgerly.example",
            &["financial services"][..],
            2_000_000,
            5,
            40,
            3,
            ResponseTime::SameDay,
            6,
        ),
        (
            "Northgate Partners",
            PartnerType::Consultant,
            "Felix Brandt",
            "felix@northgate.example",
            &["manufacturing", "healthcare", "logistics"][..],
            7_000_000,
            12,
            60,
            8,
            ResponseTime::SameDay,
            4,
        ),
        (
            "Bytecraft Labs",
            PartnerType::Technology,
            "Lina Hoffmann",
            "lina@bytecraft.example",
            &["gaming"][..],
            300_000,
            1,
            3,
            1,
            ResponseTime::Week,
            3,
        ),
        (
            "Meadow & Moss",
            PartnerType::Agency,
            "Oskar Vik",
            "oskar@meadowmoss.example",
            &["hospitality", "retail"][..],
            1_500_000,
            6,
            30,
            4,
            ResponseTime::TwoDays,
            2,
        ),
        (
            "Clearview Consulting",
            PartnerType::Consultant,
            "Rosa Marin",
            "rosa@clearview.example",
            &["healthcare"][..],
            3_000_000,
            7,
            18,
            5,
            ResponseTime::SameDay,
            1,
        ),
    ];
    let mut ids = Vec::new();
    for (company, kind, contact, email, industries, deal, years, clients, per_quarter, response, age) in applicants {
        let site = email.split_once('@').map_or("", |(_, d)| d);
        let input = ApplicationForCreate {
            company_name: company.into(),
            partner_type: kind,
            website: Some(field(CompanyDomain::parse("website", site))?),
            contact_name: contact.into(),
            contact_email: field(Email::parse("email", email))?,
            industries: industries.iter().map(|s| (*s).to_owned()).collect(),
            typical_deal: Money::from_minor(deal, Currency::USD),
            years_in_business: years,
            client_count: clients,
            referrals_per_quarter: per_quarter,
            response_time: response,
            message: Some(format!("{company} would like to refer clients who ask us for tooling in this space.")),
        };
        let form = Ctx::system(ws.clone(), "apply", days_ago(age));
        if let Applied::Created { application_id, .. } = app(applications::apply(store, &form, input).await)? {
            ids.push(application_id);
        }
    }
    // The strongest older one was approved, the weakest rejected; the rest wait.
    if let [first, _, _, _, weakest, ..] = ids.as_slice() {
        app(applications::approve(store, &admin(days_ago(10)), first, Some("Strong logistics practice".into())).await)?;
        app(applications::reject(store, &admin(days_ago(2)), weakest, "Their clients are outside our market").await)?;
    }

    let items = [
        (
            "Read the partner guide",
            "How registration, protection windows and payouts work.",
            "https://docs.partnerloop.example/partner-guide",
            "",
        ),
        ("Add your payout details", "So that your first commission can be paid.", "/portal/payout-details", "payout_details"),
        ("Download the pitch deck", "The current deck and one-pager, in the resources.", "/portal/resources", ""),
        ("Book your enablement call", "30 minutes with your partner manager.", "https://cal.partnerloop.example/enablement", ""),
        (
            "Register your first referral",
            "From the portal, by email or with your personal link.",
            "/portal/referrals/new",
            "first_referral",
        ),
    ];
    let mut manual = Vec::new();
    for (title, description, link, auto) in items {
        let input = ItemInput { title: title.into(), description: description.into(), link: link.into(), auto: auto.into() };
        let item = app(onboarding::add_item(store, &admin(days_ago(300)), &input).await)?;
        if auto.is_empty() {
            manual.push(item.id);
        }
    }

    let resources = [
        (
            "Partner pitch deck (2026)",
            "The deck to introduce us to a prospect.",
            "deck",
            &[][..],
            "https://files.partnerloop.example/pitch-deck-2026.pdf",
            None,
        ),
        (
            "One-pager: why teams switch",
            "A page to forward after a first call.",
            "one_pager",
            &[][..],
            "https://files.partnerloop.example/one-pager.pdf",
            None,
        ),
        (
            "ROI calculator template",
            "A spreadsheet to size the savings with the prospect.",
            "template",
            &[][..],
            "",
            Some(("roi-calculator.csv", "text/csv", roi_template())),
        ),
        (
            "Co-marketing playbook",
            "Joint webinars, case studies and the MDF process.",
            "other",
            &["silver", "gold"][..],
            "https://files.partnerloop.example/co-marketing.pdf",
            None,
        ),
        (
            "Gold partner pricing sheet",
            "Discount levels you may offer.",
            "other",
            &["gold"][..],
            "https://files.partnerloop.example/gold-pricing.pdf",
            None,
        ),
    ];
    let mut library = Vec::new();
    for (title, description, kind, tiers, url, file) in resources {
        let input = ResourceForCreate {
            title: title.into(),
            description: description.into(),
            kind: kind.into(),
            tiers: tiers.iter().map(|s| (*s).to_owned()).collect(),
            url: url.into(),
            file: file.map(|(name, kind, bytes)| (name.to_owned(), kind.to_owned(), bytes)),
        };
        library.push(app(enablement::add(store, &admin(days_ago(280)), input).await)?.id);
    }

    // The most active partners worked through the checklist and the library.
    for (i, partner) in partners.iter().enumerate() {
        let at = days_ago(60 - i as i64);
        let ctx = Ctx::new(ws.clone(), Actor::Partner { partner_id: partner.clone(), key_id: None }, at);
        for item in manual.iter().take(manual.len().saturating_sub(i % 3)) {
            app(onboarding::tick(store, &ctx, item, true).await)?;
        }
        let visible = app(enablement::for_partner(store, &ctx).await)?;
        for r in visible.iter().filter(|r| library.contains(&r.id)).take(1 + i % 4) {
            app(enablement::open(store, &ctx, &r.id).await)?;
        }
    }
    Ok(())
}

/// A small ROI calculator as CSV: inputs, then the formulas' results.
fn roi_template() -> Vec<u8> {
    "item,value,note\n\
     referrals per month,10,how many introductions the team gets\n\
     hours per referral today,3,looking up conflicts and answering partners\n\
     hourly cost,60,fully loaded\n\
     monthly cost today,1800,10 x 3 x 60\n\
     hours per referral with partnerloop,0.5,decisions are automatic\n\
     monthly saving,1500,(3 - 0.5) x 10 x 60\n"
        .as_bytes()
        .to_vec()
}
