//! Polling HubSpot for deals modified since a cursor: search on
//! `hs_lastmodifieddate` (GTE), oldest first, 100 per call.
//!
//! The cursor is `hs1:<since ms>:<after>:<seen>`. While a query has more
//! pages we keep its `since` and follow `after` (search stops at 10,000
//! results, so past 9,900 we restart from the newest change seen). Once a
//! query is exhausted the next one starts `poll_overlap` before the newest
//! change seen, so late-indexed changes are not missed; `seen` remembers
//! the changes of that overlap already handed out, so they do not come
//! again (beyond its bound they may, and callers apply them idempotently).

use jiff::Timestamp;
use partnerloop_app::crm::{ChangesPage, CrmDealChange, CrmError};
use partnerloop_domain::money::Currency;
use serde_json::Value;

use super::client::HubSpotClient;
use super::{HubSpotConfig, PROP_REFERRAL_ID, filter, id_of, objects, prop, search_body};
use crate::http::money_from_text;
use crate::seen::Seen;

const PAGE: u32 = 100;
const SEARCH_WINDOW: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    since_ms: i64,
    after: u64,
    seen: Seen,
}

impl Cursor {
    fn parse(text: Option<&str>) -> Result<Self, CrmError> {
        let Some(text) = text else { return Ok(Cursor { since_ms: 0, after: 0, seen: Seen::default() }) };
        let bad = || CrmError::Rejected { status: 0, message: format!("'{text}' is not a HubSpot change cursor") };
        let mut parts = text.strip_prefix("hs1:").ok_or_else(bad)?.splitn(3, ':');
        let since_ms = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let after = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let seen = Seen::parse(parts.next().unwrap_or_default()).ok_or_else(bad)?;
        Ok(Cursor { since_ms, after, seen })
    }

    fn text(&self) -> String {
        format!("hs1:{}:{}:{}", self.since_ms, self.after, self.seen.text())
    }
}

pub async fn changes_since(client: &HubSpotClient, config: &HubSpotConfig, cursor: Option<&str>) -> Result<ChangesPage, CrmError> {
    let mut cursor = Cursor::parse(cursor)?;
    let body = search_body(
        vec![filter("hs_lastmodifieddate", "GTE", &cursor.since_ms.to_string())],
        &["dealstage", "amount", "deal_currency_code", PROP_REFERRAL_ID, "hs_lastmodifieddate"],
        PAGE,
        &cursor.after.to_string(),
        &["hs_lastmodifieddate"],
    );
    let answer = client.post(&format!("{}/search", objects::DEALS), &body).await?;
    let mut changes = Vec::new();
    for deal in answer.get("results").and_then(Value::as_array).into_iter().flatten() {
        let Some(changed_at) = prop(deal, "hs_lastmodifieddate").and_then(parse_time) else { continue };
        let currency =
            prop(deal, "deal_currency_code").and_then(|c| Currency::parse("deal_currency_code", c).ok()).unwrap_or(config.currency);
        changes.push(CrmDealChange {
            deal_id: id_of(deal)?,
            referral_id: prop(deal, PROP_REFERRAL_ID).map(str::to_string),
            stage: prop(deal, "dealstage").unwrap_or_default().to_string(),
            amount: prop(deal, "amount").and_then(|a| money_from_text(a, currency)),
            changed_at,
        });
    }
    let changes = cursor.seen.keep_new(changes);
    let newest = cursor.seen.newest();
    let next_after = answer.pointer("/paging/next/after").and_then(Value::as_str).and_then(|a| a.parse::<u64>().ok());
    let (since_ms, after) = match (next_after, newest) {
        (Some(after), _) if after + u64::from(PAGE) <= SEARCH_WINDOW => (cursor.since_ms, after),
        (Some(_), Some(newest)) => (newest, 0),
        (_, Some(newest)) => {
            let overlap = i64::try_from(config.poll_overlap.as_millis()).unwrap_or(i64::MAX);
            (cursor.since_ms.max(newest.saturating_sub(overlap)), 0)
        }
        (_, None) => (cursor.since_ms, 0),
    };
    let mut seen = cursor.seen;
    seen.prune(since_ms);
    Ok(ChangesPage { changes, cursor: Cursor { since_ms, after, seen }.text() })
}

/// HubSpot datetimes: ISO 8601 (`2026-11-23T19:00:00.123Z`) or epoch ms.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    text.parse::<Timestamp>().ok().or_else(|| text.parse::<i64>().ok().and_then(|ms| Timestamp::from_millisecond(ms).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_strangers() {
        let c = Cursor { since_ms: 1_764_000_000_000, after: 200, seen: Seen::parse("12.1764000000000").unwrap() };
        assert_eq!(Cursor::parse(Some(&c.text())).unwrap(), c);
        assert_eq!(Cursor::parse(None).unwrap(), Cursor { since_ms: 0, after: 0, seen: Seen::default() });
        assert!(Cursor::parse(Some("sf1:whatever")).is_err());
    }

    #[test]
    fn hubspot_times_are_read_in_both_forms() {
        assert_eq!(parse_time("1764000000000").map(|t| t.as_millisecond()), Some(1_764_000_000_000));
        assert_eq!(parse_time("2026-11-23T19:00:00.123Z").map(|t| t.as_millisecond() % 1000), Some(123));
    }
}
