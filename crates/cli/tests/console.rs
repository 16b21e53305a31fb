//! The staff web console, on SQLite and PostgreSQL, through HTTP as a
//! browser uses it (cookies, forms, redirects): `partnerloop users create`
//! prints a link that signs in once; password sign-in; a wrong password
//! and an unknown email answer alike; sign-in is rate-limited; a partner's
//! portal session opens no admin page; roles decide who may approve;
//! every form needs its CSRF token; approving from the console changes the
//! referral and writes the audit row; signing out ends the session.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use common::staff_client::{Browser, staff_user};
use common::{Engine, TestApp};
use partnerloop_app::Store;
use partnerloop_app::staff::{self, StaffRole};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_engines!(
    users_create_prints_a_url_that_signs_in_once,
    a_password_signs_in_and_sign_out_ends_the_session,
    a_wrong_password_and_an_unknown_email_answer_the_same_and_attempts_are_limited,
    a_partner_session_opens_no_admin_page,
    a_sales_user_reads_but_cannot_approve,
    a_post_without_its_csrf_token_is_refused_and_changes_nothing,
    approving_from_the_console_changes_the_referral_and_writes_the_audit_row,
    a_staff_link_opens_one_session_even_when_redeemed_16_times_at_once,
    each_role_may_do_what_it_is_for_and_no_more,
);

/// Password sign-in through the form, as a browser does.
trait PasswordLogin {
    async fn login(&mut self, email: &str, password: &str) -> (StatusCode, String, Option<String>);
}

impl PasswordLogin for Browser {
    async fn login(&mut self, email: &str, password: &str) -> (StatusCode, String, Option<String>) {
        self.get("/login").await;
        let csrf = self.csrf();
        self.post("/login", &[("csrf", &csrf), ("email", email), ("password", password), ("action", "password")]).await
    }
}

/// A browser signed in as a new staff user with this role.
async fn signed_in(app: &TestApp, email: &str, role: StaffRole) -> Browser {
    let url = staff_user(app, email, role).await;
    let mut b = Browser::new(app);
    let (s, location) = b.use_link(&url).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin")));
    b
}

/// A referral waiting for review: auto-approval off, then a registration.
async fn pending_referral(app: &TestApp) -> (String, String) {
    let r =
        app.request(reqwest::Method::PUT, "/api/v1/rules", Some(&app.admin)).json(&json!({"auto_approve": false})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let p = app.create_partner(&app.admin, "Northwind Consulting", "ada@northwind.example").await;
    let pid = p["id"].as_str().unwrap().to_owned();
    let body = json!({"partner_id": pid, "company": {"name": "Globex Corporation", "domain": "globex.example"},
        "contact": {"name": "Hank Scorpio", "email": "hank@globex.example"},
        "estimated_value": {"amount": "24000.00", "currency": "USD"}});
    let r: Value = app.post("/api/v1/referrals", &app.admin, &body).await.json().await.unwrap();
    assert_eq!(r["status"], "pending_review", "{r}");
    (pid, r["id"].as_str().unwrap().to_owned())
}

async fn referral_status(app: &TestApp, id: &str) -> String {
    let r: Value = app.get(&format!("/api/v1/referrals/{id}"), &app.admin).await.json().await.unwrap();
    r["status"].as_str().unwrap().to_owned()
}

async fn users_create_prints_a_url_that_signs_in_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cli = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_partnerloop"));
        for (k, _) in std::env::vars() {
            if k.starts_with("PARTNERLOOP_") {
                c.env_remove(k);
            }
        }
        c.env("PARTNERLOOP_DATABASE_URL", &app.database_url)
            .env("PARTNERLOOP_BASE_URL", &app.base)
            .env("PARTNERLOOP_LOG", "warn")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = cli(&["users", "create", "--email", "Lead@Vendor.Example", "--role", "manager"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "the URL alone: {stdout}");
    let url = stdout.trim();
    assert!(url.starts_with(&format!("{}/login/", app.base)), "{url}");

    let mut b = Browser::new(&app);
    let (s, location) = b.use_link(url).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin")));
    let session = b.cookies.get("pl_staff").cloned().expect("a staff session cookie");
    let (s, page, _) = b.get("/admin").await;
    assert_eq!(s, 200);
    assert!(page.contains("lead@vendor.example") && page.contains("manager"), "{page}");

    // Once only, even for another browser.
    let mut other = Browser::new(&app);
    assert_eq!(other.use_link(url).await.0, StatusCode::GONE);
    assert!(!other.cookies.contains_key("pl_staff"));
    assert_eq!(other.get("/admin").await.2.as_deref(), Some("/login"));
    // The session is stored hashed: the cookie's value is nowhere in the database.
    let ws = app.store.workspace_by_slug("default").await.unwrap();
    let audit = app.store.audit_for(&ws.id, &staff_session_user(&app, &session).await).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["staff.created", "staff.signed_in"], "{audit:?}");
    assert_eq!(audit[0].actor, "system:cli");

    // Bad input: one clear line on stderr, nothing on stdout, non-zero exit.
    for (args, says) in [
        (vec!["users", "create", "--email", "not-an-email", "--role", "admin"], "--email"),
        (vec!["users", "create", "--email", "lead@vendor.example", "--role", "sales"], "already exists"),
    ] {
        let out = cli(&args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success() && out.stdout.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("partnerloop: cannot create the user: ") && err.contains(says), "{err}");
    }
    let out = cli(&["users", "create", "--email", "x@vendor.example", "--role", "root"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values: admin, manager, finance, sales"));
    app.cleanup().await;
}

/// The user id behind a session cookie's token.
async fn staff_session_user(app: &TestApp, token: &str) -> String {
    staff::session(app.store.as_ref(), token, jiff::Timestamp::now()).await.unwrap().expect("a live session").user_id
}

async fn a_password_signs_in_and_sign_out_ends_the_session(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut b = signed_in(&app, "fin@vendor.example", StaffRole::Finance).await;
    let csrf = b.csrf();
    let (s, page, _) = b.post("/admin/account", &[("csrf", &csrf), ("password", "short")]).await;
    assert_eq!(s, 422, "{page}");
    let (s, page, _) = b.post("/admin/account", &[("csrf", &csrf), ("password", "a long enough passphrase")]).await;
    assert_eq!(s, 200);
    assert!(page.contains("Your password is set."));

    let mut fresh = Browser::new(&app);
    let (s, _, location) = fresh.login("FIN@vendor.example", "a long enough passphrase").await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin")));
    let r = fresh.client.get(fresh.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200, "no session: the form");
    let (s, page, _) = fresh.get("/admin").await;
    assert_eq!(s, 200);
    for link in ["/admin/referrals?status=pending_review", "/admin/referrals", "/admin/partners", "/admin/account"] {
        assert!(page.contains(&format!("href=\"{link}\"")), "the dashboard links {link}");
        assert_eq!(fresh.get(link).await.0, 200, "{link}");
    }

    // Signing out ends the session on the server, not just in the browser.
    let token = fresh.cookies.get("pl_staff").cloned().unwrap();
    let csrf = fresh.csrf();
    let (s, _, location) = fresh.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")));
    assert!(!fresh.cookies.contains_key("pl_staff"), "the cookie is cleared");
    fresh.cookies.insert("pl_staff".into(), token.clone());
    assert_eq!(fresh.get("/admin").await.2.as_deref(), Some("/login"), "the old token is revoked");
    assert!(staff::session(app.store.as_ref(), &token, jiff::Timestamp::now()).await.unwrap().is_none());

    // The hourly pruning forgets staff links and sessions a day after they expire.
    let prune = partnerloop_app::signin::prune;
    assert_eq!(prune(app.store.as_ref(), jiff::Timestamp::now()).await.unwrap(), 0, "nothing has expired");
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 3);
    assert_eq!(prune(app.store.as_ref(), later).await.unwrap(), 3, "the used link and the two sessions");
    app.cleanup().await;
}

async fn a_wrong_password_and_an_unknown_email_answer_the_same_and_attempts_are_limited(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut b = signed_in(&app, "ops@vendor.example", StaffRole::Admin).await;
    let csrf = b.csrf();
    let (s, _, _) = b.post("/admin/account", &[("csrf", &csrf), ("password", "correct horse battery")]).await;
    assert_eq!(s, 200);

    let mut wrong = Browser::new(&app);
    let (s1, page1, _) = wrong.login("ops@vendor.example", "wrong horse battery").await;
    let mut unknown = Browser::new(&app);
    let (s2, page2, _) = unknown.login("nobody@vendor.example", "wrong horse battery").await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!(s1, s2);
    let strip = |page: &str, email: &str, csrf: &str| page.replace(email, "EMAIL").replace(csrf, "CSRF");
    assert_eq!(strip(&page1, "ops@vendor.example", &wrong.csrf()), strip(&page2, "nobody@vendor.example", &unknown.csrf()));
    assert!(!wrong.cookies.contains_key("pl_staff") && !unknown.cookies.contains_key("pl_staff"));

    // Asking for a link answers alike too, and mails only a staff address.
    let mut answers = Vec::new();
    for email in ["ops@vendor.example", "stranger@vendor.example"] {
        let csrf = unknown.csrf();
        let (s, page, _) = unknown.post("/login", &[("csrf", &csrf), ("email", email), ("action", "link")]).await;
        answers.push((s, page.replace(email, "EMAIL")));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 200);
    let mails: Vec<Value> = app.get("/api/v1/outbox?channel=email", &app.admin).await.json::<Value>().await.unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["event"] == "staff.sign_in_requested")
        .cloned()
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["target"], "ops@vendor.example");

    // 5 attempts per email (ops@ had 2 so far), then 429 — even with the right password.
    let mut b = Browser::new(&app);
    for _ in 0..3 {
        assert_eq!(b.login("ops@vendor.example", "still wrong").await.0, StatusCode::UNAUTHORIZED);
    }
    let (s, page, _) = b.login("ops@vendor.example", "correct horse battery").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{page}");
    assert!(!b.cookies.contains_key("pl_staff"));
    let (s, _, _) = b.login("someone-else@vendor.example", "x").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "another email is still heard");
    app.cleanup().await;
}

async fn a_partner_session_opens_no_admin_page(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (pid, rid) = pending_referral(&app).await;
    let (s, link) = common::body(app.post(&format!("/api/v1/partners/{pid}/magic-link"), &app.admin, &json!({})).await).await;
    assert_eq!(s, 201);
    let mut b = Browser::new(&app);
    let (s, _, location) = b.post(&format!("{}{}", app.base, link["url"].as_str().unwrap()), &[]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/portal")));
    assert!(b.cookies.contains_key("pl_session"));
    for path in [
        "/admin",
        "/admin/referrals",
        &format!("/admin/referrals/{rid}"),
        "/admin/partners",
        &format!("/admin/partners/{pid}"),
        "/admin/account",
    ] {
        let (s, page, location) = b.get(path).await;
        assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")), "{path}");
        assert!(!page.contains("Globex"), "{path}");
    }
    // Nor may it post a decision, even with a CSRF token of its own.
    b.get("/login").await;
    let csrf = b.csrf();
    let (s, _, location) = b.post(&format!("/admin/referrals/{rid}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")));
    assert_eq!(referral_status(&app, &rid).await, "pending_review");
    app.cleanup().await;
}

async fn a_sales_user_reads_but_cannot_approve(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, rid) = pending_referral(&app).await;
    let mut b = signed_in(&app, "rep@vendor.example", StaffRole::Sales).await;
    let (s, page, _) = b.get(&format!("/admin/referrals/{rid}")).await;
    assert_eq!(s, 200);
    assert!(page.contains("Globex Corporation") && !page.contains("/approve"), "no approve form for sales");
    let csrf = b.csrf();
    let (s, page, _) = b.post(&format!("/admin/referrals/{rid}/approve"), &[("csrf", &csrf), ("note", "looks fine")]).await;
    assert_eq!(s, 403, "{page}");
    let (s, _, _) = b.post(&format!("/admin/referrals/{rid}/reject"), &[("csrf", &csrf), ("reason", "no")]).await;
    assert_eq!(s, 403);
    assert_eq!(referral_status(&app, &rid).await, "pending_review");
    app.cleanup().await;
}

async fn a_post_without_its_csrf_token_is_refused_and_changes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, rid) = pending_referral(&app).await;
    let mut b = signed_in(&app, "lead@vendor.example", StaffRole::Manager).await;
    let path = format!("/admin/referrals/{rid}/approve");
    assert_eq!(b.post(&path, &[("note", "no token")]).await.0, 403);
    assert_eq!(b.post(&path, &[("csrf", &"0".repeat(64))]).await.0, 403, "a token that is not the cookie's");
    // A forged cross-site request carries no CSRF cookie at all.
    let token = b.cookies.get("pl_staff").cloned().unwrap();
    let mut forged = Browser::new(&app);
    forged.cookies.insert("pl_staff".into(), token);
    assert_eq!(forged.post(&path, &[("csrf", &b.csrf())]).await.0, 403);
    assert_eq!(forged.post("/logout", &[]).await.0, 403);
    assert_eq!(referral_status(&app, &rid).await, "pending_review");
    // Sign-in forms too.
    let mut anon = Browser::new(&app);
    assert_eq!(anon.post("/login", &[("email", "lead@vendor.example"), ("action", "link")]).await.0, 403);
    let url = staff_user(&app, "second@vendor.example", StaffRole::Manager).await;
    assert_eq!(anon.post(&url, &[]).await.0, 403);
    assert_eq!(anon.use_link(&url).await.0, StatusCode::SEE_OTHER, "the link was not used up by the refused POST");
    app.cleanup().await;
}

async fn approving_from_the_console_changes_the_referral_and_writes_the_audit_row(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (pid, rid) = pending_referral(&app).await;
    let mut b = signed_in(&app, "lead@vendor.example", StaffRole::Manager).await;

    let (_, dash, _) = b.get("/admin").await;
    assert!(dash.contains("<span class=\"n\">1</span>waiting for review"), "{dash}");
    let (_, queue, _) = b.get("/admin/referrals?status=pending_review").await;
    assert!(queue.contains("Review queue") && queue.contains(&format!("/admin/referrals/{rid}")) && queue.contains(" min<"), "{queue}");
    let (_, found, _) = b.get("/admin/partners?q=northwind").await;
    assert!(found.contains(&format!("/admin/partners/{pid}")), "search by name");
    let (_, found, _) = b.get("/admin/partners?q=ADA%40northwind").await;
    assert!(found.contains(&format!("/admin/partners/{pid}")), "search by contact email");
    let (_, none, _) = b.get("/admin/partners?q=zzz_%25").await;
    assert!(!none.contains(&format!("/admin/partners/{pid}")), "wildcards are literal");
    let (s, partner, _) = b.get(&format!("/admin/partners/{pid}")).await;
    assert!(s == 200 && partner.contains("ada@northwind.example") && partner.contains("Globex Corporation"));
    let (s, detail, _) = b.get(&format!("/admin/referrals/{rid}")).await;
    assert_eq!(s, 200);
    assert!(detail.contains("no_conflict") && detail.contains("/approve") && detail.contains("24000.00 USD"), "{detail}");

    let csrf = b.csrf();
    let (s, _, location) = b.post(&format!("/admin/referrals/{rid}/approve"), &[("csrf", &csrf), ("note", "known account")]).await;
    assert_eq!((s, location), (StatusCode::SEE_OTHER, Some(format!("/admin/referrals/{rid}"))));
    assert_eq!(referral_status(&app, &rid).await, "approved");
    let user = staff_session_user(&app, b.cookies.get("pl_staff").unwrap()).await;
    let ws = app.store.workspace_by_slug("default").await.unwrap();
    let audit = app.store.audit_for(&ws.id, &rid).await.unwrap();
    let row = audit.iter().find(|a| a.action == "referral.approved").expect("an audit row of the approval");
    assert_eq!(row.actor, format!("staff:{user}"));
    assert_eq!(row.before.as_ref().unwrap()["status"], "pending_review");
    assert_eq!(row.after.as_ref().unwrap()["status"], "approved");
    let (_, detail, _) = b.get(&format!("/admin/referrals/{rid}")).await;
    assert!(detail.contains("approved: known account") && !detail.contains("/approve\""), "{detail}");

    // Approving twice is a conflict, shown as a page.
    let (s, page, _) = b.post(&format!("/admin/referrals/{rid}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(s, 409, "{page}");
    // A reject needs a reason.
    let (_, other) = {
        let body = json!({"partner_id": pid, "company": {"name": "Initech", "domain": "initech.example"},
            "contact": {"name": "Bill Lumbergh", "email": "bill@initech.example"}});
        let r: Value = app.post("/api/v1/referrals", &app.admin, &body).await.json().await.unwrap();
        ((), r["id"].as_str().unwrap().to_owned())
    };
    assert_eq!(b.post(&format!("/admin/referrals/{other}/reject"), &[("csrf", &csrf), ("reason", " ")]).await.0, 422);
    let (s, _, _) = b.post(&format!("/admin/referrals/{other}/reject"), &[("csrf", &csrf), ("reason", "duplicate of a direct deal")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(referral_status(&app, &other).await, "rejected");
    app.cleanup().await;
}

async fn a_staff_link_opens_one_session_even_when_redeemed_16_times_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let url = staff_user(&app, "lead@vendor.example", StaffRole::Manager).await;
    let mut b = Browser::new(&app);
    b.get(&url).await;
    let (cookie, csrf) = (b.cookie_header(), b.csrf());
    let tries: Vec<_> = (0..16)
        .map(|_| {
            let req = b
                .client
                .post(&url)
                .header("cookie", cookie.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("csrf={csrf}"));
            tokio::spawn(async move { req.send().await.unwrap() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tries {
        let r = t.await.unwrap();
        let session = r.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("pl_staff="));
        statuses.push((r.status(), session));
    }
    let winners = statuses.iter().filter(|(s, _)| *s == StatusCode::SEE_OTHER).count();
    assert_eq!(winners, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|(s, session)| (*s == StatusCode::SEE_OTHER) == *session && (*s == StatusCode::SEE_OTHER || *s == StatusCode::GONE))
    );
    app.cleanup().await;
}

/// Roles are enforced in the use cases, whatever page or button there is.
async fn each_role_may_do_what_it_is_for_and_no_more(engine: Engine) {
    use partnerloop_app::{payouts, referrals};
    let app = TestApp::spawn(engine).await;
    let (_, rid) = pending_referral(&app).await;
    let rid = partnerloop_domain::referral::ReferralId::from_string(rid);
    let mut ctxs = BTreeMap::new();
    for (email, role) in
        [("f@vendor.example", StaffRole::Finance), ("s@vendor.example", StaffRole::Sales), ("m@vendor.example", StaffRole::Manager)]
    {
        let mut b = signed_in(&app, email, role).await;
        let token = b.cookies.remove("pl_staff").unwrap();
        let holder = staff::session(app.store.as_ref(), &token, jiff::Timestamp::now()).await.unwrap().unwrap();
        assert_eq!(holder.role, role);
        ctxs.insert(email, holder.ctx(jiff::Timestamp::now()));
    }
    let page = partnerloop_app::store::Page { limit: 10, after: None };
    let store = app.store.as_ref();
    assert!(payouts::list(store, &ctxs["f@vendor.example"], &page).await.is_ok(), "finance handles payouts");
    assert!(matches!(payouts::list(store, &ctxs["s@vendor.example"], &page).await, Err(partnerloop_app::AppError::Forbidden(_))));
    for who in ["f@vendor.example", "s@vendor.example"] {
        let r = referrals::approve(store, &ctxs[who], &rid, None).await;
        assert!(matches!(r, Err(partnerloop_app::AppError::Forbidden(_))), "{who}: {r:?}");
        assert!(referrals::get(store, &ctxs[who], &rid).await.is_ok(), "{who} reads");
    }
    let r = staff::create_user(store, &app.base, &ctxs["m@vendor.example"], "new@vendor.example", StaffRole::Admin).await;
    assert!(matches!(r, Err(partnerloop_app::AppError::Forbidden(_))), "only an admin makes staff users");
    assert!(referrals::approve(store, &ctxs["m@vendor.example"], &rid, None).await.is_ok());
    app.cleanup().await;
}
