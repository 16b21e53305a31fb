//! What a change cursor remembers of the changes it already handed out, so
//! that the overlap window of the next poll does not hand them out again.
//!
//! Entries are `(record id, modified ms)`, written `id.ms,id.ms` inside the
//! cursor; only those at or after the next query's start are kept, and at
//! most [`MAX_SEEN`] of them (the newest): past that, a change may come
//! twice, which callers already tolerate.

use partnerloop_app::crm::CrmDealChange;

pub const MAX_SEEN: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen(Vec<(String, i64)>);

impl Seen {
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() {
            return Some(Seen::default());
        }
        text.split(',')
            .map(|entry| {
                let (id, ms) = entry.rsplit_once('.')?;
                let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric());
                valid.then_some(())?;
                Some((id.to_string(), ms.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()
            .map(Seen)
    }

    pub fn text(&self) -> String {
        self.0.iter().map(|(id, ms)| format!("{id}.{ms}")).collect::<Vec<_>>().join(",")
    }

    /// Drops changes handed out before and remembers the new ones.
    pub fn keep_new(&mut self, changes: Vec<CrmDealChange>) -> Vec<CrmDealChange> {
        let fresh: Vec<CrmDealChange> = changes
            .into_iter()
            .filter(|c| !self.0.iter().any(|(id, ms)| *id == c.deal_id && *ms == c.changed_at.as_millisecond()))
            .collect();
        self.0.extend(fresh.iter().map(|c| (c.deal_id.clone(), c.changed_at.as_millisecond())));
        fresh
    }

    /// The newest modification time remembered.
    pub fn newest(&self) -> Option<i64> {
        self.0.iter().map(|(_, ms)| *ms).max()
    }

    /// Keeps what the next query (starting at `since_ms`) could return again.
    pub fn prune(&mut self, since_ms: i64) {
        self.0.retain(|(_, ms)| *ms >= since_ms);
        if self.0.len() > MAX_SEEN {
            self.0.sort_by_key(|(_, ms)| *ms);
            let excess = self.0.len() - MAX_SEEN;
            self.0.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn change(id: &str, ms: i64) -> CrmDealChange {
        CrmDealChange {
            deal_id: id.into(),
            referral_id: None,
            stage: "s".into(),
            amount: None,
            changed_at: Timestamp::from_millisecond(ms).unwrap(),
        }
    }

    #[test]
    fn a_change_is_handed_out_once_and_a_later_edit_again() {
        let mut seen = Seen::default();
        assert_eq!(seen.keep_new(vec![change("1", 10), change("2", 20)]).len(), 2);
        let mut seen = Seen::parse(&seen.text()).unwrap();
        let again = seen.keep_new(vec![change("1", 10), change("2", 20), change("1", 30)]);
        assert_eq!(again, vec![change("1", 30)]);
        seen.prune(20);
        assert_eq!(seen.text(), "2.20,1.30");
        assert_eq!(seen.newest(), Some(30));
        assert_eq!(Seen::parse("x.y"), None);
        assert_eq!(Seen::parse("a:b.1"), None);
    }

    #[test]
    fn the_memory_is_bounded() {
        let mut seen = Seen::default();
        seen.keep_new((0..500).map(|i| change(&i.to_string(), i)).collect());
        seen.prune(0);
        assert_eq!(seen.0.len(), MAX_SEEN);
        assert_eq!(seen.0[0].1, 300);
    }
}
