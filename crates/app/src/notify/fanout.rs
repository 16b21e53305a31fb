//! The fan-out: each pending event becomes the outbox items it causes —
//! mail to the partner's contacts (by their preferences) and to partner
//! managers, a Slack message, one call per subscribed webhook endpoint.
//!
//! Rules: an item's idempotency key is `{event}:{channel}:{target}` (plus
//! the webhook event type), so running the fan-out of one event twice adds
//! nothing. Events are read as written (the audit row's after-state says
//! what happened); names and addresses are read as they are now.

use std::collections::HashSet;

use jiff::Timestamp;
use partnerloop_domain::partner::Partner;
use partnerloop_domain::referral::{Referral, ReferralId};
use partnerloop_domain::rules::redact_for_partner;
use serde_json::{Value, json};

use super::notice::{MailPayload, Mailbox, Notice};
use super::{NotifyConfig, slack};
use crate::error::StoreError;
use crate::outbox::{Channel, NewOutboxItem, NotificationSettings, PendingEvent, Topic, WebhookEndpoint};
use crate::store::Store;
use partnerloop_domain::ids::WorkspaceId;

/// Event types sent to webhooks (the audit actions that are public), and
/// the extra types derived from a stage change.
const PUBLIC_EVENTS: &[&str] = &[
    "referral.registered",
    "referral.approved",
    "referral.rejected",
    "referral.extended",
    "referral.stage_changed",
    "referral.disputed",
    "referral.dispute_resolved",
    "referral.expired",
    "referral.payment_recorded",
    "referral.replied",
    "partner.created",
    "partner.updated",
    "partner.tier_changed",
    "partner.applied",
    "partner.approved",
    "partner.application_rejected",
    "commission.released",
    "commission.reversed",
    "commission.adjusted",
    "payout.created",
    "payout.paid",
    "payout.cancelled",
    "deal.created",
    "account.created",
];

/// Every event type a webhook endpoint may subscribe to.
pub fn event_types() -> Vec<&'static str> {
    let mut all = PUBLIC_EVENTS.to_vec();
    all.extend(["referral.won", "referral.lost", "referral.protection_expiring", "referral.stalled"]);
    all
}

/// Whether an audit action is an event anyone may hear about (the store
/// queues only these for fan-out).
pub fn is_event(action: &str) -> bool {
    PUBLIC_EVENTS.contains(&action)
}

/// What the fan-out reads once per workspace and batch, not per event.
pub(super) struct WorkspaceView {
    pub name: String,
    pub endpoints: Vec<WebhookEndpoint>,
    pub settings: Option<NotificationSettings>,
    /// The connected CRM, if any: referral changes are written to it.
    pub crm: Option<crate::crm::CrmKind>,
}

impl WorkspaceView {
    pub(super) async fn read(store: &dyn Store, ws: &WorkspaceId) -> Result<Self, StoreError> {
        Ok(Self {
            name: store.workspace(ws).await?.name,
            endpoints: store.webhook_endpoints(ws).await?,
            settings: store.notification_settings(ws).await?,
            crm: store.crm_connection(ws).await?.map(|c| c.kind),
        })
    }
}

/// Builds the items of one event (a stored one, or one the scheduler
/// makes up: `referral.protection_expiring`, `referral.stalled`).
pub(super) async fn items_for(
    store: &dyn Store,
    cfg: &NotifyConfig,
    view: &WorkspaceView,
    ev: &PendingEvent,
    now: Timestamp,
) -> Result<Vec<NewOutboxItem>, StoreError> {
    let a = &ev.entry;
    let ws = &ev.workspace_id;
    let after = a.after.clone().unwrap_or(Value::Null);
    let mut b = Builder { ev, view, now, items: Vec::new() };

    let mut types = vec![a.action.clone()];
    if a.action == "referral.stage_changed" {
        match after["status"].as_str() {
            Some("won") => types.push("referral.won".into()),
            Some("lost") => types.push("referral.lost".into()),
            _ => {}
        }
    }
    for t in &types {
        for e in view.endpoints.iter().filter(|e| e.wants(t)) {
            let body = json!({
                "type": t,
                "timestamp": a.at.to_string(),
                "data": {"object": a.entity, "id": a.entity_id, "actor": a.actor, "before": a.before, "after": a.after},
            });
            b.push(Channel::Webhook, t, &format!("{}:{t}", e.id), &e.id, body);
        }
    }

    if a.entity == "referral" {
        if let Some(kind) = view.crm {
            for op in crate::crm_sync::ops_for(&a.action, &a.actor, &after, &a.entity_id) {
                let name = match &op {
                    crate::crm_sync::CrmOp::SyncDeal { .. } => "sync_deal",
                    crate::crm_sync::CrmOp::SetStage { .. } => "set_stage",
                    crate::crm_sync::CrmOp::AddNote { .. } => "add_note",
                };
                b.push(Channel::Crm, &a.action, name, kind.as_str(), serde_json::to_value(&op).unwrap_or_default());
            }
        }
        referral_items(store, cfg, &mut b, &after).await?;
    } else if a.action == "partner.created" || a.action == "partner.approved" {
        // A new partner, or an approved applicant: each contact is welcomed once.
        let partner = store.partner(ws, &partnerloop_domain::ids::PartnerId::from_string(&a.entity_id)).await?;
        b.items.extend(crate::signin::welcome_items(store, cfg, ws, &view.name, &partner, now).await?);
    } else if a.action == "commission.released" {
        payable_items(store, cfg, &mut b, &after).await?;
    } else if a.action == "payout.paid" {
        payout_items(store, cfg, &mut b).await?;
    } else if a.action == "partner.tier_changed" {
        let partner = store.partner(ws, &partnerloop_domain::ids::PartnerId::from_string(&a.entity_id)).await?;
        let from = a.before.as_ref().and_then(|v| v["tier"].as_str()).map(str::to_owned);
        let to = after["tier"].as_str().map(str::to_owned);
        let benefits = match (&to, store.tier_ladder(ws).await?) {
            (Some(slug), Some(l)) => {
                l.ladder.tiers().iter().find(|t| &t.slug == slug).map(|t| t.benefits.clone()).filter(|b| !b.is_empty())
            }
            _ => None,
        };
        let notice = Notice::TierChanged { from, to, benefits };
        mail_partner(store, cfg, &mut b, &partner, Topic::Earnings, notice, None).await?;
    }
    Ok(b.items)
}

struct Builder<'a> {
    ev: &'a PendingEvent,
    view: &'a WorkspaceView,
    now: Timestamp,
    items: Vec<NewOutboxItem>,
}

impl Builder<'_> {
    fn push(&mut self, channel: Channel, event: &str, key_part: &str, target: &str, payload: Value) {
        self.items.push(NewOutboxItem {
            id: crate::ids::new_id("obx", self.now),
            workspace_id: self.ev.workspace_id.clone(),
            channel,
            idempotency_key: format!("{}:{}:{key_part}", self.ev.audit_id, channel.as_str()),
            event: event.to_owned(),
            target: target.to_owned(),
            payload,
            created_at: self.now,
        });
    }
}

async fn referral_items(store: &dyn Store, cfg: &NotifyConfig, b: &mut Builder<'_>, after: &Value) -> Result<(), StoreError> {
    let ws = b.ev.workspace_id.clone();
    let a = b.ev.entry.clone();
    let r = store.referral(&ws, &ReferralId::from_string(&a.entity_id)).await?;
    let partner = store.partner(&ws, &r.partner_id).await?;
    let company = r.company_name.clone();
    let outcome = after["outcome"].as_str().unwrap_or_default().to_owned();
    let protected_until = after["protection_expires_at"].as_str().and_then(|t| t.parse().ok());
    let reasons = || redact_for_partner(&r.decision.reasons).into_iter().map(|x| x.detail).collect::<Vec<_>>();
    let review_url = format!("{}/admin/referrals/{}", cfg.base_url, r.id);
    let partner_notice = match a.action.as_str() {
        "referral.registered" => {
            Some(Notice::ReferralReceived { company: company.clone(), outcome: outcome.clone(), reasons: reasons(), protected_until })
        }
        "referral.approved" | "referral.rejected" | "referral.dispute_resolved" => {
            let note = after["note"].as_str().map(str::to_owned);
            Some(Notice::Decision { company: company.clone(), outcome: outcome.clone(), reasons: reasons(), note, protected_until })
        }
        "referral.extended" => r.protection.map(|p| Notice::ProtectionExtended {
            company: company.clone(),
            until: p.expires_at,
            reason: after["note"].as_str().unwrap_or_default().to_owned(),
        }),
        "referral.expired" => Some(Notice::ProtectionExpired { company: company.clone() }),
        "referral.protection_expiring" => {
            r.protection.map(|p| Notice::ProtectionExpiring { company: company.clone(), until: p.expires_at })
        }
        "referral.stage_changed" => Some(match after["status"].as_str() {
            Some("won") => {
                let accrual = store
                    .referral_commissions(&ws, &r.id)
                    .await?
                    .into_iter()
                    .rfind(|c| c.kind == partnerloop_domain::commission::CommissionKind::Accrual);
                Notice::Won {
                    company: company.clone(),
                    amount: r.amount.map(|m| m.to_string()),
                    commission: accrual.as_ref().map(|c| c.amount.to_string()),
                    payable_from: accrual.map(|c| c.available_at),
                }
            }
            Some("lost") => Notice::Lost { company: company.clone() },
            _ => {
                let stage = after["stage"].as_str().unwrap_or("new");
                let labels = store.stage_labels(&ws).await?;
                let label = labels.get(stage).cloned().unwrap_or_else(|| {
                    partnerloop_domain::deal::Stage::parse("stage", stage)
                        .map(|s| s.default_label().to_owned())
                        .unwrap_or_else(|_| stage.into())
                });
                Notice::StageChanged { company: company.clone(), stage_label: label }
            }
        }),
        _ => None,
    };
    if let Some(n) = partner_notice {
        mail_partner(store, cfg, b, &partner, Topic::ReferralUpdates, n, Some(&r)).await?;
    }

    // Partner managers hear what needs a person.
    let settings = b.view.settings.as_ref();
    let managers = settings.map(|s| s.manager_emails.clone()).unwrap_or_default();
    let manager_notice = match a.action.as_str() {
        "referral.registered" if outcome == "review" => Some(Notice::ReviewNeeded {
            company: company.clone(),
            partner: partner.name.clone(),
            reasons: r.decision.reasons.iter().map(|x| x.detail.clone()).collect(),
            review_url: review_url.clone(),
        }),
        "referral.replied" => Some(Notice::PartnerReplied {
            company: company.clone(),
            partner: partner.name.clone(),
            text: after["note"].as_str().unwrap_or_default().to_owned(),
            referral_url: review_url.clone(),
        }),
        "referral.disputed" => Some(Notice::Disputed {
            company: company.clone(),
            partner: partner.name.clone(),
            message: after["note"].as_str().unwrap_or_default().to_owned(),
            review_url: review_url.clone(),
        }),
        "referral.stalled" => Some(Notice::Stalled {
            company: company.clone(),
            partner: partner.name.clone(),
            stage_label: crate::pipeline::partner_status(&r, &store.stage_labels(&ws).await?),
            days: after["idle_days"].as_i64().unwrap_or_default(),
            referral_url: review_url.clone(),
        }),
        "referral.protection_expiring" => {
            r.protection.map(|p| Notice::ProtectionExpiring { company: company.clone(), until: p.expires_at })
        }
        _ => None,
    };
    if let Some(n) = manager_notice {
        // The deal's owner (when the deal names one) hears replies, stalls
        // and expiring protection; an expiry warning goes to the owner only.
        let mut managers = if a.action == "referral.protection_expiring" { Vec::new() } else { managers };
        if matches!(a.action.as_str(), "referral.replied" | "referral.stalled" | "referral.protection_expiring")
            && let Some(deal) = &r.deal_id
            && let Some(owner) = store.deal(&ws, deal).await?.owner_email
            && !managers.iter().any(|m| m.eq_ignore_ascii_case(owner.as_str()))
        {
            managers.push(owner.as_str().to_owned());
        }
        for m in &managers {
            let payload = MailPayload::new(Mailbox { name: None, email: m.clone() }, b.view.name.clone(), n.clone());
            b.push(Channel::Email, &a.action, m, m, serde_json::to_value(payload).unwrap_or_default());
        }
    }

    // Slack: new registrations (and whether they need review), wins.
    let slack_on = settings.is_some_and(|s| s.slack_sealed.is_some()) || cfg.default_slack_workspace.as_ref() == Some(&ws);
    if slack_on {
        let message = match (a.action.as_str(), after["status"].as_str()) {
            ("referral.registered", _) => Some(slack::registration(&r, &partner, &outcome, &review_url)),
            ("referral.stage_changed", Some("won")) => Some(slack::won(&r, &partner, &review_url)),
            _ => None,
        };
        if let Some(m) = message {
            b.push(Channel::Slack, &a.action, "slack", "slack", m);
        }
    }
    Ok(())
}

/// Commissions that became payable: the partner's contacts hear the sum
/// and their payable balance (a negative sum — a clawback released — is
/// not news worth a mail).
async fn payable_items(store: &dyn Store, cfg: &NotifyConfig, b: &mut Builder<'_>, after: &Value) -> Result<(), StoreError> {
    let ws = b.ev.workspace_id.clone();
    let (a, c) = (after["amount"]["amount"].as_str().unwrap_or_default(), after["amount"]["currency"].as_str().unwrap_or_default());
    let Ok(amount) = partnerloop_domain::Money::parse("amount", a, c) else {
        return Ok(());
    };
    if amount.minor() <= 0 {
        return Ok(());
    }
    let partner = store.partner(&ws, &partnerloop_domain::ids::PartnerId::from_string(&b.ev.entry.entity_id)).await?;
    let balance = store.partner_balances(&ws, &partner.id, b.now).await?.into_iter().find(|x| x.currency == amount.currency());
    let notice = Notice::CommissionPayable {
        amount: amount.to_string(),
        commissions: after["commissions"].as_u64().unwrap_or_default(),
        balance: balance.map(|x| x.payable.to_string()),
        earnings_url: format!("{}/portal", cfg.base_url),
    };
    mail_partner(store, cfg, b, &partner, Topic::Earnings, notice, None).await
}

async fn payout_items(store: &dyn Store, cfg: &NotifyConfig, b: &mut Builder<'_>) -> Result<(), StoreError> {
    let ws = b.ev.workspace_id.clone();
    let id = partnerloop_domain::commission::PayoutId::from_string(&b.ev.entry.entity_id);
    let payout = store.payout(&ws, &id).await?;
    for item in &payout.items {
        let partner = store.partner(&ws, &item.partner_id).await?;
        let notice = Notice::PayoutSent {
            total: item.amount.to_string(),
            commissions: item.commission_count,
            reference: payout.reference.clone(),
            statement_url: Some(format!("{}/portal", cfg.base_url)),
        };
        mail_partner(store, cfg, b, &partner, Topic::Earnings, notice, None).await?;
    }
    Ok(())
}

/// One mail per contact of the partner who has not opted out of `topic`.
async fn mail_partner(
    store: &dyn Store,
    cfg: &NotifyConfig,
    b: &mut Builder<'_>,
    partner: &Partner,
    topic: Topic,
    notice: Notice,
    referral: Option<&Referral>,
) -> Result<(), StoreError> {
    let ws = &b.ev.workspace_id;
    let opted_out: HashSet<_> =
        store.preferences(ws, &partner.id).await?.into_iter().filter(|p| p.topic == topic && !p.enabled).map(|p| p.contact_id).collect();
    let workspace = b.view.name.clone();
    let action = b.ev.entry.action.clone();
    let status_url = match referral {
        Some(r) => Some(cfg.status_url(&r.id, store.status_link_version(&r.id).await?, b.now)),
        None => None,
    };
    for c in partner.contacts.iter().filter(|c| !opted_out.contains(&c.id)) {
        let payload = MailPayload {
            to: Mailbox { name: Some(c.name.clone()), email: c.email.as_str().to_owned() },
            workspace: workspace.clone(),
            notice: notice.clone(),
            referral_id: referral.map(|r| r.id.to_string()),
            starts_thread: action == "referral.registered",
            reply_to: referral.map(|r| cfg.reply_address(&r.id)),
            status_url: status_url.clone(),
            preferences_url: Some(cfg.preferences_url(&c.id)),
            unsubscribe_url: Some(cfg.unsubscribe_url(&c.id, topic)),
        };
        b.push(Channel::Email, &action, c.email.as_str(), c.email.as_str(), serde_json::to_value(payload).unwrap_or_default());
    }
    Ok(())
}
