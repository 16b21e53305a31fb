//! Free-mail providers: an address there says nothing about the company,
//! so its domain is never taken as the prospect's company domain.
//! The list holds the providers that matter in B2B mail worldwide; it is
//! data (`freemail.txt`), reviewed like code.

const LIST: &str = include_str!("freemail.txt");

/// Whether `domain` (already lower-case, registrable) is a free-mail provider.
pub fn is_free_mail(domain: &str) -> bool {
    LIST.lines().map(str::trim).any(|l| !l.is_empty() && !l.starts_with('#') && l == domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_providers_are_free_mail_and_companies_are_not() {
        for d in [
            "gmail.com",
            "googlemail.com",
            "outlook.com",
            "hotmail.co.uk",
            "yahoo.fr",
            "icloud.com",
            "proton.me",
            "gmx.de",
            "web.de",
            "qq.com",
        ] {
            assert!(is_free_mail(d), "{d}");
        }
        for d in ["globex.example", "google.com", "microsoft.com", "acme.co.uk"] {
            assert!(!is_free_mail(d), "{d}");
        }
    }
}
