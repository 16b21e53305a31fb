//! What a mail to `register@` asks for: a referral registration.
//!
//! Rules:
//! - Two forms are understood. A structured body (`Company:`, `Contact:`,
//!   `Email:`, `Domain:`, `Notes:` lines, keys in any case, notes running on
//!   over the following lines) wins when it has an `Email:` line. Otherwise
//!   the mail is a warm intro: the partner writes to the prospect with
//!   `register@` in copy, and the prospect is the first To/CC address outside
//!   the partner's domains and ours that is not one of our own addresses.
//! - The result is a request, not a registration: the app still checks who
//!   the sender is and applies the rules of engagement.
//! - Errors say what to fix, in words fit to mail back to the partner.

use partnerloop_domain::freemail::is_free_mail;

use crate::inbound::{Address, InboundMail};
use crate::strip::strip_reply;

/// A registration read from a mail, still to be validated by the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeRequest {
    pub company_name: Option<String>,
    pub company_domain: Option<String>,
    pub contact_name: Option<String>,
    /// Lower-cased.
    pub contact_email: String,
    pub context: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error(
        "we could not tell who the prospect is: put the prospect in To or Cc (with register@ in Cc), \
         or write lines \"Company:\", \"Contact:\" and \"Email:\" in the body"
    )]
    NoProspect,
    #[error("the Email: line does not hold an email address: {0:?}")]
    InvalidEmail(String),
}

/// Reads the registration a partner sent to `register@our_domain`.
/// `partner_domains` are the sending partner's own mail domains.
pub fn read_registration(mail: &InboundMail, our_domain: &str, partner_domains: &[String]) -> Result<IntakeRequest, IntakeError> {
    if let Some(request) = structured(&mail.text)? {
        return Ok(request);
    }
    warm_intro(mail, our_domain, partner_domains)
}

const KEYS: &[&str] = &["company", "contact", "email", "domain", "notes"];

/// The structured form, if the body has an `Email:` line.
fn structured(text: &str) -> Result<Option<IntakeRequest>, IntakeError> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        match key_line(line) {
            Some((key, value)) => fields.push((key, value.trim().to_owned())),
            // Only notes run on; other keys are one line each.
            None => {
                if let Some(("notes", notes)) = fields.last_mut() {
                    notes.push('\n');
                    notes.push_str(line.trim_end());
                }
            }
        }
    }
    let field = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v.trim().to_owned()).filter(|v| !v.is_empty());
    let Some(email) = field("email") else { return Ok(None) };
    let email = email.trim_matches(['<', '>']).to_lowercase();
    if !looks_like_email(&email) {
        return Err(IntakeError::InvalidEmail(email));
    }
    Ok(Some(IntakeRequest {
        company_name: field("company"),
        company_domain: field("domain").map(|d| d.trim_start_matches("www.").to_lowercase()),
        contact_name: field("contact"),
        contact_email: email,
        context: strip_reply(&field("notes").unwrap_or_default()),
    }))
}

/// `Key: value` for one of our keys, the key in any case.
fn key_line(line: &str) -> Option<(&'static str, &str)> {
    let (key, value) = line.split_once(':')?;
    let key = key.trim().to_lowercase();
    KEYS.iter().find(|k| **k == key).map(|k| (*k, value))
}

fn looks_like_email(email: &str) -> bool {
    email.rsplit_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace))
}

fn warm_intro(mail: &InboundMail, our_domain: &str, partner_domains: &[String]) -> Result<IntakeRequest, IntakeError> {
    let prospect = mail
        .to
        .iter()
        .chain(&mail.cc)
        .find(|a| a.email != mail.from.email && !is_ours(a, our_domain) && !belongs_to(a.domain(), partner_domains))
        .ok_or(IntakeError::NoProspect)?;
    let domain = prospect.domain();
    Ok(IntakeRequest {
        company_name: None,
        // A free-mail domain says nothing about the company.
        company_domain: (!is_free_mail(domain)).then(|| domain.to_owned()),
        contact_name: prospect.name.clone(),
        contact_email: prospect.email.clone(),
        context: strip_reply(&mail.text),
    })
}

/// Our intake and reply addresses, whatever domain they were written with.
fn is_ours(address: &Address, our_domain: &str) -> bool {
    let local = address.local_part();
    local == "register" || local.starts_with("reply+") || same_or_subdomain(address.domain(), our_domain)
}

fn belongs_to(domain: &str, domains: &[String]) -> bool {
    domains.iter().any(|d| same_or_subdomain(domain, d))
}

/// `mail.partner.example` is still `partner.example`.
fn same_or_subdomain(domain: &str, of: &str) -> bool {
    let of = of.trim().trim_start_matches('@').to_lowercase();
    !of.is_empty() && (domain == of || domain.strip_suffix(&of).is_some_and(|rest| rest.ends_with('.')))
}

#[cfg(test)]
#[path = "intake_tests.rs"]
mod tests;
