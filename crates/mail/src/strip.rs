//! Keeping only what the sender wrote: a reply without its quoted history
//! and signature, for a referral's timeline.
//!
//! Rules:
//! - Everything from the first marker of history or signature onwards is
//!   dropped: an attribution line ("On … wrote:", also wrapped over two
//!   lines, and its German, French, Spanish, Italian, Portuguese, Dutch and
//!   Swedish forms), Outlook's "-----Original Message-----" and
//!   "From: / Sent: / To: / Subject:" header block, a line of underscores,
//!   the `-- ` signature delimiter and "Sent from my iPhone" style footers.
//! - Quoted lines (starting with `>`) are dropped wherever they are, so the
//!   sender's answers between quotes survive; a `>` inside a sentence is text.
//! - Trailing blank lines are trimmed. The function is total: any input,
//!   any output, no panics.

/// Attribution lines: the word they start with and the verb they contain.
/// They end with a colon (a space before it in French).
const ATTRIBUTIONS: &[(&str, &str)] = &[
    ("On ", " wrote"),
    ("Am ", " schrieb"),
    ("Le ", " a écrit"),
    ("El ", " escribió"),
    ("Il ", " ha scritto"),
    ("Em ", " escreveu"),
    ("Op ", " schreef"),
    ("Den ", " skrev"),
];

/// Footers that mobile and desktop clients add on their own.
const FOOTERS: &[&str] = &[
    "sent from my ",
    "sent from mail for windows",
    "sent from outlook",
    "sent from yahoo mail",
    "get outlook for ",
    "von meinem iphone gesendet",
    "von meinem ipad gesendet",
    "envoyé de mon ",
    "enviado desde mi ",
    "inviato da ",
];

/// Outlook's separator lines, in several languages.
const ORIGINAL_MESSAGE: &[&str] =
    &["original message", "ursprüngliche nachricht", "message d'origine", "mensaje original", "messaggio originale"];

/// Header names that open Outlook's quoted header block, and the ones that
/// must follow for it to count as one (a line starting "From:" alone may be
/// the sender's own text).
const BLOCK_FROM: &[&str] = &["from:", "von:", "de:", "da:", "van:", "från:"];
const BLOCK_SENT: &[&str] =
    &["sent:", "date:", "gesendet:", "envoyé :", "envoyé:", "enviado el:", "enviado:", "inviato:", "verzonden:", "skickat:"];

/// How far an Outlook header block's lines may be apart.
const BLOCK_LINES: usize = 6;

/// The reply without quoted history, signature and client footers.
pub fn strip_reply(text: &str) -> String {
    let normalised = text.replace("\r\n", "\n");
    let lines: Vec<&str> = normalised.split('\n').collect();
    let end = (0..lines.len()).find(|&i| starts_history(&lines, i)).unwrap_or(lines.len());
    let mut kept: Vec<&str> = lines[..end].iter().copied().filter(|l| !l.trim_start().starts_with('>')).collect();
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    kept.iter().map(|l| l.trim_end()).collect::<Vec<_>>().join("\n")
}

fn starts_history(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    let lower = line.to_lowercase();
    is_attribution(line)
        || lines.get(i + 1).is_some_and(|next| !line.is_empty() && is_attribution(&format!("{line} {}", next.trim())))
        || is_original_message(&lower)
        || is_underscore_rule(line)
        || lines[i].trim_end() == "--"
        || FOOTERS.iter().any(|f| lower.starts_with(f))
        || is_outlook_header_block(lines, i)
}

fn is_attribution(line: &str) -> bool {
    // Two wrapped lines may be long, but not a paragraph.
    if line.chars().count() > 300 || !line.ends_with(':') {
        return false;
    }
    ATTRIBUTIONS.iter().any(|(start, verb)| line.starts_with(start) && line.contains(verb))
}

fn is_original_message(lower: &str) -> bool {
    let inner = lower.trim_matches(|c: char| c == '-' || c.is_whitespace());
    lower.starts_with("---") && ORIGINAL_MESSAGE.contains(&inner)
}

fn is_underscore_rule(line: &str) -> bool {
    line.len() >= 10 && line.bytes().all(|b| b == b'_')
}

/// "From: …" followed, within a few lines, by "Sent: …" and "Subject: …".
fn is_outlook_header_block(lines: &[&str], i: usize) -> bool {
    let starts_with_any = |line: &str, names: &[&str]| {
        let lower = line.trim_start().trim_start_matches('*').to_lowercase();
        names.iter().any(|n| lower.starts_with(n))
    };
    if !starts_with_any(lines[i], BLOCK_FROM) {
        return false;
    }
    let window = &lines[i + 1..lines.len().min(i + 1 + BLOCK_LINES)];
    window.iter().any(|l| starts_with_any(l, BLOCK_SENT))
        && window
            .iter()
            .any(|l| starts_with_any(l, &["subject:", "betreff:", "objet :", "objet:", "asunto:", "oggetto:", "onderwerp:", "ämne:"]))
}

#[cfg(test)]
#[path = "strip_tests.rs"]
mod tests;
