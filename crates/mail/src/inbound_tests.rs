use super::*;

fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

const PLAIN: &str = "From: \"Ana Partner\" <Ana@Partner.EXAMPLE>
To: Bob Buyer <BOB@prospect.example>, register@in.vendor.example
Cc: carol@partner.example
Subject:  Intro: Prospect Inc
Message-ID: <abc123@partner.example>
In-Reply-To: <prev@vendor.example>
References: <first@vendor.example> <prev@vendor.example>
Content-Type: text/plain; charset=utf-8

Hi Bob, meet our vendor.
";

#[test]
fn a_plain_message_gives_its_addresses_ids_and_text() {
    let mail = parse(&crlf(PLAIN), &Limits::default()).unwrap();
    assert_eq!(mail.from, Address { name: Some("Ana Partner".into()), email: "ana@partner.example".into() });
    assert_eq!(mail.from.domain(), "partner.example");
    assert_eq!(mail.to.len(), 2);
    assert_eq!(mail.to[0], Address { name: Some("Bob Buyer".into()), email: "bob@prospect.example".into() });
    assert_eq!(mail.to[1].email, "register@in.vendor.example");
    assert_eq!(mail.cc[0].email, "carol@partner.example");
    assert_eq!(mail.subject.as_deref(), Some("Intro: Prospect Inc"));
    assert_eq!(mail.message_id.as_deref(), Some("abc123@partner.example"));
    assert_eq!(mail.in_reply_to, ["prev@vendor.example"]);
    assert_eq!(mail.references, ["first@vendor.example", "prev@vendor.example"]);
    assert_eq!(mail.text.trim(), "Hi Bob, meet our vendor.");
}

#[test]
fn the_plain_alternative_is_preferred_to_html() {
    let raw = "From: a@b.example\nTo: c@d.example\nSubject: alt\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\nplain words\n--XX\nContent-Type: text/html\n\n<p>html <b>words</b></p>\n--XX--\n";
    let mail = parse(&crlf(raw), &Limits::default()).unwrap();
    assert_eq!(mail.text.trim(), "plain words");
}

#[test]
fn an_html_only_message_is_converted_to_text() {
    let raw = "From: a@b.example\nTo: c@d.example\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>Hello <b>there</b></p><p>Second&nbsp;para</p></body></html>\n";
    let mail = parse(&crlf(raw), &Limits::default()).unwrap();
    assert!(mail.text.contains("Hello there"), "{:?}", mail.text);
    assert!(!mail.text.contains('<'), "{:?}", mail.text);
}

#[test]
fn encoded_words_and_quoted_printable_are_decoded() {
    let raw = "From: =?utf-8?q?Jos=C3=A9?= <jose@b.example>\nSubject: =?utf-8?b?UHLDvGZ1bmc=?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nCaf=C3=A9 au lait\n";
    let mail = parse(&crlf(raw), &Limits::default()).unwrap();
    assert_eq!(mail.from.name.as_deref(), Some("José"));
    assert_eq!(mail.subject.as_deref(), Some("Prüfung"));
    assert_eq!(mail.text.trim(), "Café au lait");
}

#[test]
fn a_message_over_the_size_limit_is_refused_before_parsing() {
    let limits = Limits { max_bytes: 100, ..Limits::default() };
    assert_eq!(parse(&[b'a'; 101], &limits), Err(Refusal::TooLarge { size: 101, limit: 100 }));
}

#[test]
fn a_message_without_from_is_refused() {
    assert_eq!(parse(b"To: a@b.example\r\nSubject: x\r\n\r\nbody\r\n", &Limits::default()), Err(Refusal::NoFrom));
}

#[test]
fn bytes_that_are_not_mail_are_refused() {
    for raw in [&b""[..], b"\r\n\r\n", b"\x00\x01\x02", b"just some words"] {
        assert!(parse(raw, &Limits::default()).is_err(), "{raw:?}");
    }
}

fn many_parts(n: usize) -> Vec<u8> {
    let mut raw = String::from("From: a@b.example\nContent-Type: multipart/mixed; boundary=B\n\n");
    for i in 0..n {
        raw.push_str(&format!("--B\nContent-Type: text/plain\n\npart {i}\n"));
    }
    raw.push_str("--B--\n");
    crlf(&raw)
}

#[test]
fn too_many_parts_are_refused() {
    assert!(parse(&many_parts(50), &Limits::default()).is_ok());
    assert_eq!(parse(&many_parts(150), &Limits::default()), Err(Refusal::TooManyParts { limit: 100 }));
}

/// `levels` multiparts, each inside the previous one.
fn nested_multiparts(levels: usize) -> Vec<u8> {
    let mut raw = String::from("From: a@b.example\n");
    for i in 0..levels {
        raw.push_str(&format!("Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"));
    }
    raw.push_str("Content-Type: text/plain\n\ndeep\n");
    for i in (0..levels).rev() {
        raw.push_str(&format!("--b{i}--\n"));
    }
    crlf(&raw)
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    assert!(parse(&nested_multiparts(5), &Limits::default()).is_ok());
    assert_eq!(parse(&nested_multiparts(30), &Limits::default()), Err(Refusal::TooDeep { limit: 10 }));
}

fn nested_messages(levels: usize) -> Vec<u8> {
    let mut raw = "From: a@b.example\n".to_string();
    raw.push_str(&"Content-Type: message/rfc822\n\n".repeat(levels));
    raw.push_str("From: z@b.example\n\nbottom\n");
    raw.into_bytes()
}

#[test]
fn a_hundred_thousand_nested_messages_are_refused_without_overflowing_the_stack() {
    let raw = nested_messages(100_000);
    assert_eq!(parse(&raw, &Limits::default()), Err(Refusal::TooDeep { limit: 10 }));
}

#[test]
fn deep_nesting_inside_a_base64_encoded_message_is_refused_too() {
    let inner = nested_messages(100_000);
    let mut raw = b"From: a@b.example\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    raw.extend(base64_lines(&inner));
    assert_eq!(parse(&raw, &Limits::default()), Err(Refusal::EncodedMessagePart));
}

#[test]
fn a_forwarded_message_with_a_base64_attachment_is_read() {
    let raw = "From: a@b.example\nContent-Type: multipart/mixed; boundary=O\n\n--O\nContent-Type: text/plain\n\nsee below\n--O\nContent-Type: message/rfc822\n\nFrom: z@y.example\nContent-Type: multipart/mixed; boundary=I\n\n--I\nContent-Type: text/plain\n\ninner\n--I\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--I--\n--O--\n";
    let mail = parse(&crlf(raw), &Limits::default()).unwrap();
    assert_eq!(mail.text.trim(), "see below");
}

fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for (i, c) in bytes.chunks(3).enumerate() {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        let chars = [A[(n >> 18) as usize & 63], A[(n >> 12) as usize & 63], A[(n >> 6) as usize & 63], A[n as usize & 63]];
        let keep = c.len() + 1;
        out.extend_from_slice(&chars[..keep]);
        out.extend(std::iter::repeat_n(b'=', 4 - keep));
        if i % 19 == 18 {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn ordinary_mail_does_not_look_like_it_nests_messages() {
    assert_eq!(nesting_words(&crlf(PLAIN)), 0);
    assert_eq!(nesting_words(b"Content-Type: MESSAGE \r\n /rfc822"), 1);
    assert_eq!(nesting_words(b"Content-Type: multipart/Digest"), 1);
}
