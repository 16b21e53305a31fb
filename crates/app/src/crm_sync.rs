//! Keeping a workspace's CRM in step with partnerloop, both ways.
//!
//! Rules: partnerloop never calls a CRM inside a request. A change that the
//! CRM must hear (an approval, a stage change made here, a partner's reply)
//! becomes a `crm` outbox item in the fan-out, delivered by the dispatcher
//! through [`deliver`] with retries; every write is idempotent (search or
//! upsert by external id), so a retry never makes a second deal. Stage
//! changes made in the CRM come back by webhook or polling and go through
//! the same `change_stage` use case as the native pipeline, by the actor
//! `system:hubspot` / `system:salesforce` (and are not echoed back).
//! Accounts and open deals read from the CRM are cached in `accounts` and
//! `deals`, so conflict checks treat them exactly like native ones.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::Timestamp;
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::deal::Stage;
use partnerloop_domain::ids::WorkspaceId;
use partnerloop_domain::referral::{ReferralId, ReferralStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::crm::{CrmAccount, CrmCompany, CrmConnector, CrmContact, CrmDealChange, CrmError, CrmKind, CrmOpenDeal, CrmRefs, DealForSync};
use crate::sealing::Sealer;
use crate::store::{AuditEntry, Store, StoreResult};
use crate::{AppError, Ctx};

partnerloop_domain::text_enum!(
    /// How a referral's last CRM write went.
    SyncStatus { Pending = "pending", Synced = "synced", Failed = "failed" }
);

/// Sealing context of a connection's secrets.
const SEAL_CONTEXT: &str = "crm secrets v1";
/// Backfill pages read per scheduler run and workspace (then it resumes).
const BACKFILL_PAGES_PER_RUN: usize = 200;
/// How often accounts and open deals are read again in full.
const BACKFILL_EVERY_HOURS: i64 = 24;

/// A connection's settings: nothing secret, shown by the API as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmSettings {
    /// HubSpot API base (default `https://api.hubapi.com`) or the
    /// Salesforce instance URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The HubSpot account (portal) whose webhooks this workspace takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_id: Option<u64>,
    /// The Salesforce org (`00D…`) whose Outbound Messages this workspace takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// HubSpot pipeline for new deals (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Salesforce REST API version (e.g. `v66.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Salesforce JWT bearer flow: login URL, consumer key, user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Client-side request budget per 10 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_10s: Option<u32>,
    /// CRM stage id → partnerloop stage. Unset: the CRM's defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stage_map: BTreeMap<String, String>,
}

/// A connection's secrets; stored sealed, never shown, never logged.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmSecrets {
    /// HubSpot private-app token or a Salesforce access token.
    #[serde(default)]
    pub token: Option<String>,
    /// HubSpot app client secret: verifies webhook signatures.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Salesforce JWT bearer flow: the RSA private key (PEM).
    #[serde(default)]
    pub private_key_pem: Option<String>,
}

impl std::fmt::Debug for CrmSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrmSecrets")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("private_key_pem", &self.private_key_pem.as_ref().map(|_| "…"))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmConnection {
    pub workspace_id: WorkspaceId,
    pub kind: CrmKind,
    pub settings: CrmSettings,
    pub secrets_sealed: String,
    pub poll_cursor: Option<String>,
    pub polled_at: Option<Timestamp>,
    pub backfill_cursor: Option<String>,
    pub backfilled_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl CrmConnection {
    pub fn secrets(&self, sealer: &Sealer) -> Result<CrmSecrets, String> {
        let plain = sealer.open(SEAL_CONTEXT, &self.secrets_sealed).map_err(|_| "the CRM secrets cannot be opened with this secret key")?;
        serde_json::from_slice(&plain).map_err(|e| format!("stored CRM secrets are unreadable: {e}"))
    }

    /// CRM stage id → partnerloop stage: the workspace's map, else the
    /// CRM's usual default pipeline.
    pub fn stage_map(&self) -> BTreeMap<String, Stage> {
        let given: BTreeMap<String, Stage> =
            self.settings.stage_map.iter().filter_map(|(k, v)| Stage::parse("stage_map", v).ok().map(|s| (k.clone(), s))).collect();
        if !given.is_empty() {
            return given;
        }
        default_stage_map(self.kind).into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// The CRM stage for a partnerloop stage: the first CRM stage mapped to
    /// it (the map is ordered by CRM id, so the choice is stable).
    pub fn crm_stage(&self, stage: Stage) -> Option<String> {
        let map = self.stage_map();
        let preferred = default_stage_map(self.kind).into_iter().find(|(k, v)| *v == stage && map.get(*k) == Some(&stage));
        preferred.map(|(k, _)| k.to_owned()).or_else(|| map.into_iter().find(|(_, v)| *v == stage).map(|(k, _)| k))
    }
}

/// The stage ids of HubSpot's default deal pipeline and Salesforce's
/// standard Opportunity stages, in pipeline order.
pub fn default_stage_map(kind: CrmKind) -> Vec<(&'static str, Stage)> {
    match kind {
        CrmKind::Hubspot => vec![
            ("appointmentscheduled", Stage::Meeting),
            ("qualifiedtobuy", Stage::Qualified),
            ("presentationscheduled", Stage::Proposal),
            ("decisionmakerboughtin", Stage::Negotiation),
            ("contractsent", Stage::Negotiation),
            ("closedwon", Stage::ClosedWon),
            ("closedlost", Stage::ClosedLost),
        ],
        CrmKind::Salesforce => vec![
            ("Prospecting", Stage::New),
            ("Qualification", Stage::Qualified),
            ("Needs Analysis", Stage::Meeting),
            ("Value Proposition", Stage::Proposal),
            ("Proposal/Price Quote", Stage::Proposal),
            ("Negotiation/Review", Stage::Negotiation),
            ("Closed Won", Stage::ClosedWon),
            ("Closed Lost", Stage::ClosedLost),
        ],
        CrmKind::Native => Vec::new(),
    }
}

/// A referral's place in the CRM, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmLink {
    pub referral_id: ReferralId,
    pub kind: CrmKind,
    pub company_id: Option<String>,
    pub contact_id: Option<String>,
    pub deal_id: Option<String>,
    pub status: SyncStatus,
    pub last_error: Option<String>,
    pub synced_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// An open CRM deal cached for conflict checks, its stage mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDeal {
    pub deal: CrmOpenDeal,
    pub stage: Stage,
}

#[async_trait]
pub trait CrmStore: Send + Sync {
    async fn crm_connection(&self, ws: &WorkspaceId) -> StoreResult<Option<CrmConnection>>;
    /// Every workspace's connection (the scheduler and webhooks walk them).
    async fn crm_connections(&self) -> StoreResult<Vec<CrmConnection>>;
    async fn put_crm_connection(&self, c: &CrmConnection, audit: &AuditEntry) -> StoreResult<()>;
    async fn delete_crm_connection(&self, ws: &WorkspaceId, audit: &AuditEntry) -> StoreResult<bool>;
    /// Records a poll, a backfill step or an error on the connection.
    async fn crm_progress(&self, ws: &WorkspaceId, progress: &CrmProgress) -> StoreResult<()>;
    async fn crm_link(&self, ws: &WorkspaceId, referral: &ReferralId) -> StoreResult<Option<CrmLink>>;
    async fn put_crm_link(&self, ws: &WorkspaceId, link: &CrmLink) -> StoreResult<()>;
    async fn referral_by_crm_deal(&self, ws: &WorkspaceId, deal_id: &str) -> StoreResult<Option<ReferralId>>;
    /// True the first time an event id is seen.
    async fn first_sight_of_crm_event(&self, ws: &WorkspaceId, event_id: &str, at: Timestamp) -> StoreResult<bool>;
    /// Upserts accounts (by domain) and open deals (by CRM id) into the
    /// native tables, with the fuzzy-name log for new accounts.
    async fn cache_crm_records(
        &self,
        ws: &WorkspaceId,
        accounts: &[CrmAccount],
        deals: &[CachedDeal],
        currency: &str,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Moves a cached (non-referral) CRM deal to `stage`, with its amount
    /// when the CRM gave one; false if unknown or unchanged.
    async fn set_cached_deal_stage(
        &self,
        ws: &WorkspaceId,
        crm_id: &str,
        stage: Stage,
        amount: Option<partnerloop_domain::Money>,
        now: Timestamp,
    ) -> StoreResult<bool>;
}

/// What [`CrmStore::crm_progress`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrmProgress {
    Polled { cursor: String, at: Timestamp },
    Backfill { cursor: Option<String>, done_at: Option<Timestamp> },
    Error { error: Option<String>, at: Timestamp },
}

/// Builds connectors from stored connections (the `partnerloop-crm` crate
/// knows the concrete ones; the binary wires it in).
pub trait ConnectorFactory: Send + Sync {
    /// `currency`: the workspace's, for amounts the CRM gives without one.
    fn build(&self, kind: CrmKind, settings: &CrmSettings, secrets: &CrmSecrets, currency: &str) -> Result<Arc<dyn CrmConnector>, String>;
}

/// A connector and the connection version it was built from.
type Built = (Timestamp, Arc<dyn CrmConnector>);

/// Connectors per workspace, rebuilt when the connection changes, so that
/// one connector's rate limiter governs every call to that CRM.
pub struct CrmHub {
    factory: Arc<dyn ConnectorFactory>,
    sealer: Arc<Sealer>,
    built: Mutex<HashMap<WorkspaceId, Built>>,
}

impl CrmHub {
    pub fn new(factory: Arc<dyn ConnectorFactory>, sealer: Arc<Sealer>) -> Self {
        Self { factory, sealer, built: Mutex::new(HashMap::new()) }
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The workspace's connector, built (and `prepare`d: HubSpot's custom
    /// properties created) on first use after each change of the
    /// connection. A build error is permanent; a failed `prepare` is
    /// whatever the CRM said (an outage is retried).
    pub async fn connector(&self, store: &dyn Store, c: &CrmConnection) -> Result<Arc<dyn CrmConnector>, CrmError> {
        if let Ok(map) = self.built.lock()
            && let Some((at, conn)) = map.get(&c.workspace_id)
            && *at == c.updated_at
        {
            return Ok(conn.clone());
        }
        let rejected = |message: String| CrmError::Rejected { status: 0, message };
        let currency =
            store.workspace(&c.workspace_id).await.map_err(|e| CrmError::Unavailable(format!("partnerloop's database: {e}")))?.currency;
        let built = self.factory.build(c.kind, &c.settings, &c.secrets(&self.sealer).map_err(rejected)?, &currency).map_err(rejected)?;
        built.prepare().await?;
        if let Ok(mut map) = self.built.lock() {
            map.insert(c.workspace_id.clone(), (c.updated_at, built.clone()));
        }
        Ok(built)
    }
}

/// What an admin sends to connect a CRM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmConnectionInput {
    pub kind: String,
    #[serde(default)]
    pub settings: CrmSettings,
    #[serde(default)]
    pub secrets: CrmSecrets,
}

/// Connects (or reconnects) the workspace's CRM. Secrets given replace the
/// stored ones; secrets not given stay.
pub async fn connect(store: &dyn Store, sealer: &Sealer, ctx: &Ctx, input: CrmConnectionInput) -> Result<CrmConnection, AppError> {
    ctx.require_admin()?;
    let kind = match input.kind.as_str() {
        "hubspot" => CrmKind::Hubspot,
        "salesforce" => CrmKind::Salesforce,
        _ => return Err(AppError::invalid("kind", "must be one of: hubspot, salesforce")),
    };
    for (crm_stage, ours) in &input.settings.stage_map {
        Stage::parse(&format!("settings.stage_map.{crm_stage}"), ours).map_err(|e| AppError::Invalid(vec![e]))?;
    }
    if let Some(url) = &input.settings.base_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(AppError::invalid("settings.base_url", "must be an http(s) URL"));
    }
    if input.settings.requests_per_10s == Some(0) {
        return Err(AppError::invalid("settings.requests_per_10s", "must be at least 1"));
    }
    let existing = store.crm_connection(&ctx.workspace_id).await?;
    let mut secrets = match &existing {
        Some(c) if c.kind == kind => c.secrets(sealer).map_err(|e| AppError::invalid("secrets", &e))?,
        _ => CrmSecrets::default(),
    };
    if input.secrets.token.is_some() {
        secrets.token = input.secrets.token;
    }
    if input.secrets.client_secret.is_some() {
        secrets.client_secret = input.secrets.client_secret;
    }
    if input.secrets.private_key_pem.is_some() {
        secrets.private_key_pem = input.secrets.private_key_pem;
    }
    match kind {
        CrmKind::Hubspot if secrets.token.as_deref().is_none_or(str::is_empty) => {
            return Err(AppError::invalid("secrets.token", "a HubSpot private-app token is required"));
        }
        CrmKind::Salesforce => {
            if input.settings.base_url.is_none() {
                return Err(AppError::invalid("settings.base_url", "the Salesforce instance URL is required"));
            }
            let jwt = secrets.private_key_pem.is_some() && input.settings.client_id.is_some() && input.settings.username.is_some();
            if secrets.token.is_none() && !jwt {
                return Err(AppError::invalid(
                    "secrets.token",
                    "a Salesforce access token, or a private key with settings.client_id and settings.username (JWT bearer flow), is required",
                ));
            }
        }
        _ => {}
    }
    let sealed = sealer.seal(SEAL_CONTEXT, &serde_json::to_vec(&secrets).unwrap_or_default());
    let c = CrmConnection {
        workspace_id: ctx.workspace_id.clone(),
        kind,
        settings: input.settings,
        secrets_sealed: sealed,
        poll_cursor: existing.as_ref().filter(|e| e.kind == kind).and_then(|e| e.poll_cursor.clone()),
        polled_at: existing.as_ref().filter(|e| e.kind == kind).and_then(|e| e.polled_at),
        backfill_cursor: None,
        backfilled_at: None,
        last_error: None,
        created_at: existing.as_ref().map_or(ctx.now, |e| e.created_at),
        updated_at: ctx.now,
    };
    let audit = AuditEntry::of(ctx, "crm.connected", "workspace", ctx.workspace_id.as_str(), view(&c));
    store.put_crm_connection(&c, &audit).await?;
    if existing.as_ref().is_none_or(|e| e.kind != kind) {
        push_existing(store, ctx, &c).await?;
    }
    Ok(c)
}

/// Referrals approved or won before the CRM was connected: each becomes a
/// `sync_deal` outbox item, so the CRM gets the program's history too (a
/// won one as a closed-won, partner-sourced deal). Keys name the
/// connection, so connecting the same CRM again pushes nothing twice.
async fn push_existing(store: &dyn Store, ctx: &Ctx, c: &CrmConnection) -> Result<u64, AppError> {
    use crate::outbox::{Channel, NewOutboxItem};
    use crate::store::{Page, ReferralFilter};
    let mut queued = 0;
    for status in [ReferralStatus::Approved, ReferralStatus::Won] {
        let filter = ReferralFilter { status: Some(status), partner_id: None };
        let mut page = Page { limit: 500, after: None };
        loop {
            let found = store.list_referrals(&ctx.workspace_id, &filter, &page).await?;
            let items: Vec<NewOutboxItem> = found
                .items
                .iter()
                .map(|r| NewOutboxItem {
                    id: crate::ids::new_id("obx", ctx.now),
                    workspace_id: ctx.workspace_id.clone(),
                    channel: Channel::Crm,
                    idempotency_key: format!("crm-connect:{}:{}:{}:sync_deal", c.kind.as_str(), c.created_at, r.id),
                    event: "crm.connected".into(),
                    target: c.kind.as_str().into(),
                    payload: serde_json::to_value(CrmOp::SyncDeal { referral_id: r.id.to_string() }).unwrap_or_default(),
                    created_at: ctx.now,
                })
                .collect();
            queued += store.enqueue(&items).await?;
            match found.next_after {
                Some(after) => page.after = Some(after),
                None => break,
            }
        }
    }
    if queued > 0 {
        tracing::info!(workspace = %ctx.workspace_id, queued, crm = c.kind.as_str(), "existing referrals queued for the CRM");
    }
    Ok(queued)
}

pub async fn disconnect(store: &dyn Store, ctx: &Ctx) -> Result<(), AppError> {
    ctx.require_admin()?;
    let audit = AuditEntry::of(ctx, "crm.disconnected", "workspace", ctx.workspace_id.as_str(), json!({}));
    if store.delete_crm_connection(&ctx.workspace_id, &audit).await? { Ok(()) } else { Err(AppError::NotFound) }
}

pub async fn connection(store: &dyn Store, ctx: &Ctx) -> Result<CrmConnection, AppError> {
    ctx.require_admin()?;
    store.crm_connection(&ctx.workspace_id).await?.ok_or(AppError::NotFound)
}

/// The connection as the API and the audit log show it: no secrets, only
/// which ones are set.
pub fn view(c: &CrmConnection) -> Value {
    json!({
        "kind": c.kind.as_str(),
        "settings": c.settings,
        "stage_map": c.stage_map().into_iter().map(|(k, v)| (k, v.as_str())).collect::<BTreeMap<_, _>>(),
        "poll_cursor": c.poll_cursor,
        "polled_at": c.polled_at.map(|t| t.to_string()),
        "backfilled_at": c.backfilled_at.map(|t| t.to_string()),
        "backfill_in_progress": c.backfill_cursor.is_some(),
        "last_error": c.last_error,
        "created_at": c.created_at.to_string(),
        "updated_at": c.updated_at.to_string(),
    })
}

/// A referral's CRM sync state (the referral itself must be visible to `ctx`).
pub async fn link(store: &dyn Store, ctx: &Ctx, id: &ReferralId) -> Result<Option<CrmLink>, AppError> {
    crate::referrals::get(store, ctx, id).await?;
    Ok(store.crm_link(&ctx.workspace_id, id).await?)
}

/// One CRM write, as an outbox payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CrmOp {
    /// Company, contact and deal for an approved referral (idempotent).
    SyncDeal { referral_id: String },
    /// The referral's stage changed here: move the CRM deal.
    SetStage { referral_id: String },
    /// A note on the referral's deal (a partner's reply, a key event).
    AddNote { referral_id: String, html: String },
}

/// The CRM items an event causes, for the fan-out. Changes that came from
/// the CRM are not sent back to it.
pub fn ops_for(action: &str, actor: &str, after: &Value, referral_id: &str) -> Vec<CrmOp> {
    if actor == "system:hubspot" || actor == "system:salesforce" {
        return Vec::new();
    }
    let id = referral_id.to_owned();
    let approved = after["status"].as_str() == Some("approved");
    match action {
        "referral.registered" | "referral.approved" | "referral.dispute_resolved" if approved => vec![CrmOp::SyncDeal { referral_id: id }],
        "referral.stage_changed" => vec![CrmOp::SetStage { referral_id: id }],
        "referral.replied" => {
            let text = after["note"].as_str().unwrap_or_default();
            vec![CrmOp::AddNote { referral_id: id, html: format!("<p><strong>Partner reply:</strong></p><p>{}</p>", html_escape(text)) }]
        }
        "referral.extended" => {
            let until = after["protection_expires_at"].as_str().unwrap_or_default();
            let why = after["note"].as_str().unwrap_or_default();
            vec![CrmOp::AddNote {
                referral_id: id,
                html: format!("<p>Partner protection extended until {}: {}</p>", html_escape(until), html_escape(why)),
            }]
        }
        _ => Vec::new(),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// Delivers one CRM outbox item. `key` is the item's idempotency key.
/// The referral's link records the outcome either way.
pub async fn deliver(store: &dyn Store, hub: &CrmHub, ws: &WorkspaceId, op: &CrmOp, key: &str, now: Timestamp) -> Result<(), CrmError> {
    let unavailable = |e: crate::error::StoreError| CrmError::Unavailable(format!("partnerloop's database: {e}"));
    let Some(conn) = store.crm_connection(ws).await.map_err(unavailable)? else {
        return Err(CrmError::Rejected { status: 0, message: "no CRM is connected to this workspace".into() });
    };
    let referral_id = match op {
        CrmOp::SyncDeal { referral_id } | CrmOp::SetStage { referral_id } | CrmOp::AddNote { referral_id, .. } => {
            ReferralId::from_string(referral_id)
        }
    };
    let known = store.crm_link(ws, &referral_id).await.map_err(unavailable)?;
    let result: Result<CrmRefs, CrmError> = async {
        let crm = hub.connector(store, &conn).await?;
        let refs = match (op, known.as_ref().and_then(|l| l.deal_id.clone())) {
            // Only a deal that exists can be moved or noted: otherwise sync
            // it first (the sync carries the current stage).
            (CrmOp::SetStage { .. } | CrmOp::AddNote { .. }, Some(deal_id)) => {
                let k = known.as_ref();
                CrmRefs { company_id: k.and_then(|l| l.company_id.clone()), contact_id: k.and_then(|l| l.contact_id.clone()), deal_id }
            }
            _ => {
                let deal = deal_for_sync(store, &conn, ws, &referral_id).await?;
                let prior = known.as_ref().and_then(|l| {
                    l.deal_id.clone().map(|deal_id| CrmRefs { company_id: l.company_id.clone(), contact_id: l.contact_id.clone(), deal_id })
                });
                let refs = crm.sync_deal(&deal, prior.as_ref()).await?;
                if matches!(op, CrmOp::SetStage { .. }) {
                    return Ok(refs);
                }
                refs
            }
        };
        match op {
            CrmOp::SyncDeal { .. } => {}
            CrmOp::SetStage { .. } => {
                let r = store.referral(ws, &referral_id).await.map_err(unavailable)?;
                let stage = r.stage.unwrap_or(Stage::New);
                if let Some(crm_stage) = conn.crm_stage(stage) {
                    crm.set_stage(&refs.deal_id, &crm_stage, r.amount).await?;
                }
            }
            CrmOp::AddNote { html, .. } => {
                crm.add_note(&refs.deal_id, key, html, now).await?;
            }
        }
        Ok(refs)
    }
    .await;
    let mut link = known.unwrap_or(CrmLink {
        referral_id: referral_id.clone(),
        kind: conn.kind,
        company_id: None,
        contact_id: None,
        deal_id: None,
        status: SyncStatus::Pending,
        last_error: None,
        synced_at: None,
        updated_at: now,
    });
    link.kind = conn.kind;
    link.updated_at = now;
    match &result {
        Ok(refs) => {
            link.company_id = refs.company_id.clone().or(link.company_id);
            link.contact_id = refs.contact_id.clone().or(link.contact_id);
            link.deal_id = Some(refs.deal_id.clone());
            link.status = SyncStatus::Synced;
            link.last_error = None;
            link.synced_at = Some(now);
        }
        Err(e) => {
            link.status = if e.is_retryable() { SyncStatus::Pending } else { SyncStatus::Failed };
            link.last_error = Some(e.to_string());
        }
    }
    store.put_crm_link(ws, &link).await.map_err(unavailable)?;
    result.map(|_| ())
}

/// What the CRM is told about a referral, as it stands now.
async fn deal_for_sync(store: &dyn Store, conn: &CrmConnection, ws: &WorkspaceId, id: &ReferralId) -> Result<DealForSync, CrmError> {
    let unavailable = |e: crate::error::StoreError| CrmError::Unavailable(format!("partnerloop's database: {e}"));
    let r = store.referral(ws, id).await.map_err(unavailable)?;
    if !matches!(r.status, ReferralStatus::Approved | ReferralStatus::Won | ReferralStatus::Lost) {
        return Err(CrmError::Rejected { status: 0, message: format!("the referral is {}, not approved", r.status.as_str()) });
    }
    let partner = store.partner(ws, &r.partner_id).await.map_err(unavailable)?;
    let (first, last) = match r.contact_name.trim().rsplit_once(' ') {
        Some((f, l)) => (Some(f.trim().to_owned()), Some(l.trim().to_owned())),
        None if r.contact_name.trim().is_empty() => (None, None),
        None => (Some(r.contact_name.trim().to_owned()), None),
    };
    let stage = r.stage.unwrap_or(Stage::New);
    let crm_stage = conn
        .crm_stage(stage)
        .or_else(|| conn.stage_map().keys().next().cloned())
        .ok_or_else(|| CrmError::Rejected { status: 0, message: "the stage map names no CRM stage".into() })?;
    Ok(DealForSync {
        referral_id: r.id.to_string(),
        partner_id: partner.id.to_string(),
        partner_name: partner.name.clone(),
        company: CrmCompany { name: r.company_name.clone(), domain: Some(r.company_domain.as_str().to_owned()) },
        contact: Some(CrmContact { email: r.contact_email.as_str().to_owned(), first_name: first, last_name: last }),
        deal_name: format!("{} – via {}", r.company_name, partner.name),
        amount: r.amount.or(r.estimated_value),
        stage: crm_stage,
        close_date: r.closed_at.map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date()),
    })
}

/// Applies a stage change the CRM reports (webhook or poll). A deal of a
/// referral moves that referral through `change_stage`; any other deal is
/// a cached direct deal whose stage is kept current. Returns whether
/// anything changed.
pub async fn apply_change(store: &dyn Store, conn: &CrmConnection, change: &CrmDealChange, now: Timestamp) -> Result<bool, AppError> {
    let ws = &conn.workspace_id;
    let Some(stage) = conn.stage_map().get(&change.stage).copied() else {
        tracing::info!(workspace = %ws, stage = %change.stage, "a CRM stage the stage map does not name; ignored");
        return Ok(false);
    };
    let referral = match &change.referral_id {
        Some(id) => Some(ReferralId::from_string(id)),
        None => store.referral_by_crm_deal(ws, &change.deal_id).await?,
    };
    let Some(id) = referral else {
        return Ok(store.set_cached_deal_stage(ws, &change.deal_id, stage, change.amount, now).await?);
    };
    let actor = match conn.kind {
        CrmKind::Salesforce => "salesforce",
        _ => "hubspot",
    };
    let ctx = Ctx::system(ws.clone(), actor, now);
    let r = match store.referral(ws, &id).await {
        Ok(r) => r,
        Err(crate::error::StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let amount = match stage {
        Stage::ClosedWon => change.amount.or(r.amount).or(r.estimated_value),
        _ => change.amount.filter(|_| stage == Stage::ClosedLost),
    };
    if stage == Stage::ClosedWon && amount.is_none() {
        tracing::warn!(workspace = %ws, referral = %id, "the CRM closed the deal won without an amount; the referral waits for one");
        return Ok(false);
    }
    if r.stage == Some(stage) && amount.is_none_or(|a| Some(a) == r.amount) {
        return Ok(false);
    }
    match crate::referrals::change_stage(store, &ctx, &id, stage, amount).await {
        Ok(_) => Ok(true),
        // Not approved (or protection over): the CRM may do what it likes
        // with its deal; the referral's state stands.
        Err(AppError::Conflict { message, .. }) => {
            tracing::info!(workspace = %ws, referral = %id, reason = %message, "a CRM stage change the referral cannot follow");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Reads stage changes since the last poll from every connected CRM and
/// applies them; the scheduler runs it (webhooks are faster, polling is
/// the fallback that never misses). Returns how many referrals or cached
/// deals changed.
pub async fn poll_all(store: &dyn Store, hub: &CrmHub, now: Timestamp) -> Result<u64, AppError> {
    let mut changed = 0;
    for conn in store.crm_connections().await? {
        match poll(store, hub, &conn, now).await {
            Ok(n) => changed += n,
            Err(e) => {
                tracing::warn!(workspace = %conn.workspace_id, error = %e, "polling the CRM failed");
                let p = CrmProgress::Error { error: Some(format!("polling: {e}")), at: now };
                store.crm_progress(&conn.workspace_id, &p).await?;
            }
        }
    }
    Ok(changed)
}

/// Polls one workspace's CRM (after a webhook, to read the deals' current
/// state); errors are recorded on the connection and returned.
pub async fn poll_one(store: &dyn Store, hub: &CrmHub, conn: &CrmConnection, now: Timestamp) -> Result<u64, String> {
    let fresh = store.crm_connection(&conn.workspace_id).await.map_err(|e| e.to_string())?.unwrap_or_else(|| conn.clone());
    let outcome = poll(store, hub, &fresh, now).await;
    if let Err(e) = &outcome {
        let p = CrmProgress::Error { error: Some(format!("polling: {e}")), at: now };
        store.crm_progress(&conn.workspace_id, &p).await.map_err(|e| e.to_string())?;
    }
    outcome
}

async fn poll(store: &dyn Store, hub: &CrmHub, conn: &CrmConnection, now: Timestamp) -> Result<u64, String> {
    let crm = hub.connector(store, conn).await.map_err(|e| e.to_string())?;
    let mut cursor = conn.poll_cursor.clone();
    let mut changed = 0;
    // Pages until the CRM has nothing newer (bounded per run).
    for _ in 0..50 {
        let page = crm.changes_since(cursor.as_deref()).await.map_err(|e| e.to_string())?;
        for c in &page.changes {
            if apply_change(store, conn, c, now).await.map_err(|e| e.to_string())? {
                changed += 1;
            }
        }
        let done = page.changes.is_empty() || cursor.as_deref() == Some(page.cursor.as_str());
        cursor = Some(page.cursor);
        if done {
            break;
        }
    }
    if let Some(c) = cursor {
        store.crm_progress(&conn.workspace_id, &CrmProgress::Polled { cursor: c, at: now }).await.map_err(|e| e.to_string())?;
    }
    Ok(changed)
}

/// Reads the CRM's accounts and open deals into the local cache, a bounded
/// number of pages per run, resuming where the last run stopped; starts
/// again from the beginning once a day. Returns the records cached.
pub async fn backfill_all(store: &dyn Store, hub: &CrmHub, now: Timestamp) -> Result<u64, AppError> {
    let mut cached = 0;
    for conn in store.crm_connections().await? {
        let due =
            conn.backfill_cursor.is_some() || conn.backfilled_at.is_none_or(|t| now.duration_since(t).as_hours() >= BACKFILL_EVERY_HOURS);
        if !due {
            continue;
        }
        match backfill(store, hub, &conn, now).await {
            Ok(n) => cached += n,
            Err(e) => {
                tracing::warn!(workspace = %conn.workspace_id, error = %e, "reading accounts from the CRM failed");
                let p = CrmProgress::Error { error: Some(format!("backfill: {e}")), at: now };
                store.crm_progress(&conn.workspace_id, &p).await?;
            }
        }
    }
    Ok(cached)
}

async fn backfill(store: &dyn Store, hub: &CrmHub, conn: &CrmConnection, now: Timestamp) -> Result<u64, String> {
    let crm = hub.connector(store, conn).await.map_err(|e| e.to_string())?;
    let ws = &conn.workspace_id;
    let currency = store.workspace(ws).await.map_err(|e| e.to_string())?.currency;
    let map = conn.stage_map();
    let mut cursor = conn.backfill_cursor.clone();
    let mut cached = 0u64;
    for _ in 0..BACKFILL_PAGES_PER_RUN {
        let page = crm.backfill(cursor.as_deref()).await.map_err(|e| e.to_string())?;
        let deals: Vec<CachedDeal> = page
            .open_deals
            .into_iter()
            .filter(|d| d.referral_id.is_none())
            .map(|d| CachedDeal { stage: map.get(&d.stage).copied().unwrap_or(Stage::New), deal: d })
            .filter(|d| !matches!(d.stage, Stage::ClosedWon | Stage::ClosedLost))
            .collect();
        // Domains as registrable domains, like native accounts (a company
        // without a usable domain cannot be matched exactly, so it is skipped).
        let registrable = |d: Option<&str>| d.and_then(|d| CompanyDomain::parse("domain", d).ok()).map(|d| d.as_str().to_owned());
        let accounts: Vec<CrmAccount> = page
            .accounts
            .into_iter()
            .filter_map(|a| registrable(a.domain.as_deref()).map(|d| CrmAccount { domain: Some(d), ..a }))
            .collect();
        let deals: Vec<CachedDeal> = deals
            .into_iter()
            .map(|mut d| {
                d.deal.company_domain = registrable(d.deal.company_domain.as_deref());
                d
            })
            .collect();
        store.cache_crm_records(ws, &accounts, &deals, &currency, now).await.map_err(|e| e.to_string())?;
        cached += (accounts.len() + deals.len()) as u64;
        cursor = page.next;
        let progress = CrmProgress::Backfill { cursor: cursor.clone(), done_at: cursor.is_none().then_some(now) };
        store.crm_progress(ws, &progress).await.map_err(|e| e.to_string())?;
        if cursor.is_none() {
            break;
        }
    }
    Ok(cached)
}

/// Polls and backfills one workspace now (the API's "sync now"); returns
/// (stage changes applied, records cached). Errors are recorded on the
/// connection and returned.
pub async fn sync_now(store: &dyn Store, hub: &CrmHub, conn: &CrmConnection, now: Timestamp) -> Result<(u64, u64), String> {
    let outcome = async {
        let changed = poll(store, hub, conn, now).await?;
        let mut fresh = store.crm_connection(&conn.workspace_id).await.map_err(|e| e.to_string())?.unwrap_or_else(|| conn.clone());
        fresh.backfill_cursor = None;
        let cached = backfill(store, hub, &fresh, now).await?;
        Ok::<_, String>((changed, cached))
    }
    .await;
    if let Err(e) = &outcome {
        let p = CrmProgress::Error { error: Some(e.clone()), at: now };
        store.crm_progress(&conn.workspace_id, &p).await.map_err(|e| e.to_string())?;
    }
    outcome
}

/// The Salesforce connection that names `organization_id` (Outbound
/// Messages carry it; the 15- and 18-character forms of an id match).
pub async fn salesforce_connection_for(store: &dyn Store, organization_id: &str) -> Result<Option<CrmConnection>, AppError> {
    let short = |id: &str| id.chars().take(15).collect::<String>();
    Ok(store.crm_connections().await?.into_iter().find(|c| {
        c.kind == CrmKind::Salesforce && c.settings.organization_id.as_deref().is_some_and(|o| short(o) == short(organization_id))
    }))
}

/// The HubSpot connection a webhook from `portal_id` belongs to: the one
/// that names the portal, else the only HubSpot connection.
pub async fn hubspot_connection_for(store: &dyn Store, portal_id: Option<u64>) -> Result<Option<CrmConnection>, AppError> {
    let hubspot: Vec<CrmConnection> = store.crm_connections().await?.into_iter().filter(|c| c.kind == CrmKind::Hubspot).collect();
    if let Some(p) = portal_id
        && let Some(c) = hubspot.iter().find(|c| c.settings.portal_id == Some(p))
    {
        return Ok(Some(c.clone()));
    }
    Ok(if hubspot.len() == 1 && hubspot[0].settings.portal_id.is_none() { hubspot.into_iter().next() } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(kind: CrmKind, map: &[(&str, &str)]) -> CrmConnection {
        CrmConnection {
            workspace_id: WorkspaceId::from_string("ws"),
            kind,
            settings: CrmSettings { stage_map: map.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(), ..Default::default() },
            secrets_sealed: String::new(),
            poll_cursor: None,
            polled_at: None,
            backfill_cursor: None,
            backfilled_at: None,
            last_error: None,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn stage_maps_default_to_the_crm_pipeline_and_reverse_stably() {
        let h = conn(CrmKind::Hubspot, &[]);
        assert_eq!(h.stage_map().get("closedwon"), Some(&Stage::ClosedWon));
        assert_eq!(h.crm_stage(Stage::Negotiation).as_deref(), Some("decisionmakerboughtin"), "the first in pipeline order");
        assert_eq!(h.crm_stage(Stage::New), None, "HubSpot's default pipeline has no 'new'");
        let s = conn(CrmKind::Salesforce, &[]);
        assert_eq!(s.crm_stage(Stage::Proposal).as_deref(), Some("Value Proposition"));
        let custom = conn(CrmKind::Hubspot, &[("101", "new"), ("102", "closed_won"), ("103", "closed_won")]);
        assert_eq!(custom.stage_map().len(), 3, "a given map replaces the default");
        assert_eq!(custom.crm_stage(Stage::ClosedWon).as_deref(), Some("102"));
        assert_eq!(custom.crm_stage(Stage::Meeting), None);
    }

    #[test]
    fn changes_from_the_crm_are_not_echoed_and_replies_become_escaped_notes() {
        let after = json!({"status": "approved", "note": "<b>hi</b>\nthere"});
        assert_eq!(ops_for("referral.stage_changed", "system:hubspot", &after, "r1"), vec![]);
        assert_eq!(ops_for("referral.stage_changed", "admin:k1", &after, "r1"), vec![CrmOp::SetStage { referral_id: "r1".into() }]);
        assert_eq!(ops_for("referral.registered", "partner:p", &after, "r1"), vec![CrmOp::SyncDeal { referral_id: "r1".into() }]);
        let review = json!({"status": "pending_review"});
        assert_eq!(ops_for("referral.registered", "partner:p", &review, "r1"), vec![], "only approved referrals reach the CRM");
        let ops = ops_for("referral.replied", "partner:p", &after, "r1");
        let [CrmOp::AddNote { html, .. }] = ops.as_slice() else { panic!("{ops:?}") };
        assert!(html.contains("&lt;b&gt;hi&lt;/b&gt;<br>there"), "{html}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = CrmSecrets { token: Some("pat-na1-secret".into()), client_secret: Some("shh".into()), private_key_pem: None };
        let shown = format!("{s:?}");
        assert!(!shown.contains("pat-na1-secret") && !shown.contains("shh"), "{shown}");
    }
}
