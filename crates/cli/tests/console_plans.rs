//! The console's commission plans, tier ladder and partner management, on
//! SQLite and PostgreSQL, through HTTP as a browser uses them: each plan
//! kind added through the form is the API's plan; bad input is shown
//! beside its field and stores nothing; a sales user reads but may not
//! change; a form without its token changes nothing; the ladder editor
//! keeps the old ladder on a mistake; "evaluate now" promotes; a partner's
//! status and plan change through its page and are audited; a partner's
//! portal session opens none of these pages.

mod common;

use common::staff_client::{Browser, staff_user};
use common::{Engine, TestApp, body};
use partnerloop_app::staff::StaffRole;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_engines!(
    each_plan_kind_added_through_the_form_is_the_apis_plan,
    bad_plan_input_is_shown_beside_its_field_and_nothing_is_stored,
    a_sales_user_reads_plans_and_tiers_but_changes_nothing,
    a_form_without_its_token_changes_nothing,
    a_bad_ladder_is_shown_beside_its_row_and_the_old_ladder_stays,
    evaluate_now_promotes_a_partner_with_enough_wins,
    a_partners_status_and_plan_change_from_its_page_and_are_audited,
    a_partner_session_opens_none_of_these_pages,
);

async fn signed_in(app: &TestApp, email: &str, role: StaffRole) -> Browser {
    let url = staff_user(app, email, role).await;
    let mut b = Browser::new(app);
    let (s, location) = b.use_link(&url).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin")));
    b
}

async fn plans_json(app: &TestApp) -> Vec<Value> {
    let (s, list) = body(app.get("/api/v1/commission-plans", &app.admin).await).await;
    assert_eq!(s, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

async fn ladder_json(app: &TestApp) -> (u16, Value) {
    body(app.get("/api/v1/tiers", &app.admin).await).await
}

async fn partner_json(app: &TestApp, id: &str) -> Value {
    body(app.get(&format!("/api/v1/partners/{id}"), &app.admin).await).await.1
}

async fn put_ladder(app: &TestApp) {
    let ladder = json!({"measure": "won_count", "tiers": [
        {"slug": "bronze", "name": "Bronze", "threshold": 0},
        {"slug": "gold", "name": "Gold", "threshold": 5}]});
    let r = app.request(reqwest::Method::PUT, "/api/v1/tiers", Some(&app.admin)).json(&ladder).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Partner `token` registers `company` and the admin wins it for `amount` USD.
async fn win(app: &TestApp, token: &str, company: &str, amount: &str) {
    let domain = format!("{}.example", company.to_lowercase());
    let b = json!({"company": {"name": company, "domain": domain}, "contact": {"name": "Pat Buyer", "email": format!("pat@{domain}")}});
    let (s, r) = body(app.post("/api/v1/referrals", token, &b).await).await;
    assert_eq!((s, r["status"].as_str()), (201, Some("approved")), "{r}");
    let id = r["id"].as_str().unwrap();
    let won = json!({"stage": "closed_won", "amount": {"amount": amount, "currency": "USD"}});
    let (s, r) = body(app.post(&format!("/api/v1/referrals/{id}/stage"), &app.admin, &won).await).await;
    assert_eq!((s, r["status"].as_str()), (200, Some("won")), "{r}");
}

fn with<'a>(csrf: &'a str, fields: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![("csrf", csrf)];
    f.extend_from_slice(fields);
    f
}

async fn each_plan_kind_added_through_the_form_is_the_apis_plan(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    put_ladder(&app).await;
    let mut b = signed_in(&app, "lead@plans.example", StaffRole::Manager).await;
    let (s, page, _) = b.get("/admin/plans").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("No commission plans yet") && page.contains("name=\"rates.gold\"") && page.contains("Add plan"), "{page}");
    let csrf = b.csrf();
    let percent = with(
        &csrf,
        &[
            ("name", "Standard"),
            ("kind", "percent"),
            ("rate", "0.15"),
            ("cap.amount", "500.00"),
            ("cap.currency", "USD"),
            ("minimum.amount", "10.00"),
            ("minimum.currency", "USD"),
            ("hold_days", "45"),
            ("default", "on"),
        ],
    );
    let (s, _, location) = b.post("/admin/plans", &percent).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin/plans?created=1")));
    let flat = with(
        &csrf,
        &[("name", "Referral fee"), ("kind", "flat"), ("amount.amount", "250.00"), ("amount.currency", "EUR"), ("hold_days", "")],
    );
    let (s, page, _) = b.post("/admin/plans", &flat).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{page}");
    let tiered = with(
        &csrf,
        &[
            ("name", "Ladder"),
            ("kind", "tiered"),
            ("rates.bronze", "0.10"),
            ("rates.gold", "0.2"),
            ("band_period", "quarter"),
            ("bands[0].from", "1"),
            ("bands[0].rate", "0.05"),
            ("bands[1].from", "6"),
            ("bands[1].rate", "0.25"),
            ("bands[2].from", ""),
            ("bands[2].rate", ""),
            ("hold_days", "0"),
            ("recurring.months", "12"),
            ("recurring.hold_from", "first_payment"),
        ],
    );
    let (s, page, _) = b.post("/admin/plans", &tiered).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{page}");

    let plans = plans_json(&app).await;
    let by = |name: &str| plans.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no plan {name}: {plans:?}")).clone();
    let p = by("Standard");
    assert_eq!(
        (p["kind"].as_str(), p["rate"].as_str(), p["hold_days"].as_u64(), p["default"].as_bool()),
        (Some("percent"), Some("0.15"), Some(45), Some(true))
    );
    assert_eq!((p["cap"]["amount"].as_str(), p["minimum"]["amount"].as_str()), (Some("500.00"), Some("10.00")));
    let f = by("Referral fee");
    assert_eq!((f["kind"].as_str(), f["hold_days"].as_u64(), f["default"].as_bool()), (Some("flat"), Some(30), Some(false)));
    assert_eq!(f["amount"], json!({"amount": "250.00", "currency": "EUR"}));
    let t = by("Ladder");
    assert_eq!(t["rates"], json!({"bronze": "0.1", "gold": "0.2"}));
    assert_eq!(
        (t["band_period"].as_str(), t["bands"][1]["from"].as_u64(), t["bands"][1]["rate"].as_str()),
        (Some("quarter"), Some(6), Some("0.25"))
    );
    assert_eq!(t["bands"].as_array().unwrap().len(), 2);
    assert_eq!(t["recurring"], json!({"months": 12, "hold_from": "first_payment"}));
    assert_eq!(t["hold_days"], 0);

    // The list shows what each pays, and which is the default.
    let (_, page, _) = b.get("/admin/plans?created=1").await;
    assert!(
        page.contains("The plan is added") && page.contains("15 % of the won amount") && page.contains("250.00 EUR per won referral"),
        "{page}"
    );
    assert!(
        page.contains("gold: 20 %") && page.contains("from win 6 in a quarter: 25 %") && page.contains("12 months of payments"),
        "{page}"
    );
    let flat_id = f["id"].as_str().unwrap();
    assert!(page.contains(&format!("action=\"/admin/plans/{flat_id}/default\"")), "{page}");

    // Another plan becomes the default; the old one loses the flag; the audit log says who.
    let (s, _, location) = b.post(&format!("/admin/plans/{flat_id}/default"), &[("csrf", &csrf)]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin/plans?default_set=1")));
    let plans = plans_json(&app).await;
    let defaults: Vec<&str> = plans.iter().filter(|p| p["default"] == true).map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(defaults, ["Referral fee"]);
    let (_, page, _) = b.get("/admin/audit?action=commission_plan.default_set").await;
    assert!(page.contains("commission_plan.default_set") && page.contains("staff:"), "{page}");
    app.cleanup().await;
}

async fn bad_plan_input_is_shown_beside_its_field_and_nothing_is_stored(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    put_ladder(&app).await;
    let mut b = signed_in(&app, "lead@plans.example", StaffRole::Admin).await;
    b.get("/admin/plans").await;
    let csrf = b.csrf();
    let bad = with(&csrf, &[("name", "Too generous"), ("kind", "percent"), ("rate", "15"), ("hold_days", "1000")]);
    let (s, page, _) = b.post("/admin/plans", &bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"rate-error\">must be greater than 0 and at most 1"), "{page}");
    assert!(page.contains("id=\"hold_days-error\">must be from 0 to 730"), "{page}");
    assert!(!page.contains("id=\"name-error\""), "only the bad fields are marked");
    assert!(
        page.contains("value=\"Too generous\"") && page.contains("value=\"15\"") && page.contains("value=\"1000\""),
        "what was typed stays"
    );
    let limits = [("cap.amount", "5.00"), ("cap.currency", "USD"), ("minimum.amount", "9.00"), ("minimum.currency", "USD")];
    let (s, page, _) = b
        .post(
            "/admin/plans",
            &[&with(&csrf, &[("name", "Days"), ("kind", "percent"), ("rate", "0.1"), ("hold_days", "a month")])[..], &limits].concat(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"hold_days-error\">must be from 0 to 730") && page.contains("value=\"a month\""), "{page}");
    assert!(page.contains("id=\"minimum.amount-error\">must not exceed the cap") && !page.contains("id=\"rate-error\""), "{page}");
    let bands = with(
        &csrf,
        &[
            ("name", "Bands"),
            ("kind", "tiered"),
            ("rates.gold", "0.2"),
            ("band_period", "month"),
            ("bands[0].from", "1"),
            ("bands[0].rate", "0.1"),
            ("bands[1].from", "x"),
            ("bands[1].rate", "2"),
        ],
    );
    let (s, page, _) = b.post("/admin/plans", &bands).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"bands[1].from-error\">must be 1 or more") && page.contains("id=\"bands[1].rate-error\">"), "{page}");
    assert!(!page.contains("id=\"bands[0].from-error\"") && page.contains("value=\"x\""), "{page}");
    let (s, page, _) = b.post("/admin/plans", &with(&csrf, &[("name", ""), ("kind", "tiered")])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"name-error\">") && page.contains("id=\"rates-error\">needs at least one tier"), "{page}");
    assert!(plans_json(&app).await.is_empty(), "nothing was stored");

    // A second plan of the same name is refused beside the name.
    let good = with(&csrf, &[("name", "Standard"), ("kind", "percent"), ("rate", "0.1")]);
    assert_eq!(b.post("/admin/plans", &good).await.0, StatusCode::SEE_OTHER);
    let (s, page, _) = b.post("/admin/plans", &good).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"name-error\">a commission plan with this name already exists"), "{page}");
    assert_eq!(plans_json(&app).await.len(), 1);
    app.cleanup().await;
}

async fn a_sales_user_reads_plans_and_tiers_but_changes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    put_ladder(&app).await;
    let (_, plan) =
        body(app.post("/api/v1/commission-plans", &app.admin, &json!({"name": "Standard", "kind": "percent", "rate": "0.1"})).await).await;
    let plan_id = plan["id"].as_str().unwrap();
    let pid = app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await["id"].as_str().unwrap().to_owned();
    let mut rep = signed_in(&app, "rep@plans.example", StaffRole::Sales).await;
    let (s, page, _) = rep.get("/admin/plans").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Standard") && page.contains("may read the plans") && !page.contains("Add plan") && !page.contains("Make default"),
        "{page}"
    );
    let (s, page, _) = rep.get("/admin/tiers").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Gold") && page.contains("<fieldset disabled") && !page.contains("Evaluate now"), "{page}");
    let (s, page, _) = rep.get(&format!("/admin/partners/{pid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Northwind") && !page.contains("Change status"), "{page}");

    let csrf = rep.csrf();
    for (path, form) in [
        ("/admin/plans".to_owned(), with(&csrf, &[("name", "Mine"), ("kind", "percent"), ("rate", "0.5")])),
        (format!("/admin/plans/{plan_id}/default"), with(&csrf, &[])),
        (
            "/admin/tiers".to_owned(),
            with(&csrf, &[("measure", "won_count"), ("tiers[0].slug", "x"), ("tiers[0].name", "X"), ("tiers[0].threshold", "0")]),
        ),
        ("/admin/tiers/evaluate".to_owned(), with(&csrf, &[])),
        (format!("/admin/partners/{pid}/status"), with(&csrf, &[("status", "archived")])),
        (format!("/admin/partners/{pid}/plan"), with(&csrf, &[("commission_plan_id", plan_id)])),
    ] {
        let (s, _, _) = rep.post(&path, &form).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
    let plans = plans_json(&app).await;
    assert_eq!((plans.len(), plans[0]["default"].as_bool()), (1, Some(false)));
    assert_eq!(ladder_json(&app).await.1["tiers"].as_array().unwrap().len(), 2);
    let p = partner_json(&app, &pid).await;
    assert_eq!((p["status"].as_str(), p["commission_plan_id"].as_str()), (Some("active"), None));
    app.cleanup().await;
}

const WRONG_TOKEN: &str = "00000000000000000000000000000000000000000000000000000000000000aa";

async fn a_form_without_its_token_changes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, plan) =
        body(app.post("/api/v1/commission-plans", &app.admin, &json!({"name": "Standard", "kind": "percent", "rate": "0.1"})).await).await;
    let plan_id = plan["id"].as_str().unwrap();
    let pid = app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await["id"].as_str().unwrap().to_owned();
    let mut b = signed_in(&app, "lead@plans.example", StaffRole::Admin).await;
    for (path, form) in [
        ("/admin/plans".to_owned(), vec![("name", "Sneaky"), ("kind", "percent"), ("rate", "0.5")]),
        (format!("/admin/plans/{plan_id}/default"), vec![]),
        (
            "/admin/tiers".to_owned(),
            vec![("measure", "won_count"), ("tiers[0].slug", "x"), ("tiers[0].name", "X"), ("tiers[0].threshold", "0")],
        ),
        (format!("/admin/partners/{pid}/status"), vec![("status", "paused")]),
        (format!("/admin/partners/{pid}/plan"), vec![("commission_plan_id", plan_id)]),
        (format!("/admin/partners/{pid}/status"), vec![("csrf", WRONG_TOKEN), ("status", "paused")]),
    ] {
        let (s, _, _) = b.post(&path, &form).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
    let plans = plans_json(&app).await;
    assert_eq!((plans.len(), plans[0]["default"].as_bool()), (1, Some(false)));
    assert_eq!(ladder_json(&app).await.0, 404, "no ladder was saved");
    let p = partner_json(&app, &pid).await;
    assert_eq!((p["status"].as_str(), p["commission_plan_id"].as_str()), (Some("active"), None));
    app.cleanup().await;
}

async fn a_bad_ladder_is_shown_beside_its_row_and_the_old_ladder_stays(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut b = signed_in(&app, "lead@plans.example", StaffRole::Admin).await;
    let (s, page, _) = b.get("/admin/tiers").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("No tier ladder yet") && page.contains("name=\"tiers[0].slug\""), "{page}");
    let csrf = b.csrf();
    let ladder = |silver: &'static str| {
        with(
            &csrf,
            &[
                ("measure", "won_count"),
                ("currency", "USD"),
                ("requalification_grace_days", "60"),
                ("tiers[0].slug", "bronze"),
                ("tiers[0].name", "Bronze"),
                ("tiers[0].threshold", "0"),
                ("tiers[0].benefits", "Listing in the directory"),
                ("tiers[1].slug", "silver"),
                ("tiers[1].name", "Silver"),
                ("tiers[1].threshold", silver),
                ("tiers[1].benefits", ""),
                ("tiers[2].slug", "gold"),
                ("tiers[2].name", "Gold"),
                ("tiers[2].threshold", "10"),
                ("tiers[2].benefits", "A partner manager"),
                ("tiers[3].slug", ""),
                ("tiers[3].name", ""),
                ("tiers[3].threshold", ""),
                ("tiers[3].benefits", ""),
            ],
        )
    };
    let (s, _, location) = b.post("/admin/tiers", &ladder("3")).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin/tiers?saved=1")));
    let (s, saved) = ladder_json(&app).await;
    assert_eq!(s, 200);
    let thresholds: Vec<i64> = saved["tiers"].as_array().unwrap().iter().map(|t| t["threshold"].as_i64().unwrap()).collect();
    assert_eq!((thresholds, saved["requalification_grace_days"].as_u64()), (vec![0, 3, 10], Some(60)));
    assert_eq!(saved["tiers"][2]["benefits"], "A partner manager");

    // Silver above Gold: the error is beside Gold's threshold, and the ladder stays.
    let (s, page, _) = b.post("/admin/tiers", &ladder("20")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"tiers[2].threshold-error\">must be greater than the threshold of tier 2 (20)"), "{page}");
    assert!(!page.contains("id=\"tiers[1].threshold-error\"") && page.contains("value=\"20\""), "{page}");
    let (s, page, _) = b.post("/admin/tiers", &ladder("many")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"tiers[1].threshold-error\">must be a whole number"), "{page}");
    assert_eq!(ladder_json(&app).await.1, saved, "the old ladder stays");

    // Emptying a row removes its tier.
    let mut fewer = ladder("3");
    for f in ["tiers[1].slug", "tiers[1].name", "tiers[1].threshold"] {
        fewer.iter_mut().find(|(k, _)| *k == f).unwrap().1 = "";
    }
    assert_eq!(b.post("/admin/tiers", &fewer).await.0, StatusCode::SEE_OTHER);
    let slugs: Vec<String> =
        ladder_json(&app).await.1["tiers"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap().to_owned()).collect();
    assert_eq!(slugs, ["bronze", "gold"]);
    app.cleanup().await;
}

async fn evaluate_now_promotes_a_partner_with_enough_wins(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let partners = app.partners_with_tokens(2).await;
    let plan = json!({"name": "Standard", "kind": "percent", "rate": "0.1", "default": true});
    assert_eq!(body(app.post("/api/v1/commission-plans", &app.admin, &plan).await).await.0, 201);
    // Won before any ladder exists: nothing promotes them until an evaluation.
    for company in ["Acme", "Globex", "Initech"] {
        win(&app, &partners[0].1, company, "1000.00").await;
    }
    win(&app, &partners[1].1, "Hooli", "500.00").await;
    let mut b = signed_in(&app, "lead@plans.example", StaffRole::Manager).await;
    b.get("/admin/tiers").await;
    let csrf = b.csrf();
    let ladder = with(
        &csrf,
        &[
            ("measure", "won_revenue"),
            ("currency", "USD"),
            ("tiers[0].slug", "silver"),
            ("tiers[0].name", "Silver"),
            ("tiers[0].threshold", "0"),
            ("tiers[1].slug", "gold"),
            ("tiers[1].name", "Gold"),
            ("tiers[1].threshold", "2500.00"),
        ],
    );
    assert_eq!(b.post("/admin/tiers", &ladder).await.0, StatusCode::SEE_OTHER);
    assert!(partner_json(&app, &partners[0].0).await["tier"].is_null());
    let (_, page, _) = b.get("/admin/tiers").await;
    assert!(page.contains("id=\"untiered\">2 partner(s) without a tier") && page.contains("2,500.00 USD"), "{page}");

    let (s, page, _) = b.post("/admin/tiers/evaluate", &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("id=\"promoted\">2<") && page.contains("id=\"demoted\">0<"), "{page}");
    assert_eq!(partner_json(&app, &partners[0].0).await["tier"], "gold");
    assert_eq!(partner_json(&app, &partners[1].0).await["tier"], "silver");
    let gold_row = &page[page.find("id=\"tier-gold\"").expect("a gold row")..];
    assert!(gold_row[..gold_row.find("</tr>").unwrap()].ends_with("<td class=\"n\">1</td>"), "{gold_row}");

    // The partner's page shows its standing and its history.
    let (_, page, _) = b.get(&format!("/admin/partners/{}", partners[0].0)).await;
    assert!(page.contains("id=\"tier-measure\">3,000.00 USD won revenue") && page.contains("the top of the ladder"), "{page}");
    // Its earnings: 10 % of 3,000.00 on hold (30 days by default).
    let earnings = &page[page.find("id=\"earnings\"").expect("an earnings card")..];
    assert!(earnings.contains("<td>USD</td><td>300.00 USD</td><td>0.00 USD</td><td>0.00 USD</td><td>0.00 USD</td>"), "{earnings}");
    let history = &page[page.find("id=\"tier-history\"").expect("a history table")..];
    assert!(history.contains("<td>none</td><td>gold</td>") && history.contains("staff:"), "{history}");
    let (_, page, _) = b.get(&format!("/admin/partners/{}", partners[1].0)).await;
    assert!(page.contains("id=\"tier-next\">Gold: 2,000.00 USD more"), "{page}");

    // A second evaluation has nothing left to do.
    let (_, page, _) = b.post("/admin/tiers/evaluate", &[("csrf", &csrf)]).await;
    assert!(page.contains("id=\"promoted\">0<"), "{page}");
    app.cleanup().await;
}

async fn a_partners_status_and_plan_change_from_its_page_and_are_audited(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, plan) =
        body(app.post("/api/v1/commission-plans", &app.admin, &json!({"name": "Premium", "kind": "percent", "rate": "0.2"})).await).await;
    let plan_id = plan["id"].as_str().unwrap();
    let pid = app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await["id"].as_str().unwrap().to_owned();
    let mut b = signed_in(&app, "lead@plans.example", StaffRole::Manager).await;
    let (s, page, _) = b.get(&format!("/admin/partners/{pid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Change status") && page.contains("none: the workspace has no default plan"), "{page}");
    assert!(page.contains(&format!("<option value=\"{plan_id}\">Premium</option>")), "{page}");
    let csrf = b.csrf();
    let back = format!("/admin/partners/{pid}");

    let (s, _, location) = b.post(&format!("{back}/status"), &[("csrf", &csrf), ("status", "paused")]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some(back.as_str())));
    assert_eq!(partner_json(&app, &pid).await["status"], "paused");
    let (s, _, _) = b.post(&format!("{back}/plan"), &[("csrf", &csrf), ("commission_plan_id", plan_id)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(partner_json(&app, &pid).await["commission_plan_id"], plan_id);
    let (_, page, _) = b.get(&back).await;
    assert!(page.contains("id=\"plan\">Premium</dd>") && page.contains(&format!("<option value=\"{plan_id}\" selected>")), "{page}");

    // Bad choices are shown beside their form and change nothing.
    let (s, page, _) = b.post(&format!("{back}/status"), &[("csrf", &csrf), ("status", "applied")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"status-error\">must be one of: active, paused, archived"), "{page}");
    let (s, page, _) = b.post(&format!("{back}/plan"), &[("csrf", &csrf), ("commission_plan_id", "pln_nope")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"commission_plan_id-error\">no commission plan with this id"), "{page}");
    let p = partner_json(&app, &pid).await;
    assert_eq!((p["status"].as_str(), p["commission_plan_id"].as_str()), (Some("paused"), Some(plan_id)));

    // Back to the workspace default, and active again.
    assert_eq!(b.post(&format!("{back}/plan"), &[("csrf", &csrf), ("commission_plan_id", "")]).await.0, StatusCode::SEE_OTHER);
    assert_eq!(b.post(&format!("{back}/status"), &[("csrf", &csrf), ("status", "active")]).await.0, StatusCode::SEE_OTHER);
    let p = partner_json(&app, &pid).await;
    assert_eq!((p["status"].as_str(), p["commission_plan_id"].is_null()), (Some("active"), true));

    // Four changes, each audited with the staff user as the actor.
    let (_, page, _) = b.get("/admin/audit?action=partner.updated").await;
    assert_eq!(page.matches(&format!("\">partner.updated</a></td><td>partner {pid}</td>")).count(), 4, "{page}");
    assert!(page.contains("<td>staff:") && page.contains("paused") && page.contains(plan_id), "{page}");
    app.cleanup().await;
}

async fn a_partner_session_opens_none_of_these_pages(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, plan) =
        body(app.post("/api/v1/commission-plans", &app.admin, &json!({"name": "Standard", "kind": "percent", "rate": "0.1"})).await).await;
    let plan_id = plan["id"].as_str().unwrap();
    let (pid, _) = app.partners_with_tokens(1).await.remove(0);
    let (s, link) = body(app.post(&format!("/api/v1/partners/{pid}/magic-link"), &app.admin, &json!({})).await).await;
    assert_eq!(s, 201);
    let mut b = Browser::new(&app);
    let (s, _, location) = b.post(&format!("{}{}", app.base, link["url"].as_str().unwrap()), &[]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/portal")));
    for path in ["/admin/plans".to_owned(), "/admin/tiers".to_owned(), format!("/admin/partners/{pid}")] {
        let (s, _, location) = b.get(&path).await;
        assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")), "{path}");
    }
    b.get("/login").await;
    let csrf = b.csrf();
    for (path, form) in [
        ("/admin/plans".to_owned(), with(&csrf, &[("name", "Mine"), ("kind", "percent"), ("rate", "1")])),
        (format!("/admin/plans/{plan_id}/default"), with(&csrf, &[])),
        (
            "/admin/tiers".to_owned(),
            with(&csrf, &[("measure", "won_count"), ("tiers[0].slug", "x"), ("tiers[0].name", "X"), ("tiers[0].threshold", "0")]),
        ),
        ("/admin/tiers/evaluate".to_owned(), with(&csrf, &[])),
        (format!("/admin/partners/{pid}/plan"), with(&csrf, &[("commission_plan_id", plan_id)])),
        (format!("/admin/partners/{pid}/status"), with(&csrf, &[("status", "archived")])),
    ] {
        let (s, _, location) = b.post(&path, &form).await;
        assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")), "{path}");
    }
    let p = partner_json(&app, &pid).await;
    assert_eq!((p["status"].as_str(), p["commission_plan_id"].as_str()), (Some("active"), None));
    assert_eq!((plans_json(&app).await.len(), ladder_json(&app).await.0), (1, 404));
    app.cleanup().await;
}
