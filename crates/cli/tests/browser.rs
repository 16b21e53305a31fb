//! The console in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`). A staff user opens the
//! sign-in link from `users create`, finds the referral in the review
//! queue and approves it; an applicant fills in `/apply` and the application
//! lands in the console's queue with its score; the pages also fit a
//! phone's width. Screenshots go to `target/screenshots/`.
//!
//! `PARTNERLOOP_TEST_CHROMEDRIVER` names the chromedriver binary (`.ci/run`
//! sets it); without it the test says `SKIPPED` and passes, except when
//! `CI` is set, where it fails.

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Engine, TestApp};
use partnerloop_app::staff::{self, StaffRole};
use partnerloop_app::{Ctx, workspaces};
use serde_json::{Value, json};
use thirtyfour::prelude::*;

const DRIVER_ENV: &str = "PARTNERLOOP_TEST_CHROMEDRIVER";

/// chromedriver on a free port; killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn driver_path(test: &str) -> Option<String> {
    match std::env::var(DRIVER_ENV) {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(std::env::var_os("CI").is_none(), "{DRIVER_ENV} must name chromedriver when CI is set");
            // The real stderr, not the captured output: a skip must be seen.
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {DRIVER_ENV} is not set (install chromium and chromium-driver)");
            None
        }
    }
}

async fn start_driver(path: &str) -> (Driver, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {path}: {e}"));
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/status")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "chromedriver did not answer on {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (driver, url)
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn browser(driver_url: &str, width: u32, height: u32) -> WebDriver {
    let mut caps = DesiredCapabilities::chrome();
    if let Ok(bin) = std::env::var("PARTNERLOOP_TEST_CHROMIUM") {
        caps.set_binary(&bin).unwrap();
    }
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", &format!("--window-size={width},{height}")] {
        caps.add_arg(arg).unwrap();
    }
    WebDriver::new(driver_url, caps).await.expect("a Chromium session")
}

/// The page's horizontal overflow: 0 when nothing is wider than the window.
async fn overflow(d: &WebDriver) -> i64 {
    let v = d.execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", vec![]).await.unwrap();
    v.json().as_i64().unwrap_or(-1)
}

/// The path the browser lands on once a click's navigation has finished:
/// WebDriver's click may return before a form's redirect is followed, so
/// this waits (up to 10 s) for the path to change from `from`.
async fn landed(d: &WebDriver, from: &str) -> Result<String, WebDriverError> {
    for _ in 0..100 {
        let path = d.current_url().await?.path().to_owned();
        if path != from {
            return Ok(path);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(d.current_url().await?.path().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_signs_in_and_approves_a_referral_from_the_review_queue_in_chromium() {
    let Some(path) = driver_path("a_manager_signs_in_and_approves_a_referral_from_the_review_queue_in_chromium") else {
        return;
    };
    let app = TestApp::spawn(Engine::Sqlite).await;
    let r =
        app.request(reqwest::Method::PUT, "/api/v1/rules", Some(&app.admin)).json(&json!({"auto_approve": false})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let p = app.create_partner(&app.admin, "Northwind Consulting", "ada@northwind.example").await;
    let body = json!({"partner_id": p["id"], "company": {"name": "Globex Corporation", "domain": "globex.example"},
        "contact": {"name": "Hank Scorpio", "email": "hank@globex.example"}});
    let referral: Value = app.post("/api/v1/referrals", &app.admin, &body).await.json().await.unwrap();
    assert_eq!(referral["status"], "pending_review");
    let rid = referral["id"].as_str().unwrap().to_owned();
    let now = jiff::Timestamp::now();
    let ws = workspaces::ensure(app.store.as_ref(), "default", now).await.unwrap();
    let (_, link) =
        staff::create_user(app.store.as_ref(), &app.base, &Ctx::system(ws.id, "test", now), "lead@vendor.example", StaffRole::Manager)
            .await
            .unwrap();

    let (_driver, driver_url) = start_driver(&path).await;
    let shots = screenshots();
    let d = browser(&driver_url, 1280, 900).await;
    let run = async {
        d.goto(&link).await?;
        let link_path = d.current_url().await?.path().to_owned();
        d.find(By::Css("form[method=post] button[type=submit]")).await?.click().await?;
        assert_eq!(landed(&d, &link_path).await?, "/admin");
        assert!(d.source().await?.contains("waiting for review"));
        d.screenshot(&shots.join("console-dashboard.png")).await?;

        d.find(By::LinkText("Review queue")).await?.click().await?;
        d.query(By::LinkText("Globex Corporation")).first().await?;
        assert!(d.source().await?.contains("Globex Corporation"));
        d.screenshot(&shots.join("console-review-queue.png")).await?;
        d.find(By::LinkText("Globex Corporation")).await?.click().await?;
        d.query(By::Id("note")).first().await?;
        assert_eq!(d.current_url().await?.path(), format!("/admin/referrals/{rid}"));
        d.find(By::Id("note")).await?.send_keys("known to the account team").await?;
        d.find(By::XPath("//button[text()='Approve']")).await?.click().await?;
        d.query(By::XPath("//td[contains(text(), 'known to the account team')]")).first().await?;
        let page = d.source().await?;
        assert!(page.contains("approved: known to the account team"), "{page}");
        assert!(d.find_all(By::XPath("//button[text()='Approve']")).await?.is_empty(), "no review form once decided");
        d.screenshot(&shots.join("console-approved.png")).await?;
        assert_eq!(overflow(&d).await, 0, "the desktop page does not scroll sideways");
        Ok::<_, WebDriverError>(())
    }
    .await;
    d.quit().await.ok();
    run.expect("the browser run");
    let api: Value = app.get(&format!("/api/v1/referrals/{rid}"), &app.admin).await.json().await.unwrap();
    assert_eq!(api["status"], "approved");

    // On a phone: the sign-in page, the dashboard and the lists fit the width.
    let ws = workspaces::ensure(app.store.as_ref(), "default", now).await.unwrap();
    let (_, link) =
        staff::create_user(app.store.as_ref(), &app.base, &Ctx::system(ws.id, "test", now), "rep@vendor.example", StaffRole::Sales)
            .await
            .unwrap();
    let phone = browser(&driver_url, 390, 844).await;
    let run = async {
        phone.goto(format!("{}/login", app.base)).await?;
        assert!(phone.find(By::Id("email")).await?.is_displayed().await?);
        assert_eq!(overflow(&phone).await, 0, "the sign-in page fits a phone");
        phone.screenshot(&shots.join("console-login-phone.png")).await?;
        phone.goto(&link).await?;
        let link_path = phone.current_url().await?.path().to_owned();
        phone.find(By::Css("form[method=post] button[type=submit]")).await?.click().await?;
        assert_eq!(landed(&phone, &link_path).await?, "/admin");
        assert_eq!(overflow(&phone).await, 0, "the dashboard fits a phone");
        phone.screenshot(&shots.join("console-dashboard-phone.png")).await?;
        for path in ["/admin/referrals", &format!("/admin/referrals/{rid}"), "/admin/partners"] {
            phone.goto(format!("{}{path}", app.base)).await?;
            assert_eq!(overflow(&phone).await, 0, "{path} fits a phone");
        }
        phone.screenshot(&shots.join("console-partners-phone.png")).await?;
        Ok::<_, WebDriverError>(())
    }
    .await;
    phone.quit().await.ok();
    run.expect("the phone run");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_signs_in_by_link_and_registers_a_referral_in_chromium() {
    let Some(path) = driver_path("a_partner_signs_in_by_link_and_registers_a_referral_in_chromium") else {
        return;
    };
    let app = TestApp::spawn(Engine::Sqlite).await;
    let p = app.create_partner(&app.admin, "Northwind Consulting", "ada@northwind.example").await;
    let pid = p["id"].as_str().unwrap().to_owned();
    let magic = |app: &TestApp| {
        let (base, admin, pid) = (app.base.clone(), app.admin.clone(), pid.clone());
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/api/v1/partners/{pid}/magic-link"))
                .bearer_auth(admin)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let link: Value = r.json().await.unwrap();
            format!("{base}{}", link["url"].as_str().unwrap())
        }
    };
    let link = magic(&app).await;

    let (_driver, driver_url) = start_driver(&path).await;
    let shots = screenshots();
    let d = browser(&driver_url, 1280, 900).await;
    let run = async {
        d.goto(&link).await?;
        d.find(By::Css("form[method=post] button[type=submit]")).await?.click().await?;
        // Each `query` waits for the next page.
        d.query(By::LinkText("Earnings")).first().await?;
        assert_eq!(d.current_url().await?.path(), "/portal");
        assert!(d.source().await?.contains("No referrals yet"));
        d.find(By::LinkText("Register a referral")).await?.click().await?;
        d.query(By::Id("company_name")).first().await?;
        assert_eq!(d.current_url().await?.path(), "/portal/referrals/new");
        d.find(By::Id("company_name")).await?.send_keys("Globex Corporation").await?;
        d.find(By::Id("contact_name")).await?.send_keys("Hank Scorpio").await?;
        d.find(By::Id("contact_email")).await?.send_keys("hank-at-globex").await?;
        d.find(By::XPath("//button[text()='Register']")).await?.click().await?;
        // The error is next to the field and the input is kept.
        assert!(d.query(By::Id("contact_email-error")).first().await?.is_displayed().await?);
        assert_eq!(d.find(By::Id("company_name")).await?.value().await?.as_deref(), Some("Globex Corporation"));
        d.screenshot(&shots.join("portal-register-error.png")).await?;
        let email = d.find(By::Id("contact_email")).await?;
        email.clear().await?;
        email.send_keys("hank@globex.example").await?;
        d.find(By::XPath("//button[text()='Register']")).await?.click().await?;
        // `query` waits for the next page's banner.
        let banner = d.query(By::Css("div.notice")).first().await?.text().await?;
        assert!(banner.contains("Registered. Approved: this company is registered to you until"), "{banner}");
        d.screenshot(&shots.join("portal-registered.png")).await?;
        d.find(By::LinkText("Home")).await?.click().await?;
        d.query(By::LinkText("Globex Corporation")).first().await?;
        let page = d.source().await?;
        assert!(page.contains("Globex Corporation") && page.contains("Received by the sales team"), "{page}");
        d.screenshot(&shots.join("portal-home.png")).await?;
        assert_eq!(overflow(&d).await, 0, "the desktop page does not scroll sideways");
        Ok::<_, WebDriverError>(())
    }
    .await;
    d.quit().await.ok();
    run.expect("the browser run");
    let list: Value = app.get("/api/v1/referrals", &app.admin).await.json().await.unwrap();
    let only = &list["data"][0];
    assert_eq!((only["channel"].as_str(), only["partner_id"].as_str()), (Some("portal"), Some(pid.as_str())), "{list}");
    let rid = only["id"].as_str().unwrap().to_owned();

    // On a phone: every portal page fits the width.
    let link = magic(&app).await;
    let phone = browser(&driver_url, 390, 844).await;
    let run = async {
        phone.goto(format!("{}/portal", app.base)).await?;
        assert_eq!(overflow(&phone).await, 0, "the sign-in form fits a phone");
        phone.goto(&link).await?;
        phone.find(By::Css("form[method=post] button[type=submit]")).await?.click().await?;
        phone.query(By::LinkText("Earnings")).first().await?;
        assert_eq!(phone.current_url().await?.path(), "/portal");
        phone.screenshot(&shots.join("portal-home-phone.png")).await?;
        for page in [
            "/portal",
            "/portal/referrals/new",
            &format!("/portal/referrals/{rid}"),
            "/portal/earnings",
            "/portal/payout-details",
            "/portal/preferences",
        ] {
            phone.goto(format!("{}{page}", app.base)).await?;
            assert_eq!(overflow(&phone).await, 0, "{page} fits a phone");
        }
        phone.screenshot(&shots.join("portal-preferences-phone.png")).await?;
        phone.goto(format!("{}/portal/referrals/{rid}", app.base)).await?;
        phone.screenshot(&shots.join("portal-referral-phone.png")).await?;
        Ok::<_, WebDriverError>(())
    }
    .await;
    phone.quit().await.ok();
    run.expect("the phone run");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_form_scores_and_lands_in_the_queue_in_chromium() {
    let Some(path) = driver_path("the_application_form_scores_and_lands_in_the_queue_in_chromium") else {
        return;
    };
    // The server's own minimum fill time (2 s): the browser waits like a person.
    let app = TestApp::spawn(Engine::Sqlite).await;
    let now = jiff::Timestamp::now();
    let ws = workspaces::ensure(app.store.as_ref(), "default", now).await.unwrap();
    let ctx = Ctx::system(ws.id.clone(), "test", now);
    let criteria = partnerloop_domain::application::Criteria {
        target_industries: vec!["healthcare".into(), "logistics".into()],
        deal_size_band: Some((1_000_000, 5_000_000)),
        referrals_per_quarter: 3,
        weights: partnerloop_domain::application::Weights { audience: 40, deal_size: 30, credibility: 20, responsiveness: 10 },
    };
    partnerloop_app::applications::put_criteria(app.store.as_ref(), &ctx, criteria).await.unwrap();
    let (_, link) = staff::create_user(app.store.as_ref(), &app.base, &ctx, "lead@vendor.example", StaffRole::Manager).await.unwrap();
    let fill_time = Duration::from_millis(2_300);

    let (_driver, driver_url) = start_driver(&path).await;
    let shots = screenshots();
    let d = browser(&driver_url, 1280, 900).await;
    let run = async {
        d.goto(format!("{}/apply", app.base)).await?;
        d.find(By::Id("company_name")).await?.send_keys("Northwind Health").await?;
        d.find(By::Css("#partner_type option[value='consultant']")).await?.click().await?;
        d.find(By::Id("website")).await?.send_keys("northwind.example").await?;
        d.find(By::Id("contact_name")).await?.send_keys("Ada Park").await?;
        d.find(By::Id("contact_email")).await?.send_keys("ada-at-northwind").await?;
        d.find(By::Css("input[name=industry_0]")).await?.click().await?;
        d.find(By::Id("typical_deal")).await?.send_keys("20000").await?;
        d.find(By::Id("years_in_business")).await?.send_keys("2").await?;
        d.find(By::Id("client_count")).await?.send_keys("25").await?;
        d.find(By::Id("referrals_per_quarter")).await?.send_keys("3").await?;
        d.find(By::Css("#response_time option[value='same_day']")).await?.click().await?;
        tokio::time::sleep(fill_time).await;
        d.find(By::XPath("//button[text()='Send application']")).await?.click().await?;
        // The error is next to its field, and what was typed and ticked is kept.
        assert!(d.query(By::Id("contact_email-error")).first().await?.is_displayed().await?);
        assert_eq!(d.find(By::Id("company_name")).await?.value().await?.as_deref(), Some("Northwind Health"));
        assert!(d.find(By::Css("input[name=industry_0]")).await?.is_selected().await?);
        d.screenshot(&shots.join("apply-error.png")).await?;
        let email = d.find(By::Id("contact_email")).await?;
        email.clear().await?;
        email.send_keys("ada@northwind.example").await?;
        tokio::time::sleep(fill_time).await;
        d.find(By::XPath("//button[text()='Send application']")).await?.click().await?;
        let heading = d.query(By::XPath("//h1[text()='Thank you for applying']")).first().await?;
        assert!(heading.is_displayed().await?);
        d.screenshot(&shots.join("apply-thanks.png")).await?;

        // Staff sign in and find it in the queue with its score:
        // audience 100×40, deal size 100×30, credibility (16 + 40 + 20 = 76)×20, responsiveness 100×10 → 95.
        d.goto(&link).await?;
        let link_path = d.current_url().await?.path().to_owned();
        d.find(By::Css("form[method=post] button[type=submit]")).await?.click().await?;
        assert_eq!(landed(&d, &link_path).await?, "/admin");
        d.find(By::LinkText("Applications")).await?.click().await?;
        d.query(By::LinkText("Northwind Health")).first().await?;
        assert_eq!(d.find(By::Css("tr.application .score")).await?.text().await?, "95");
        let row = d.find(By::Css("tr.application")).await?.text().await?;
        assert!(row.contains("100") && row.contains("76"), "the breakdown: {row}");
        d.screenshot(&shots.join("console-applications.png")).await?;
        d.find(By::LinkText("Northwind Health")).await?.click().await?;
        d.query(By::Id("reason")).first().await?;
        assert_eq!(d.find(By::Css("h2 .score")).await?.text().await?, "95");
        d.screenshot(&shots.join("console-application.png")).await?;
        let here = d.current_url().await?.path().to_owned();
        d.find(By::XPath("//button[text()='Approve and send the welcome email']")).await?.click().await?;
        assert!(landed(&d, &here).await?.starts_with("/admin/partners/prt_"));
        assert!(d.source().await?.contains("active"));
        Ok::<_, WebDriverError>(())
    }
    .await;
    d.quit().await.ok();
    run.expect("the browser run");
    let list: Value = app.get("/api/v1/partners?status=active", &app.admin).await.json().await.unwrap();
    assert_eq!(list["data"][0]["name"], "Northwind Health", "{list}");
    let code = list["data"][0]["referral_code"].as_str().unwrap().to_owned();

    // On a phone: the application form and the referral link's form fit the width.
    let phone = browser(&driver_url, 390, 844).await;
    let run = async {
        for (page, shot) in [("/apply".to_owned(), "apply-phone.png"), (format!("/r/{code}"), "referral-link-phone.png")] {
            phone.goto(format!("{}{page}", app.base)).await?;
            assert!(phone.find(By::Id("company_name")).await?.is_displayed().await?);
            assert_eq!(overflow(&phone).await, 0, "{page} fits a phone");
            phone.screenshot(&shots.join(shot)).await?;
        }
        Ok::<_, WebDriverError>(())
    }
    .await;
    phone.quit().await.ok();
    run.expect("the phone run");
    app.cleanup().await;
}
