//! Partners: who they are and where they stand in the program.

use crate::validation::FieldError;

/// An enum stored and sent as text: `as_str`, `parse` (whose error lists
/// the allowed values), `ALL`, `Display`. Exported for the app's own enums.
#[macro_export]
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the API/storage text; the error lists the allowed values.
            pub fn parse(field: &str, input: &str) -> Result<Self, $crate::validation::FieldError> {
                match input.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::validation::FieldError::new(
                        field,
                        format!("'{}' is not one of: {}", other, [$($text),+].join(", ")),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use crate::text_enum;

text_enum!(
    /// What kind of business the partner is.
    PartnerType { Consultant = "consultant", Agency = "agency", Technology = "technology", Customer = "customer", Other = "other" }
);

text_enum!(
    /// A partner's place in the program's life cycle.
    PartnerStatus { Applied = "applied", Active = "active", Paused = "paused", Archived = "archived" }
);

/// The code in a partner's personal referral link (`/r/{code}`).
/// Upper-case letters and digits without look-alikes (0/O, 1/I/L).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReferralCode(String);

impl ReferralCode {
    pub const ALPHABET: &'static [u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    pub const LEN: usize = 8;

    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let code = input.trim().to_ascii_uppercase();
        if code.len() != Self::LEN || !code.bytes().all(|b| Self::ALPHABET.contains(&b)) {
            return Err(FieldError::new(field, "is not a referral code"));
        }
        Ok(Self(code))
    }

    /// Builds a code from random bytes (the caller supplies the randomness).
    pub fn from_random(bytes: [u8; Self::LEN]) -> Self {
        let n = Self::ALPHABET.len();
        Self(bytes.iter().map(|b| Self::ALPHABET[usize::from(*b) % n] as char).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_type_names_the_allowed_values() {
        let e = PartnerType::parse("type", "reseller").unwrap_err();
        assert_eq!(e.field, "type");
        assert!(e.message.contains("consultant, agency"));
        assert_eq!(PartnerType::parse("type", "agency").unwrap(), PartnerType::Agency);
    }

    #[test]
    fn referral_codes_avoid_look_alikes() {
        let c = ReferralCode::from_random([0, 1, 2, 3, 200, 255, 30, 31]);
        assert_eq!(c.as_str().len(), 8);
        assert!(!c.as_str().contains(['0', 'O', '1', 'I', 'L']));
        assert_eq!(ReferralCode::parse("code", &c.as_str().to_lowercase()).unwrap(), c);
        assert!(ReferralCode::parse("code", "ABC").is_err());
    }
}

/// A person at a partner, reachable by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: crate::ids::ContactId,
    pub name: String,
    pub email: crate::Email,
}

/// A partner as stored: the program's view of one referring business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: crate::ids::PartnerId,
    pub name: String,
    pub partner_type: PartnerType,
    pub status: PartnerStatus,
    pub tier: Option<String>,
    pub referral_code: ReferralCode,
    pub website: Option<crate::company::CompanyDomain>,
    pub commission_plan_id: Option<crate::ids::PlanId>,
    pub contacts: Vec<Contact>,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    pub first_referral_at: Option<jiff::Timestamp>,
}
