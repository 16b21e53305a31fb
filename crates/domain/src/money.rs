//! Money: integer minor units plus an ISO 4217 currency. Never a float.
//!
//! Rules: an amount from outside is a decimal string with at most the
//! currency's minor-unit digits (`"1500.00"` USD, `"1500"` JPY); more
//! precision is refused rather than rounded, so nothing silently changes.
//! Arithmetic is checked: an overflow is an error, never a wrap.
//! Rounding, where a calculation needs it (rates), is half-even to the
//! currency's minor unit and lives in [`Money::from_decimal_half_even`].

use crate::validation::FieldError;
use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt;

/// ISO 4217 codes in use, with their minor-unit exponent.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWL", 2),
];

/// An ISO 4217 currency known to partnerloop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    pub const USD: Currency = Currency { code: *b"USD", exponent: 2 };

    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let code = input.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, e)| {
                let b = c.as_bytes();
                Currency { code: [b[0], b[1], b[2]], exponent: *e }
            })
            .ok_or_else(|| FieldError::new(field, format!("'{input}' is not an ISO 4217 currency code")))
    }

    /// Every currency known, with its minor-unit exponent.
    pub fn all() -> &'static [(&'static str, u8)] {
        CURRENCIES
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Digits after the decimal point (2 for USD, 0 for JPY, 3 for KWD).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currencies differ: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount out of range")]
    Overflow,
}

/// An exact amount of one currency, in its minor units (cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::from_minor(0, currency)
    }

    /// Parses `{"amount": "1500.00", "currency": "USD"}`; errors name
    /// `FIELD.amount` or `FIELD.currency`.
    pub fn parse(field: &str, amount: &str, currency: &str) -> Result<Self, FieldError> {
        let currency = Currency::parse(&format!("{field}.currency"), currency)?;
        let amount_field = format!("{field}.amount");
        let text = amount.trim();
        let valid_shape = !text.is_empty()
            && text.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-')
            && text.matches('.').count() <= 1
            && !text.starts_with('.')
            && !text.ends_with('.')
            && (text.rfind('-').is_none_or(|i| i == 0));
        if !valid_shape {
            return Err(FieldError::new(&amount_field, format!("'{amount}' is not a decimal amount like \"1500.00\"")));
        }
        let value: Decimal = text.parse().map_err(|_| FieldError::new(&amount_field, format!("'{amount}' is not a decimal amount")))?;
        if value.normalize().scale() > u32::from(currency.exponent) {
            return Err(FieldError::new(&amount_field, format!("{} allows at most {} decimal places", currency, currency.exponent)));
        }
        let minor = to_minor(value, currency).ok_or_else(|| FieldError::new(&amount_field, "is too large"))?;
        Ok(Self { minor, currency })
    }

    /// Like [`parse`](Self::parse), refusing negative amounts.
    pub fn parse_non_negative(field: &str, amount: &str, currency: &str) -> Result<Self, FieldError> {
        let m = Self::parse(field, amount, currency)?;
        if m.minor < 0 {
            return Err(FieldError::new(format!("{field}.amount"), "must not be negative"));
        }
        Ok(m)
    }

    /// Like [`parse`](Self::parse), refusing zero and negative amounts.
    pub fn parse_positive(field: &str, amount: &str, currency: &str) -> Result<Self, FieldError> {
        let m = Self::parse(field, amount, currency)?;
        if m.minor <= 0 {
            return Err(FieldError::new(format!("{field}.amount"), "must be greater than zero"));
        }
        Ok(m)
    }

    /// Rounds an exact decimal amount half-even to the currency's minor unit.
    /// This is the one rounding rule of partnerloop.
    pub fn from_decimal_half_even(value: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let rounded = value.round_dp_with_strategy(u32::from(currency.exponent), RoundingStrategy::MidpointNearestEven);
        to_minor(rounded, currency).map(|minor| Self { minor, currency }).ok_or(MoneyError::Overflow)
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_negative(&self) -> bool {
        self.minor < 0
    }

    /// The exact decimal value (`1500.00`).
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, u32::from(self.currency.exponent))
    }

    /// The amount as the API shows it: always with the currency's decimals.
    pub fn amount_string(&self) -> String {
        self.to_decimal().to_string()
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        self.minor.checked_add(other.minor).map(|minor| Money { minor, currency: self.currency }).ok_or(MoneyError::Overflow)
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.minor.checked_neg().map(|minor| Money { minor, currency: self.currency }).ok_or(MoneyError::Overflow)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_string(), self.currency)
    }
}

fn to_minor(value: Decimal, currency: Currency) -> Option<i64> {
    let scaled = value.checked_mul(Decimal::from(10i64.pow(u32::from(currency.exponent))))?;
    if scaled.fract() != Decimal::ZERO {
        return None;
    }
    i64::try_from(scaled).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_amount_is_stored_in_minor_units() {
        let m = Money::parse("amount", "1500.5", "usd").unwrap();
        assert_eq!(m.minor(), 150_050);
        assert_eq!(m.amount_string(), "1500.50");
        assert_eq!(m.currency().code(), "USD");
        assert_eq!(Money::parse("a", "1500", "JPY").unwrap().amount_string(), "1500");
        assert_eq!(Money::parse("a", "1.234", "KWD").unwrap().minor(), 1234);
    }

    #[test]
    fn more_precision_than_the_currency_has_is_refused_not_rounded() {
        let e = Money::parse("estimated_value", "10.005", "USD").unwrap_err();
        assert_eq!(e.field, "estimated_value.amount");
        assert!(Money::parse("a", "10.5", "JPY").is_err());
        assert!(Money::parse("a", "10.50", "USD").is_ok());
    }

    #[test]
    fn malformed_amounts_and_currencies_are_refused() {
        for bad in ["", "1e3", "1,000.00", "--1", "1-", ".5", "5.", "NaN", "1.2.3", " "] {
            assert!(Money::parse("a", bad, "USD").is_err(), "{bad}");
        }
        let e = Money::parse("a", "1", "XYZ").unwrap_err();
        assert_eq!(e.field, "a.currency");
        assert!(Money::parse("a", "99999999999999999999", "USD").is_err());
    }

    #[test]
    fn sign_rules_name_the_amount() {
        assert_eq!(Money::parse_non_negative("x", "-1.00", "USD").unwrap_err().field, "x.amount");
        assert!(Money::parse_non_negative("x", "0", "USD").is_ok());
        assert!(Money::parse_positive("x", "0", "USD").is_err());
    }

    #[test]
    fn rounding_is_half_even_to_the_minor_unit() {
        let usd = Currency::USD;
        let r = |s: &str| Money::from_decimal_half_even(s.parse().unwrap(), usd).unwrap().minor();
        assert_eq!(r("0.125"), 12);
        assert_eq!(r("0.135"), 14);
        assert_eq!(r("-0.125"), -12);
        assert_eq!(r("2.5"), 250);
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies_and_overflow() {
        let usd = Money::from_minor(100, Currency::USD);
        let eur = Money::from_minor(100, Currency::parse("c", "EUR").unwrap());
        assert!(matches!(usd.checked_add(eur), Err(MoneyError::CurrencyMismatch(..))));
        assert_eq!(Money::from_minor(i64::MAX, Currency::USD).checked_add(usd), Err(MoneyError::Overflow));
        assert_eq!(usd.checked_add(usd).unwrap().minor(), 200);
    }
}
