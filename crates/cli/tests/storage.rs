//! Storage rules that the API alone cannot show, on both engines.

mod common;

use common::{Engine, TestApp, fresh_database_url};
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::store::{IdempotencyClaim, SavedResponse};
use partnerloop_app::{Store, StoreError};
use partnerloop_domain::ids::PartnerId;
use partnerloop_store::{SqlStore, StoreOptions};

on_both_engines!(
    a_stale_update_is_refused_and_changes_nothing,
    an_idempotency_claim_is_exclusive_until_saved_or_abandoned,
    migrations_are_idempotent_and_safe_to_run_concurrently,
    an_instance_setting_is_initialised_once,
    one_bad_registration_in_a_group_commit_fails_alone,
);

async fn a_stale_update_is_refused_and_changes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let created = app.create_partner(&app.admin, "Racer", "r@race.example").await;
    let ws = app.store.workspace_by_slug("default").await.unwrap();
    let id = PartnerId::from_string(created["id"].as_str().unwrap());
    let read = app.store.partner(&ws.id, &id).await.unwrap();
    let audit = |action: &str| partnerloop_app::store::AuditEntry {
        at: Timestamp::now(),
        actor: "system:test".into(),
        action: action.into(),
        entity: "partner".into(),
        entity_id: id.to_string(),
        before: None,
        after: None,
    };
    let mut first = read.clone();
    first.name = "First writer".into();
    first.updated_at = read.updated_at + SignedDuration::from_millis(1);
    app.store.update_partner(&ws.id, &first, read.updated_at, &audit("first")).await.unwrap();
    let mut second = read.clone();
    second.name = "Second writer".into();
    second.updated_at = read.updated_at + SignedDuration::from_millis(2);
    let err = app.store.update_partner(&ws.id, &second, read.updated_at, &audit("second")).await.unwrap_err();
    assert!(matches!(err, StoreError::Stale), "{err:?}");
    assert_eq!(app.store.partner(&ws.id, &id).await.unwrap().name, "First writer");
    let actions: Vec<_> = app.store.audit_for(&ws.id, id.as_str()).await.unwrap().into_iter().map(|a| a.action).collect();
    assert_eq!(actions, ["partner.created", "first"], "the refused write left no audit row");
    app.cleanup().await;
}

async fn an_idempotency_claim_is_exclusive_until_saved_or_abandoned(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let s = app.store.as_ref();
    let now = Timestamp::now();
    assert_eq!(s.claim_idempotency_key("scope", "k", "h1", now).await.unwrap(), IdempotencyClaim::New);
    assert_eq!(s.claim_idempotency_key("scope", "k", "h1", now).await.unwrap(), IdempotencyClaim::InProgress);
    assert_eq!(s.claim_idempotency_key("scope", "k", "h2", now).await.unwrap(), IdempotencyClaim::Mismatch);
    assert_eq!(s.claim_idempotency_key("other", "k", "h2", now).await.unwrap(), IdempotencyClaim::New, "scopes are separate");
    // A claim whose request died is taken over after five minutes.
    let later = now + SignedDuration::from_secs(301);
    assert_eq!(s.claim_idempotency_key("scope", "k", "h1", later).await.unwrap(), IdempotencyClaim::New);
    let saved = SavedResponse { status: 201, content_type: "application/json".into(), body: "{\"id\":1}".into() };
    s.save_idempotent_response("scope", "k", &saved).await.unwrap();
    assert_eq!(s.claim_idempotency_key("scope", "k", "h1", later).await.unwrap(), IdempotencyClaim::Replay(saved));
    // A released claim (the request failed on our side) may be retried.
    s.release_idempotency_key("other", "k").await.unwrap();
    assert_eq!(s.claim_idempotency_key("other", "k", "h3", now).await.unwrap(), IdempotencyClaim::New);
    app.cleanup().await;
}

async fn migrations_are_idempotent_and_safe_to_run_concurrently(engine: Engine) {
    let (url, _dir, pg) = fresh_database_url(engine).await;
    let a = SqlStore::connect(&url, &StoreOptions::default()).await.unwrap();
    let b = SqlStore::connect(&url, &StoreOptions::default()).await.unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    a.migrate().await.unwrap();
    a.ping().await.unwrap();
    a.close().await;
    b.close().await;
    drop_pg(pg).await;
}

async fn an_instance_setting_is_initialised_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let first = app.store.instance_setting_or_init("test_setting", "one".into()).await.unwrap();
    let second = app.store.instance_setting_or_init("test_setting", "two".into()).await.unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
    app.cleanup().await;
}

async fn drop_pg(pg: Option<(String, String)>) {
    if let Some((admin_url, name)) = pg {
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&admin).await.unwrap();
    }
}

/// The two engines' schemas must not drift apart: same tables, same
/// columns, same portable types.
#[tokio::test]
async fn the_sqlite_and_postgres_schemas_match() {
    if !common::postgres_available("the_sqlite_and_postgres_schemas_match") {
        return;
    }
    let (sqlite_url, _dir, _) = fresh_database_url(Engine::Sqlite).await;
    let (pg_url, _, pg) = fresh_database_url(Engine::Postgres).await;
    let sqlite = SqlStore::connect(&sqlite_url, &StoreOptions::default()).await.unwrap();
    let postgres = SqlStore::connect(&pg_url, &StoreOptions::default()).await.unwrap();
    sqlite.migrate().await.unwrap();
    postgres.migrate().await.unwrap();
    let a = sqlite.schema_outline().await.unwrap();
    let b = postgres.schema_outline().await.unwrap();
    assert!(a.len() > 50, "the outline reads real columns: {a:?}");
    assert_eq!(a, b);
    postgres.close().await;
    drop_pg(pg).await;
}

#[tokio::test]
async fn every_unique_index_is_known_to_the_error_mapping() {
    let (url, _dir, _) = fresh_database_url(Engine::Sqlite).await;
    let store = SqlStore::connect(&url, &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%_uq' ORDER BY name")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut known: Vec<String> = partnerloop_store::UNIQUE_CONSTRAINTS.iter().map(|(n, _)| (*n).to_owned()).collect();
    known.sort();
    assert_eq!(names, known);
}

#[tokio::test]
async fn a_bad_database_url_is_an_error_not_a_panic() {
    assert!(SqlStore::connect("mysql://x", &StoreOptions::default()).await.is_err());
    let err = SqlStore::connect("postgres://nobody@127.0.0.1:1/none", &StoreOptions::default()).await;
    assert!(matches!(err, Err(StoreError::Other(_))));
}

async fn one_bad_registration_in_a_group_commit_fails_alone(engine: Engine) {
    use partnerloop_app::store::{NewRegistration, Registered};
    use partnerloop_domain::company::CompanyDomain;
    use partnerloop_domain::referral::{Channel, Decision, Outcome, Referral, ReferralStatus};
    let app = TestApp::spawn(engine).await;
    let partner = app.create_partner(&app.admin, "Batcher", "b@batch.example").await;
    let ws = app.store.workspace_by_slug("default").await.unwrap();
    let now = Timestamp::now();
    let make = |i: usize, partner_id: &str| {
        let referral = Referral {
            id: partnerloop_app::ids::referral_id(now),
            partner_id: PartnerId::from_string(partner_id),
            status: ReferralStatus::PendingReview,
            channel: Channel::Api,
            company_name: format!("Company {i}"),
            company_domain: CompanyDomain::parse("d", &format!("company{i}.example")).unwrap(),
            contact_name: "C".into(),
            contact_email: partnerloop_domain::Email::parse("e", &format!("c@company{i}.example")).unwrap(),
            contact_title: None,
            context: None,
            estimated_value: None,
            decision: Decision { outcome: Outcome::Review, reasons: vec![], decided_at: now, decided_by: "rules".into() },
            protection: None,
            stage: None,
            deal_id: None,
            amount: None,
            closed_at: None,
            dispute: None,
            created_at: now,
            updated_at: now,
        };
        let audit = partnerloop_app::store::AuditEntry {
            at: now,
            actor: "system:test".into(),
            action: "referral.registered".into(),
            entity: "referral".into(),
            entity_id: referral.id.to_string(),
            before: None,
            after: None,
        };
        NewRegistration {
            referral,
            deal: None,
            events: vec![],
            audit,
            redecide: Box::new(|_| (Outcome::Review, vec![])),
            first_referral: true,
        }
    };
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = app.store.clone();
        let ws = ws.id.clone();
        // Registration 7 names a partner that does not exist: its insert fails.
        let reg = make(i, if i == 7 { "prt_missing" } else { partner["id"].as_str().unwrap() });
        tasks.push(tokio::spawn(async move { store.register_referral(&ws, reg).await }));
    }
    let mut ok = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(Registered::Created(_)) => ok += 1,
            Ok(Registered::Existing(_)) => panic!("nothing existed"),
            Err(e) => assert_eq!(i, 7, "only the bad one fails: {e:?}"),
        }
    }
    assert_eq!(ok, 19);
    let page =
        app.store.list_referrals(&ws.id, &Default::default(), &partnerloop_app::store::Page { limit: 100, after: None }).await.unwrap();
    assert_eq!(page.items.len(), 19);
    app.cleanup().await;
}
