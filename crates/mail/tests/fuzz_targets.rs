//! Fuzz targets. Under `cargo test` bolero runs each as a short random
//! smoke test; `cargo bolero test -p partnerloop-mail --test fuzz_targets <name>`
//! runs it under libFuzzer. The property is always "no panic, and the
//! output keeps its invariants".

use partnerloop_domain::reply_token;
use partnerloop_mail::inbound::{Limits, parse};
use partnerloop_mail::strip::strip_reply;

#[test]
fn fuzz_inbound_parse() {
    // Small limits make the limit paths reachable with small inputs.
    let limits = Limits { max_bytes: 64 * 1024, max_parts: 20, max_depth: 5 };
    bolero::check!().for_each(|raw: &[u8]| {
        if let Ok(mail) = parse(raw, &limits) {
            assert!(mail.from.email.contains('@'));
            assert_eq!(mail.from.email, mail.from.email.to_lowercase());
        }
    });
}

#[test]
fn fuzz_strip_reply() {
    bolero::check!().for_each(|raw: &[u8]| {
        let text = String::from_utf8_lossy(raw);
        let stripped = strip_reply(&text);
        assert!(stripped.lines().all(|l| !l.trim_start().starts_with('>')));
        assert!(!stripped.ends_with('\n'));
    });
}

#[test]
fn fuzz_reply_token_decode() {
    bolero::check!().for_each(|raw: &[u8]| {
        let text = String::from_utf8_lossy(raw);
        // Without the key nothing random may pass.
        assert!(reply_token::decode(b"fuzz key", &text).is_err());
        let _ = reply_token::verify_status_token(b"fuzz key", &text, jiff::Timestamp::UNIX_EPOCH);
    });
}
