use super::*;

/// (what the case is, the received text, what the sender wrote)
const CASES: &[(&str, &str, &str)] = &[
    (
        "gmail reply",
        "Sounds good, let's talk Tuesday.\n\nOn Mon, Mar 4, 2024 at 10:12 AM Dana Vendor <dana@vendor.example> wrote:\n> Can we meet next week?\n>\n> Dana\n",
        "Sounds good, let's talk Tuesday.",
    ),
    (
        "gmail attribution wrapped over two lines",
        "Yes, they signed.\n\nOn Mon, Mar 4, 2024 at 10:12 AM Dana Vendor <\ndana@vendor.example> wrote:\n\n> Did they sign?\n",
        "Yes, they signed.",
    ),
    (
        "apple mail reply",
        "Thanks!\n\nSent from my iPhone\n\n> On 4 Mar 2024, at 10:12, Dana Vendor <dana@vendor.example> wrote:\n>\n> Hello\n",
        "Thanks!",
    ),
    (
        "apple mail attribution without quote marks",
        "Perfect.\n\nOn 4 Mar 2024, at 10:12, Dana Vendor <dana@vendor.example> wrote:\n\nHello there\n",
        "Perfect.",
    ),
    (
        "outlook with original message separator",
        "Budget is approved.\r\n\r\nRegards,\r\nPat\r\n\r\n-----Original Message-----\r\nFrom: Dana Vendor <dana@vendor.example>\r\nSent: Monday, March 4, 2024 10:12 AM\r\nTo: Pat <pat@partner.example>\r\nSubject: Budget\r\n\r\nIs the budget approved?\r\n",
        "Budget is approved.\n\nRegards,\nPat",
    ),
    (
        "outlook with underscore rule and header block",
        "Call me tomorrow.\n\n________________________________\nFrom: Dana Vendor <dana@vendor.example>\nSent: Monday, March 4, 2024 10:12\nTo: Pat\nSubject: RE: Intro\n\nOld text\n",
        "Call me tomorrow.",
    ),
    (
        "outlook header block alone, bold names",
        "Noted.\n\n*From:* Dana Vendor <dana@vendor.example>\n*Sent:* Monday, March 4, 2024 10:12\n*To:* Pat\n*Subject:* RE: Intro\n\nOld\n",
        "Noted.",
    ),
    ("signature delimiter", "See you there.\n\n-- \nPat Partner\nPartner Inc | +1 555 0100\n", "See you there."),
    (
        "german attribution",
        "Passt, danke.\n\nAm 04.03.2024 um 10:12 schrieb Dana Vendor <dana@vendor.example>:\n> Passt Dienstag?\n",
        "Passt, danke.",
    ),
    (
        "french attribution with a space before the colon",
        "D'accord.\n\nLe lun. 4 mars 2024 à 10:12, Dana Vendor <dana@vendor.example> a écrit :\n> Mardi ?\n",
        "D'accord.",
    ),
    (
        "inline answers between quotes survive",
        "> Did they sign?\nYes, yesterday.\n> And the amount?\n12k a year.\n",
        "Yes, yesterday.\n12k a year.",
    ),
    ("a > inside a sentence is text", "Revenue went 10k -> 12k and margin > 40%.\n", "Revenue went 10k -> 12k and margin > 40%."),
    ("a sentence that starts with On is text", "On Tuesday we can meet.\nWorks for you?\n", "On Tuesday we can meet.\nWorks for you?"),
    ("a From: line that is not a header block is text", "From: the whole team, thanks!\n", "From: the whole team, thanks!"),
    ("outlook mobile footer", "Ok\n\nGet Outlook for iOS\n", "Ok"),
    ("empty", "", ""),
    ("only quotes", "> a\n> b\n", ""),
];

#[test]
fn replies_keep_only_what_the_sender_wrote() {
    for (case, input, expected) in CASES {
        assert_eq!(strip_reply(input), *expected, "case: {case}");
    }
}

#[test]
fn trailing_whitespace_and_blank_lines_go() {
    assert_eq!(strip_reply("Hello  \n\n  \n\n"), "Hello");
}
