//! Making new ids: a kind prefix and a ULID, ordered by creation time.

use jiff::Timestamp;

/// A new id text like `prt_01JD…` whose time part is `now`.
pub fn new_id(prefix: &str, now: Timestamp) -> String {
    let ms = u64::try_from(now.as_millisecond()).unwrap_or(0);
    let ulid = ulid::Ulid::from_parts(ms, rand::random::<u128>());
    format!("{prefix}_{}", ulid.to_string().to_lowercase())
}

macro_rules! new_ids {
    ($($fn_name:ident => $ty:ident),+ $(,)?) => {
        $(
            pub fn $fn_name(now: Timestamp) -> partnerloop_domain::ids::$ty {
                partnerloop_domain::ids::$ty::from_string(new_id(partnerloop_domain::ids::$ty::PREFIX, now))
            }
        )+
    };
}

new_ids!(
    workspace_id => WorkspaceId,
    partner_id => PartnerId,
    contact_id => ContactId,
    account_id => AccountId,
    deal_id => DealId,
    plan_id => PlanId,
    api_key_id => ApiKeyId,
    audit_id => AuditId,
);

pub fn referral_id(now: Timestamp) -> partnerloop_domain::referral::ReferralId {
    use partnerloop_domain::referral::ReferralId;
    ReferralId::from_string(new_id(ReferralId::PREFIX, now))
}

/// Ids of the money side, whose types live with the commission rules.
macro_rules! commission_ids {
    ($($fn_name:ident => $ty:ident),+ $(,)?) => {
        $(
            pub fn $fn_name(now: Timestamp) -> partnerloop_domain::commission::$ty {
                partnerloop_domain::commission::$ty::from_string(new_id(partnerloop_domain::commission::$ty::PREFIX, now))
            }
        )+
    };
}

commission_ids!(commission_id => CommissionId, payout_id => PayoutId, payment_id => PaymentId);

pub fn event_id(now: Timestamp) -> String {
    new_id("evt", now)
}

/// Ids for many records made at once, in increasing order (one random
/// start, then +1): bulk inserts append to the id index instead of
/// scattering across it.
pub struct IdSequence {
    prefix: &'static str,
    next: ulid::Ulid,
}

impl IdSequence {
    pub fn new(prefix: &'static str, now: Timestamp) -> Self {
        let ms = u64::try_from(now.as_millisecond()).unwrap_or(0);
        // Leave room to count up without wrapping into the next millisecond.
        Self { prefix, next: ulid::Ulid::from_parts(ms, rand::random::<u128>() >> 2) }
    }

    pub fn next_id(&mut self) -> String {
        let id = format!("{}_{}", self.prefix, self.next.to_string().to_lowercase());
        self.next = self.next.increment().unwrap_or(self.next);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let t1 = Timestamp::from_second(1_700_000_000).unwrap();
        let t2 = Timestamp::from_second(1_700_000_001).unwrap();
        let a = partner_id(t1);
        let b = partner_id(t2);
        assert!(a < b);
        assert!(a.as_str().starts_with("prt_"));
        assert_eq!(a.as_str().len(), 4 + 26);
    }
}
