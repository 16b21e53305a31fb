//! A batch as a plain CSV report, every line whatever its payout method:
//! for people and spreadsheets, not for a bank.
//!
//! Rules: a header row, then one row per line; the destination is masked
//! (PayPal email in full, otherwise only the last 4 characters of an
//! account number), because a report gets mailed around and no full
//! account number belongs in it. Partners choose their own names, and a
//! spreadsheet runs a cell that starts with = + - @ as a formula, so such
//! cells get a leading apostrophe (the OWASP CSV-injection advice).
//! Records end in CRLF as RFC 4180 says. An empty batch is a header only.

use super::{PayoutFileError, PayoutFileInput, PayoutMethod, select_lines};
use std::borrow::Cow;

const HEADER: [&str; 8] = ["line_id", "partner_id", "partner_name", "method", "amount", "currency", "destination", "note"];

/// Every line of `input` as a CSV report.
pub fn generic_csv(input: &PayoutFileInput) -> Result<Vec<u8>, PayoutFileError> {
    let lines = select_lines(input, "CSV", None)?;
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let err = |e: csv::Error| PayoutFileError::Write(e.to_string());
    w.write_record(HEADER).map_err(err)?;
    for line in lines {
        let amount = line.amount.amount_string();
        let destination = line.method.as_ref().map_or_else(|| "no payout details yet".to_owned(), destination);
        w.write_record([
            cell(&line.line_id).as_ref(),
            &cell(&line.partner_id),
            &cell(&line.partner_name),
            line.method.as_ref().map_or("none", |m| m.kind()),
            &amount,
            input.currency.code(),
            &cell(&destination),
            &cell(&line.note),
        ])
        .map_err(err)?;
    }
    w.into_inner().map_err(|e| PayoutFileError::Write(e.to_string()))
}

/// Where the money goes, masked.
fn destination(method: &PayoutMethod) -> String {
    match method {
        PayoutMethod::Paypal { email } => email.as_str().to_owned(),
        PayoutMethod::Sepa { iban, .. } => format!("IBAN ****{}", iban.last4()),
        PayoutMethod::Ach { account_number, .. } => format!("ACH ****{}", account_number.last4()),
        PayoutMethod::Credit => "account credit".to_owned(),
    }
}

/// A text cell a spreadsheet will not evaluate.
fn cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { Cow::Owned(format!("'{text}")) } else { Cow::Borrowed(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("Northwind"), "Northwind");
    }
}
