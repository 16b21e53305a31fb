//! NACHA files read back by an independent checker: record widths and order,
//! blocking, counts, entry hash and totals, for fixed and random batches.

use partnerloop_domain::money::{Currency, Money};
use partnerloop_domain::payout::*;
use proptest::prelude::*;

/// One ACH payment as the test built it.
#[derive(Clone, Debug)]
struct Entry {
    routing: String,
    account: String,
    savings: bool,
    name: String,
    minor: i64,
}

fn routing(first8: u32) -> String {
    let first8 = format!("{first8:08}");
    let check = AbaRouting::check_digit(&first8).unwrap();
    format!("{first8}{check}")
}

fn payer() -> NachaPayer {
    NachaPayer {
        immediate_destination: AbaRouting::parse("d", "021000021").unwrap(),
        immediate_origin: "123456789".to_owned(),
        destination_name: "JPMorgan Chase".to_owned(),
        origin_name: "Initech Inc".to_owned(),
        company_name: "Initech Partnerloop Payouts".to_owned(),
        company_id: "1123456789".to_owned(),
        odfi_routing: AbaRouting::parse("o", "011000015").unwrap(),
    }
}

fn input(entries: &[Entry], extra: Vec<PayoutLine>) -> PayoutFileInput {
    let mut lines: Vec<PayoutLine> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let method = PayoutMethod::parse(PayoutMethodInput {
                method: Some("ach".into()),
                account_name: Some(e.name.clone()),
                routing_number: Some(e.routing.clone()),
                account_number: Some(e.account.clone()),
                account_type: Some(if e.savings { "savings" } else { "checking" }.into()),
                ..Default::default()
            })
            .unwrap();
            PayoutLine {
                line_id: format!("PL-{i:04}-0123456789ABCDEF"),
                partner_id: format!("p{i}"),
                partner_name: e.name.clone(),
                amount: Money::from_minor(e.minor, Currency::USD),
                method: Some(method),
                note: "partnerloop commissions".into(),
            }
        })
        .collect();
    lines.extend(extra);
    PayoutFileInput {
        batch_id: "PO-1".into(),
        created_at: "2026-03-02T09:15:30Z".parse().unwrap(),
        execution_date: jiff::civil::date(2026, 3, 4),
        currency: Currency::USD,
        lines,
    }
}

/// Positions `from..=to`, 1-based as NACHA's tables number them.
fn at(record: &str, from: usize, to: usize) -> &str {
    &record[from - 1..to]
}

fn num(record: &str, from: usize, to: usize) -> u64 {
    at(record, from, to).parse().unwrap_or_else(|_| panic!("positions {from}-{to} of {record:?} are not numeric"))
}

/// Reads a file back and asserts every structural rule against `expected`.
fn check_nacha(file: &str, expected: &[Entry]) {
    assert!(file.ends_with('\n'), "the last record ends in a newline");
    let lines: Vec<&str> = file[..file.len() - 1].split('\n').collect();
    for (i, l) in lines.iter().enumerate() {
        assert!(l.len() == 94 && l.is_ascii(), "line {} is {} bytes: {l:?}", i + 1, l.len());
        assert!(!l.bytes().any(|b| b.is_ascii_lowercase()), "lower case in {l:?}");
    }
    assert_eq!(lines.len() % 10, 0, "blocked by 10");
    let n = expected.len();
    let kinds: String = lines.iter().map(|l| &l[..1]).collect();
    assert_eq!(&kinds[..n + 4], format!("15{}89", "6".repeat(n)), "record order");
    for pad in &lines[n + 4..] {
        assert_eq!(*pad, "9".repeat(94), "padding");
    }
    let (header, batch, entries, control, file_control) = (lines[0], lines[1], &lines[2..n + 2], lines[n + 2], lines[n + 3]);

    assert_eq!(at(header, 2, 3), "01");
    assert_eq!(at(header, 4, 13), " 021000021");
    assert_eq!(at(header, 14, 23), " 123456789");
    assert_eq!(at(header, 24, 33), "2603020915");
    assert_eq!((at(header, 35, 37), at(header, 38, 39), at(header, 40, 40)), ("094", "10", "1"));
    assert_eq!(at(header, 41, 63), "JPMORGAN CHASE         ");
    assert_eq!(at(header, 64, 86), "INITECH INC            ");

    assert_eq!(at(batch, 2, 4), "220");
    assert_eq!(at(batch, 5, 20), "INITECH PARTNERL");
    assert_eq!((at(batch, 41, 50), at(batch, 51, 53), at(batch, 54, 63)), ("1123456789", "CCD", "COMMISSION"));
    assert_eq!((at(batch, 70, 75), at(batch, 79, 79), at(batch, 80, 87)), ("260304", "1", "01100001"));
    let batch_number = at(batch, 88, 94);

    let mut hash = 0u64;
    let mut credit = 0u64;
    for (i, (entry, e)) in entries.iter().zip(expected).enumerate() {
        assert_eq!(at(entry, 2, 3), if e.savings { "32" } else { "22" });
        assert_eq!(at(entry, 4, 12), e.routing);
        assert_eq!(at(entry, 13, 29).trim_end(), e.account);
        assert_eq!(num(entry, 30, 39), e.minor as u64);
        assert_eq!(at(entry, 40, 54), &format!("PL-{i:04}-0123456789ABCDEF")[..15]);
        assert!(!at(entry, 55, 76).trim().is_empty(), "receiver name");
        assert_eq!(at(entry, 79, 79), "0");
        assert_eq!((at(entry, 80, 87), num(entry, 88, 94)), ("01100001", i as u64 + 1), "trace number");
        hash += num(entry, 4, 11);
        credit += num(entry, 30, 39);
    }
    let hash = hash % 10_000_000_000;
    assert_eq!(credit, expected.iter().map(|e| e.minor as u64).sum::<u64>());

    assert_eq!(at(control, 2, 4), "220");
    assert_eq!(num(control, 5, 10), n as u64);
    assert_eq!((num(control, 11, 20), num(control, 21, 32), num(control, 33, 44)), (hash, 0, credit));
    assert_eq!((at(control, 45, 54), at(control, 80, 87), at(control, 88, 94)), ("1123456789", "01100001", batch_number));

    assert_eq!(num(file_control, 2, 7), 1, "batch count");
    assert_eq!(num(file_control, 8, 13), lines.len() as u64 / 10, "block count");
    assert_eq!(num(file_control, 14, 21), n as u64);
    assert_eq!((num(file_control, 22, 31), num(file_control, 32, 43), num(file_control, 44, 55)), (hash, 0, credit));
}

fn entry(first8: u32, minor: i64, savings: bool) -> Entry {
    Entry { routing: routing(first8), account: "000123456789".into(), savings, name: "Müller Straße LLC".into(), minor }
}

#[test]
fn a_small_file_reads_back_and_other_methods_stay_out() {
    let entries = [entry(2_100_002, 15000, false), entry(99_999_999, 1, true), entry(1_100_001, 9_999_999_999, false)];
    let paypal =
        PayoutMethod::parse(PayoutMethodInput { method: Some("paypal".into()), email: Some("a@b.example".into()), ..Default::default() })
            .unwrap();
    let other = PayoutLine {
        line_id: "PP-1".into(),
        partner_id: "p".into(),
        partner_name: "P".into(),
        amount: Money::from_minor(5, Currency::USD),
        method: Some(paypal),
        note: String::new(),
    };
    let file = nacha(&input(&entries, vec![other]), &payer(), 'a').unwrap();
    check_nacha(&file, &entries);
    assert_eq!(file.lines().count(), 10);
    assert_eq!(&file[33..34], "A", "file id modifier, upper-cased");
    assert!(file.contains("MULLER STRASSE LLC    "), "{file}");
}

#[test]
fn nacha_refuses_what_a_bank_would() {
    let ok = [entry(2_100_002, 1, false)];
    let mut eur = input(&ok, vec![]);
    eur.currency = Currency::parse("c", "EUR").unwrap();
    assert_eq!(nacha(&eur, &payer(), 'A').unwrap_err().to_string(), "NACHA files are in USD only; this batch is in EUR");
    assert_eq!(nacha(&input(&[], vec![]), &payer(), 'A').unwrap_err(), PayoutFileError::NoLines { format: "NACHA", method: "ach" });
    let big = [entry(2_100_002, 10_000_000_000, false)];
    assert!(matches!(nacha(&input(&big, vec![]), &payer(), 'A'), Err(PayoutFileError::AmountTooLarge { .. })));
    assert!(matches!(nacha(&input(&ok, vec![]), &payer(), '-'), Err(PayoutFileError::InvalidPayer { field: "file_id_modifier", .. })));
    let mut blank_names = payer();
    blank_names.destination_name = String::new();
    blank_names.origin_name = " ".into();
    let file = nacha(&input(&ok, vec![]), &blank_names, 'A').unwrap();
    assert_eq!(&file[40..86], " ".repeat(46), "optional header names stay blank");
    let mut bad_origin = payer();
    bad_origin.immediate_origin = "12345".into();
    assert!(matches!(nacha(&input(&ok, vec![]), &bad_origin, 'A'), Err(PayoutFileError::InvalidPayer { field: "immediate_origin", .. })));
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    let one = (0u32..100_000_000, 1i64..=9_999_999_999, "[0-9]{1,17}", any::<bool>(), "[A-Za-zéüßØ][A-Za-z0-9 .,&éü'-]{0,30}")
        .prop_map(|(first8, minor, account, savings, name)| Entry { routing: routing(first8), account, savings, name, minor });
    prop::collection::vec(one, 1..50)
}

proptest! {
    #[test]
    fn random_batches_read_back(entries in entries()) {
        let file = nacha(&input(&entries, vec![]), &payer(), '7').unwrap();
        check_nacha(&file, &entries);
    }
}
