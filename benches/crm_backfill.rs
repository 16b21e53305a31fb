//! CRM backfill: reads every company (and then the open deals) of a fake
//! HubSpot holding `BENCH_COMPANIES` companies, with the fake enforcing
//! HubSpot's per-app limit of `BENCH_PER_10S` requests per rolling 10 s
//! (190: Professional/Enterprise; 100: Free/Starter) and the connector
//! spacing its calls to the same figure. Reports the time, the calls made,
//! 429 answers, and the ratio to the fewest calls the API allows (one list
//! page of 100 per call, plus the one empty deals page).
//!
//! `cargo bench -p partnerloop-crm --bench crm_backfill`.
//! Sizes: `BENCH_COMPANIES` (100000), `BENCH_PER_10S` (190).

use std::time::Instant;

use partnerloop_app::crm::CrmConnector;
use partnerloop_crm::fake::FakeHubSpot;
use partnerloop_crm::http::Secret;
use partnerloop_crm::hubspot::{HubSpot, HubSpotConfig};

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let companies = env("BENCH_COMPANIES", 100_000);
    let per_10s = env("BENCH_PER_10S", 190);
    let fake = FakeHubSpot::start().await;
    let seeding = Instant::now();
    fake.seed_companies(companies as usize, 10);
    let seeded = seeding.elapsed();
    fake.set_limit_per_10s(Some(per_10s));
    let mut config = HubSpotConfig::new(&fake.base_url, Secret::new("bench-token"));
    config.requests_per_10s = per_10s;
    let hubspot = HubSpot::new(config).expect("connector");

    let started = Instant::now();
    let (mut accounts, mut customers, mut after) = (0usize, 0usize, None::<String>);
    loop {
        let page = match hubspot.backfill(after.as_deref()).await {
            Ok(page) => page,
            Err(e) if e.is_retryable() => {
                tokio::time::sleep(e.retry_after().unwrap_or_default()).await;
                continue;
            }
            Err(e) => panic!("backfill failed: {e}"),
        };
        accounts += page.accounts.len();
        customers += page.accounts.iter().filter(|a| a.is_customer).count();
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(accounts, companies as usize, "every company was read once");
    let calls = fake.request_count();
    let rejected = fake.requests().iter().filter(|r| r.status == 429).count();
    let minimum = (companies as usize).div_ceil(100) + 1;
    println!("crm_backfill: {companies} companies ({customers} customers) seeded in {:.2?}", seeded);
    println!(
        "crm_backfill: read in {:.1} s under {per_10s} requests/10 s: {calls} requests ({rejected} answered 429), minimum {minimum}, ratio {:.3}; {:.0} companies/s",
        elapsed.as_secs_f64(),
        calls as f64 / minimum as f64,
        accounts as f64 / elapsed.as_secs_f64()
    );
    let floor = (minimum - 1) as f64 * 10.0 / f64::from(per_10s);
    println!("crm_backfill: the limit alone allows it in {floor:.1} s; overhead {:.1} %", (elapsed.as_secs_f64() / floor - 1.0) * 100.0);
    assert_eq!(fake.violations(), vec![], "every request matched HubSpot's spec");
}
