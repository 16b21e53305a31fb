//! Property test of the commissions ledger against the real SQLite store:
//! random sequences of wins, duplicate wins, wins taken back, reversals,
//! releases, payouts, payments and cancellations keep the books balanced.
//!
//! After every sequence, per partner and currency:
//! - accrued (accrual and adjustment entries) = pending + payable + paid + reversed;
//! - the entries agree with the commissions' statuses (reversed and paid sums);
//! - no commission is paid twice, or sits in two live batches;
//! - a referral holds at most one live accrual;
//! - a payable balance is below zero only while a clawback (adjustment) is outstanding;
//! - what the paid batches say they paid is what the ledger says was paid.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{Engine, TestApp, body};
use jiff::{SignedDuration, Timestamp};
use partnerloop_app::Ctx;
use partnerloop_app::ledger::CommissionFilter;
use partnerloop_app::store::{Page, Store};
use partnerloop_domain::commission::{CommissionKind, CommissionStatus, EntryKind, PayoutStatus};
use partnerloop_domain::deal::Stage;
use partnerloop_domain::referral::ReferralId;
use partnerloop_domain::{Currency, Money};
use proptest::prelude::*;
use serde_json::json;

const REFERRALS: usize = 6;

#[derive(Debug, Clone)]
enum Op {
    Win { referral: usize, cents: i64, eur: bool },
    Unwin { referral: usize },
    Reverse { nth: usize },
    Advance { days: i64 },
    Payout { eur: bool },
    MarkPaid { nth: usize },
    Cancel { nth: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..REFERRALS, 1_000i64..5_000_000, any::<bool>()).prop_map(|(referral, cents, eur)| Op::Win { referral, cents, eur }),
        1 => (0..REFERRALS).prop_map(|referral| Op::Unwin { referral }),
        2 => (0usize..40).prop_map(|nth| Op::Reverse { nth }),
        2 => (1i64..20).prop_map(|days| Op::Advance { days }),
        2 => any::<bool>().prop_map(|eur| Op::Payout { eur }),
        2 => (0usize..8).prop_map(|nth| Op::MarkPaid { nth }),
        1 => (0usize..8).prop_map(|nth| Op::Cancel { nth }),
    ]
}

struct World {
    app: TestApp,
    ws: partnerloop_domain::ids::WorkspaceId,
    referrals: Vec<ReferralId>,
    now: Timestamp,
}

impl World {
    async fn new() -> World {
        let app = TestApp::spawn(Engine::Sqlite).await;
        let (s, _) = body(
            app.post(
                "/api/v1/commission-plans",
                &app.admin,
                &json!({"name": "P", "kind": "percent", "rate": "0.125", "hold_days": 10, "default": true}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201);
        let mut partners = Vec::new();
        for i in 0..2 {
            let partner = app.create_partner(&app.admin, &format!("Prop Partner {i}"), &format!("p{i}@prop{i}.example")).await;
            let id = partner["id"].as_str().unwrap().to_owned();
            let r = app.request(reqwest::Method::PUT, &format!("/api/v1/partners/{id}/payout-details"), Some(&app.admin));
            assert_eq!(r.json(&json!({"method": "credit"})).send().await.unwrap().status(), 200);
            partners.push(id);
        }
        let mut referrals = Vec::new();
        for (i, company) in
            ["Alpha Works", "Bravo Systems", "Charlie Foods", "Delta Freight", "Echo Labs", "Foxtrot Media"].iter().enumerate()
        {
            let domain = format!("{}.example", company.split(' ').next().unwrap().to_lowercase());
            let b = json!({"partner_id": partners[i % 2], "company": {"name": company, "domain": domain}, "contact": {"name": "C", "email": format!("c@{domain}")}});
            let (s, r) = body(app.post("/api/v1/referrals", &app.admin, &b).await).await;
            assert_eq!((s, r["status"].as_str()), (201, Some("approved")), "{r}");
            referrals.push(ReferralId::from_string(r["id"].as_str().unwrap()));
        }
        let ws = app.store.workspace_by_slug("default").await.unwrap().id;
        World { app, ws, referrals, now: Timestamp::now() }
    }

    fn ctx(&self) -> Ctx {
        Ctx::system(self.ws.clone(), "proptest", self.now)
    }

    async fn payouts(&self) -> Vec<partnerloop_app::ledger::Payout> {
        self.app.store.list_payouts(&self.ws, &Page { limit: 500, after: None }).await.unwrap().items
    }

    async fn apply(&mut self, op: &Op) {
        self.now += SignedDuration::from_secs(1);
        let store = self.app.store.as_ref();
        let ctx = self.ctx();
        let result = match op {
            Op::Win { referral, cents, eur } => {
                let currency = if *eur { Currency::parse("c", "EUR").unwrap() } else { Currency::USD };
                let amount = Some(Money::from_minor(*cents, currency));
                partnerloop_app::referrals::change_stage(store, &ctx, &self.referrals[*referral], Stage::ClosedWon, amount)
                    .await
                    .map(|_| ())
            }
            Op::Unwin { referral } => {
                partnerloop_app::referrals::change_stage(store, &ctx, &self.referrals[*referral], Stage::Negotiation, None)
                    .await
                    .map(|_| ())
            }
            Op::Reverse { nth } => {
                let all = store
                    .list_commissions(&self.ws, &CommissionFilter::default(), self.now, &Page { limit: 500, after: None })
                    .await
                    .unwrap()
                    .items;
                match all.get(nth % all.len().max(1)) {
                    Some(c) => partnerloop_app::commissions::reverse(store, &ctx, &c.id, "proptest".into()).await.map(|_| ()),
                    None => Ok(()),
                }
            }
            Op::Advance { days } => {
                self.now += SignedDuration::from_hours(24 * days);
                partnerloop_app::commissions::release_due(store, None, self.now).await.map(|_| ())
            }
            Op::Payout { eur } => {
                let currency = if *eur { Currency::parse("c", "EUR").unwrap() } else { Currency::USD };
                partnerloop_app::payouts::create(store, &ctx, currency).await.map(|_| ())
            }
            // Any batch, drafts or not: paying or cancelling twice must be refused.
            Op::MarkPaid { nth } | Op::Cancel { nth } => {
                let all = self.payouts().await;
                match all.get(nth % all.len().max(1)) {
                    Some(p) if matches!(op, Op::MarkPaid { .. }) => {
                        partnerloop_app::payouts::mark_paid(store, &ctx, &p.id, Some("ref".into())).await.map(|_| ())
                    }
                    Some(p) => partnerloop_app::payouts::cancel(store, &ctx, &p.id).await.map(|_| ()),
                    None => Ok(()),
                }
            }
        };
        match result {
            Ok(()) | Err(partnerloop_app::AppError::Conflict { .. }) => {}
            Err(e) => panic!("{op:?} failed: {e:?}"),
        }
    }

    async fn check(&self) {
        let store = self.app.store.as_ref();
        let all = store
            .list_commissions(&self.ws, &CommissionFilter::default(), self.now, &Page { limit: 500, after: None })
            .await
            .unwrap()
            .items;
        #[derive(Default, Debug)]
        struct Books {
            accrued: i64,
            by_status: BTreeMap<&'static str, i64>,
            entry_accrued: i64,
            entry_reversed: i64,
            entry_paid: i64,
            outstanding_clawback: bool,
        }
        let mut books: HashMap<(String, String), Books> = HashMap::new();
        let mut live_accruals: HashMap<String, usize> = HashMap::new();
        for c in &all {
            let b = books.entry((c.partner_id.to_string(), c.amount.currency().code().to_owned())).or_default();
            let status = c.status_at(self.now);
            b.accrued += c.amount.minor();
            *b.by_status.entry(status.as_str()).or_default() += c.amount.minor();
            if c.kind == CommissionKind::Adjustment && status == CommissionStatus::Payable {
                b.outstanding_clawback = true;
            }
            let adjusted = store.adjustment_of(&self.ws, &c.id).await.unwrap().is_some();
            if c.kind == CommissionKind::Accrual && status != CommissionStatus::Reversed && !adjusted {
                *live_accruals.entry(c.referral_id.to_string()).or_default() += 1;
            }
            let entries = store.commission_entries(&self.ws, &c.id, self.now).await.unwrap();
            let count = |k: EntryKind| entries.iter().filter(|e| e.kind == k).count();
            assert!(count(EntryKind::Paid) <= 1, "paid twice: {entries:?}");
            assert!(count(EntryKind::Batched) <= count(EntryKind::Unbatched) + 1, "in two live batches: {entries:?}");
            assert_eq!(count(EntryKind::Paid) == 1, c.status == CommissionStatus::Paid, "{c:?} {entries:?}");
            for e in &entries {
                match e.kind {
                    EntryKind::Accrued | EntryKind::Adjusted => b.entry_accrued += e.amount.minor(),
                    EntryKind::Reversed => b.entry_reversed -= e.amount.minor(),
                    EntryKind::Paid => b.entry_paid += e.amount.minor(),
                    _ => {}
                }
            }
        }
        for (key, b) in &books {
            let sum: i64 = b.by_status.values().sum();
            assert_eq!(b.accrued, sum, "{key:?}: accrued ≠ pending + payable + paid + reversed: {b:?}");
            assert_eq!(b.entry_accrued, b.accrued, "{key:?}: entries {b:?}");
            assert_eq!(b.entry_reversed, b.by_status.get("reversed").copied().unwrap_or(0), "{key:?}: {b:?}");
            assert_eq!(b.entry_paid, b.by_status.get("paid").copied().unwrap_or(0), "{key:?}: {b:?}");
            let payable = b.by_status.get("payable").copied().unwrap_or(0);
            assert!(payable >= 0 || b.outstanding_clawback, "{key:?}: negative payable balance without a clawback: {b:?}");
        }
        assert!(live_accruals.values().all(|n| *n <= 1), "a referral with two live accruals: {live_accruals:?}");
        let paid_by_batches: i64 = self.payouts().await.iter().filter(|p| p.status == PayoutStatus::Paid).map(|p| p.total.minor()).sum();
        let paid_by_ledger: i64 = books.values().map(|b| b.entry_paid).sum();
        assert_eq!(paid_by_batches, paid_by_ledger, "batches and ledger disagree on what was paid");
        for p in self.payouts().await {
            assert!(p.items.iter().all(|i| i.amount.minor() > 0), "a batch pays a non-positive amount: {p:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn the_ledger_stays_balanced_under_any_sequence(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let mut world = World::new().await;
            for op in &ops {
                world.apply(op).await;
            }
            world.check().await;
            world.app.cleanup().await;
        });
    }
}
