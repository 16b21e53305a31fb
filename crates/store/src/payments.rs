//! Customer payments on won referrals (what recurring plans pay a share
//! of), and the count of a partner's wins in a period (volume bands).
//!
//! Rules: a payment, its commission, the timeline line and the audit row
//! are one transaction; the commission's unique key (referral, win, kind,
//! payment) makes a payment earn at most once.

use jiff::Timestamp;
use partnerloop_app::error::StoreError;
use partnerloop_app::ledger::{LedgerWrite, NewPayment, Payment};
use partnerloop_app::store::{StoreResult, TimelineEvent};
use partnerloop_domain::commission::PaymentId;
use partnerloop_domain::ids::{PartnerId, WorkspaceId};
use partnerloop_domain::referral::ReferralId;
use partnerloop_domain::{Currency, Money};

use crate::errors::map;
use crate::records::insert_audit;
use crate::referral_writes::insert_events;
use crate::time::{from_text, to_text};
use crate::{SqlStore, on_read, on_write};

impl SqlStore {
    pub(crate) async fn partner_wins_between_(
        &self,
        ws: &WorkspaceId,
        partner: &PartnerId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<u64> {
        on_read!(self, |pool| {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM referrals WHERE workspace_id = $1 AND partner_id = $2 AND status = 'won' AND closed_at >= $3 AND closed_at <= $4",
            )
            .bind(ws.as_str())
            .bind(partner.as_str())
            .bind(to_text(from))
            .bind(to_text(to))
            .fetch_one(pool)
            .await
            .map_err(map)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    pub(crate) async fn referral_payments_(&self, ws: &WorkspaceId, referral: &ReferralId) -> StoreResult<Vec<Payment>> {
        on_read!(self, |pool| {
            let rows: Vec<(String, i64, String, String, String, String)> = sqlx::query_as(
                "SELECT id, amount_minor, currency, paid_at, created_at, created_by FROM referral_payments
                 WHERE workspace_id = $1 AND referral_id = $2 ORDER BY paid_at, id",
            )
            .bind(ws.as_str())
            .bind(referral.as_str())
            .fetch_all(pool)
            .await
            .map_err(map)?;
            rows.into_iter()
                .map(|(id, minor, currency, paid_at, created_at, created_by)| {
                    Ok(Payment {
                        id: PaymentId::from_string(id),
                        referral_id: referral.clone(),
                        amount: Money::from_minor(
                            minor,
                            Currency::parse("currency", &currency).map_err(|e| StoreError::Other(e.to_string().into()))?,
                        ),
                        paid_at: from_text(&paid_at)?,
                        created_at: from_text(&created_at)?,
                        created_by,
                    })
                })
                .collect()
        })
    }

    pub(crate) async fn record_payment_(&self, ws: &WorkspaceId, new: NewPayment) -> StoreResult<()> {
        let p = &new.payment;
        let events: Vec<TimelineEvent> = vec![new.event.clone()];
        let writes: Vec<LedgerWrite> = new
            .commission
            .iter()
            .map(|c| LedgerWrite::Book { commission: Box::new(c.clone()), reason: "customer payment recorded".into() })
            .collect();
        on_write!(self, |pool| {
            let mut tx = pool.begin().await.map_err(map)?;
            sqlx::query(
                "INSERT INTO referral_payments (id, workspace_id, referral_id, amount_minor, currency, paid_at, created_at, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(p.id.as_str())
            .bind(ws.as_str())
            .bind(p.referral_id.as_str())
            .bind(p.amount.minor())
            .bind(p.amount.currency().code())
            .bind(to_text(p.paid_at))
            .bind(to_text(p.created_at))
            .bind(&p.created_by)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            crate::ledger::apply_ledger!(tx, ws, &writes, new.audit.at, &new.audit.actor);
            insert_events!(tx, ws, p.referral_id, &events);
            insert_audit!(tx, ws, &new.audit);
            tx.commit().await.map_err(map)
        })
    }
}
