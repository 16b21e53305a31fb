//! The admin console's second part, on SQLite and PostgreSQL, through HTTP
//! as a browser uses it: the dashboard's KPIs and charts for a small known
//! program; the referral page's extend and stage forms (CSRF, roles, errors
//! beside their fields); payout batches for finance (make, download, mark
//! paid) and not for sales; the rules editor; the audit log; settings (CRM,
//! notifications, webhook endpoints, dead letters) that never show a
//! secret back; a partner's session opens none of these pages.

mod common;

use common::staff_client::{Browser, staff_user};
use common::{Engine, TestApp, body};
use partnerloop_app::staff::StaffRole;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_engines!(
    the_dashboard_shows_the_programs_kpis_and_draws_each_chart,
    extend_and_stage_forms_change_the_referral_and_need_their_token,
    bad_extend_and_stage_input_is_shown_beside_its_field,
    a_sales_user_sees_no_forms_and_may_not_post_them,
    a_finance_user_makes_downloads_and_pays_a_batch,
    a_sales_user_may_not_handle_payouts,
    a_partner_session_opens_none_of_the_new_pages,
    the_rules_editor_saves_and_rejects_bad_input_per_field,
    the_audit_page_lists_the_actions_just_taken_newest_first,
    settings_save_by_field_and_never_show_a_secret_back,
);

/// A browser signed in as a new staff user with this role.
async fn signed_in(app: &TestApp, email: &str, role: StaffRole) -> Browser {
    let url = staff_user(app, email, role).await;
    let mut b = Browser::new(app);
    let (s, location) = b.use_link(&url).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin")));
    b
}

/// Partner `i` registers `company`; auto-approval is on, so it is approved.
async fn register(app: &TestApp, token: &str, company: &str) -> String {
    let domain = format!("{}.example", company.to_lowercase());
    let b = json!({"company": {"name": company, "domain": domain}, "contact": {"name": "Pat Buyer", "email": format!("pat@{domain}")}});
    let (s, r) = body(app.post("/api/v1/referrals", token, &b).await).await;
    assert_eq!((s, r["status"].as_str()), (201, Some("approved")), "{r}");
    r["id"].as_str().unwrap().to_owned()
}

async fn referral(app: &TestApp, id: &str) -> Value {
    body(app.get(&format!("/api/v1/referrals/{id}"), &app.admin).await).await.1
}

/// The text of the KPI card with this id.
fn card<'a>(page: &'a str, id: &str) -> &'a str {
    let from = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no card {id}"));
    let rest = &page[from..];
    &rest[..rest.find("</div>\n").unwrap()]
}

async fn the_dashboard_shows_the_programs_kpis_and_draws_each_chart(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let partners = app.partners_with_tokens(3).await;
    let won = register(&app, &partners[0].1, "Acme").await;
    let open = register(&app, &partners[0].1, "Hooli").await;
    let lost = register(&app, &partners[1].1, "Initech").await;
    let mut b = signed_in(&app, "lead@console.example", StaffRole::Manager).await;
    b.get(&format!("/admin/referrals/{won}")).await;
    let csrf = b.csrf();
    let (s, _, _) = b
        .post(
            &format!("/admin/referrals/{won}/stage"),
            &[("csrf", &csrf), ("stage", "closed_won"), ("amount", "1000.00"), ("currency", "USD")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, _) = b.post(&format!("/admin/referrals/{lost}/stage"), &[("csrf", &csrf), ("stage", "closed_lost")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, _) = b.post(&format!("/admin/referrals/{open}/stage"), &[("csrf", &csrf), ("stage", "proposal")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);

    // A finance user reads the dashboard too.
    let mut f = signed_in(&app, "books@console.example", StaffRole::Finance).await;
    let (s, page, _) = f.get("/admin").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    // Two of the three partners who joined have registered; one won of one won and one lost.
    assert!(card(&page, "kpi-activation").contains("66.7 %"), "{}", card(&page, "kpi-activation"));
    assert!(card(&page, "kpi-activation").contains("2 of 3 partners"));
    assert!(card(&page, "kpi-conversion").contains("50 %") && card(&page, "kpi-conversion").contains("1 won, 1 lost"));
    assert!(card(&page, "kpi-revenue").contains("1000.00 USD"), "{}", card(&page, "kpi-revenue"));
    assert!(card(&page, "kpi-deal").contains("1000.00 USD") && card(&page, "kpi-deal").contains("direct: —"));
    assert!(card(&page, "kpi-first").contains("0 d"), "{}", card(&page, "kpi-first"));
    // A chart each, with a title, a description and a table.
    assert_eq!(page.matches("<svg ").count(), 4, "{page}");
    for title in ["Partner-sourced revenue by month", "Open pipeline by stage", "Conversion funnel", "Top partners"] {
        assert!(page.contains(&format!("\">{title}</title>")) && page.contains(&format!("{title} as a table")), "{title}");
    }
    assert_eq!(page.matches("<desc id=").count(), 4);
    // This month's column and the table row carry the revenue; the funnel: 3 registered, 3 approved, 1 won.
    let month = jiff::Timestamp::now().strftime("%Y-%m").to_string();
    assert!(page.contains(&format!("<tr><td>{month}</td><td>1000.00 USD</td></tr>")), "{page}");
    assert_eq!(page.matches("<tr><td>20").count(), 12, "twelve months");
    assert_eq!(page.matches("</td><td>0.00 USD</td></tr>").count(), 11, "the other months had no win");
    assert!(page.contains("<tr><td>registered</td><td>3</td></tr>") && page.contains("<tr><td>approved</td><td>3</td></tr>"));
    assert!(page.contains("<tr><td>won</td><td>1</td></tr>"));
    assert!(page.contains("<tr><td>proposal</td><td>1 · 0.00 USD</td></tr>"), "{page}");
    assert!(page.contains("<tr><td>Partner 0</td><td>1000.00 USD · 1</td></tr>"), "{page}");
    assert!(!page.contains("<script"), "no JavaScript");
    app.cleanup().await;
}

async fn extend_and_stage_forms_change_the_referral_and_need_their_token(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let partners = app.partners_with_tokens(1).await;
    let id = register(&app, &partners[0].1, "Acme").await;
    let before = referral(&app, &id).await;
    let mut b = signed_in(&app, "lead@console.example", StaffRole::Manager).await;
    let (s, page, _) = b.get(&format!("/admin/referrals/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Extend protection") && page.contains("Move stage"));

    // Without the token nothing changes.
    let (s, _, _) = b.post(&format!("/admin/referrals/{id}/extend"), &[("days", "10"), ("reason", "holiday")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = b.post(&format!("/admin/referrals/{id}/stage"), &[("csrf", "0".repeat(64).as_str()), ("stage", "meeting")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(referral(&app, &id).await, before);

    let csrf = b.csrf();
    let (s, _, location) =
        b.post(&format!("/admin/referrals/{id}/extend"), &[("csrf", &csrf), ("days", "10"), ("reason", "holiday")]).await;
    assert_eq!((s, location), (StatusCode::SEE_OTHER, Some(format!("/admin/referrals/{id}"))));
    let after = referral(&app, &id).await;
    let expiry = |r: &Value| r["protection"]["expires_at"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert_eq!(expiry(&after).duration_since(expiry(&before)), jiff::SignedDuration::from_hours(240));

    let (s, _, _) = b.post(&format!("/admin/referrals/{id}/stage"), &[("csrf", &csrf), ("stage", "meeting")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(referral(&app, &id).await["stage"], "meeting");
    let (s, _, _) = b
        .post(
            &format!("/admin/referrals/{id}/stage"),
            &[("csrf", &csrf), ("stage", "closed_won"), ("amount", "2500.50"), ("currency", "EUR")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let won = referral(&app, &id).await;
    assert_eq!(
        (won["status"].as_str(), won["amount"]["amount"].as_str(), won["amount"]["currency"].as_str()),
        (Some("won"), Some("2500.50"), Some("EUR")),
        "{won}"
    );
    // The page shows the timeline of what was done, by whom.
    let (_, page, _) = b.get(&format!("/admin/referrals/{id}")).await;
    assert!(page.contains("protection extended by 10 days") && page.contains("holiday"), "{page}");
    assert!(page.contains("2500.50 EUR"));
    app.cleanup().await;
}

async fn bad_extend_and_stage_input_is_shown_beside_its_field(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let partners = app.partners_with_tokens(1).await;
    let id = register(&app, &partners[0].1, "Acme").await;
    let before = referral(&app, &id).await;
    let mut b = signed_in(&app, "lead@console.example", StaffRole::Admin).await;
    b.get(&format!("/admin/referrals/{id}")).await;
    let csrf = b.csrf();
    let (s, page, _) = b.post(&format!("/admin/referrals/{id}/extend"), &[("csrf", &csrf), ("days", "ten"), ("reason", "")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"days-error\">must be a whole number of days from 1 to 365"), "{page}");
    assert!(page.contains("id=\"extend-reason-error\">is required"), "{page}");
    assert!(page.contains("value=\"ten\""), "what was typed stays");
    // The use case's own limit lands beside the same field.
    let (s, page, _) = b.post(&format!("/admin/referrals/{id}/extend"), &[("csrf", &csrf), ("days", "400"), ("reason", "why not")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"days-error\">must be from 1 to 365"), "{page}");
    let (s, page, _) = b.post(&format!("/admin/referrals/{id}/stage"), &[("csrf", &csrf), ("stage", "closed_won"), ("amount", "")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"amount-error\">is required for closed_won"), "{page}");
    let (s, page, _) = b
        .post(
            &format!("/admin/referrals/{id}/stage"),
            &[("csrf", &csrf), ("stage", "closed_won"), ("amount", "12.345"), ("currency", "USD")],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"amount-error\">USD allows at most 2 decimal places"), "{page}");
    let (s, page, _) = b.post(&format!("/admin/referrals/{id}/stage"), &[("csrf", &csrf), ("stage", "won-ish")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"stage-error\">"), "{page}");
    assert_eq!(referral(&app, &id).await, before, "nothing changed");
    // A lost referral's protection is gone: extending it is a conflict shown on the page.
    let (s, _, _) = b.post(&format!("/admin/referrals/{id}/stage"), &[("csrf", &csrf), ("stage", "closed_lost")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, page, _) = b.post(&format!("/admin/referrals/{id}/extend"), &[("csrf", &csrf), ("days", "5"), ("reason", "late")]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(page.contains("only an active protection can be extended"), "{page}");
    app.cleanup().await;
}

async fn a_sales_user_sees_no_forms_and_may_not_post_them(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let partners = app.partners_with_tokens(1).await;
    let id = register(&app, &partners[0].1, "Acme").await;
    let before = referral(&app, &id).await;
    let mut b = signed_in(&app, "rep@console.example", StaffRole::Sales).await;
    let (s, page, _) = b.get(&format!("/admin/referrals/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!page.contains("Extend protection") && !page.contains("Move stage"));
    let csrf = b.csrf();
    let (s, _, _) = b.post(&format!("/admin/referrals/{id}/extend"), &[("csrf", &csrf), ("days", "10"), ("reason", "please")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = b.post(&format!("/admin/referrals/{id}/stage"), &[("csrf", &csrf), ("stage", "meeting")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(referral(&app, &id).await, before);
    app.cleanup().await;
}

/// A won referral with a payable 10 % commission for a partner paid by PayPal.
async fn payable_commission(app: &TestApp) -> (String, String) {
    let plan = json!({"name": "Now", "kind": "percent", "rate": "0.10", "hold_days": 0, "default": true});
    let (s, p) = body(app.post("/api/v1/commission-plans", &app.admin, &plan).await).await;
    assert_eq!(s, 201, "{p}");
    let partners = app.partners_with_tokens(1).await;
    let (pid, token) = &partners[0];
    let details = json!({"method": "paypal", "email": "pay@partner.example"});
    let r = app
        .request(reqwest::Method::PUT, &format!("/api/v1/partners/{pid}/payout-details"), Some(token))
        .json(&details)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = register(app, token, "Acme").await;
    let b = json!({"stage": "closed_won", "amount": {"amount": "1000.00", "currency": "USD"}});
    let (s, r) = body(app.post(&format!("/api/v1/referrals/{id}/stage"), &app.admin, &b).await).await;
    assert_eq!(s, 200, "{r}");
    partners[0].clone()
}

async fn a_finance_user_makes_downloads_and_pays_a_batch(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    payable_commission(&app).await;
    let mut b = signed_in(&app, "books@console.example", StaffRole::Finance).await;
    let (s, page, _) = b.get("/admin/payouts").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("No batches yet"));
    let (s, _, _) = b.post("/admin/payouts", &[("currency", "USD")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the form needs its token");
    let csrf = b.csrf();
    let (s, page, _) = b.post("/admin/payouts", &[("csrf", &csrf), ("currency", "US")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"currency-error\""), "{page}");
    let (s, _, location) = b.post("/admin/payouts", &[("csrf", &csrf), ("currency", "usd")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let location = location.unwrap();
    let (s, page, _) = b.get(&location).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("100.00 USD") && page.contains("Partner 0") && page.contains(">draft<"), "{page}");
    // Nothing is left to pay: a second batch says so and makes nothing.
    let (s, page, _) = b.post("/admin/payouts", &[("csrf", &csrf), ("currency", "USD")]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("nothing was made") && page.matches("<tr><td><a href=\"/admin/payouts/").count() == 1, "{page}");

    let r = b.client.get(b.url(&format!("{location}/export/csv"))).header("cookie", b.cookie_header()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename="));
    let csv = r.text().await.unwrap();
    assert!(csv.contains("Partner 0") && csv.contains("100.00"), "{csv}");
    let r = b.client.get(b.url(&format!("{location}/export/paypal_csv"))).header("cookie", b.cookie_header()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("pay@partner.example"));
    let (s, _, _) = b.get(&format!("{location}/export/bitcoin")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let (s, _, _) = b.post(&format!("{location}/paid"), &[("reference", "TX-1")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, to) = b.post(&format!("{location}/paid"), &[("csrf", &csrf), ("reference", "TX-1")]).await;
    assert_eq!((s, to.as_deref()), (StatusCode::SEE_OTHER, Some(location.as_str())));
    let (_, page, _) = b.get(&location).await;
    assert!(page.contains(">paid<") && page.contains("reference TX-1") && !page.contains("Mark paid</button>"), "{page}");
    let id = location.rsplit('/').next().unwrap();
    let (s, p) = body(app.get(&format!("/api/v1/payouts/{id}"), &app.admin).await).await;
    assert_eq!((s, p["status"].as_str(), p["reference"].as_str()), (200, Some("paid"), Some("TX-1")), "{p}");
    // Paying twice is refused.
    let (s, _, _) = b.post(&format!("{location}/paid"), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    app.cleanup().await;
}

async fn a_sales_user_may_not_handle_payouts(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    payable_commission(&app).await;
    let (s, batch) = body(app.post("/api/v1/payouts", &app.admin, &json!({"currency": "USD"})).await).await;
    assert_eq!(s, 201, "{batch}");
    let id = batch["id"].as_str().unwrap();
    let mut b = signed_in(&app, "rep@console.example", StaffRole::Sales).await;
    for path in ["/admin/payouts".to_owned(), format!("/admin/payouts/{id}"), format!("/admin/payouts/{id}/export/csv")] {
        let (s, page, _) = b.get(&path).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        assert!(!page.contains("Partner 0") && !page.contains("100.00"), "{path}");
    }
    let csrf = b.csrf();
    let (s, _, _) = b.post("/admin/payouts", &[("csrf", &csrf), ("currency", "USD")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = b.post(&format!("/admin/payouts/{id}/paid"), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, p) = body(app.get(&format!("/api/v1/payouts/{id}"), &app.admin).await).await;
    assert_eq!(p["status"], "draft");
    app.cleanup().await;
}

async fn a_partner_session_opens_none_of_the_new_pages(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (pid, token) = payable_commission(&app).await;
    let (_, batch) = body(app.post("/api/v1/payouts", &app.admin, &json!({"currency": "USD"})).await).await;
    let id = batch["id"].as_str().unwrap();
    let rid = register(&app, &token, "Globex").await;
    let (s, link) = body(app.post(&format!("/api/v1/partners/{pid}/magic-link"), &app.admin, &json!({})).await).await;
    assert_eq!(s, 201);
    let mut b = Browser::new(&app);
    let (s, _, location) = b.post(&format!("{}{}", app.base, link["url"].as_str().unwrap()), &[]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/portal")));
    for path in
        ["/admin".to_owned(), "/admin/payouts".to_owned(), format!("/admin/payouts/{id}"), format!("/admin/payouts/{id}/export/csv")]
    {
        let (s, _, location) = b.get(&path).await;
        assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")), "{path}");
    }
    b.get("/login").await;
    let csrf = b.csrf();
    for (path, form) in [
        (format!("/admin/referrals/{rid}/extend"), vec![("csrf", csrf.as_str()), ("days", "10"), ("reason", "x")]),
        (format!("/admin/referrals/{rid}/stage"), vec![("csrf", csrf.as_str()), ("stage", "meeting")]),
        ("/admin/payouts".to_owned(), vec![("csrf", csrf.as_str()), ("currency", "USD")]),
        (format!("/admin/payouts/{id}/paid"), vec![("csrf", csrf.as_str())]),
        ("/admin/rules".to_owned(), vec![("csrf", csrf.as_str()), ("protection_days", "5")]),
        ("/admin/settings/webhooks".to_owned(), vec![("csrf", csrf.as_str()), ("url", "https://evil.example/hook")]),
    ] {
        let (s, _, location) = b.post(&path, &form).await;
        assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")), "{path}");
    }
    assert_eq!(referral(&app, &rid).await["stage"], "new", "the stage form changed nothing");
    app.cleanup().await;
}

async fn rules_json(app: &TestApp) -> Value {
    body(app.get("/api/v1/rules", &app.admin).await).await.1
}

async fn the_rules_editor_saves_and_rejects_bad_input_per_field(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let before = rules_json(&app).await;
    let mut b = signed_in(&app, "lead@console.example", StaffRole::Admin).await;
    let (s, page, _) = b.get("/admin/rules").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("value=\"60\"") && page.contains("Save rules"), "{page}");
    let csrf = b.csrf();
    let actions = [
        ("action_active_referral_other_partner", "reject"),
        ("action_existing_customer", "review"),
        ("action_off_limits_account", "reject"),
        ("action_open_direct_opportunity", "approve"),
    ];
    let form = |days: &'static str, threshold: &'static str, dup: &'static str| {
        let mut f = vec![("protection_days", days), ("fuzzy_threshold", threshold), ("action_possible_duplicate", dup)];
        f.extend(actions);
        f
    };
    let mut bad = form("0", "0.3", "shrug");
    bad.push(("csrf", &csrf));
    let (s, page, _) = b.post("/admin/rules", &bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"protection_days-error\">must be from 1 to 730"), "{page}");
    assert!(page.contains("id=\"fuzzy_threshold-error\">must be from 0.5 to 1.0"), "{page}");
    assert!(page.contains("id=\"action_possible_duplicate-error\">"), "{page}");
    assert!(!page.contains("id=\"action_existing_customer-error\""), "only the bad field is marked");
    assert!(page.contains("value=\"0.3\""), "what was typed stays");
    let (s, page, _) = b.post("/admin/rules", &[&form("many", "x", "review")[..], &[("csrf", csrf.as_str())]].concat()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"protection_days-error\">must be a whole number") && page.contains("id=\"fuzzy_threshold-error\">"));
    assert_eq!(rules_json(&app).await, before, "nothing was saved");
    // Without the token: refused.
    let (s, _, _) = b.post("/admin/rules", &form("30", "0.8", "review")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(rules_json(&app).await, before);

    let mut good = form("30", "0.8", "reject");
    good.push(("csrf", &csrf));
    let (s, _, location) = b.post("/admin/rules", &good).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin/rules?saved=1")));
    let r = rules_json(&app).await;
    assert_eq!(
        (r["protection_days"].as_u64(), r["auto_approve"].as_bool(), r["fuzzy_threshold"].as_f64()),
        (Some(30), Some(false), Some(0.8)),
        "{r}"
    );
    assert_eq!(
        (r["actions"]["possible_duplicate"].as_str(), r["actions"]["open_direct_opportunity"].as_str()),
        (Some("reject"), Some("approve"))
    );
    let (_, page, _) = b.get("/admin/rules?saved=1").await;
    assert!(page.contains("The rules are saved") && page.contains("value=\"30\""));

    // A sales user reads them but may not save.
    let mut rep = signed_in(&app, "rep@console.example", StaffRole::Sales).await;
    let (s, page, _) = rep.get("/admin/rules").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<fieldset disabled") && !page.contains("Save rules"));
    let csrf = rep.csrf();
    let (s, _, _) = rep.post("/admin/rules", &[&form("90", "0.9", "review")[..], &[("csrf", csrf.as_str())]].concat()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(rules_json(&app).await["protection_days"], 30);
    app.cleanup().await;
}

async fn the_audit_page_lists_the_actions_just_taken_newest_first(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let partners = app.partners_with_tokens(1).await;
    let id = register(&app, &partners[0].1, "Acme").await;
    let mut b = signed_in(&app, "lead@console.example", StaffRole::Manager).await;
    b.get(&format!("/admin/referrals/{id}")).await;
    let csrf = b.csrf();
    b.post(&format!("/admin/referrals/{id}/extend"), &[("csrf", &csrf), ("days", "7"), ("reason", "trade fair")]).await;
    b.post(&format!("/admin/referrals/{id}/stage"), &[("csrf", &csrf), ("stage", "meeting")]).await;
    let (s, page, _) = b.get("/admin/audit").await;
    assert_eq!(s, StatusCode::OK);
    let stage = page.find(">referral.stage_changed</a>").expect("the stage change");
    let extended = page.find(">referral.extended</a>").expect("the extension");
    let signed = page.find(">staff.signed_in</a>").expect("the sign-in");
    assert!(stage < extended && extended < signed, "newest first");
    assert!(page.contains("trade fair"));
    let staff_id = page[..stage].rsplit("staff:stf_").next().map(|rest| rest.split('<').next().unwrap().to_owned()).unwrap();
    assert!(!staff_id.is_empty(), "the actor is the staff user");

    let (s, page, _) = b.get("/admin/audit?action=referral.extended").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page.matches("<tr><td>").count(), 1, "{page}");
    assert!(page.contains(&format!("referral {id}")));
    let (s, _, _) = b.get("/admin/audit?action=%27%20OR%201%3D1").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Paging: 60 partners make 60 more rows; the first page holds 50 and links to the rest.
    for i in 0..60 {
        app.create_partner(&app.admin, &format!("Bulk {i}"), &format!("b{i}@bulk{i}.example")).await;
    }
    let (_, page, _) = b.get("/admin/audit?action=partner.created").await;
    assert_eq!(page.matches("<tr><td>").count(), 50);
    let next = page.split("<a href=\"").find(|p| p.starts_with("/admin/audit?action=partner.created&#38;after=")).expect("a next page");
    let next = next.split('"').next().unwrap().replace("&#38;", "&");
    let (_, rest, _) = b.get(&next).await;
    assert_eq!(rest.matches("<tr><td>").count(), 11, "60 bulk partners and the first one");
    assert!(!rest.contains("Older entries"));

    let mut rep = signed_in(&app, "rep@console.example", StaffRole::Sales).await;
    let (s, _, _) = rep.get("/admin/audit").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the log holds before and after states: managers and admins only");
    app.cleanup().await;
}

/// Runs SQL on the test's database (a dead letter the dispatcher gave up on).
async fn exec(app: &TestApp, sql: String) {
    if app.database_url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&app.database_url).await.expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.expect("seed");
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&app.database_url).await.expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.expect("seed");
        pool.close().await;
    }
}

async fn settings_save_by_field_and_never_show_a_secret_back(engine: Engine) {
    let app =
        TestApp::spawn_with(engine, |s| s.with_mail_setup("Sent over SMTP through smtp.example.com:587 as partners@vendor.example.")).await;
    let mut b = signed_in(&app, "lead@console.example", StaffRole::Admin).await;
    let (s, page, _) = b.get("/admin/settings").await;
    assert_eq!(s, StatusCode::OK);
    // How mail leaves the server, as its operator set it up.
    let mail = &page[page.find("id=\"mail\"").expect("a mail card")..];
    assert!(mail.contains("Mail delivery (SMTP)") && mail.contains("through smtp.example.com:587 as partners@vendor.example."), "{mail}");
    assert!(page.contains("Not connected.") && page.contains("No endpoints.") && page.contains("Nothing failed for good."), "{page}");
    let csrf = b.csrf();

    // Notifications: a bad email and bad days beside their fields, nothing saved; then saved, the Slack URL only as "set".
    let form = |managers: &'static str, days: &'static str| vec![("managers", managers), ("stalled_days", days)];
    let (s, page, _) = b
        .post("/admin/settings/notifications", &[&form("ops@vendor.example\nnot-an-email", "0")[..], &[("csrf", csrf.as_str())]].concat())
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"managers-error\">") && page.contains("id=\"stalled-error\">must be from 1 to 365"), "{page}");
    assert!(page.contains("not-an-email</textarea>"), "what was typed stays");
    let slack = "https://hooks.slack.example/services/T0/B0/very-secret";
    let (s, _, _) = b
        .post(
            "/admin/settings/notifications",
            &[&form("ops@vendor.example\nsales@vendor.example", "10")[..], &[("csrf", csrf.as_str()), ("slack_webhook_url", slack)]]
                .concat(),
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, n) = body(app.get("/api/v1/settings/notifications", &app.admin).await).await;
    assert_eq!(
        (s, &n["manager_emails"], &n["slack"], &n["stalled_days"]),
        (200, &json!(["ops@vendor.example", "sales@vendor.example"]), &json!(true), &json!(10)),
        "{n}"
    );
    let (_, page, _) = b.get("/admin/settings").await;
    assert!(page.contains("(set; empty: keep it)") && !page.contains("very-secret"), "the Slack URL is never shown");

    // Webhook endpoints: a bad URL and event beside their fields; a good one shows its secret once.
    let (s, page, _) = b.post("/admin/settings/webhooks", &[("csrf", &csrf), ("url", "ftp://x"), ("events", "referral.nope")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"endpoint-url-error\">") && page.contains("id=\"endpoint-events-error\">unknown event type"), "{page}");
    let (s, page, _) = b.post("/admin/settings/webhooks", &[("csrf", &csrf), ("url", "https://hooks.vendor.example/pl")]).await;
    assert_eq!(s, StatusCode::OK);
    let secret = page.split("shown this once: ").nth(1).map(|r| r.split('<').next().unwrap().to_owned()).expect("the secret, once");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (_, page, _) = b.get("/admin/settings").await;
    assert!(page.contains("https://hooks.vendor.example/pl") && !page.contains(&secret) && !page.contains("whsec_"));
    let (_, list) = body(app.get("/api/v1/webhooks", &app.admin).await).await;
    let endpoint = list["data"][0]["id"].as_str().expect("the endpoint").to_owned();
    let (s, _, _) = b.post(&format!("/admin/settings/webhooks/{endpoint}/delete"), &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no token, no delete");
    let (s, _, _) = b.post(&format!("/admin/settings/webhooks/{endpoint}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, page, _) = b.get("/admin/settings").await;
    assert!(page.contains("No endpoints."));

    // The CRM: a missing token beside its field; connected, the token never shown, the last error shown.
    let (s, page, _) = b.post("/admin/settings/crm", &[("csrf", &csrf), ("kind", "hubspot"), ("account", "12345")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"crm-token-error\">a HubSpot private-app token is required"), "{page}");
    let (s, page, _) =
        b.post("/admin/settings/crm", &[("csrf", &csrf), ("kind", "hubspot"), ("account", "twelve"), ("token", "pat-x")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"crm-account-error\">"), "{page}");
    let (s, _, _) =
        b.post("/admin/settings/crm", &[("csrf", &csrf), ("kind", "hubspot"), ("account", "12345"), ("token", "pat-na1-top-secret")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let ws = partnerloop_app::Store::workspace_by_slug(app.store.as_ref(), "default").await.unwrap().id;
    exec(&app, format!("UPDATE crm_connections SET last_error = 'HubSpot answered 401' WHERE workspace_id = '{ws}'")).await;
    let (_, page, _) = b.get("/admin/settings").await;
    assert!(page.contains("<dd>hubspot</dd>") && page.contains("portal 12345") && page.contains("HubSpot answered 401"), "{page}");
    assert!(!page.contains("pat-na1-top-secret"));

    // A dead letter is retried.
    exec(
        &app,
        format!(
            "INSERT INTO outbox (id, workspace_id, channel, idempotency_key, event, target, payload, status, attempts, next_attempt_at, last_error, created_at)
             VALUES ('obx_dead1', '{ws}', 'webhook', 'dead-1', 'referral.approved', 'whe_gone', '{{}}', 'dead', 8,
                     '2026-01-01T00:00:00.000000Z', 'connection refused', '2026-01-01T00:00:00.000000Z')"
        ),
    )
    .await;
    let (_, page, _) = b.get("/admin/settings").await;
    assert!(page.contains("obx_dead1") && page.contains("connection refused"));
    let (s, page, _) = b.post("/admin/settings/outbox/obx_dead1/retry", &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("will be tried again now") && page.contains("Nothing failed for good."), "{page}");
    let (s, _, _) = b.post("/admin/settings/outbox/obx_dead1/retry", &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::CONFLICT, "only a dead letter is retried");

    // Other roles: 403.
    let mut books = signed_in(&app, "books@console.example", StaffRole::Finance).await;
    let (s, page, _) = books.get("/admin/settings").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(!page.contains("ops@vendor.example"));
    let csrf = books.csrf();
    let (s, _, _) = books.post("/admin/settings/webhooks", &[("csrf", &csrf), ("url", "https://evil.example/hook")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.cleanup().await;
}
