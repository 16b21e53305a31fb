//! CRM writes from the outbox: each item is one [`CrmOp`] for the
//! workspace's connected CRM, carried out by `crm_sync::deliver`.

use std::sync::Arc;

use async_trait::async_trait;
use partnerloop_app::Store;
use partnerloop_app::crm::CrmError;
use partnerloop_app::crm_sync::{self, CrmHub, CrmOp};
use partnerloop_app::outbox::OutboxItem;

use crate::transport::{Delivered, Failure, Transport};

pub struct CrmSender {
    store: Arc<dyn Store>,
    hub: Arc<CrmHub>,
}

impl CrmSender {
    pub fn new(store: Arc<dyn Store>, hub: Arc<CrmHub>) -> Self {
        Self { store, hub }
    }
}

/// How a CRM error bears on the item: an outage, a rate limit (no sooner
/// than the CRM asked) or refused credentials (an admin can fix them) are
/// retried; a refused request is dead-lettered at once.
pub fn failure(e: &CrmError) -> Failure {
    let error = e.to_string();
    match e {
        CrmError::RateLimited { retry_after } => Failure::Later { code: Some(429), error, after: *retry_after },
        CrmError::Unavailable(_) => Failure::Transient { code: None, error },
        CrmError::Unauthorized(_) => Failure::Transient { code: Some(401), error },
        CrmError::Rejected { status, .. } => Failure::Permanent { code: (*status > 0).then_some(*status), error },
        CrmError::NotFound(_) => Failure::Permanent { code: Some(404), error },
    }
}

#[async_trait]
impl Transport for CrmSender {
    async fn deliver(&self, item: &OutboxItem) -> Result<Delivered, Failure> {
        let op: CrmOp =
            serde_json::from_value(item.payload.clone()).map_err(|e| Failure::permanent(format!("unreadable CRM item: {e}")))?;
        crm_sync::deliver(self.store.as_ref(), &self.hub, &item.workspace_id, &op, &item.idempotency_key, jiff::Timestamp::now())
            .await
            .map(|()| None)
            .map_err(|e| failure(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rate_limits_wait_as_asked_and_refusals_are_final() {
        let f = failure(&CrmError::RateLimited { retry_after: Duration::from_secs(120) });
        assert_eq!(f, Failure::Later { code: Some(429), error: f.error().to_owned(), after: Duration::from_secs(120) });
        assert!(matches!(failure(&CrmError::Unavailable("503".into())), Failure::Transient { code: None, .. }));
        assert!(matches!(failure(&CrmError::Rejected { status: 400, message: "bad".into() }), Failure::Permanent { code: Some(400), .. }));
        assert!(matches!(failure(&CrmError::Rejected { status: 0, message: "no CRM".into() }), Failure::Permanent { code: None, .. }));
    }
}
