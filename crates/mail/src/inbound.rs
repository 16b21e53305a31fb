//! Reading a raw RFC 5322 message into the few facts partnerloop acts on.
//!
//! Rules:
//! - `parse` never panics and never trusts the sender: the size limit is
//!   checked before a byte is parsed, so everything the parser allocates is
//!   linear in `Limits::max_bytes`; part count and nesting depth are checked
//!   on the parsed structure with an explicit stack (no recursion of ours).
//! - mail-parser builds nested `message/rfc822` parts as nested values: it
//!   recurses over them (dropping, copying), and when such a part is base64
//!   or quoted-printable encoded it decodes it, parses it again and copies
//!   the rest of the message once per nested level (quadratic in size).
//!   So before the real parse: every nested message needs the word
//!   `message/` or `digest` in the raw bytes, and more of those than
//!   `max_depth` is refused as too deep (a conservative bound: prose rarely
//!   says `message/` or `digest` ten times); and when such a word and an
//!   encoding both occur, a first parse that decodes nothing looks for an
//!   encoded `message/*` part, which RFC 2046 forbids, and refuses it.
//! - Addresses are lower-cased (people and mail systems change their case);
//!   display names are kept as written.
//! - The body is the text/plain part(s); HTML is converted to text only when
//!   a message has no plain text.

use mail_parser::{HeaderName, HeaderValue, Message, MessageParser, PartType};

/// How much of a message we are willing to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_parts: usize,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bytes: 10 * 1024 * 1024, max_parts: 100, max_depth: 10 }
    }
}

/// A mailbox as written in a header: `Name <email>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub name: Option<String>,
    /// Lower-cased `local@domain`.
    pub email: String,
}

impl Address {
    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.email.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// The part before the last `@`.
    pub fn local_part(&self) -> &str {
        self.email.rsplit_once('@').map_or(self.email.as_str(), |(l, _)| l)
    }
}

/// What partnerloop needs to know about a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMail {
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Address,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub subject: Option<String>,
    /// The text/plain body, or the HTML body converted to text when the
    /// message has no plain text. Empty when the message has no text at all.
    pub text: String,
}

/// Why a message was not read. `Display` is a reason fit for a bounce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the message is {size} bytes, more than the {limit} bytes we accept")]
    TooLarge { size: usize, limit: usize },
    #[error("the message has more than {limit} MIME parts")]
    TooManyParts { limit: usize },
    #[error("the message nests MIME parts more than {limit} levels deep")]
    TooDeep { limit: usize },
    #[error("the message contains an encoded message/rfc822 part, which RFC 2046 forbids")]
    EncodedMessagePart,
    #[error("the message has no sender address (From)")]
    NoFrom,
    #[error("this is not a mail message (no headers found)")]
    NotMail,
}

/// Reads a raw message within `limits`.
pub fn parse(raw: &[u8], limits: &Limits) -> Result<InboundMail, Refusal> {
    if raw.len() > limits.max_bytes {
        return Err(Refusal::TooLarge { size: raw.len(), limit: limits.max_bytes });
    }
    let nesting_words = nesting_words(raw);
    if nesting_words > limits.max_depth {
        return Err(Refusal::TooDeep { limit: limits.max_depth });
    }
    if nesting_words > 0 && (contains_ignore_case(raw, b"base64") || contains_ignore_case(raw, b"quoted-printable")) {
        refuse_encoded_messages(raw, limits)?;
    }
    read(raw, limits)
}

/// How many words could make mail-parser build a nested message: a content
/// type `message/…` (its parser allows whitespace and folding before the
/// `/`) or `multipart/digest` (whose parts default to messages). Each
/// nesting level needs one, unencoded. `Message-ID:` does not count.
fn nesting_words(raw: &[u8]) -> usize {
    const TYPE: &[u8] = b"message";
    // Linear: a whitespace run ends at the next word, so no byte is skipped twice.
    let slash_follows = |at: usize| raw[at..].iter().find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n')) == Some(&b'/');
    let types = raw.windows(TYPE.len()).enumerate().filter(|(i, w)| w.eq_ignore_ascii_case(TYPE) && slash_follows(i + TYPE.len())).count();
    types + raw.windows(6).filter(|w| w.eq_ignore_ascii_case(b"digest")).count()
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// Parses once without decoding anything (the transfer encoding header is
/// ignored, so no part is decoded and re-parsed) and refuses the message if
/// a nested message part declares base64 or quoted-printable.
fn refuse_encoded_messages(raw: &[u8], limits: &Limits) -> Result<(), Refusal> {
    let parser = MessageParser::new().with_minimal_headers().ignore_header(HeaderName::ContentTransferEncoding);
    let Some(message) = parser.parse(raw) else { return Ok(()) };
    check_structure(&message, limits)?;
    let mut stack = vec![&message];
    while let Some(msg) = stack.pop() {
        for part in &msg.parts {
            if let PartType::Message(inner) = &part.body {
                stack.push(inner);
            }
            // Judged by the declared type, not by what the part parsed as:
            // undecoded base64 does not parse as a message here, but would
            // in the real parse. No type at all may mean a digest's message.
            // With several Content-Type headers, any of them may be the one used.
            let mut types = part.headers.iter().filter(|h| h.name == HeaderName::ContentType).peekable();
            let declares_message = types.peek().is_none()
                || types.any(|h| h.value.as_content_type().is_none_or(|ct| ct.ctype().eq_ignore_ascii_case("message")));
            let encoded = part.headers.iter().any(|h| {
                h.name == HeaderName::ContentTransferEncoding && {
                    let value = raw.get(h.offset_start as usize..h.offset_end as usize).unwrap_or(&[]);
                    contains_ignore_case(value, b"base64") || contains_ignore_case(value, b"quoted-printable")
                }
            });
            if declares_message && encoded {
                return Err(Refusal::EncodedMessagePart);
            }
        }
    }
    Ok(())
}

fn read(raw: &[u8], limits: &Limits) -> Result<InboundMail, Refusal> {
    let message = MessageParser::new().with_minimal_headers().with_message_ids().parse(raw).ok_or(Refusal::NotMail)?;
    check_structure(&message, limits)?;
    if message.headers().is_empty() {
        return Err(Refusal::NotMail);
    }
    let from = addresses(message.from()).into_iter().next().ok_or(Refusal::NoFrom)?;
    Ok(InboundMail {
        message_id: message.message_id().map(clean_id).filter(|id| !id.is_empty()),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        from,
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        subject: message.subject().map(|s| s.trim().to_owned()),
        text: body_text(&message),
    })
}

/// Counts every part, nested messages included, and the deepest nesting,
/// walking with an explicit stack so a crafted message cannot recurse us.
fn check_structure(message: &Message<'_>, limits: &Limits) -> Result<(), Refusal> {
    let mut parts = 0usize;
    let mut stack: Vec<(&Message<'_>, u32, usize)> = vec![(message, 0, 1)];
    while let Some((msg, index, depth)) = stack.pop() {
        let Some(part) = msg.parts.get(index as usize) else { continue };
        parts += 1;
        if parts > limits.max_parts {
            return Err(Refusal::TooManyParts { limit: limits.max_parts });
        }
        if depth > limits.max_depth {
            return Err(Refusal::TooDeep { limit: limits.max_depth });
        }
        match &part.body {
            PartType::Multipart(children) => stack.extend(children.iter().map(|c| (msg, *c, depth + 1))),
            PartType::Message(inner) => stack.push((inner, 0, depth + 1)),
            _ => {}
        }
    }
    Ok(())
}

fn addresses(header: Option<&mail_parser::Address<'_>>) -> Vec<Address> {
    let Some(header) = header else { return Vec::new() };
    header
        .iter()
        .filter_map(|a| {
            let email = a.address.as_deref()?.trim().trim_matches(['<', '>']).to_lowercase();
            let name = a.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
            email.contains('@').then_some(Address { name, email })
        })
        .collect()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<&str> = match value {
        HeaderValue::Text(t) => vec![t.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.as_ref()).collect(),
        _ => Vec::new(),
    };
    raw.into_iter().map(clean_id).filter(|id| !id.is_empty()).collect()
}

fn clean_id(id: &str) -> String {
    id.trim().trim_matches(['<', '>']).to_owned()
}

/// Every inline text part in order (Apple Mail splits a body around inline
/// images), falling back to the HTML ones converted to text.
fn body_text(message: &Message<'_>) -> String {
    let texts: Vec<String> = (0..message.text_body_count()).filter_map(|i| message.body_text(i).map(|t| t.into_owned())).collect();
    texts.join("\n").replace("\r\n", "\n")
}

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
