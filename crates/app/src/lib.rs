//! partnerloop's use cases and the ports they need.
//!
//! Rules of this crate: every use case takes the acting [`Ctx`] first —
//! who acts, in which workspace, at what time — and that drives both
//! authorisation and the audit log. Storage is reached only through the
//! [`Store`] trait; the clock only through the `now` in `Ctx`.

pub mod accounts;
pub mod applications;
pub mod auth;
pub mod commissions;
pub mod crm;
pub mod crm_sync;
pub mod ctx;
pub mod deals;
pub mod enablement;
pub mod error;
pub mod export;
pub mod ids;
pub mod import;
pub mod inbound;
pub mod ledger;
pub mod matching;
pub mod metrics;
pub mod notifications;
pub mod notify;
pub mod onboarding;
pub mod outbox;
pub mod partners;
pub mod payments;
pub mod payouts;
pub mod pipeline;
pub mod plans;
pub mod portal_lists;
pub mod referrals;
pub mod rules;
pub mod sealing;
pub mod signin;
pub mod staff;
pub mod staff_admin;
pub mod store;
pub mod tiers;
pub mod workspaces;

pub use ctx::{Actor, Ctx};
pub use error::{AppError, StoreError};
pub use store::Store;
