//! Commissions and payouts through HTTP, on SQLite and PostgreSQL: accrual
//! at Closed Won exactly once (also under a race), the hold and release,
//! reversal and adjustment, payout details, batches, files, statements.

mod common;

use common::{Engine, TestApp, body, problem_fields};
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::store::Store;
use serde_json::{Value, json};

on_both_engines!(
    a_win_accrues_one_commission_payable_after_the_hold,
    twenty_concurrent_wins_accrue_one_commission,
    a_deal_leaving_won_takes_its_commission_back,
    a_reversal_after_payout_is_netted_by_the_next_payout,
    payout_details_are_validated_masked_and_sealed,
    a_payout_batch_pays_each_balance_once_and_exports_its_files,
    volume_bands_and_recurring_plans_pay_as_configured,
    concurrent_payout_runs_never_batch_a_commission_twice,
);

struct Program {
    app: TestApp,
    partners: Vec<(String, String)>,
}

impl Program {
    /// A workspace with a default plan and `n` partners with tokens.
    async fn new(engine: Engine, n: usize, plan: Value) -> Program {
        let app = TestApp::spawn(engine).await;
        let (s, p) = body(app.post("/api/v1/commission-plans", &app.admin, &plan).await).await;
        assert_eq!(s, 201, "{p}");
        let partners = app.partners_with_tokens(n).await;
        Program { app, partners }
    }

    fn id(&self, i: usize) -> &str {
        &self.partners[i].0
    }

    fn token(&self, i: usize) -> &str {
        &self.partners[i].1
    }

    /// Registers a new account for partner `i`; returns the referral id.
    async fn referral(&self, i: usize, company: &str) -> String {
        let domain = format!("{}.example", company.to_lowercase().replace(' ', "-"));
        let b = json!({"company": {"name": company, "domain": domain}, "contact": {"name": "Pat Buyer", "email": format!("pat@{domain}")}});
        let (s, r) = body(self.app.post("/api/v1/referrals", self.token(i), &b).await).await;
        assert_eq!((s, r["status"].as_str()), (201, Some("approved")), "{r}");
        r["id"].as_str().unwrap().to_owned()
    }

    async fn stage(&self, referral: &str, stage: &str, amount: Option<(&str, &str)>) -> (u16, Value) {
        let mut b = json!({"stage": stage});
        if let Some((a, c)) = amount {
            b["amount"] = json!({"amount": a, "currency": c});
        }
        body(self.app.post(&format!("/api/v1/referrals/{referral}/stage"), &self.app.admin, &b).await).await
    }

    async fn win(&self, referral: &str, amount: &str, currency: &str) {
        let (s, r) = self.stage(referral, "closed_won", Some((amount, currency))).await;
        assert_eq!((s, r["status"].as_str()), (200, Some("won")), "{r}");
    }

    async fn commissions(&self, query: &str, token: &str) -> Vec<Value> {
        let (s, list) = body(self.app.get(&format!("/api/v1/commissions{query}"), token).await).await;
        assert_eq!(s, 200, "{list}");
        list["data"].as_array().unwrap().clone()
    }

    async fn admin_post(&self, path: &str, b: Value) -> (u16, Value) {
        body(self.app.post(path, &self.app.admin, &b).await).await
    }

    async fn put(&self, path: &str, token: &str, b: Value) -> (u16, Value) {
        body(self.app.request(reqwest::Method::PUT, path, Some(token)).json(&b).send().await.unwrap()).await
    }
}

fn amount(v: &Value) -> (String, String) {
    (v["amount"].as_str().unwrap().to_owned(), v["currency"].as_str().unwrap().to_owned())
}

fn usd(a: &str) -> (String, String) {
    (a.to_owned(), "USD".to_owned())
}

async fn a_win_accrues_one_commission_payable_after_the_hold(engine: Engine) {
    let p = Program::new(engine, 2, json!({"name": "Standard", "kind": "percent", "rate": "0.15", "default": true})).await;
    let r = p.referral(0, "Globex").await;
    let before = Timestamp::now();
    p.win(&r, "10000.10", "USD").await;
    let list = p.commissions(&format!("?referral_id={r}"), &p.app.admin).await;
    assert_eq!(list.len(), 1);
    let c = &list[0];
    assert_eq!(amount(&c["amount"]), usd("1500.02"), "15 % of 10000.10 = 1500.015, half-even to 1500.02");
    assert_eq!((c["status"].as_str(), c["kind"].as_str(), c["partner_id"].as_str()), (Some("pending"), Some("accrual"), Some(p.id(0))));
    assert!(c["rule"].as_str().unwrap().contains("15 % of 10000.10 USD"), "{c}");
    let available: Timestamp = c["available_at"].as_str().unwrap().parse().unwrap();
    assert!(
        available >= before + SignedDuration::from_hours(24 * 30) && available < Timestamp::now() + SignedDuration::from_hours(24 * 30)
    );

    // The same win again changes nothing.
    p.win(&r, "10000.10", "USD").await;
    assert_eq!(p.commissions(&format!("?referral_id={r}"), &p.app.admin).await.len(), 1);
    // The partner sees its own; another partner sees none of it.
    assert_eq!(p.commissions("", p.token(0)).await.len(), 1);
    assert!(p.commissions("", p.token(1)).await.is_empty());
    let id = c["id"].as_str().unwrap();
    assert_eq!(p.app.get(&format!("/api/v1/commissions/{id}"), p.token(1)).await.status(), 404);
    let (_, tl) = body(p.app.get(&format!("/api/v1/referrals/{r}/timeline"), p.token(0)).await).await;
    assert!(
        tl["data"].as_array().unwrap().iter().any(|e| e["kind"] == "commission" && e["summary"].as_str().unwrap().contains("1500.02 USD"))
    );

    // Within the hold it is pending, with its accrual as its only entry.
    let (_, detail) = body(p.app.get(&format!("/api/v1/commissions/{id}"), p.token(0)).await).await;
    assert_eq!(detail["status"], "pending");
    let kinds: Vec<&str> = detail["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["accrued"]);
    assert!(detail["entries"][0]["actor"].as_str().unwrap().starts_with("admin"), "{detail}");
    assert!(detail["entries"][0]["reason"].as_str().unwrap().contains("15 % of 10000.10 USD"), "{detail}");

    // After the hold it is payable on read; the release job announces it
    // once (one `commission.released` event), whenever it runs.
    let later = Timestamp::now() + SignedDuration::from_hours(24 * 31);
    let store = p.app.store.as_ref();
    let ws = store.workspace_by_slug("default").await.unwrap().id;
    assert_eq!(partnerloop_app::commissions::release_due(store, None, Timestamp::now()).await.unwrap(), 0);
    assert_eq!(partnerloop_app::commissions::release_due(store, None, later).await.unwrap(), 1);
    assert_eq!(partnerloop_app::commissions::release_due(store, None, later).await.unwrap(), 0, "announced once");
    let cid = partnerloop_domain::commission::CommissionId::from_string(id);
    let stored = store.commission(&ws, &cid).await.unwrap();
    assert_eq!(stored.status_at(later), partnerloop_domain::commission::CommissionStatus::Payable);
    let entries = store.commission_entries(&ws, &cid, later).await.unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["accrued", "released"]);
    assert_eq!((entries[1].actor.as_str(), entries[1].at), ("scheduler", stored.available_at));
    let released: Vec<_> = store.audit_for(&ws, p.id(0)).await.unwrap().into_iter().filter(|a| a.action == "commission.released").collect();
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0].after.as_ref().unwrap()["commissions"], 1);
    let page = partnerloop_app::store::Page { limit: 10, after: None };
    let filter = |status| partnerloop_app::ledger::CommissionFilter { status: Some(status), ..Default::default() };
    use partnerloop_domain::commission::CommissionStatus::{Payable, Pending};
    assert_eq!(store.list_commissions(&ws, &filter(Payable), later, &page).await.unwrap().items.len(), 1);
    assert_eq!(store.list_commissions(&ws, &filter(Pending), later, &page).await.unwrap().items.len(), 0);
    assert_eq!(p.commissions("?status=pending", &p.app.admin).await.len(), 1, "still in its hold today");
    // A commission booked already due by the release mark (the job ran "at"
    // `later`) is announced by its own booking, since the job has passed it.
    let r2 = p.referral(1, "Initech").await;
    p.win(&r2, "200.00", "USD").await;
    let released: Vec<_> = store.audit_for(&ws, p.id(1)).await.unwrap().into_iter().filter(|a| a.action == "commission.released").collect();
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0].after.as_ref().unwrap()["amount"]["amount"], "30.00");
    assert_eq!(partnerloop_app::commissions::release_due(store, None, later + SignedDuration::from_hours(24)).await.unwrap(), 0);
    let (s, problem) = body(p.app.get("/api/v1/commissions?status=owed", &p.app.admin).await).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["status".to_owned()]));
    p.app.cleanup().await;
}

async fn twenty_concurrent_wins_accrue_one_commission(engine: Engine) {
    let p = Program::new(
        engine,
        1,
        json!({"name": "Flat", "kind": "flat", "amount": {"amount": "250.00", "currency": "USD"}, "default": true}),
    )
    .await;
    let r = p.referral(0, "Initech").await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let req = p
            .app
            .request(reqwest::Method::POST, &format!("/api/v1/referrals/{r}/stage"), Some(&p.app.admin))
            .json(&json!({"stage": "closed_won", "amount": {"amount": "9000.00", "currency": "USD"}}));
        tasks.push(tokio::spawn(async move { req.send().await.unwrap().status().as_u16() }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    assert!(statuses.contains(&200));
    let list = p.commissions(&format!("?referral_id={r}"), &p.app.admin).await;
    assert_eq!(list.len(), 1, "one commission whatever the race: {list:?}");
    assert_eq!(amount(&list[0]["amount"]), usd("250.00"));
    p.app.cleanup().await;
}

async fn a_deal_leaving_won_takes_its_commission_back(engine: Engine) {
    let p = Program::new(engine, 1, json!({"name": "Standard", "kind": "percent", "rate": "0.10", "default": true})).await;
    let r = p.referral(0, "Umbrella").await;
    p.win(&r, "5000.00", "USD").await;
    let (s, back) = p.stage(&r, "negotiation", None).await;
    assert_eq!((s, back["status"].as_str()), (200, Some("approved")), "{back}");
    let list = p.commissions(&format!("?referral_id={r}"), &p.app.admin).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "reversed");
    // Won again, at another amount: a second accrual, the first stays reversed.
    p.win(&r, "8000.00", "USD").await;
    let list = p.commissions(&format!("?referral_id={r}"), &p.app.admin).await;
    let states: Vec<(&str, (String, String))> = list.iter().map(|c| (c["status"].as_str().unwrap(), amount(&c["amount"]))).collect();
    assert_eq!(states, [("reversed", usd("500.00")), ("pending", usd("800.00"))]);
    // A corrected won amount takes back the old commission and accrues the new one.
    p.win(&r, "9000.00", "USD").await;
    let list = p.commissions(&format!("?referral_id={r}"), &p.app.admin).await;
    let states: Vec<&str> = list.iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(states, ["reversed", "reversed", "pending"]);
    assert_eq!(amount(&list[2]["amount"]), usd("900.00"));
    // A reversal by hand needs a reason, and a reversed commission cannot be reversed again.
    let id = list[2]["id"].as_str().unwrap();
    let (s, problem) = p.admin_post(&format!("/api/v1/commissions/{id}/reverse"), json!({"reason": " "})).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["reason".to_owned()]));
    let (s, c) = p.admin_post(&format!("/api/v1/commissions/{id}/reverse"), json!({"reason": "refunded"})).await;
    assert_eq!((s, c["status"].as_str()), (200, Some("reversed")), "{c}");
    let (s, _) = p.admin_post(&format!("/api/v1/commissions/{id}/reverse"), json!({"reason": "again"})).await;
    assert_eq!(s, 409);
    let (s, _) = body(p.app.post(&format!("/api/v1/commissions/{id}/reverse"), p.token(0), &json!({"reason": "mine"})).await).await;
    assert_eq!(s, 403, "partners cannot reverse");
    p.app.cleanup().await;
}

async fn paypal(p: &Program, i: usize) {
    let (s, d) = p
        .put(
            &format!("/api/v1/partners/{}/payout-details", p.id(i)),
            p.token(i),
            json!({"method": "paypal", "email": format!("pay{i}@partner.example")}),
        )
        .await;
    assert_eq!(s, 200, "{d}");
}

async fn a_reversal_after_payout_is_netted_by_the_next_payout(engine: Engine) {
    let p = Program::new(engine, 1, json!({"name": "Now", "kind": "percent", "rate": "0.20", "hold_days": 0, "default": true})).await;
    paypal(&p, 0).await;
    let first = p.referral(0, "Acme").await;
    p.win(&first, "1000.00", "USD").await;
    let (s, batch) = p.admin_post("/api/v1/payouts", json!({"currency": "USD"})).await;
    assert_eq!(s, 201, "{batch}");
    assert_eq!(amount(&batch["total"]), usd("200.00"));
    let batch_id = batch["id"].as_str().unwrap();
    // API.md's mark-paid takes no body; a reference is optional.
    let r =
        p.app.request(reqwest::Method::POST, &format!("/api/v1/payouts/{batch_id}/mark-paid"), Some(&p.app.admin)).send().await.unwrap();
    let (s, paid) = body(r).await;
    assert_eq!((s, paid["status"].as_str(), &paid["reference"]), (200, Some("paid"), &Value::Null), "{paid}");
    let c = &p.commissions(&format!("?referral_id={first}"), &p.app.admin).await[0];
    assert_eq!(c["status"], "paid");

    // The customer refunds after payout: an adjustment, not a silent edit.
    let (s, adj) = p.admin_post(&format!("/api/v1/commissions/{}/reverse", c["id"].as_str().unwrap()), json!({"reason": "refund"})).await;
    assert_eq!(s, 200, "{adj}");
    assert_eq!((adj["kind"].as_str(), adj["status"].as_str()), (Some("adjustment"), Some("payable")));
    assert_eq!(amount(&adj["amount"]), usd("-200.00"));
    assert_eq!(adj["adjusts"], c["id"]);
    let (s, _) = p.admin_post(&format!("/api/v1/commissions/{}/reverse", c["id"].as_str().unwrap()), json!({"reason": "twice"})).await;
    assert_eq!(s, 409, "a paid commission is corrected once");
    // Nothing to pay while the clawback is outstanding.
    let (s, problem) = p.admin_post("/api/v1/payouts", json!({"currency": "USD"})).await;
    assert_eq!(s, 422, "{problem}");
    assert!(problem.to_string().contains("clawback"), "{problem}");
    // The next win is paid net of it.
    let second = p.referral(0, "Hooli").await;
    p.win(&second, "1500.00", "USD").await;
    let (s, batch) = p.admin_post("/api/v1/payouts", json!({"currency": "USD"})).await;
    assert_eq!(s, 201, "{batch}");
    assert_eq!(amount(&batch["items"][0]["amount"]), usd("100.00"), "300.00 − 200.00");
    assert_eq!(batch["items"][0]["commission_ids"].as_array().unwrap().len(), 2);
    let (_, st) =
        body(p.app.get(&format!("/api/v1/partners/{}/statement?payout_id={}", p.id(0), batch["id"].as_str().unwrap()), p.token(0)).await)
            .await;
    assert_eq!(st["lines"].as_array().unwrap().len(), 2, "{st}");
    assert_eq!(amount(&st["balances"][0]["paid"]), usd("200.00"));
    p.app.cleanup().await;
}

async fn payout_details_are_validated_masked_and_sealed(engine: Engine) {
    let p = Program::new(engine, 2, json!({"name": "Standard", "kind": "percent", "rate": "0.10", "default": true})).await;
    let path = format!("/api/v1/partners/{}/payout-details", p.id(0));
    let (s, problem) =
        p.put(&path, &p.app.admin, json!({"method": "sepa", "account_name": "Partner 0", "iban": "DE89370400440532013001"})).await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["iban".to_owned()]), "{problem}");
    let (s, problem) = p
        .put(&path, &p.app.admin, json!({"method": "ach", "account_name": "P", "routing_number": "021000022", "account_number": "12345678", "account_type": "checking"}))
        .await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["routing_number".to_owned()]), "{problem}");
    let (s, masked) = p
        .put(
            &path,
            p.token(0),
            json!({"method": "sepa", "account_name": "Partner 0", "iban": "DE89 3704 0044 0532 0130 00", "bic": "COBADEFFXXX"}),
        )
        .await;
    assert_eq!(s, 200, "{masked}");
    assert_eq!(masked["iban_last4"], "3000");
    assert!(!masked.to_string().contains("DE8937040044"), "{masked}");
    let (_, read) = body(p.app.get(&path, &p.app.admin).await).await;
    assert_eq!(read, masked);
    // Another partner can neither read nor set it.
    assert_eq!(p.app.get(&path, p.token(1)).await.status(), 404);
    let (s, _) = p.put(&path, p.token(1), json!({"method": "credit"})).await;
    assert_eq!(s, 404);
    // At rest: sealed, and not in the audit log.
    let raw: Vec<String> = match engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&p.app.database_url).await.unwrap();
            let rows =
                sqlx::query_scalar("SELECT sealed || masked FROM payout_details UNION ALL SELECT COALESCE(after_state, '') FROM audit_log")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            pool.close().await;
            rows
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(&p.app.database_url).await.unwrap();
            let rows =
                sqlx::query_scalar("SELECT sealed || masked FROM payout_details UNION ALL SELECT COALESCE(after_state, '') FROM audit_log")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            pool.close().await;
            rows
        }
    };
    assert!(raw.iter().any(|r| r.starts_with("v1:")));
    assert!(raw.iter().all(|r| !r.contains("370400440532013000")), "the IBAN is stored in clear");
    p.app.cleanup().await;
}

async fn a_payout_batch_pays_each_balance_once_and_exports_its_files(engine: Engine) {
    let p = Program::new(engine, 5, json!({"name": "Now", "kind": "percent", "rate": "0.10", "hold_days": 0, "default": true})).await;
    let (s, settings) = p
        .put(
            "/api/v1/settings/payouts",
            &p.app.admin,
            json!({"minimum": {"amount": "50.00", "currency": "USD"},
                   "sepa": {"debtor_name": "Vendor GmbH", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
                   "nacha": {"immediate_destination": "021000021", "immediate_origin": "1234567890", "company_name": "VENDOR INC",
                             "company_id": "1234567890", "odfi_routing": "011000015"}}),
        )
        .await;
    assert_eq!(s, 200, "{settings}");
    assert_eq!(settings["sepa"]["iban_last4"], "3000");
    paypal(&p, 0).await;
    paypal(&p, 4).await;
    let (s, _) = p
        .put(&format!("/api/v1/partners/{}/payout-details", p.id(1)), &p.app.admin,
             json!({"method": "ach", "account_name": "Partner One LLC", "routing_number": "011000015", "account_number": "000123456789", "account_type": "savings"}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = p
        .put(
            &format!("/api/v1/partners/{}/payout-details", p.id(2)),
            &p.app.admin,
            json!({"method": "sepa", "account_name": "Société Générale Partner", "iban": "FR1420041010050500013M02606"}),
        )
        .await;
    assert_eq!(s, 200);
    // Partner 3 has no details; partner 4 earns less than the minimum.
    for (i, company, amount) in [(0, "Acme", "2000.00"), (1, "Globex", "3000.00"), (3, "Initech", "1000.00"), (4, "Hooli", "100.00")] {
        let r = p.referral(i, company).await;
        p.win(&r, amount, "USD").await;
    }
    let r = p.referral(2, "Zentralbank Partner").await;
    p.win(&r, "4000.00", "EUR").await;

    let (s, batch) = p.admin_post("/api/v1/payouts", json!({"currency": "USD"})).await;
    assert_eq!(s, 201, "{batch}");
    assert_eq!((batch["status"].as_str(), batch["currency"].as_str()), (Some("draft"), Some("USD")));
    assert_eq!(amount(&batch["total"]), usd("600.00"));
    let items: Vec<(&str, (String, String), &str)> = batch["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["partner_id"].as_str().unwrap(), amount(&i["amount"]), i["method"].as_str().unwrap()))
        .collect();
    // Partner 3 gave no payout details: paid all the same, in the CSV report only.
    let mut expected = vec![(p.id(0), usd("200.00"), "paypal"), (p.id(1), usd("300.00"), "ach"), (p.id(3), usd("100.00"), "none")];
    expected.sort();
    assert_eq!(items, expected);
    let skipped: Vec<(&str, &str)> =
        batch["skipped"].as_array().unwrap().iter().map(|k| (k["partner_id"].as_str().unwrap(), k["reason"].as_str().unwrap())).collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped.iter().any(|(id, why)| *id == p.id(4) && why.contains("below the minimum 50.00 USD")), "{skipped:?}");
    let id = batch["id"].as_str().unwrap().to_owned();

    // Nothing is batched twice.
    let (s, _) = p.admin_post("/api/v1/payouts", json!({"currency": "USD"})).await;
    assert_eq!(s, 422);

    let export = |format: &str| {
        p.app.request(reqwest::Method::GET, &format!("/api/v1/payouts/{id}/export?format={format}"), Some(&p.app.admin)).send()
    };

    let paypal = export("paypal_csv").await.unwrap();
    assert_eq!(paypal.status(), 200);
    assert!(paypal.headers()["content-disposition"].to_str().unwrap().contains(".csv"));
    let text = paypal.text().await.unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("pay0@partner.example,200.00,USD,"), "{text}");
    let ach = export("nacha").await.unwrap().text().await.unwrap();
    assert!(ach.lines().all(|l| l.len() == 94), "{ach}");
    assert_eq!(ach.lines().count() % 10, 0);
    assert!(ach.contains("000123456789"), "the bank file carries the account number");
    let csv = export("csv").await.unwrap().text().await.unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.contains(",none,100.00,USD,no payout details yet,"), "{csv}");
    assert!(!csv.contains("000123456789"), "the report masks account numbers: {csv}");
    let (s, problem) = body(export("sepa_xml").await.unwrap()).await;
    assert_eq!(s, 409, "a USD batch has no SEPA file: {problem}");
    let (s, _) = body(export("mt940").await.unwrap()).await;
    assert_eq!(s, 422);
    assert_eq!(p.app.get(&format!("/api/v1/payouts/{id}/export?format=csv"), p.token(0)).await.status(), 403);

    let (s, eur) = p.admin_post("/api/v1/payouts", json!({"currency": "EUR"})).await;
    assert_eq!(s, 201, "{eur}");
    let eur_id = eur["id"].as_str().unwrap();
    let xml = p.app.get(&format!("/api/v1/payouts/{eur_id}/export?format=sepa_xml"), &p.app.admin).await.text().await.unwrap();
    assert!(xml.contains("<CtrlSum>400.00</CtrlSum>") && xml.contains("FR1420041010050500013M02606"), "{xml}");
    assert!(xml.contains("Societe Generale Partner"), "names in the SEPA character set: {xml}");
    let (s, cancelled) = p.admin_post(&format!("/api/v1/payouts/{eur_id}/cancel"), json!({})).await;
    assert_eq!((s, cancelled["status"].as_str()), (200, Some("cancelled")));

    let (s, paid) = p.admin_post(&format!("/api/v1/payouts/{id}/mark-paid"), json!({"reference": "WIRE-2026-11"})).await;
    assert_eq!((s, paid["status"].as_str(), paid["reference"].as_str()), (200, Some("paid"), Some("WIRE-2026-11")));
    let (s, _) = p.admin_post(&format!("/api/v1/payouts/{id}/mark-paid"), json!({"reference": "again"})).await;
    assert_eq!(s, 409);
    let (s, _) = p.admin_post(&format!("/api/v1/payouts/{id}/cancel"), json!({})).await;
    assert_eq!(s, 409);
    let own = p.commissions("", p.token(0)).await;
    assert_eq!((own.len(), own[0]["status"].as_str(), own[0]["payout_id"].as_str()), (1, Some("paid"), Some(id.as_str())));
    let eur_again = p.commissions("?status=payable", p.token(2)).await;
    assert_eq!(eur_again.len(), 1, "the cancelled batch gave its commission back");
    let eur_commission = eur_again[0]["id"].as_str().unwrap();
    let (_, detail) = body(p.app.get(&format!("/api/v1/commissions/{eur_commission}"), p.token(2)).await).await;
    let kinds: Vec<&str> = detail["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["accrued", "released", "batched", "unbatched"], "{detail}");
    assert_eq!(detail["entries"][2]["payout_id"], eur_id, "{detail}");
    let (_, detail) = body(p.app.get(&format!("/api/v1/commissions/{}", own[0]["id"].as_str().unwrap()), p.token(0)).await).await;
    let kinds: Vec<&str> = detail["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["accrued", "released", "batched", "paid"], "{detail}");
    let (_, list) = body(p.app.get("/api/v1/payouts", &p.app.admin).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    p.app.cleanup().await;
}

/// The command line: imported won history accrues by `commissions accrue`,
/// `payouts run` prints the batch id, `payouts export` writes the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_backfills_history_and_runs_a_payout() {
    let p =
        Program::new(Engine::Sqlite, 1, json!({"name": "Ten", "kind": "percent", "rate": "0.10", "hold_days": 30, "default": true})).await;
    paypal(&p, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("referrals.csv");
    let recent = (Timestamp::now() - SignedDuration::from_hours(24 * 5)).strftime("%Y-%m-%d").to_string();
    let earlier = (Timestamp::now() - SignedDuration::from_hours(24 * 10)).strftime("%Y-%m-%d").to_string();
    std::fs::write(
        &csv,
        format!(
            "partner_contact_email,company_name,company_domain,contact_name,contact_email,created_at,status,stage,amount,currency,closed_at\n\
             p0@partner0.example,Oldco,oldco.example,Olga,olga@oldco.example,2026-01-02,won,closed_won,12000.00,USD,2026-01-15\n\
             p0@partner0.example,Newco,newco.example,Ned,ned@newco.example,{earlier},won,closed_won,3000.00,USD,{recent}\n"
        ),
    )
    .unwrap();
    let bin = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_partnerloop"));
        for (k, _) in std::env::vars() {
            if k.starts_with("PARTNERLOOP_") {
                c.env_remove(k);
            }
        }
        c.env("PARTNERLOOP_DATABASE_URL", &p.app.database_url).env("PARTNERLOOP_LOG", "warn").args(args).output().unwrap()
    };
    let out = bin(&["import", "referrals", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bin(&["commissions", "accrue"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2 commissions accrued (1 now payable); 0 won referrals without a plan");
    let again = bin(&["commissions", "accrue"]);
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("0 commissions accrued"), "a second run accrues nothing");

    let out = bin(&["payouts", "run", "--currency", "USD"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(id.starts_with("pay_"), "{id}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1200.00 USD to 1 partners"), "{}", String::from_utf8_lossy(&out.stderr));
    let file = dir.path().join("out.csv");
    let out = bin(&["payouts", "export", &id, "--format", "paypal_csv", "--output", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&file).unwrap().starts_with("pay0@partner.example,1200.00,USD,"));
    let out = bin(&["payouts", "export", &id, "--format", "sepa_xml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SEPA"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bin(&["payouts", "run", "--currency", "USD"]);
    assert!(!out.status.success(), "nothing left to pay");
    p.app.cleanup().await;
}

async fn volume_bands_and_recurring_plans_pay_as_configured(engine: Engine) {
    let p = Program::new(
        engine,
        1,
        json!({"name": "Volume", "kind": "tiered", "rates": {"gold": "0.12"}, "bands": [{"from": 1, "rate": "0.10"}, {"from": 3, "rate": "0.20"}],
               "band_period": "year", "default": true}),
    )
    .await;
    let (s, problem) = p
        .admin_post(
            "/api/v1/commission-plans",
            json!({"name": "Bad", "kind": "percent", "rate": "0.1", "bands": [{"from": 2, "rate": "0.1"}], "band_period": "year"}),
        )
        .await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["bands".to_owned()]), "{problem}");
    let (s, problem) = p
        .admin_post("/api/v1/commission-plans", json!({"name": "Bad", "kind": "tiered", "rates": {"gold": "0.1"}, "bands": [{"from": 2, "rate": "0.1"}], "band_period": "week"}))
        .await;
    assert_eq!((s, problem_fields(&problem)), (422, vec!["band_period".to_owned()]), "{problem}");
    let mut amounts = Vec::new();
    for company in ["Alpha", "Bravo", "Charlie"] {
        let r = p.referral(0, company).await;
        p.win(&r, "1000.00", "USD").await;
        amounts.push(amount(&p.commissions(&format!("?referral_id={r}"), &p.app.admin).await[0]["amount"]));
    }
    assert_eq!(amounts, [usd("100.00"), usd("100.00"), usd("200.00")], "the third win of the year earns the second band");

    // A recurring plan for one partner: each payment earns, the win itself does not.
    let (s, plan) = p
        .admin_post(
            "/api/v1/commission-plans",
            json!({"name": "Subscription", "kind": "percent", "rate": "0.20", "hold_days": 0,
                                                       "recurring": {"months": 3, "hold_from": "first_payment"}}),
        )
        .await;
    assert_eq!(s, 201, "{plan}");
    assert_eq!(plan["recurring"], json!({"months": 3, "hold_from": "first_payment"}));
    let r = p.app.request(reqwest::Method::PATCH, &format!("/api/v1/partners/{}", p.id(0)), Some(&p.app.admin));
    let (s, partner) = body(r.json(&json!({"commission_plan_id": plan["id"]})).send().await.unwrap()).await;
    assert_eq!(s, 200, "{partner}");
    let r = p.referral(0, "Delta").await;
    let (s, _) = p
        .admin_post(
            &format!("/api/v1/referrals/{r}/payments"),
            json!({"amount": {"amount": "50.00", "currency": "USD"}, "paid_at": "2026-01-01"}),
        )
        .await;
    assert_eq!(s, 409, "not won yet");
    p.win(&r, "12000.00", "USD").await;
    assert!(p.commissions(&format!("?referral_id={r}"), &p.app.admin).await.is_empty(), "a recurring plan pays per payment");
    let first = (Timestamp::now() - SignedDuration::from_hours(24 * 100)).strftime("%Y-%m-%d").to_string();
    let within = (Timestamp::now() - SignedDuration::from_hours(24 * 50)).strftime("%Y-%m-%d").to_string();
    let after = (Timestamp::now() - SignedDuration::from_hours(24)).strftime("%Y-%m-%d").to_string();
    let payments = format!("/api/v1/referrals/{r}/payments");
    let pay = |day: String| p.admin_post(&payments, json!({"amount": {"amount": "1000.00", "currency": "USD"}, "paid_at": day}));
    let (s, one) = pay(first).await;
    assert_eq!(s, 201, "{one}");
    assert_eq!(amount(&one["commission"]["amount"]), usd("200.00"));
    assert_eq!((one["commission"]["kind"].as_str(), one["commission"]["status"].as_str()), (Some("recurring"), Some("payable")));
    let (_, two) = pay(within).await;
    assert_eq!(amount(&two["commission"]["amount"]), usd("200.00"));
    let (_, three) = pay(after).await;
    assert!(three["commission"].is_null(), "{three}");
    assert!(three["note"].as_str().unwrap().contains("3 months"), "{three}");
    let (_, list) = body(p.app.get(&format!("/api/v1/referrals/{r}/payments"), p.token(0)).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    assert_eq!(p.commissions(&format!("?referral_id={r}"), &p.app.admin).await.len(), 2);
    // Churn: the deal leaves won, and its unpaid recurring commissions go back.
    p.stage(&r, "negotiation", None).await;
    let states: Vec<String> =
        p.commissions(&format!("?referral_id={r}"), &p.app.admin).await.iter().map(|c| c["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(states, ["reversed", "reversed"]);
    p.app.cleanup().await;
}

async fn concurrent_payout_runs_never_batch_a_commission_twice(engine: Engine) {
    let p = Program::new(engine, 4, json!({"name": "Now", "kind": "percent", "rate": "0.10", "hold_days": 0, "default": true})).await;
    for (i, company) in ["Acme", "Globex", "Initech", "Hooli", "Umbrella", "Soylent", "Cyberdyne", "Wonka"].iter().enumerate() {
        let r = p.referral(i % 4, company).await;
        p.win(&r, "1000.00", "USD").await;
    }
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let req = p.app.request(reqwest::Method::POST, "/api/v1/payouts", Some(&p.app.admin)).json(&json!({"currency": "USD"}));
        tasks.push(tokio::spawn(async move { body(req.send().await.unwrap()).await }));
    }
    let mut seen = std::collections::HashSet::new();
    let mut created = 0;
    for t in tasks {
        let (s, b) = t.await.unwrap();
        match s {
            201 => {
                created += 1;
                for item in b["items"].as_array().unwrap() {
                    for c in item["commission_ids"].as_array().unwrap() {
                        assert!(seen.insert(c.as_str().unwrap().to_owned()), "{c} in two batches");
                    }
                }
            }
            422 => {}
            other => panic!("{other}: {b}"),
        }
    }
    assert!(created >= 1);
    assert_eq!(seen.len(), 8, "every commission batched exactly once");
    p.app.cleanup().await;
}
