//! The HTTP API end to end: a real server, real HTTP, each scenario on
//! SQLite and on PostgreSQL.

mod common;

use common::{Engine, TestApp, body, problem_fields};
use partnerloop_app::Store;
use reqwest::Method;
use serde_json::json;

on_both_engines!(
    a_partner_is_created_read_listed_and_changed_with_an_audit_trail,
    a_workspace_never_sees_another_workspaces_records,
    a_partner_token_sees_only_its_own_partner,
    requests_without_a_valid_token_are_unauthorized,
    an_idempotency_key_replays_the_first_response_and_refuses_another_body,
    bad_input_is_refused_with_the_field_and_the_reason,
    lists_page_through_every_record_exactly_once,
    accounts_deals_and_plans_round_trip_with_exact_money,
    a_new_default_plan_takes_over_the_default_flag,
    conflicts_are_409_naming_the_field,
    health_readiness_metrics_and_openapi_answer,
    referral_codes_are_unique_across_many_partners,
);

async fn a_partner_is_created_read_listed_and_changed_with_an_audit_trail(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let created = app.create_partner(&app.admin, "Northwind Consulting", "Ada@Northwind.example").await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["status"], "active");
    assert_eq!(created["type"], "consultant");
    assert_eq!(created["contacts"][0]["email"], "ada@northwind.example");
    assert_eq!(created["referral_code"].as_str().unwrap().len(), 8);
    assert!(created["first_referral_at"].is_null());

    let (status, fetched) = body(app.get(&format!("/api/v1/partners/{id}"), &app.admin).await).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created, "a read returns exactly what the create returned");

    let (status, changed) =
        body(app.patch(&format!("/api/v1/partners/{id}"), &app.admin, &json!({"status": "paused", "tier": "gold"})).await).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["status"], "paused");
    assert_eq!(changed["tier"], "gold");
    assert_eq!(changed["name"], "Northwind Consulting", "fields not given stay");
    let (_, cleared) = body(app.patch(&format!("/api/v1/partners/{id}"), &app.admin, &json!({"tier": null})).await).await;
    assert!(cleared["tier"].is_null(), "null clears");

    let (_, list) = body(app.get("/api/v1/partners?status=paused", &app.admin).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (_, list) = body(app.get("/api/v1/partners?status=active", &app.admin).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);

    let ws = app.store.workspace_by_slug("default").await.unwrap();
    let audit = app.store.audit_for(&ws.id, id).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["partner.created", "partner.updated", "partner.updated"]);
    assert!(audit[0].before.is_none());
    assert_eq!(audit[1].before.as_ref().unwrap()["status"], "active");
    assert_eq!(audit[1].after.as_ref().unwrap()["status"], "paused");
    assert!(audit.iter().all(|a| a.actor.starts_with("admin:key_")), "the actor is the admin token");
    app.cleanup().await;
}

async fn a_workspace_never_sees_another_workspaces_records(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let other = app.admin_token("other-vendor").await;
    let partner = app.create_partner(&other, "Hidden Partner", "h@hidden.example").await;
    let (_, account) =
        body(app.post("/api/v1/accounts", &other, &json!({"name": "Secret Co", "domain": "secret.example", "status": "customer"})).await)
            .await;
    let (_, deal) = body(
        app.post(
            "/api/v1/deals",
            &other,
            &json!({"name": "D", "company": {"name": "Secret Co"}, "stage": "new", "amount": {"amount": "10.00", "currency": "USD"}}),
        )
        .await,
    )
    .await;
    let (_, plan) = body(app.post("/api/v1/commission-plans", &other, &json!({"name": "P", "kind": "percent", "rate": "0.1"})).await).await;

    for path in [
        format!("/api/v1/partners/{}", partner["id"].as_str().unwrap()),
        format!("/api/v1/accounts/{}", account["id"].as_str().unwrap()),
        format!("/api/v1/deals/{}", deal["id"].as_str().unwrap()),
        format!("/api/v1/commission-plans/{}", plan["id"].as_str().unwrap()),
    ] {
        let (status, problem) = body(app.get(&path, &app.admin).await).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(problem["status"], 404);
    }
    let r = app.patch(&format!("/api/v1/partners/{}", partner["id"].as_str().unwrap()), &app.admin, &json!({"name": "x"})).await;
    assert_eq!(r.status(), 404);
    let r = app.post(&format!("/api/v1/partners/{}/api-keys", partner["id"].as_str().unwrap()), &app.admin, &json!({})).await;
    assert_eq!(r.status(), 404);
    for list in ["/api/v1/partners", "/api/v1/accounts", "/api/v1/deals", "/api/v1/commission-plans"] {
        let (_, page) = body(app.get(list, &app.admin).await).await;
        assert_eq!(page["data"].as_array().unwrap().len(), 0, "{list}");
    }
    // A plan of another workspace cannot be attached either.
    let r = app
        .post(
            "/api/v1/partners",
            &app.admin,
            &json!({"name": "N", "type": "agency", "contact": {"name": "C", "email": "c@n.example"}, "commission_plan_id": plan["id"]}),
        )
        .await;
    let (status, problem) = body(r).await;
    assert_eq!(status, 422);
    assert_eq!(problem_fields(&problem), ["commission_plan_id"]);
    app.cleanup().await;
}

async fn a_partner_token_sees_only_its_own_partner(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mine = app.create_partner(&app.admin, "Mine", "me@mine.example").await;
    let theirs = app.create_partner(&app.admin, "Theirs", "them@theirs.example").await;
    let (status, key) = body(
        app.post(&format!("/api/v1/partners/{}/api-keys", mine["id"].as_str().unwrap()), &app.admin, &json!({"name": "zapier"})).await,
    )
    .await;
    assert_eq!(status, 201);
    let token = key["token"].as_str().unwrap();
    assert!(token.starts_with("plp_"));

    let (status, me) = body(app.get(&format!("/api/v1/partners/{}", mine["id"].as_str().unwrap()), token).await).await;
    assert_eq!(status, 200);
    assert_eq!(me["name"], "Mine");
    let r = app.get(&format!("/api/v1/partners/{}", theirs["id"].as_str().unwrap()), token).await;
    assert_eq!(r.status(), 404, "another partner's record is not found, not forbidden");
    let (_, list) = body(app.get("/api/v1/partners", token).await).await;
    let names: Vec<_> = list["data"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["Mine"]);

    for path in ["/api/v1/accounts", "/api/v1/deals", "/api/v1/commission-plans"] {
        assert_eq!(app.get(path, token).await.status(), 403, "{path}");
    }
    let r =
        app.post("/api/v1/partners", token, &json!({"name": "X", "type": "other", "contact": {"name": "X", "email": "x@x.example"}})).await;
    assert_eq!(r.status(), 403);
    let r = app.patch(&format!("/api/v1/partners/{}", mine["id"].as_str().unwrap()), token, &json!({"status": "active"})).await;
    assert_eq!(r.status(), 403, "a partner cannot change its own program status");
    app.cleanup().await;
}

async fn requests_without_a_valid_token_are_unauthorized(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = app.request(Method::GET, "/api/v1/partners", None).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    for bad in ["nonsense", "pla_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &app.admin[..app.admin.len() - 1]] {
        let r = app.get("/api/v1/partners", bad).await;
        assert_eq!(r.status(), 401, "{bad}");
    }
    let r =
        app.request(Method::GET, "/api/v1/partners", None).header("authorization", format!("Basic {}", app.admin)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    app.cleanup().await;
}

async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let partner = json!({"name": "Once Only", "type": "agency", "contact": {"name": "O", "email": "o@once.example"}});
    let send = |key: &'static str, b: serde_json::Value| {
        app.request(Method::POST, "/api/v1/partners", Some(&app.admin)).header("Idempotency-Key", key).json(&b).send()
    };
    let first = send("key-1", partner.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = send("key-1", partner.clone()).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again, first, "the replay is the first response");
    let (_, list) = body(app.get("/api/v1/partners", &app.admin).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "nothing new was created");

    let mut other = partner.clone();
    other["name"] = json!("Something Else");
    let (status, problem) = body(send("key-1", other).await.unwrap()).await;
    assert_eq!(status, 409);
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");

    // A failed validation is also replayed, and the key stays bound to it.
    let bad = json!({"name": "", "type": "agency", "contact": {"name": "O", "email": "o2@once.example"}});
    assert_eq!(send("key-2", bad.clone()).await.unwrap().status(), 422);
    assert_eq!(send("key-2", bad).await.unwrap().status(), 422);

    // Keys belong to the caller: another token may use the same key.
    let other_admin = app.admin_token("default").await;
    let r = app
        .request(Method::POST, "/api/v1/partners", Some(&other_admin))
        .header("Idempotency-Key", "key-1")
        .json(&json!({"name": "Second Caller", "type": "agency", "contact": {"name": "S", "email": "s@second.example"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("idempotent-replayed").is_none());
    app.cleanup().await;
}

async fn bad_input_is_refused_with_the_field_and_the_reason(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = app
        .request(Method::POST, "/api/v1/partners", Some(&app.admin))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let (status, problem) = body(r).await;
    assert_eq!(status, 400);
    assert_eq!(problem["status"], 400);

    let cases = [
        (json!({"name": "N", "type": "consultant", "contact": {"name": "C", "email": "not-an-email"}}), "contact.email"),
        (json!({"name": "  ", "type": "consultant", "contact": {"name": "C", "email": "c@x.example"}}), "name"),
        (json!({"name": "N", "type": "reseller", "contact": {"name": "C", "email": "c@x.example"}}), "type"),
        (json!({"name": "N", "type": "consultant"}), "contact"),
        (json!({"name": "N", "type": "consultant", "contact": {"name": "C", "email": 42}}), "contact.email"),
    ];
    for (payload, field) in cases {
        let (status, problem) = body(app.post("/api/v1/partners", &app.admin, &payload).await).await;
        assert_eq!(status, 422, "{payload}");
        assert_eq!(problem_fields(&problem), [field], "{payload}: {problem}");
        assert!(!problem["errors"][0]["message"].as_str().unwrap().is_empty());
    }
    // Every invalid field at once.
    let (status, problem) =
        body(app.post("/api/v1/partners", &app.admin, &json!({"name": "", "type": "x", "contact": {"name": "", "email": "y"}})).await)
            .await;
    assert_eq!(status, 422);
    assert_eq!(problem_fields(&problem), ["name", "type", "contact.name", "contact.email"]);

    let deal = |amount: &str, currency: &str| json!({"name": "D", "company": {"name": "C", "domain": "c.example"}, "stage": "new", "amount": {"amount": amount, "currency": currency}});
    for (payload, field) in [
        (deal("-5.00", "USD"), "amount.amount"),
        (deal("5.001", "USD"), "amount.amount"),
        (deal("5", "DOLLARS"), "amount.currency"),
        (json!({"name": "D", "company": {"name": "C"}, "stage": "won", "amount": {"amount": "1", "currency": "USD"}}), "stage"),
    ] {
        let (status, problem) = body(app.post("/api/v1/deals", &app.admin, &payload).await).await;
        assert_eq!(status, 422, "{payload}");
        assert_eq!(problem_fields(&problem), [field], "{problem}");
    }
    let (status, problem) =
        body(app.post("/api/v1/commission-plans", &app.admin, &json!({"name": "P", "kind": "percent", "rate": "1.5"})).await).await;
    assert_eq!(status, 422);
    assert_eq!(problem_fields(&problem), ["rate"]);

    let big = "x".repeat(2 * 1024 * 1024);
    // Its own connection: the server answers 413 without reading the rest and closes it.
    let r = {
        partnerloop_jobs::http::install_crypto_provider();
        reqwest::Client::new()
    }
    .post(format!("{}/api/v1/partners", app.base))
    .bearer_auth(&app.admin)
    .json(&json!({"name": big}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    let r = app
        .request(Method::POST, "/api/v1/partners", Some(&app.admin))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = app.get("/api/v1/nowhere", &app.admin).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = app.request(Method::DELETE, "/api/v1/partners", Some(&app.admin)).send().await.unwrap();
    assert_eq!(r.status(), 405);

    let ws = app.store.workspace_by_slug("default").await.unwrap();
    let page =
        app.store.list_partners(&ws.id, &Default::default(), &partnerloop_app::store::Page { limit: 10, after: None }).await.unwrap();
    assert!(page.items.is_empty(), "nothing was half-written");
    app.cleanup().await;
}

async fn lists_page_through_every_record_exactly_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(
            app.create_partner(&app.admin, &format!("Partner {i}"), &format!("p{i}@partners.example")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/partners?limit=3&cursor={c}"),
            None => "/api/v1/partners?limit=3".to_owned(),
        };
        let (status, page) = body(app.get(&path, &app.admin).await).await;
        assert_eq!(status, 200);
        pages += 1;
        for p in page["data"].as_array().unwrap() {
            assert_eq!(p["contacts"].as_array().unwrap().len(), 1, "contacts come with every listed partner");
            seen.push(p["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    made.sort();
    assert_eq!(seen, made, "every partner once, in creation order");

    let (_, all) = body(app.get("/api/v1/partners?limit=100000", &app.admin).await).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 7, "a large limit is capped, not refused");
    for bad in ["limit=0", "limit=-1", "limit=ten", "cursor=%%%", "cursor=bm90IGFuIGlkIQ", "status=dormant"] {
        let (status, problem) = body(app.get(&format!("/api/v1/partners?{bad}"), &app.admin).await).await;
        assert_eq!(status, 422, "{bad}");
        let field = bad.split('=').next().unwrap();
        assert_eq!(problem_fields(&problem), [field], "{bad}");
    }
    app.cleanup().await;
}

async fn accounts_deals_and_plans_round_trip_with_exact_money(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (status, account) = body(
        app.post("/api/v1/accounts", &app.admin, &json!({"name": "Globex", "domain": "https://www.Globex.example/about", "status": "off_limits", "owner_email": "rep@vendor.example"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{account}");
    assert_eq!(account["domain"], "globex.example");
    assert_eq!(account["status"], "off_limits");

    let (status, deal) = body(
        app.post(
            "/api/v1/deals",
            &app.admin,
            &json!({
                "name": "Globex renewal", "company": {"name": "Globex", "domain": "globex.example"}, "stage": "closed_won",
                "amount": {"amount": "12345678.91", "currency": "usd"}, "source": "direct",
                "created_at": "2026-01-05", "closed_at": "2026-03-01T10:00:00Z"
            }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{deal}");
    assert_eq!(deal["amount"], json!({"amount": "12345678.91", "currency": "USD"}));
    assert_eq!(deal["created_at"], "2026-01-05T00:00:00Z");
    assert_eq!(deal["closed_at"], "2026-03-01T10:00:00Z");
    let (_, again) = body(app.get(&format!("/api/v1/deals/{}", deal["id"].as_str().unwrap()), &app.admin).await).await;
    assert_eq!(again, deal);

    let (_, yen) = body(
        app.post(
            "/api/v1/deals",
            &app.admin,
            &json!({"name": "Y", "company": {"name": "Y"}, "stage": "proposal", "amount": {"amount": "1500", "currency": "JPY"}}),
        )
        .await,
    )
    .await;
    assert_eq!(yen["amount"]["amount"], "1500");
    assert!(yen["closed_at"].is_null(), "an open deal has no close time");
    let (status, problem) = body(
        app.post("/api/v1/deals", &app.admin, &json!({"name": "Y", "company": {"name": "Y"}, "stage": "proposal", "amount": {"amount": "1", "currency": "USD"}, "closed_at": "2026-01-01"}))
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(problem_fields(&problem), ["closed_at"]);

    let (status, tiered) = body(
        app.post("/api/v1/commission-plans", &app.admin, &json!({"name": "Tiers", "kind": "tiered", "rates": {"bronze": "0.10", "silver": "0.15", "Gold": "0.2"}, "cap": {"amount": "5000.00", "currency": "USD"}, "hold_days": 45}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{tiered}");
    assert_eq!(tiered["rates"], json!({"bronze": "0.1", "gold": "0.2", "silver": "0.15"}));
    assert_eq!(tiered["hold_days"], 45);
    assert_eq!(tiered["cap"]["amount"], "5000.00");
    let (status, flat) = body(
        app.post(
            "/api/v1/commission-plans",
            &app.admin,
            &json!({"name": "Bounty", "kind": "flat", "amount": {"amount": "500", "currency": "EUR"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(flat["amount"], json!({"amount": "500.00", "currency": "EUR"}));
    assert_eq!(flat["hold_days"], 30, "the default hold");
    app.cleanup().await;
}

async fn a_new_default_plan_takes_over_the_default_flag(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, first) = body(
        app.post("/api/v1/commission-plans", &app.admin, &json!({"name": "A", "kind": "percent", "rate": "0.1", "default": true})).await,
    )
    .await;
    let (_, second) = body(
        app.post("/api/v1/commission-plans", &app.admin, &json!({"name": "B", "kind": "percent", "rate": "0.2", "default": true})).await,
    )
    .await;
    assert_eq!(second["default"], true);
    let (_, first_now) = body(app.get(&format!("/api/v1/commission-plans/{}", first["id"].as_str().unwrap()), &app.admin).await).await;
    assert_eq!(first_now["default"], false);
    app.cleanup().await;
}

async fn conflicts_are_409_naming_the_field(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.create_partner(&app.admin, "First", "shared@contact.example").await;
    let (status, problem) = body(
        app.post(
            "/api/v1/partners",
            &app.admin,
            &json!({"name": "Second", "type": "agency", "contact": {"name": "S", "email": "SHARED@contact.example"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(problem_fields(&problem), ["contact.email"]);

    let account = json!({"name": "Acme", "domain": "acme.example", "status": "customer"});
    assert_eq!(app.post("/api/v1/accounts", &app.admin, &account).await.status(), 201);
    let (status, problem) = body(
        app.post("/api/v1/accounts", &app.admin, &json!({"name": "Acme 2", "domain": "www.acme.example", "status": "prospect"})).await,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(problem_fields(&problem), ["domain"]);

    let plan = json!({"name": "Same", "kind": "percent", "rate": "0.1"});
    assert_eq!(app.post("/api/v1/commission-plans", &app.admin, &plan).await.status(), 201);
    assert_eq!(app.post("/api/v1/commission-plans", &app.admin, &plan).await.status(), 409);
    // The same names are free in another workspace.
    let other = app.admin_token("elsewhere").await;
    assert_eq!(app.post("/api/v1/commission-plans", &other, &plan).await.status(), 201);
    assert_eq!(app.post("/api/v1/accounts", &other, &account).await.status(), 201);
    app.cleanup().await;
}

async fn health_readiness_metrics_and_openapi_answer(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let r = app.request(Method::GET, "/healthz", None).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"), "every response carries a request id");
    let (status, ready) = body(app.request(Method::GET, "/readyz", None).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(ready["database"], if engine == Engine::Sqlite { "sqlite" } else { "postgres" });

    app.get("/api/v1/partners", &app.admin).await;
    let metrics = app.request(Method::GET, "/metrics", None).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("partnerloop_http_requests_total{method=\"GET\",route=\"/api/v1/partners\",status=\"200\"} 1"), "{metrics}");
    assert!(metrics.contains("partnerloop_http_request_duration_seconds_bucket"));

    let (status, doc) = body(app.request(Method::GET, "/api/v1/openapi.json", None).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/api/v1/partners", "post"),
        ("/api/v1/partners", "get"),
        ("/api/v1/partners/{id}", "get"),
        ("/api/v1/partners/{id}", "patch"),
        ("/api/v1/partners/{id}/api-keys", "post"),
        ("/api/v1/accounts", "post"),
        ("/api/v1/accounts/{id}", "get"),
        ("/api/v1/deals", "post"),
        ("/api/v1/deals/{id}", "get"),
        ("/api/v1/commission-plans", "post"),
        ("/api/v1/commission-plans/{id}", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is documented");
    }
    assert!(doc["components"]["schemas"]["PartnerOut"].is_object());
    app.cleanup().await;
}

async fn referral_codes_are_unique_across_many_partners(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut codes = std::collections::HashSet::new();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/partners", app.base);
        let token = app.admin.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"name": format!("P{i}"), "type": "other", "contact": {"name": "C", "email": format!("c{i}@many.example")}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<serde_json::Value>().await.unwrap()["referral_code"].as_str().unwrap().to_owned()
        }));
    }
    for t in tasks {
        assert!(codes.insert(t.await.unwrap()));
    }
    assert_eq!(codes.len(), 40);
    app.cleanup().await;
}
