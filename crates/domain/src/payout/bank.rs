//! Bank identifiers a partner is paid to: IBAN, BIC, ABA routing number and
//! US account number, each validated on the way in.
//!
//! Rules: a value that exists is valid, including one read back from storage
//! (serde goes through the same `parse`). Account numbers are secrets in
//! logs: `Debug` of [`Iban`] and [`AchAccountNumber`] shows only the last 4
//! characters, and neither implements `Display`, so a stray `{}` cannot leak
//! one; code that must write the full number calls `as_str()` on purpose.
//! BIC and routing number identify banks, not people, and print in full.

use crate::validation::FieldError;
use iban::{IbanLike, ParseBaseIbanError, ParseIbanError};
use std::fmt;

/// The last `n` characters of an ASCII identifier (all of it when shorter).
pub(crate) fn last_chars(s: &str, n: usize) -> &str {
    &s[s.len().saturating_sub(n)..]
}

/// An IBAN in electronic form: no spaces, upper case, mod-97 and the
/// country's length and format checked.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iban(String);

impl Iban {
    /// Accepts the paper form too (`DE89 3704 0044 0532 0130 00`), any case.
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let compact: String = input.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
        if compact.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        match iban::Iban::try_from(compact.as_str()) {
            Ok(iban) => Ok(Self(iban.electronic_str().to_owned())),
            Err(ParseIbanError::InvalidBaseIban { source: ParseBaseIbanError::InvalidChecksum }) => {
                Err(FieldError::new(field, "the check digits do not match (mod-97)"))
            }
            Err(ParseIbanError::InvalidBaseIban { source: ParseBaseIbanError::InvalidFormat }) => Err(FieldError::new(
                field,
                "is not an IBAN: expected a 2-letter country code, 2 check digits and up to 30 letters or digits",
            )),
            Err(ParseIbanError::UnknownCountry(base)) => {
                Err(FieldError::new(field, format!("'{}' is not a country that uses IBANs", base.country_code())))
            }
            Err(ParseIbanError::InvalidBban(base)) => {
                Err(FieldError::new(field, format!("does not have the length and format of a {} IBAN", base.country_code())))
            }
        }
    }

    /// The full IBAN, for a payment file.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn country_code(&self) -> &str {
        &self.0[..2]
    }

    pub fn last4(&self) -> &str {
        last_chars(&self.0, 4)
    }
}

impl fmt::Debug for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Iban(…{})", self.last4())
    }
}

impl TryFrom<String> for Iban {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse("iban", &s)
    }
}

impl From<Iban> for String {
    fn from(v: Iban) -> String {
        v.0
    }
}

/// A BIC (SWIFT code): 4 letters bank, 2 letters country, 2 characters
/// location, optionally 3 characters branch; upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Bic(String);

impl Bic {
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let bic = input.trim().to_ascii_uppercase();
        let b = bic.as_bytes();
        if b.len() != 8 && b.len() != 11 {
            return Err(FieldError::new(field, "must be 8 or 11 characters (e.g. DEUTDEFF or DEUTDEFF500)"));
        }
        if !b[..6].iter().all(u8::is_ascii_uppercase) {
            return Err(FieldError::new(field, "must start with 4 letters for the bank and 2 letters for the country"));
        }
        if !b[6..].iter().all(u8::is_ascii_alphanumeric) {
            return Err(FieldError::new(field, "location and branch codes must be letters or digits"));
        }
        // ISO 9362 (and the pain.001 XSD pattern) rule out '0' and '1' as the
        // first location character and 'O' as the second; a BIC we accept
        // must never make a SEPA file fail schema validation later.
        if matches!(b[6], b'0' | b'1') || b[7] == b'O' {
            return Err(FieldError::new(field, "has an invalid location code"));
        }
        Ok(Self(bic))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Bic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Bic {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse("bic", &s)
    }
}

impl From<Bic> for String {
    fn from(v: Bic) -> String {
        v.0
    }
}

/// A US ABA routing transit number: 9 digits whose weighted sum
/// (3,7,1,3,7,1,3,7,1) is a multiple of 10.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AbaRouting(String);

impl AbaRouting {
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let digits = input.trim();
        if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(field, "must be 9 digits"));
        }
        let sum: u32 = digits.bytes().zip([3, 7, 1, 3, 7, 1, 3, 7, 1]).map(|(d, w)| u32::from(d - b'0') * w).sum();
        if !sum.is_multiple_of(10) {
            return Err(FieldError::new(field, "the check digit does not match (ABA checksum)"));
        }
        Ok(Self(digits.to_owned()))
    }

    /// The check digit (9th) for the first 8 digits of a routing number.
    pub fn check_digit(first8: &str) -> Option<u8> {
        if first8.len() != 8 || !first8.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let sum: u32 = first8.bytes().zip([3, 7, 1, 3, 7, 1, 3, 7]).map(|(d, w)| u32::from(d - b'0') * w).sum();
        Some(((10 - sum % 10) % 10) as u8)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 digits: the bank's id as NACHA records and hashes it.
    pub fn first8(&self) -> &str {
        &self.0[..8]
    }
}

impl fmt::Display for AbaRouting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AbaRouting {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse("routing_number", &s)
    }
}

impl From<AbaRouting> for String {
    fn from(v: AbaRouting) -> String {
        v.0
    }
}

/// A US bank account number: 1 to 17 digits (the NACHA field width).
/// Leading zeros are significant, so it stays text.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AchAccountNumber(String);

impl AchAccountNumber {
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let digits = input.trim();
        if digits.is_empty() || digits.len() > 17 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(field, "must be 1 to 17 digits"));
        }
        Ok(Self(digits.to_owned()))
    }

    /// The full number, for a payment file.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn last4(&self) -> &str {
        last_chars(&self.0, 4)
    }
}

impl fmt::Debug for AchAccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AchAccountNumber(…{})", self.last4())
    }
}

impl TryFrom<String> for AchAccountNumber {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse("account_number", &s)
    }
}

impl From<AchAccountNumber> for String {
    fn from(v: AchAccountNumber) -> String {
        v.0
    }
}

/// Which kind of US account: it picks the NACHA transaction code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AchAccountType {
    Checking,
    Savings,
}

impl AchAccountType {
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        match input.trim().to_ascii_lowercase().as_str() {
            "checking" => Ok(Self::Checking),
            "savings" => Ok(Self::Savings),
            _ => Err(FieldError::new(field, "must be checking or savings")),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Checking => "checking",
            Self::Savings => "savings",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_are_checked_and_stored_electronically() {
        let iban = Iban::parse("iban", " de89 3704 0044 0532 0130 00 ").unwrap();
        assert_eq!(iban.as_str(), "DE89370400440532013000");
        assert_eq!(iban.last4(), "3000");
        assert_eq!(iban.country_code(), "DE");
        assert!(Iban::parse("iban", "GB82WEST12345698765432").is_ok());
        assert!(Iban::parse("iban", "FR1420041010050500013M02606").is_ok());
    }

    /// Builds an IBAN with correct mod-97 check digits around any BBAN.
    fn with_check_digits(country: &str, bban: &str) -> String {
        let rearranged = format!("{bban}{country}00");
        let rem = rearranged.chars().fold(0u32, |acc, c| {
            let v = c.to_digit(36).unwrap();
            if v < 10 { (acc * 10 + v) % 97 } else { (acc * 100 + v) % 97 }
        });
        format!("{country}{:02}{bban}", 98 - rem)
    }

    #[test]
    fn bad_ibans_say_why() {
        let msg = |s: &str| Iban::parse("iban", s).unwrap_err().message;
        assert_eq!(msg("DE89370400440532013001"), "the check digits do not match (mod-97)");
        assert_eq!(msg("DE88370400440532013000"), "the check digits do not match (mod-97)");
        // Right check digits, but one digit short for Germany.
        assert_eq!(msg(&with_check_digits("DE", "37040044053201300")), "does not have the length and format of a DE IBAN");
        assert_eq!(msg(&with_check_digits("XX", "37040044053201300")), "'XX' is not a country that uses IBANs");
        assert!(msg("12345").starts_with("is not an IBAN"));
        assert_eq!(msg(""), "must not be empty");
        assert_eq!(Iban::parse("payer.iban", "x").unwrap_err().field, "payer.iban");
    }

    #[test]
    fn bics_have_the_iso_9362_shape() {
        assert_eq!(Bic::parse("bic", "deutdeff").unwrap().as_str(), "DEUTDEFF");
        assert!(Bic::parse("bic", "DEUTDEFF500").is_ok());
        assert!(Bic::parse("bic", "COBADEFFXXX").is_ok());
        for bad in ["DEUTDEF", "DEUTDEFF50", "DEU1DEFF", "DEUTD3FF", "DEUTDE0F", "DEUTDEFO", "DEUTDEFF_00", ""] {
            assert_eq!(Bic::parse("bic", bad).unwrap_err().field, "bic", "{bad}");
        }
    }

    #[test]
    fn routing_numbers_have_the_aba_check_digit() {
        for good in ["021000021", "011000015", "111000025", "121000358"] {
            assert!(AbaRouting::parse("routing_number", good).is_ok(), "{good}");
            assert_eq!(AbaRouting::check_digit(&good[..8]), Some(good.as_bytes()[8] - b'0'));
        }
        let e = AbaRouting::parse("routing_number", "021000022").unwrap_err();
        assert_eq!((e.field.as_str(), e.message.as_str()), ("routing_number", "the check digit does not match (ABA checksum)"));
        assert_eq!(AbaRouting::parse("r", "02100002").unwrap_err().message, "must be 9 digits");
        assert_eq!(AbaRouting::parse("r", "02100002a").unwrap_err().message, "must be 9 digits");
    }

    #[test]
    fn account_numbers_are_digits_and_debug_shows_only_the_last_four() {
        let n = AchAccountNumber::parse("account_number", "000123456789").unwrap();
        assert_eq!(n.as_str(), "000123456789");
        assert_eq!(format!("{n:?}"), "AchAccountNumber(…6789)");
        let iban = Iban::parse("iban", "DE89370400440532013000").unwrap();
        assert_eq!(format!("{iban:?}"), "Iban(…3000)");
        for bad in ["", "12-34", "123456789012345678", "abc"] {
            assert!(AchAccountNumber::parse("account_number", bad).is_err(), "{bad}");
        }
        assert_eq!(AchAccountType::parse("account_type", "Savings").unwrap(), AchAccountType::Savings);
        assert!(AchAccountType::parse("account_type", "current").is_err());
    }
}
