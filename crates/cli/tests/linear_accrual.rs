//! A backfill of won history books, row by row, what the domain's
//! `commission::accrue` books. The commissions of linear plans
//! (percent or flat, with a minimum and a cap) are computed by one
//! `INSERT … SELECT` in integers (on PostgreSQL too); this is the test that its arithmetic
//! (half-even rounding, minimum and cap in and out of the won currency,
//! currencies of 0, 2 and 3 decimals), its rule text, its hold and its ids
//! are the domain's. Wins it must leave (a tiered plan, an amount too large
//! for its integers) are booked by the general path in the same run.

mod common;

on_both_engines!(a_backfill_books_what_the_domain_computes, a_large_backfill_and_batch_keep_the_schema);

use std::collections::{HashMap, HashSet};

use common::{Engine, TestApp, body};
use jiff::Timestamp;
use partnerloop_app::Ctx;
use partnerloop_app::ledger::CommissionFilter;
use partnerloop_app::store::{Page, Store};
use partnerloop_domain::commission::{self, CommissionKind, EntryKind, Win};
use partnerloop_domain::ids::PlanId;
use partnerloop_domain::{Currency, Money};
use serde_json::{Value, json};

async fn plan(app: &TestApp, spec: Value) -> String {
    let (s, plan) = body(app.post("/api/v1/commission-plans", &app.admin, &spec).await).await;
    assert_eq!(s, 201, "{plan}");
    plan["id"].as_str().unwrap().to_owned()
}

/// Amounts (in minor units) that sit on every rounding edge of the rates
/// below, and some ordinary ones.
const AMOUNTS: &[i64] = &[0, 1, 4, 12, 20, 28, 36, 100, 3_996, 4_004, 39_999, 40_000, 1_501_501, 2_402_402, 123_456_789, 2_999_999_999];

async fn a_backfill_books_what_the_domain_computes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let default = plan(
        &app,
        json!({"name": "Standard", "kind": "percent", "rate": "0.125", "hold_days": 14, "default": true,
               "minimum": {"amount": "5.00", "currency": "USD"}, "cap": {"amount": "300.00", "currency": "USD"}}),
    )
    .await;
    let tiny = plan(&app, json!({"name": "Tiny", "kind": "percent", "rate": "0.000333", "hold_days": 0})).await;
    let flat =
        plan(&app, json!({"name": "Flat", "kind": "flat", "amount": {"amount": "25.00", "currency": "EUR"}, "cap": {"amount": "20.00", "currency": "EUR"}}))
            .await;
    let tiered = plan(&app, json!({"name": "Tiered", "kind": "tiered", "rates": {"gold": "0.2"}})).await;
    let plans = [None, Some(&tiny), Some(&flat), Some(&tiered)];
    let mut emails = Vec::new();
    for (i, own) in plans.iter().enumerate() {
        let email = format!("p{i}@linear{i}.example");
        let p = app.create_partner(&app.admin, &format!("Linear Partner {i}"), &email).await;
        if let Some(own) = own {
            let r = app
                .patch(&format!("/api/v1/partners/{}", p["id"].as_str().unwrap()), &app.admin, &json!({"commission_plan_id": own}))
                .await;
            assert_eq!(r.status(), 200);
        }
        emails.push(email);
    }
    let currencies = ["USD", "EUR", "JPY", "KWD"];
    let mut csv = String::from(
        "partner_contact_email,company_name,company_domain,contact_name,contact_email,created_at,status,stage,amount,currency,closed_at\n",
    );
    let mut n = 0;
    for (a, minor) in AMOUNTS.iter().enumerate() {
        for (c, code) in currencies.iter().enumerate() {
            for (p, email) in emails.iter().enumerate() {
                let money = Money::from_minor(*minor, Currency::parse("c", code).unwrap());
                let closed = format!("2026-03-{:02}T10:11:12.{:06}Z", 1 + (a + c + p) % 27, 100_003 * (a + 1) % 1_000_000);
                csv.push_str(&format!(
                    "{email},Company {n},company{n}.example,Buyer,buyer@company{n}.example,2026-01-01,won,closed_won,{},{code},{closed}\n",
                    money.amount_string()
                ));
                n += 1;
            }
        }
    }
    // Larger than the integers of a 12.5 % rate hold: the general path books it.
    csv.push_str(&format!(
        "{},Huge,huge.example,Buyer,buyer@huge.example,2026-01-01,won,closed_won,800000000000.00,USD,2026-03-05T00:00:00Z\n",
        emails[0]
    ));
    n += 1;
    import_referrals(&app, &csv);

    let before = sqlite_indexes(&app, engine).await;
    let store = app.store.as_ref();
    let ws = store.workspace_by_slug("default").await.unwrap().id;
    // Stored times keep microseconds.
    let now = Timestamp::from_microsecond(Timestamp::now().as_microsecond()).unwrap();
    let ctx = Ctx::system(ws.clone(), "linear test", now);
    let report = partnerloop_app::commissions::accrue_missing(store, &ctx).await.unwrap();
    assert_eq!((report.accrued, report.without_plan), (n as u64, 0), "{report:?}");
    let again = partnerloop_app::commissions::accrue_missing(store, &ctx).await.unwrap();
    assert_eq!(again.accrued, 0, "every win accrues exactly once");
    // The first set outnumbered the table, so SQLite rebuilt its indexes:
    // exactly as the schema defines them.
    assert_eq!(sqlite_indexes(&app, engine).await, before);

    let commissions =
        store.list_commissions(&ws, &CommissionFilter::default(), now, &Page { limit: 1000, after: None }).await.unwrap().items;
    assert_eq!(commissions.len(), n);
    let mut by_plan: HashMap<PlanId, partnerloop_domain::plan::CommissionPlan> = HashMap::new();
    for id in [&default, &tiny, &flat, &tiered] {
        let id = PlanId::from_string(id.as_str());
        by_plan.insert(id.clone(), store.plan(&ws, &id).await.unwrap());
    }
    let mut ids = HashSet::new();
    for c in &commissions {
        let referral = store.referral(&ws, &c.referral_id).await.unwrap();
        let plan = &by_plan[c.plan_id.as_ref().expect("a plan")];
        let won = referral.amount.expect("won amount");
        let expected = commission::accrue(plan, &Win { amount: won, tier: None, nth_in_period: 1 }).unwrap();
        assert_eq!((c.amount, c.rule.as_str()), (expected.amount, expected.rule.as_str()), "won {won} on plan {}", plan.name);
        let won_at = referral.closed_at.expect("closed");
        assert_eq!(c.available_at, commission::available_at(won_at, plan.hold_days), "{won_at}");
        assert_eq!((c.kind, c.won_seq, c.created_at), (CommissionKind::Accrual, 1, now));
        let id = c.id.as_str();
        assert!(
            id.len() == 30 && id.starts_with("com_") && id[4..].chars().all(|ch| "0123456789abcdefghjkmnpqrstvwxyz".contains(ch)),
            "{id}"
        );
        assert!(ids.insert(id.to_owned()), "{id} twice");
        let entries = store.commission_entries(&ws, &c.id, now).await.unwrap();
        let accrued = entries.iter().find(|e| e.kind == EntryKind::Accrued).expect("an accrued entry");
        assert_eq!(
            (accrued.actor.as_str(), accrued.reason.as_str(), accrued.amount),
            ("system:linear test", "won referral accrued by backfill", c.amount)
        );
    }
    let mut rules: Vec<&str> = commissions.iter().map(|c| c.rule.as_str()).collect();
    rules.sort();
    rules.dedup();
    for phrase in ["; raised to the minimum 5.00 USD", "; capped at 300.00 USD", "not applied to a JPY amount", "; capped at 20.00 EUR"] {
        assert!(rules.iter().any(|r| r.contains(phrase)), "no rule says '{phrase}'");
    }
    {
        // The linear plans went as sets: one audit row each, with its count.
        let audits = store.audit_for(&ws, ws.as_str()).await.unwrap();
        let sets: Vec<(String, u64)> = audits
            .iter()
            .filter(|a| a.action == "commissions.backfilled")
            .filter_map(|a| Some((a.after.as_ref()?["plan"].as_str()?.to_owned(), a.after.as_ref()?["accrued"].as_u64()?)))
            .collect();
        let per = (AMOUNTS.len() * currencies.len()) as u64;
        let mut sets = sets;
        sets.sort();
        let mut want = vec![(default.clone(), per), (tiny.clone(), per), (flat.clone(), per)];
        want.sort();
        assert_eq!(sets, want);
    }
    app.cleanup().await;
}

/// 6,000 won referrals of 30 partners backfilled and paid in one batch: on
/// SQLite the set and the batch each outnumber what the indexes held, so
/// both build them again — the schema ends as it began and the batch holds
/// every commission once.
async fn a_large_backfill_and_batch_keep_the_schema(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    plan(&app, json!({"name": "Ten", "kind": "percent", "rate": "0.1", "hold_days": 30, "default": true})).await;
    let mut csv = String::from(
        "partner_contact_email,company_name,company_domain,contact_name,contact_email,created_at,status,stage,amount,currency,closed_at\n",
    );
    let mut expected = 0;
    for p in 0..30 {
        let partner = app.create_partner(&app.admin, &format!("Bulk Partner {p}"), &format!("p{p}@bulk{p}.example")).await;
        let r = app.request(
            reqwest::Method::PUT,
            &format!("/api/v1/partners/{}/payout-details", partner["id"].as_str().unwrap()),
            Some(&app.admin),
        );
        assert_eq!(r.json(&json!({"method": "credit"})).send().await.unwrap().status(), 200);
    }
    for n in 0..6_000 {
        let minor = 10_000 + n * 7;
        expected +=
            Money::from_minor(minor, Currency::USD).minor() / 10 + i64::from(minor % 10 > 5 || (minor % 10 == 5 && (minor / 10) % 2 == 1));
        let amount = Money::from_minor(minor, Currency::USD).amount_string();
        csv.push_str(&format!(
            "p{p}@bulk{p}.example,Bulk {n},bulk{n}.example,B,b@bulk{n}.example,2025-01-01,won,closed_won,{amount},USD,2025-06-01\n",
            p = n % 30
        ));
    }
    let before = sqlite_indexes(&app, engine).await;
    import_referrals(&app, &csv);
    let store = app.store.as_ref();
    let ws = store.workspace_by_slug("default").await.unwrap().id;
    let ctx = Ctx::system(ws.clone(), "bulk test", Timestamp::now());
    assert_eq!(partnerloop_app::commissions::accrue_missing(store, &ctx).await.unwrap().accrued, 6_000);
    assert!(app.store.writer_enforces_foreign_keys().await.unwrap(), "the set's settings stayed on its own connection");
    let created = partnerloop_app::payouts::create(store, &ctx, Currency::USD).await.unwrap();
    assert!(app.store.writer_enforces_foreign_keys().await.unwrap());
    wal_checkpointed_in_background(&app, engine).await;
    let payout = created.payout.expect("a batch");
    assert_eq!((payout.commission_count, payout.items.len(), payout.total.minor()), (6_000, 30, expected));
    let ids = partnerloop_app::payouts::commission_ids(store, &ctx, &payout.id).await.unwrap();
    let all: HashSet<String> = ids.iter().flat_map(|(_, c)| c.iter().map(|c| c.to_string())).collect();
    assert_eq!((ids.len(), all.len()), (30, 6_000), "each commission once, grouped per partner");
    assert_eq!(sqlite_indexes(&app, engine).await, before, "the indexes are the schema's again");
    let again = partnerloop_app::payouts::create(store, &ctx, Currency::USD).await.unwrap();
    assert!(again.payout.is_none(), "nothing is left to batch");
    app.cleanup().await;
}

/// `partnerloop import referrals` of `csv`, as an operator runs it.
fn import_referrals(app: &TestApp, csv: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("won.csv");
    std::fs::write(&file, csv).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_partnerloop"))
        .env("PARTNERLOOP_DATABASE_URL", &app.database_url)
        .env("PARTNERLOOP_LOG", "warn")
        .args(["import", "referrals", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// On SQLite the batch's commit left the WAL to the background
/// checkpoint: the WAL index's header shows every frame copied back
/// (nBackfill = mxFrame) without anyone else checkpointing (the WAL is far
/// below the writer's automatic checkpoint).
async fn wal_checkpointed_in_background(app: &TestApp, engine: Engine) {
    if engine != Engine::Sqlite {
        return;
    }
    let shm = format!("{}-shm", app.database_url.trim_start_matches("sqlite://"));
    let word = |b: &[u8], at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().unwrap());
    for _ in 0..200 {
        let header = std::fs::read(&shm).unwrap();
        let (frames, backfilled) = (word(&header, 16), word(&header, 96));
        assert!(frames > 0, "the batch wrote to the WAL");
        if backfilled == frames {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the WAL was not checkpointed within 10 s");
}

async fn sqlite_indexes(app: &TestApp, engine: Engine) -> Vec<(String, Option<String>)> {
    if engine != Engine::Sqlite {
        return Vec::new();
    }
    let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
    let rows = sqlx::query_as("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'commissions' ORDER BY name")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}
