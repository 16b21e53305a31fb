//! Text as bank files accept it: the SEPA Latin character set for pain.001,
//! upper-case printable ASCII for NACHA.
//!
//! Rules: accented and other non-Latin letters are transliterated
//! (é→e, ß→ss, Ø→O, 北京→Bei Jing) rather than dropped, so a partner's name
//! stays recognisable on their statement; a character with no
//! transliteration is an error naming the field, never a silent `?`.
//! Punctuation outside the target set becomes a space. Names and remittance
//! texts are informational and are cut to the field width; identifiers are
//! never changed here (see `mod.rs`).

use super::PayoutFileError;

/// The EPC basic Latin character set, besides letters and digits.
const SEPA_PUNCTUATION: &str = "/-?:().,'+ ";

pub(crate) fn is_sepa_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || SEPA_PUNCTUATION.contains(c)
}

/// `input` in the SEPA character set, at most `max` characters, not empty.
pub(crate) fn sepa_text(field: &str, input: &str, max: usize) -> Result<String, PayoutFileError> {
    let latin = transliterate(field, input, "SEPA Latin", |c| match c {
        c if is_sepa_char(c) => Some(c),
        '&' => Some('+'),
        _ => None,
    })?;
    Ok(latin.chars().take(max).collect::<String>().trim_end().to_owned())
}

/// `input` as upper-case printable ASCII, cut to `width` characters (not padded).
pub(crate) fn ascii_upper(field: &str, input: &str, width: usize) -> Result<String, PayoutFileError> {
    let ascii = transliterate(field, input, "ASCII", |c| (c.is_ascii_graphic() || c == ' ').then(|| c.to_ascii_uppercase()))?;
    Ok(ascii.chars().take(width).collect::<String>().trim_end().to_owned())
}

/// Maps every character through deunicode then `keep` (`None` → space),
/// collapses runs of spaces and trims. Empty results are refused: every
/// field this is used for is mandatory in its file.
fn transliterate(field: &str, input: &str, charset: &'static str, keep: impl Fn(char) -> Option<char>) -> Result<String, PayoutFileError> {
    let mut out = String::with_capacity(input.len());
    let mut push = |c: char| {
        let c = keep(c).unwrap_or(' ');
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    };
    for c in input.chars() {
        if c.is_ascii() {
            push(c);
        } else if c.is_whitespace() {
            push(' ');
        } else {
            let ascii = deunicode::deunicode_char(c).ok_or_else(|| PayoutFileError::Untransliterable {
                field: field.to_owned(),
                character: c,
                charset,
            })?;
            ascii.chars().for_each(&mut push);
        }
    }
    let trimmed = out.trim_end();
    if trimmed.is_empty() {
        return Err(PayoutFileError::EmptyText { field: field.to_owned(), charset });
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_transliterated_to_the_sepa_set() {
        assert_eq!(sepa_text("n", "Müller & Söhne GmbH", 70).unwrap(), "Muller + Sohne GmbH");
        assert_eq!(sepa_text("n", "Straße Café", 70).unwrap(), "Strasse Cafe");
        assert_eq!(sepa_text("n", "Łukasz  Øster_gaard!", 70).unwrap(), "Lukasz Oster gaard");
        assert_eq!(sepa_text("n", "abcdef", 3).unwrap(), "abc");
        assert!(sepa_text("n", "a\u{1F600}b", 70).unwrap().chars().all(is_sepa_char));
    }

    #[test]
    fn nacha_text_is_upper_ascii() {
        assert_eq!(ascii_upper("n", "José Ñúñez & Co.", 22).unwrap(), "JOSE NUNEZ & CO.");
        assert_eq!(ascii_upper("n", "a very long company name indeed", 16).unwrap(), "A VERY LONG COMP");
    }

    #[test]
    fn text_that_cannot_be_written_is_an_error() {
        assert!(matches!(sepa_text("line L1 name", "\u{E000}", 70), Err(PayoutFileError::Untransliterable { .. })));
        assert!(matches!(sepa_text("n", " !!! ", 70), Err(PayoutFileError::EmptyText { .. })));
    }
}
