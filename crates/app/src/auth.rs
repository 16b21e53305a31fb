//! API tokens. A token is shown once, at creation; only its SHA-256 is
//! stored (the secret has 256 bits of entropy, so a fast hash is enough and
//! lookup stays one indexed read). A token belongs to one workspace, and a
//! partner token to one partner.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use sha2::{Digest, Sha256};

use crate::ctx::{Actor, Ctx};
use crate::error::{AppError, StoreError};
use crate::ids;
use crate::store::{ApiKeyRecord, AuditEntry, KeyKind, Store};

/// Prefixes make leaked tokens recognisable to secret scanners.
const ADMIN_PREFIX: &str = "pla_";
const PARTNER_PREFIX: &str = "plp_";

fn new_token(kind: KeyKind) -> String {
    let secret: [u8; 32] = rand::random();
    let prefix = match kind {
        KeyKind::Admin => ADMIN_PREFIX,
        KeyKind::Partner => PARTNER_PREFIX,
    };
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(secret))
}

/// Lower-case hex SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn clean_name(name: Option<&str>) -> Result<Option<String>, AppError> {
    partnerloop_domain::validation::optional_text("name", name, 200).map_err(|e| AppError::Invalid(vec![e]))
}

async fn insert_key(
    store: &dyn Store,
    ctx: &Ctx,
    kind: KeyKind,
    partner_id: Option<PartnerId>,
    name: Option<String>,
) -> Result<String, AppError> {
    let token = new_token(kind);
    let key = ApiKeyRecord {
        id: ids::api_key_id(ctx.now),
        workspace_id: ctx.workspace_id.clone(),
        kind,
        partner_id,
        name,
        token_hash: hash_secret(&token),
        created_at: ctx.now,
        revoked_at: None,
    };
    let audit = AuditEntry {
        at: ctx.now,
        actor: ctx.actor.audit_name(),
        action: "api_key.created".into(),
        entity: "api_key".into(),
        entity_id: key.id.to_string(),
        before: None,
        after: Some(serde_json::json!({
            "kind": kind.as_str(),
            "partner_id": key.partner_id.as_ref().map(|p| p.to_string()),
            "name": key.name,
        })),
    };
    store.insert_api_key(&key, &audit).await?;
    Ok(token)
}

/// Creates an admin token for the workspace in `ctx` (operator's CLI).
pub async fn create_admin_key(store: &dyn Store, ctx: &Ctx, name: Option<&str>) -> Result<String, AppError> {
    ctx.require_admin()?;
    insert_key(store, ctx, KeyKind::Admin, None, clean_name(name)?).await
}

/// Creates a token that acts as one partner (`POST /partners/{id}/api-keys`).
pub async fn create_partner_key(store: &dyn Store, ctx: &Ctx, partner_id: &PartnerId, name: Option<&str>) -> Result<String, AppError> {
    ctx.require_admin()?;
    let partner = store.partner(&ctx.workspace_id, partner_id).await?;
    insert_key(store, ctx, KeyKind::Partner, Some(partner.id), clean_name(name)?).await
}

/// Who a bearer token speaks for. Unknown, malformed and revoked tokens
/// are all simply unauthorized.
pub async fn authenticate(store: &dyn Store, token: &str) -> Result<(WorkspaceId, Actor), AppError> {
    if !(token.starts_with(ADMIN_PREFIX) || token.starts_with(PARTNER_PREFIX)) || token.len() > 100 {
        return Err(AppError::Unauthorized);
    }
    let key = match store.api_key_by_hash(&hash_secret(token)).await {
        Ok(k) => k,
        Err(StoreError::NotFound) => return Err(AppError::Unauthorized),
        Err(e) => return Err(e.into()),
    };
    if key.revoked_at.is_some() {
        return Err(AppError::Unauthorized);
    }
    let actor = match (key.kind, key.partner_id) {
        (KeyKind::Admin, _) => Actor::Admin { key_id: key.id },
        (KeyKind::Partner, Some(partner_id)) => Actor::Partner { partner_id, key_id: Some(key.id) },
        (KeyKind::Partner, None) => return Err(AppError::Unauthorized),
    };
    Ok((key.workspace_id, actor))
}

/// A new random secret of 256 bits, URL-safe text.
pub fn random_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}
