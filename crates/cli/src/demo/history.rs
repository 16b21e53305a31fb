//! A year of program history for the demo: partners joining over the
//! months, hundreds of registrations decided by the real rules, reviews,
//! disputes, deals moving through the pipeline, wins with their commissions,
//! monthly tier evaluations, releases and paid payout batches, and a direct
//! pipeline to compare with.
//!
//! Everything goes through the same use cases as the API, replayed in time
//! order with each step's own clock (`Ctx::now`), so the ledger, the audit
//! log, the timelines and every KPI are as consistent as live data. The
//! randomness is a fixed-seed generator: every demo database is the same.

use anyhow::anyhow;
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::deals::{self, DealForCreate};
use partnerloop_app::matching::NameMatcher;
use partnerloop_app::partners::{self, PartnerForCreate};
use partnerloop_app::referrals::{self, DisputeResolution, ReferralForCreate};
use partnerloop_app::store::{Page, Registered};
use partnerloop_app::{Actor, AppError, Ctx, Store, commissions, payouts, tiers};
use partnerloop_domain::Currency;
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::{DealSource, Stage};
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::partner::{PartnerStatus, PartnerType};
use partnerloop_domain::referral::{Channel, ReferralId, ReferralStatus};
use partnerloop_domain::tier::{Measure, Tier, TierLadder};
use partnerloop_domain::{Email, Money};

use super::{app, field};

/// Days of history before now.
const DAYS: i64 = 365;

/// splitmix64: small, fast and good enough to make believable data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1).unsigned_abs()) as i64
    }

    /// True `per_mille` times in a thousand.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Alex", "Priya", "Jonas", "Mei", "Omar", "Lucia", "Tom", "Aisha", "Kenji", "Sofia", "Mateo", "Ines", "Noah", "Freya", "Ravi", "Zoe",
    "Lars", "Nadia", "Hugo", "Amara",
];
const LAST: &[&str] = &[
    "Berg", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura",
    "Okafor", "Petrov", "Quinn", "Rossi", "Silva", "Tanaka", "Weber",
];
const PARTNER_STEMS: &[&str] = &[
    "Alder",
    "Beacon",
    "Cobalt",
    "Driftwood",
    "Ember",
    "Fjord",
    "Granite",
    "Halcyon",
    "Ironclad",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Orchard",
    "Pinnacle",
    "Quarry",
    "Redwood",
    "Summit",
    "Tidewater",
    "Upland",
    "Vantage",
    "Willow",
    "Yarrow",
    "Zenith",
    "Arbor",
    "Bramble",
    "Cedar",
    "Delta",
    "Evergreen",
    "Foxglove",
    "Garnet",
    "Harbinger",
    "Indigo",
    "Jasper",
    "Keystone",
];
const PARTNER_KINDS: &[(&str, PartnerType)] = &[
    ("Consulting", PartnerType::Consultant),
    ("Advisory", PartnerType::Consultant),
    ("Digital", PartnerType::Agency),
    ("Studio", PartnerType::Agency),
    ("Systems", PartnerType::Technology),
    ("Labs", PartnerType::Technology),
    ("Group", PartnerType::Customer),
    ("Partners", PartnerType::Other),
];
const PROSPECT_HEADS: &[&str] = &[
    "Apex", "Blue", "Clear", "Data", "Eco", "First", "Global", "High", "Inter", "Key", "Lake", "Metro", "North", "Omni", "Prime",
    "Quantum", "River", "Silver", "True", "United", "Vista", "West", "Bright", "Core", "Nova",
];
const PROSPECT_TAILS: &[(&str, &str)] = &[
    ("line Logistics", "Inc"),
    ("point Health", "LLC"),
    ("field Retail", "Ltd"),
    ("stone Foods", "GmbH"),
    ("wave Energy", "SA"),
    ("gate Finance", "Inc"),
    ("bridge Software", "BV"),
    ("path Education", ""),
    ("works Manufacturing", "AG"),
    ("star Media", "Inc"),
    ("view Properties", "LLC"),
    ("mark Insurance", "Ltd"),
    ("ridge Biotech", "Inc"),
    ("port Shipping", "GmbH"),
    ("forge Robotics", ""),
    ("craft Hospitality", "LLC"),
];
const CONTEXTS: &[&str] = &[
    "Met the COO at a conference; evaluating vendors this quarter",
    "Existing client of ours, outgrowing their spreadsheets",
    "Asked us for a recommendation after their last vendor shut down",
    "Budget approved for next fiscal year",
    "Warm intro via their head of sales",
    "Expanding to three new regions, needs tooling",
    "Replacing a homegrown system",
];

enum Step {
    Stage(ReferralId, Stage, Option<Money>),
    Review(ReferralId, bool),
    Dispute(ReferralId),
    Resolve(ReferralId, bool),
}

struct Planned {
    at: Timestamp,
    seq: u64,
    step: Step,
}

struct Member {
    id: PartnerId,
    joined: Timestamp,
    /// Registrations per thousand days of activity.
    rate: u64,
    /// Stops referring after this (a dormant partner).
    until: Timestamp,
}

/// Seeds the history; `members` are the hand-made demo partners, which join
/// it. Answers the active partners, the most active first.
pub async fn seed(
    store: &dyn Store,
    ws: &WorkspaceId,
    now: Timestamp,
    members: &[(PartnerId, Timestamp)],
) -> anyhow::Result<Vec<PartnerId>> {
    let usd = Currency::USD;
    let start = now - SignedDuration::from_hours(24 * DAYS);
    let day = |d: i64| start + SignedDuration::from_hours(24 * d);
    let admin = |at: Timestamp| Ctx::system(ws.clone(), "demo", at);
    let mut rng = Rng(0x5EED_2026);

    let ladder = TierLadder::new(
        Measure::WonCount,
        vec![
            Tier { slug: "bronze".into(), name: "Bronze".into(), benefits: "Partner portal, co-branded one-pager".into(), threshold: 1 },
            Tier {
                slug: "silver".into(),
                name: "Silver".into(),
                benefits: "Higher commission, quarterly pipeline review".into(),
                threshold: 3,
            },
            Tier { slug: "gold".into(), name: "Gold".into(), benefits: "Top commission, joint marketing budget, MDF".into(), threshold: 6 },
        ],
        30,
    )
    .map_err(|e| anyhow!("demo tier ladder is invalid: {e:?}"))?;
    app(tiers::put_ladder(store, &admin(start), ladder).await)?;

    let mut team: Vec<Member> = members
        .iter()
        .enumerate()
        .map(|(i, (id, joined))| Member { id: id.clone(), joined: *joined, rate: [90, 70, 50, 25, 30][i % 5], until: now })
        .collect();
    let plans =
        store.list_plans(ws, &Page { limit: 100, after: None }).await.map_err(|e| anyhow!("cannot read the demo plans: {e}"))?.items;
    let plan_named = |name: &str| plans.iter().find(|p| p.name == name).map(|p| p.id.clone());
    for (i, stem) in PARTNER_STEMS.iter().enumerate() {
        let (kind_word, kind) = PARTNER_KINDS[i % PARTNER_KINDS.len()];
        let joined = day(rng.range(0, DAYS - 20)) + SignedDuration::from_mins(rng.range(480, 1080));
        let first = *rng.pick(FIRST);
        let last = *rng.pick(LAST);
        let slug = stem.to_lowercase();
        let plan = match kind {
            PartnerType::Agency => plan_named("Agency tiers"),
            PartnerType::Customer => plan_named("Customer referral bounty"),
            _ => plan_named("Standard 15%"),
        };
        let status = if i % 17 == 16 { PartnerStatus::Paused } else { PartnerStatus::Active };
        let partner = app(partners::create(
            store,
            &admin(joined),
            PartnerForCreate {
                name: format!("{stem} {kind_word}"),
                partner_type: kind,
                status,
                tier: None,
                contact_name: format!("{first} {last}"),
                contact_email: field(Email::parse("email", &format!("{}@{slug}.example", first.to_lowercase())))?,
                website: Some(field(CompanyDomain::parse("website", &format!("{slug}.example")))?),
                commission_plan_id: plan,
                created_at: Some(joined),
            },
        )
        .await)?;
        // A few stars, most steady, some gone quiet (dormant after a while).
        let rate = match i % 9 {
            0 => 110,
            1 | 2 => 15,
            _ => 50,
        };
        let until = if i % 6 == 5 { joined + SignedDuration::from_hours(24 * rng.range(30, 120)) } else { now };
        if status == PartnerStatus::Active {
            team.push(Member { id: partner.id, joined, rate, until });
        }
    }

    let prospects: Vec<(String, String)> = PROSPECT_HEADS
        .iter()
        .flat_map(|h| PROSPECT_TAILS.iter().map(move |(t, legal)| (*h, *t, *legal)))
        .map(|(h, t, legal)| {
            let name = if legal.is_empty() { format!("{h}{t}") } else { format!("{h}{t} {legal}") };
            let domain = format!("{}{}.example", h.to_lowercase(), t.split_whitespace().next().unwrap_or(t).to_lowercase());
            (name, domain)
        })
        .collect();
    let mut order: Vec<usize> = (0..prospects.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.range(0, i as i64) as usize);
    }
    let mut next_prospect = order.into_iter();
    let mut registered: Vec<usize> = Vec::new();
    let mut open_direct: Vec<(String, String)> = Vec::new();

    let matcher = NameMatcher::new();
    let mut plan: Vec<Planned> = Vec::new();
    let mut seq = 0u64;
    let mut schedule = |plan: &mut Vec<Planned>, at: Timestamp, step: Step| {
        seq += 1;
        if at < now - SignedDuration::from_hours(1) {
            plan.push(Planned { at, seq, step });
        }
    };

    for d in 0..DAYS {
        let morning = day(d) + SignedDuration::from_hours(9);
        // Partners register leads.
        for m in &team {
            if m.joined > morning || m.until < morning || !rng.chance(m.rate) {
                continue;
            }
            let at = morning + SignedDuration::from_mins(rng.range(0, 480));
            // Now and then a lead someone else already registered: the rules decide.
            let index = match (rng.chance(100), registered.is_empty()) {
                (true, false) => *rng.pick(&registered),
                _ => match next_prospect.next() {
                    Some(i) => i,
                    None => continue,
                },
            };
            // And now and then a company the sales team already works: a review.
            let direct = (!open_direct.is_empty() && rng.chance(90)).then(|| rng.pick(&open_direct).clone());
            let (company, domain) = direct.as_ref().unwrap_or(&prospects[index]);
            let (first, last) = (*rng.pick(FIRST), *rng.pick(LAST));
            let cents = rng.range(40, 900) * 10_000;
            let ctx = Ctx::new(ws.clone(), Actor::Partner { partner_id: m.id.clone(), key_id: None }, at);
            let input = ReferralForCreate {
                partner_id: None,
                company_name: company.clone(),
                company_domain: Some(field(CompanyDomain::parse("domain", domain))?),
                contact_name: format!("{first} {last}"),
                contact_email: field(Email::parse("email", &format!("{}.{}@{domain}", first.to_lowercase(), last.to_lowercase())))?,
                contact_title: None,
                context: Some((*rng.pick(CONTEXTS)).to_owned()),
                estimated_value: Some(Money::from_minor(cents, usd)),
                channel: *rng.pick(&[Channel::Portal, Channel::Portal, Channel::Email, Channel::Api, Channel::Link]),
            };
            let Registered::Created(r) = app(referrals::register(store, &matcher, &ctx, input).await)? else { continue };
            if direct.is_none() {
                registered.push(index);
            }
            let later = |rng: &mut Rng, lo: i64, hi: i64| at + SignedDuration::from_hours(rng.range(lo, hi));
            match r.status {
                // The last week's conflicts still wait in the review queue.
                ReferralStatus::PendingReview if at > now - SignedDuration::from_hours(24 * 7) => {}
                ReferralStatus::PendingReview => {
                    let approve = rng.chance(650);
                    let when = later(&mut rng, 4, 96);
                    schedule(&mut plan, when, Step::Review(r.id.clone(), approve));
                    if approve {
                        pipeline(&mut rng, &mut plan, &mut schedule, &r.id, when, cents);
                    } else if rng.chance(300) {
                        let disputed = when + SignedDuration::from_hours(rng.range(2, 30));
                        schedule(&mut plan, disputed, Step::Dispute(r.id.clone()));
                        let overturn = rng.chance(400);
                        let resolved = disputed + SignedDuration::from_hours(rng.range(4, 72));
                        schedule(&mut plan, resolved, Step::Resolve(r.id.clone(), overturn));
                        if overturn {
                            pipeline(&mut rng, &mut plan, &mut schedule, &r.id, resolved, cents);
                        }
                    }
                }
                ReferralStatus::Approved => pipeline(&mut rng, &mut plan, &mut schedule, &r.id, at, cents),
                ReferralStatus::Rejected if rng.chance(150) => {
                    let disputed = later(&mut rng, 3, 48);
                    schedule(&mut plan, disputed, Step::Dispute(r.id.clone()));
                    schedule(&mut plan, disputed + SignedDuration::from_hours(rng.range(6, 60)), Step::Resolve(r.id.clone(), false));
                }
                _ => {}
            }
        }

        // The sales team's own (direct) pipeline.
        if rng.chance(250) {
            let at = morning + SignedDuration::from_mins(rng.range(0, 480));
            let (h, (t, _)) = (*rng.pick(PROSPECT_HEADS), *rng.pick(PROSPECT_TAILS));
            let company = format!("{h}{} Direct", t.split_whitespace().next().unwrap_or(t));
            let domain = format!("{}{}-direct.example", h.to_lowercase(), t.split_whitespace().next().unwrap_or(t).to_lowercase());
            let age_days = DAYS - d;
            let close_after = rng.range(20, 110);
            let (stage, closed_at) = match (close_after < age_days, rng.range(0, 9)) {
                (true, 0..=2) => (Stage::ClosedWon, Some(at + SignedDuration::from_hours(24 * close_after))),
                (true, 3..=6) => (Stage::ClosedLost, Some(at + SignedDuration::from_hours(24 * close_after))),
                _ => (*rng.pick(&[Stage::Qualified, Stage::Meeting, Stage::Proposal, Stage::Negotiation]), None),
            };
            // Direct deals are written with their dates at once; the name keeps them unique.
            if closed_at.is_none() {
                open_direct.push((company.clone(), domain.clone()));
            }
            let deal = DealForCreate {
                name: format!("{company} #{d}"),
                company_name: company,
                company_domain: Some(field(CompanyDomain::parse("domain", &domain))?),
                stage,
                amount: Money::from_minor(rng.range(30, 700) * 10_000, usd),
                source: DealSource::Direct,
                owner_email: Some(field(Email::parse("owner_email", "sam@vendor.example"))?),
                created_at: Some(at),
                closed_at,
            };
            app(deals::create(store, &admin(at), deal).await)?;
        }

        // What the team did today, in time order.
        let evening = day(d + 1);
        plan.sort_by_key(|p| std::cmp::Reverse((p.at, p.seq)));
        while plan.last().is_some_and(|p| p.at < evening) {
            let Some(Planned { at, step, .. }) = plan.pop() else { break };
            run(store, ws, at, step).await?;
        }
        app(referrals::expire_lapsed(store, evening).await)?;

        // Month end: tiers, releases, and the monthly payout run, paid.
        let date = evening.to_zoned(jiff::tz::TimeZone::UTC).date();
        if date.day() == 1 {
            let close = evening + SignedDuration::from_hours(10);
            app(tiers::evaluate_workspace(store, &admin(close)).await)?;
            app(commissions::release_due(store, Some(ws), close).await)?;
            if let Some(batch) = app(payouts::create(store, &admin(close), usd).await)?.payout {
                let paid = close + SignedDuration::from_hours(50);
                let reference = format!("DEMO-{}-{:02}", date.year(), date.month());
                app(payouts::mark_paid(store, &admin(paid), &batch.id, Some(reference)).await)?;
            }
        }
    }
    let ctx = admin(now);
    app(tiers::evaluate_workspace(store, &ctx).await)?;
    app(commissions::release_due(store, Some(ws), now).await)?;
    team.sort_by_key(|m| std::cmp::Reverse(m.rate));
    Ok(team.into_iter().filter(|m| m.until >= now).map(|m| m.id).collect())
}

/// How an approved referral's deal goes: through the stages, then won
/// (four in ten), lost (a quarter), or still open.
fn pipeline(
    rng: &mut Rng,
    plan: &mut Vec<Planned>,
    schedule: &mut impl FnMut(&mut Vec<Planned>, Timestamp, Step),
    id: &ReferralId,
    from: Timestamp,
    cents: i64,
) {
    let mut at = from;
    let stages = [Stage::Qualified, Stage::Meeting, Stage::Proposal, Stage::Negotiation];
    let reach = rng.range(1, 4) as usize;
    for stage in &stages[..reach] {
        at += SignedDuration::from_hours(rng.range(24, 24 * 12));
        schedule(plan, at, Step::Stage(id.clone(), *stage, None));
    }
    at += SignedDuration::from_hours(rng.range(24 * 3, 24 * 30));
    match rng.range(0, 19) {
        0..=7 => {
            let won = cents / 100 * rng.range(70, 130);
            schedule(plan, at, Step::Stage(id.clone(), Stage::ClosedWon, Some(Money::from_minor(won, Currency::USD))));
        }
        8..=12 => schedule(plan, at, Step::Stage(id.clone(), Stage::ClosedLost, None)),
        _ => {}
    }
}

async fn run(store: &dyn Store, ws: &WorkspaceId, at: Timestamp, step: Step) -> anyhow::Result<()> {
    let admin = Ctx::system(ws.clone(), "demo", at);
    match step {
        Step::Stage(id, stage, amount) => {
            // A referral that lapsed before its deal moved stays expired.
            let current = app(referrals::get(store, &admin, &id).await)?;
            if current.status == ReferralStatus::Approved {
                app(referrals::change_stage(store, &admin, &id, stage, amount).await)?;
            }
        }
        Step::Review(id, true) => {
            let note = Some("Checked with the account owner: no active opportunity".into());
            // Another partner may hold the account by now: then it is rejected.
            match referrals::approve(store, &admin, &id, note).await {
                Err(AppError::Conflict { .. }) => {
                    app(referrals::reject(store, &admin, &id, "Another partner holds this account".into()).await)?;
                }
                other => {
                    app(other)?;
                }
            }
        }
        Step::Review(id, false) => {
            app(referrals::reject(store, &admin, &id, "Already in contact with this company through another channel".into()).await)?;
        }
        Step::Dispute(id) => {
            let current = app(referrals::get(store, &admin, &id).await)?;
            let partner = Ctx::new(ws.clone(), Actor::Partner { partner_id: current.partner_id.clone(), key_id: None }, at);
            app(referrals::dispute(store, &partner, &id, "We introduced them months ago; see the thread with their CFO".into()).await)?;
        }
        Step::Resolve(id, overturn) => {
            let (resolution, note) = if overturn {
                (DisputeResolution::Overturned, "The partner's introduction came first: approved")
            } else {
                (DisputeResolution::Upheld, "Our rep was already in an active conversation")
            };
            match referrals::resolve_dispute(store, &admin, &id, resolution, note.into()).await {
                Err(AppError::Conflict { .. }) if overturn => {
                    let note = "Another partner holds this account now".into();
                    app(referrals::resolve_dispute(store, &admin, &id, DisputeResolution::Upheld, note).await)?;
                }
                other => {
                    app(other)?;
                }
            }
        }
    }
    Ok(())
}
