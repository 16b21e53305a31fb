//! `/r/{code}`: a partner's personal referral link. Anyone registers a lead
//! for that partner here, without an account; the registration is the
//! ordinary one (channel `link`), decided by the rules of engagement.
//!
//! Rules: an unknown code, or one of a partner that is not active, is a
//! 404 page. The visitor only ever learns that the lead was received and
//! that the partner will hear of it: never the decision, a conflict, or
//! anything about other partners or the vendor's accounts.

use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use partnerloop_app::referrals::{self, ReferralForCreate};
use partnerloop_app::{AppError, Ctx};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::partner::Partner;
use partnerloop_domain::referral::Channel;
use partnerloop_domain::validation::{optional_text, required_text};
use partnerloop_domain::{Email, FieldError, Validator};
use serde::Deserialize;

use super::{Field, FormCsrf, HONEYPOT, csrf_ok, looks_human, place_errors, stamp};
use crate::AppState;
use crate::portal::{html, message};

#[derive(Template)]
#[template(path = "referral_link.html")]
struct LinkPage {
    workspace: String,
    partner: String,
    code: String,
    csrf: String,
    stamp: String,
    honeypot: &'static str,
    fields: Vec<Field>,
    general: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkForm {
    csrf: String,
    stamp: String,
    company_name: String,
    company_domain: String,
    contact_name: String,
    contact_email: String,
    contact_title: String,
    context: String,
    fax_number: String,
}

/// Which input an error of the use case's field belongs to.
const FIELD_KEYS: [(&str, &str); 6] = [
    ("company.name", "company_name"),
    ("company.domain", "company_domain"),
    ("contact.name", "contact_name"),
    ("contact.email", "contact_email"),
    ("contact.title", "contact_title"),
    ("context", "context"),
];

fn purpose(code: &str) -> String {
    format!("link:{code}")
}

fn fields(f: &LinkForm) -> Vec<Field> {
    vec![
        Field::new("company_name", "Company name", "text", true, &f.company_name).autocomplete("organization"),
        Field::new("company_domain", "Company website", "text", false, &f.company_domain)
            .hint("For example globex.example; taken from the email address when left empty."),
        Field::new("contact_name", "Contact's name", "text", true, &f.contact_name).autocomplete("name"),
        Field::new("contact_email", "Contact's email", "email", true, &f.contact_email).autocomplete("email"),
        Field::new("contact_title", "Contact's job title", "text", false, &f.contact_title).autocomplete("organization-title"),
        Field::new("context", "What is it about?", "textarea", false, &f.context).hint("What the company needs, and when."),
    ]
}

fn page(s: &AppState, workspace: String, partner: &Partner, f: &LinkForm, csrf: &str) -> LinkPage {
    LinkPage {
        workspace,
        partner: partner.name.clone(),
        code: partner.referral_code.as_str().to_owned(),
        csrf: csrf.to_owned(),
        stamp: stamp(s, &purpose(partner.referral_code.as_str())),
        honeypot: HONEYPOT,
        fields: fields(f),
        general: vec![],
    }
}

fn given(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

fn parse(f: &LinkForm) -> Result<ReferralForCreate, Vec<FieldError>> {
    let mut v = Validator::new();
    let company_name = v.check(required_text("company.name", &f.company_name, 200));
    let domain = v.check_opt(given(&f.company_domain), |d| CompanyDomain::parse("company.domain", d));
    let contact_name = v.check(required_text("contact.name", &f.contact_name, 200));
    let contact_email = v.check(Email::parse("contact.email", f.contact_email.trim()));
    let title = v.check(optional_text("contact.title", given(&f.contact_title), 200));
    let context = v.check(optional_text("context", given(&f.context), 10_000));
    v.finish(|| {
        Some(ReferralForCreate {
            partner_id: None,
            company_name: company_name?,
            company_domain: domain?,
            contact_name: contact_name?,
            contact_email: contact_email?,
            contact_title: title?,
            context: context?,
            estimated_value: None,
            channel: Channel::Link,
        })
    })
}

fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "This link is not valid", "Ask the person who shared it for their current link.")
}

fn thanks(partner: &Partner) -> Response {
    message(
        StatusCode::OK,
        "Thank you: received",
        &format!("The introduction is registered for {}, who will be informed. Someone will be in touch.", partner.name),
    )
}

fn failed(e: AppError) -> Response {
    tracing::error!(error = %e, "the referral link page failed");
    message(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Please try again in a moment.")
}

async fn partner_of(s: &AppState, code: &str) -> Result<(Ctx, Partner, String), Response> {
    match referrals::link_partner(s.store.as_ref(), code, Timestamp::now()).await {
        Ok((ctx, p)) => match s.store.workspace(&ctx.workspace_id).await {
            Ok(ws) => Ok((ctx, p, ws.name)),
            Err(e) => Err(failed(e.into())),
        },
        Err(AppError::NotFound) => Err(not_found()),
        Err(e) => Err(failed(e)),
    }
}

/// `GET /r/{code}`: the lead form for the partner of `code`.
pub async fn form(State(s): State<AppState>, headers: HeaderMap, Path(code): Path<String>) -> Response {
    let (_, partner, workspace) = match partner_of(&s, &code).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let csrf = FormCsrf::of(&s, &headers);
    let p = page(&s, workspace, &partner, &LinkForm::default(), &csrf.token);
    csrf.apply(html(StatusCode::OK, p))
}

/// `POST /r/{code}`: registers the lead.
pub async fn submit(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Form(f): Form<LinkForm>,
) -> Response {
    if !s.public_forms.allow_link(peer.ip(), &code) {
        return message(StatusCode::TOO_MANY_REQUESTS, "Too many requests", "Please wait a few minutes before sending the form again.");
    }
    let (ctx, partner, workspace) = match partner_of(&s, &code).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&headers, &f.csrf) {
        return FormCsrf::of(&s, &headers).apply(message(
            StatusCode::FORBIDDEN,
            "Please try again",
            "The form expired; go back, reload the page and send it again.",
        ));
    }
    if !looks_human(&s, &purpose(partner.referral_code.as_str()), &f.stamp, &f.fax_number) {
        tracing::info!(partner = %partner.id, "a lead through a referral link was taken for spam and dropped");
        return thanks(&partner);
    }
    let result = match parse(&f) {
        Ok(input) => referrals::register_by_link(s.store.as_ref(), &s.matcher, partner.referral_code.as_str(), input, ctx.now).await,
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        // Whatever the rules decided: the visitor is told only that it arrived.
        Ok(_) => thanks(&partner),
        Err(AppError::Invalid(errors)) if errors.iter().any(|e| e.field == "partner_id") => not_found(),
        Err(AppError::Invalid(errors)) => {
            let csrf = FormCsrf::of(&s, &headers);
            let mut p = page(&s, workspace, &partner, &f, &csrf.token);
            p.general = place_errors(&mut p.fields, errors, &FIELD_KEYS).iter().map(|e| e.message.clone()).collect();
            csrf.apply(html(StatusCode::UNPROCESSABLE_ENTITY, p))
        }
        Err(AppError::NotFound) => not_found(),
        Err(e) => failed(e),
    }
}
