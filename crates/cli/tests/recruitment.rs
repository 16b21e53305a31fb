//! Recruitment on SQLite and PostgreSQL, through HTTP as a browser uses it:
//! the public application form (validation, scoring, spam, CSRF, rate
//! limits), the console's applications queue (best score first, approve
//! with a welcome mail through the outbox, reject with a reason, roles),
//! the criteria editor, and a partner's personal referral link `/r/{code}`
//! that registers a lead for that partner and tells the visitor nothing more.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::staff_client::{Browser, staff_user};
use common::{Engine, TestApp, body};
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::staff::StaffRole;
use partnerloop_web::public::PublicForms;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_engines!(
    bad_answers_show_the_form_again_with_each_field_named_and_kept,
    applications_are_scored_and_queued_best_first,
    a_second_application_from_one_address_changes_nothing,
    each_workspace_has_its_own_form_and_queue,
    approving_activates_the_partner_and_queues_the_welcome_mail,
    rejecting_needs_a_reason_and_records_it,
    a_sales_user_reads_the_queue_but_may_not_decide,
    spam_is_answered_like_success_and_stores_nothing,
    too_many_submissions_from_one_address_answer_429,
    a_form_without_its_csrf_token_is_refused_and_stores_nothing,
    a_referral_link_registers_a_lead_for_its_partner_and_reveals_nothing,
    links_of_unknown_or_inactive_partners_are_not_found,
    a_partner_session_cannot_open_the_applications_pages,
);

/// The least time a form must take in these tests.
const MIN_FILL: Duration = Duration::from_millis(300);

async fn spawn(engine: Engine) -> TestApp {
    TestApp::spawn_with(engine, |mut s| {
        s.public_forms = Arc::new(PublicForms::with_min_fill(SignedDuration::try_from(MIN_FILL).unwrap()));
        s
    })
    .await
}

/// A browser signed in as a new staff user with this role.
async fn signed_in(app: &TestApp, email: &str, role: StaffRole) -> Browser {
    let url = staff_user(app, email, role).await;
    let mut b = Browser::new(app);
    let (s, location) = b.use_link(&url).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin")));
    b
}

/// The value of the hidden input `name` on a page.
fn hidden(page: &str, name: &str) -> String {
    let at = page.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Opens a public form page and waits as a person would; its CSRF token and stamp.
async fn open(b: &mut Browser, path: &str) -> (String, String) {
    let (s, page, _) = b.get(path).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    tokio::time::sleep(MIN_FILL + Duration::from_millis(50)).await;
    let csrf = b.cookies.get("pl_form_csrf").cloned().expect("a form CSRF cookie");
    assert_eq!(hidden(&page, "csrf"), csrf);
    (csrf, hidden(&page, "stamp"))
}

fn answers(company: &str, email: &str) -> Vec<(String, String)> {
    [
        ("company_name", company),
        ("partner_type", "consultant"),
        ("website", "northwind.example"),
        ("contact_name", "Ada Park"),
        ("contact_email", email),
        ("industry_0", "healthcare"),
        ("other_industries", "Healthcare"),
        ("typical_deal", "20000"),
        ("years_in_business", "6"),
        ("client_count", "25"),
        ("referrals_per_quarter", "3"),
        ("response_time", "same_day"),
        ("message", "We advise hospitals."),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn with(mut form: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    form.retain(|(k, _)| k != key);
    form.push((key.to_owned(), value.to_owned()));
    form
}

/// Fills `/apply` in and sends it.
async fn apply(b: &mut Browser, form: &[(String, String)]) -> (StatusCode, String) {
    apply_to(b, "default", form).await
}

/// Fills in the application form of workspace `slug` and sends it.
async fn apply_to(b: &mut Browser, slug: &str, form: &[(String, String)]) -> (StatusCode, String) {
    let (csrf, stamp) = open(b, &format!("/apply?workspace={slug}")).await;
    let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf), ("stamp", &stamp), ("workspace", slug)];
    all.extend(form.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (s, page, _) = b.post("/apply", &all).await;
    (s, page)
}

/// Sets the default workspace's criteria through the console.
async fn set_criteria(app: &TestApp) {
    let mut m = signed_in(app, "recruiter@vendor.example", StaffRole::Manager).await;
    m.get("/admin/applications/criteria").await;
    let csrf = m.csrf();
    let (s, page, location) = m
        .post(
            "/admin/applications/criteria",
            &[
                ("csrf", &csrf),
                ("target_industries", "Healthcare, Logistics"),
                ("deal_size_min", "10000"),
                ("deal_size_max", "50000"),
                ("referrals_per_quarter", "3"),
                ("weight_audience", "40"),
                ("weight_deal_size", "30"),
                ("weight_credibility", "20"),
                ("weight_responsiveness", "10"),
            ],
        )
        .await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin/applications/criteria?saved=1")), "{page}");
}

async fn partners(app: &TestApp, status: &str) -> Vec<Value> {
    let (_, list) = body(app.get(&format!("/api/v1/partners?status={status}"), &app.admin).await).await;
    list["data"].as_array().unwrap().clone()
}

/// The id of the only pending application.
async fn pending_id(b: &mut Browser) -> String {
    let (_, page, _) = b.get("/admin/applications").await;
    let at = page.find("href=\"/admin/applications/apl_").expect("an application in the queue");
    let rest = &page[at + 26..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn bad_answers_show_the_form_again_with_each_field_named_and_kept(engine: Engine) {
    let app = spawn(engine).await;
    set_criteria(&app).await;
    let mut b = Browser::new(&app);
    let form = with(with(with(answers("", "not-an-email"), "years_in_business", "many"), "industry_0", ""), "response_time", "never");
    let form = with(form, "other_industries", "");
    let (s, page) = apply(&mut b, &form).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    for label in ["Company name:", "Your email:", "Years in business:", "Industries:", "When we ask about a lead, you answer:"] {
        assert!(page.contains(label), "{label} is named: {page}");
    }
    assert!(page.contains("value=\"not-an-email\"") && page.contains("value=\"many\"") && page.contains("We advise hospitals."));
    assert!(page.contains("aria-invalid=\"true\""));
    assert!(partners(&app, "applied").await.is_empty(), "nothing is stored");
    app.cleanup().await;
}

async fn applications_are_scored_and_queued_best_first(engine: Engine) {
    let app = spawn(engine).await;
    set_criteria(&app).await;
    let mut b = Browser::new(&app);
    // A fit: healthcare (1 of 1 → 100), 20000 in band (100), 6 years 25 clients and a site (100), 3 a quarter same day (100).
    let (s, page) = apply(&mut b, &answers("Northwind Health", "ada@northwind.example")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Thank you for applying"));
    // A weaker one: retail only (0), 5000 under a 10000 band (50), 1 year 2 clients no site (12), 1 a quarter in a week (20 + 10).
    let weak = with(
        with(
            with(
                with(
                    with(with(answers("Tiny Shop", "tim@tiny.example"), "industry_0", ""), "other_industries", "Retail"),
                    "typical_deal",
                    "5000",
                ),
                "years_in_business",
                "1",
            ),
            "client_count",
            "2",
        ),
        "website",
        "",
    );
    let weak = with(with(weak, "referrals_per_quarter", "1"), "response_time", "week");
    let (s, _) = apply(&mut b, &weak).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(partners(&app, "applied").await.len(), 2);

    let mut m = signed_in(&app, "lead@vendor.example", StaffRole::Manager).await;
    let (s, page, _) = m.get("/admin/applications").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let (first, second) = (page.find("Northwind Health").unwrap(), page.find("Tiny Shop").unwrap());
    assert!(first < second, "the best score comes first");
    // Weak: (0×40 + 50×30 + 12×20 + 30×10) / 100 = 20.4 → 20.
    assert!(page.contains("<strong class=\"score\">100</strong>") && page.contains("<strong class=\"score\">20</strong>"), "{page}");
    assert!(page.contains("<td>0</td><td>50</td><td>12</td><td>30</td>"), "the breakdown: {page}");
    let weak_id = {
        let at = page[..second].rfind("href=\"/admin/applications/apl_").unwrap();
        let rest = &page[at + 26..];
        rest[..rest.find('"').unwrap()].to_owned()
    };
    let (s, detail, _) = m.get(&format!("/admin/applications/{weak_id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(detail.contains("<span class=\"score\">20</span>") && detail.contains("<td>Deal-size alignment</td><td>50</td><td>30</td>"));
    assert!(detail.contains("retail") && detail.contains("5000.00 USD"), "{detail}");
    // The dashboard counts them and links the queue.
    let (_, dash, _) = m.get("/admin").await;
    assert!(dash.contains("<a href=\"/admin/applications\"><span class=\"n\">2</span>partner applications waiting</a>"), "{dash}");
    app.cleanup().await;
}

async fn a_second_application_from_one_address_changes_nothing(engine: Engine) {
    let app = spawn(engine).await;
    let mut b = Browser::new(&app);
    assert_eq!(apply(&mut b, &answers("Northwind", "ada@northwind.example")).await.0, StatusCode::OK);
    let again = with(answers("Northwind", "ADA@northwind.example"), "client_count", "0");
    let (s, page) = apply(&mut b, &again).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Thank you for applying"), "the same answer as the first time");
    let applied = partners(&app, "applied").await;
    assert_eq!(applied.len(), 1, "no second partner: {applied:?}");
    let mut m = signed_in(&app, "lead@vendor.example", StaffRole::Admin).await;
    let apl = pending_id(&mut m).await;
    let (_, detail, _) = m.get(&format!("/admin/applications/{apl}")).await;
    // Nobody can rewrite someone's application by typing their address.
    assert!(!detail.contains("<dt>Clients today</dt><dd>0</dd>"), "the first answers stay: {detail}");
    assert!(detail.contains("<dt>Clients today</dt><dd>"), "{detail}");
    app.cleanup().await;
}

async fn each_workspace_has_its_own_form_and_queue(engine: Engine) {
    let app = spawn(engine).await;
    let acme_admin = app.admin_token("acme").await;
    let mut b = Browser::new(&app);
    let (s, _, _) = b.get("/apply?workspace=nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A stamp is for its own workspace's form only.
    let (csrf, stamp) = open(&mut b, "/apply?workspace=default").await;
    let mut form: Vec<(String, String)> = vec![("csrf".into(), csrf), ("stamp".into(), stamp), ("workspace".into(), "acme".into())];
    form.extend(answers("Cross Post", "cross@post.example"));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(b.post("/apply", &pairs).await.0, StatusCode::OK);
    let (s, _) = apply_to(&mut b, "acme", &answers("Acme Partner", "ada@northwind.example")).await;
    assert_eq!(s, StatusCode::OK);
    let (_, acme) = body(app.get("/api/v1/partners?status=applied", &acme_admin).await).await;
    let names: Vec<&str> = acme["data"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Acme Partner"], "the cross-posted stamp stored nothing");
    assert!(partners(&app, "applied").await.is_empty(), "the default workspace's queue is untouched");
    // The same address may apply to another workspace's program.
    assert_eq!(apply(&mut b, &answers("Northwind", "ada@northwind.example")).await.0, StatusCode::OK);
    assert_eq!(partners(&app, "applied").await.len(), 1);
    app.cleanup().await;
}

async fn approving_activates_the_partner_and_queues_the_welcome_mail(engine: Engine) {
    let app = spawn(engine).await;
    let mut b = Browser::new(&app);
    assert_eq!(apply(&mut b, &answers("Northwind", "ada@northwind.example")).await.0, StatusCode::OK);
    let mut m = signed_in(&app, "lead@vendor.example", StaffRole::Manager).await;
    let apl = pending_id(&mut m).await;
    let csrf = m.csrf();
    let (s, _, location) = m.post(&format!("/admin/applications/{apl}/approve"), &[("csrf", &csrf), ("note", "Welcome aboard")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let partner = partners(&app, "active").await.into_iter().find(|p| p["name"] == "Northwind").expect("the partner is active");
    assert_eq!(location.unwrap(), format!("/admin/partners/{}", partner["id"].as_str().unwrap()));
    // A second decision is refused.
    let (s, _, _) = m.post(&format!("/admin/applications/{apl}/reject"), &[("csrf", &csrf), ("reason", "changed my mind")]).await;
    assert_eq!(s, StatusCode::CONFLICT);

    let secret = partnerloop_app::Store::instance_setting_or_init(app.store.as_ref(), "secret_key", String::new()).await.unwrap();
    let cfg = partnerloop_app::notify::NotifyConfig {
        base_url: String::new(),
        inbound_domain: "localhost".into(),
        link_key: partnerloop_app::notify::link_key(&secret),
        default_slack_workspace: None,
    };
    partnerloop_app::notify::fan_out_pending(app.store.as_ref(), &cfg, Timestamp::now(), 100).await.unwrap();
    let (_, outbox) = body(app.get("/api/v1/outbox?channel=email", &app.admin).await).await;
    let welcome: Vec<&Value> = outbox["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["idempotency_key"].as_str().unwrap().starts_with("welcome:") && i["target"] == "ada@northwind.example")
        .collect();
    assert_eq!(welcome.len(), 1, "{outbox}");
    let (_, item) = body(app.get(&format!("/api/v1/outbox/{}", welcome[0]["id"].as_str().unwrap()), &app.admin).await).await;
    assert_eq!((item["payload"]["notice"]["kind"].as_str(), item["payload"]["notice"]["welcome"].as_bool()), (Some("sign_in"), Some(true)));
    let url = item["payload"]["notice"]["url"].as_str().unwrap();
    let (s, _, location) = Browser::new(&app).post(url, &[]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/portal")), "the welcome link signs the new partner in");
    app.cleanup().await;
}

async fn rejecting_needs_a_reason_and_records_it(engine: Engine) {
    let app = spawn(engine).await;
    let mut b = Browser::new(&app);
    assert_eq!(apply(&mut b, &answers("Northwind", "ada@northwind.example")).await.0, StatusCode::OK);
    let mut m = signed_in(&app, "lead@vendor.example", StaffRole::Admin).await;
    let apl = pending_id(&mut m).await;
    let csrf = m.csrf();
    let (s, page, _) = m.post(&format!("/admin/applications/{apl}/reject"), &[("csrf", &csrf), ("reason", "  ")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"reason-error\""), "{page}");
    assert_eq!(partners(&app, "applied").await.len(), 1, "still pending");
    let (s, _, _) =
        m.post(&format!("/admin/applications/{apl}/reject"), &[("csrf", &csrf), ("reason", "We sell only to hospitals in the EU")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let archived = partners(&app, "archived").await;
    assert_eq!(archived.len(), 1);
    let (_, detail, _) = m.get(&format!("/admin/applications/{apl}")).await;
    assert!(detail.contains("rejected") && detail.contains("We sell only to hospitals in the EU"), "{detail}");
    let (_, audit, _) = m.get("/admin/audit?action=partner.application_rejected").await;
    assert!(audit.contains("partner.application_rejected") && audit.contains("staff:"), "{audit}");
    let ws = partnerloop_app::Store::workspace_by_slug(app.store.as_ref(), "default").await.unwrap();
    let id = archived[0]["id"].as_str().unwrap();
    let entries = partnerloop_app::Store::audit_for(app.store.as_ref(), &ws.id, id).await.unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.action, "partner.application_rejected");
    assert_eq!(last.after.as_ref().unwrap()["application"]["decision_reason"], "We sell only to hospitals in the EU");
    assert!(last.actor.starts_with("staff:"));
    let (_, queue, _) = m.get("/admin/applications").await;
    assert!(!queue.contains("Northwind"), "no longer in the queue");
    // Applying again after a rejection changes nothing, and says the same as ever.
    let (s, page) = apply(&mut b, &answers("Northwind Again", "ada@northwind.example")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Thank you for applying"));
    assert!(partners(&app, "applied").await.is_empty());
    assert_eq!(partners(&app, "archived").await.len(), 1);
    app.cleanup().await;
}

async fn a_sales_user_reads_the_queue_but_may_not_decide(engine: Engine) {
    let app = spawn(engine).await;
    let mut b = Browser::new(&app);
    assert_eq!(apply(&mut b, &answers("Northwind", "ada@northwind.example")).await.0, StatusCode::OK);
    let mut sales = signed_in(&app, "rep@vendor.example", StaffRole::Sales).await;
    let apl = pending_id(&mut sales).await;
    let (s, detail, _) = sales.get(&format!("/admin/applications/{apl}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(detail.contains("may read this application but not decide it") && !detail.contains("/approve\""));
    let csrf = sales.csrf();
    let (s, _, _) = sales.post(&format!("/admin/applications/{apl}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = sales.post("/admin/applications/criteria", &[("csrf", &csrf), ("weight_audience", "1")]).await;
    assert!(s == StatusCode::FORBIDDEN || s == StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(partners(&app, "applied").await.len(), 1, "still pending");
    app.cleanup().await;
}

async fn spam_is_answered_like_success_and_stores_nothing(engine: Engine) {
    let app = spawn(engine).await;
    let mut b = Browser::new(&app);
    // The honeypot filled in.
    let (s, page) = apply(&mut b, &with(answers("Bot Inc", "bot@bot.example"), "fax_number", "555-0100")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Thank you for applying"));
    // Sent back at once.
    let (_, form, _) = b.get("/apply").await;
    let csrf = b.cookies.get("pl_form_csrf").cloned().unwrap();
    let mut fast: Vec<(String, String)> = vec![("csrf".into(), csrf.clone()), ("stamp".into(), hidden(&form, "stamp"))];
    fast.extend(answers("Fast Bot", "fast@bot.example"));
    let pairs: Vec<(&str, &str)> = fast.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (s, page, _) = b.post("/apply", &pairs).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Thank you for applying"));
    // A made-up stamp.
    tokio::time::sleep(MIN_FILL).await;
    let mut forged = pairs.clone();
    forged[1] = ("stamp", "1000000000.00000000000000000000000000000000");
    assert_eq!(b.post("/apply", &forged).await.0, StatusCode::OK);
    assert!(partners(&app, "applied").await.is_empty(), "nothing stored");
    app.cleanup().await;
}

async fn too_many_submissions_from_one_address_answer_429(engine: Engine) {
    let app = spawn(engine).await;
    let p = app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await;
    let code = p["referral_code"].as_str().unwrap();
    let mut b = Browser::new(&app);
    let mut apply_statuses = Vec::new();
    let mut link_statuses = Vec::new();
    for _ in 0..11 {
        apply_statuses.push(b.post("/apply", &[("company_name", "Flood")]).await.0);
        link_statuses.push(b.post(&format!("/r/{code}"), &[("company_name", "Flood")]).await.0);
    }
    assert_eq!(apply_statuses[..10], [StatusCode::FORBIDDEN; 10], "a burst of 10 is heard (and refused for want of a token)");
    assert_eq!(apply_statuses[10], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(link_statuses[10], StatusCode::TOO_MANY_REQUESTS);
    let (_, page, _) = b.post("/apply", &[]).await;
    assert!(page.contains("Too many requests"));
    app.cleanup().await;
}

async fn a_form_without_its_csrf_token_is_refused_and_stores_nothing(engine: Engine) {
    let app = spawn(engine).await;
    let p = app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await;
    let code = p["referral_code"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&app);
    let (_, stamp) = open(&mut b, "/apply").await;
    let mut form: Vec<(String, String)> = vec![("csrf".into(), "0".repeat(64)), ("stamp".into(), stamp)];
    form.extend(answers("Northwind Two", "two@northwind.example"));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (s, _, _) = b.post("/apply", &pairs).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = b.post("/apply", &pairs[1..]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(partners(&app, "applied").await.is_empty());

    let (_, stamp) = open(&mut b, &format!("/r/{code}")).await;
    let lead = [
        ("stamp", stamp.as_str()),
        ("company_name", "Globex"),
        ("company_domain", "globex.example"),
        ("contact_name", "Hank"),
        ("contact_email", "hank@globex.example"),
    ];
    let (s, _, _) = b.post(&format!("/r/{code}"), &lead).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, list) = body(app.get("/api/v1/referrals", &app.admin).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    app.cleanup().await;
}

/// Registers a lead through `/r/{code}`; the thank-you page.
async fn through_link(b: &mut Browser, code: &str, company: &str, domain: &str) -> (StatusCode, String) {
    let (csrf, stamp) = open(b, &format!("/r/{code}")).await;
    let email = format!("hank@{domain}");
    let (s, page, _) = b
        .post(
            &format!("/r/{code}"),
            &[
                ("csrf", &csrf),
                ("stamp", &stamp),
                ("company_name", company),
                ("company_domain", ""),
                ("contact_name", "Hank Scorpio"),
                ("contact_email", &email),
                ("contact_title", "CEO"),
                ("context", "Wants to replace spreadsheets"),
            ],
        )
        .await;
    (s, page)
}

async fn a_referral_link_registers_a_lead_for_its_partner_and_reveals_nothing(engine: Engine) {
    let app = spawn(engine).await;
    let first = app.partners_with_tokens(1).await.remove(0);
    let second = app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await;
    let code = second["referral_code"].as_str().unwrap();
    let mut b = Browser::new(&app);
    let (s, page, _) = b.get(&format!("/r/{code}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Through Northwind") && page.contains("name=\"fax_number\""), "{page}");

    let (s, thanks) = through_link(&mut b, code, "Initech", "initech.example").await;
    assert_eq!(s, StatusCode::OK, "{thanks}");
    assert!(thanks.contains("Thank you: received") && thanks.contains("Northwind, who will be informed"));
    let (_, list) = body(app.get(&format!("/api/v1/referrals?partner_id={}", second["id"].as_str().unwrap()), &app.admin).await).await;
    let r = &list["data"][0];
    assert_eq!((r["channel"].as_str(), r["status"].as_str()), (Some("link"), Some("approved")), "{list}");
    assert_eq!(r["contact"]["email"], "hank@initech.example");

    // Another partner holds Globex: the rules reject it, and the visitor reads the very same page.
    let reg =
        json!({"company": {"name": "Globex", "domain": "globex.example"}, "contact": {"name": "Hank", "email": "boss@globex.example"}});
    assert_eq!(app.post("/api/v1/referrals", &first.1, &reg).await.status(), 201);
    let (s, conflict) = through_link(&mut b, code, "Globex", "globex.example").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(conflict, thanks, "the page says nothing about the decision");
    for leak in ["Partner 0", "reject", "registered to", "conflict", first.0.as_str()] {
        assert!(!conflict.to_lowercase().contains(&leak.to_lowercase()), "{leak} leaked: {conflict}");
    }
    let (_, list) = body(app.get(&format!("/api/v1/referrals?partner_id={}", second["id"].as_str().unwrap()), &app.admin).await).await;
    let globex = list["data"].as_array().unwrap().iter().find(|r| r["company"]["name"] == "Globex").expect("registered");
    assert_eq!((globex["channel"].as_str(), globex["status"].as_str()), (Some("link"), Some("rejected")));
    app.cleanup().await;
}

async fn links_of_unknown_or_inactive_partners_are_not_found(engine: Engine) {
    let app = spawn(engine).await;
    let mut b = Browser::new(&app);
    for path in ["/r/ZZZZZZZZ", "/r/not-a-code"] {
        let (s, page, _) = b.get(path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert!(page.contains("This link is not valid"));
    }
    let p = app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await;
    let code = p["referral_code"].as_str().unwrap();
    let (csrf, stamp) = open(&mut b, &format!("/r/{code}")).await;
    let r = app.patch(&format!("/api/v1/partners/{}", p["id"].as_str().unwrap()), &app.admin, &json!({"status": "paused"})).await;
    assert_eq!(r.status(), 200);
    let (s, page, _) = b.get(&format!("/r/{code}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(!page.contains("Northwind"), "a paused partner's link names nobody");
    let lead = [
        ("csrf", csrf.as_str()),
        ("stamp", &stamp),
        ("company_name", "Globex"),
        ("contact_name", "Hank"),
        ("contact_email", "hank@globex.example"),
    ];
    let (s, _, _) = b.post(&format!("/r/{code}"), &lead).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = body(app.get("/api/v1/referrals", &app.admin).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    // An applicant's code does not work either.
    assert_eq!(apply(&mut b, &answers("Applicant", "new@applicant.example")).await.0, StatusCode::OK);
    let applicant = partners(&app, "applied").await.remove(0);
    let (s, _, _) = b.get(&format!("/r/{}", applicant["referral_code"].as_str().unwrap())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

async fn a_partner_session_cannot_open_the_applications_pages(engine: Engine) {
    let app = spawn(engine).await;
    let mut visitor = Browser::new(&app);
    assert_eq!(apply(&mut visitor, &answers("Applicant", "new@applicant.example")).await.0, StatusCode::OK);
    let p = app.create_partner(&app.admin, "Northwind", "ada@northwind.example").await;
    let (s, link) =
        body(app.post(&format!("/api/v1/partners/{}/magic-link", p["id"].as_str().unwrap()), &app.admin, &json!({})).await).await;
    assert_eq!(s, 201);
    let mut b = Browser::new(&app);
    let (s, _, _) = b.post(link["url"].as_str().unwrap(), &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(b.cookies.contains_key("pl_session"));
    let mut admin = signed_in(&app, "lead@vendor.example", StaffRole::Admin).await;
    let apl = pending_id(&mut admin).await;
    for path in ["/admin/applications", "/admin/applications/criteria", &format!("/admin/applications/{apl}")] {
        let (s, page, location) = b.get(path).await;
        assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")), "{path}");
        assert!(!page.contains("Applicant"), "{path}");
    }
    let (s, _, location) = b.post(&format!("/admin/applications/{apl}/approve"), &[("csrf", "x")]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")));
    assert_eq!(partners(&app, "applied").await.len(), 1, "nothing changed");
    app.cleanup().await;
}
