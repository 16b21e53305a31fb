//! SEPA credit transfer initiation, ISO 20022 pain.001.001.03, as the EPC
//! rulebook narrows it.
//!
//! Rules beyond the XSD (which `xmllint` checks in the tests): EUR only,
//! with exactly 2 decimals; one amount is 0.01 to 999,999,999.99; CtrlSum
//! equals the sum of the amounts and NbOfTxs their count, in the group
//! header and the one payment information block alike; ids are at most 35
//! characters of the SEPA Latin set, neither starting nor ending with '/'
//! nor containing "//"; names (≤70) and remittance text (≤140) are
//! transliterated into that set. A missing BIC is allowed (IBAN-only,
//! since 2016): the debtor agent is then `Othr/Id NOTPROVIDED` and the
//! creditor agent is left out.

use super::text::{is_sepa_char, sepa_text};
use super::{Bic, Iban, PayoutFileError, PayoutFileInput, PayoutLine, PayoutMethod, SepaPayer, check_amount, select_lines, total_minor};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use std::io;

const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03";
/// 999,999,999.99 EUR: the EPC rulebook's largest single transfer.
const MAX_AMOUNT_MINOR: i64 = 99_999_999_999;
/// CtrlSum is a DecimalNumber of at most 18 digits.
const MAX_TOTAL_MINOR: i64 = 999_999_999_999_999_999;
const NAME_MAX: usize = 70;
const REMITTANCE_MAX: usize = 140;
const ID_MAX: usize = 35;

/// The SEPA lines of `input` as a pain.001.001.03 document paid by `payer`.
pub fn sepa_xml(input: &PayoutFileInput, payer: &SepaPayer) -> Result<String, PayoutFileError> {
    if input.currency.code() != "EUR" {
        return Err(PayoutFileError::WrongCurrency { format: "SEPA", required: "EUR", actual: input.currency });
    }
    check_id("batch_id", &input.batch_id)?;
    let lines = select_lines(input, "SEPA", Some("sepa"))?;
    let mut transfers = Vec::with_capacity(lines.len());
    for line in &lines {
        check_amount(line, MAX_AMOUNT_MINOR, "SEPA")?;
        check_id("line_id", &line.line_id)?;
        transfers.push(Transfer::new(line)?);
    }
    let total = amount(total_minor(&lines, MAX_TOTAL_MINOR, "SEPA")?);
    let count = lines.len().to_string();
    let debtor = sepa_text("payer debtor_name", &payer.debtor_name, NAME_MAX)?;

    let mut x = Xml(Writer::new_with_indent(Vec::new(), b' ', 2));
    let write = |x: &mut Xml| -> io::Result<()> {
        x.0.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        x.0.write_event(Event::Start(BytesStart::new("Document").with_attributes([("xmlns", NAMESPACE)])))?;
        x.open("CstmrCdtTrfInitn")?;
        x.open("GrpHdr")?;
        x.leaf(&["MsgId"], &input.batch_id)?;
        x.leaf(&["CreDtTm"], &input.created_at.strftime("%Y-%m-%dT%H:%M:%S").to_string())?;
        x.leaf(&["NbOfTxs"], &count)?;
        x.leaf(&["CtrlSum"], &total)?;
        x.leaf(&["InitgPty", "Nm"], &debtor)?;
        x.close("GrpHdr")?;
        x.open("PmtInf")?;
        x.leaf(&["PmtInfId"], &input.batch_id)?;
        x.leaf(&["PmtMtd"], "TRF")?;
        x.leaf(&["BtchBookg"], "true")?;
        x.leaf(&["NbOfTxs"], &count)?;
        x.leaf(&["CtrlSum"], &total)?;
        x.leaf(&["PmtTpInf", "SvcLvl", "Cd"], "SEPA")?;
        x.leaf(&["ReqdExctnDt"], &input.execution_date.to_string())?;
        x.leaf(&["Dbtr", "Nm"], &debtor)?;
        x.leaf(&["DbtrAcct", "Id", "IBAN"], payer.iban.as_str())?;
        match &payer.bic {
            Some(bic) => x.leaf(&["DbtrAgt", "FinInstnId", "BIC"], bic.as_str())?,
            None => x.leaf(&["DbtrAgt", "FinInstnId", "Othr", "Id"], "NOTPROVIDED")?,
        }
        x.leaf(&["ChrgBr"], "SLEV")?;
        for t in &transfers {
            t.write(x)?;
        }
        x.close("PmtInf")?;
        x.close("CstmrCdtTrfInitn")?;
        x.close("Document")
    };
    write(&mut x).map_err(|e| PayoutFileError::Write(e.to_string()))?;
    String::from_utf8(x.0.into_inner()).map_err(|e| PayoutFileError::Write(e.to_string()))
}

/// One CdtTrfTxInf, its texts already converted.
struct Transfer<'a> {
    line: &'a PayoutLine,
    iban: &'a Iban,
    bic: Option<&'a Bic>,
    amount: String,
    name: String,
    remittance: Option<String>,
}

impl<'a> Transfer<'a> {
    fn new(line: &'a PayoutLine) -> Result<Self, PayoutFileError> {
        let Some(PayoutMethod::Sepa { account_name, iban, bic }) = &line.method else { unreachable!("select_lines keeps only SEPA lines") };
        let id = &line.line_id;
        let name = sepa_text(&format!("line {id} account_name"), account_name, NAME_MAX)?;
        // The remittance text is optional in the file: a note with nothing
        // writable in it is left out rather than failing the batch.
        let remittance = match sepa_text(&format!("line {id} note"), &line.note, REMITTANCE_MAX) {
            Ok(text) => Some(text),
            Err(PayoutFileError::EmptyText { .. }) => None,
            Err(e) => return Err(e),
        };
        Ok(Self { line, iban, bic: bic.as_ref(), amount: amount(line.amount.minor()), name, remittance })
    }

    fn write(&self, x: &mut Xml) -> io::Result<()> {
        x.open("CdtTrfTxInf")?;
        x.leaf(&["PmtId", "EndToEndId"], &self.line.line_id)?;
        x.open("Amt")?;
        x.0.create_element("InstdAmt").with_attribute(("Ccy", "EUR")).write_text_content(BytesText::new(&self.amount))?;
        x.close("Amt")?;
        if let Some(bic) = self.bic {
            x.leaf(&["CdtrAgt", "FinInstnId", "BIC"], bic.as_str())?;
        }
        x.leaf(&["Cdtr", "Nm"], &self.name)?;
        x.leaf(&["CdtrAcct", "Id", "IBAN"], self.iban.as_str())?;
        if let Some(text) = &self.remittance {
            x.leaf(&["RmtInf", "Ustrd"], text)?;
        }
        x.close("CdtTrfTxInf")
    }
}

/// EUR minor units as the file writes them: always 2 decimals, dot.
fn amount(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// A Max35Text id the EPC accepts, checked rather than changed.
fn check_id(field: &'static str, id: &str) -> Result<(), PayoutFileError> {
    let ok = !id.is_empty()
        && id.chars().count() <= ID_MAX
        && id.chars().all(|c| is_sepa_char(c) && c != ' ')
        && !id.starts_with('/')
        && !id.ends_with('/')
        && !id.contains("//");
    if !ok {
        return Err(PayoutFileError::InvalidId {
            field,
            value: id.to_owned(),
            reason: "must be 1 to 35 of a-z A-Z 0-9 / - ? : ( ) . , ' + without spaces, not starting or ending with '/' nor containing '//'",
        });
    }
    Ok(())
}

/// quick-xml with the few moves this document needs.
struct Xml(Writer<Vec<u8>>);

impl Xml {
    fn open(&mut self, name: &str) -> io::Result<()> {
        self.0.write_event(Event::Start(BytesStart::new(name)))
    }

    fn close(&mut self, name: &str) -> io::Result<()> {
        self.0.write_event(Event::End(BytesEnd::new(name)))
    }

    /// `<a><b><c>text</c></b></a>` for `path` `[a, b, c]`.
    fn leaf(&mut self, path: &[&str], text: &str) -> io::Result<()> {
        let (last, outer) = path.split_last().expect("a non-empty path");
        for name in outer {
            self.open(name)?;
        }
        self.0.create_element(*last).write_text_content(BytesText::new(text))?;
        outer.iter().rev().try_for_each(|name| self.close(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_have_two_decimals() {
        assert_eq!(amount(1), "0.01");
        assert_eq!(amount(10_050), "100.50");
        assert_eq!(amount(MAX_AMOUNT_MINOR), "999999999.99");
    }

    #[test]
    fn ids_follow_the_epc_rules() {
        assert!(check_id("line_id", "PO-1/L-2").is_ok());
        for bad in ["", "/a", "a/", "a//b", "a_b", "a b", &"x".repeat(36), "ü"] {
            assert!(check_id("line_id", bad).is_err(), "{bad}");
        }
    }
}
