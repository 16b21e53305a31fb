use super::*;

fn addr(name: Option<&str>, email: &str) -> Address {
    Address { name: name.map(str::to_owned), email: email.to_owned() }
}

fn mail(to: Vec<Address>, cc: Vec<Address>, text: &str) -> InboundMail {
    InboundMail {
        message_id: None,
        in_reply_to: Vec::new(),
        references: Vec::new(),
        from: addr(Some("Pat Partner"), "pat@partner.example"),
        to,
        cc,
        subject: Some("Intro".into()),
        text: text.into(),
    }
}

fn partner_domains() -> Vec<String> {
    vec!["partner.example".into()]
}

#[test]
fn a_structured_body_registers_its_fields() {
    let text = "company: Prospect Inc\nContact: Bob Buyer\nEMAIL: <Bob@Prospect.example>\nDomain: www.prospect.example\nNotes: budget approved,\nwants a demo in May.\n\n-- \nPat";
    let got =
        read_registration(&mail(vec![addr(None, "register@in.vendor.example")], vec![], text), "in.vendor.example", &partner_domains());
    assert_eq!(
        got,
        Ok(IntakeRequest {
            company_name: Some("Prospect Inc".into()),
            company_domain: Some("prospect.example".into()),
            contact_name: Some("Bob Buyer".into()),
            contact_email: "bob@prospect.example".into(),
            context: "budget approved,\nwants a demo in May.".into(),
        })
    );
}

#[test]
fn a_structured_body_with_a_bad_email_says_so() {
    let got = read_registration(&mail(vec![], vec![], "Company: X\nEmail: bob at x"), "in.vendor.example", &partner_domains());
    assert_eq!(got, Err(IntakeError::InvalidEmail("bob at x".into())));
}

#[test]
fn a_warm_intro_registers_the_first_outside_address() {
    let to = vec![addr(Some("Colleague"), "sam@mail.partner.example"), addr(Some("Bob Buyer"), "bob@prospect.example")];
    let cc = vec![addr(None, "register@in.vendor.example"), addr(Some("Other"), "eve@other.example")];
    let text = "Bob, meet Dana from Vendor: they solve your billing problem.\n\nOn Mon, Mar 4, 2024 at 10:12 AM Bob <bob@prospect.example> wrote:\n> Any ideas?";
    let got = read_registration(&mail(to, cc, text), "in.vendor.example", &partner_domains()).unwrap();
    assert_eq!(got.contact_email, "bob@prospect.example");
    assert_eq!(got.contact_name.as_deref(), Some("Bob Buyer"));
    assert_eq!(got.company_domain.as_deref(), Some("prospect.example"));
    assert_eq!(got.context, "Bob, meet Dana from Vendor: they solve your billing problem.");
}

#[test]
fn a_prospect_on_free_mail_gives_no_company_domain() {
    let got = read_registration(&mail(vec![addr(None, "bob.buyer@gmail.com")], vec![], "Intro"), "in.vendor.example", &partner_domains());
    assert_eq!(got.map(|r| r.company_domain), Ok(None));
}

#[test]
fn our_own_addresses_are_never_the_prospect() {
    let to =
        vec![addr(None, "reply+abc@in.vendor.example"), addr(None, "register@elsewhere.example"), addr(None, "sales@in.vendor.example")];
    let got = read_registration(&mail(to, vec![], "Hi"), "in.vendor.example", &partner_domains());
    assert_eq!(got, Err(IntakeError::NoProspect));
}

#[test]
fn without_an_outside_address_the_partner_is_told_what_to_do() {
    let got = read_registration(
        &mail(vec![addr(None, "register@in.vendor.example")], vec![], "Please register Prospect Inc"),
        "in.vendor.example",
        &partner_domains(),
    );
    let err = got.unwrap_err();
    assert_eq!(err, IntakeError::NoProspect);
    assert!(err.to_string().contains("Email:"));
}
