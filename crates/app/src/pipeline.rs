//! The native pipeline's stages and the labels partners see for them.
//! Workspaces may rename any stage ("Proposal out"); unnamed ones keep the
//! default label.

use std::collections::BTreeMap;

use partnerloop_domain::deal::{Stage, parse_stage_label};
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::AppError;
use crate::store::{AuditEntry, Store};

/// Every stage, in pipeline order, with its label in this workspace.
pub async fn labels(store: &dyn Store, ctx: &Ctx) -> Result<Vec<(Stage, String)>, AppError> {
    let own = store.stage_labels(&ctx.workspace_id).await?;
    Ok(Stage::ALL.iter().map(|s| (*s, own.get(s.as_str()).cloned().unwrap_or_else(|| s.default_label().to_owned()))).collect())
}

/// Renames stages (admin). `changes` maps stage names to labels; an empty
/// label restores the default.
pub async fn set_labels(store: &dyn Store, ctx: &Ctx, changes: BTreeMap<String, String>) -> Result<Vec<(Stage, String)>, AppError> {
    ctx.require_admin()?;
    let before = store.stage_labels(&ctx.workspace_id).await?;
    let mut after = before.clone();
    let mut errors = Vec::new();
    for (stage, label) in changes {
        let field = format!("labels.{stage}");
        match Stage::parse(&field, &stage) {
            Err(e) => errors.push(e),
            Ok(s) if label.trim().is_empty() => {
                after.remove(s.as_str());
            }
            Ok(s) => match parse_stage_label(&field, &label) {
                Ok(l) => {
                    after.insert(s.as_str().to_owned(), l);
                }
                Err(e) => errors.push(e),
            },
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: "pipeline.labels_updated".into(),
        entity: "pipeline".into(),
        entity_id: ctx.workspace_id.to_string(),
        before: Some(json!(before)),
        after: Some(json!(after)),
    };
    store.put_stage_labels(&ctx.workspace_id, &after, &audit).await?;
    labels(store, ctx).await
}

/// The label of `stage` among `labels`.
pub fn label_of(labels: &[(Stage, String)], stage: Stage) -> String {
    labels.iter().find(|(s, _)| *s == stage).map(|(_, l)| l.clone()).unwrap_or_else(|| stage.default_label().to_owned())
}

/// Where a referral stands, in a partner's words: the stage label while the
/// deal is open, else the outcome.
pub fn partner_status(r: &partnerloop_domain::referral::Referral, labels: &BTreeMap<String, String>) -> String {
    use partnerloop_domain::referral::ReferralStatus as S;
    match (r.status, r.stage) {
        (S::Approved, Some(stage)) => labels.get(stage.as_str()).cloned().unwrap_or_else(|| stage.default_label().to_owned()),
        (S::Approved, None) => "Approved".into(),
        (S::PendingReview, _) => "Under review".into(),
        (S::Rejected, _) => "Not accepted".into(),
        (S::Won, _) => "Won".into(),
        (S::Lost, _) => "Closed, not won".into(),
        (S::Expired, _) => "Protection ended".into(),
        (S::Withdrawn, _) => "Withdrawn".into(),
    }
}

/// A timeline entry as a partner may read it (by its kind only: summaries
/// can name rules and the vendor's notes); `None` for internal entries.
pub fn partner_event(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "submitted" => "Registered",
        "decided" => "Checked against the rules of engagement",
        "approved" => "Approved",
        "rejected" => "Not accepted",
        "extended" => "Protection extended",
        "stage_changed" => "The deal moved on",
        "won" => "Won",
        "lost" => "Closed, not won",
        "disputed" => "You disputed the decision",
        "dispute_resolved" => "The dispute was resolved",
        "replied" => "You sent a note",
        _ => return None,
    })
}
