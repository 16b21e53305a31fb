//! Mail rendering: a [`Notice`] becomes words (subject, heading,
//! paragraphs, facts, one action), and the words become an HTML and a
//! plain-text body through two askama templates. One layout for every
//! mail keeps them consistent and both bodies always say the same.

use askama::Template;
use jiff::Timestamp;
use partnerloop_app::notify::notice::{MailPayload, Notice};

/// What a mail says, before layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub subject: String,
    pub heading: String,
    pub paragraphs: Vec<String>,
    pub facts: Vec<(String, String)>,
    /// Button label and URL.
    pub action: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "mail.html")]
struct Html<'a> {
    workspace: &'a str,
    c: &'a Content,
    status_url: Option<&'a str>,
    preferences_url: Option<&'a str>,
    replies: bool,
}

#[derive(Template)]
#[template(path = "mail.txt", escape = "none")]
struct Text<'a> {
    workspace: &'a str,
    c: &'a Content,
    status_url: Option<&'a str>,
    preferences_url: Option<&'a str>,
    replies: bool,
}

/// A rendered mail: subject and both bodies.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn render(p: &MailPayload) -> Result<Rendered, askama::Error> {
    let c = content(&p.notice);
    let replies = p.reply_to.is_some();
    let html = Html {
        workspace: &p.workspace,
        c: &c,
        status_url: p.status_url.as_deref(),
        preferences_url: p.preferences_url.as_deref(),
        replies,
    }
    .render()?;
    let text = Text {
        workspace: &p.workspace,
        c: &c,
        status_url: p.status_url.as_deref(),
        preferences_url: p.preferences_url.as_deref(),
        replies,
    }
    .render()?;
    Ok(Rendered { subject: c.subject, text, html })
}

fn date(t: &Timestamp) -> String {
    t.strftime("%B %-d, %Y").to_string()
}

/// A referral's mails share one subject (mail clients thread by it).
fn thread_subject(company: &str, first: bool) -> String {
    if first { format!("Your referral of {company}") } else { format!("Re: Your referral of {company}") }
}

fn outcome_words(outcome: &str) -> &'static str {
    match outcome {
        "approved" => "approved",
        "review" => "waiting for review",
        "rejected" => "not accepted",
        _ => "updated",
    }
}

pub fn content(n: &Notice) -> Content {
    let c = |subject: String, heading: String, paragraphs: Vec<String>| Content {
        subject,
        heading,
        paragraphs,
        facts: Vec::new(),
        action: None,
    };
    match n {
        Notice::ReferralReceived { company, outcome, reasons, protected_until } => {
            let mut m = c(thread_subject(company, true), format!("We received your referral of {company}"), Vec::new());
            m.paragraphs.push(match outcome.as_str() {
                "approved" => "Good news: it is approved and the introduction is yours.".to_owned(),
                "review" => "A partner manager will look at it shortly; you will hear from us as soon as it is decided.".to_owned(),
                _ => "We cannot accept it.".to_owned(),
            });
            m.facts.push(("Status".into(), outcome_words(outcome).into()));
            if let Some(until) = protected_until {
                m.facts.push(("Protected until".into(), date(until)));
            }
            for r in reasons.iter().filter(|r| outcome != "approved" || !r.starts_with("no conflict")) {
                m.facts.push(("Why".into(), r.clone()));
            }
            m
        }
        Notice::Decision { company, outcome, reasons, note, protected_until } => {
            let heading = match outcome.as_str() {
                "approved" => format!("Your referral of {company} is approved"),
                "rejected" => format!("Your referral of {company} was not accepted"),
                _ => format!("Your referral of {company} was reviewed"),
            };
            let mut m = c(thread_subject(company, false), heading, Vec::new());
            if let Some(n) = note.as_ref().filter(|n| !n.is_empty()) {
                m.paragraphs.push(format!("Note from your partner manager: {n}"));
            }
            if let Some(until) = protected_until {
                m.facts.push(("Protected until".into(), date(until)));
            }
            if outcome != "approved" {
                for r in reasons {
                    m.facts.push(("Why".into(), r.clone()));
                }
            }
            m
        }
        Notice::StageChanged { company, stage_label } => {
            let mut m = c(thread_subject(company, false), format!("{company}: {stage_label}"), Vec::new());
            m.paragraphs.push(format!("The deal you introduced moved on. It is now: {stage_label}."));
            m
        }
        Notice::Won { company, amount, commission, payable_from } => {
            let mut m = c(thread_subject(company, false), format!("{company} signed — thank you!"), Vec::new());
            m.paragraphs.push("The deal you introduced closed won.".to_owned());
            if let Some(a) = amount {
                m.facts.push(("Deal amount".into(), a.clone()));
            }
            if let Some(x) = commission {
                m.facts.push(("Your commission".into(), x.clone()));
            }
            if let Some(t) = payable_from {
                m.facts.push(("Payable from".into(), date(t)));
            }
            m
        }
        Notice::Lost { company } => c(
            thread_subject(company, false),
            format!("{company} decided not to go ahead"),
            vec!["The deal you introduced closed lost. Thank you for the introduction — keep them coming.".to_owned()],
        ),
        Notice::ProtectionExtended { company, until, reason } => {
            let mut m = c(thread_subject(company, false), format!("Protection of {company} extended"), Vec::new());
            m.facts.push(("Protected until".into(), date(until)));
            if !reason.is_empty() {
                m.facts.push(("Why".into(), reason.clone()));
            }
            m
        }
        Notice::ProtectionExpiring { company, until } => c(
            thread_subject(company, false),
            format!("Protection of {company} ends on {}", date(until)),
            vec![
                "Your registration stays protected until that day. If the deal is still moving, ask your partner manager to extend it."
                    .to_owned(),
            ],
        ),
        Notice::ProtectionExpired { company } => c(
            thread_subject(company, false),
            format!("Protection of {company} has ended"),
            vec!["The registration lapsed without a close; the account is open again.".to_owned()],
        ),
        Notice::ReviewNeeded { company, partner, reasons, review_url } => {
            let mut m = c(format!("Review needed: {partner} registered {company}"), format!("{partner} registered {company}"), Vec::new());
            m.paragraphs.push("The rules of engagement sent this registration to review.".to_owned());
            m.facts.extend(reasons.iter().map(|r| ("Reason".to_owned(), r.clone())));
            m.action = Some(("Review it".into(), review_url.clone()));
            m
        }
        Notice::Disputed { company, partner, message, review_url } => {
            let mut m = c(format!("{partner} disputes the rejection of {company}"), format!("{partner} disputes a rejection"), Vec::new());
            m.paragraphs.push(format!("Their message: {message}"));
            m.action = Some(("Resolve it".into(), review_url.clone()));
            m
        }
        Notice::PartnerReplied { company, partner, text, referral_url } => {
            let mut m = c(format!("{partner} replied about {company}"), format!("{partner} replied about {company}"), vec![text.clone()]);
            m.action = Some(("Open the referral".into(), referral_url.clone()));
            m
        }
        Notice::Stalled { company, partner, stage_label, days, referral_url } => {
            let mut m = c(
                format!("Stalled: {company} ({partner}) has not moved in {days} days"),
                format!("{company} has not moved in {days} days"),
                vec![format!("Referred by {partner}; still at “{stage_label}”. A quick update keeps the partner engaged.")],
            );
            m.action = Some(("Open the referral".into(), referral_url.clone()));
            m
        }
        Notice::CommissionPayable { amount, commissions, balance, earnings_url } => {
            let what = if *commissions == 1 { "commission is" } else { "commissions are" };
            let mut m = c(
                format!("Commission payable: {amount}"),
                format!("{amount} is now payable to you"),
                vec![format!("The hold period ended: {commissions} {what} now payable and will be in your next payout.")],
            );
            if let Some(b) = balance {
                m.facts.push(("Payable balance".into(), b.clone()));
            }
            m.action = Some(("See your earnings".into(), earnings_url.clone()));
            m
        }
        Notice::PayoutSent { total, commissions, reference, statement_url } => {
            let mut m = c(format!("Payout sent: {total}"), format!("We sent you {total}"), Vec::new());
            m.facts.push(("Commissions".into(), commissions.to_string()));
            if let Some(r) = reference {
                m.facts.push(("Reference".into(), r.clone()));
            }
            m.action = statement_url.as_ref().map(|u| ("See your statement".to_owned(), u.clone()));
            m
        }
        Notice::TierChanged { from, to, benefits } => {
            let to_name = to.clone().unwrap_or_else(|| "no tier".into());
            let mut m = c(format!("Your partner tier is now {to_name}"), format!("Your partner tier is now {to_name}"), Vec::new());
            if let Some(f) = from {
                m.facts.push(("Before".into(), f.clone()));
            }
            if let Some(b) = benefits {
                m.paragraphs.push(format!("What it brings: {b}"));
            }
            m
        }
        Notice::Digest { month, pipeline, earnings, tier, next_tier } => {
            let mut m = c(format!("Your partner digest for {month}"), format!("Your {month} at a glance"), Vec::new());
            if pipeline.is_empty() {
                m.paragraphs.push("No referrals yet — every introduction counts.".to_owned());
            }
            m.facts.extend(pipeline.iter().map(|(status, n)| (status.clone(), n.to_string())));
            m.facts.extend(earnings.iter().cloned());
            if let Some(t) = tier {
                m.facts.push(("Your tier".into(), t.clone()));
            }
            if let Some(n) = next_tier {
                m.paragraphs.push(n.clone());
            }
            m
        }
        Notice::Announcement { subject, body } => {
            c(subject.clone(), subject.clone(), body.split("\n\n").map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect())
        }
        Notice::RegistrationRefused { reason } => c(
            "We could not register your referral".to_owned(),
            "We could not register your referral".to_owned(),
            vec![
                reason.clone(),
                "Send it again with the prospect in To or CC, or with lines like “Company: Globex”, “Contact: Hank Scorpio”, “Email: hank@globex.example”, “Notes: …”.".to_owned(),
            ],
        ),
        Notice::SignIn { url, expires_minutes, welcome } => {
            let (subject, heading) = if *welcome {
                ("Welcome to the partner program".to_owned(), "Welcome aboard".to_owned())
            } else {
                ("Your sign-in link".to_owned(), "Sign in to the partner portal".to_owned())
            };
            let mut m = c(
                subject,
                heading,
                vec![format!("The button below signs you in. It works once, for {expires_minutes} minutes. No password needed, ever.")],
            );
            m.action = Some(("Sign in".into(), url.clone()));
            m
        }
        Notice::StaffSignIn { url, expires_minutes } => {
            let mut m = c(
                "Your console sign-in link".to_owned(),
                "Sign in to the partner program console".to_owned(),
                vec![format!("The button below signs you in. It works once, for {expires_minutes} minutes. If you did not ask for it, ignore this mail.")],
            );
            m.action = Some(("Sign in".into(), url.clone()));
            m
        }
    }
}

#[cfg(test)]
mod tests {
    use partnerloop_app::notify::notice::{MailPayload, Mailbox, Notice};

    #[test]
    fn a_staff_sign_in_mail_carries_its_link_in_both_bodies() {
        let url = "https://prm.example/login/tok123".to_owned();
        let notice = Notice::StaffSignIn { url: url.clone(), expires_minutes: 10 };
        let p = MailPayload::new(Mailbox { name: None, email: "lead@vendor.example".into() }, "Acme".into(), notice);
        let r = super::render(&p).unwrap();
        assert_eq!(r.subject, "Your console sign-in link");
        assert!(r.text.contains(&url) && r.html.contains(&url), "{r:?}");
        assert!(r.text.contains("10 minutes") && !r.text.contains("partner portal"));
    }
}
