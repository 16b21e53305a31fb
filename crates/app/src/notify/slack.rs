//! Slack messages (Block Kit, for an incoming webhook): a new
//! registration, one that needs review, a won deal — each with a link.
//! Text from partners is escaped: Slack's mrkdwn treats `<`, `>` and `&`
//! as control characters (a partner must not be able to forge a link).

use partnerloop_domain::partner::Partner;
use partnerloop_domain::referral::Referral;
use serde_json::{Value, json};

/// Escapes the three characters Slack reserves.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn message(fallback: String, body: String, link: &str, link_text: &str) -> Value {
    json!({
        "text": fallback,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": link_text}, "url": link}
            ]}
        ]
    })
}

/// A new registration; one that waits for review says so.
pub fn registration(r: &Referral, partner: &Partner, outcome: &str, link: &str) -> Value {
    let company = escape(&r.company_name);
    let who = escape(&partner.name);
    let domain = escape(r.company_domain.as_str());
    let (head, button) = match outcome {
        "review" => (format!(":mag: *Review needed*: {who} registered *{company}* ({domain})"), "Review"),
        "rejected" => (format!(":no_entry: {who} registered *{company}* ({domain}): rejected by the rules"), "Open"),
        _ => (format!(":handshake: {who} registered *{company}* ({domain}): approved"), "Open"),
    };
    let reasons: Vec<String> = r.decision.reasons.iter().map(|x| format!("• {}", escape(&x.detail))).collect();
    let body = if reasons.is_empty() { head.clone() } else { format!("{head}\n{}", reasons.join("\n")) };
    message(head.replace('*', ""), body, link, button)
}

/// A referral closed won.
pub fn won(r: &Referral, partner: &Partner, link: &str) -> Value {
    let amount = r.amount.map(|m| format!(" for {m}")).unwrap_or_default();
    let head = format!(":trophy: *Won*: {} closed{amount}, referred by {}", escape(&r.company_name), escape(&partner.name));
    message(head.replace('*', ""), head, link, "Open")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn partner_text_cannot_forge_a_slack_link() {
        assert_eq!(escape("<http://evil|Click> & co"), "&lt;http://evil|Click&gt; &amp; co");
    }
}
