//! Registering a referral: normalise, check every conflict, decide by the
//! workspace's rules, store — and if a concurrent registration of another
//! partner claimed the account first, decide again with that evidence.

use jiff::{SignedDuration, Timestamp};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::{Deal, DealSource, Stage};
use partnerloop_domain::freemail::is_free_mail;
use partnerloop_domain::ids::PartnerId;
use partnerloop_domain::partner::PartnerStatus;
use partnerloop_domain::referral::{Channel, Decision, Outcome, Protection, Referral};
use partnerloop_domain::rules::{SimilarName, decide};
use partnerloop_domain::{Currency, Email, Money};

use super::{acting_partner, audit, claim_keys, event};
use crate::ctx::Ctx;
use crate::error::{AppError, StoreError};
use crate::ids;
use crate::matching::{NameMatcher, parse_key};
use crate::store::{Conflicts, NewRegistration, Registered, Store};

#[derive(Debug, Clone)]
pub struct ReferralForCreate {
    /// Required with an admin token; a partner token implies its own.
    pub partner_id: Option<PartnerId>,
    pub company_name: String,
    /// Taken from the contact's email when absent (unless free-mail).
    pub company_domain: Option<CompanyDomain>,
    pub contact_name: String,
    pub contact_email: Email,
    pub contact_title: Option<String>,
    pub context: Option<String>,
    pub estimated_value: Option<Money>,
    pub channel: Channel,
}

/// The company domain of a registration: the one given, else the contact
/// email's — never a free-mail provider's.
pub fn company_domain(given: Option<CompanyDomain>, email: &Email) -> Result<CompanyDomain, AppError> {
    let domain = match given {
        Some(d) => d,
        None => CompanyDomain::parse("company.domain", email.domain()).map_err(|e| AppError::Invalid(vec![e]))?,
    };
    if is_free_mail(domain.as_str()) {
        let why = "is a free-mail provider, not the company's domain: give company.domain";
        return Err(AppError::invalid("company.domain", why));
    }
    Ok(domain)
}

pub fn decision_summary(d: &Decision) -> String {
    let rules: Vec<&str> = d.reasons.iter().map(|r| r.rule.as_str()).collect();
    format!("decided {} by {} ({})", d.outcome, d.decided_by, rules.join(", "))
}

pub async fn register(store: &dyn Store, matcher: &NameMatcher, ctx: &Ctx, input: ReferralForCreate) -> Result<Registered, AppError> {
    let ws = &ctx.workspace_id;
    let partner_id = acting_partner(ctx, input.partner_id.clone())?;
    let partner = match store.partner(ws, &partner_id).await {
        Ok(p) => p,
        Err(StoreError::NotFound) => return Err(AppError::invalid("partner_id", "no partner with this id")),
        Err(e) => return Err(e.into()),
    };
    if partner.status != PartnerStatus::Active {
        return Err(AppError::invalid("partner_id", format!("the partner is {}; only active partners register referrals", partner.status)));
    }
    let domain = company_domain(input.company_domain.clone(), &input.contact_email)?;
    let keys = claim_keys(domain.as_str(), input.contact_email.as_str());
    let rules = store.rules(ws).await?;
    let checked = check_conflicts(store, matcher, ws, &partner_id, &input.company_name, &keys, rules.fuzzy_threshold, ctx.now).await?;
    if let Some(own) = checked.own_referral {
        return Ok(Registered::Existing(store.referral(ws, &own).await?));
    }
    let evidence = checked.evidence;
    let (outcome, reasons) = decide(&evidence, &rules);

    let approved = outcome == Outcome::Approved;
    let currency = match &input.estimated_value {
        Some(v) => v.currency(),
        None => Currency::parse("currency", &store.workspace(ws).await?.currency).unwrap_or(Currency::USD),
    };
    let id = ids::referral_id(ctx.now);
    let deal = approved.then(|| Deal {
        id: ids::deal_id(ctx.now),
        name: input.company_name.clone(),
        company_name: input.company_name.clone(),
        company_domain: Some(domain.clone()),
        stage: Stage::New,
        amount: input.estimated_value.unwrap_or(Money::zero(currency)),
        source: DealSource::Partner,
        owner_email: None,
        created_at: ctx.now,
        closed_at: None,
        updated_at: ctx.now,
    });
    let referral = Referral {
        id,
        partner_id: partner_id.clone(),
        status: outcome.status(),
        channel: input.channel,
        company_name: input.company_name,
        company_domain: domain,
        contact_name: input.contact_name,
        contact_email: input.contact_email,
        contact_title: input.contact_title,
        context: input.context,
        estimated_value: input.estimated_value,
        decision: Decision { outcome, reasons, decided_at: ctx.now, decided_by: "rules".into() },
        protection: approved.then(|| protection(ctx.now, rules.protection_days)),
        stage: approved.then_some(Stage::New),
        deal_id: deal.as_ref().map(|d| d.id.clone()),
        amount: None,
        closed_at: None,
        dispute: None,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let events = vec![event(ctx, "submitted", format!("registered by {} via {}", partner.name, referral.channel))];
    let audit = audit(ctx, "referral.registered", None, &referral);
    let redecide = Box::new(move |winner: &partnerloop_domain::rules::ConflictingRegistration| {
        let mut e = evidence.clone();
        e.other_partner_registrations.push(winner.clone());
        let (o, r) = decide(&e, &rules);
        // The account is claimed: whatever the configured action, this one cannot be approved now.
        (if o == Outcome::Approved { Outcome::Review } else { o }, r)
    });
    Ok(store
        .register_referral(
            ws,
            NewRegistration { referral, deal, events, audit, redecide, first_referral: partner.first_referral_at.is_none() },
        )
        .await?)
}

/// Every conflict of a registration (or, first, the partner's own active
/// referral of the account, which ends the check): other partners' claims on its keys,
/// the account and open direct deals on its domains (exact, by index),
/// and similar company names among accounts and other partners' active
/// registrations (fuzzy) that did not already match exactly.
#[allow(clippy::too_many_arguments)]
pub async fn check_conflicts(
    store: &dyn Store,
    matcher: &NameMatcher,
    ws: &partnerloop_domain::ids::WorkspaceId,
    partner_id: &PartnerId,
    company_name: &str,
    keys: &[String],
    threshold: f64,
    now: Timestamp,
) -> Result<Conflicts, AppError> {
    let mut checked = store.conflict_evidence(ws, partner_id, keys, now).await?;
    if checked.own_referral.is_some() {
        return Ok(checked);
    }
    let evidence = &mut checked.evidence;
    let known: Vec<String> = evidence
        .other_partner_registrations
        .iter()
        .map(|c| c.referral_id.clone())
        .chain(evidence.account.iter().map(|a| a.account_id.clone()))
        .collect();
    let similar = matcher.search(store, ws, company_name, threshold, 5).await?;
    evidence.similar_names = similar
        .into_iter()
        .filter_map(|m| {
            let (id, owner) = parse_key(&m.key);
            let own = owner == Some(partner_id.as_str());
            (!own && !known.iter().any(|k| k == id)).then(|| SimilarName { id: id.to_owned(), name: m.name.clone(), score: m.score })
        })
        .collect();
    Ok(checked)
}

/// A protection window of `days` from `start`.
pub fn protection(start: Timestamp, days: u32) -> Protection {
    Protection { starts_at: start, expires_at: start + SignedDuration::from_hours(24 * i64::from(days)) }
}
