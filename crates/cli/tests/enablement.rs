//! The enablement library, the onboarding checklist and the portal's
//! paged lists, on SQLite and PostgreSQL, through HTTP as browsers use
//! them: staff upload a file and add a link (CSRF, errors per field, an
//! oversize file refused with nothing stored); partners see and download
//! only what their tier may (404 and nothing counted otherwise, another
//! workspace's resource included); an uploaded HTML file comes back as an
//! attachment with `nosniff`; downloads are counted per resource. Staff
//! edit the checklist; a partner ticks items, automatic items follow its
//! data, the console's partner page shows the progress, and another
//! workspace's item is 404. The portal's referrals and earnings page by
//! cursor ("Older →"). A partner session opens none of the console pages.

mod common;

use common::staff_client::{Browser, staff_user};
use common::{Engine, TestApp, body};
use partnerloop_app::Store;
use partnerloop_app::enablement::{Content, EnablementStore, Resource};
use partnerloop_app::staff::StaffRole;
use reqwest::StatusCode;
use serde_json::json;
use sha2::Digest;

on_both_engines!(
    the_library_serves_each_tier_its_own_files_and_links_and_counts_downloads,
    an_oversize_upload_or_a_reading_role_stores_nothing,
    partners_tick_the_checklist_and_staff_see_their_progress,
    the_portal_pages_referrals_and_earnings_by_cursor,
);

const BOUNDARY: &str = "plTestBoundary7d3f";

/// A multipart/form-data body of text fields and at most one file.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in fields {
        out.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    if let Some((name, content_type, bytes)) = file {
        out.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

async fn upload(b: &mut Browser, fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (StatusCode, String, Option<String>) {
    let r = b
        .client
        .post(b.url("/admin/resources"))
        .header("cookie", b.cookie_header())
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart(fields, file))
        .send()
        .await
        .unwrap();
    b.read(r).await
}

/// A browser signed in as a new staff user with this role.
async fn staff(app: &TestApp, email: &str, role: StaffRole) -> Browser {
    let url = staff_user(app, email, role).await;
    let mut b = Browser::new(app);
    let (s, location) = b.use_link(&url).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin")));
    b.get("/admin").await;
    b
}

/// A browser of the partner's first contact, signed in to the portal, as `token`'s admin sees it.
async fn partner_browser(app: &TestApp, admin: &str, partner: &str) -> Browser {
    let (s, link) = body(app.post(&format!("/api/v1/partners/{partner}/magic-link"), admin, &json!({})).await).await;
    assert_eq!(s, 201, "{link}");
    let mut b = Browser::new(app);
    let (s, _, location) = b.post(link["url"].as_str().unwrap(), &[]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/portal")));
    let (s, _, _) = b.get("/portal").await;
    assert_eq!(s, 200);
    assert!(b.cookies.contains_key("pl_csrf"));
    b
}

fn portal_csrf(b: &Browser) -> String {
    b.cookies.get("pl_csrf").cloned().unwrap()
}

async fn library(app: &TestApp) -> Vec<Resource> {
    let ws = app.store.workspace_by_slug("default").await.unwrap();
    app.store.resources(&ws.id).await.unwrap()
}

fn find<'a>(all: &'a [Resource], title: &str) -> &'a Resource {
    all.iter().find(|r| r.title == title).unwrap_or_else(|| panic!("no resource {title}"))
}

async fn register(app: &TestApp, token: &str, company: &str) -> String {
    let domain = format!("{}.example", company.to_lowercase().replace(' ', "-"));
    let b = json!({"company": {"name": company, "domain": domain}, "contact": {"name": "Pat Buyer", "email": format!("pat@{domain}")}});
    let (s, r) = body(app.post("/api/v1/referrals", token, &b).await).await;
    assert_eq!(s, 201, "{r}");
    r["id"].as_str().unwrap().to_owned()
}

async fn win(app: &TestApp, token: &str, company: &str) {
    let id = register(app, token, company).await;
    let won = json!({"stage": "closed_won", "amount": {"amount": "1000.00", "currency": "USD"}});
    let (s, r) = body(app.post(&format!("/api/v1/referrals/{id}/stage"), &app.admin, &won).await).await;
    assert_eq!((s, r["status"].as_str()), (200, Some("won")), "{r}");
}

/// The href of the page's "Older →" link.
fn older_link(page: &str) -> Option<String> {
    let end = page.find("\" rel=\"next\"")?;
    let start = page[..end].rfind("href=\"")? + "href=\"".len();
    Some(page[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

/// A download as raw bytes with its headers.
async fn download(b: &Browser, id: &str) -> reqwest::Response {
    b.client.get(b.url(&format!("/portal/resources/{id}"))).header("cookie", b.cookie_header()).send().await.unwrap()
}

async fn the_library_serves_each_tier_its_own_files_and_links_and_counts_downloads(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ladder = json!({"measure": "won_count", "tiers": [
        {"slug": "bronze", "name": "Bronze", "threshold": 0},
        {"slug": "gold", "name": "Gold", "threshold": 1},
    ]});
    let r = app.request(reqwest::Method::PUT, "/api/v1/tiers", Some(&app.admin)).json(&ladder).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let partners = app.partners_with_tokens(2).await;
    win(&app, &partners[0].1, "Globex").await;
    let (s, _) = body(app.post("/api/v1/tiers/evaluate", &app.admin, &json!({})).await).await;
    assert_eq!(s, 200);
    for (i, tier) in [(0, "gold"), (1, "bronze")] {
        let (_, p) = body(app.get(&format!("/api/v1/partners/{}", partners[i].0), &app.admin).await).await;
        assert_eq!(p["tier"], tier);
    }

    let mut b = staff(&app, "enable@console.example", StaffRole::Manager).await;
    let (s, page, _) = b.get("/admin/resources").await;
    assert_eq!(s, 200);
    assert!(page.contains("The library is empty") && page.contains("enctype=\"multipart/form-data\""), "{page}");
    let csrf = b.csrf();
    let pdf: &[u8] = b"%PDF-1.4 partner deck";
    let html: &[u8] = b"<html><script>alert(document.cookie)</script></html>";

    // Without the token nothing is stored.
    let (s, _, _) = upload(&mut b, &[("title", "Deck"), ("kind", "deck")], Some(("deck.pdf", "application/pdf", pdf))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(library(&app).await.is_empty());

    let fields = [("csrf", csrf.as_str()), ("title", "Partner deck"), ("description", "The pitch"), ("kind", "deck")];
    let (s, _, location) = upload(&mut b, &fields, Some(("../slides/deck.pdf", "application/pdf", pdf))).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/admin/resources?done=added")));
    let fields = [("csrf", csrf.as_str()), ("title", "Gold battlecard"), ("kind", "template"), ("tier", "gold")];
    let (s, _, _) = upload(&mut b, &fields, Some(("battle card.html", "text/html", html))).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let fields = [
        ("csrf", csrf.as_str()),
        ("title", "Bronze playbook"),
        ("kind", "one_pager"),
        ("tier", "bronze"),
        ("url", "https://docs.example/playbook"),
    ];
    let (s, _, _) = upload(&mut b, &fields, None).await;
    assert_eq!(s, StatusCode::SEE_OTHER);

    // Mistakes are shown beside their fields, with what was typed, and store nothing.
    let bad = [("csrf", csrf.as_str()), ("title", "Sneaky"), ("kind", "poster"), ("tier", "platinum"), ("url", "javascript:alert(1)")];
    let (s, page, _) = upload(&mut b, &bad, None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"res-url-error\"") && page.contains("must be an absolute http:// or https:// URL"), "{page}");
    assert!(page.contains("id=\"res-kind-error\"") && page.contains("id=\"res-tiers-error\""), "{page}");
    assert!(page.contains("is not a tier of this workspace"), "{page}");
    assert!(page.contains("value=\"Sneaky\""));
    assert_eq!(library(&app).await.len(), 3);

    let all = library(&app).await;
    let deck = find(&all, "Partner deck").clone();
    let gold = find(&all, "Gold battlecard").clone();
    let link = find(&all, "Bronze playbook").clone();
    match &deck.content {
        Content::File(f) => {
            assert_eq!((f.name.as_str(), f.content_type.as_str(), f.size), ("deck.pdf", "application/pdf", pdf.len() as u64));
            let expected: String = sha2::Sha256::digest(pdf).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(f.sha256, expected);
        }
        other => panic!("{other:?}"),
    }

    // Each tier sees its own and the all-partner resources.
    let mut gold_partner = partner_browser(&app, &app.admin, &partners[0].0).await;
    let mut bronze_partner = partner_browser(&app, &app.admin, &partners[1].0).await;
    let (s, page, _) = gold_partner.get("/portal/resources").await;
    assert_eq!(s, 200);
    assert!(page.contains("Partner deck") && page.contains("Gold battlecard") && !page.contains("Bronze playbook"), "{page}");
    let (_, page, _) = bronze_partner.get("/portal/resources").await;
    assert!(page.contains("Partner deck") && !page.contains("Gold battlecard") && page.contains("Bronze playbook"), "{page}");

    // Hidden from bronze: 404, nothing counted.
    let r = download(&bronze_partner, &gold.id).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(find(&library(&app).await, "Gold battlecard").downloads, 0);

    // The HTML upload comes back as an inert attachment.
    let r = download(&gold_partner, &gold.id).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"battle card.html\""), "{h:?}");
    assert_eq!(r.bytes().await.unwrap().as_ref(), html);
    let r = download(&gold_partner, &deck.id).await;
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "application/pdf"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), pdf);
    let r = download(&bronze_partner, &deck.id).await;
    assert_eq!(r.status(), 200);
    let (s, _, location) = bronze_partner.get(&format!("/portal/resources/{}", link.id)).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("https://docs.example/playbook")));
    let (s, _, _) = gold_partner.get(&format!("/portal/resources/{}", link.id)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let all = library(&app).await;
    let counts: Vec<i64> = ["Partner deck", "Gold battlecard", "Bronze playbook"].iter().map(|t| find(&all, t).downloads).collect();
    assert_eq!(counts, [2, 1, 1]);
    let (_, page, _) = b.get("/admin/resources").await;
    assert!(page.contains("<td class=\"downloads\">2</td>") && page.contains("Gold"), "{page}");

    // Another workspace's partner opens nothing of this one.
    let other_admin = app.admin_token("other").await;
    let other = app.create_partner(&other_admin, "Elsewhere", "ann@elsewhere.example").await;
    let stranger = partner_browser(&app, &other_admin, other["id"].as_str().unwrap()).await;
    assert_eq!(download(&stranger, &deck.id).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(find(&library(&app).await, "Partner deck").downloads, 2);

    // Visibility changes and deletion take effect at once, and are audited.
    let (s, _, _) = b.post(&format!("/admin/resources/{}/visibility", gold.id), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, page, _) = bronze_partner.get("/portal/resources").await;
    assert!(page.contains("Gold battlecard"));
    let (s, _, _) = b.post(&format!("/admin/resources/{}/delete", deck.id), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(download(&gold_partner, &deck.id).await.status(), StatusCode::NOT_FOUND);
    let (_, page, _) = gold_partner.get("/portal/resources").await;
    assert!(!page.contains("Partner deck"));
    let (_, audit, _) = b.get("/admin/audit").await;
    for action in ["resource.created", "resource.visibility_changed", "resource.deleted"] {
        assert!(audit.contains(action), "{action} in the audit log");
    }

    // A partner session opens no console page.
    for path in ["/admin/resources", "/admin/onboarding", "/admin/users"] {
        let (s, _, location) = gold_partner.get(path).await;
        assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")), "{path}");
    }
    let (s, _, _) = gold_partner.post(&format!("/admin/resources/{}/delete", gold.id), &[("csrf", &portal_csrf(&gold_partner))]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(library(&app).await.len(), 2);
    app.cleanup().await;
}

async fn an_oversize_upload_or_a_reading_role_stores_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut b = staff(&app, "big@console.example", StaffRole::Admin).await;
    let csrf = b.csrf();
    let big = vec![b'x'; partnerloop_app::enablement::MAX_FILE_BYTES + 10];
    let fields = [("csrf", csrf.as_str()), ("title", "Huge"), ("kind", "other")];
    let (s, page, _) = upload(&mut b, &fields, Some(("huge.bin", "application/octet-stream", &big))).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(page.contains("is larger than the limit of 20 MB; nothing was saved"), "{page}");
    assert!(page.contains("id=\"res-file-error\""));
    let (s, page, _) = upload(&mut b, &fields, Some(("empty.txt", "text/plain", b""))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("is empty") || page.contains("choose a file"), "{page}");
    assert!(library(&app).await.is_empty());

    let mut sales = staff(&app, "reader@console.example", StaffRole::Sales).await;
    let (s, page, _) = sales.get("/admin/resources").await;
    assert_eq!(s, 200);
    assert!(page.contains("may read the library but not change it") && !page.contains("enctype="), "{page}");
    let csrf = sales.csrf();
    let fields = [("csrf", csrf.as_str()), ("title", "Mine"), ("kind", "other")];
    let (s, _, _) = upload(&mut sales, &fields, Some(("a.txt", "text/plain", b"hello"))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(library(&app).await.is_empty());
    app.cleanup().await;
}

async fn partners_tick_the_checklist_and_staff_see_their_progress(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let partners = app.partners_with_tokens(1).await;
    let (pid, token) = &partners[0];
    let mut b = staff(&app, "onboard@console.example", StaffRole::Manager).await;
    let csrf = b.csrf();
    for (title, auto, link) in [
        ("Read the playbook", "", "https://docs.example/playbook"),
        ("Register your first referral", "first_referral", "/portal/referrals/new"),
        ("Add payout details", "payout_details", "/portal/payout-details"),
        ("Temporary", "", ""),
    ] {
        let (s, _, _) = b.post("/admin/onboarding", &[("csrf", &csrf), ("title", title), ("auto", auto), ("link", link)]).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{title}");
    }
    let (s, page, _) = b.post("/admin/onboarding", &[("csrf", &csrf), ("title", " "), ("link", "ftp://x")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"new-title-error\"") && page.contains("id=\"new-link-error\""), "{page}");
    let (s, _, _) = b.post("/admin/onboarding", &[("title", "No token")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let ws = app.store.workspace_by_slug("default").await.unwrap();
    let items = partnerloop_app::onboarding::OnboardingStore::onboarding_items(app.store.as_ref(), &ws.id).await.unwrap();
    let titles: Vec<_> = items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["Read the playbook", "Register your first referral", "Add payout details", "Temporary"]);
    let id = |t: &str| items.iter().find(|i| i.title == t).unwrap().id.clone();
    // Remove one, move one up, edit one.
    let (s, _, _) = b.post(&format!("/admin/onboarding/{}/delete", id("Temporary")), &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, _) = b.post(&format!("/admin/onboarding/{}/move", id("Add payout details")), &[("csrf", &csrf), ("direction", "up")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let edit = [("csrf", csrf.as_str()), ("title", "Read the partner playbook"), ("link", "https://docs.example/playbook"), ("auto", "")];
    let (s, _, _) = b.post(&format!("/admin/onboarding/{}", id("Read the playbook")), &edit).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, page, _) = b.get("/admin/onboarding").await;
    let order: Vec<usize> = ["Read the partner playbook", "Add payout details", "Register your first referral"]
        .iter()
        .map(|t| page.find(&format!("<strong>{t}</strong>")).unwrap_or_else(|| panic!("{t} in {page}")))
        .collect();
    assert!(order[0] < order[1] && order[1] < order[2], "{order:?}");
    assert!(!page.contains("Temporary"));

    // The partner's home shows the card; it ticks the manual item with its token.
    let mut p = partner_browser(&app, &app.admin, pid).await;
    let (_, home, _) = p.get("/portal").await;
    assert!(home.contains("Getting started: 0 of 3 done"), "{home}");
    let manual = id("Read the playbook");
    let (s, _, _) = p.post(&format!("/portal/onboarding/{manual}"), &[("done", "1")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let pc = portal_csrf(&p);
    let (s, _, location) = p.post(&format!("/portal/onboarding/{manual}"), &[("csrf", &pc), ("done", "1")]).await;
    assert_eq!((s, location.as_deref()), (StatusCode::SEE_OTHER, Some("/portal/onboarding")));
    // An automatic item is not ticked by hand.
    let (s, _, _) = p.post(&format!("/portal/onboarding/{}", id("Add payout details")), &[("csrf", &pc), ("done", "1")]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Registering a referral completes its item by itself.
    register(&app, token, "Initech").await;
    let (_, page, _) = p.get("/portal/onboarding").await;
    assert!(page.contains("2 of 3 done"), "{page}");

    let (s, page, _) = b.get(&format!("/admin/partners/{pid}")).await;
    assert_eq!(s, 200);
    assert!(page.contains("<dd id=\"onboarding-progress\">2 of 3</dd>"), "{page}");
    assert!(page.contains("✓ Read the partner playbook") && page.contains("○ Add payout details"), "{page}");

    // Another workspace's partner cannot tick this workspace's item.
    let other_admin = app.admin_token("other").await;
    let other = app.create_partner(&other_admin, "Elsewhere", "ann@elsewhere.example").await;
    let mut stranger = partner_browser(&app, &other_admin, other["id"].as_str().unwrap()).await;
    let sc = portal_csrf(&stranger);
    let (s, _, _) =
        stranger.post(&format!("/portal/onboarding/{}", id("Register your first referral")), &[("csrf", &sc), ("done", "1")]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = stranger.post(&format!("/portal/onboarding/{manual}"), &[("csrf", &sc), ("done", "1")]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, page, _) = stranger.get("/portal/onboarding").await;
    assert!(page.contains("There is no checklist"), "{page}");

    // Unticking takes the progress back; each step is in the audit log.
    let (s, _, _) = p.post(&format!("/portal/onboarding/{manual}"), &[("csrf", &pc), ("done", "0")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, page, _) = b.get(&format!("/admin/partners/{pid}")).await;
    assert!(page.contains("<dd id=\"onboarding-progress\">1 of 3</dd>"), "{page}");
    let (_, audit, _) = b.get("/admin/audit").await;
    for action in [
        "onboarding_item.created",
        "onboarding_item.deleted",
        "onboarding_item.moved",
        "onboarding_item.updated",
        "onboarding_item.done",
        "onboarding_item.undone",
    ] {
        assert!(audit.contains(action), "{action} in the audit log");
    }
    app.cleanup().await;
}

async fn the_portal_pages_referrals_and_earnings_by_cursor(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = json!({"name": "Now", "kind": "percent", "rate": "0.10", "hold_days": 0, "default": true});
    let (s, _) = body(app.post("/api/v1/commission-plans", &app.admin, &plan).await).await;
    assert_eq!(s, 201);
    let partners = app.partners_with_tokens(1).await;
    let (pid, token) = &partners[0];
    for i in 0..52 {
        register(&app, token, &format!("Company {i:02}")).await;
    }
    let mut p = partner_browser(&app, &app.admin, pid).await;
    let (_, home, _) = p.get("/portal").await;
    assert!(home.contains("Company 51") && home.contains("Company 02") && !home.contains("Company 01"), "newest first, 50 a page");
    let older = older_link(&home).expect("an Older link");
    assert!(older.starts_with("/portal?cursor="), "{older}");
    let (s, page, _) = p.get(&older).await;
    assert_eq!(s, 200);
    assert!(page.contains("Company 01") && page.contains("Company 00") && !page.contains("Company 02"), "{page}");
    assert!(!page.contains("Older →") && page.contains("← Newest"));
    let (s, _, _) = p.get("/portal?cursor=not*a*cursor").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Three commissions, two a page.
    for c in ["Acme", "Hooli", "Umbrella"] {
        win(&app, token, c).await;
    }
    let (_, page, _) = p.get("/portal/earnings?limit=2").await;
    assert!(page.contains("Umbrella") && page.contains("Hooli") && !page.contains(">Acme<"), "{page}");
    let older = older_link(&page).expect("an Older link");
    assert!(older.starts_with("/portal/earnings?cursor=") && older.ends_with("&limit=2"), "{older}");
    let (_, page, _) = p.get(&older).await;
    assert!(page.contains(">Acme<") && !page.contains("Hooli") && !page.contains("Older →"), "{page}");
    app.cleanup().await;
}
