//! partnerloop's domain: the product's values and rules, pure.
//!
//! Rules of this crate: no I/O, no async, no clock reads (time is always a
//! parameter), no framework or database types. A value that exists is
//! valid: every type here is built through `parse`, which says precisely
//! what is wrong with bad input as [`FieldError`]s.

pub mod account;
pub mod application;
pub mod commission;
pub mod company;
pub mod deal;
pub mod email;
pub mod form_stamp;
pub mod freemail;
pub mod fuzzy;
pub mod ids;
pub mod metrics;
pub mod money;
pub mod names;
pub mod partner;
pub mod payout;
pub mod plan;
pub mod referral;
pub mod reply_token;
pub mod rules;
pub mod tier;
pub mod validation;

pub use email::Email;
pub use money::{Currency, Money};
pub use validation::{FieldError, Validator};
