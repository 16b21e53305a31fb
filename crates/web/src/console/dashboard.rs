//! `GET /admin`: the dashboard. Counts of today (review queue, statuses)
//! from `console_counts`, the program's KPIs of the last 12 months from the
//! metrics report, and the revenue of each of those months (the figure
//! `group_by=month` reports, from one grouped query), drawn as inline SVG
//! charts with a table under each.
//!
//! Rules: the KPI period is the calendar month 11 months before today's
//! (UTC) through today; money is the workspace currency's, as the metrics
//! API reports it; the funnel counts every referral ever registered.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::ToSpan;
use jiff::civil::Date;
use partnerloop_app::metrics::{self, MetricsQuery};
use partnerloop_app::{AppError, staff};
use partnerloop_domain::metrics::{Decimal, Period};
use partnerloop_domain::referral::ReferralStatus;

use super::admin::{count, finish, money, nav_clone, signed_in};
use super::charts::{Chart, Point};
use super::pages;
use crate::AppState;
use crate::portal::html;

/// The last 12 calendar months, this one included, ending today.
pub(crate) fn last_twelve_months(today: Date) -> Period {
    let from = today.first_of_month().checked_sub(11.months()).unwrap_or(today);
    Period { from: Some(from), to: Some(today) }
}

fn percent(rate: Option<Decimal>) -> String {
    rate.map_or_else(|| "—".into(), |r| format!("{} %", (r * Decimal::ONE_HUNDRED).round_dp(1).normalize()))
}

fn days(d: Option<Decimal>) -> String {
    d.map_or_else(|| "—".into(), |d| format!("{} d", d.normalize()))
}

fn or_dash(m: Option<partnerloop_domain::Money>) -> String {
    m.map_or_else(|| "—".into(), |m| m.to_string())
}

pub(super) async fn dashboard(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (ctx, nav, csrf, _) = match signed_in(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let page = async {
        let c = staff::console_counts(s.store.as_ref(), &ctx).await?;
        let workspace = s.store.workspace(&ctx.workspace_id).await?.name;
        let period = last_twelve_months(ctx.now.to_zoned(jiff::tz::TimeZone::UTC).date());
        let m = metrics::workspace_metrics(s.store.as_ref(), &ctx, MetricsQuery { period, scope: None, currency: None, by_month: false })
            .await?;
        let months = metrics::revenue_by_month(s.store.as_ref(), &ctx, &period).await?;
        let r = &m.report;
        let currency = r.currency.code().to_owned();
        let revenue = Chart::columns(
            "revenue",
            "Partner-sourced revenue by month".into(),
            format!("Won partner referrals by close month, last 12 months, in {currency}; total {}.", r.partner_sourced_revenue),
            ("Month", "Revenue"),
            months.into_iter().map(|(label, money)| Point { label, size: money.minor(), text: money.to_string() }).collect(),
        );
        let pipeline = Chart::rows(
            "pipeline",
            "Open pipeline by stage".into(),
            format!("Open partner referrals per pipeline stage today, with their value in {currency}."),
            ("Stage", "Referrals · value"),
            r.pipeline
                .iter()
                .map(|st| Point {
                    label: st.stage.to_string(),
                    size: i64::try_from(st.count).unwrap_or(i64::MAX),
                    text: format!("{} · {}", st.count, st.value),
                })
                .collect(),
        );
        let all: i64 = c.referrals.iter().map(|(_, n)| n).sum();
        let reached_approval = [ReferralStatus::Approved, ReferralStatus::Won, ReferralStatus::Lost, ReferralStatus::Expired]
            .iter()
            .map(|st| count(&c.referrals, st.as_str()))
            .sum();
        let won = count(&c.referrals, "won");
        let funnel = Chart::rows(
            "funnel",
            "Conversion funnel".into(),
            "Every referral registered, those approved (approved, won, lost or expired since), and those won.".into(),
            ("Step", "Referrals"),
            [("registered", all), ("approved", reached_approval), ("won", won)]
                .into_iter()
                .map(|(label, n)| Point { label: label.into(), size: n, text: n.to_string() })
                .collect(),
        );
        let top = Chart::rows(
            "top",
            "Top partners".into(),
            format!("Partners by revenue won in the last 12 months, in {currency}."),
            ("Partner", "Revenue · deals won"),
            r.top_partners
                .iter()
                .map(|t| Point {
                    label: m.names.get(&t.partner_id).cloned().unwrap_or_else(|| t.partner_id.to_string()),
                    size: t.revenue.minor(),
                    text: format!("{} · {}", t.revenue, t.won),
                })
                .collect(),
        );
        Ok::<_, AppError>(pages::Dashboard {
            workspace,
            period: format!("{} to {}", period.from.unwrap_or_default(), period.to.unwrap_or_default()),
            active_partners: count(&c.partners, "active"),
            all_partners: c.partners.iter().map(|(_, n)| n).sum(),
            // A partner that applied and waits for a decision.
            applications: count(&c.partners, "applied"),
            review_queue: count(&c.referrals, "pending_review"),
            oldest_review: c.oldest_review.map(|t| pages::age(t, ctx.now)),
            approved: count(&c.referrals, "approved"),
            won,
            lost: count(&c.referrals, "lost"),
            pipeline: c.pipeline.iter().map(|(cur, minor)| money(cur, *minor)).collect(),
            by_status: ReferralStatus::ALL.iter().map(|st| (st.as_str().to_owned(), count(&c.referrals, st.as_str()))).collect(),
            partners_by_status: c.partners.clone(),
            activation: percent(r.partner_activation_rate),
            activation_of: format!("{} of {} partners who joined", r.partners_activated, r.partners_created),
            conversion: percent(r.referral_to_closed_won_rate),
            conversion_of: format!("{} won, {} lost", r.won.partner, r.lost.partner),
            revenue: r.partner_sourced_revenue.to_string(),
            deal_partner: or_dash(r.average_deal_size.partner),
            deal_direct: or_dash(r.average_deal_size.direct),
            first_referral: days(r.median_days_to_first_referral),
            charts: vec![revenue, pipeline, funnel, top],
            nav: nav_clone(&nav),
        })
    }
    .await;
    finish(csrf, page.map(|p| html(StatusCode::OK, p)).map_err(|e| (nav, e)), "/admin")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_twelve_calendar_months_ending_today() {
        let p = last_twelve_months(jiff::civil::date(2026, 11, 26));
        assert_eq!((p.from, p.to), (Some(jiff::civil::date(2025, 12, 1)), Some(jiff::civil::date(2026, 11, 26))));
        assert_eq!(p.months().unwrap().len(), 12);
    }

    #[test]
    fn rates_read_as_percent_and_missing_figures_as_a_dash() {
        assert_eq!(percent(Some(Decimal::new(6667, 4))), "66.7 %");
        assert_eq!(percent(Some(Decimal::ONE)), "100 %");
        assert_eq!(percent(None), "—");
        assert_eq!(days(Some(Decimal::new(250, 2))), "2.5 d");
    }
}
