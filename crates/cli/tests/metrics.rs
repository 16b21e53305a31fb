//! Program KPIs on SQLite and PostgreSQL against a fixed dataset whose
//! answers are computed by hand below: several periods, one partner, one
//! tier, months, two currencies, partners created after the period, a deal
//! lost and reopened, an empty program; the scorecard and who may read it;
//! the Prometheus gauges; `partnerloop export` as CSV and JSON.

mod common;

use std::process::{Command, Stdio};

use common::{Engine, TestApp, body, problem_fields};
use serde_json::{Value, json};

on_both_engines!(
    quarter_kpis_match_the_hand_computed_answers,
    months_partners_tiers_and_currencies_each_select_their_share,
    all_time_and_empty_periods,
    an_empty_program_answers_nulls,
    bad_parameters_are_problems_naming_the_field,
    a_partner_reads_its_own_scorecard_only,
    prometheus_exports_the_kpis_per_workspace,
    export_streams_every_record_as_csv_and_json,
    the_counters_follow_every_write_and_agree_with_the_records,
);

/// A stored time from `2025-01-03` or `2025-01-03T06:00:00`.
fn t(s: &str) -> String {
    if s.len() == 10 { format!("{s}T00:00:00.000000Z") } else { format!("{s}.000000Z") }
}

fn q(s: Option<&str>) -> String {
    s.map_or("NULL".into(), |s| format!("'{s}'"))
}

fn qt(s: Option<&str>) -> String {
    s.map_or("NULL".into(), |s| format!("'{}'", t(s)))
}

/// `(id, created, status, tier, first referral)`
fn partner_sql(ws: &str, p: (&str, &str, &str, Option<&str>, Option<&str>)) -> String {
    let (id, created, status, tier, first) = p;
    // A valid referral code: PRT and the id's letter, upper case.
    let code = id[4..].to_uppercase().repeat(5);
    format!(
        "INSERT INTO partners (id, workspace_id, name, type, status, tier, referral_code, created_at, updated_at, first_referral_at)
         VALUES ('{id}', '{ws}', 'Partner {id}', 'agency', '{status}', {}, 'PRT{code}', '{}', '{}', {});\n",
        q(tier),
        t(created),
        t(created),
        qt(first)
    )
}

struct R<'a> {
    id: &'a str,
    partner: &'a str,
    created: &'a str,
    status: &'a str,
    stage: Option<&'a str>,
    amount: Option<(i64, &'a str)>,
    estimated: Option<(i64, &'a str)>,
    closed: Option<&'a str>,
    /// Decided by an admin at this time (else by the rules at registration).
    reviewed: Option<&'a str>,
}

const R0: R<'static> =
    R { id: "", partner: "", created: "", status: "approved", stage: None, amount: None, estimated: None, closed: None, reviewed: None };

fn referral_sql(ws: &str, r: &R) -> String {
    let outcome = match r.status {
        "rejected" => "rejected",
        "pending_review" => "review",
        _ => "approved",
    };
    let (decided_by, decided_at) = match r.reviewed {
        Some(at) => ("admin:key_test".to_owned(), t(at)),
        None => ("rules".to_owned(), t(r.created)),
    };
    let money = |m: Option<(i64, &str)>| m.map_or(("NULL".to_owned(), "NULL".to_owned()), |(a, c)| (a.to_string(), format!("'{c}'")));
    let (amount, currency) = money(r.amount);
    let (est, est_currency) = money(r.estimated);
    format!(
        "INSERT INTO referrals (id, workspace_id, partner_id, status, channel, company_name, company_domain, contact_name, contact_email,
            estimated_minor, estimated_currency, outcome, reasons, decided_at, decided_by, stage, amount_minor, amount_currency, closed_at,
            created_at, updated_at)
         VALUES ('{id}', '{ws}', '{p}', '{status}', 'api', 'Company {id}', '{id}.example', 'Pat', 'pat@{id}.example',
            {est}, {est_currency}, '{outcome}', '[]', '{decided_at}', '{decided_by}', {stage}, {amount}, {currency}, {closed},
            '{created}', '{created}');\n",
        id = r.id,
        p = r.partner,
        status = r.status,
        stage = q(r.stage),
        closed = qt(r.closed),
        created = t(r.created),
    )
}

/// `(id, stage, amount, currency, created, closed)`, all direct.
fn deal_sql(ws: &str, d: (&str, &str, i64, &str, &str, Option<&str>)) -> String {
    let (id, stage, amount, currency, created, closed) = d;
    format!(
        "INSERT INTO deals (id, workspace_id, name, company_name, company_domain, stage, amount_minor, currency, source, created_at, closed_at, updated_at)
         VALUES ('{id}', '{ws}', 'Deal {id}', 'Direct {id}', '{id}.example', '{stage}', {amount}, '{currency}', 'direct', '{}', {}, '{}');\n",
        t(created),
        qt(closed),
        t(created)
    )
}

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

async fn workspace_id(app: &TestApp, slug: &str) -> String {
    partnerloop_app::Store::workspace_by_slug(app.store.as_ref(), slug).await.expect("workspace").id.to_string()
}

/// The fixed dataset (workspace currency USD). Partners A, B, C, E are
/// active, D paused; F joins on 2025-04-01, after Q1. r5 was lost and
/// reopened: it is open again at negotiation. Answers: see the tests.
async fn seed(app: &TestApp) {
    let ws = workspace_id(app, "default").await;
    let mut sql = String::new();
    for p in [
        ("prt_a", "2025-01-01", "active", Some("gold"), Some("2025-01-03")),
        ("prt_b", "2025-01-10", "active", Some("silver"), Some("2025-01-20")),
        ("prt_c", "2025-01-15", "active", None, None),
        ("prt_d", "2025-02-05", "paused", None, Some("2025-02-06")),
        ("prt_e", "2025-02-10", "active", Some("gold"), Some("2025-02-15")),
        ("prt_f", "2025-04-01T09:00:00", "active", None, Some("2025-04-02T09:00:00")),
    ] {
        sql += &partner_sql(&ws, p);
    }
    let usd = |a: i64| Some((a * 100, "USD"));
    let eur = |a: i64| Some((a * 100, "EUR"));
    let won = |id, partner, created, amount, closed| R {
        id,
        partner,
        created,
        status: "won",
        stage: Some("closed_won"),
        amount,
        closed: Some(closed),
        ..R0
    };
    let lost =
        |id, partner, created, closed| R { id, partner, created, status: "lost", stage: Some("closed_lost"), closed: Some(closed), ..R0 };
    for r in [
        won("r01", "prt_a", "2025-01-03", usd(1000), "2025-01-13"),
        won("r02", "prt_a", "2025-01-05", usd(3000), "2025-02-04"),
        lost("r03", "prt_b", "2025-01-20", "2025-02-01"),
        won("r04", "prt_b", "2025-01-25", eur(500), "2025-02-10"),
        R { id: "r05", partner: "prt_e", created: "2025-02-15", stage: Some("negotiation"), estimated: usd(2000), ..R0 },
        lost("r06", "prt_d", "2025-02-06", "2025-03-05"),
        R { id: "r07", partner: "prt_e", created: "2025-02-20", stage: Some("proposal"), estimated: eur(400), ..R0 },
        R { id: "r08", partner: "prt_b", created: "2025-03-01", status: "pending_review", ..R0 },
        R { id: "r09", partner: "prt_a", created: "2025-03-10", status: "rejected", reviewed: Some("2025-03-10T06:00:00"), ..R0 },
        R {
            id: "r10",
            partner: "prt_e",
            created: "2025-03-20",
            stage: Some("new"),
            estimated: usd(100),
            reviewed: Some("2025-03-20T02:00:00"),
            ..R0
        },
        won("r11", "prt_f", "2025-04-02T09:00:00", usd(2000), "2025-04-12T09:00:00"),
    ] {
        sql += &referral_sql(&ws, &r);
    }
    for d in [
        ("d1", "closed_won", 200_000, "USD", "2025-01-01", Some("2025-01-21")),
        ("d2", "closed_won", 100_000, "USD", "2025-02-01", Some("2025-03-03")),
        ("d3", "closed_lost", 50_000, "USD", "2025-01-05", Some("2025-02-20")),
        ("d4", "closed_won", 90_000, "EUR", "2025-03-01", Some("2025-03-11")),
        ("d5", "proposal", 70_000, "USD", "2025-03-01", None),
        ("d6", "closed_won", 500_000, "USD", "2025-04-01", Some("2025-04-10")),
    ] {
        sql += &deal_sql(&ws, d);
    }
    exec(app, sql).await;
}

async fn metrics(app: &TestApp, query: &str) -> Value {
    let (s, b) = body(app.get(&format!("/api/v1/metrics{query}"), &app.admin).await).await;
    assert_eq!(s, 200, "{query}: {b}");
    b
}

fn usd(amount: &str) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

fn eur(amount: &str) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

async fn quarter_kpis_match_the_hand_computed_answers(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    seed(&app).await;
    let m = metrics(&app, "?from=2025-01-01&to=2025-03-31").await;
    // Contract fields. Closed in Q1: won r01, r02 (USD), r04 (EUR); lost r03, r06; r05 reopened counts as neither.
    assert_eq!(m["currency"], "USD");
    assert_eq!(m["referral_to_closed_won_rate"], json!(0.6));
    assert_eq!(m["partner_sourced_revenue"], usd("4000.00"));
    assert_eq!(m["average_deal_size"], json!({"partner": usd("2000.00"), "direct": usd("1500.00")}));
    // Created in Q1: A, B, C, E active (A, B, E referred), D paused; F joined after.
    assert_eq!(m["partner_activation_rate"], json!(0.75));
    // Days to first referral of A, B, D, E: 2, 10, 1, 5 → median 3.5.
    assert_eq!(m["median_days_to_first_referral"], json!(3.5));
    // Extensions.
    assert_eq!(m["win_rate"], json!({"partner": 0.6, "direct": 0.75}));
    assert_eq!(m["won"], json!({"partner": 3, "direct": 3}));
    assert_eq!(m["lost"], json!({"partner": 2, "direct": 1}));
    // (10 + 30 + 16) / 3 days; direct (20 + 30 + 10) / 3.
    assert_eq!(m["mean_sales_cycle_days"], json!({"partner": 18.67, "direct": 20.0}));
    assert_eq!((m["partners_created"].clone(), m["partners_activated"].clone()), (json!(5), json!(3)));
    assert_eq!(m["referrals_registered"], 10);
    assert_eq!(m["active_partners"], 4);
    assert_eq!(m["referrals_per_active_partner"], json!(2.5));
    // C never referred; the others did within the 90 days before 2025-04-01.
    assert_eq!(m["dormant_partners"], 1);
    assert_eq!(
        m["pipeline"],
        json!([
            {"stage": "new", "count": 1, "value": usd("100.00")},
            {"stage": "qualified", "count": 0, "value": usd("0.00")},
            {"stage": "meeting", "count": 0, "value": usd("0.00")},
            {"stage": "proposal", "count": 1, "value": usd("0.00")},
            {"stage": "negotiation", "count": 1, "value": usd("2000.00")},
        ])
    );
    // Decisions by a person: 6 h and 2 h; r08 still waits.
    assert_eq!(m["review"], json!({"decisions": 2, "median_hours": 4.0, "awaiting": 1}));
    assert_eq!(m["top_partners"], json!([{"partner_id": "prt_a", "name": "Partner prt_a", "revenue": usd("4000.00"), "won": 2}]));
    assert_eq!(
        m["by_currency"]["EUR"],
        json!({
            "partner_sourced_revenue": eur("500.00"),
            "average_deal_size": {"partner": eur("500.00"), "direct": eur("900.00")},
            "won": {"partner": 1, "direct": 1},
            "pipeline_value": eur("400.00"),
        })
    );
    assert_eq!(m["by_currency"]["USD"]["pipeline_value"], usd("2100.00"));
    assert_eq!(m["by_currency"].as_object().unwrap().len(), 2);
    assert!(m.get("periods").is_none());
    app.cleanup().await;
}

async fn months_partners_tiers_and_currencies_each_select_their_share(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    seed(&app).await;
    let m = metrics(&app, "?from=2025-01-01&to=2025-03-31&group_by=month").await;
    assert_eq!(m["partner_sourced_revenue"], usd("4000.00"), "the whole period is still there");
    let p = m["periods"].as_array().unwrap();
    assert_eq!(p.iter().map(|p| p["period"].as_str().unwrap()).collect::<Vec<_>>(), ["2025-01", "2025-02", "2025-03"]);
    assert_eq!((p[0]["from"].as_str(), p[0]["to"].as_str()), (Some("2025-01-01"), Some("2025-01-31")));
    // January: r01 won; A, B, C joined (A and B referred: 2, 10 days); d1 won; r01–r04 registered.
    assert_eq!(p[0]["referral_to_closed_won_rate"], json!(1.0));
    assert_eq!(p[0]["partner_sourced_revenue"], usd("1000.00"));
    assert_eq!(p[0]["partner_activation_rate"], json!(0.6667));
    assert_eq!(p[0]["median_days_to_first_referral"], json!(6.0));
    assert_eq!(p[0]["average_deal_size"]["direct"], usd("2000.00"));
    assert_eq!(p[0]["referrals_registered"], 4);
    // February: r02 (USD) and r04 (EUR) won, r03 lost; D (paused) and E joined; d3 lost.
    assert_eq!(p[1]["referral_to_closed_won_rate"], json!(0.6667));
    assert_eq!(p[1]["partner_sourced_revenue"], usd("3000.00"));
    assert_eq!(p[1]["partner_activation_rate"], json!(1.0));
    assert_eq!(p[1]["median_days_to_first_referral"], json!(3.0));
    assert_eq!(p[1]["win_rate"]["direct"], json!(0.0));
    // March: only r06 lost; nobody joined; d2 and d4 won.
    assert_eq!(p[2]["referral_to_closed_won_rate"], json!(0.0));
    assert_eq!(p[2]["partner_sourced_revenue"], usd("0.00"));
    assert_eq!(p[2]["average_deal_size"], json!({"partner": null, "direct": usd("1000.00")}));
    assert_eq!(p[2]["partner_activation_rate"], Value::Null);
    assert_eq!(p[2]["median_days_to_first_referral"], Value::Null);

    // One partner: A's own referrals; direct figures stay the workspace's.
    let a = metrics(&app, "?from=2025-01-01&to=2025-03-31&partner_id=prt_a").await;
    assert_eq!(a["partner_id"], "prt_a");
    assert_eq!((a["referral_to_closed_won_rate"].clone(), a["partner_sourced_revenue"].clone()), (json!(1.0), usd("4000.00")));
    assert_eq!((a["referrals_registered"].clone(), a["active_partners"].clone()), (json!(3), json!(1)));
    assert_eq!((a["partner_activation_rate"].clone(), a["median_days_to_first_referral"].clone()), (json!(1.0), json!(2.0)));
    assert_eq!(a["average_deal_size"]["direct"], usd("1500.00"));
    assert_eq!(a["pipeline"][4]["count"], 0);

    // One tier: A and E (gold).
    let g = metrics(&app, "?from=2025-01-01&to=2025-03-31&tier=gold").await;
    assert_eq!(g["tier"], "gold");
    assert_eq!(g["won"]["partner"], 2);
    assert_eq!(g["lost"]["partner"], 0);
    assert_eq!(g["referrals_registered"], 6);
    assert_eq!(g["referrals_per_active_partner"], json!(3.0));
    assert_eq!(g["pipeline"].as_array().unwrap().iter().map(|s| s["count"].as_u64().unwrap()).sum::<u64>(), 3);
    assert_eq!(g["dormant_partners"], 0);

    // Another currency: money in EUR, counts unchanged.
    let e = metrics(&app, "?from=2025-01-01&to=2025-03-31&currency=eur").await;
    assert_eq!(e["currency"], "EUR");
    assert_eq!(e["partner_sourced_revenue"], eur("500.00"));
    assert_eq!(e["average_deal_size"], json!({"partner": eur("500.00"), "direct": eur("900.00")}));
    assert_eq!(e["pipeline"][3]["value"], eur("400.00"));
    assert_eq!(e["top_partners"], json!([{"partner_id": "prt_b", "name": "Partner prt_b", "revenue": eur("500.00"), "won": 1}]));
    assert_eq!(e["referral_to_closed_won_rate"], json!(0.6));
    app.cleanup().await;
}

async fn all_time_and_empty_periods(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    seed(&app).await;
    let m = metrics(&app, "").await;
    assert_eq!((m["from"].clone(), m["to"].clone()), (Value::Null, Value::Null));
    // r11 (F, after Q1) joins the wins.
    assert_eq!(m["referral_to_closed_won_rate"], json!(0.6667));
    assert_eq!(m["partner_sourced_revenue"], usd("6000.00"));
    // USD wins 1000 + 3000 + 2000; direct 2000 + 1000 + 5000 over 3 → 2666.666… → 2666.67.
    assert_eq!(m["average_deal_size"], json!({"partner": usd("2000.00"), "direct": usd("2666.67")}));
    assert_eq!(m["partner_activation_rate"], json!(0.8));
    // 2, 10, 1, 5, 1 days → 2.
    assert_eq!(m["median_days_to_first_referral"], json!(2.0));
    assert_eq!(m["win_rate"]["direct"], json!(0.8));
    // Nobody referred in the last 90 days: every active partner is dormant.
    assert_eq!((m["active_partners"].clone(), m["dormant_partners"].clone()), (json!(5), json!(5)));
    assert_eq!(
        m["top_partners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["partner_id"].as_str().unwrap(), p["revenue"]["amount"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("prt_a", "4000.00"), ("prt_f", "2000.00")]
    );
    // A period with nothing closed and nobody joining.
    let e = metrics(&app, "?from=2025-06-01&to=2025-06-30").await;
    assert_eq!(e["referral_to_closed_won_rate"], Value::Null);
    assert_eq!(e["partner_sourced_revenue"], usd("0.00"));
    assert_eq!(e["average_deal_size"], json!({"partner": null, "direct": null}));
    assert_eq!(e["partner_activation_rate"], Value::Null);
    assert_eq!(e["median_days_to_first_referral"], Value::Null);
    assert_eq!(e["referrals_registered"], 0);
    assert_eq!(e["by_currency"].as_object().unwrap().keys().collect::<Vec<_>>(), ["EUR", "USD"], "the open pipeline has both");
    // A single day is a period: 2025-01-13 closes r01 only.
    let d = metrics(&app, "?from=2025-01-13&to=2025-01-13").await;
    assert_eq!((d["won"]["partner"].clone(), d["partner_sourced_revenue"].clone()), (json!(1), usd("1000.00")));
    app.cleanup().await;
}

async fn an_empty_program_answers_nulls(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let m = metrics(&app, "?from=2025-01-01&to=2025-12-31").await;
    for k in ["partner_activation_rate", "referral_to_closed_won_rate", "median_days_to_first_referral", "referrals_per_active_partner"] {
        assert_eq!(m[k], Value::Null, "{k}");
    }
    assert_eq!(m["partner_sourced_revenue"], usd("0.00"));
    assert_eq!(m["average_deal_size"], json!({"partner": null, "direct": null}));
    assert_eq!((m["active_partners"].clone(), m["top_partners"].clone()), (json!(0), json!([])));
    assert_eq!(m["review"]["median_hours"], Value::Null);
    app.cleanup().await;
}

async fn bad_parameters_are_problems_naming_the_field(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    seed(&app).await;
    for (query, fields) in [
        ("?from=2025-13-01", vec!["from"]),
        ("?from=yesterday&to=2025-01-01", vec!["from"]),
        ("?from=2025-02-01&to=2025-01-01", vec!["to"]),
        ("?currency=XYZ&group_by=week", vec!["currency", "group_by"]),
        ("?group_by=month&from=2025-01-01", vec!["group_by"]),
        ("?from=2000-01-01&to=2025-12-31&group_by=month", vec!["group_by"]),
        ("?partner_id=prt_nobody", vec!["partner_id"]),
        ("?partner_id=prt_a&tier=gold", vec!["tier"]),
    ] {
        let r = app.get(&format!("/api/v1/metrics{query}"), &app.admin).await;
        assert_eq!(r.headers()["content-type"], "application/problem+json", "{query}");
        let (s, b) = body(r).await;
        assert_eq!(s, 422, "{query}: {b}");
        assert_eq!(problem_fields(&b), fields, "{query}: {b}");
    }
    // Workspaces never leak: another workspace's partner is no partner here.
    let other = app.admin_token("other").await;
    let (s, b) = body(app.get("/api/v1/metrics?partner_id=prt_a", &other).await).await;
    assert_eq!((s, problem_fields(&b)), (422, vec!["partner_id".to_owned()]));
    let (s, b) = body(app.get("/api/v1/metrics", &other).await).await;
    assert_eq!((s, b["referrals_registered"].clone(), b["active_partners"].clone()), (200, json!(0), json!(0)));
    let (s, _) = body(app.request(reqwest::Method::GET, "/api/v1/metrics", None).send().await.unwrap()).await;
    assert_eq!(s, 401);
    app.cleanup().await;
}

async fn partner_token(app: &TestApp, id: &str) -> String {
    let (s, b) = body(app.post(&format!("/api/v1/partners/{id}/api-keys"), &app.admin, &json!({})).await).await;
    assert_eq!(s, 201, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

async fn a_partner_reads_its_own_scorecard_only(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    seed(&app).await;
    let a = partner_token(&app, "prt_a").await;
    let b = partner_token(&app, "prt_b").await;
    let (s, card) = body(app.get("/api/v1/partners/prt_a/scorecard?from=2025-01-01&to=2025-03-31", &a).await).await;
    assert_eq!(s, 200, "{card}");
    assert_eq!(card["partner_id"], "prt_a");
    assert_eq!((card["won"].clone(), card["lost"].clone(), card["win_rate"].clone()), (json!(2), json!(0), json!(1.0)));
    assert_eq!(card["revenue"], usd("4000.00"));
    assert_eq!(card["average_deal_size"], usd("2000.00"));
    // (10 + 30) / 2 days.
    assert_eq!(card["mean_sales_cycle_days"], json!(20.0));
    assert_eq!(card["referrals_registered"], 3);
    assert_eq!(card["days_to_first_referral"], json!(2.0));
    assert_eq!(card["first_referral_at"], "2025-01-03T00:00:00Z");
    assert_eq!(card["last_referral_at"], "2025-03-10T00:00:00Z");
    assert_eq!(card["dormant"], false);
    assert_eq!(card["tier"], Value::Null, "no ladder yet");
    assert_eq!(
        card["by_currency"]["USD"],
        json!({"revenue": usd("4000.00"), "average_deal_size": usd("2000.00"), "won": 2, "pipeline_value": usd("0.00")})
    );
    assert!(!card.to_string().contains("prt_b"), "nothing of another partner");
    // Another partner's scorecard does not exist for B; B's own does.
    let (s, _) = body(app.get("/api/v1/partners/prt_a/scorecard", &b).await).await;
    assert_eq!(s, 404);
    let (s, own) = body(app.get("/api/v1/partners/prt_b/scorecard?currency=EUR", &b).await).await;
    assert_eq!((s, own["revenue"].clone(), own["won"].clone()), (200, eur("500.00"), json!(1)));
    // … nor does the workspace's KPI endpoint, which names every partner.
    let (s, _) = body(app.get("/api/v1/metrics", &b).await).await;
    assert_eq!(s, 403);
    // Admins read any scorecard; another workspace's admin finds nothing.
    let (s, c) = body(app.get("/api/v1/partners/prt_c/scorecard", &app.admin).await).await;
    assert_eq!((s, c["dormant"].clone(), c["days_to_first_referral"].clone()), (200, json!(true), Value::Null));
    let other = app.admin_token("other").await;
    let (s, _) = body(app.get("/api/v1/partners/prt_a/scorecard", &other).await).await;
    assert_eq!(s, 404);
    let (s, p) = body(app.get("/api/v1/partners/prt_a/scorecard?from=2025-03-01&to=2025-01-01", &app.admin).await).await;
    assert_eq!((s, problem_fields(&p)), (422, vec!["to".to_owned()]));
    // With a ladder, the scorecard shows the tier and what the next one needs.
    let ladder = json!({"measure": "won_count", "tiers": [{"slug": "silver", "name": "Silver", "threshold": 1}, {"slug": "gold", "name": "Gold", "threshold": 5}]});
    let (s, l) = body(app.request(reqwest::Method::PUT, "/api/v1/tiers", Some(&app.admin)).json(&ladder).send().await.unwrap()).await;
    assert_eq!(s, 200, "{l}");
    let (_, card) = body(app.get("/api/v1/partners/prt_b/scorecard", &b).await).await;
    assert_eq!((card["tier"]["tier"].clone(), card["tier"]["measure"].clone()), (json!("silver"), json!("won_count")));
    assert_eq!(card["tier"]["next_tier"]["slug"], "gold");
    app.cleanup().await;
}

async fn prometheus_exports_the_kpis_per_workspace(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    seed(&app).await;
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    let value = |series: &str| -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.parse().ok()))
    };
    for (series, expected) in [
        ("partnerloop_kpi_referrals_registered{workspace=\"default\"}", 11.0),
        ("partnerloop_kpi_active_partners{workspace=\"default\"}", 5.0),
        ("partnerloop_kpi_dormant_partners{workspace=\"default\"}", 5.0),
        ("partnerloop_kpi_partner_activation_rate{workspace=\"default\"}", 0.8),
        ("partnerloop_kpi_referral_to_closed_won_rate{workspace=\"default\"}", 0.6667),
        ("partnerloop_kpi_referrals_awaiting_review{workspace=\"default\"}", 1.0),
        ("partnerloop_kpi_partner_sourced_revenue{workspace=\"default\",currency=\"USD\"}", 6000.0),
        ("partnerloop_kpi_partner_sourced_revenue{workspace=\"default\",currency=\"EUR\"}", 500.0),
        ("partnerloop_kpi_open_pipeline_referrals{workspace=\"default\",stage=\"negotiation\"}", 1.0),
    ] {
        assert_eq!(value(series), Some(expected), "{series} in:\n{text}");
    }
    // An empty workspace has its own series, and rates without a denominator are left out.
    app.admin_token("other").await;
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains("kpi_referrals_registered{workspace=\"other\"}"), "cached for a while, not recomputed per scrape");
    app.cleanup().await;
}

fn partnerloop(db: &str, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_partnerloop"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PARTNERLOOP_") {
            c.env_remove(k);
        }
    }
    c.env("PARTNERLOOP_DATABASE_URL", db).env("PARTNERLOOP_LOG", "warn").args(args).stdin(Stdio::null()).output().expect("run partnerloop")
}

async fn export_streams_every_record_as_csv_and_json(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    seed(&app).await;
    // More referrals than one page of the store holds (1,000), in bulk.
    let ws = workspace_id(&app, "default").await;
    let mut sql = String::new();
    for chunk in (0..1_500).collect::<Vec<_>>().chunks(500) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "('rx{i:05}', '{ws}', 'prt_c', 'lost', 'csv', 'Bulk, \"Quoted\" {i}', 'bulk{i}.example', 'Pat', 'pat@bulk{i}.example',
                      'approved', '[]', '{t}', 'rules', 'closed_lost', '{t}', '{t}', '{t}')",
                    t = t("2025-05-01")
                )
            })
            .collect();
        sql += &format!(
            "INSERT INTO referrals (id, workspace_id, partner_id, status, channel, company_name, company_domain, contact_name, contact_email,
                outcome, reasons, decided_at, decided_by, stage, closed_at, created_at, updated_at) VALUES {};\n",
            rows.join(",")
        );
    }
    exec(&app, sql).await;

    let out = partnerloop(&app.database_url, &["export", "referrals"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut csv = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = csv.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(&header[..4], ["id", "partner_id", "status", "channel"]);
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1_511);
    assert_eq!(&rows[0][0], "r01");
    let amount = header.iter().position(|h| h == "amount").unwrap();
    assert_eq!((&rows[0][amount], &rows[0][amount + 1]), ("1000.00", "USD"));
    let quoted = rows.iter().find(|r| &r[0] == "rx00007").unwrap();
    assert_eq!(&quoted[4], "Bulk, \"Quoted\" 7", "commas and quotes survive");
    let ids: Vec<&str> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "every record once, in id order");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "exported 1511 records");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("partners.json");
    let out = partnerloop(&app.database_url, &["export", "partners", "--format", "json", "--output", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    let partners: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let partners = partners.as_array().unwrap();
    assert_eq!(partners.len(), 6);
    assert_eq!(partners[0]["id"], "prt_a");
    assert_eq!(partners[0]["tier"], "gold");
    assert_eq!(partners[0]["first_referral_at"], "2025-01-03T00:00:00Z");
    assert_eq!(partners[2]["tier"], Value::Null);

    let out = partnerloop(&app.database_url, &["export", "referrals", "--format", "json"]);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1_511);
    assert_eq!(all[3]["amount"], "500.00");
    assert_eq!(all[3]["currency"], "EUR");

    let out = partnerloop(&app.database_url, &["export", "commissions", "--format", "csv"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().next(), Some(ExportHeader::COMMISSIONS));

    let out = partnerloop(&app.database_url, &["export", "referrals", "--workspace", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workspace"));
    let out = partnerloop(&app.database_url, &["export", "referrals", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    app.cleanup().await;
}

struct ExportHeader;

impl ExportHeader {
    const COMMISSIONS: &'static str =
        "id,partner_id,referral_id,plan_id,kind,amount,currency,status,rule,available_at,payout_id,created_at";
}

/// `(kind, bucket, currency, n, value)` of the counters, summed per key
/// (nonzero only), next to the same figures counted from the referrals.
async fn counters_and_records(app: &TestApp) -> (Vec<(String, String, String, i64, i64)>, Vec<(String, String, String, i64, i64)>) {
    let counters = "SELECT kind, bucket, currency, CAST(SUM(n) AS BIGINT), CAST(SUM(value_minor) AS BIGINT) FROM metric_deltas
                    GROUP BY kind, bucket, currency HAVING SUM(n) <> 0 OR SUM(value_minor) <> 0 ORDER BY 1, 2, 3";
    let records =
        "SELECT 'registered', substr(created_at, 1, 10), '', COUNT(*), CAST(0 AS BIGINT) FROM referrals GROUP BY substr(created_at, 1, 10)
                   UNION ALL
                   SELECT 'pipeline', COALESCE(stage, ''), COALESCE(amount_currency, estimated_currency, ''), COUNT(*),
                          CAST(SUM(COALESCE(amount_minor, estimated_minor, 0)) AS BIGINT)
                   FROM referrals WHERE status = 'approved' GROUP BY COALESCE(stage, ''), COALESCE(amount_currency, estimated_currency, '')
                   UNION ALL
                   SELECT 'won', partner_id, amount_currency, COUNT(*), CAST(SUM(amount_minor) AS BIGINT)
                   FROM referrals WHERE status = 'won' AND closed_at IS NOT NULL GROUP BY partner_id, amount_currency
                   UNION ALL
                   SELECT 'lost', partner_id, '', COUNT(*), CAST(0 AS BIGINT)
                   FROM referrals WHERE status = 'lost' AND closed_at IS NOT NULL GROUP BY partner_id
                   ORDER BY 1, 2, 3";
    type Row = (String, String, String, i64, i64);
    if app.database_url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&app.database_url).await.expect("connect");
        let a: Vec<Row> = sqlx::query_as(counters).fetch_all(&pool).await.unwrap();
        let b: Vec<Row> = sqlx::query_as(records).fetch_all(&pool).await.unwrap();
        pool.close().await;
        (a, b)
    } else {
        let pool = sqlx::PgPool::connect(&app.database_url).await.expect("connect");
        let a: Vec<Row> = sqlx::query_as(counters).fetch_all(&pool).await.unwrap();
        let b: Vec<Row> = sqlx::query_as(records).fetch_all(&pool).await.unwrap();
        pool.close().await;
        (a, b)
    }
}

/// The report read from the counters equals the one counted from the
/// records (a start one microsecond past the epoch and a past snapshot
/// make the store count the records instead).
async fn assert_counters_agree(app: &TestApp, when: &str) {
    use partnerloop_app::metrics::{MetricsStore, Scope, Window};
    let (counters, records) = counters_and_records(app).await;
    assert_eq!(counters, records, "{when}: the counters match the records");
    let ws = partnerloop_domain::ids::WorkspaceId::from_string(workspace_id(app, "default").await);
    let now = jiff::Timestamp::now();
    let counted = Window {
        start: None,
        end: None,
        as_of: now,
        dormant_since: now - jiff::SignedDuration::from_hours(24 * 90),
        currency: partnerloop_domain::Currency::USD,
        current: true,
    };
    let scanned = Window { start: Some(jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_micros(1)), current: false, ..counted };
    let a = app.store.kpi_inputs(&ws, &Scope::Workspace, &counted).await.unwrap();
    let b = app.store.kpi_inputs(&ws, &Scope::Workspace, &scanned).await.unwrap();
    assert_eq!(a.registered, b.registered, "{when}: registrations");
    let by_partner = |mut w: Vec<partnerloop_domain::metrics::PartnerWins>| {
        w.sort_by_key(|p| (p.partner_id.to_string(), p.currency.code().to_owned()));
        w.into_iter().map(|p| (p.partner_id.to_string(), p.currency.code().to_owned(), p.won)).collect::<Vec<_>>()
    };
    assert_eq!(by_partner(a.partner_wins), by_partner(b.partner_wins), "{when}: wins per partner, with their sales cycles");
    assert_eq!(a.partner_lost, b.partner_lost, "{when}: losses");
    let sorted = |mut p: Vec<partnerloop_domain::metrics::PipelineGroup>| {
        p.sort_by_key(|g| (g.stage.as_str().to_owned(), g.currency.map(|c| c.code().to_owned())));
        p
    };
    assert_eq!(sorted(a.pipeline), sorted(b.pipeline), "{when}: the open pipeline");
}

async fn the_counters_follow_every_write_and_agree_with_the_records(engine: Engine) {
    use partnerloop_app::metrics::MetricsStore as _;
    let app = TestApp::spawn(engine).await;
    let partners = app.partners_with_tokens(3).await;
    let mut ids = Vec::new();
    let names = [
        "Globex",
        "Initrode",
        "Vandelay Industries",
        "Soylent",
        "Hooli",
        "Massive Dynamic",
        "Cyberdyne",
        "Tyrell",
        "Wayne Enterprises",
        "Stark Industries",
        "Oscorp",
        "Wonka",
    ];
    for (i, name) in names.iter().enumerate() {
        let (_, token) = &partners[i % 3];
        let mut b = json!({"company": {"name": name, "domain": format!("counted{i}.example")},
                           "contact": {"name": "Pat Lee", "email": format!("pat@counted{i}.example")}});
        match i % 3 {
            0 => b["estimated_value"] = json!({"amount": format!("{}.50", 1000 + i), "currency": "USD"}),
            1 => b["estimated_value"] = json!({"amount": "800.00", "currency": "EUR"}),
            _ => {}
        }
        let (status, r) = body(app.post("/api/v1/referrals", token, &b).await).await;
        assert_eq!((status, r["status"].as_str()), (201, Some("approved")), "{r}");
        ids.push(r["id"].as_str().unwrap().to_owned());
    }
    // Another partner's registration of a held account is rejected: no pipeline.
    let b = json!({"company": {"name": "Globex", "domain": "counted0.example"}, "contact": {"name": "Al", "email": "al@counted0.example"}});
    let (status, r) = body(app.post("/api/v1/referrals", &partners[1].1, &b).await).await;
    assert_eq!((status, r["status"].as_str()), (201, Some("rejected")), "{r}");
    assert_counters_agree(&app, "after registering").await;

    let stage = |id: &str, b: Value| {
        let path = format!("/api/v1/referrals/{id}/stage");
        let app = &app;
        async move {
            let (status, r) = body(app.post(&path, &app.admin, &b).await).await;
            assert_eq!(status, 200, "{path}: {r}");
        }
    };
    stage(&ids[0], json!({"stage": "qualified"})).await;
    stage(&ids[1], json!({"stage": "proposal"})).await;
    stage(&ids[2], json!({"stage": "closed_won", "amount": {"amount": "4200.00", "currency": "USD"}})).await;
    stage(&ids[3], json!({"stage": "closed_lost"})).await;
    stage(&ids[4], json!({"stage": "closed_won", "amount": {"amount": "999.99", "currency": "EUR"}})).await;
    // Won, then reopened: back in the pipeline with its won amount.
    stage(&ids[4], json!({"stage": "negotiation"})).await;
    assert_counters_agree(&app, "after the pipeline moved").await;

    let removed = app.store.compact_metric_counters().await.unwrap();
    assert!(removed > 0, "compaction folds the deltas");
    assert_eq!(app.store.compact_metric_counters().await.unwrap(), 0, "a second run has nothing to fold");
    assert_counters_agree(&app, "after compaction").await;

    // A history edit moves a registration to another day.
    exec(&app, format!("UPDATE referrals SET created_at = '2024-02-29T12:00:00.000000Z' WHERE id = '{}'", ids[5])).await;
    // Lapsed windows expire: those referrals leave the pipeline.
    let far = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 365);
    let expired = partnerloop_app::referrals::expire_lapsed(app.store.as_ref(), far).await.unwrap();
    assert!(expired >= 5, "open approved referrals expired: {expired}");
    assert_counters_agree(&app, "after expiry").await;
    app.cleanup().await;
}
