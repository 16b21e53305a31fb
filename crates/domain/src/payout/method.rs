//! How a partner is paid: PayPal, a SEPA or ACH bank transfer, or account
//! credit.
//!
//! Rules: the API input is flat (`{"method":"sepa","account_name","iban",…}`)
//! and every problem is reported at once, named by its input field. A field
//! that the chosen method does not use is refused when it has a value, so a
//! partner never believes a BIC was saved with a PayPal address. The stored
//! form is the serde JSON of [`PayoutMethod`] (tag `method`), which the app
//! encrypts; reading it back validates again. Anything shown back to people
//! is the [`MaskedPayoutMethod`]: last 4 characters of account numbers only.

use super::bank::{AbaRouting, AchAccountNumber, AchAccountType, Bic, Iban};
use crate::email::Email;
use crate::validation::{FieldError, Validator, required_text};
use std::fmt;

/// Longest account holder name: the SEPA `Cdtr/Nm` limit.
pub const ACCOUNT_NAME_MAX: usize = 70;

/// A validated way to pay a partner.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum PayoutMethod {
    Paypal {
        #[serde(with = "email_serde")]
        email: Email,
    },
    Sepa {
        #[serde(deserialize_with = "account_name_serde")]
        account_name: String,
        iban: Iban,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bic: Option<Bic>,
    },
    Ach {
        #[serde(deserialize_with = "account_name_serde")]
        account_name: String,
        routing_number: AbaRouting,
        account_number: AchAccountNumber,
        account_type: AchAccountType,
    },
    Credit,
}

/// The raw `PUT /partners/{id}/payout-details` body: every field optional
/// so that parsing, not deserialization, says what is missing.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct PayoutMethodInput {
    pub method: Option<String>,
    pub email: Option<String>,
    pub account_name: Option<String>,
    pub iban: Option<String>,
    pub bic: Option<String>,
    pub routing_number: Option<String>,
    pub account_number: Option<String>,
    pub account_type: Option<String>,
}

// Raw input holds unvalidated account numbers: its Debug says only which
// fields are present.
impl fmt::Debug for PayoutMethodInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = |o: &Option<String>| if o.is_some() { "<set>" } else { "<none>" };
        f.debug_struct("PayoutMethodInput")
            .field("method", &self.method)
            .field("email", &present(&self.email))
            .field("account_name", &present(&self.account_name))
            .field("iban", &present(&self.iban))
            .field("bic", &present(&self.bic))
            .field("routing_number", &present(&self.routing_number))
            .field("account_number", &present(&self.account_number))
            .field("account_type", &present(&self.account_type))
            .finish()
    }
}

/// What the API and pages show of a payout method.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MaskedPayoutMethod {
    pub method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iban_last4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bic: Option<String>,
    /// In full: a routing number identifies a bank, not an account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_number_last4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_type: Option<&'static str>,
}

impl PayoutMethod {
    pub fn parse(input: PayoutMethodInput) -> Result<PayoutMethod, Vec<FieldError>> {
        let Some(method) = given(&input.method).map(str::to_ascii_lowercase) else {
            return Err(vec![FieldError::new("method", "is required: one of paypal, sepa, ach, credit")]);
        };
        let used: &[&str] = match method.as_str() {
            "paypal" => &["email"],
            "sepa" => &["account_name", "iban", "bic"],
            "ach" => &["account_name", "routing_number", "account_number", "account_type"],
            "credit" => &[],
            _ => return Err(vec![FieldError::new("method", format!("'{method}' is not one of: paypal, sepa, ach, credit"))]),
        };
        let mut v = Validator::new();
        let fields = [
            ("email", &input.email),
            ("account_name", &input.account_name),
            ("iban", &input.iban),
            ("bic", &input.bic),
            ("routing_number", &input.routing_number),
            ("account_number", &input.account_number),
            ("account_type", &input.account_type),
        ];
        for (name, value) in fields {
            if given(value).is_some() && !used.contains(&name) {
                v.push(FieldError::new(name, format!("is not used by the {method} method")));
            }
        }
        let m = method.as_str();
        let holder = |field: &str, s: &str| required_text(field, s, ACCOUNT_NAME_MAX);
        match m {
            "paypal" => {
                let email = required(&mut v, m, "email", &input.email, Email::parse);
                v.finish(|| Some(PayoutMethod::Paypal { email: email? }))
            }
            "sepa" => {
                let account_name = required(&mut v, m, "account_name", &input.account_name, holder);
                let iban = required(&mut v, m, "iban", &input.iban, Iban::parse);
                let bic = v.check_opt(given(&input.bic), |s| Bic::parse("bic", s));
                v.finish(|| Some(PayoutMethod::Sepa { account_name: account_name?, iban: iban?, bic: bic? }))
            }
            "ach" => {
                let account_name = required(&mut v, m, "account_name", &input.account_name, holder);
                let routing_number = required(&mut v, m, "routing_number", &input.routing_number, AbaRouting::parse);
                let account_number = required(&mut v, m, "account_number", &input.account_number, AchAccountNumber::parse);
                let account_type = required(&mut v, m, "account_type", &input.account_type, AchAccountType::parse);
                v.finish(|| {
                    Some(PayoutMethod::Ach {
                        account_name: account_name?,
                        routing_number: routing_number?,
                        account_number: account_number?,
                        account_type: account_type?,
                    })
                })
            }
            _ => v.finish(|| Some(PayoutMethod::Credit)),
        }
    }

    /// `paypal`, `sepa`, `ach` or `credit`: the serde tag, and which export
    /// format a partner's payouts go to.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Paypal { .. } => "paypal",
            Self::Sepa { .. } => "sepa",
            Self::Ach { .. } => "ach",
            Self::Credit => "credit",
        }
    }

    pub fn masked(&self) -> MaskedPayoutMethod {
        let mut m = MaskedPayoutMethod {
            method: self.kind(),
            email: None,
            account_name: None,
            iban_last4: None,
            bic: None,
            routing_number: None,
            account_number_last4: None,
            account_type: None,
        };
        match self {
            Self::Paypal { email } => m.email = Some(email.as_str().to_owned()),
            Self::Sepa { account_name, iban, bic } => {
                m.account_name = Some(account_name.clone());
                m.iban_last4 = Some(iban.last4().to_owned());
                m.bic = bic.as_ref().map(|b| b.as_str().to_owned());
            }
            Self::Ach { account_name, routing_number, account_number, account_type } => {
                m.account_name = Some(account_name.clone());
                m.routing_number = Some(routing_number.as_str().to_owned());
                m.account_number_last4 = Some(account_number.last4().to_owned());
                m.account_type = Some(account_type.as_str());
            }
            Self::Credit => {}
        }
        m
    }
}

/// Parses a field the method needs, recording "is required" when it is
/// absent or blank.
fn required<T>(
    v: &mut Validator,
    method: &str,
    name: &str,
    value: &Option<String>,
    parse: impl FnOnce(&str, &str) -> Result<T, FieldError>,
) -> Option<T> {
    match given(value) {
        None => {
            v.push(FieldError::new(name, format!("is required for the {method} method")));
            None
        }
        Some(text) => v.check(parse(name, text)),
    }
}

/// A field's trimmed value, `None` when absent or blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

mod email_serde {
    use crate::email::Email;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(email: &Email, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(email.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Email, D::Error> {
        let text = String::deserialize(d)?;
        Email::parse("email", &text).map_err(serde::de::Error::custom)
    }
}

fn account_name_serde<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    required_text("account_name", &text, ACCOUNT_NAME_MAX).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde::de::value::{Error as DeError, MapDeserializer};

    fn input(pairs: &[(&str, &str)]) -> PayoutMethodInput {
        let mut i = PayoutMethodInput::default();
        for (k, v) in pairs {
            let slot = match *k {
                "method" => &mut i.method,
                "email" => &mut i.email,
                "account_name" => &mut i.account_name,
                "iban" => &mut i.iban,
                "bic" => &mut i.bic,
                "routing_number" => &mut i.routing_number,
                "account_number" => &mut i.account_number,
                _ => &mut i.account_type,
            };
            *slot = Some((*v).to_owned());
        }
        i
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    const SEPA: &[(&str, &str)] =
        &[("method", "sepa"), ("account_name", "Zoë Müller"), ("iban", "DE89 3704 0044 0532 0130 00"), ("bic", "cobadeffxxx")];
    const ACH: &[(&str, &str)] = &[
        ("method", "ach"),
        ("account_name", "Northwind LLC"),
        ("routing_number", "021000021"),
        ("account_number", "000123456789"),
        ("account_type", "checking"),
    ];

    #[test]
    fn each_method_parses_and_masks() {
        let paypal = PayoutMethod::parse(input(&[("method", "PayPal"), ("email", "Ada@Northwind.Example")])).unwrap();
        assert_eq!(paypal.masked().email.as_deref(), Some("ada@northwind.example"));
        let sepa = PayoutMethod::parse(input(SEPA)).unwrap();
        let m = sepa.masked();
        assert_eq!((m.method, m.iban_last4.as_deref(), m.bic.as_deref()), ("sepa", Some("3000"), Some("COBADEFFXXX")));
        let ach = PayoutMethod::parse(input(ACH)).unwrap();
        let m = ach.masked();
        assert_eq!(
            (m.routing_number.as_deref(), m.account_number_last4.as_deref(), m.account_type),
            (Some("021000021"), Some("6789"), Some("checking"))
        );
        assert_eq!(PayoutMethod::parse(input(&[("method", "credit")])).unwrap(), PayoutMethod::Credit);
        assert_eq!([paypal.kind(), sepa.kind(), ach.kind(), PayoutMethod::Credit.kind()], ["paypal", "sepa", "ach", "credit"]);
        let debug = format!("{sepa:?} {ach:?}");
        assert!(!debug.contains("DE89370400440532013000") && !debug.contains("000123456789"), "{debug}");
    }

    #[test]
    fn every_error_is_reported_under_its_input_field() {
        let e = PayoutMethod::parse(input(&[("method", "sepa"), ("iban", "DE89370400440532013001"), ("bic", "XX")])).unwrap_err();
        assert_eq!(fields(&e), ["account_name", "iban", "bic"]);
        assert_eq!(e[1].message, "the check digits do not match (mod-97)");
        let e = PayoutMethod::parse(input(&[("method", "ach"), ("routing_number", "021000022"), ("account_number", "12ab")])).unwrap_err();
        assert_eq!(fields(&e), ["account_name", "routing_number", "account_number", "account_type"]);
        let e = PayoutMethod::parse(input(&[("method", "paypal"), ("email", "nope"), ("iban", "DE89370400440532013000")])).unwrap_err();
        assert_eq!(fields(&e), ["iban", "email"]);
        assert_eq!(e[0].message, "is not used by the paypal method");
        assert_eq!(fields(&PayoutMethod::parse(input(&[("method", "cheque")])).unwrap_err()), ["method"]);
        assert_eq!(fields(&PayoutMethod::parse(PayoutMethodInput::default()).unwrap_err()), ["method"]);
        let long = "x".repeat(71);
        let e = PayoutMethod::parse(input(&[("method", "sepa"), ("account_name", &long), ("iban", "DE89370400440532013000")])).unwrap_err();
        assert_eq!((e[0].field.as_str(), e[0].message.as_str()), ("account_name", "must be at most 70 characters"));
    }

    #[test]
    fn blank_fields_of_other_methods_are_ignored() {
        let mut i = input(&[("method", "credit")]);
        i.iban = Some("  ".into());
        assert_eq!(PayoutMethod::parse(i).unwrap(), PayoutMethod::Credit);
    }

    #[test]
    fn the_stored_form_is_tagged_by_method_and_validated_on_read() {
        // serde_json is not a dependency of this crate; csv serializes a
        // struct as header + record, which shows the same field names.
        let sepa = PayoutMethod::parse(input(SEPA)).unwrap();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&sepa).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text, "method,account_name,iban,bic\nsepa,Zoë Müller,DE89370400440532013000,COBADEFFXXX\n");

        let read = |pairs: &[(&str, &str)]| PayoutMethod::deserialize(MapDeserializer::<_, DeError>::new(pairs.iter().copied()));
        assert_eq!(read(SEPA).unwrap(), sepa);
        assert_eq!(read(ACH).unwrap(), PayoutMethod::parse(input(ACH)).unwrap());
        assert_eq!(read(&[("method", "credit")]).unwrap(), PayoutMethod::Credit);
        assert!(read(&[("method", "paypal"), ("email", "ada@northwind.example")]).is_ok());
        assert!(read(&[("method", "paypal"), ("email", "not an email")]).is_err());
        assert!(
            read(&[
                ("method", "ach"),
                ("account_name", "A"),
                ("routing_number", "021000022"),
                ("account_number", "1"),
                ("account_type", "checking")
            ])
            .is_err()
        );
        assert!(read(&[("method", "sepa"), ("account_name", "A"), ("iban", "DE89370400440532013001")]).is_err());
    }
}
