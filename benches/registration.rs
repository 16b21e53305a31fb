//! Deal-registration benchmark, one run on SQLite (`synchronous=FULL`):
//!
//! 1. the conflict check (exact keys + fuzzy names) in process over
//!    1,000,000 accounts and 100,000 active referrals, with 1,000 queries
//!    that are real names mistyped the way people do (a deleted or
//!    transposed character, another legal suffix, other casing, a leading
//!    "The"): p50, p99 and top-1 recall of the fuzzy match;
//! 2. durable registrations/s through HTTP on loopback, beside the raw
//!    one-row-per-commit rate of the same machine and settings;
//! 3. p50/p99 latency of registrations at a steady 200 requests/s.
//!
//! `cargo bench --bench registration`. Sizes and durations:
//! `BENCH_ACCOUNTS` (1000000), `BENCH_REFERRALS` (100000), `BENCH_QUERIES`
//! (1000), `BENCH_SECONDS` (10), `BENCH_CONNECTIONS` (64).

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::matching::{NameMatcher, parse_key, referral_key};
use partnerloop_app::referrals::{check_conflicts, claim_keys};
use partnerloop_app::{Ctx, Store, workspaces};
use partnerloop_domain::names::fold_company_name;
use partnerloop_store::{SqlStore, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

const SYLLABLES: &[&str] = &[
    "glo", "bex", "ini", "tech", "hoo", "li", "soy", "lent", "um", "brel", "van", "de", "lay", "won", "ka", "cy", "ber", "dyne", "ac",
    "me", "nor", "thwind", "zen", "tor", "vel", "ix", "bran", "qua", "dro", "pix", "mar", "lon", "ter", "ra", "sol", "vi", "ne", "ox",
    "cor", "al", "fen", "ric", "tal", "mo", "ren", "sta", "lux", "pri", "dex", "gal", "ven", "tri", "kor", "nu", "vo", "lys", "tem", "par",
    "quin", "zel", "bor", "dal", "fi", "gro", "hel", "jun", "kel", "lor", "mia", "nov", "pol", "rav", "sen", "tov", "ul", "vex", "wil",
    "yar", "zor", "ath", "bri", "cal", "dun", "eb", "fal", "gen", "har", "ist", "jor", "kin", "lem", "mot", "nar", "orb", "pel", "rin",
    "sut", "tur", "uv", "wex",
];
const WORDS: &[&str] = &[
    "Systems",
    "Labs",
    "Logistics",
    "Analytics",
    "Foods",
    "Energy",
    "Health",
    "Media",
    "Capital",
    "Robotics",
    "Software",
    "Networks",
    "Consulting",
    "Studios",
    "Pharma",
    "Motors",
    "Solar",
    "Textiles",
    "Security",
    "Finance",
    "Insurance",
    "Retail",
    "Aerospace",
    "Marine",
    "Biotech",
    "Chemicals",
    "Construction",
    "Design",
    "Education",
    "Farms",
    "Gaming",
    "Hospitality",
    "Industries",
    "Legal",
    "Mining",
    "Optics",
    "Packaging",
    "Realty",
    "Telecom",
    "Ventures",
];
const SUFFIXES: &[&str] = &["Inc", "LLC", "Ltd", "GmbH", "Corp", "S.A.", "BV", "AG", "PLC", "Co.", ""];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn word(rng: &mut StdRng) -> String {
    let n = 3;
    let w: String = (0..n).map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())]).collect();
    let mut c = w.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// A company: a distinctive base of two invented words and often a trade
/// ("Zenvelix Torbrasol Logistics"), and a legal suffix. Like real company
/// names, two of them rarely lie one typo apart.
fn company(rng: &mut StdRng) -> (String, String) {
    let base = if rng.random_bool(0.7) {
        format!("{} {} {}", word(rng), word(rng), WORDS[rng.random_range(0..WORDS.len())])
    } else {
        format!("{} {}", word(rng), word(rng))
    };
    (base, SUFFIXES[rng.random_range(0..SUFFIXES.len())].to_owned())
}

/// The base name mistyped once, then with another suffix, casing and maybe "The".
fn perturb(rng: &mut StdRng, base: &str, suffix: &str) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    let letters: Vec<usize> =
        (1..chars.len().saturating_sub(1)).filter(|i| chars[*i].is_alphabetic() && chars[*i + 1].is_alphabetic()).collect();
    let at = letters[rng.random_range(0..letters.len())];
    if rng.random_bool(0.5) {
        chars.remove(at);
    } else {
        chars.swap(at, at + 1);
    }
    let typo: String = chars.into_iter().collect();
    let other_suffix = SUFFIXES.iter().find(|s| **s != suffix && rng.random_bool(0.3)).copied().unwrap_or("");
    let mut name = format!("{typo} {other_suffix}").trim().to_owned();
    match rng.random_range(0..3) {
        0 => name = name.to_lowercase(),
        1 => name = name.to_uppercase(),
        _ => {}
    }
    if rng.random_bool(0.3) {
        name = format!("The {name}");
    }
    name
}

fn slug(s: &str) -> String {
    s.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

fn ts(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// Registers a fresh company (a new generated name); returns the HTTP status.
async fn register(client: &reqwest::Client, base: &str, token: &str, tag: String) -> u16 {
    let seed = tag.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let (base_name, suffix) = company(&mut StdRng::seed_from_u64(seed));
    client
        .post(format!("{base}/api/v1/referrals"))
        .bearer_auth(token)
        .json(&serde_json::json!({"company": {"name": format!("{base_name} {suffix}"), "domain": format!("fresh-{tag}.example")},
                                  "contact": {"name": "New Buyer", "email": format!("buyer@fresh-{tag}.example")}}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

struct Target {
    id: String,
    name: String,
    query: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let accounts = env("BENCH_ACCOUNTS", 1_000_000);
    let referrals = env("BENCH_REFERRALS", 100_000);
    let queries = env("BENCH_QUERIES", 1_000);
    let seconds = env("BENCH_SECONDS", 10) as u64;
    let connections = env("BENCH_CONNECTIONS", 64);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Arc::new(SqlStore::connect(&url, &StoreOptions::default()).await.expect("open"));
    store.migrate().await.expect("migrate");
    // `BENCH_WITHOUT_COUNTERS=1` measures what the KPI counters' triggers
    // (migration 0015) cost a registration: it runs without them.
    if std::env::var("BENCH_WITHOUT_COUNTERS").is_ok_and(|v| v == "1") {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
        for t in ["referrals_metric_insert", "referrals_metric_update_old", "referrals_metric_update_new", "referrals_metric_delete"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER {t}"))).execute(&pool).await.expect("drop trigger");
        }
        pool.close().await;
        eprintln!("without the KPI counters' triggers");
    }
    let now = Timestamp::now();
    let ws = workspaces::ensure(store.as_ref(), "default", now).await.expect("workspace");
    let ctx = Ctx::system(ws.id.clone(), "bench", now);

    // Partners: the referral holders, and the ones that register in the benchmark.
    let mut partner_ids = Vec::new();
    for i in 0..200 {
        let p = partnerloop_app::partners::create(
            store.as_ref(),
            &ctx,
            partnerloop_app::partners::PartnerForCreate {
                name: format!("Bench Partner {i}"),
                partner_type: partnerloop_domain::partner::PartnerType::Agency,
                status: partnerloop_domain::partner::PartnerStatus::Active,
                tier: None,
                contact_name: "Bench".into(),
                contact_email: partnerloop_domain::Email::parse("e", &format!("p{i}@bench-partner{i}.example")).unwrap(),
                website: None,
                commission_plan_id: None,
                created_at: None,
            },
        )
        .await
        .expect("partner");
        partner_ids.push(p.id);
    }

    // Bulk load: accounts and active referrals, with their claims and name-log rows.
    let load_started = Instant::now();
    let mut rng = StdRng::seed_from_u64(42);
    let mut seen = HashSet::new();
    let mut targets = Vec::new();
    let raw = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::from_str(&url).unwrap().journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal),
        )
        .await
        .expect("raw pool");
    let mut tx = raw.begin().await.unwrap();
    let stamp = ts(now);
    let expires = ts(now + SignedDuration::from_hours(24 * 60));
    let total = accounts + referrals;
    let mut made = 0;
    while made < total {
        let (base, suffix) = company(&mut rng);
        let folded = fold_company_name(&base);
        if !seen.insert(folded) {
            continue;
        }
        let name = format!("{base} {suffix}").trim().to_owned();
        let domain = format!("{}{made}.example", slug(&base));
        let is_account = made < accounts;
        let id = if is_account { format!("acc_bench{made:08}") } else { format!("ref_bench{made:08}") };
        if is_account {
            sqlx::query("INSERT INTO accounts (id, workspace_id, name, domain, status, created_at, updated_at) VALUES ($1, $2, $3, $4, 'prospect', $5, $5)")
                .bind(&id)
                .bind(ws.id.as_str())
                .bind(&name)
                .bind(&domain)
                .bind(&stamp)
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("INSERT INTO name_index_log (workspace_id, entity_id, name, active) VALUES ($1, $2, $3, TRUE)")
                .bind(ws.id.as_str())
                .bind(&id)
                .bind(&name)
                .execute(&mut *tx)
                .await
                .unwrap();
        } else {
            let partner = &partner_ids[made % 100];
            let email = format!("buyer@{domain}");
            sqlx::query(
                "INSERT INTO referrals (id, workspace_id, partner_id, status, channel, company_name, company_domain, contact_name, contact_email,
                 outcome, reasons, decided_at, decided_by, protection_starts_at, protection_expires_at, created_at, updated_at)
                 VALUES ($1, $2, $3, 'approved', 'api', $4, $5, 'Buyer', $6, 'approved', '[]', $7, 'rules', $7, $8, $7, $7)",
            )
            .bind(&id)
            .bind(ws.id.as_str())
            .bind(partner.as_str())
            .bind(&name)
            .bind(&domain)
            .bind(&email)
            .bind(&stamp)
            .bind(&expires)
            .execute(&mut *tx)
            .await
            .unwrap();
            for key in claim_keys(&domain, &email) {
                sqlx::query("INSERT INTO protection_claims (workspace_id, match_key, referral_id, partner_id, expires_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(ws.id.as_str())
                    .bind(key)
                    .bind(&id)
                    .bind(partner.as_str())
                    .bind(&expires)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            sqlx::query("INSERT INTO name_index_log (workspace_id, entity_id, name, active) VALUES ($1, $2, $3, TRUE)")
                .bind(ws.id.as_str())
                .bind(referral_key(partner.as_str(), &id))
                .bind(&name)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        // Every ~1,100th company becomes a query (accounts and referrals alike).
        if targets.len() < queries && made % (total / queries).max(1) == 0 {
            targets.push(Target { id, name: name.clone(), query: perturb(&mut rng, &base, &suffix) });
        }
        made += 1;
        if made % 50_000 == 0 {
            tx.commit().await.unwrap();
            tx = raw.begin().await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    raw.close().await;
    println!("loaded {accounts} accounts and {referrals} active referrals in {:.1} s", load_started.elapsed().as_secs_f64());

    // 1. The conflict check in process.
    let matcher = NameMatcher::new();
    let index_started = Instant::now();
    matcher.catch_up(store.as_ref(), &ws.id).await.unwrap();
    println!("fuzzy index of {} names built in {:.1} s", accounts + referrals, index_started.elapsed().as_secs_f64());
    let rules = store.rules(&ws.id).await.unwrap();
    let checker = partner_ids[150].clone();
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let mut hits = 0;
    for (n, t) in targets.iter().enumerate() {
        let keys = claim_keys(&format!("newco{n}.example"), &format!("someone@newco{n}.example"));
        let started = Instant::now();
        let evidence =
            check_conflicts(store.as_ref(), &matcher, &ws.id, &checker, &t.query, &keys, rules.fuzzy_threshold, Timestamp::now())
                .await
                .unwrap()
                .evidence;
        hist.record(started.elapsed().as_micros() as u64).unwrap();
        if evidence.similar_names.first().is_some_and(|s| parse_key(&s.id).0 == t.id) {
            hits += 1;
        } else if std::env::var("BENCH_SHOW_MISSES").is_ok() {
            let found: Vec<_> = evidence.similar_names.iter().map(|s| format!("{} {:.3}", s.name, s.score)).collect();
            println!("miss: {:?} for {:?} ({}): {found:?}", t.query, t.name, fold_company_name(&t.query));
        }
    }
    let recall = hits as f64 / targets.len() as f64;
    println!(
        "conflict check ({} queries): p50 {}, p99 {}, max {}; fuzzy top-1 recall {recall:.3}",
        targets.len(),
        ms(hist.value_at_quantile(0.5)),
        ms(hist.value_at_quantile(0.99)),
        ms(hist.max())
    );

    // 2. Durable registrations/s through HTTP: with group commit, and with
    //    one commit per registration (grouping off), on the same database.
    let mut tokens = Vec::new();
    for p in partner_ids.iter().skip(100).take(connections.min(100)) {
        tokens.push(partnerloop_app::auth::create_partner_key(store.as_ref(), &ctx, p, Some("bench")).await.unwrap());
    }
    let mut rates = Vec::new();
    let mut steady_base = String::new();
    for (label, max_batch) in [("one commit per registration", 1usize), ("group commit", 128)] {
        let options = StoreOptions { group_commit_max: max_batch, ..StoreOptions::default() };
        let server_store = Arc::new(SqlStore::connect(&url, &options).await.expect("open"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = partnerloop_web::router(partnerloop_web::AppState::new(server_store.clone(), "bench-secret-key-bench-secret-key"));
        tokio::spawn(partnerloop_web::serve(listener, router, std::future::pending()));
        let client = {
            partnerloop_jobs::http::install_crypto_provider();
            reqwest::Client::builder()
        }
        .pool_max_idle_per_host(connections * 2)
        .build()
        .unwrap();
        let warm = register(&client, &base, &tokens[0], format!("warmup{max_batch}")).await;
        assert_eq!(warm, 201, "warm-up registration");
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for c in 0..connections {
            let client = client.clone();
            let token = tokens[c % tokens.len()].clone();
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut n) = (0u64, 0u64);
                while Instant::now() < deadline {
                    if register(&client, &base, &token, format!("b{max_batch}c{c}n{n}")).await == 201 {
                        ok += 1;
                    }
                    n += 1;
                }
                ok
            }));
        }
        let started = Instant::now();
        let mut created = 0;
        for t in tasks {
            created += t.await.unwrap();
        }
        let rate = created as f64 / started.elapsed().as_secs_f64();
        let batches = server_store.registration_batches();
        println!(
            "durable registrations through HTTP, {label} ({connections} connections, {seconds} s): {rate:.0}/s \
             ({} batches stored whole, {} one registration at a time)",
            batches.whole, batches.fell_back
        );
        rates.push(rate);
        steady_base = base;
    }
    let client = {
        partnerloop_jobs::http::install_crypto_provider();
        reqwest::Client::builder()
    }
    .pool_max_idle_per_host(connections * 2)
    .build()
    .unwrap();
    let base = steady_base;

    // The raw one-row-per-commit rate, same machine and settings.
    let raw_url = format!("sqlite://{}", dir.path().join("raw.db").display());
    let raw = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::from_str(&raw_url)
                .unwrap()
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full),
        )
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT NOT NULL)").execute(&raw).await.unwrap();
    let raw_started = Instant::now();
    let mut rows = 0u64;
    while raw_started.elapsed() < Duration::from_secs(seconds.min(5)) {
        let mut tx = raw.begin().await.unwrap();
        sqlx::query("INSERT INTO t (id, v) VALUES ($1, $2)").bind(format!("r{rows}")).bind("x").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        rows += 1;
    }
    let raw_rate = rows as f64 / raw_started.elapsed().as_secs_f64();
    println!(
        "raw one-row-per-commit: {raw_rate:.0}/s; group commit is {:.1}x one commit per registration and {:.1}x the raw rate",
        rates[1] / rates[0],
        rates[1] / raw_rate
    );

    // 3. Latency at a steady 200 requests/s (open loop).
    let total = 200 * seconds;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..total {
        let due = started + Duration::from_micros(i * 5_000);
        tokio::time::sleep_until(due.into()).await;
        let client = client.clone();
        let token = tokens[(i as usize) % tokens.len()].clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            assert_eq!(register(&client, &base, &token, format!("steady{i}")).await, 201);
            sent.elapsed().as_micros() as u64
        }));
    }
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        hist.record(t.await.unwrap()).unwrap();
    }
    println!(
        "at 200 registrations/s for {seconds} s: p50 {}, p99 {}, max {}",
        ms(hist.value_at_quantile(0.5)),
        ms(hist.value_at_quantile(0.99)),
        ms(hist.max())
    );
}
