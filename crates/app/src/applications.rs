//! Recruitment: the public application form's submissions, scored against
//! the workspace's ideal-partner criteria, and the console's queue that
//! approves or rejects them.
//!
//! Rules:
//! - An application is a partner with status `applied` plus its answers and
//!   score (breakdown included), written in one transaction with the audit
//!   row `partner.applied`. Nothing is mailed to an applicant on applying.
//! - One application per contact email and workspace: a second submission
//!   from the address of a pending application replaces its answers and
//!   score (`partner.application_updated`); from any other partner contact
//!   it changes nothing. The form's answer is the same in every case, so it
//!   never tells whether an address is known.
//! - Only admins and managers decide (`Ctx::require_admin`). Approval makes
//!   the partner `active` (`partner.approved`, whose fan-out mails each
//!   contact the welcome with a portal sign-in link through the outbox);
//!   rejection needs a reason and archives the partner
//!   (`partner.application_rejected`). A decision applies only to a pending
//!   application whose partner is still `applied` (else a conflict).
//! - The criteria are read by any staff role and changed by admins and
//!   managers; scores already given are kept (they were given by the
//!   criteria of their day), a changed application is scored afresh.

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_domain::application::{self, Answers, ApplicationStatus, Criteria, ResponseTime, Score, Weights};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::partner::{Partner, PartnerStatus, PartnerType};
use partnerloop_domain::{Email, Money};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::{AppError, StoreError};
use crate::partners::{PartnerForCreate, audit_view, new_partner};
use crate::store::{AuditEntry, Store, StoreResult};

/// One application as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub id: String,
    pub partner_id: PartnerId,
    pub status: ApplicationStatus,
    pub industries: Vec<String>,
    /// In the workspace currency.
    pub typical_deal: Money,
    pub years_in_business: u32,
    pub client_count: u32,
    pub referrals_per_quarter: u32,
    pub response_time: ResponseTime,
    pub message: Option<String>,
    pub score: Score,
    /// The weights the score was given with.
    pub weights: Weights,
    pub decided_at: Option<Timestamp>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What the public form sends, parsed.
#[derive(Debug, Clone)]
pub struct ApplicationForCreate {
    pub company_name: String,
    pub partner_type: PartnerType,
    pub website: Option<CompanyDomain>,
    pub contact_name: String,
    pub contact_email: Email,
    pub industries: Vec<String>,
    pub typical_deal: Money,
    pub years_in_business: u32,
    pub client_count: u32,
    pub referrals_per_quarter: u32,
    pub response_time: ResponseTime,
    pub message: Option<String>,
}

/// What became of a submission (never shown to the applicant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Created {
        partner_id: PartnerId,
        application_id: String,
    },
    /// The email already belongs to a partner or an applicant: nothing changed.
    Ignored,
}

#[async_trait]
pub trait RecruitmentStore: Send + Sync {
    /// The workspace's ideal-partner criteria, if it set any.
    async fn criteria(&self, ws: &WorkspaceId) -> StoreResult<Option<Criteria>>;
    async fn put_criteria(&self, ws: &WorkspaceId, criteria: &Criteria, audit: &AuditEntry) -> StoreResult<()>;
    /// The applicant partner (with its contact), its application and the audit row, at once.
    async fn insert_application(
        &self,
        ws: &WorkspaceId,
        partner: &Partner,
        application: &Application,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn application(&self, ws: &WorkspaceId, id: &str) -> StoreResult<Application>;
    async fn application_of_partner(&self, ws: &WorkspaceId, partner: &PartnerId) -> StoreResult<Option<Application>>;
    /// Applications with `status`, best score first (then oldest first); at most `limit`.
    async fn list_applications(&self, ws: &WorkspaceId, status: ApplicationStatus, limit: u32) -> StoreResult<Vec<Application>>;
    /// Replaces an application's answers, score and decision fields if it was
    /// not changed since `expected_updated_at` ([`StoreError::Stale`] otherwise);
    /// with `partner_status`, also moves its partner from `applied` to it.
    async fn update_application(
        &self,
        ws: &WorkspaceId,
        application: &Application,
        expected_updated_at: Timestamp,
        partner_status: Option<PartnerStatus>,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    /// The partner (of any status) that has a contact with this email in the workspace.
    async fn partner_id_by_contact_email(&self, ws: &WorkspaceId, email: &str) -> StoreResult<Option<PartnerId>>;
    /// The partner whose personal link carries `code`, in any workspace.
    async fn partner_by_referral_code(&self, code: &str) -> StoreResult<Option<(WorkspaceId, Partner)>>;
}

/// The audit log's picture of an application.
pub fn application_view(a: &Application) -> Value {
    json!({
        "application_id": a.id,
        "status": a.status.as_str(),
        "industries": a.industries,
        "typical_deal": {"amount": a.typical_deal.amount_string(), "currency": a.typical_deal.currency().code()},
        "years_in_business": a.years_in_business,
        "client_count": a.client_count,
        "referrals_per_quarter": a.referrals_per_quarter,
        "response_time": a.response_time.as_str(),
        "score": {"total": a.score.total, "audience": a.score.audience, "deal_size": a.score.deal_size,
                  "credibility": a.score.credibility, "responsiveness": a.score.responsiveness},
        "decision_reason": a.decision_reason,
    })
}

fn with_application(partner: &Partner, a: &Application) -> Value {
    let mut v = audit_view(partner);
    v["application"] = application_view(a);
    v
}

/// The workspace's criteria, or the defaults when it set none. Any staff role reads them.
pub async fn criteria(store: &dyn Store, ctx: &Ctx) -> Result<Criteria, AppError> {
    if ctx.partner_scope().is_some() {
        return Err(AppError::Forbidden("partners do not see the recruitment criteria".into()));
    }
    Ok(store.criteria(&ctx.workspace_id).await?.unwrap_or_default())
}

/// Replaces the criteria (admins and managers).
pub async fn put_criteria(store: &dyn Store, ctx: &Ctx, c: Criteria) -> Result<Criteria, AppError> {
    ctx.require_admin()?;
    let errors = c.check();
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let before = store.criteria(&ctx.workspace_id).await?;
    let view = |c: &Criteria| {
        json!({
            "target_industries": c.target_industries,
            "deal_size_band": c.deal_size_band.map(|(a, b)| json!([a, b])),
            "referrals_per_quarter": c.referrals_per_quarter,
            "weights": {"audience": c.weights.audience, "deal_size": c.weights.deal_size,
                        "credibility": c.weights.credibility, "responsiveness": c.weights.responsiveness},
        })
    };
    let mut audit = AuditEntry::of(ctx, "recruitment.criteria_updated", "workspace", ctx.workspace_id.as_str(), view(&c));
    audit.before = before.as_ref().map(view);
    store.put_criteria(&ctx.workspace_id, &c, &audit).await?;
    Ok(c)
}

fn answers_of(input: &ApplicationForCreate) -> Answers {
    Answers {
        industries: input.industries.clone(),
        typical_deal_minor: input.typical_deal.minor(),
        years_in_business: input.years_in_business,
        client_count: input.client_count,
        has_website: input.website.is_some(),
        referrals_per_quarter: input.referrals_per_quarter,
        response_time: input.response_time,
    }
}

/// A submission of the public form. `ctx` is the form's own (`system:apply`).
pub async fn apply(store: &dyn Store, ctx: &Ctx, input: ApplicationForCreate) -> Result<Applied, AppError> {
    let ws = &ctx.workspace_id;
    let criteria = store.criteria(ws).await?.unwrap_or_default();
    let score = application::score(&criteria, &answers_of(&input));
    // The answers as an application of `partner_id`; a repeat keeps its first id and time.
    let fresh = |id: String, partner_id: PartnerId| Application {
        id,
        partner_id,
        status: ApplicationStatus::Pending,
        industries: input.industries.clone(),
        typical_deal: input.typical_deal,
        years_in_business: input.years_in_business,
        client_count: input.client_count,
        referrals_per_quarter: input.referrals_per_quarter,
        response_time: input.response_time,
        message: input.message.clone(),
        score,
        weights: criteria.weights,
        decided_at: None,
        decided_by: None,
        decision_reason: None,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    // An address that is already a partner's contact (pending applicant or
    // not) changes nothing: the form cannot prove who sends it, so a repeat
    // must not let anyone rewrite someone else's application.
    if existing_partner(store, ws, &input.contact_email).await?.is_some() {
        return Ok(Applied::Ignored);
    }
    let mut partner = new_partner(
        ctx,
        PartnerForCreate {
            name: input.company_name.clone(),
            partner_type: input.partner_type,
            status: PartnerStatus::Applied,
            tier: None,
            contact_name: input.contact_name.clone(),
            contact_email: input.contact_email.clone(),
            website: input.website.clone(),
            commission_plan_id: None,
            created_at: None,
        },
    );
    let app = fresh(crate::ids::new_id("apl", ctx.now), partner.id.clone());
    for _ in 0..5 {
        let audit = AuditEntry::of(ctx, "partner.applied", "partner", partner.id.as_str(), with_application(&partner, &app));
        match store.insert_application(ws, &partner, &app, &audit).await {
            Ok(()) => return Ok(Applied::Created { partner_id: partner.id, application_id: app.id }),
            Err(StoreError::Conflict { constraint }) if constraint == "partners_referral_code_uq" => {
                partner.referral_code = partnerloop_domain::partner::ReferralCode::from_random(rand::random());
            }
            // The same address applied a moment ago: a repeat, which changes nothing.
            Err(StoreError::Conflict { constraint }) if constraint == "partner_contacts_email_uq" => return Ok(Applied::Ignored),
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::conflict(None, "could not draw a unique referral code; try again"))
}

async fn existing_partner(store: &dyn Store, ws: &WorkspaceId, email: &Email) -> Result<Option<Partner>, AppError> {
    match store.partner_id_by_contact_email(ws, email.as_str()).await? {
        Some(id) => Ok(Some(store.partner(ws, &id).await?)),
        None => Ok(None),
    }
}

/// Applications waiting for a decision, best score first, with their partners.
pub async fn pending(store: &dyn Store, ctx: &Ctx, limit: u32) -> Result<Vec<(Application, Partner)>, AppError> {
    list(store, ctx, ApplicationStatus::Pending, limit).await
}

/// Applications with `status`, best score first, with their partners.
pub async fn list(store: &dyn Store, ctx: &Ctx, status: ApplicationStatus, limit: u32) -> Result<Vec<(Application, Partner)>, AppError> {
    if ctx.partner_scope().is_some() {
        return Err(AppError::NotFound);
    }
    let mut out = Vec::new();
    // The queue is short (its page is at most a few hundred): a read per partner is fine.
    for a in store.list_applications(&ctx.workspace_id, status, limit).await? {
        let p = store.partner(&ctx.workspace_id, &a.partner_id).await?;
        out.push((a, p));
    }
    Ok(out)
}

/// One application and its partner.
pub async fn get(store: &dyn Store, ctx: &Ctx, id: &str) -> Result<(Application, Partner), AppError> {
    if ctx.partner_scope().is_some() {
        return Err(AppError::NotFound);
    }
    let a = store.application(&ctx.workspace_id, id).await?;
    let p = store.partner(&ctx.workspace_id, &a.partner_id).await?;
    Ok((a, p))
}

async fn decide(store: &dyn Store, ctx: &Ctx, id: &str, approve: bool, reason: Option<String>) -> Result<Application, AppError> {
    ctx.require_admin()?;
    let (before, partner) = get(store, ctx, id).await?;
    if before.status != ApplicationStatus::Pending || partner.status != PartnerStatus::Applied {
        return Err(AppError::conflict(None, format!("this application is already {}", before.status)));
    }
    let after = Application {
        status: if approve { ApplicationStatus::Approved } else { ApplicationStatus::Rejected },
        decided_at: Some(ctx.now),
        decided_by: Some(ctx.actor.audit_name()),
        decision_reason: reason,
        updated_at: ctx.now,
        ..before.clone()
    };
    let status = if approve { PartnerStatus::Active } else { PartnerStatus::Archived };
    let partner_after = Partner { status, updated_at: ctx.now, ..partner.clone() };
    let action = if approve { "partner.approved" } else { "partner.application_rejected" };
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: action.into(),
        entity: "partner".into(),
        entity_id: partner.id.to_string(),
        before: Some(with_application(&partner, &before)),
        after: Some(with_application(&partner_after, &after)),
    };
    store.update_application(&ctx.workspace_id, &after, before.updated_at, Some(status), &audit).await?;
    Ok(after)
}

/// Approves a pending application: the partner becomes active and is welcomed.
pub async fn approve(store: &dyn Store, ctx: &Ctx, id: &str, note: Option<String>) -> Result<Application, AppError> {
    let note = partnerloop_domain::validation::optional_text("note", note.as_deref(), 2_000).map_err(|e| AppError::Invalid(vec![e]))?;
    decide(store, ctx, id, true, note).await
}

/// Rejects a pending application with a reason; the partner is archived.
pub async fn reject(store: &dyn Store, ctx: &Ctx, id: &str, reason: &str) -> Result<Application, AppError> {
    ctx.require_admin()?;
    let reason = partnerloop_domain::validation::required_text("reason", reason, 2_000).map_err(|e| AppError::Invalid(vec![e]))?;
    decide(store, ctx, id, false, Some(reason)).await
}
