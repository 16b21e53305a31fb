//! Program KPIs: the workspace's (admins), one partner's scorecard (admin
//! or that partner), and the figures `/metrics` exports for Prometheus.
//!
//! Rules: the definitions are the domain's (`partnerloop_domain::metrics`);
//! this module chooses the scope and window, asks the store for the
//! aggregates (SQL counts and sums over indexes, the same on both engines)
//! and names the partners of the top list. A partner token never sees the
//! workspace's KPIs (they name other partners); its scorecard is its own,
//! and another partner's scorecard does not exist for it.

use std::collections::HashMap;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::metrics::{self, DORMANT_DAYS, Inputs, Period, Report};
use partnerloop_domain::partner::Partner;
use partnerloop_domain::{Currency, Money};

use crate::ctx::Ctx;
use crate::error::{AppError, StoreError};
use crate::ledger::Balance;
use crate::store::{Store, StoreResult};
use crate::tiers::TierProgress;

/// Whose figures: the whole workspace, one partner, or the partners of one tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Workspace,
    Partner(PartnerId),
    Tier(String),
}

/// What the store aggregates over: `[start, end)` (open ends: all time),
/// snapshots as of `as_of`, money in `currency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub as_of: Timestamp,
    /// Start of the dormancy window: `as_of` − [`DORMANT_DAYS`].
    pub dormant_since: Timestamp,
    pub currency: Currency,
    /// `as_of` is now: snapshots are the current state, which the store may
    /// read from its counters instead of replaying history.
    pub current: bool,
}

impl Window {
    pub fn of(period: &Period, now: Timestamp, currency: Currency) -> Self {
        let as_of = period.as_of(now);
        Self {
            start: period.start(),
            end: period.end(),
            as_of,
            dormant_since: as_of - SignedDuration::from_hours(24 * DORMANT_DAYS),
            currency,
            current: as_of >= now,
        }
    }
}

#[async_trait]
pub trait MetricsStore: Send + Sync {
    /// The aggregates every KPI of one window and scope is computed from
    /// (direct deals are always the workspace's: they are the comparison).
    async fn kpi_inputs(&self, ws: &WorkspaceId, scope: &Scope, window: &Window) -> StoreResult<Inputs>;
    /// Names of some partners of the workspace.
    async fn partner_names(&self, ws: &WorkspaceId, ids: &[PartnerId]) -> StoreResult<HashMap<PartnerId, String>>;
    /// Partner-sourced revenue in `currency` per close month (`YYYY-MM`) in
    /// `[start, end)`: the months with a win only, in order.
    async fn won_revenue_by_month(
        &self,
        ws: &WorkspaceId,
        currency: Currency,
        start: Timestamp,
        end: Timestamp,
    ) -> StoreResult<Vec<(String, i64)>>;
    /// When the partner last registered a referral.
    async fn last_referral_at(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Option<Timestamp>>;
    /// Folds the counters' appended deltas into one row per key (every
    /// workspace); answers how many rows it removed. Safe to run from
    /// several servers at once, and while writers append.
    async fn compact_metric_counters(&self) -> StoreResult<u64>;
}

/// Folds the KPI counters (the scheduler, every minute).
pub async fn compact_counters(store: &dyn MetricsStore) -> Result<u64, AppError> {
    Ok(store.compact_metric_counters().await?)
}

/// What `GET /api/v1/metrics` asks for.
#[derive(Debug, Clone, Default)]
pub struct MetricsQuery {
    pub period: Period,
    pub scope: Option<Scope>,
    /// Default: the workspace's currency.
    pub currency: Option<Currency>,
    pub by_month: bool,
}

/// The KPIs of a period, and of each of its months when asked.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub period: Period,
    pub report: Report,
    pub months: Vec<(Period, Report)>,
    /// Names of the partners in the top lists.
    pub names: HashMap<PartnerId, String>,
}

/// The workspace's KPIs: admin tokens and every staff role (staff read the
/// whole workspace); never a partner, since they name every partner.
pub async fn workspace_metrics(store: &dyn Store, ctx: &Ctx, q: MetricsQuery) -> Result<Metrics, AppError> {
    if ctx.staff_role().is_none() {
        ctx.require_admin()?;
    }
    let scope = q.scope.clone().unwrap_or(Scope::Workspace);
    if let Scope::Partner(p) = &scope {
        match store.partner(&ctx.workspace_id, p).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => return Err(AppError::invalid("partner_id", "is not a partner of this workspace")),
            Err(e) => return Err(e.into()),
        }
    }
    let months = if q.by_month { q.period.months().map_err(|e| AppError::Invalid(vec![e]))? } else { Vec::new() };
    let currency = match q.currency {
        Some(c) => c,
        None => workspace_currency(store, &ctx.workspace_id).await?,
    };
    let report = compute(store, &ctx.workspace_id, &scope, &q.period, ctx.now, currency).await?;
    let mut by_month = Vec::with_capacity(months.len());
    for m in months {
        let r = compute(store, &ctx.workspace_id, &scope, &m, ctx.now, currency).await?;
        by_month.push((m, r));
    }
    let mut ids: Vec<PartnerId> = report.top_partners.iter().map(|t| t.partner_id.clone()).collect();
    ids.extend(by_month.iter().flat_map(|(_, r)| r.top_partners.iter().map(|t| t.partner_id.clone())));
    ids.sort();
    ids.dedup();
    let names = store.partner_names(&ctx.workspace_id, &ids).await?;
    Ok(Metrics { period: q.period, report, months: by_month, names })
}

/// Partner-sourced revenue of each calendar month of `period` (both ends
/// needed), in the workspace's currency, months without a win as zero: the
/// same figure as `partner_sourced_revenue` of `group_by=month`, from one
/// grouped query instead of a whole report per month (the dashboard's chart).
pub async fn revenue_by_month(store: &dyn Store, ctx: &Ctx, period: &Period) -> Result<Vec<(String, Money)>, AppError> {
    if ctx.staff_role().is_none() {
        ctx.require_admin()?;
    }
    let months = period.months().map_err(|e| AppError::Invalid(vec![e]))?;
    let (Some(start), Some(end)) = (period.start(), period.end()) else {
        return Err(AppError::invalid("period", "needs both from and to"));
    };
    let currency = workspace_currency(store, &ctx.workspace_id).await?;
    let sums: HashMap<String, i64> = store.won_revenue_by_month(&ctx.workspace_id, currency, start, end).await?.into_iter().collect();
    Ok(months
        .iter()
        .filter_map(|m| m.month_label())
        .map(|label| {
            let minor = sums.get(&label).copied().unwrap_or(0);
            (label, Money::from_minor(minor, currency))
        })
        .collect())
}

async fn workspace_currency(store: &dyn Store, ws: &WorkspaceId) -> Result<Currency, AppError> {
    let w = store.workspace(ws).await?;
    Currency::parse("currency", &w.currency).map_err(|e| AppError::Store(StoreError::Other(e.to_string().into())))
}

async fn compute(
    store: &dyn Store,
    ws: &WorkspaceId,
    scope: &Scope,
    period: &Period,
    now: Timestamp,
    c: Currency,
) -> Result<Report, AppError> {
    let inputs = store.kpi_inputs(ws, scope, &Window::of(period, now, c)).await?;
    Ok(metrics::report(&inputs))
}

/// One partner's own numbers.
#[derive(Debug, Clone)]
pub struct Scorecard {
    pub partner: Partner,
    pub period: Period,
    pub report: Report,
    pub last_referral_at: Option<Timestamp>,
    /// Active, and no referral in the [`DORMANT_DAYS`] before the period's end (or now).
    pub dormant: bool,
    /// Days from joining to the first referral.
    pub days_to_first_referral: Option<metrics::Decimal>,
    /// None when the workspace has no tier ladder.
    pub tier: Option<TierProgress>,
    /// Commission balances per currency, as of now.
    pub balances: Vec<Balance>,
}

/// A partner's scorecard (admin or that partner; another partner's is not found).
pub async fn scorecard(
    store: &dyn Store,
    ctx: &Ctx,
    partner_id: &PartnerId,
    period: Period,
    currency: Option<Currency>,
) -> Result<Scorecard, AppError> {
    if ctx.partner_scope().is_some_and(|own| own != partner_id) {
        return Err(AppError::NotFound);
    }
    let ws = &ctx.workspace_id;
    let partner = store.partner(ws, partner_id).await?;
    let currency = match currency {
        Some(c) => c,
        None => workspace_currency(store, ws).await?,
    };
    let scope = Scope::Partner(partner_id.clone());
    let report = compute(store, ws, &scope, &period, ctx.now, currency).await?;
    let last_referral_at = store.last_referral_at(ws, partner_id).await?;
    let dormant = report.dormant_partners > 0;
    let days_to_first_referral =
        partner.first_referral_at.map(|f| metrics::days(metrics::Decimal::from(f.as_second() - partner.created_at.as_second())));
    let tier = match crate::tiers::progress(store, ctx, partner_id).await {
        Ok(t) => Some(t),
        Err(AppError::NotFound) => None,
        Err(e) => return Err(e),
    };
    let balances = store.partner_balances(ws, partner_id, ctx.now).await?;
    Ok(Scorecard { partner, period, report, last_referral_at, dormant, days_to_first_referral, tier, balances })
}

/// The all-time KPIs of every workspace in its own currency, for the
/// Prometheus gauges: `(workspace slug, report)`.
pub async fn all_workspaces(store: &dyn Store, now: Timestamp) -> Result<Vec<(String, Report)>, AppError> {
    let mut out = Vec::new();
    for id in store.workspace_ids().await? {
        let w = store.workspace(&id).await?;
        let currency = workspace_currency(store, &id).await?;
        out.push((w.slug, compute(store, &id, &Scope::Workspace, &Period::default(), now, currency).await?));
    }
    Ok(out)
}
