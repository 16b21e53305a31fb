//! Signed tokens that name a referral: the `reply+TOKEN@DOMAIN` address of a
//! referral's mail thread, and the link a prospect or partner can follow to
//! see a referral's status.
//!
//! Rules:
//! - A token is unguessable without the key: it carries an HMAC-SHA256 tag
//!   truncated to 120 bits, checked in constant time (`Mac::verify_*`).
//! - Each kind of token signs its own purpose label, so a reply token can
//!   never be replayed as a status token or the other way round.
//! - Tokens are lowercase Crockford base32 and are read case-insensitively:
//!   mail systems and people change the case of addresses freely.
//! - Every character is significant: a token is either exactly what we
//!   issued or refused (the ULID part only accepts canonical characters, and
//!   the status fields must be canonical decimals, so no two spellings of
//!   one token exist).
//! - A reply token is at most 58 characters, so `reply+TOKEN` fits the
//!   64-octet limit of an address's local part.

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use sha2::Sha256;

use crate::ids::ContactId;
use crate::referral::ReferralId;

/// Crockford's base32 alphabet in lower case: the alphabet of ULIDs, so a
/// token uses one alphabet throughout (no `i`, `l`, `o`, `u`).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Length of a ULID in base32.
const ULID_LEN: usize = 26;
/// 120 bits of tag: well above the 80-bit floor, and a multiple of 5 bytes so
/// that its base32 form has no partial last character (a partial character
/// would admit two spellings of one tag).
const TAG_BYTES: usize = 15;
const TAG_CHARS: usize = TAG_BYTES * 8 / 5;
const REPLY_PURPOSE: &[u8] = b"partnerloop reply-token v1";
const STATUS_PURPOSE: &[u8] = b"partnerloop status-link v1";
const PREFERENCES_PURPOSE: &[u8] = b"partnerloop preferences-link v1";
const REPLY_LOCAL_PREFIX: &str = "reply+";

/// Why a token was refused. Callers answer every variant the same way to
/// the outside world ("this link is not valid"); the variants exist for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not in the expected format")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

/// The reply token of a referral: its ULID in lower case followed by the tag.
pub fn encode(key: &[u8], referral: &ReferralId) -> String {
    let ulid = ulid_part(referral);
    let tag = tag(key, REPLY_PURPOSE, canonical_id(&ulid).as_bytes());
    format!("{ulid}{}", base32(&tag))
}

/// The referral a reply token was issued for, if the token is genuine.
pub fn decode(key: &[u8], token: &str) -> Result<ReferralId, TokenError> {
    let token = token.to_ascii_lowercase();
    if token.len() != ULID_LEN + TAG_CHARS || !token.is_ascii() {
        return Err(TokenError::Malformed);
    }
    let (ulid, tag_text) = token.split_at(ULID_LEN);
    check_ulid(ulid)?;
    let tag = unbase32(tag_text)?;
    let id = canonical_id(ulid);
    verify(key, REPLY_PURPOSE, id.as_bytes(), &tag)?;
    Ok(ReferralId::from_string(id))
}

/// The address a mail about `referral` is sent from, so that replies come
/// back to it: `reply+TOKEN@domain`.
pub fn reply_address(key: &[u8], referral: &ReferralId, domain: &str) -> String {
    format!("{REPLY_LOCAL_PREFIX}{}@{}", encode(key, referral), domain.trim().to_ascii_lowercase())
}

/// The token of a `reply+TOKEN@domain` address (also inside `<…>`), or
/// `None` when the address is not a reply address. The domain is not
/// checked here: the caller knows which domains it receives mail for.
pub fn token_from_address(addr: &str) -> Option<&str> {
    let addr = addr.trim();
    let addr = addr.strip_prefix('<').and_then(|a| a.strip_suffix('>')).unwrap_or(addr);
    let (local, domain) = addr.rsplit_once('@')?;
    if domain.is_empty() || local.len() <= REPLY_LOCAL_PREFIX.len() {
        return None;
    }
    let (prefix, token) = local.split_at_checked(REPLY_LOCAL_PREFIX.len())?;
    prefix.eq_ignore_ascii_case(REPLY_LOCAL_PREFIX).then_some(token)
}

/// A URL-safe token for a referral's status page, valid until `expires_at`.
/// `version` is the referral's current link version: bumping the stored
/// counter revokes every link issued before.
pub fn status_token(key: &[u8], referral: &ReferralId, expires_at: Timestamp, version: u32) -> String {
    let ulid = ulid_part(referral);
    let body = format!("{ulid}.{}.{version}", expires_at.as_second());
    let tag = tag(key, STATUS_PURPOSE, status_signed_text(&body).as_bytes());
    format!("{body}.{}", base32(&tag))
}

/// The referral and link version of a genuine, unexpired status token. The
/// caller compares the version with the referral's current one.
pub fn verify_status_token(key: &[u8], token: &str, now: Timestamp) -> Result<(ReferralId, u32), TokenError> {
    let token = token.to_ascii_lowercase();
    let mut fields = token.split('.');
    let (Some(ulid), Some(expires), Some(version), Some(tag_text), None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(TokenError::Malformed);
    };
    check_ulid(ulid)?;
    let expires: i64 = canonical_number(expires)?;
    let version: u32 = canonical_number(version)?;
    if tag_text.len() != TAG_CHARS {
        return Err(TokenError::Malformed);
    }
    let tag = unbase32(tag_text)?;
    let body = &token[..token.len() - TAG_CHARS - 1];
    // The signature first: only a genuine token may learn that it expired.
    verify(key, STATUS_PURPOSE, status_signed_text(body).as_bytes(), &tag)?;
    let expires_at = Timestamp::from_second(expires).map_err(|_| TokenError::Malformed)?;
    if now >= expires_at {
        return Err(TokenError::Expired);
    }
    Ok((ReferralId::from_string(canonical_id(ulid)), version))
}

/// The token of a partner contact's mail-preferences page and one-click
/// unsubscribe link (`List-Unsubscribe`): the contact's ULID and a tag. It
/// does not expire: an unsubscribe link must work in a mail of any age, and
/// all it can do is change what that contact receives.
pub fn preferences_token(key: &[u8], contact: &ContactId) -> String {
    let s = contact.as_str();
    let ulid = s.strip_prefix(ContactId::PREFIX).and_then(|r| r.strip_prefix('_')).unwrap_or(s).to_ascii_lowercase();
    let tag = tag(key, PREFERENCES_PURPOSE, format!("{}_{ulid}", ContactId::PREFIX).as_bytes());
    format!("{ulid}{}", base32(&tag))
}

/// The contact of a genuine preferences token.
pub fn verify_preferences_token(key: &[u8], token: &str) -> Result<ContactId, TokenError> {
    let token = token.to_ascii_lowercase();
    if token.len() != ULID_LEN + TAG_CHARS || !token.is_ascii() {
        return Err(TokenError::Malformed);
    }
    let (ulid, tag_text) = token.split_at(ULID_LEN);
    check_ulid(ulid)?;
    let tag = unbase32(tag_text)?;
    let id = format!("{}_{ulid}", ContactId::PREFIX);
    verify(key, PREFERENCES_PURPOSE, id.as_bytes(), &tag)?;
    Ok(ContactId::from_string(id))
}

/// The lowercase ULID of an id made by the app (`ref_` + ULID). Ids are
/// never user input here, so a foreign shape just yields a token that will
/// not decode, rather than an error every caller would have to handle.
fn ulid_part(referral: &ReferralId) -> String {
    let s = referral.as_str();
    s.strip_prefix(ReferralId::PREFIX).and_then(|r| r.strip_prefix('_')).unwrap_or(s).to_ascii_lowercase()
}

fn canonical_id(ulid: &str) -> String {
    format!("{}_{ulid}", ReferralId::PREFIX)
}

/// The status token signs the full referral id, not only its ULID part.
fn status_signed_text(body: &str) -> String {
    format!("{}_{body}", ReferralId::PREFIX)
}

/// A ULID is 26 base32 characters encoding 128 bits, so the first one only
/// carries 3 bits (`0`–`7`).
fn check_ulid(ulid: &str) -> Result<(), TokenError> {
    let ok = ulid.len() == ULID_LEN
        && ulid.bytes().all(|b| ALPHABET.contains(&b))
        && ulid.as_bytes().first().is_some_and(|b| (b'0'..=b'7').contains(b));
    if ok { Ok(()) } else { Err(TokenError::Malformed) }
}

/// Decimal without sign, leading zeros or spaces (a leading `-` for
/// negative numbers only), so that each value has exactly one spelling.
fn canonical_number<T: std::str::FromStr + ToString>(text: &str) -> Result<T, TokenError> {
    let n: T = text.parse().map_err(|_| TokenError::Malformed)?;
    if n.to_string() == text { Ok(n) } else { Err(TokenError::Malformed) }
}

fn mac(key: &[u8], purpose: &[u8], data: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    // A separator that cannot occur in a label keeps purpose and data apart.
    mac.update(purpose);
    mac.update(&[0]);
    mac.update(data);
    mac
}

fn tag(key: &[u8], purpose: &[u8], data: &[u8]) -> [u8; TAG_BYTES] {
    let full = mac(key, purpose, data).finalize().into_bytes();
    let mut tag = [0u8; TAG_BYTES];
    tag.copy_from_slice(&full[..TAG_BYTES]);
    tag
}

fn verify(key: &[u8], purpose: &[u8], data: &[u8], tag: &[u8]) -> Result<(), TokenError> {
    mac(key, purpose, data).verify_truncated_left(tag).map_err(|_| TokenError::BadSignature)
}

fn base32(bytes: &[u8; TAG_BYTES]) -> String {
    let mut out = String::with_capacity(TAG_CHARS);
    for chunk in bytes.chunks(5) {
        let n = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        for i in (0..8).rev() {
            out.push(char::from(ALPHABET[((n >> (i * 5)) & 31) as usize]));
        }
    }
    out
}

fn unbase32(text: &str) -> Result<[u8; TAG_BYTES], TokenError> {
    if text.len() != TAG_CHARS {
        return Err(TokenError::Malformed);
    }
    let mut out = [0u8; TAG_BYTES];
    for (chunk, dest) in text.as_bytes().chunks(8).zip(out.chunks_mut(5)) {
        let mut n = 0u64;
        for c in chunk {
            let v = ALPHABET.iter().position(|a| a == c).ok_or(TokenError::Malformed)?;
            n = (n << 5) | v as u64;
        }
        for (i, d) in dest.iter_mut().enumerate() {
            *d = (n >> (8 * (4 - i))) as u8;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "reply_token_tests.rs"]
mod tests;
