//! partnerloop's inbound mail: reading raw messages, the rules for what a
//! mail to `register@` or `reply+…@` means, and a small SMTP receiver.
//!
//! Rules of this crate: every input is hostile until parsed; nothing here
//! panics on any input; the receiver never reaches into the app, it hands
//! messages to a [`smtp_in::MailHandler`] the app implements.

pub mod inbound;
pub mod intake;
pub mod smtp_in;
pub mod strip;

// Under `cargo bolero test` every test binary of this package is built with
// libFuzzer's coverage instrumentation, which needs libFuzzer linked in: the
// unit tests link it through bolero too (they have no fuzz targets).
#[cfg(all(test, fuzzing))]
extern crate bolero as _;
