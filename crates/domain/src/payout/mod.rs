//! Paying partners: their payout details and the files a payer uploads to
//! PayPal or a bank (SEPA pain.001, NACHA), plus a plain CSV report.
//!
//! Rules: a writer takes one batch in one currency and writes only the lines
//! whose payout method fits its format (the CSV report takes all). Anything
//! a bank or PayPal would refuse is refused here first, with a reason an
//! admin can act on: wrong currency, no line for this method, too many rows,
//! an amount that is not positive or too large for its field, an identifier
//! that is malformed or repeated, text with no equivalent in the file's
//! character set. Identifiers (batch and line ids) are never altered, since
//! reconciliation depends on them; names and notes are transliterated and
//! cut to fit. Writers are pure: the clock and ids come in the input.

mod bank;
mod generic_csv;
mod method;
mod nacha;
mod paypal;
mod sepa;
mod text;

pub use bank::{AbaRouting, AchAccountNumber, AchAccountType, Bic, Iban};
pub use generic_csv::generic_csv;
pub use method::{ACCOUNT_NAME_MAX, MaskedPayoutMethod, PayoutMethod, PayoutMethodInput};
pub use nacha::nacha;
pub use paypal::{PAYPAL_MAX_ROWS, paypal_csv};
pub use sepa::sepa_xml;

use crate::money::{Currency, Money};
use std::collections::HashSet;

/// One payout batch, as every export format reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutFileInput {
    pub batch_id: String,
    pub created_at: jiff::Timestamp,
    /// The day the payer wants the money to move (SEPA `ReqdExctnDt`, NACHA effective date).
    pub execution_date: jiff::civil::Date,
    pub currency: Currency,
    pub lines: Vec<PayoutLine>,
}

/// One partner's payment in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutLine {
    /// At most 30 printable ASCII characters, no spaces, unique in the file:
    /// the PayPal customer id, SEPA EndToEndId and NACHA individual id (first 15).
    pub line_id: String,
    pub partner_id: String,
    pub partner_name: String,
    /// Positive, in the batch currency.
    pub amount: Money,
    /// None: the partner has not given payout details yet (only the CSV
    /// report shows such a line).
    pub method: Option<PayoutMethod>,
    /// Remittance text, e.g. "partnerloop commissions PO-…".
    pub note: String,
}

/// Who pays in a SEPA file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SepaPayer {
    pub debtor_name: String,
    pub iban: Iban,
    pub bic: Option<Bic>,
}

/// Who pays in a NACHA file, as the payer's bank (ODFI) set it up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NachaPayer {
    pub immediate_destination: AbaRouting,
    /// 10 characters (" 123456789" or "1234567890"); 9 digits get the leading space.
    pub immediate_origin: String,
    pub destination_name: String,
    pub origin_name: String,
    pub company_name: String,
    /// At most 10 characters, often "1" + the EIN.
    pub company_id: String,
    pub odfi_routing: AbaRouting,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayoutFileError {
    #[error("{format} files are in {required} only; this batch is in {actual}")]
    WrongCurrency { format: &'static str, required: &'static str, actual: Currency },
    #[error("line {line_id}: its amount is in {actual} but the batch is in {expected}")]
    LineCurrency { line_id: String, actual: Currency, expected: Currency },
    #[error("no line of this batch is paid by {method}, so there is no {format} file to make")]
    NoLines { format: &'static str, method: &'static str },
    #[error("{format} files take at most {max} payments; this batch has {count}")]
    TooManyRows { format: &'static str, max: usize, count: usize },
    #[error("line {line_id}: the amount must be greater than zero")]
    AmountNotPositive { line_id: String },
    #[error("line {line_id}: {amount} is more than one {format} payment can carry")]
    AmountTooLarge { line_id: String, format: &'static str, amount: String },
    #[error("the total of the batch is more than a {format} file can carry")]
    TotalTooLarge { format: &'static str },
    #[error("{field}: '{character}' has no equivalent in the {charset} character set")]
    Untransliterable { field: String, character: char, charset: &'static str },
    #[error("{field}: nothing is left after conversion to the {charset} character set")]
    EmptyText { field: String, charset: &'static str },
    #[error("{field} '{value}' {reason}")]
    InvalidId { field: &'static str, value: String, reason: &'static str },
    #[error("line id '{0}' appears more than once; line ids must be unique in a file")]
    DuplicateLineId(String),
    #[error("payer {field}: {reason}")]
    InvalidPayer { field: &'static str, reason: &'static str },
    #[error("the file could not be written: {0}")]
    Write(String),
}

pub(crate) const LINE_ID_MAX: usize = 30;

/// The lines of `input` that `wanted` keeps, each checked against the
/// batch: id shape and uniqueness, currency, positive amount. `method`
/// names the payout method for the "no lines" error; `None` means the
/// format takes every line and an empty batch is not an error.
pub(crate) fn select_lines<'a>(
    input: &'a PayoutFileInput,
    format: &'static str,
    method: Option<&'static str>,
) -> Result<Vec<&'a PayoutLine>, PayoutFileError> {
    let lines: Vec<&PayoutLine> =
        input.lines.iter().filter(|l| method.is_none_or(|m| l.method.as_ref().is_some_and(|x| x.kind() == m))).collect();
    let mut seen = HashSet::new();
    for line in &lines {
        let id = &line.line_id;
        if id.is_empty() || id.chars().count() > LINE_ID_MAX || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(PayoutFileError::InvalidId {
                field: "line_id",
                value: id.clone(),
                reason: "must be 1 to 30 printable ASCII characters without spaces",
            });
        }
        if !seen.insert(id.as_str()) {
            return Err(PayoutFileError::DuplicateLineId(id.clone()));
        }
        if line.amount.currency() != input.currency {
            return Err(PayoutFileError::LineCurrency { line_id: id.clone(), actual: line.amount.currency(), expected: input.currency });
        }
        if line.amount.minor() <= 0 {
            return Err(PayoutFileError::AmountNotPositive { line_id: id.clone() });
        }
    }
    match method {
        Some(method) if lines.is_empty() => Err(PayoutFileError::NoLines { format, method }),
        _ => Ok(lines),
    }
}

/// The sum of the lines' amounts in minor units, refusing a total above `max`.
pub(crate) fn total_minor(lines: &[&PayoutLine], max: i64, format: &'static str) -> Result<i64, PayoutFileError> {
    lines
        .iter()
        .try_fold(0i64, |sum, l| sum.checked_add(l.amount.minor()).filter(|s| *s <= max))
        .ok_or(PayoutFileError::TotalTooLarge { format })
}

/// Amounts above `max_minor` do not fit the format's amount field.
pub(crate) fn check_amount(line: &PayoutLine, max_minor: i64, format: &'static str) -> Result<(), PayoutFileError> {
    if line.amount.minor() > max_minor {
        return Err(PayoutFileError::AmountTooLarge { line_id: line.line_id.clone(), format, amount: line.amount.to_string() });
    }
    Ok(())
}
