//! Company names folded for comparison: "The Globex Corporation, Inc." and
//! "globex corp" are one company. Folding lower-cases, strips accents
//! (transliterating to ASCII), turns `&` into "and", drops punctuation,
//! a leading "the" and trailing legal-form words (Inc, LLC, GmbH, …).

/// Legal-form words dropped from the end of a name (after punctuation is gone,
/// so "S.A." is "s a" → matched as the two-word form below).
const LEGAL_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "llc",
    "llp",
    "lp",
    "ltd",
    "limited",
    "plc",
    "corp",
    "corporation",
    "co",
    "company",
    "gmbh",
    "mbh",
    "ag",
    "kg",
    "ug",
    "se",
    "sa",
    "sas",
    "sarl",
    "srl",
    "spa",
    "bv",
    "nv",
    "vof",
    "ab",
    "as",
    "asa",
    "oy",
    "oyj",
    "aps",
    "pty",
    "pte",
    "kk",
    "sl",
    "slu",
    "sro",
    "zoo",
    "kft",
    "lda",
    "ltda",
    "cv",
    "ohg",
    "ek",
    "holding",
    "holdings",
    "group",
];

/// Multi-letter abbreviations written with dots or spaces ("S.A.", "B V").
const SPACED_SUFFIXES: &[&[&str]] = &[
    &["s", "a"],
    &["b", "v"],
    &["n", "v"],
    &["s", "a", "s"],
    &["s", "r", "l"],
    &["s", "p", "a"],
    &["a", "g"],
    &["p", "l", "c"],
    &["l", "l", "c"],
    &["s", "l"],
    &["a", "b"],
    &["o", "y"],
    &["a", "s"],
    &["k", "k"],
    &["sp", "z", "o", "o"],
    &["s", "a", "r", "l"],
    &["g", "m", "b", "h"],
    &["e", "k"],
    &["p", "t", "y"],
];

/// The folded form of a company name; empty when nothing distinctive is left.
pub fn fold_company_name(name: &str) -> String {
    // Apostrophes join ("McDonald's" is "mcdonalds"); other punctuation separates.
    let ascii = deunicode::deunicode(name).to_lowercase().replace(['\'', '`'], "").replace('&', " and ");
    let cleaned: String = ascii.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' }).collect();
    let mut words: Vec<String> = cleaned.split_whitespace().map(str::to_owned).collect();
    if words.len() > 1 && words[0] == "the" {
        words.remove(0);
    }
    loop {
        if words.len() <= 1 {
            break;
        }
        if let Some(spaced) = SPACED_SUFFIXES
            .iter()
            .find(|s| s.len() < words.len() && words[words.len() - s.len()..].iter().zip(s.iter()).all(|(a, b)| a == b))
        {
            words.truncate(words.len() - spaced.len());
            continue;
        }
        let last = words[words.len() - 1].as_str();
        if LEGAL_SUFFIXES.contains(&last) || (last == "and" && words.len() > 1) {
            words.pop();
            continue;
        }
        break;
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_forms_case_accents_and_the_fold_away() {
        for (a, b) in [
            ("The Globex Corporation", "Globex"),
            ("Globex, Inc.", "GLOBEX"),
            ("Globex Corp", "globex llc"),
            ("Müller Bau GmbH", "Muller Bau"),
            ("Société Générale S.A.", "Societe Generale"),
            ("Initech B.V.", "initech bv"),
            ("Acme & Sons Ltd", "acme and sons"),
            ("McDonald's", "McDonalds"),
            ("Nordisk Film A/S", "nordisk film"),
            ("Wayne Enterprises Pty. Ltd.", "Wayne Enterprises"),
            ("Kaufland Sp. z o.o.", "Kaufland"),
            ("Hooli Holdings plc", "hooli"),
        ] {
            assert_eq!(fold_company_name(a), fold_company_name(b), "{a} vs {b}");
        }
    }

    #[test]
    fn distinctive_words_are_kept() {
        assert_eq!(fold_company_name("The Company Company"), "company");
        assert_eq!(fold_company_name("Inc"), "inc", "a name that is only a legal form stays");
        assert_eq!(fold_company_name("The"), "the");
        assert_ne!(fold_company_name("Globex Systems"), fold_company_name("Globex"));
        assert_eq!(fold_company_name("東京電力"), "dong jing dian li");
    }
}
