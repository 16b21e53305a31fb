//! Email addresses: validated, domain lower-cased, compared case-insensitively
//! on the domain (local parts are case-sensitive by RFC 5321 but not in
//! practice; we keep the local part as given and compare on the lowercase form).

use crate::validation::FieldError;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses an address like `Ada@Northwind.Example` into `ada@northwind.example`.
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if trimmed.len() > 254 {
            return Err(FieldError::new(field, "must be at most 254 characters"));
        }
        let parsed = email_address::EmailAddress::from_str(trimmed)
            .map_err(|e| FieldError::new(field, format!("is not a valid email address ({e})")))?;
        // email_address accepts display forms and dotless domains; an address a
        // partner program can mail needs a plain addr-spec on a dotted domain.
        if parsed.as_str() != trimmed || trimmed.contains(['<', '>', ' ']) {
            return Err(FieldError::new(field, "is not a plain email address"));
        }
        let domain = parsed.domain();
        if !domain.contains('.') || domain.starts_with('[') {
            return Err(FieldError::new(field, "must have a domain name with a dot"));
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_lower_cased() {
        let e = Email::parse("email", " Ada@Northwind.Example ").unwrap();
        assert_eq!(e.as_str(), "ada@northwind.example");
        assert_eq!(e.domain(), "northwind.example");
    }

    #[test]
    fn bad_addresses_are_refused_naming_the_field() {
        for bad in ["", "ada", "ada@", "@x.example", "ada@localhost", "Ada <ada@x.example>", "a b@x.example"] {
            let err = Email::parse("contact.email", bad).unwrap_err();
            assert_eq!(err.field, "contact.email", "{bad}");
        }
    }
}
