//! Partner tiers through HTTP, on SQLite and PostgreSQL: the ladder and its
//! validation, promotion at once after wins, demotion only after the grace
//! period, history with actor and reason, a partner's own view, and a
//! tiered plan paying the rate of the tier held on the won date.

mod common;

use common::{Engine, TestApp, body, problem_fields};
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::Ctx;
use serde_json::{Value, json};

on_both_engines!(
    a_ladder_is_validated_field_by_field,
    wins_promote_at_once_to_the_highest_tier_met,
    a_tier_drops_only_after_the_grace_period,
    concurrent_evaluations_change_a_tier_once,
    a_partner_reads_its_own_tier_but_not_anothers,
    a_tiered_plan_pays_the_gold_rate_after_promotion,
    a_win_promotes_at_once_without_waiting_for_the_schedule,
);

struct Program {
    app: TestApp,
    partners: Vec<(String, String)>,
}

impl Program {
    /// A workspace with `n` partners with tokens (and no commission plan).
    async fn new(engine: Engine, n: usize) -> Program {
        let app = TestApp::spawn(engine).await;
        let partners = app.partners_with_tokens(n).await;
        Program { app, partners }
    }

    fn id(&self, i: usize) -> &str {
        &self.partners[i].0
    }

    fn token(&self, i: usize) -> &str {
        &self.partners[i].1
    }

    async fn put_ladder(&self, token: &str, ladder: &Value) -> (u16, Value) {
        body(self.app.request(reqwest::Method::PUT, "/api/v1/tiers", Some(token)).json(ladder).send().await.unwrap()).await
    }

    /// Registers an account for partner `i` and wins it; returns the referral id.
    async fn win(&self, i: usize, company: &str, amount: &str, currency: &str) -> String {
        let domain = format!("{}.example", company.to_lowercase().replace(' ', "-"));
        let b = json!({"company": {"name": company, "domain": domain}, "contact": {"name": "Pat Buyer", "email": format!("pat@{domain}")}});
        let (s, r) = body(self.app.post("/api/v1/referrals", self.token(i), &b).await).await;
        assert_eq!((s, r["status"].as_str()), (201, Some("approved")), "{r}");
        let id = r["id"].as_str().unwrap().to_owned();
        let won = json!({"stage": "closed_won", "amount": {"amount": amount, "currency": currency}});
        let (s, r) = body(self.app.post(&format!("/api/v1/referrals/{id}/stage"), &self.app.admin, &won).await).await;
        assert_eq!((s, r["status"].as_str()), (200, Some("won")), "{r}");
        id
    }

    async fn evaluate(&self) -> Value {
        let (s, report) = body(self.app.post("/api/v1/tiers/evaluate", &self.app.admin, &json!({})).await).await;
        assert_eq!(s, 200, "{report}");
        report
    }

    /// Evaluates as the system at another time (the grace period passing).
    async fn evaluate_at(&self, now: Timestamp) -> partnerloop_app::tiers::EvaluationReport {
        let ws = partnerloop_app::Store::workspace_by_slug(self.app.store.as_ref(), "default").await.unwrap();
        partnerloop_app::tiers::evaluate_workspace(self.app.store.as_ref(), &Ctx::system(ws.id, "test", now)).await.unwrap()
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        body(self.app.get(path, token).await).await
    }

    async fn tier_of(&self, i: usize) -> Value {
        let (s, p) = self.get(&format!("/api/v1/partners/{}", self.id(i)), &self.app.admin).await;
        assert_eq!(s, 200);
        p["tier"].clone()
    }

    async fn history(&self, i: usize) -> Vec<Value> {
        let (s, h) = self.get(&format!("/api/v1/partners/{}/tier-history", self.id(i)), &self.app.admin).await;
        assert_eq!(s, 200, "{h}");
        h["data"].as_array().unwrap().clone()
    }
}

fn report(r: &Value) -> [u64; 4] {
    ["evaluated", "promoted", "demoted", "at_risk"].map(|k| r[k].as_u64().unwrap())
}

fn counts(r: &partnerloop_app::tiers::EvaluationReport) -> [u64; 4] {
    [r.evaluated, r.promoted, r.demoted, r.at_risk]
}

fn revenue_ladder() -> Value {
    json!({"measure": "won_revenue", "currency": "USD", "tiers": [
        {"slug": "bronze", "name": "Bronze", "benefits": "Partner portal", "threshold": 0},
        {"slug": "silver", "name": "Silver", "benefits": "Co-marketing", "threshold": {"amount": "5000.00", "currency": "USD"}},
        {"slug": "gold", "name": "Gold", "benefits": "Dedicated manager", "threshold": {"amount": "50000.00", "currency": "USD"}},
    ]})
}

fn count_ladder(gold: i64, grace: i64) -> Value {
    json!({"measure": "won_count", "requalification_grace_days": grace, "tiers": [
        {"slug": "bronze", "name": "Bronze", "threshold": 0},
        {"slug": "gold", "name": "Gold", "benefits": "20 % commission", "threshold": gold},
    ]})
}

async fn a_ladder_is_validated_field_by_field(engine: Engine) {
    let p = Program::new(engine, 1).await;
    let admin = p.app.admin.clone();
    assert_eq!(p.get("/api/v1/tiers", &admin).await.0, 404, "no ladder yet");
    let (s, _) = body(p.app.post("/api/v1/tiers/evaluate", &admin, &json!({})).await).await;
    assert_eq!(s, 409, "nothing to evaluate without a ladder");
    let cases = [
        (json!({"measure": "won_deals", "tiers": []}), vec!["measure"]),
        (json!({"measure": "won_count", "tiers": []}), vec!["tiers"]),
        (
            json!({"measure": "won_count", "currency": "USD", "requalification_grace_days": -1, "tiers": [{"slug": "a", "name": "A", "threshold": 0}]}),
            vec!["currency", "requalification_grace_days"],
        ),
        (
            json!({"measure": "won_count", "requalification_grace_days": 731, "tiers": [
            {"slug": "gold", "name": "Gold", "threshold": 5},
            {"slug": "Gold", "name": "Silver", "threshold": 3},
            {"slug": "x y", "name": "", "threshold": "ten"}]}),
            vec!["tiers[2].threshold"],
        ),
        (
            json!({"measure": "won_count", "requalification_grace_days": 731, "tiers": [
            {"slug": "gold", "name": "Gold", "threshold": 5},
            {"slug": "Gold", "name": "Silver", "threshold": 3},
            {"slug": "x y", "name": "", "threshold": 10}]}),
            vec!["requalification_grace_days", "tiers[1].slug", "tiers[1].threshold", "tiers[2].slug", "tiers[2].name"],
        ),
        (json!({"measure": "won_revenue", "tiers": [{"slug": "a", "name": "A", "threshold": 0}]}), vec!["currency"]),
        (
            json!({"measure": "won_revenue", "tiers": [
            {"slug": "a", "name": "A", "threshold": {"amount": "10.00", "currency": "USD"}},
            {"slug": "b", "name": "B", "threshold": {"amount": "20.00", "currency": "EUR"}},
            {"slug": "c", "name": "C", "threshold": 30},
            {"slug": "d", "name": "D", "threshold": {"amount": "1.001", "currency": "USD"}}]}),
            vec!["tiers[1].threshold.currency", "tiers[2].threshold", "tiers[3].threshold.amount"],
        ),
        (json!({"measure": "won_count", "tiers": [{"slug": "a", "name": "A"}]}), vec!["tiers[0].threshold"]),
    ];
    for (ladder, fields) in cases {
        let (s, problem) = p.put_ladder(&admin, &ladder).await;
        assert_eq!((s, problem_fields(&problem)), (422, fields.iter().map(|f| f.to_string()).collect()), "{ladder} → {problem}");
        assert_eq!(problem["type"], "/problems/validation");
    }
    // Partners may read the ladder, never write it or evaluate.
    assert_eq!(p.put_ladder(p.token(0), &revenue_ladder()).await.0, 403);
    let (s, l) = p.put_ladder(&admin, &revenue_ladder()).await;
    assert_eq!((s, l["measure"].as_str(), l["requalification_grace_days"].as_u64()), (200, Some("won_revenue"), Some(90)), "{l}");
    assert_eq!(l["tiers"][0]["threshold"], json!({"amount": "0.00", "currency": "USD"}));
    assert_eq!(l["tiers"][2]["threshold"], json!({"amount": "50000.00", "currency": "USD"}));
    let (s, read) = p.get("/api/v1/tiers", p.token(0)).await;
    assert_eq!((s, &read["tiers"]), (200, &l["tiers"]));
    assert_eq!(body(p.app.post("/api/v1/tiers/evaluate", p.token(0), &json!({})).await).await.0, 403);
    // Currency taken from the thresholds when not given; the ladder is replaced whole.
    let eur =
        json!({"measure": "won_revenue", "tiers": [{"slug": "one", "name": "One", "threshold": {"amount": "1.00", "currency": "EUR"}}]});
    let (s, l) = p.put_ladder(&admin, &eur).await;
    assert_eq!((s, l["currency"].as_str(), l["tiers"].as_array().unwrap().len()), (200, Some("EUR"), 1), "{l}");
    p.app.cleanup().await;
}

async fn wins_promote_at_once_to_the_highest_tier_met(engine: Engine) {
    let p = Program::new(engine, 2).await;
    assert_eq!(p.put_ladder(&p.app.admin, &revenue_ladder()).await.0, 200);
    p.win(0, "Globex", "30000.00", "USD").await;
    p.win(0, "Initech", "22000.00", "USD").await;
    p.win(1, "Umbrella", "900000.00", "EUR").await;
    // Each win evaluated its partner at once: nothing is left to promote.
    assert_eq!(report(&p.evaluate().await), [2, 0, 0, 0]);
    assert_eq!(p.tier_of(0).await, "gold", "52,000 USD reaches gold");
    assert_eq!(p.tier_of(1).await, "bronze", "only the ladder's currency counts");
    let h = p.history(0).await;
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!((&h[0]["from_tier"], &h[0]["to_tier"]), (&Value::Null, &json!("silver")));
    assert_eq!((&h[1]["from_tier"], &h[1]["to_tier"]), (&json!("silver"), &json!("gold")));
    assert_eq!(h[1]["reason"], "trailing-12-month won revenue 52,000.00 USD reached Gold (50,000.00 USD)");
    assert!(h[1]["actor"].as_str().unwrap().starts_with("admin:key_"), "{}", h[1]);
    assert_eq!(h[1]["measure_value"], json!({"amount": "52000.00", "currency": "USD"}));
    // Nothing changed: nothing moves, nothing is written.
    assert_eq!(report(&p.evaluate().await), [2, 0, 0, 0]);
    assert_eq!(p.history(0).await.len(), 2);
    // Progress: the top tier has no next; bronze needs the whole silver threshold.
    let (_, gold) = p.get(&format!("/api/v1/partners/{}/tier", p.id(0)), p.token(0)).await;
    assert_eq!(
        (gold["tier"].as_str(), gold["benefits"].as_str(), &gold["next_tier"]),
        (Some("gold"), Some("Dedicated manager"), &Value::Null)
    );
    let (_, bronze) = p.get(&format!("/api/v1/partners/{}/tier", p.id(1)), p.token(1)).await;
    assert_eq!(bronze["next_tier"]["slug"], "silver");
    assert_eq!(bronze["remaining"], json!({"amount": "5000.00", "currency": "USD"}));
    assert_eq!(bronze["measure_value"], json!({"amount": "0.00", "currency": "USD"}));
    assert_eq!(bronze["at_risk_since"], Value::Null);
    p.app.cleanup().await;
}

async fn a_tier_drops_only_after_the_grace_period(engine: Engine) {
    let p = Program::new(engine, 1).await;
    assert_eq!(p.put_ladder(&p.app.admin, &count_ladder(2, 30)).await.0, 200);
    p.win(0, "Globex", "100.00", "USD").await;
    p.win(0, "Initech", "100.00", "USD").await;
    assert_eq!(report(&p.evaluate().await), [1, 0, 0, 0], "the second win promoted at once");
    assert_eq!(p.tier_of(0).await, "gold");
    // A year on, the wins have left the window: at risk, not yet demoted.
    let now = Timestamp::now();
    let fell = now + SignedDuration::from_hours(24 * 366);
    assert_eq!(counts(&p.evaluate_at(fell).await), [1, 0, 0, 1]);
    assert_eq!(counts(&p.evaluate_at(fell + SignedDuration::from_hours(24 * 29)).await), [1, 0, 0, 1]);
    assert_eq!(p.tier_of(0).await, "gold", "inside the 30-day grace period");
    // The grace period counts from the first evaluation that saw the fall.
    let after = fell + SignedDuration::from_hours(24 * 30);
    let total = partnerloop_app::tiers::evaluate_all(p.app.store.as_ref(), after).await.unwrap();
    assert_eq!(counts(&total), [1, 0, 1, 0]);
    assert_eq!(p.tier_of(0).await, "bronze");
    let h = p.history(0).await;
    assert_eq!(h.iter().map(|e| e["to_tier"].as_str().unwrap()).collect::<Vec<_>>(), ["bronze", "gold", "bronze"]);
    assert_eq!((h[2]["from_tier"].as_str(), h[2]["actor"].as_str()), (Some("gold"), Some("system:scheduler")));
    let reason = h[2]["reason"].as_str().unwrap();
    assert!(reason.starts_with("trailing-12-month won referrals 0 below Gold (2) since "), "{reason}");
    assert!(reason.ends_with("longer than the 30-day requalification grace period; now Bronze (0)"), "{reason}");
    assert_eq!(h[2]["measure_value"], 0);
    p.app.cleanup().await;
}

async fn concurrent_evaluations_change_a_tier_once(engine: Engine) {
    let p = Program::new(engine, 3).await;
    assert_eq!(p.put_ladder(&p.app.admin, &count_ladder(1, 90)).await.0, 200);
    p.win(0, "Globex", "100.00", "USD").await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let req = p.app.request(reqwest::Method::POST, "/api/v1/tiers/evaluate", Some(&p.app.admin));
        tasks.push(tokio::spawn(async move { body(req.send().await.unwrap()).await }));
    }
    let mut promoted = 0;
    for t in tasks {
        let (s, r) = t.await.unwrap();
        assert_eq!(s, 200, "{r}");
        promoted += r["promoted"].as_u64().unwrap();
    }
    assert_eq!(promoted, 2, "the two partners without a win promoted by exactly one evaluation (the winner was at its win)");
    for i in 0..3 {
        assert_eq!(p.history(i).await.len(), 1, "one history row for partner {i}");
    }
    assert_eq!((p.tier_of(0).await, p.tier_of(1).await), (json!("gold"), json!("bronze")));
    p.app.cleanup().await;
}

async fn a_partner_reads_its_own_tier_but_not_anothers(engine: Engine) {
    let p = Program::new(engine, 2).await;
    assert_eq!(p.put_ladder(&p.app.admin, &count_ladder(1, 90)).await.0, 200);
    p.win(0, "Globex", "100.00", "USD").await;
    let (s, other) = p.get(&format!("/api/v1/partners/{}/tier", p.id(1)), p.token(1)).await;
    assert_eq!((s, &other["tier"], &other["measure_value"]), (200, &Value::Null, &json!(0)), "{other}");
    assert_eq!((other["next_tier"]["slug"].as_str(), &other["remaining"]), (Some("bronze"), &json!(0)), "met, awaiting evaluation");
    let (_, mine) = p.get(&format!("/api/v1/partners/{}/tier", p.id(0)), p.token(0)).await;
    assert_eq!(
        (mine["tier"].as_str(), mine["tier_name"].as_str(), mine["benefits"].as_str()),
        (Some("gold"), Some("Gold"), Some("20 % commission"))
    );
    let (s, h) = p.get(&format!("/api/v1/partners/{}/tier-history", p.id(0)), p.token(0)).await;
    assert_eq!((s, h["data"].as_array().unwrap().len()), (200, 1));
    for path in ["tier", "tier-history"] {
        assert_eq!(p.get(&format!("/api/v1/partners/{}/{path}", p.id(0)), p.token(1)).await.0, 404, "{path}");
        assert_eq!(p.get(&format!("/api/v1/partners/prt_missing/{path}"), &p.app.admin).await.0, 404, "{path}");
    }
    p.app.cleanup().await;
}

async fn a_tiered_plan_pays_the_gold_rate_after_promotion(engine: Engine) {
    let p = Program::new(engine, 1).await;
    let plan = json!({"name": "By tier", "kind": "tiered", "rates": {"gold": "0.20", "bronze": "0.10"}, "default": true});
    assert_eq!(body(p.app.post("/api/v1/commission-plans", &p.app.admin, &plan).await).await.0, 201);
    assert_eq!(p.put_ladder(&p.app.admin, &count_ladder(2, 90)).await.0, 200);
    p.evaluate().await;
    let first = p.win(0, "Globex", "1000.00", "USD").await;
    let second = p.win(0, "Initech", "1000.00", "USD").await;
    let third = p.win(0, "Umbrella", "1000.00", "USD").await;
    assert_eq!(p.tier_of(0).await, "gold", "promoted by the second win, after its commission was booked");
    let mut paid = Vec::new();
    for r in [first, second, third] {
        let (_, list) = p.get(&format!("/api/v1/commissions?referral_id={r}"), &p.app.admin).await;
        paid.push(list["data"][0]["amount"]["amount"].as_str().unwrap().to_owned());
    }
    assert_eq!(paid, ["100.00", "100.00", "200.00"], "the rate of the tier held on each won date");
    p.app.cleanup().await;
}

async fn a_win_promotes_at_once_without_waiting_for_the_schedule(engine: Engine) {
    let p = Program::new(engine, 2).await;
    let (s, _) = p.put_ladder(&p.app.admin, &count_ladder(2, 30)).await;
    assert_eq!(s, 200);
    p.win(0, "Acme", "100.00", "USD").await;
    assert_eq!(p.tier_of(0).await, "bronze", "one win: on the ladder, not yet gold");
    p.win(0, "Globex", "100.00", "USD").await;
    assert_eq!(p.tier_of(0).await, "gold", "the second win promotes at once");
    assert!(p.tier_of(1).await.is_null(), "only the winning partner is evaluated");
    let h = p.history(0).await;
    let moves: Vec<&str> = h.iter().map(|e| e["to_tier"].as_str().unwrap()).collect();
    assert!(moves.contains(&"gold") && moves.contains(&"bronze") && moves.len() == 2, "{h:?}");
    p.app.cleanup().await;
}
