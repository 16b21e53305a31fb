use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;

const KEY: &[u8] = b"a workspace secret of reasonable length";

fn referral() -> ReferralId {
    ReferralId::from_string("ref_01j9zq3k7v8x2m4n6p0r5s7t9w")
}

/// Any 128-bit value as a referral id, spelt as the app spells ULIDs.
fn referral_from(bits: u128) -> ReferralId {
    // The first character carries the top 3 bits only.
    let first = char::from(ALPHABET[(bits >> 125) as usize]);
    let rest: String = (1..ULID_LEN).map(|i| char::from(ALPHABET[((bits >> (125 - 5 * i as u32)) & 31) as usize])).collect();
    ReferralId::from_string(format!("ref_{first}{rest}"))
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

#[test]
fn a_reply_token_names_its_referral_and_fits_a_local_part() {
    let token = encode(KEY, &referral());
    assert!(token.len() <= 58, "{token}");
    assert!(format!("reply+{token}").len() <= 64);
    assert_eq!(token, token.to_ascii_lowercase());
    assert_eq!(decode(KEY, &token), Ok(referral()));
}

#[test]
fn a_reply_token_is_read_whatever_its_case() {
    let token = encode(KEY, &referral()).to_ascii_uppercase();
    assert_eq!(decode(KEY, &token), Ok(referral()));
}

#[test]
fn a_token_made_with_another_key_is_refused() {
    let token = encode(b"another workspace", &referral());
    assert_eq!(decode(KEY, &token), Err(TokenError::BadSignature));
}

#[test]
fn garbage_is_malformed_not_a_bad_signature() {
    for bad in ["", "reply", "01j9zq3k7v8x2m4n6p0r5s7t9w", &"z".repeat(50), &"é".repeat(25), "8".repeat(50).as_str()] {
        assert_eq!(decode(KEY, bad), Err(TokenError::Malformed), "{bad}");
    }
}

#[test]
fn a_reply_address_carries_the_token_and_gives_it_back() {
    let addr = reply_address(KEY, &referral(), "In.Example.COM");
    assert!(addr.starts_with("reply+") && addr.ends_with("@in.example.com"), "{addr}");
    let shouted = addr.to_ascii_uppercase();
    let token = token_from_address(&shouted).unwrap();
    assert_eq!(decode(KEY, token), Ok(referral()));
    assert_eq!(token_from_address(&format!("<{addr}>")).map(|t| decode(KEY, t)), Some(Ok(referral())));
}

#[test]
fn other_addresses_are_not_reply_addresses() {
    for addr in ["register@in.example.com", "reply@in.example.com", "reply+@in.example.com", "reply+abc", "replyabc@x.com", "reply+abc@"] {
        assert_eq!(token_from_address(addr), None, "{addr}");
    }
}

#[test]
fn a_status_token_is_url_safe_and_carries_the_link_version() {
    let token = status_token(KEY, &referral(), at(2_000_000_000), 7);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)), "{token}");
    assert_eq!(verify_status_token(KEY, &token, at(1_999_999_999)), Ok((referral(), 7)));
}

#[test]
fn a_status_token_expires_at_its_expiry() {
    let expires = at(2_000_000_000);
    let token = status_token(KEY, &referral(), expires, 1);
    assert_eq!(verify_status_token(KEY, &token, expires), Err(TokenError::Expired));
    assert_eq!(verify_status_token(KEY, &token, expires + SignedDuration::from_hours(1)), Err(TokenError::Expired));
}

#[test]
fn an_expired_forgery_is_a_bad_signature_not_an_expiry() {
    let token = status_token(b"another key", &referral(), at(1_000), 1);
    assert_eq!(verify_status_token(KEY, &token, at(2_000)), Err(TokenError::BadSignature));
}

#[test]
fn a_reply_token_is_not_a_status_token() {
    let reply = encode(KEY, &referral());
    assert_eq!(verify_status_token(KEY, &reply, at(0)), Err(TokenError::Malformed));
    let status = status_token(KEY, &referral(), at(2_000_000_000), 0);
    assert!(decode(KEY, &status).is_err());
}

#[test]
fn non_canonical_numbers_are_refused() {
    let token = status_token(KEY, &referral(), at(2_000_000_000), 3);
    let padded = token.replacen(".3.", ".03.", 1);
    assert_eq!(verify_status_token(KEY, &padded, at(0)), Err(TokenError::Malformed));
}

/// A character that is not the same letter in another case.
fn different(original: u8, candidate: u8) -> bool {
    !original.eq_ignore_ascii_case(&candidate)
}

proptest! {
    #[test]
    fn every_reply_token_round_trips(bits in any::<u128>(), key in proptest::collection::vec(any::<u8>(), 0..80)) {
        let referral = referral_from(bits);
        let token = encode(&key, &referral);
        prop_assert!(token.len() <= 58);
        prop_assert_eq!(decode(&key, &token), Ok(referral));
    }

    #[test]
    fn any_single_character_change_to_a_reply_token_is_refused(bits in any::<u128>(), index in 0usize..50, c in 0x20u8..0x7f) {
        let token = encode(KEY, &referral_from(bits));
        let mut bytes = token.into_bytes();
        let index = index % bytes.len();
        prop_assume!(different(bytes[index], c));
        bytes[index] = c;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(decode(KEY, &changed).is_err(), "{} was accepted", changed);
    }

    #[test]
    fn every_status_token_round_trips(bits in any::<u128>(), expires in 1i64..4_000_000_000, version in any::<u32>()) {
        let referral = referral_from(bits);
        let token = status_token(KEY, &referral, at(expires), version);
        prop_assert_eq!(verify_status_token(KEY, &token, at(expires - 1)), Ok((referral, version)));
    }

    #[test]
    fn any_single_character_change_to_a_status_token_is_refused(
        bits in any::<u128>(), version in any::<u32>(), index in 0usize..80, c in 0x20u8..0x7f,
    ) {
        let token = status_token(KEY, &referral_from(bits), at(3_000_000_000), version);
        let mut bytes = token.into_bytes();
        let index = index % bytes.len();
        prop_assume!(different(bytes[index], c));
        bytes[index] = c;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(verify_status_token(KEY, &changed, at(0)).is_err(), "{} was accepted", changed);
    }
}

#[test]
fn a_preferences_token_names_its_contact_and_no_other_kind_of_token_passes_for_it() {
    let contact = ContactId::from_string("pct_01j9zq3k7v8x2m4n6p0r5s7t9w");
    let t = preferences_token(KEY, &contact);
    assert_eq!(verify_preferences_token(KEY, &t.to_uppercase()), Ok(contact.clone()), "case-insensitive");
    assert_eq!(verify_preferences_token(b"another key", &t), Err(TokenError::BadSignature));
    let reply = encode(KEY, &referral());
    assert_eq!(verify_preferences_token(KEY, &reply), Err(TokenError::BadSignature), "a reply token is not a preferences token");
    assert_eq!(verify_preferences_token(KEY, "short"), Err(TokenError::Malformed));
}
