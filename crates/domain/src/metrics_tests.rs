use std::str::FromStr;

use super::*;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date(s: &str) -> Date {
    s.parse().unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn eur() -> Currency {
    Currency::parse("c", "EUR").unwrap()
}

#[test]
fn rates_are_exact_and_null_without_a_denominator() {
    assert_eq!(rate(1, 2), Some(dec("0.5")));
    assert_eq!(rate(1, 3), Some(dec("0.3333")));
    assert_eq!(rate(2, 3), Some(dec("0.6667")));
    assert_eq!(rate(0, 5), Some(dec("0")));
    assert_eq!(rate(0, 0), None);
    assert_eq!(ratio(7, 2), Some(dec("3.5")));
    assert_eq!(ratio(1, 0), None);
    assert_eq!(number(dec("0.3333")), 0.3333);
}

#[test]
fn the_median_is_the_middle_or_the_mean_of_the_two_middles() {
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [5]), Some(dec("5")));
    assert_eq!(median(&mut [9, 1, 5]), Some(dec("5")));
    assert_eq!(median(&mut [4, 1, 3, 2]), Some(dec("2.5")));
    assert_eq!(days(Decimal::from(3 * 86_400 + 43_200)), dec("3.5"));
    assert_eq!(hours(Decimal::from(5400)), dec("1.5"));
}

#[test]
fn a_mean_of_money_rounds_half_even_to_the_minor_unit() {
    let usd = Currency::USD;
    assert_eq!(mean(1001, 2, usd), Some(Money::from_minor(500, usd))); // 500.5 → 500
    assert_eq!(mean(1003, 2, usd), Some(Money::from_minor(502, usd))); // 501.5 → 502
    assert_eq!(mean(10, 3, usd), Some(Money::from_minor(3, usd)));
    assert_eq!(mean(0, 0, usd), None);
}

#[test]
fn a_period_is_inclusive_dates_in_utc() {
    let p = Period::new(Some(date("2026-01-01")), Some(date("2026-01-31"))).unwrap();
    assert_eq!(p.start(), Some(ts("2026-01-01T00:00:00Z")));
    assert_eq!(p.end(), Some(ts("2026-02-01T00:00:00Z")));
    assert_eq!(p.as_of(ts("2026-01-10T12:00:00Z")), ts("2026-01-10T12:00:00Z"));
    assert_eq!(p.as_of(ts("2027-01-01T00:00:00Z")), ts("2026-02-01T00:00:00Z"));
    assert_eq!(Period::default().start(), None);
    assert_eq!(Period::new(Some(date("2026-02-01")), Some(date("2026-01-31"))).unwrap_err().field, "to");
}

#[test]
fn months_are_calendar_months_clipped_to_the_period() {
    let p = Period::new(Some(date("2026-01-15")), Some(date("2026-03-10"))).unwrap();
    let m = p.months().unwrap();
    let spans: Vec<_> = m.iter().map(|p| (p.from.unwrap().to_string(), p.to.unwrap().to_string())).collect();
    assert_eq!(
        spans,
        [("2026-01-15", "2026-01-31"), ("2026-02-01", "2026-02-28"), ("2026-03-01", "2026-03-10")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(m[1].month_label().as_deref(), Some("2026-02"));
    assert_eq!(Period::new(Some(date("2026-01-01")), None).unwrap().months().unwrap_err().field, "group_by");
    assert!(Period::new(Some(date("2000-01-01")), Some(date("2026-01-01"))).unwrap().months().is_err());
}

fn pid(s: &str) -> PartnerId {
    PartnerId::from_string(s.to_owned())
}

fn tally(count: u64, amount_minor: i64, cycle_days: i64) -> Tally {
    Tally { count, amount_minor, cycle_seconds: cycle_days * 86_400 }
}

fn inputs() -> Inputs {
    let usd = Currency::USD;
    Inputs {
        currency: usd,
        partner_wins: vec![
            PartnerWins { partner_id: pid("prt_a"), currency: usd, won: tally(2, 30000, 30) },
            PartnerWins { partner_id: pid("prt_b"), currency: usd, won: tally(1, 50000, 10) },
            PartnerWins { partner_id: pid("prt_b"), currency: eur(), won: tally(1, 90000, 20) },
        ],
        partner_lost: 4,
        direct_wins: vec![(usd, tally(3, 60000, 60)), (eur(), tally(1, 10000, 0))],
        direct_lost: 0,
        cohort: vec![
            CohortPartner { active: true, created_at: ts("2026-01-01T00:00:00Z"), first_referral_at: Some(ts("2026-01-04T00:00:00Z")) },
            CohortPartner { active: true, created_at: ts("2026-01-01T00:00:00Z"), first_referral_at: None },
            CohortPartner { active: false, created_at: ts("2026-01-02T00:00:00Z"), first_referral_at: Some(ts("2026-01-06T00:00:00Z")) },
        ],
        registered: 10,
        active_partners: 4,
        dormant_partners: 1,
        pipeline: vec![
            PipelineGroup { stage: Stage::New, currency: Some(usd), count: 2, value_minor: 100000 },
            PipelineGroup { stage: Stage::New, currency: Some(eur()), count: 1, value_minor: 5000 },
            PipelineGroup { stage: Stage::Proposal, currency: None, count: 1, value_minor: 0 },
        ],
        review_seconds: vec![3600, 7200],
        awaiting_review: 2,
    }
}

#[test]
fn the_report_follows_each_definition() {
    let usd = Currency::USD;
    let r = report(&inputs());
    // 1 of 2 active partners created in the period has referred.
    assert_eq!(r.partner_activation_rate, Some(dec("0.5")));
    // 4 wins (any currency) against 4 losses.
    assert_eq!(r.referral_to_closed_won_rate, Some(dec("0.5")));
    assert_eq!(r.partner_sourced_revenue, Money::from_minor(80000, usd));
    // USD wins only: 800 / 3, half-even to the cent.
    assert_eq!(r.average_deal_size.partner, Some(Money::from_minor(26667, usd)));
    assert_eq!(r.average_deal_size.direct, Some(Money::from_minor(20000, usd)));
    // 3 and 4 days: median 3.5 (the inactive partner counts: it has a first referral).
    assert_eq!(r.median_days_to_first_referral, Some(dec("3.5")));
    assert_eq!(r.win_rate.direct, Some(dec("1")));
    // (30 + 10 + 20) days over 4 wins; 60 days over 4 direct wins.
    assert_eq!(r.mean_sales_cycle_days.partner, Some(dec("15")));
    assert_eq!(r.mean_sales_cycle_days.direct, Some(dec("15")));
    assert_eq!(r.referrals_per_active_partner, Some(dec("2.5")));
    assert_eq!((r.partners_created, r.partners_activated, r.dormant_partners), (3, 1, 1));
    assert_eq!(r.pipeline.len(), 5);
    assert_eq!((r.pipeline[0].count, r.pipeline[0].value), (3, Money::from_minor(100000, usd)));
    assert_eq!((r.pipeline[3].stage, r.pipeline[3].count, r.pipeline[3].value.minor()), (Stage::Proposal, 1, 0));
    assert_eq!((r.review_decisions, r.median_review_hours), (2, Some(dec("1.5"))));
    assert_eq!(
        r.top_partners.iter().map(|t| (t.partner_id.as_str(), t.revenue.minor(), t.won)).collect::<Vec<_>>(),
        [("prt_b", 50000, 1), ("prt_a", 30000, 2)]
    );
    let e = &r.by_currency["EUR"];
    assert_eq!(e.partner_sourced_revenue, Money::from_minor(90000, eur()));
    assert_eq!(e.average_deal_size.direct, Some(Money::from_minor(10000, eur())));
    assert_eq!(e.pipeline_value, Money::from_minor(5000, eur()));
    assert_eq!(r.by_currency.keys().collect::<Vec<_>>(), ["EUR", "USD"]);
}

#[test]
fn another_currency_is_reported_in_its_own_terms() {
    let mut i = inputs();
    i.currency = eur();
    let r = report(&i);
    assert_eq!(r.partner_sourced_revenue, Money::from_minor(90000, eur()));
    assert_eq!(r.average_deal_size.partner, Some(Money::from_minor(90000, eur())));
    assert_eq!(r.top_partners.len(), 1);
    // Counts are not money: the win rate still counts every currency.
    assert_eq!(r.referral_to_closed_won_rate, Some(dec("0.5")));
}

#[test]
fn an_empty_program_has_nulls_not_zeros() {
    let r = report(&Inputs {
        currency: Currency::USD,
        partner_wins: vec![],
        partner_lost: 0,
        direct_wins: vec![],
        direct_lost: 0,
        cohort: vec![],
        registered: 0,
        active_partners: 0,
        dormant_partners: 0,
        pipeline: vec![],
        review_seconds: vec![],
        awaiting_review: 0,
    });
    assert_eq!(r.partner_activation_rate, None);
    assert_eq!(r.referral_to_closed_won_rate, None);
    assert_eq!(r.partner_sourced_revenue, Money::zero(Currency::USD));
    assert_eq!(r.average_deal_size, Sides { partner: None, direct: None });
    assert_eq!(r.median_days_to_first_referral, None);
    assert_eq!(r.referrals_per_active_partner, None);
    assert!(r.by_currency.is_empty() && r.top_partners.is_empty());
}
