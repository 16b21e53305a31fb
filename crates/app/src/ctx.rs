//! The acting context: who does something, where, and when.

use jiff::Timestamp;
use partnerloop_domain::ids::{ApiKeyId, PartnerId, WorkspaceId};

use crate::error::AppError;
use crate::staff::StaffRole;

/// Who acts. Every audit row names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An admin API token of the workspace.
    Admin { key_id: ApiKeyId },
    /// A partner API token or portal session: sees only that partner's records.
    Partner { partner_id: PartnerId, key_id: Option<ApiKeyId> },
    /// partnerloop itself or its operator's command line (`cli`, `demo`, `scheduler`).
    System { name: &'static str },
    /// A staff user signed in to the web console; the role decides what it may change.
    Staff { user_id: String, role: StaffRole },
}

impl Actor {
    /// The audit log's text for this actor (`admin:key_…`, `partner:prt_…`, `system:cli`).
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Admin { key_id } => format!("admin:{key_id}"),
            Actor::Partner { partner_id, .. } => format!("partner:{partner_id}"),
            Actor::System { name } => format!("system:{name}"),
            Actor::Staff { user_id, .. } => format!("staff:{user_id}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ctx {
    pub workspace_id: WorkspaceId,
    pub actor: Actor,
    /// The time of this action: read once from the clock at the edge.
    pub now: Timestamp,
}

impl Ctx {
    pub fn new(workspace_id: WorkspaceId, actor: Actor, now: Timestamp) -> Self {
        Self { workspace_id, actor, now: truncate_to_micros(now) }
    }

    pub fn system(workspace_id: WorkspaceId, name: &'static str, now: Timestamp) -> Self {
        Self::new(workspace_id, Actor::System { name }, now)
    }

    /// Admins, the system and staff who manage (admin, manager roles) may
    /// change the whole workspace.
    pub fn require_admin(&self) -> Result<(), AppError> {
        match &self.actor {
            Actor::Admin { .. } | Actor::System { .. } => Ok(()),
            Actor::Staff { role, .. } if role.may_manage() => Ok(()),
            Actor::Staff { role, .. } => Err(AppError::Forbidden(format!("the {role} role may not change this"))),
            Actor::Partner { .. } => Err(AppError::Forbidden("this needs an admin token".into())),
        }
    }

    /// Reading the workspace's configuration (plans, the ladder): admins,
    /// the system and every staff role; a partner token may not.
    pub fn require_workspace_reader(&self) -> Result<(), AppError> {
        match &self.actor {
            Actor::Staff { .. } => Ok(()),
            _ => self.require_admin(),
        }
    }

    /// Payout batches: who may change things, and finance staff.
    pub fn require_payouts(&self) -> Result<(), AppError> {
        match &self.actor {
            Actor::Staff { role, .. } if role.may_pay() => Ok(()),
            Actor::Staff { role, .. } => Err(AppError::Forbidden(format!("the {role} role may not handle payouts"))),
            _ => self.require_admin(),
        }
    }

    /// The staff role acting, if a staff user acts.
    pub fn staff_role(&self) -> Option<StaffRole> {
        match &self.actor {
            Actor::Staff { role, .. } => Some(*role),
            _ => None,
        }
    }

    /// The partner this context is limited to, if it is a partner's.
    pub fn partner_scope(&self) -> Option<&PartnerId> {
        match &self.actor {
            Actor::Partner { partner_id, .. } => Some(partner_id),
            _ => None,
        }
    }
}

/// Storage keeps microseconds; truncating once here keeps what a use case
/// returns identical to what a later read returns.
pub fn truncate_to_micros(t: Timestamp) -> Timestamp {
    let micros = t.as_microsecond();
    Timestamp::from_microsecond(micros).unwrap_or(t)
}
