use super::*;

fn criteria() -> Criteria {
    Criteria {
        target_industries: vec!["healthcare".into(), "logistics".into(), "retail".into(), "fintech".into()],
        deal_size_band: Some((1_000_000, 5_000_000)),
        referrals_per_quarter: 4,
        weights: Weights { audience: 40, deal_size: 30, credibility: 20, responsiveness: 10 },
    }
}

fn answers() -> Answers {
    Answers {
        industries: vec!["healthcare".into(), "logistics".into()],
        typical_deal_minor: 2_000_000,
        years_in_business: 5,
        client_count: 20,
        has_website: true,
        referrals_per_quarter: 4,
        response_time: ResponseTime::SameDay,
    }
}

#[test]
fn a_perfect_fit_scores_100_on_every_criterion() {
    let s = score(&criteria(), &answers());
    assert_eq!(s, Score { total: 100, audience: 100, deal_size: 100, credibility: 100, responsiveness: 100 });
}

#[test]
fn audience_overlap_counts_matches_over_the_smaller_list() {
    let c = criteria();
    let mut a = answers();
    a.industries = vec!["healthcare".into(), "education".into(), "legal".into(), "media".into()];
    assert_eq!(audience_score(&c, &a), 25);
    a.industries = vec!["education".into()];
    assert_eq!(audience_score(&c, &a), 0);
    a.industries = vec![];
    assert_eq!(audience_score(&c, &a), 0);
    assert_eq!(audience_score(&Criteria::default(), &a), NEUTRAL);
}

#[test]
fn deal_size_falls_off_outside_the_band() {
    let c = criteria();
    let mut a = answers();
    a.typical_deal_minor = 500_000;
    assert_eq!(deal_size_score(&c, &a), 50);
    a.typical_deal_minor = 10_000_000;
    assert_eq!(deal_size_score(&c, &a), 50);
    a.typical_deal_minor = 5_000_000;
    assert_eq!(deal_size_score(&c, &a), 100);
    a.typical_deal_minor = 0;
    assert_eq!(deal_size_score(&c, &a), 0);
    assert_eq!(deal_size_score(&Criteria::default(), &a), NEUTRAL);
}

#[test]
fn credibility_and_responsiveness_are_capped_sums() {
    let mut a = answers();
    a.years_in_business = 2;
    a.client_count = 3;
    a.has_website = false;
    assert_eq!(credibility_score(&a), 16 + 6);
    a.years_in_business = 40;
    a.client_count = 4000;
    assert_eq!(credibility_score(&a), 80);
    a.referrals_per_quarter = 1;
    a.response_time = ResponseTime::Week;
    assert_eq!(responsiveness_score(&criteria(), &a), 15 + 10);
    a.referrals_per_quarter = 50;
    assert_eq!(responsiveness_score(&criteria(), &a), 60 + 10);
}

#[test]
fn the_total_is_the_weighted_average_rounded_half_up() {
    let mut a = answers();
    a.industries = vec!["healthcare".into(), "media".into()]; // 50
    a.typical_deal_minor = 500_000; // 50
    // (50×40 + 50×30 + 100×20 + 100×10) / 100 = 65
    assert_eq!(score(&criteria(), &a).total, 65);
    let mut c = criteria();
    c.weights = Weights { audience: 1, deal_size: 0, credibility: 0, responsiveness: 1 };
    // (50 + 100) / 2 = 75
    assert_eq!(score(&c, &a).total, 75);
    c.weights = Weights { audience: 2, deal_size: 0, credibility: 0, responsiveness: 1 };
    // (100 + 100) / 3 = 66.67 → 67
    assert_eq!(score(&c, &a).total, 67);
    c.weights = Weights { audience: 1, deal_size: 1, credibility: 0, responsiveness: 0 };
    a.industries = vec!["healthcare".into(), "media".into(), "legal".into()]; // 33
    // (33 + 50) / 2 = 41.5 → 42
    assert_eq!(score(&c, &a).total, 42);
}

#[test]
fn weights_only_move_the_total_not_the_breakdown() {
    let a = Answers { industries: vec!["retail".into()], typical_deal_minor: 100, ..answers() };
    let mut c = criteria();
    let first = score(&c, &a);
    c.weights = Weights { audience: 0, deal_size: 100, credibility: 0, responsiveness: 0 };
    let second = score(&c, &a);
    assert_eq!((first.audience, first.deal_size), (second.audience, second.deal_size));
    assert_eq!(second.total, second.deal_size);
    assert_ne!(first.total, second.total);
}

#[test]
fn criteria_name_each_bad_field() {
    let mut c = criteria();
    c.weights.audience = 101;
    c.deal_size_band = Some((5, 1));
    c.referrals_per_quarter = 0;
    let fields: Vec<String> = c.check().into_iter().map(|e| e.field).collect();
    assert_eq!(fields, ["weights.audience", "deal_size_max", "referrals_per_quarter"]);
    c = criteria();
    c.weights = Weights { audience: 0, deal_size: 0, credibility: 0, responsiveness: 0 };
    assert_eq!(c.check()[0].field, "weights");
    assert!(criteria().check().is_empty());
}

#[test]
fn industry_lists_are_normalised_and_distinct() {
    assert_eq!(industry_list(" Health  Care, logistics;\nHEALTH CARE,, "), vec!["health care".to_owned(), "logistics".to_owned()]);
}
