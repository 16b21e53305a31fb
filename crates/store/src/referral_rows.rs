//! Referral rows, reads, rules and the name log.

use jiff::Timestamp;
use partnerloop_app::error::StoreError;
use partnerloop_app::store::{Conflicts, NameLogEntry, Page, Paged, ReferralFilter, StoreResult, TimelineEvent};
use partnerloop_domain::account::AccountStatus;
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::Stage;
use partnerloop_domain::ids::{DealId, PartnerId, WorkspaceId};
use partnerloop_domain::referral::{Channel, Decision, DisputeStatus, Outcome, Protection, Reason, Referral, ReferralId, ReferralStatus};
use partnerloop_domain::rules::{Action, ConflictingRegistration, KnownAccount, RuleId, Rules};
use partnerloop_domain::{Currency, Email, Money};
use serde_json::{Value, json};

use crate::errors::map;
use crate::time::{from_text, opt_from_text, to_text};
use crate::{SqlStore, on_read};

macro_rules! referral_cols {
    () => {
        "id, partner_id, status, channel, company_name, company_domain, contact_name, contact_email, contact_title, context, \
         estimated_minor, estimated_currency, outcome, reasons, decided_at, decided_by, protection_starts_at, protection_expires_at, \
         stage, deal_id, amount_minor, amount_currency, closed_at, dispute_status, created_at, updated_at"
    };
}
pub(crate) use referral_cols;

/// Binds one referral row in `referral_cols!()` order after its workspace,
/// into a `push_values` row `$b` (multi-row inserts on both engines).
macro_rules! push_referral_row {
    ($b:expr, $ws:expr, $r:expr) => {{
        let r: &partnerloop_domain::referral::Referral = $r;
        $b.push_bind($ws)
            .push_bind(r.id.as_str())
            .push_bind(r.partner_id.as_str())
            .push_bind(r.status.as_str())
            .push_bind(r.channel.as_str())
            .push_bind(r.company_name.as_str())
            .push_bind(r.company_domain.as_str())
            .push_bind(r.contact_name.as_str())
            .push_bind(r.contact_email.as_str())
            .push_bind(r.contact_title.as_deref())
            .push_bind(r.context.as_deref())
            .push_bind(r.estimated_value.map(|m| m.minor()))
            .push_bind(r.estimated_value.map(|m| m.currency().code().to_owned()))
            .push_bind(r.decision.outcome.as_str())
            .push_bind($crate::referral_rows::reasons_to_json(&r.decision.reasons))
            .push_bind($crate::time::to_text(r.decision.decided_at))
            .push_bind(r.decision.decided_by.as_str())
            .push_bind($crate::time::opt_to_text(r.protection.map(|p| p.starts_at)))
            .push_bind($crate::time::opt_to_text(r.protection.map(|p| p.expires_at)))
            .push_bind(r.stage.map(|s| s.as_str()))
            .push_bind(r.deal_id.as_ref().map(|d| d.as_str()))
            .push_bind(r.amount.map(|m| m.minor()))
            .push_bind(r.amount.map(|m| m.currency().code().to_owned()))
            .push_bind($crate::time::opt_to_text(r.closed_at))
            .push_bind(r.dispute.map(|d| d.as_str()))
            .push_bind($crate::time::to_text(r.created_at))
            .push_bind($crate::time::to_text(r.updated_at));
    }};
}
pub(crate) use push_referral_row;

use crate::rows::bad;

fn other(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(e.to_string().into())
}

#[derive(sqlx::FromRow)]
pub(crate) struct ReferralRow {
    id: String,
    partner_id: String,
    status: String,
    channel: String,
    company_name: String,
    company_domain: String,
    contact_name: String,
    contact_email: String,
    contact_title: Option<String>,
    context: Option<String>,
    estimated_minor: Option<i64>,
    estimated_currency: Option<String>,
    outcome: String,
    reasons: String,
    decided_at: String,
    decided_by: String,
    protection_starts_at: Option<String>,
    protection_expires_at: Option<String>,
    stage: Option<String>,
    deal_id: Option<String>,
    amount_minor: Option<i64>,
    amount_currency: Option<String>,
    closed_at: Option<String>,
    dispute_status: Option<String>,
    created_at: String,
    updated_at: String,
}

fn money(minor: Option<i64>, currency: Option<&str>) -> Result<Option<Money>, StoreError> {
    match (minor, currency) {
        (Some(m), Some(c)) => Ok(Some(Money::from_minor(m, Currency::parse("currency", c).map_err(bad)?))),
        _ => Ok(None),
    }
}

pub(crate) fn reasons_to_json(reasons: &[Reason]) -> String {
    Value::Array(
        reasons
            .iter()
            .map(|r| {
                json!({"rule": r.rule.as_str(), "detail": r.detail, "conflicting_id": r.conflicting_id, "score": r.score,
                       "until": r.until.map(to_text)})
            })
            .collect(),
    )
    .to_string()
}

fn reasons_from_json(text: &str) -> Result<Vec<Reason>, StoreError> {
    let items: Vec<Value> = serde_json::from_str(text).map_err(other)?;
    items
        .iter()
        .map(|v| {
            Ok(Reason {
                rule: RuleId::parse("rule", v["rule"].as_str().unwrap_or_default()).map_err(bad)?,
                detail: v["detail"].as_str().unwrap_or_default().to_owned(),
                conflicting_id: v["conflicting_id"].as_str().map(str::to_owned),
                score: v["score"].as_f64(),
                until: opt_from_text(v["until"].as_str())?,
            })
        })
        .collect()
}

impl TryFrom<ReferralRow> for Referral {
    type Error = StoreError;
    fn try_from(r: ReferralRow) -> Result<Self, StoreError> {
        let protection = match (opt_from_text(r.protection_starts_at.as_deref())?, opt_from_text(r.protection_expires_at.as_deref())?) {
            (Some(starts_at), Some(expires_at)) => Some(Protection { starts_at, expires_at }),
            _ => None,
        };
        Ok(Referral {
            id: ReferralId::from_string(r.id),
            partner_id: PartnerId::from_string(r.partner_id),
            status: ReferralStatus::parse("status", &r.status).map_err(bad)?,
            channel: Channel::parse("channel", &r.channel).map_err(bad)?,
            company_name: r.company_name,
            company_domain: CompanyDomain::parse("company_domain", &r.company_domain).map_err(bad)?,
            contact_name: r.contact_name,
            contact_email: Email::parse("contact_email", &r.contact_email).map_err(bad)?,
            contact_title: r.contact_title,
            context: r.context,
            estimated_value: money(r.estimated_minor, r.estimated_currency.as_deref())?,
            decision: Decision {
                outcome: Outcome::parse("outcome", &r.outcome).map_err(bad)?,
                reasons: reasons_from_json(&r.reasons)?,
                decided_at: from_text(&r.decided_at)?,
                decided_by: r.decided_by,
            },
            protection,
            stage: r.stage.map(|s| Stage::parse("stage", &s)).transpose().map_err(bad)?,
            deal_id: r.deal_id.map(DealId::from_string),
            amount: money(r.amount_minor, r.amount_currency.as_deref())?,
            closed_at: opt_from_text(r.closed_at.as_deref())?,
            dispute: r.dispute_status.map(|s| DisputeStatus::parse("dispute", &s)).transpose().map_err(bad)?,
            created_at: from_text(&r.created_at)?,
            updated_at: from_text(&r.updated_at)?,
        })
    }
}

/// A referral with its workspace (lists across workspaces).
#[derive(sqlx::FromRow)]
pub(crate) struct LapsedRow {
    pub(crate) workspace_id: String,
    #[sqlx(flatten)]
    pub(crate) referral: ReferralRow,
}

#[derive(sqlx::FromRow)]
struct RulesRow {
    protection_days: i32,
    auto_approve: bool,
    fuzzy_threshold_bp: i32,
    actions: String,
}

pub(crate) fn actions_to_json(r: &Rules) -> String {
    let map: serde_json::Map<String, Value> = RuleId::ALL
        .iter()
        .filter(|id| **id != RuleId::NoConflict)
        .map(|id| (id.as_str().to_owned(), json!(r.actions.get(*id).as_str())))
        .collect();
    Value::Object(map).to_string()
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClaimRow {
    referral_id: String,
    partner_id: String,
    match_key: String,
    expires_at: String,
}

pub(crate) fn claim_to_conflict(c: &ClaimHolder) -> ConflictingRegistration {
    ConflictingRegistration {
        referral_id: c.referral_id.clone(),
        partner_id: c.partner_id.clone(),
        matched_on: if c.match_key.starts_with("email:") { "email" } else { "domain" },
        expires_at: c.expires_at,
    }
}

/// A registration that lost its account's claim to `winner` (another
/// partner, first by the claims' unique index): decided again against it,
/// it holds no protection and opens no deal.
pub(crate) fn lose_claim(referral: &mut Referral, winner: &ClaimHolder, redecide: &partnerloop_app::store::Redecide) {
    let (outcome, reasons) = redecide(&claim_to_conflict(winner));
    referral.status = outcome.status();
    referral.decision.outcome = outcome;
    referral.decision.reasons = reasons;
    referral.protection = None;
    referral.stage = None;
    referral.deal_id = None;
}

/// Who holds a claim.
#[derive(Debug, Clone)]
pub(crate) struct ClaimHolder {
    pub referral_id: String,
    pub partner_id: String,
    pub match_key: String,
    pub expires_at: Timestamp,
}

impl TryFrom<ClaimRow> for ClaimHolder {
    type Error = StoreError;
    fn try_from(r: ClaimRow) -> Result<Self, StoreError> {
        Ok(ClaimHolder {
            referral_id: r.referral_id,
            partner_id: r.partner_id,
            match_key: r.match_key,
            expires_at: from_text(&r.expires_at)?,
        })
    }
}

/// Claims of `keys` still in force at `now`, whoever holds them.
macro_rules! claim_holders {
    ($conn:expr, $ws:expr, $keys:expr, $now:expr) => {{
        let rows: Vec<$crate::referral_rows::ClaimRow> = sqlx::query_as(
            "SELECT referral_id, partner_id, match_key, expires_at FROM protection_claims
             WHERE workspace_id = $1 AND match_key IN ($2, $3, $4) AND expires_at > $5 ORDER BY match_key",
        )
        .bind($ws.as_str())
        .bind($crate::referral_rows::nth_key($keys, 0))
        .bind($crate::referral_rows::nth_key($keys, 1))
        .bind($crate::referral_rows::nth_key($keys, 2))
        .bind(crate::time::to_text($now))
        .fetch_all($conn)
        .await
        .map_err(crate::errors::map)?;
        rows.into_iter().map($crate::referral_rows::ClaimHolder::try_from).collect::<Result<Vec<_>, StoreError>>()?
    }};
}
pub(crate) use claim_holders;

/// The n-th of 2–3 keys, repeating the first to fill a fixed `IN ($a, $b, $c)`.
pub(crate) fn nth_key(keys: &[String], n: usize) -> &str {
    keys.get(n).or(keys.first()).map(String::as_str).unwrap_or_default()
}

#[derive(sqlx::FromRow)]
struct EventRow {
    at: String,
    kind: String,
    actor: String,
    summary: String,
}

#[derive(sqlx::FromRow)]
struct NameLogRow {
    seq: i64,
    entity_id: String,
    name: String,
    active: bool,
}

/// One row of the combined exact-conflict query.
#[derive(sqlx::FromRow)]
struct EvidenceRow {
    kind: String,
    a: String,
    b: String,
    c: String,
    d: String,
}

impl SqlStore {
    pub(crate) async fn rules_(&self, ws: &WorkspaceId) -> StoreResult<Rules> {
        on_read!(self, |pool| {
            let row: Option<RulesRow> = sqlx::query_as(
                "SELECT protection_days, auto_approve, fuzzy_threshold_bp, actions FROM rules_of_engagement WHERE workspace_id = $1",
            )
            .bind(ws.as_str())
            .fetch_optional(pool)
            .await
            .map_err(map)?;
            let Some(row) = row else { return Ok(Rules::default()) };
            let mut rules = Rules {
                protection_days: u32::try_from(row.protection_days).map_err(other)?,
                auto_approve: row.auto_approve,
                fuzzy_threshold: f64::from(row.fuzzy_threshold_bp) / 10_000.0,
                ..Rules::default()
            };
            let actions: serde_json::Map<String, Value> = serde_json::from_str(&row.actions).map_err(other)?;
            for (rule, action) in actions {
                let rule = RuleId::parse("rule", &rule).map_err(bad)?;
                rules.actions.set(rule, Action::parse("action", action.as_str().unwrap_or_default()).map_err(bad)?);
            }
            Ok(rules)
        })
    }

    pub(crate) async fn conflict_evidence_(
        &self,
        ws: &WorkspaceId,
        partner: &PartnerId,
        keys: &[String],
        now: Timestamp,
    ) -> StoreResult<Conflicts> {
        let domains = partnerloop_app::referrals::key_domains(keys);
        let domain = domains.first().copied().unwrap_or_default();
        let other_domain = domains.get(1).copied().unwrap_or(domain);
        let rows: Vec<EvidenceRow> = on_read!(self, |pool| {
            sqlx::query_as(
                "SELECT 'claim' AS kind, referral_id AS a, partner_id AS b, match_key AS c, expires_at AS d FROM protection_claims
                 WHERE workspace_id = $1 AND match_key IN ($2, $3, $4) AND expires_at > $5
                 UNION ALL
                 SELECT 'account', id, name, status, domain FROM accounts WHERE workspace_id = $1 AND domain IN ($6, $7)
                 UNION ALL
                 SELECT 'deal', id, '', '', '' FROM (SELECT id FROM deals WHERE workspace_id = $1 AND company_domain IN ($6, $7)
                   AND source = 'direct' AND stage NOT IN ('closed_won', 'closed_lost') LIMIT 10) AS open_deals",
            )
            .bind(ws.as_str())
            .bind(nth_key(keys, 0))
            .bind(nth_key(keys, 1))
            .bind(nth_key(keys, 2))
            .bind(to_text(now))
            .bind(domain)
            .bind(other_domain)
            .fetch_all(pool)
            .await
            .map_err(map)?
        });
        let mut checked = Conflicts::default();
        let mut rows = rows;
        // Claims by match key (email claims last, so they name the match); the company's own account first.
        rows.sort_by(|x, y| (x.kind.as_str(), x.d != domain, x.c.as_str()).cmp(&(y.kind.as_str(), y.d != domain, y.c.as_str())));
        for r in rows {
            match r.kind.as_str() {
                "claim" if r.b == partner.as_str() => checked.own_referral = Some(ReferralId::from_string(r.a)),
                "claim" => {
                    let found =
                        claim_to_conflict(&ClaimHolder { referral_id: r.a, partner_id: r.b, match_key: r.c, expires_at: from_text(&r.d)? });
                    let regs = &mut checked.evidence.other_partner_registrations;
                    match regs.iter_mut().find(|c| c.referral_id == found.referral_id) {
                        // The same contact is the strongest evidence: say so.
                        Some(c) if found.matched_on == "email" => c.matched_on = "email",
                        Some(_) => {}
                        None => regs.push(found),
                    }
                }
                "account" if checked.evidence.account.is_none() => {
                    let status = AccountStatus::parse("status", &r.c).map_err(bad)?;
                    checked.evidence.account = Some(KnownAccount { account_id: r.a, name: r.b, status });
                }
                "deal" => checked.evidence.open_direct_deals.push(r.a),
                _ => {}
            }
        }
        Ok(checked)
    }

    pub(crate) async fn referral_(&self, ws: &WorkspaceId, id: &ReferralId) -> StoreResult<Referral> {
        crate::records::fetch_by_id!(self, ReferralRow, referral_cols!(), "referrals", ws, id)
    }

    pub(crate) async fn list_referrals_(&self, ws: &WorkspaceId, f: &ReferralFilter, page: &Page) -> StoreResult<Paged<Referral>> {
        on_read!(self, |pool| {
            let rows: Vec<ReferralRow> = sqlx::query_as(concat!(
                "SELECT ",
                referral_cols!(),
                " FROM referrals WHERE workspace_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR partner_id = $3)
                  AND ($4 IS NULL OR id > $4) ORDER BY id LIMIT $5"
            ))
            .bind(ws.as_str())
            .bind(f.status.map(|s| s.as_str()))
            .bind(f.partner_id.as_ref().map(|p| p.as_str()))
            .bind(page.after.as_deref())
            .bind(i64::from(page.limit) + 1)
            .fetch_all(pool)
            .await
            .map_err(map)?;
            let items = rows.into_iter().map(Referral::try_from).collect::<Result<Vec<_>, _>>()?;
            Ok(Paged::from_rows(items, page.limit, |r| r.id.to_string()))
        })
    }

    pub(crate) async fn timeline_(&self, ws: &WorkspaceId, id: &ReferralId) -> StoreResult<Vec<TimelineEvent>> {
        on_read!(self, |pool| {
            let rows: Vec<EventRow> = sqlx::query_as(
                "SELECT at, kind, actor, summary FROM referral_events WHERE workspace_id = $1 AND referral_id = $2 ORDER BY id",
            )
            .bind(ws.as_str())
            .bind(id.as_str())
            .fetch_all(pool)
            .await
            .map_err(map)?;
            rows.into_iter()
                .map(|r| Ok(TimelineEvent { at: from_text(&r.at)?, kind: r.kind, actor: r.actor, summary: r.summary }))
                .collect()
        })
    }

    pub(crate) async fn lapsed_referrals_(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<(WorkspaceId, Referral)>> {
        on_read!(self, |pool| {
            let rows: Vec<LapsedRow> = sqlx::query_as(concat!(
                "SELECT workspace_id, ",
                referral_cols!(),
                " FROM referrals WHERE status = 'approved' AND protection_expires_at <= $1 ORDER BY protection_expires_at LIMIT $2"
            ))
            .bind(to_text(now))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(map)?;
            rows.into_iter().map(|r| Ok((WorkspaceId::from_string(r.workspace_id), Referral::try_from(r.referral)?))).collect()
        })
    }

    pub(crate) async fn name_log_since_(&self, ws: &WorkspaceId, after: i64, limit: u32) -> StoreResult<Vec<NameLogEntry>> {
        on_read!(self, |pool| {
            let rows: Vec<NameLogRow> = sqlx::query_as(
                "SELECT seq, entity_id, name, active FROM name_index_log WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(ws.as_str())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(map)?;
            Ok(rows.into_iter().map(|r| NameLogEntry { seq: r.seq, entity_id: r.entity_id, name: r.name, active: r.active }).collect())
        })
    }
}
