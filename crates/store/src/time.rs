//! Times are stored as fixed-width RFC 3339 UTC text with microseconds, so
//! that text order is time order on both engines.

use jiff::Timestamp;
use partnerloop_app::error::StoreError;

pub(crate) fn to_text(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn opt_to_text(t: Option<Timestamp>) -> Option<String> {
    t.map(to_text)
}

pub(crate) fn from_text(s: &str) -> Result<Timestamp, StoreError> {
    s.parse().map_err(|e: jiff::Error| StoreError::Other(format!("bad stored time '{s}': {e}").into()))
}

pub(crate) fn opt_from_text(s: Option<&str>) -> Result<Option<Timestamp>, StoreError> {
    s.map(from_text).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_are_fixed_width_and_round_trip() {
        let t = Timestamp::from_microsecond(1_764_000_000_000_001).unwrap();
        let s = to_text(t);
        assert_eq!(s, "2025-11-24T16:00:00.000001Z");
        assert_eq!(from_text(&s).unwrap(), t);
        let whole = Timestamp::from_second(1_764_000_000).unwrap();
        assert_eq!(to_text(whole).len(), s.len());
    }
}
