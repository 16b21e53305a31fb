//! The PayPal Payouts Web upload: a CSV without header, one payout per row.
//!
//! Rules (PayPal's "Send payouts from Payouts Web"): at most 5,000 rows and
//! one currency per file; columns recipient, amount, currency, customer id
//! (≤30 characters, no spaces: our line id, for reconciliation), note to
//! recipient (≤400 characters), wallet `PAYPAL`. Amounts always use a dot
//! and the currency's decimals (`100.50`), never a locale format, so no
//! quoting question arises. Records end in CRLF as RFC 4180 says.

use super::{PayoutFileError, PayoutFileInput, PayoutMethod, select_lines};

/// PayPal refuses larger uploads; a batch must then be split.
pub const PAYPAL_MAX_ROWS: usize = 5_000;

const NOTE_MAX: usize = 400;

/// The PayPal lines of `input` as an upload file.
pub fn paypal_csv(input: &PayoutFileInput) -> Result<Vec<u8>, PayoutFileError> {
    let lines = select_lines(input, "PayPal", Some("paypal"))?;
    if lines.len() > PAYPAL_MAX_ROWS {
        return Err(PayoutFileError::TooManyRows { format: "PayPal", max: PAYPAL_MAX_ROWS, count: lines.len() });
    }
    let mut w = csv::WriterBuilder::new().has_headers(false).terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    for line in lines {
        let Some(PayoutMethod::Paypal { email }) = &line.method else { continue };
        let amount = line.amount.amount_string();
        let note = one_line(&line.note, NOTE_MAX);
        w.write_record([email.as_str(), &amount, input.currency.code(), &line.line_id, &note, "PAYPAL"])
            .map_err(|e| PayoutFileError::Write(e.to_string()))?;
    }
    w.into_inner().map_err(|e| PayoutFileError::Write(e.to_string()))
}

/// The note on one line (an uploaded row must not span lines), at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(max).collect();
    flat.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_flattened_and_cut() {
        assert_eq!(one_line(" a\r\nb ", 400), "a  b");
        assert_eq!(one_line(&"é".repeat(500), NOTE_MAX).chars().count(), 400);
    }
}
