//! The public pages anyone may open: the partner application form
//! (`/apply`) and a partner's personal referral link (`/r/{code}`).
//!
//! Rules of this module:
//! - Every form carries a CSRF token equal to the `pl_form_csrf` cookie
//!   (double submit, constant-time compare, set on the form's page for
//!   anonymous visitors); a POST without it is refused with 403 and
//!   changes nothing.
//! - Each POST is rate-limited per client address (and `/r/{code}` per
//!   code too) with a clear 429 page, before anything else is looked at.
//! - Spam protection: a hidden honeypot input that people leave empty, and
//!   a signed time stamp of when the form was served
//!   (`partnerloop_domain::form_stamp`): a form sent back sooner than
//!   [`PublicForms::min_fill`] or later than a day is taken for a bot's.
//!   A bot is answered exactly like a person, and nothing is stored.
//! - Bad input shows the form again (422) with each problem beside its
//!   field and everything typed kept.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jiff::{SignedDuration, Timestamp};

use crate::AppState;
use crate::portal::{cookie, secure};

pub mod apply;
pub mod link;

const CSRF_COOKIE: &str = "pl_form_csrf";
/// The honeypot input's name: a plausible field that browsers do not autofill into hidden inputs.
pub(crate) const HONEYPOT: &str = "fax_number";
/// The oldest form stamp accepted.
const MAX_AGE: SignedDuration = SignedDuration::from_hours(24);

fn quota(burst: u32, every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every).unwrap_or(Quota::per_hour(burst)).allow_burst(burst)
}

/// The public forms' settings and rate limits.
pub struct PublicForms {
    /// A form sent back sooner than this after it was served is a bot's.
    pub min_fill: SignedDuration,
    apply_per_address: DefaultKeyedRateLimiter<IpAddr>,
    link_per_address: DefaultKeyedRateLimiter<IpAddr>,
    link_per_code: DefaultKeyedRateLimiter<String>,
}

impl Default for PublicForms {
    fn default() -> Self {
        Self::with_min_fill(SignedDuration::from_secs(2))
    }
}

impl PublicForms {
    pub fn with_min_fill(min_fill: SignedDuration) -> Self {
        Self {
            min_fill,
            // 10 at once, then one a minute, per client address.
            apply_per_address: RateLimiter::keyed(quota(10, Duration::from_secs(60))),
            // 10 at once, then one every 30 s, per client address.
            link_per_address: RateLimiter::keyed(quota(10, Duration::from_secs(30))),
            // 30 at once, then one every 10 s, per link.
            link_per_code: RateLimiter::keyed(quota(30, Duration::from_secs(10))),
        }
    }

    /// Counts one application from `address`; false when over the limit.
    pub(crate) fn allow_apply(&self, address: IpAddr) -> bool {
        self.forget_idle();
        self.apply_per_address.check_key(&address).is_ok()
    }

    /// Counts one lead through link `code` from `address`; false when either is over its limit.
    pub(crate) fn allow_link(&self, address: IpAddr, code: &str) -> bool {
        self.forget_idle();
        // Keyed by the code as parsed (every spelling of one link shares its
        // bucket); anything that is no code shares one bucket of its own.
        let key = partnerloop_domain::partner::ReferralCode::parse("code", code).map(|c| c.as_str().to_owned()).unwrap_or_default();
        self.link_per_address.check_key(&address).is_ok() && self.link_per_code.check_key(&key).is_ok()
    }

    /// Keys whose limit has fully recovered are dropped, so that a flood of
    /// made-up addresses or codes cannot grow the maps without bound.
    fn forget_idle(&self) {
        const KEEP: usize = 10_000;
        if self.apply_per_address.len() > KEEP {
            self.apply_per_address.retain_recent();
        }
        if self.link_per_address.len() > KEEP {
            self.link_per_address.retain_recent();
        }
        if self.link_per_code.len() > KEEP {
            self.link_per_code.retain_recent();
        }
    }
}

/// The CSRF token of this browser for public forms: the cookie's, or a new one to set.
pub(crate) struct FormCsrf {
    pub token: String,
    set: Option<HeaderValue>,
}

impl FormCsrf {
    pub(crate) fn of(s: &AppState, headers: &HeaderMap) -> Self {
        if let Some(t) = cookie(headers, CSRF_COOKIE).filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Self { token: t.to_owned(), set: None };
        }
        let token = partnerloop_app::signin::token_hash(&partnerloop_app::auth::random_secret());
        let c = format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}", secure(s));
        Self { token, set: c.parse().ok() }
    }

    /// Adds the cookie to a response when it is new.
    pub(crate) fn apply(self, mut r: Response) -> Response {
        if let Some(v) = self.set {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        r
    }
}

/// Whether a submitted form's token matches the browser's cookie.
pub(crate) fn csrf_ok(headers: &HeaderMap, submitted: &str) -> bool {
    match cookie(headers, CSRF_COOKIE) {
        Some(c) if !submitted.is_empty() => {
            c.len() == submitted.len() && c.bytes().zip(submitted.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
        }
        _ => false,
    }
}

/// The stamp of a form served now.
pub(crate) fn stamp(s: &AppState, purpose: &str) -> String {
    partnerloop_domain::form_stamp::issue(&s.links.link_key, purpose, Timestamp::now())
}

/// Whether a submission looks like a person's: the honeypot empty and the
/// form's stamp genuine, at least `min_fill` and at most a day old.
pub(crate) fn looks_human(s: &AppState, purpose: &str, stamp: &str, honeypot: &str) -> bool {
    if !honeypot.trim().is_empty() {
        return false;
    }
    match partnerloop_domain::form_stamp::age(&s.links.link_key, purpose, stamp, Timestamp::now()) {
        Some(age) => age >= s.public_forms.min_fill && age <= MAX_AGE,
        None => false,
    }
}

/// One input of a public form, with what was typed and its error.
pub(crate) struct Field {
    pub name: &'static str,
    pub label: String,
    /// `text`, `email`, `number`, `textarea` or `select`.
    pub kind: &'static str,
    pub required: bool,
    pub hint: String,
    pub autocomplete: &'static str,
    pub value: String,
    /// A select's choices: value and label.
    pub options: Vec<(String, String)>,
    pub error: Option<String>,
}

impl Field {
    pub(crate) fn new(name: &'static str, label: impl Into<String>, kind: &'static str, required: bool, value: &str) -> Self {
        Self {
            name,
            label: label.into(),
            kind,
            required,
            hint: String::new(),
            autocomplete: "off",
            value: value.to_owned(),
            options: Vec::new(),
            error: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    pub(crate) fn autocomplete(mut self, a: &'static str) -> Self {
        self.autocomplete = a;
        self
    }

    pub(crate) fn options(mut self, options: Vec<(String, String)>) -> Self {
        self.options = options;
        self
    }
}

/// Puts each error beside its input (by the input's name, or the use
/// case's dotted field via `keys`); returns those that fit no input.
pub(crate) fn place_errors(
    fields: &mut [Field],
    errors: Vec<partnerloop_domain::FieldError>,
    keys: &[(&str, &str)],
) -> Vec<partnerloop_domain::FieldError> {
    let mut general = Vec::new();
    for e in errors {
        let input = keys.iter().find(|(k, _)| e.field == *k || e.field.starts_with(&format!("{k}."))).map(|(_, i)| (*i).to_owned());
        let input = input.unwrap_or_else(|| e.field.clone());
        match fields.iter_mut().find(|f| f.name == input) {
            Some(f) => f.error = Some(f.error.take().map_or(e.message.clone(), |prev| format!("{prev}; {}", e.message))),
            None => general.push(e),
        }
    }
    general
}
