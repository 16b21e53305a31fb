//! Company identity: the web domain that names an account.
//!
//! A domain given as a URL or host (`https://www.Acme.example/about`) is
//! reduced to its host, lower-cased, without `www.`, port or path. The
//! registrable-domain step (public-suffix list) belongs to deal
//! registration and builds on this.

use crate::validation::FieldError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompanyDomain(String);

impl CompanyDomain {
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let mut s = input.trim().to_lowercase();
        if let Some(i) = s.find("://") {
            s = s[i + 3..].to_owned();
        }
        let host_end = s.find(['/', '?', '#']).unwrap_or(s.len());
        s.truncate(host_end);
        if let Some(i) = s.rfind('@') {
            s = s[i + 1..].to_owned();
        }
        if let Some(i) = s.find(':') {
            s.truncate(i);
        }
        let host = s.trim_end_matches('.').trim_start_matches("www.");
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
        };
        if host.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if host.len() > 253 || !host.contains('.') || !host.split('.').all(label_ok) {
            return Err(FieldError::new(field, format!("'{}' is not a domain name like acme.com", input.trim())));
        }
        Ok(Self(host.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_hosts_reduce_to_the_host() {
        for (input, want) in [
            ("acme.example", "acme.example"),
            ("https://www.Acme.Example/about?x=1", "acme.example"),
            ("http://acme.example:8080", "acme.example"),
            ("WWW.acme.co.uk.", "acme.co.uk"),
        ] {
            assert_eq!(CompanyDomain::parse("d", input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn non_domains_are_refused() {
        for bad in ["", "acme", "acme..example", "-acme.example", "acme example.com", "https://"] {
            assert!(CompanyDomain::parse("company.domain", bad).is_err(), "{bad}");
        }
    }
}
