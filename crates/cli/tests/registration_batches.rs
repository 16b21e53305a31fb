//! Registrations stored in one group-commit batch, on both engines: on
//! SQLite through the whole-batch fast path (or, when it fails, one at a
//! time), on PostgreSQL one at a time. The outcomes and rows must be the
//! same either way: first registration wins, in arrival order.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use common::{Engine, TestApp};
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::Store;
use partnerloop_app::store::{AuditEntry, NewRegistration, Registered, StoreResult, TimelineEvent};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::{Deal, DealSource, Stage};
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::referral::{Channel, Decision, Outcome, Protection, Reason, Referral, ReferralId, ReferralStatus};
use partnerloop_domain::rules::RuleId;
use partnerloop_domain::{Currency, Email, Money};
use partnerloop_store::RegistrationBatches;

on_both_engines!(
    a_batch_of_registrations_of_one_account_keeps_the_first_in_arrival_order,
    a_batch_the_fast_path_cannot_store_is_stored_one_at_a_time_without_loss_or_duplicates,
    an_expired_claim_in_the_way_is_dropped_and_the_account_goes_to_the_new_registration,
);

/// A registration as `register` decides it before storing: approved (with
/// its deal and protection) or sent to review.
fn registration(partner: &str, company: &str, domain: &str, email: &str, approved: bool) -> NewRegistration {
    let now = Timestamp::now();
    let deal = approved.then(|| Deal {
        id: partnerloop_app::ids::deal_id(now),
        name: company.into(),
        company_name: company.into(),
        company_domain: Some(CompanyDomain::parse("d", domain).unwrap()),
        stage: Stage::New,
        amount: Money::zero(Currency::USD),
        source: DealSource::Partner,
        owner_email: None,
        created_at: now,
        closed_at: None,
        updated_at: now,
    });
    let outcome = if approved { Outcome::Approved } else { Outcome::Review };
    let referral = Referral {
        id: partnerloop_app::ids::referral_id(now),
        partner_id: PartnerId::from_string(partner),
        status: outcome.status(),
        channel: Channel::Api,
        company_name: company.into(),
        company_domain: CompanyDomain::parse("d", domain).unwrap(),
        contact_name: "C".into(),
        contact_email: Email::parse("e", email).unwrap(),
        contact_title: None,
        context: None,
        estimated_value: None,
        decision: Decision { outcome, reasons: vec![], decided_at: now, decided_by: "rules".into() },
        protection: approved.then(|| Protection { starts_at: now, expires_at: now + SignedDuration::from_hours(24 * 90) }),
        stage: approved.then_some(Stage::New),
        deal_id: deal.as_ref().map(|d| d.id.clone()),
        amount: None,
        closed_at: None,
        dispute: None,
        created_at: now,
        updated_at: now,
    };
    let audit = AuditEntry {
        at: now,
        actor: format!("partner:{partner}"),
        action: "referral.registered".into(),
        entity: "referral".into(),
        entity_id: referral.id.to_string(),
        before: None,
        after: None,
    };
    let events =
        vec![TimelineEvent { at: now, kind: "submitted".into(), actor: "test".into(), summary: format!("{company} by {partner}") }];
    NewRegistration {
        referral,
        deal,
        events,
        audit,
        // As `register` does: the claimed account goes to review, naming its holder.
        redecide: Box::new(|winner| {
            let reason = Reason {
                rule: RuleId::ActiveReferralOtherPartner,
                detail: format!("claimed on {}", winner.matched_on),
                conflicting_id: Some(winner.referral_id.clone()),
                score: None,
                until: Some(winner.expires_at),
            };
            (Outcome::Review, vec![reason])
        }),
        first_referral: true,
    }
}

type Pending<'a> = Pin<Box<dyn Future<Output = StoreResult<Registered>> + Send + 'a>>;

/// Queues `regs` to the writer in this order, all in one batch: while
/// another connection holds SQLite's write lock the writer is stuck on a
/// first registration (of `blocker`), and the rest wait in its queue.
/// (PostgreSQL stores one at a time in any case: only the order matters.)
async fn register_in_one_batch(
    app: &TestApp,
    engine: Engine,
    ws: &WorkspaceId,
    blocker: &str,
    regs: Vec<NewRegistration>,
) -> Vec<StoreResult<Registered>> {
    let holder = match engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await.unwrap();
            Some((pool, conn))
        }
        Engine::Postgres => None,
    };
    let store = app.store.as_ref();
    let blocker = registration(blocker, "Blocker", "blocker.example", "c@blocker.example", false);
    let mut first: Pending<'_> = Box::pin(store.register_referral(ws, blocker));
    assert!(poll_once(&mut first).await.is_none());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut pending: Vec<Pending<'_>> = Vec::new();
    for reg in regs {
        let mut f: Pending<'_> = Box::pin(store.register_referral(ws, reg));
        // One poll sends the registration to the writer; its answer waits for the batch.
        assert!(poll_once(&mut f).await.is_none(), "answered before the lock was released");
        pending.push(f);
    }
    if let Some((pool, mut conn)) = holder {
        sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
        drop(conn);
        pool.close().await;
    }
    assert!(matches!(first.await.unwrap(), Registered::Created(_)));
    let mut results = Vec::new();
    for f in pending {
        results.push(f.await);
    }
    results
}

async fn poll_once<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        Poll::Ready(match Pin::new(&mut *f).poll(cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        })
    })
    .await
}

fn created(r: &StoreResult<Registered>) -> &Referral {
    match r {
        Ok(Registered::Created(r)) => r,
        other => panic!("expected a new referral, got {other:?}"),
    }
}

fn existing(r: &StoreResult<Registered>) -> &Referral {
    match r {
        Ok(Registered::Existing(r)) => r,
        other => panic!("expected the existing referral, got {other:?}"),
    }
}

/// Who holds the claim on `key`, as the conflict check sees it.
async fn holder_of(app: &TestApp, ws: &WorkspaceId, key: &str) -> Option<String> {
    let nobody = PartnerId::from_string("prt_nobody");
    let found = app.store.conflict_evidence(ws, &nobody, &[key.to_owned()], Timestamp::now()).await.unwrap();
    found.evidence.other_partner_registrations.first().map(|c| c.referral_id.clone())
}

/// The stored referral, its timeline kinds and its audit actions.
async fn stored(app: &TestApp, ws: &WorkspaceId, id: &ReferralId) -> (Referral, Vec<String>, Vec<String>) {
    let r = app.store.referral(ws, id).await.unwrap();
    let kinds = app.store.timeline(ws, id).await.unwrap().into_iter().map(|e| e.kind).collect();
    let actions = app.store.audit_for(ws, id.as_str()).await.unwrap().into_iter().map(|a| a.action).collect();
    (r, kinds, actions)
}

async fn name_log(app: &TestApp, ws: &WorkspaceId) -> Vec<String> {
    app.store.name_log_since(ws, 0, 10_000).await.unwrap().into_iter().map(|e| e.entity_id).collect()
}

fn batches(app: &TestApp) -> RegistrationBatches {
    app.store.registration_batches()
}

async fn a_batch_of_registrations_of_one_account_keeps_the_first_in_arrival_order(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ws = app.store.workspace_by_slug("default").await.unwrap().id;
    let [a, b, c] = ["A", "B", "C"].map(|n| n.to_owned());
    let mut ids = Vec::new();
    for n in [&a, &b, &c] {
        let p = app.create_partner(&app.admin, &format!("Partner {n}"), &format!("p@{}.partners.example", n.to_lowercase())).await;
        ids.push(p["id"].as_str().unwrap().to_owned());
    }
    let (a, b, c) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    // C already holds held.example when the batch comes.
    let held = created(&app.store.register_referral(&ws, registration(c, "Held", "held.example", "x@held.example", true)).await).clone();
    let before = batches(&app);

    let results = register_in_one_batch(
        &app,
        engine,
        &ws,
        c,
        vec![
            registration(a, "Globex", "globex.example", "ann@globex.example", true),
            registration(b, "Globex", "globex.example", "bob@globex.example", true),
            registration(a, "Globex Corp", "globex.example", "amy@globex.example", true),
            registration(b, "Held", "held.example", "y@held.example", true),
            // Claims zeta.example, but loses on globex.example (its contact's domain)…
            registration(c, "Zeta", "zeta.example", "ceo@globex.example", true),
            // …so zeta.example is still free for B.
            registration(b, "Zeta", "zeta.example", "zed@zeta.example", true),
            registration(c, "Held", "held.example", "z@held.example", true),
            registration(a, "Quiet", "quiet.example", "q@quiet.example", false),
        ],
    )
    .await;

    let first = created(&results[0]).clone();
    assert_eq!(first.status, ReferralStatus::Approved);
    let lost = created(&results[1]);
    assert_eq!((lost.status, lost.protection, lost.deal_id.as_ref()), (ReferralStatus::PendingReview, None, None));
    assert_eq!(lost.decision.reasons[0].conflicting_id.as_deref(), Some(first.id.as_str()), "re-decided against the first");
    assert_eq!(existing(&results[2]).id, first.id, "the same partner again: its own referral");
    let against_held = created(&results[3]);
    assert_eq!(against_held.status, ReferralStatus::PendingReview);
    assert_eq!(against_held.decision.reasons[0].conflicting_id.as_deref(), Some(held.id.as_str()));
    let zeta_c = created(&results[4]);
    assert_eq!(zeta_c.status, ReferralStatus::PendingReview);
    assert_eq!(zeta_c.decision.reasons[0].conflicting_id.as_deref(), Some(first.id.as_str()));
    let zeta_b = created(&results[5]).clone();
    assert_eq!(zeta_b.status, ReferralStatus::Approved, "a losing registration claims nothing");
    assert_eq!(existing(&results[6]).id, held.id);
    let quiet = created(&results[7]).clone();
    assert_eq!(quiet.status, ReferralStatus::PendingReview);

    // What is stored is what was answered, once.
    for r in [&first, created(&results[1]), against_held, zeta_c, &zeta_b, &quiet] {
        let (s, kinds, actions) = stored(&app, &ws, &r.id).await;
        assert_eq!((s.status, s.deal_id.clone(), s.decision.reasons.len()), (r.status, r.deal_id.clone(), r.decision.reasons.len()));
        assert_eq!(kinds, ["submitted", "decided"]);
        assert_eq!(actions, ["referral.registered"]);
    }
    let all = app.store.list_referrals(&ws, &Default::default(), &partnerloop_app::store::Page { limit: 100, after: None }).await.unwrap();
    assert_eq!(all.items.len(), 1 + 1 + 6, "the held one, the blocker and six new ones");
    assert_eq!(holder_of(&app, &ws, "domain:globex.example").await.as_deref(), Some(first.id.as_str()));
    assert_eq!(holder_of(&app, &ws, "email:ceo@globex.example").await, None, "a lost registration leaves no claim");
    assert_eq!(holder_of(&app, &ws, "domain:zeta.example").await.as_deref(), Some(zeta_b.id.as_str()));
    assert_eq!(holder_of(&app, &ws, "domain:held.example").await.as_deref(), Some(held.id.as_str()));
    let log = name_log(&app, &ws).await;
    let approved = [format!("{c}/{}", held.id), format!("{a}/{}", first.id), format!("{b}/{}", zeta_b.id)];
    assert_eq!(log, approved, "one name-log row per approved referral, in order");
    for p in [a, b] {
        assert!(app.store.partner(&ws, &PartnerId::from_string(p)).await.unwrap().first_referral_at.is_some());
    }
    let a_first = app.store.partner(&ws, &PartnerId::from_string(a)).await.unwrap().first_referral_at.unwrap();
    assert_eq!(a_first.as_microsecond(), first.created_at.as_microsecond(), "A's first referral is its first in the batch");
    if engine == Engine::Sqlite {
        let after = batches(&app);
        assert_eq!(after.fell_back, before.fell_back, "stored whole: {after:?}");
        assert!(after.whole >= before.whole + 2, "the blocker's batch and this one: {after:?}");
    }
    app.cleanup().await;
}

async fn a_batch_the_fast_path_cannot_store_is_stored_one_at_a_time_without_loss_or_duplicates(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ws = app.store.workspace_by_slug("default").await.unwrap().id;
    let a = app.create_partner(&app.admin, "Partner A", "p@a.partners.example").await["id"].as_str().unwrap().to_owned();
    let b = app.create_partner(&app.admin, "Partner B", "p@b.partners.example").await["id"].as_str().unwrap().to_owned();
    let before = batches(&app);
    let mut regs = Vec::new();
    for i in 0..6 {
        regs.push(registration(&a, &format!("Company {i}"), &format!("c{i}.example"), &format!("x@c{i}.example"), i % 2 == 0));
    }
    // A partner that does not exist: its referral breaks a foreign key,
    // which fails the batch's multi-row insert of referrals.
    regs.push(registration("prt_missing", "Orphan", "orphan.example", "x@orphan.example", true));
    regs.push(registration(&b, "Company 0", "c0.example", "y@c0.example", true));
    let results = register_in_one_batch(&app, engine, &ws, &b, regs).await;

    assert!(results[6].is_err(), "the orphan fails alone: {:?}", results[6]);
    let ours: Vec<Referral> = results.iter().enumerate().filter(|(i, _)| *i != 6).map(|(_, r)| created(r).clone()).collect();
    assert_eq!(ours[6].status, ReferralStatus::PendingReview, "B lost c0.example to A");
    for r in &ours {
        let (s, kinds, actions) = stored(&app, &ws, &r.id).await;
        assert_eq!(s.status, r.status);
        assert_eq!(kinds, ["submitted", "decided"], "events of {} written once", r.id);
        assert_eq!(actions, ["referral.registered"], "audit of {} written once", r.id);
    }
    let all = app.store.list_referrals(&ws, &Default::default(), &partnerloop_app::store::Page { limit: 100, after: None }).await.unwrap();
    assert_eq!(all.items.len(), 1 + 7, "the blocker and seven, none twice, no orphan");
    for i in [0, 2, 4] {
        assert_eq!(holder_of(&app, &ws, &format!("domain:c{i}.example")).await.as_deref(), Some(ours[i].id.as_str()));
    }
    assert_eq!(holder_of(&app, &ws, "domain:orphan.example").await, None);
    let log = name_log(&app, &ws).await;
    let approved: Vec<String> = [0, 2, 4].map(|i| format!("{a}/{}", ours[i].id)).into();
    assert_eq!(log, approved, "the approved ones, once each and in order");
    if engine == Engine::Sqlite {
        assert!(batches(&app).fell_back > before.fell_back, "the fast path gave the batch back: {:?}", batches(&app));
    }
    app.cleanup().await;
}

async fn an_expired_claim_in_the_way_is_dropped_and_the_account_goes_to_the_new_registration(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ws = app.store.workspace_by_slug("default").await.unwrap().id;
    let a = app.create_partner(&app.admin, "Partner A", "p@a.partners.example").await["id"].as_str().unwrap().to_owned();
    let b = app.create_partner(&app.admin, "Partner B", "p@b.partners.example").await["id"].as_str().unwrap().to_owned();
    // A's protection ended yesterday; the expiry job has not freed the account yet.
    let mut old = registration(&a, "Old", "old.example", "x@old.example", true);
    let ended = Timestamp::now() - SignedDuration::from_hours(24);
    old.referral.protection = Some(Protection { starts_at: ended - SignedDuration::from_hours(24 * 90), expires_at: ended });
    created(&app.store.register_referral(&ws, old).await);
    let before = batches(&app);
    let results = register_in_one_batch(
        &app,
        engine,
        &ws,
        &a,
        vec![registration(&b, "Old", "old.example", "y@old.example", true), registration(&a, "New", "new.example", "n@new.example", true)],
    )
    .await;
    let won = created(&results[0]);
    assert_eq!(won.status, ReferralStatus::Approved, "an ended protection does not hold the account");
    assert_eq!(holder_of(&app, &ws, "domain:old.example").await.as_deref(), Some(won.id.as_str()));
    let new = created(&results[1]);
    assert_eq!(holder_of(&app, &ws, "domain:new.example").await.as_deref(), Some(new.id.as_str()));
    if engine == Engine::Sqlite {
        // Dropping the ended claim is left to the one-at-a-time path.
        assert!(batches(&app).fell_back > before.fell_back, "{:?}", batches(&app));
    }
    app.cleanup().await;
}
