//! The tier rules: validation of a ladder, promotion at once, demotion only
//! after the grace period, progress to the next tier.

use super::*;
use proptest::prelude::*;

fn t(slug: &str, threshold: i64) -> Tier {
    Tier { slug: slug.into(), name: slug[..1].to_uppercase() + &slug[1..], benefits: String::new(), threshold }
}

fn ladder(thresholds: &[i64]) -> TierLadder {
    let tiers = thresholds.iter().enumerate().map(|(i, th)| t(&format!("t{i}"), *th)).collect();
    TierLadder::new(Measure::WonCount, tiers, DEFAULT_GRACE_DAYS).unwrap()
}

fn day(n: i64) -> Timestamp {
    Timestamp::from_second(1_767_225_600).unwrap() + SignedDuration::from_hours(24 * n)
}

fn gold_ladder() -> TierLadder {
    let usd = Currency::USD;
    TierLadder::new(Measure::WonRevenue(usd), vec![t("bronze", 0), t("silver", 500_000), t("gold", 5_000_000)], 90).unwrap()
}

#[test]
fn a_ladder_names_every_bad_field() {
    let tiers = vec![t("gold", 10), t("Gold", 5), Tier { name: " ".into(), ..t("x y", -1) }];
    let fields: Vec<String> = TierLadder::new(Measure::WonCount, tiers, 731).unwrap_err().into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        ["requalification_grace_days", "tiers[1].slug", "tiers[1].threshold", "tiers[2].slug", "tiers[2].name", "tiers[2].threshold"]
    );
    assert_eq!(TierLadder::new(Measure::WonCount, vec![], 90).unwrap_err()[0].field, "tiers");
    let e = TierLadder::new(Measure::WonCount, vec![t("a", 3), t("b", 3)], 90).unwrap_err();
    assert_eq!(e[0].message, "must be greater than the threshold of tiers[0] (3)");
}

#[test]
fn promotion_is_at_once_and_skips_tiers_that_are_passed() {
    let l = gold_ladder();
    assert_eq!(evaluate(&l, None, None, 0, day(0)), TierDecision::Promote { to: 0 });
    assert_eq!(evaluate(&l, Some(("bronze", day(0))), None, 5_200_000, day(1)), TierDecision::Promote { to: 2 });
    let d = evaluate(&l, Some(("bronze", day(0))), None, 5_200_000, day(1));
    assert_eq!(
        reason(&l, Some("bronze"), &d, 5_200_000).unwrap(),
        "trailing-12-month won revenue 52,000.00 USD reached Gold (50,000.00 USD)"
    );
}

#[test]
fn demotion_waits_for_the_grace_period_then_lands_on_the_met_tier() {
    let l = gold_ladder();
    let gold = Some(("gold", day(0)));
    assert_eq!(evaluate(&l, gold, None, 600_000, day(10)), TierDecision::Keep { at_risk_since: Some(day(10)) });
    assert_eq!(evaluate(&l, gold, Some(day(10)), 600_000, day(99)), TierDecision::Keep { at_risk_since: Some(day(10)) });
    let d = evaluate(&l, gold, Some(day(10)), 600_000, day(100));
    assert_eq!(d, TierDecision::Demote { to: Some(1), below_since: day(10) });
    assert!(reason(&l, Some("gold"), &d, 600_000).unwrap().contains("below Gold (50,000.00 USD) since 2026-01-11"), "{d:?}");
    // Meeting the threshold again ends the risk.
    assert_eq!(evaluate(&l, gold, Some(day(10)), 5_000_000, day(50)), TierDecision::Keep { at_risk_since: None });
    // A tier given after the fall keeps its own grace period.
    assert_eq!(evaluate(&l, Some(("gold", day(95))), Some(day(10)), 0, day(100)), TierDecision::Keep { at_risk_since: Some(day(95)) });
}

#[test]
fn a_tier_off_the_ladder_is_replaced_at_once() {
    let l = gold_ladder();
    let d = evaluate(&l, Some(("platinum", day(0))), None, 600_000, day(1));
    assert_eq!(d, TierDecision::Replace { to: Some(1) });
    assert_eq!(
        reason(&l, Some("platinum"), &d, 600_000).unwrap(),
        "tier 'platinum' is not on the ladder; trailing-12-month won revenue 6,000.00 USD meets Silver (5,000.00 USD)"
    );
}

#[test]
fn progress_names_the_next_tier_and_what_remains() {
    let l = gold_ladder();
    let (next, left) = progress(&l, Some("silver"), 4_000_000).unwrap();
    assert_eq!((next.slug.as_str(), left), ("gold", 1_000_000));
    assert_eq!(progress(&l, Some("gold"), 0), None);
    assert_eq!(progress(&l, None, 0).map(|(t, r)| (t.slug.as_str(), r)), Some(("bronze", 0)));
}

#[test]
fn measures_read_like_money_or_counts() {
    assert_eq!(Measure::WonRevenue(Currency::USD).describe(123_456_789), "1,234,567.89 USD");
    assert_eq!(Measure::WonRevenue(Currency::parse("c", "JPY").unwrap()).describe(1000), "1,000 JPY");
    assert_eq!(Measure::WonCount.describe(12), "12");
    assert_eq!(group_thousands("-999.5"), "-999.5");
    assert_eq!(Measure::parse("measure", "won_revenue", None).unwrap_err().field, "currency");
}

/// A ladder of 1–6 tiers with ascending thresholds, the lowest maybe 0.
fn any_ladder() -> impl Strategy<Value = TierLadder> {
    (0i64..3, prop::collection::vec(1i64..50, 0..6), 0u32..200).prop_map(|(first, steps, grace)| {
        let mut th = vec![first];
        for s in steps {
            th.push(th.last().unwrap() + s);
        }
        let tiers = th.iter().enumerate().map(|(i, v)| t(&format!("t{i}"), *v)).collect();
        TierLadder::new(Measure::WonCount, tiers, grace).unwrap()
    })
}

proptest! {
    #[test]
    fn a_tier_never_drops_before_the_grace_period(
        l in any_ladder(), held in 0usize..6, since in 0i64..400, below in prop::option::of(0i64..400), elapsed in 0i64..400, value in 0i64..400,
    ) {
        let held = held % l.tiers().len();
        let slug = l.tiers()[held].slug.clone();
        let now = day(since.max(below.unwrap_or(0)) + elapsed);
        let d = evaluate(&l, Some((&slug, day(since))), below.map(day), value, now);
        let start = below.map_or(now, day).max(day(since));
        if now.duration_since(start) < l.grace() {
            prop_assert!(!matches!(d, TierDecision::Demote { .. } | TierDecision::Replace { .. }), "{d:?}");
        }
        if let TierDecision::Demote { to, .. } = d {
            prop_assert_eq!(to, l.highest_met(value));
            prop_assert!(to.is_none_or(|p| p < held));
        }
    }

    #[test]
    fn promotion_is_immediate_and_to_the_highest_met_tier(
        l in any_ladder(), held in prop::option::of(0usize..6), below in prop::option::of(0i64..10), value in 0i64..400,
    ) {
        let held = held.map(|h| h % l.tiers().len());
        let slug = held.map(|h| l.tiers()[h].slug.clone());
        let d = evaluate(&l, slug.as_deref().map(|s| (s, day(0))), below.map(day), value, day(10));
        let met = l.highest_met(value);
        if met.is_some() && (held.is_none() || met > held) {
            let to = met.unwrap();
            prop_assert_eq!(d, TierDecision::Promote { to });
            prop_assert!(l.tiers()[to].threshold <= value);
            prop_assert!(l.tiers().get(to + 1).is_none_or(|next| next.threshold > value));
        } else {
            prop_assert!(!matches!(d, TierDecision::Promote { .. }), "{d:?}");
        }
    }
}

#[test]
fn a_count_ladder_helper_builds() {
    assert_eq!(ladder(&[0, 5, 10]).highest_met(7), Some(1));
    assert_eq!(ladder(&[3]).highest_met(2), None);
}
