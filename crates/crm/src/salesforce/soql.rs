//! SOQL helpers: queries as URL paths, datetimes both ways.

use jiff::Timestamp;

use crate::http::encode_segment;

/// `/services/data/vXX.X/query?q=…` for a query.
pub fn query_path(data_path: &str, soql: &str) -> String {
    format!("{data_path}/query?q={}", encode_segment(soql))
}

/// A SOQL datetime literal (no quotes), whole seconds, UTC.
pub fn literal(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Salesforce writes `2026-11-23T19:00:00.000+0000`.
pub fn parse_datetime(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let normalised = match text.strip_suffix("+0000") {
        Some(head) => format!("{head}Z"),
        None => text.to_string(),
    };
    normalised.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salesforce_datetimes_round_trip_to_the_second() {
        let t = parse_datetime("2026-11-23T19:00:00.250+0000").unwrap();
        assert_eq!(t.as_millisecond() % 1000, 250);
        assert_eq!(literal(t), "2026-11-23T19:00:00Z");
        assert_eq!(
            query_path("/services/data/v66.0", "SELECT Id FROM Account"),
            "/services/data/v66.0/query?q=SELECT%20Id%20FROM%20Account"
        );
    }
}
