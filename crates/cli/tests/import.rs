//! `partnerloop import` as an operator runs it, on SQLite and PostgreSQL:
//! all-or-nothing files, every bad row reported as FILE:LINE: field:
//! reason, `--skip-invalid`, and imported history that the rules then use.

mod common;

use std::process::{Command, Output, Stdio};

use common::{Engine, TestApp, body, fresh_database_url};

on_both_engines!(
    a_file_with_a_bad_row_imports_nothing_and_names_every_problem,
    skip_invalid_imports_the_good_rows,
    imported_accounts_partners_deals_and_history_drive_the_rules,
);

fn import(db: &str, dir: &std::path::Path, kind: &str, name: &str, content: &str, extra: &[&str]) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_partnerloop"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PARTNERLOOP_") {
            c.env_remove(k);
        }
    }
    c.env("PARTNERLOOP_DATABASE_URL", db).env("PARTNERLOOP_LOG", "warn").current_dir(dir).args(["import", kind, name]).args(extra);
    c.stdin(Stdio::null()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn a_file_with_a_bad_row_imports_nothing_and_names_every_problem(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = "name,domain,status,owner_email\nInitech,initech.example,customer,rep@vendor.example\nBad Co,not a domain,prospect,\nDup,www.initech.example,customer,\nX,x.example,vip,nope\n";
    let out = import(&app.database_url, dir.path(), "accounts", "accounts.csv", csv, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        &lines[..4],
        [
            "accounts.csv:3: domain: 'not a domain' is not a domain name like acme.com",
            "accounts.csv:4: domain: initech.example is already on line 2",
            "accounts.csv:5: status: 'vip' is not one of: prospect, customer, off_limits",
            "accounts.csv:5: owner_email: is not a valid email address (Missing separator character '@'.)",
        ]
    );
    let (_, accounts) = body(app.get("/api/v1/accounts", &app.admin).await).await;
    assert_eq!(accounts["data"].as_array().unwrap().len(), 0, "nothing was imported");

    let out = import(&app.database_url, dir.path(), "accounts", "cols.csv", "name,domian,status\nA,a.example,prospect\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cols.csv:1: domain: required column is missing from the header"), "{err}");
    assert!(err.contains("cols.csv:1: domian: unknown column"), "{err}");
    let out = import(
        &app.database_url,
        dir.path(),
        "deals",
        "deals.csv",
        "name,company_name,company_domain,stage,amount,currency,closed_at\nD,C,c.example,proposal,10.005,USD,2026-01-01\nE,E,e.example,won,5,USD,\n,F,f.example,new,5,,\n",
        &[],
    );
    let err = text(&out.stderr);
    assert!(err.contains("deals.csv:2: amount: USD allows at most 2 decimal places"), "{err}");
    assert!(err.contains("deals.csv:3: stage: 'won' is not one of"), "{err}");
    assert!(err.contains("deals.csv:4: name: must not be empty"), "{err}");
    assert!(err.contains("deals.csv:4: currency: is required with an amount"), "{err}");
    app.cleanup().await;
}

async fn skip_invalid_imports_the_good_rows(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = "name,domain,status\nInitech,initech.example,customer\nBad Co,not a domain,prospect\nUmbrella,umbrella.example,off_limits\n";
    let out = import(&app.database_url, dir.path(), "accounts", "accounts.csv", csv, &["--skip-invalid"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "imported 2 accounts from accounts.csv\n");
    assert!(text(&out.stderr).contains("accounts.csv:3: domain:"));
    let (_, accounts) = body(app.get("/api/v1/accounts", &app.admin).await).await;
    assert_eq!(accounts["data"].as_array().unwrap().len(), 2);
    // Importing the same file again finds the accounts already there.
    let out = import(&app.database_url, dir.path(), "accounts", "accounts.csv", csv, &[]);
    assert!(text(&out.stderr).contains("accounts.csv:2: domain: an account with initech.example already exists"));
    app.cleanup().await;
}

async fn imported_accounts_partners_deals_and_history_drive_the_rules(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let dir = tempfile::tempdir().unwrap();
    let db = &app.database_url;
    let ok = |o: Output| assert!(o.status.success(), "{}", text(&o.stderr));
    ok(import(db, dir.path(), "accounts", "a.csv", "name,domain,status\nInitech,initech.example,customer\n", &[]));
    ok(import(
        db,
        dir.path(),
        "partners",
        "p.csv",
        "name,type,contact_name,contact_email,created_at\nNorthwind,consultant,Ada,ada@northwind.example,2025-01-15\nBrightlane,agency,Ben,ben@brightlane.example,2025-03-01T09:30:00Z\n",
        &[],
    ));
    ok(import(
        db,
        dir.path(),
        "deals",
        "d.csv",
        "name,company_name,company_domain,stage,amount,currency,created_at,closed_at\nSoylent platform,Soylent,soylent.example,proposal,36000,USD,2025-06-01,\nOld,Vandelay,vandelay.example,closed_lost,100,USD,2025-01-01,2025-02-01\n",
        &[],
    ));
    let history = "partner_contact_email,company_name,company_domain,contact_name,contact_email,context,created_at,status,stage,amount,currency,closed_at\n\
        ada@northwind.example,Globex,globex.example,Hank,hank@globex.example,intro,2025-02-01,won,,24000.00,USD,2025-04-01\n\
        ada@northwind.example,Hooli,,Gavin,gavin@hooli.example,,2026-11-20,,,,,\n\
        ben@brightlane.example,Initech,initech.example,Bill,bill@initech.example,,,,,,,\n\
        ben@brightlane.example,Hooli Labs,hooli.example,Jared,jared@hooli.example,,2026-11-21,,,,,\n\
        ada@northwind.example,Pied Piper,piedpiper.example,Richard,richard@piedpiper.example,,2025-01-01,approved,negotiation,,,\n";
    let out = import(db, dir.path(), "referrals", "r.csv", history, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "imported 5 referrals from r.csv\n");

    let (_, list) = body(app.get("/api/v1/referrals?limit=10", &app.admin).await).await;
    let by_company = |name: &str| list["data"].as_array().unwrap().iter().find(|r| r["company"]["name"] == name).unwrap().clone();
    let won = by_company("Globex");
    assert_eq!((won["status"].as_str(), won["channel"].as_str()), (Some("won"), Some("csv")));
    assert_eq!(won["created_at"], "2025-02-01T00:00:00Z", "history keeps its dates");
    assert_eq!(won["closed_at"], "2025-04-01T00:00:00Z");
    assert_eq!(won["amount"]["amount"], "24000.00");
    assert_eq!(by_company("Hooli")["status"], "approved", "decided by the rules");
    assert_eq!(by_company("Initech")["decision"]["reasons"][0]["rule"], "existing_customer");
    let second = by_company("Hooli Labs");
    assert_eq!(second["status"], "rejected", "the account is held by the row above: {second}");
    assert_eq!(second["decision"]["reasons"][0]["rule"], "active_referral_other_partner");
    let old = by_company("Pied Piper");
    assert_eq!((old["status"].as_str(), old["stage"].as_str()), (Some("approved"), Some("negotiation")));

    // Imported history is live data: the window of an old approval has lapsed …
    let expired = partnerloop_app::referrals::expire_lapsed(app.store.as_ref(), jiff::Timestamp::now()).await.unwrap();
    assert_eq!(expired, 1);
    // … and the partners' first-referral dates come from it.
    let (_, partners) = body(app.get("/api/v1/partners", &app.admin).await).await;
    let ada = partners["data"].as_array().unwrap().iter().find(|p| p["name"] == "Northwind").unwrap().clone();
    assert_eq!(ada["created_at"], "2025-01-15T00:00:00Z");
    assert_eq!(ada["first_referral_at"], "2025-01-01T00:00:00Z");
    // A new registration is checked against imported data too.
    let (_, key) =
        body(app.post(&format!("/api/v1/partners/{}/api-keys", ada["id"].as_str().unwrap()), &app.admin, &serde_json::json!({})).await)
            .await;
    let token = key["token"].as_str().unwrap();
    let (_, r) = body(app.post("/api/v1/referrals", token, &serde_json::json!({"company": {"name": "Soylent", "domain": "soylent.example"}, "contact": {"name": "S", "email": "s@soylent.example"}})).await).await;
    assert_eq!(r["decision"]["reasons"][0]["rule"], "open_direct_opportunity");
    app.cleanup().await;
}

#[tokio::test]
async fn a_missing_file_is_a_clear_error() {
    let (db, dir, _) = fresh_database_url(Engine::Sqlite).await;
    let mut c = Command::new(env!("CARGO_BIN_EXE_partnerloop"));
    c.env("PARTNERLOOP_DATABASE_URL", &db).env("PARTNERLOOP_LOG", "warn").current_dir(dir.as_ref().unwrap().path()).args([
        "import",
        "accounts",
        "nowhere.csv",
    ]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("partnerloop: nowhere.csv: cannot read"), "{}", text(&out.stderr));
}
