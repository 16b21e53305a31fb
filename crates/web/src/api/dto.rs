//! Shapes shared by the API's resources.

use partnerloop_domain::{FieldError, Money};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// An exact amount: a decimal string and an ISO 4217 code.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MoneyDto {
    /// Decimal string with at most the currency's minor digits, e.g. "1500.00".
    pub amount: String,
    /// ISO 4217 code, e.g. "USD".
    pub currency: String,
}

impl MoneyDto {
    pub fn parse_non_negative(&self, field: &str) -> Result<Money, FieldError> {
        Money::parse_non_negative(field, &self.amount, &self.currency)
    }

    pub fn parse_positive(&self, field: &str) -> Result<Money, FieldError> {
        Money::parse_positive(field, &self.amount, &self.currency)
    }
}

impl From<&Money> for MoneyDto {
    fn from(m: &Money) -> Self {
        Self { amount: m.amount_string(), currency: m.currency().code().to_owned() }
    }
}

/// For PATCH bodies: tells an absent field (`None`) from an explicit
/// `null` (`Some(None)`), which clears the field.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub use partnerloop_domain::validation::parse_time;

/// Declares a list response `{"data": [...], "next_cursor": …}` for one item type.
macro_rules! list_of {
    ($name:ident, $item:ty) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub data: Vec<$item>,
            /// Pass as `?cursor=` for the next page; null on the last page.
            pub next_cursor: Option<String>,
        }

        impl $name {
            pub fn from_page<T>(page: partnerloop_app::store::Paged<T>, f: impl Fn(&T) -> $item) -> Self {
                Self { data: page.items.iter().map(f).collect(), next_cursor: crate::extract::encode_cursor(page.next_after) }
            }
        }
    };
}
pub(crate) use list_of;
