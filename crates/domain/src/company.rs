//! Company identity: the web domain that names an account.
//!
//! A domain given as a URL, host or email address
//! (`https://www.Shop.Acme.co.uk/about`) is reduced to its registrable
//! domain (`acme.co.uk`): scheme, credentials, port, path and subdomains
//! stripped, internationalised names in their ASCII (punycode) form, and
//! the public-suffix list deciding where the registrable part begins, so
//! `eu.acme.com` and `acme.com` are one company while `a.github.io` and
//! `b.github.io` are two.

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
        let ascii = match idna::domain_to_ascii(host) {
            Ok(a) if !a.is_empty() => a,
            _ => return Err(FieldError::new(field, format!("'{}' is not a domain name like acme.com", input.trim()))),
        };
        let host = ascii.as_str();
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
        match psl::domain_str(host) {
            Some(registrable) => Ok(Self(registrable.to_owned())),
            None => Err(FieldError::new(field, format!("'{host}' is a public suffix, not a company's domain"))),
        }
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
            ("https://www.Sub.Acme.co.uk/x", "acme.co.uk"),
            ("eu.shop.acme.com", "acme.com"),
            ("acme.com.au", "acme.com.au"),
            ("portal.acme.co.jp", "acme.co.jp"),
            ("northwind.github.io", "northwind.github.io"),
            ("mailto:ada@mail.northwind.de", "northwind.de"),
            ("Müller-Bau.de", "xn--mller-bau-q9a.de"),
            ("https://www.bücher.example/shop", "xn--bcher-kva.example"),
        ] {
            assert_eq!(CompanyDomain::parse("d", input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn non_domains_are_refused() {
        for bad in ["", "acme", "acme..example", "-acme.example", "acme example.com", "https://", "co.uk", "github.io"] {
            assert!(CompanyDomain::parse("company.domain", bad).is_err(), "{bad}");
        }
    }
}
