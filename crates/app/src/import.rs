//! CSV imports of what a program already has: accounts (customers,
//! off-limits), partners, direct deals and historic referrals with their
//! original dates and statuses.
//!
//! Rules: every row is checked before anything is written — its own fields,
//! then against the other rows of the file and the stored data — and a
//! file with any bad row writes nothing unless the caller chose to skip
//! bad rows; the good rows are then written in one transaction. Every
//! problem names its line and field. An import is one audit entry.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::{Deal, DealSource, Stage};
use partnerloop_domain::ids::PartnerId;

use partnerloop_domain::referral::{Channel, Decision, Outcome, Reason, Referral, ReferralStatus};
use partnerloop_domain::rules::{ConflictingRegistration, RuleId, decide};
use partnerloop_domain::{Email, Money};
use serde_json::json;

use crate::accounts::{AccountForCreate, new_account};
use crate::ctx::Ctx;
use crate::deals::{DealForCreate, new_deal};
use crate::error::AppError;
use crate::ids;
use crate::partners::{PartnerForCreate, new_partner};
use crate::referrals::{claim_keys, protection};
use crate::store::{AuditEntry, ImportBatch, ImportedReferral, Store, TimelineEvent};

/// A problem with one line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl LineError {
    pub fn new(line: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { line, field: field.into(), message: message.into() }
    }
}

/// A parsed row and the line it came from.
#[derive(Debug, Clone)]
pub struct Line<T> {
    pub line: u64,
    pub row: T,
}

/// A historic referral as a CSV row gives it.
#[derive(Debug, Clone)]
pub struct ReferralRow {
    pub partner_contact_email: Email,
    pub company_name: String,
    pub company_domain: Option<CompanyDomain>,
    pub contact_name: String,
    pub contact_email: Email,
    pub context: Option<String>,
    pub created_at: Option<Timestamp>,
    pub status: Option<ReferralStatus>,
    pub stage: Option<Stage>,
    /// The won amount for won/lost referrals, the estimated value otherwise.
    pub amount: Option<Money>,
    pub closed_at: Option<Timestamp>,
}

/// The checked records of a file, ready to write, and the bad lines.
pub struct Plan {
    pub batch: ImportBatch,
    pub errors: Vec<LineError>,
}

impl Plan {
    pub fn count(&self) -> usize {
        self.batch.accounts.len() + self.batch.partners.len() + self.batch.deals.len() + self.batch.referrals.len()
    }
}

fn audit(ctx: &Ctx, what: &str, file: &str, count: usize) -> AuditEntry {
    AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: format!("import.{what}"),
        entity: "import".into(),
        entity_id: file.to_owned(),
        before: None,
        after: Some(json!({"file": file, "records": count})),
    }
}

fn empty_batch(ctx: &Ctx, what: &str, file: &str) -> ImportBatch {
    ImportBatch { accounts: vec![], partners: vec![], deals: vec![], referrals: vec![], audit: audit(ctx, what, file, 0) }
}

fn app_errors(line: u64, e: AppError) -> Vec<LineError> {
    match e {
        AppError::Invalid(fields) => fields.into_iter().map(|f| LineError::new(line, f.field, f.message)).collect(),
        other => vec![LineError::new(line, "row", other.to_string())],
    }
}

/// Writes a plan (after the caller decided what to do about its errors).
pub async fn write(store: &dyn Store, ctx: &Ctx, mut plan: Plan) -> Result<usize, AppError> {
    ctx.require_admin()?;
    let count = plan.count();
    if let Some(after) = plan.batch.audit.after.as_mut() {
        after["records"] = json!(count);
    }
    store.import(&ctx.workspace_id, plan.batch).await?;
    Ok(count)
}

pub async fn plan_accounts(store: &dyn Store, ctx: &Ctx, file: &str, rows: Vec<Line<AccountForCreate>>) -> Result<Plan, AppError> {
    let mut taken: HashSet<String> = store.account_domains(&ctx.workspace_id).await?;
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut plan = Plan { batch: empty_batch(ctx, "accounts", file), errors: vec![] };
    for Line { line, row } in rows {
        let domain = row.domain.as_str().to_owned();
        if let Some(first) = first_line.get(&domain) {
            plan.errors.push(LineError::new(line, "domain", format!("{domain} is already on line {first}")));
        } else if !taken.insert(domain.clone()) {
            plan.errors.push(LineError::new(line, "domain", format!("an account with {domain} already exists")));
        } else {
            first_line.insert(domain, line);
            plan.batch.accounts.push(new_account(ctx, row));
        }
    }
    Ok(plan)
}

pub async fn plan_partners(store: &dyn Store, ctx: &Ctx, file: &str, rows: Vec<Line<PartnerForCreate>>) -> Result<Plan, AppError> {
    let known = store.partner_ids_by_contact_email(&ctx.workspace_id).await?;
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut plan = Plan { batch: empty_batch(ctx, "partners", file), errors: vec![] };
    for Line { line, row } in rows {
        let email = row.contact_email.as_str().to_owned();
        if let Some(first) = first_line.get(&email) {
            plan.errors.push(LineError::new(line, "contact_email", format!("{email} is already on line {first}")));
        } else if known.contains_key(&email) {
            plan.errors.push(LineError::new(line, "contact_email", format!("{email} is already a partner contact")));
        } else {
            first_line.insert(email, line);
            plan.batch.partners.push(new_partner(ctx, row));
        }
    }
    Ok(plan)
}

pub fn plan_deals(ctx: &Ctx, file: &str, rows: Vec<Line<DealForCreate>>) -> Plan {
    let mut plan = Plan { batch: empty_batch(ctx, "deals", file), errors: vec![] };
    for Line { line, row } in rows {
        match new_deal(ctx, row) {
            Ok(d) => plan.batch.deals.push(d),
            Err(e) => plan.errors.extend(app_errors(line, e)),
        }
    }
    plan
}

/// Historic referrals keep their dates and statuses; a row without a
/// status is decided by the rules of engagement on the exact evidence (the
/// stored data and the rows above it). An approved referral whose window
/// is still open holds its account like a registered one.
pub async fn plan_referrals(store: &dyn Store, ctx: &Ctx, file: &str, rows: Vec<Line<ReferralRow>>) -> Result<Plan, AppError> {
    let ws = &ctx.workspace_id;
    let partners = store.partner_ids_by_contact_email(ws).await?;
    let rules = store.rules(ws).await?;
    let currency =
        partnerloop_domain::Currency::parse("currency", &store.workspace(ws).await?.currency).unwrap_or(partnerloop_domain::Currency::USD);
    let mut claimed: HashMap<String, (u64, PartnerId, String, Timestamp)> = HashMap::new();
    let mut plan = Plan { batch: empty_batch(ctx, "referrals", file), errors: vec![] };
    for Line { line, row } in rows {
        let Some(partner_id) = partners.get(row.partner_contact_email.as_str()).cloned() else {
            plan.errors.push(LineError::new(line, "partner_contact_email", "is not the email of a partner contact"));
            continue;
        };
        let domain = match crate::referrals::company_domain(row.company_domain.clone(), &row.contact_email) {
            Ok(d) => d,
            Err(e) => {
                plan.errors.extend(app_errors(line, e).into_iter().map(|mut e| {
                    e.field = "company_domain".into();
                    e
                }));
                continue;
            }
        };
        let created_at = row.created_at.unwrap_or(ctx.now);
        let keys = claim_keys(domain.as_str(), row.contact_email.as_str());
        if let Some((first, _, _, _)) = keys.iter().find_map(|k| claimed.get(k)).filter(|(_, p, _, _)| *p == partner_id) {
            plan.errors.push(LineError::new(
                line,
                "company_domain",
                format!("the same partner already registered this account on line {first}"),
            ));
            continue;
        }
        let (status, decision) = match row.status {
            Some(s) => (
                s,
                Decision {
                    outcome: match s {
                        ReferralStatus::PendingReview => Outcome::Review,
                        ReferralStatus::Rejected => Outcome::Rejected,
                        _ => Outcome::Approved,
                    },
                    reasons: vec![Reason {
                        rule: RuleId::NoConflict,
                        detail: format!("imported from {file} with status {s}"),
                        conflicting_id: None,
                        score: None,
                        until: None,
                    }],
                    decided_at: created_at,
                    decided_by: ctx.actor.audit_name(),
                },
            ),
            None => {
                let mut evidence = store.conflict_evidence(ws, &partner_id, &keys, created_at).await?.evidence;
                if let Some((_, p, id, until)) = keys.iter().find_map(|k| claimed.get(k)) {
                    evidence.other_partner_registrations.push(ConflictingRegistration {
                        referral_id: id.clone(),
                        partner_id: p.to_string(),
                        matched_on: "domain",
                        expires_at: *until,
                    });
                }
                let (outcome, reasons) = decide(&evidence, &rules);
                (outcome.status(), Decision { outcome, reasons, decided_at: created_at, decided_by: "rules".into() })
            }
        };
        let closed = matches!(status, ReferralStatus::Won | ReferralStatus::Lost);
        if status == ReferralStatus::Won && row.amount.is_none() {
            plan.errors.push(LineError::new(line, "amount", "is required for a won referral"));
            continue;
        }
        if row.closed_at.is_some() && !closed {
            plan.errors.push(LineError::new(line, "closed_at", "only a won or lost referral has a close time"));
            continue;
        }
        let closed_at = closed.then(|| row.closed_at.unwrap_or(created_at));
        if closed_at.is_some_and(|c| c < created_at) {
            plan.errors.push(LineError::new(line, "closed_at", "must not be before created_at"));
            continue;
        }
        let stage = match status {
            ReferralStatus::Won => Some(Stage::ClosedWon),
            ReferralStatus::Lost => Some(Stage::ClosedLost),
            ReferralStatus::Approved | ReferralStatus::Expired => Some(row.stage.filter(|s| !s.is_closed()).unwrap_or(Stage::New)),
            _ => None,
        };
        let window = matches!(status, ReferralStatus::Approved | ReferralStatus::Won | ReferralStatus::Lost | ReferralStatus::Expired)
            .then(|| protection(created_at, rules.protection_days));
        let id = ids::referral_id(created_at);
        let holds = status == ReferralStatus::Approved && window.is_some_and(|w| w.expires_at > ctx.now);
        if holds {
            if let Some(conflict) =
                store.conflict_evidence(ws, &partner_id, &keys, ctx.now).await?.evidence.other_partner_registrations.first()
            {
                plan.errors.push(LineError::new(
                    line,
                    "company_domain",
                    format!("the account is held by another partner's active referral {}", conflict.referral_id),
                ));
                continue;
            }
            if let Some((first, _, _, _)) = keys.iter().find_map(|k| claimed.get(k)) {
                plan.errors.push(LineError::new(
                    line,
                    "company_domain",
                    format!("the account is held by another partner's referral on line {first}"),
                ));
                continue;
            }
            for k in &keys {
                claimed.insert(k.clone(), (line, partner_id.clone(), id.to_string(), window.map(|w| w.expires_at).unwrap_or(ctx.now)));
            }
        }
        let (estimated_value, amount) = if closed { (None, row.amount) } else { (row.amount, None) };
        let deal = stage.map(|s| Deal {
            id: ids::deal_id(created_at),
            name: row.company_name.clone(),
            company_name: row.company_name.clone(),
            company_domain: Some(domain.clone()),
            stage: s,
            amount: amount.or(estimated_value).unwrap_or(Money::zero(currency)),
            source: DealSource::Partner,
            owner_email: None,
            created_at,
            closed_at,
            updated_at: ctx.now,
        });
        let referral = Referral {
            id,
            partner_id,
            status,
            channel: Channel::Csv,
            company_name: row.company_name,
            company_domain: domain,
            contact_name: row.contact_name,
            contact_email: row.contact_email,
            contact_title: None,
            context: row.context,
            estimated_value,
            decision,
            protection: window,
            stage,
            deal_id: deal.as_ref().map(|d| d.id.clone()),
            amount,
            closed_at,
            dispute: None,
            created_at,
            updated_at: ctx.now,
        };
        let events = vec![TimelineEvent {
            at: created_at,
            kind: "submitted".into(),
            actor: ctx.actor.audit_name(),
            summary: format!("imported from {file}, line {line}"),
        }];
        plan.batch.referrals.push(ImportedReferral { referral, deal, claim: holds, events });
    }
    Ok(plan)
}
