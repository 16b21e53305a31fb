//! A NACHA ACH file: one CCD batch of credits to partners' US accounts.
//!
//! Rules: USD only; fixed-width 94-character records, LF after each one
//! including the last; alphanumeric fields left-justified and space-padded,
//! upper-case ASCII; numeric fields right-justified and zero-padded, amounts
//! in cents. Record order 1 (file header), 5 (batch header, service class
//! 220 = credits only, SEC code CCD, description COMMISSION), 6 per line
//! (transaction code 22 checking / 32 savings, no addenda), 8 (batch
//! control), 9 (file control), then lines of 94 '9's up to a multiple of 10
//! lines (the blocking factor). The entry hash is the sum of the 8-digit
//! RDFI routing numbers, its last 10 digits. Values that would overflow a
//! field (amount 10 digits, totals 12, entry count 6) are refused.

use super::text::ascii_upper;
use super::{AchAccountType, PayoutLine};
use super::{NachaPayer, PayoutFileError, PayoutFileInput, PayoutMethod, check_amount, select_lines, total_minor};

const RECORD_LEN: usize = 94;
const BLOCKING_FACTOR: usize = 10;
/// $99,999,999.99: the 10-digit amount field of an entry.
const MAX_AMOUNT_MINOR: i64 = 9_999_999_999;
/// The 12-digit total credit field.
const MAX_TOTAL_MINOR: i64 = 999_999_999_999;
/// The 6-digit entry count of the batch control.
const MAX_ENTRIES: usize = 999_999;
const BATCH_NUMBER: u64 = 1;

/// The ACH lines of `input` as a NACHA file sent by `payer`.
/// `file_id_modifier` (A–Z, 0–9) tells apart files sent the same day.
pub fn nacha(input: &PayoutFileInput, payer: &NachaPayer, file_id_modifier: char) -> Result<String, PayoutFileError> {
    if input.currency.code() != "USD" {
        return Err(PayoutFileError::WrongCurrency { format: "NACHA", required: "USD", actual: input.currency });
    }
    let modifier = file_id_modifier.to_ascii_uppercase();
    if !modifier.is_ascii_alphanumeric() {
        return Err(PayoutFileError::InvalidPayer { field: "file_id_modifier", reason: "must be a letter A-Z or a digit 0-9" });
    }
    let origin = immediate_origin(&payer.immediate_origin)?;
    let company_id = payer.company_id.to_ascii_uppercase();
    if company_id.is_empty() || company_id.len() > 10 || !company_id.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(PayoutFileError::InvalidPayer { field: "company_id", reason: "must be 1 to 10 ASCII characters" });
    }
    let lines = select_lines(input, "NACHA", Some("ach"))?;
    if lines.len() > MAX_ENTRIES {
        return Err(PayoutFileError::TooManyRows { format: "NACHA", max: MAX_ENTRIES, count: lines.len() });
    }
    for line in &lines {
        check_amount(line, MAX_AMOUNT_MINOR, "NACHA")?;
    }
    let total = total_minor(&lines, MAX_TOTAL_MINOR, "NACHA")?;
    let odfi = payer.odfi_routing.first8();

    let mut records = Vec::with_capacity(lines.len() + 4 + BLOCKING_FACTOR);
    records.push(
        Record::new('1')
            .text("01", 2)
            .text(&format!(" {}", payer.immediate_destination), 10)
            .text(&origin, 10)
            .text(&input.created_at.strftime("%y%m%d%H%M").to_string(), 10)
            .text(&modifier.to_string(), 1)
            .text("094", 3)
            .num(BLOCKING_FACTOR as u64, 2)
            .text("1", 1)
            .text(&optional_upper("payer destination_name", &payer.destination_name, 23)?, 23)
            .text(&optional_upper("payer origin_name", &payer.origin_name, 23)?, 23)
            .text("", 8)
            .end(),
    );
    records.push(
        Record::new('5')
            .text("220", 3)
            .text(&ascii_upper("payer company_name", &payer.company_name, 16)?, 16)
            .text("", 20)
            .text(&company_id, 10)
            .text("CCD", 3)
            .text("COMMISSION", 10)
            .text("", 6)
            .text(&input.execution_date.strftime("%y%m%d").to_string(), 6)
            .text("", 3)
            .text("1", 1)
            .text(odfi, 8)
            .num(BATCH_NUMBER, 7)
            .end(),
    );
    let mut entry_hash: u64 = 0;
    for (seq, line) in lines.iter().enumerate() {
        let entry = entry(line, odfi, seq as u64 + 1)?;
        entry_hash += entry.1;
        records.push(entry.0);
    }
    let entry_hash = entry_hash % 10_000_000_000;
    let count = lines.len() as u64;
    records.push(
        Record::new('8')
            .text("220", 3)
            .num(count, 6)
            .num(entry_hash, 10)
            .num(0, 12)
            .num(total as u64, 12)
            .text(&company_id, 10)
            .text("", 19)
            .text("", 6)
            .text(odfi, 8)
            .num(BATCH_NUMBER, 7)
            .end(),
    );
    let blocks = (records.len() + 1).div_ceil(BLOCKING_FACTOR);
    records.push(
        Record::new('9')
            .num(1, 6)
            .num(blocks as u64, 6)
            .num(count, 8)
            .num(entry_hash, 10)
            .num(0, 12)
            .num(total as u64, 12)
            .text("", 39)
            .end(),
    );
    records.resize(blocks * BLOCKING_FACTOR, "9".repeat(RECORD_LEN));
    let mut file = records.join("\n");
    file.push('\n');
    Ok(file)
}

/// The entry detail record of one line, and its RDFI routing for the hash.
fn entry(line: &PayoutLine, odfi: &str, sequence: u64) -> Result<(String, u64), PayoutFileError> {
    let Some(PayoutMethod::Ach { account_name, routing_number, account_number, account_type }) = &line.method else {
        unreachable!("select_lines keeps only ACH lines")
    };
    let code = match account_type {
        AchAccountType::Checking => "22",
        AchAccountType::Savings => "32",
    };
    let rdfi = routing_number.first8();
    let name = ascii_upper(&format!("line {} account_name", line.line_id), account_name, 22)?;
    let individual_id: String = line.line_id.chars().take(15).collect();
    let record = Record::new('6')
        .text(code, 2)
        .text(rdfi, 8)
        .text(&routing_number.as_str()[8..], 1)
        .text(account_number.as_str(), 17)
        .num(line.amount.minor() as u64, 10)
        .text(&individual_id, 15)
        .text(&name, 22)
        .text("", 2)
        .text("0", 1)
        .text(odfi, 8)
        .num(sequence, 7)
        .end();
    // Both parts are 8 ASCII digits (AbaRouting guarantees it).
    Ok((record, rdfi.parse().unwrap_or(0)))
}

/// The bank and origin names of the file header are optional in NACHA:
/// blank stays blank.
fn optional_upper(field: &str, text: &str, width: usize) -> Result<String, PayoutFileError> {
    match ascii_upper(field, text, width) {
        Err(PayoutFileError::EmptyText { .. }) => Ok(String::new()),
        other => other,
    }
}

/// The 10-character immediate origin: 9 digits get NACHA's leading space.
fn immediate_origin(input: &str) -> Result<String, PayoutFileError> {
    if input.len() == 9 && input.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(format!(" {input}"));
    }
    if input.len() == 10 && input.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Ok(input.to_ascii_uppercase());
    }
    Err(PayoutFileError::InvalidPayer { field: "immediate_origin", reason: "must be 10 characters, or 9 digits" })
}

/// A fixed-width record being built field by field.
struct Record(String);

impl Record {
    fn new(kind: char) -> Self {
        let mut s = String::with_capacity(RECORD_LEN);
        s.push(kind);
        Self(s)
    }

    /// Left-justified, space-padded; callers pass ASCII no longer than `width`.
    fn text(mut self, value: &str, width: usize) -> Self {
        self.0.extend(value.chars().take(width));
        self.0.extend(std::iter::repeat_n(' ', width - value.chars().count().min(width)));
        self
    }

    /// Right-justified, zero-padded; callers check that `value` fits.
    fn num(mut self, value: u64, width: usize) -> Self {
        self.0.push_str(&format!("{value:0width$}"));
        self
    }

    fn end(self) -> String {
        debug_assert_eq!(self.0.len(), RECORD_LEN, "{}", self.0);
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_padded_to_their_width() {
        let r = Record::new('x').text("AB", 4).num(42, 5).0;
        assert_eq!(r, "xAB  00042");
    }

    #[test]
    fn the_immediate_origin_is_ten_characters() {
        assert_eq!(immediate_origin("123456789").unwrap(), " 123456789");
        assert_eq!(immediate_origin("1234567890").unwrap(), "1234567890");
        assert!(immediate_origin("12345").is_err());
    }
}
