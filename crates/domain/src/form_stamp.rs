//! A public form's time stamp: when the form was served, signed, so that a
//! submission can show it was filled in by someone who took at least a few
//! seconds (bots post at once) and not long ago (a stamp is not reusable
//! for days). The stamp is `{unix milliseconds}.{HMAC-SHA256 tag, 32 hex}` over
//! the form's purpose (e.g. `apply:default`) and the time.

use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use sha2::Sha256;

const TAG_BYTES: usize = 16;

fn mac(key: &[u8], purpose: &str, millis: i64) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(b"form-stamp");
    mac.update(&[0]);
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(millis.to_string().as_bytes());
    mac
}

/// The stamp of a form served at `now` for `purpose`.
pub fn issue(key: &[u8], purpose: &str, now: Timestamp) -> String {
    let millis = now.as_millisecond();
    let tag = mac(key, purpose, millis).finalize().into_bytes();
    let hex: String = tag[..TAG_BYTES].iter().map(|b| format!("{b:02x}")).collect();
    format!("{millis}.{hex}")
}

/// How long ago a genuine stamp for `purpose` was issued; `None` when the
/// stamp is forged, malformed or for another form.
pub fn age(key: &[u8], purpose: &str, stamp: &str, now: Timestamp) -> Option<SignedDuration> {
    let (millis_text, hex) = stamp.split_once('.')?;
    let millis: i64 = millis_text.parse().ok()?;
    if millis.to_string() != millis_text || hex.len() != TAG_BYTES * 2 {
        return None;
    }
    let tag: Vec<u8> = (0..TAG_BYTES).map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect::<Option<_>>()?;
    mac(key, purpose, millis).verify_truncated_left(&tag).ok()?;
    Some(now.duration_since(Timestamp::from_millisecond(millis).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_tells_its_age_only_to_its_own_form() {
        let key = b"secret";
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let stamp = issue(key, "apply:default", t0);
        let later = t0 + SignedDuration::from_millis(7_250);
        assert_eq!(age(key, "apply:default", &stamp, later), Some(SignedDuration::from_millis(7_250)));
        assert_eq!(age(key, "apply:other", &stamp, later), None);
        assert_eq!(age(b"other key", "apply:default", &stamp, later), None);
        let forged = stamp.replacen("1700000000000", "1699999000000", 1);
        assert_eq!(age(key, "apply:default", &forged, later), None);
        assert_eq!(age(key, "apply:default", "", later), None);
        assert_eq!(age(key, "apply:default", "12.zz", later), None);
    }
}
