//! `/apply`: the partner application form of a workspace (`?workspace=SLUG`,
//! default `default`). A submission becomes a scored application in the
//! console's queue (`partnerloop_app::applications::apply`); the applicant
//! always reads the same thank-you, whether the address was new, a repeat,
//! or the submission was taken for spam.

use std::collections::HashMap;
use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use partnerloop_app::applications::{self, ApplicationForCreate};
use partnerloop_app::store::Workspace;
use partnerloop_app::{AppError, Ctx};
use partnerloop_domain::application::{Criteria, MAX_INDUSTRIES, ResponseTime, industry_list, normalise_industry};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::partner::PartnerType;
use partnerloop_domain::validation::{optional_text, required_text};
use partnerloop_domain::{Email, FieldError, Money, Validator};
use serde::Deserialize;

use super::{Field, FormCsrf, HONEYPOT, csrf_ok, looks_human, place_errors, stamp};
use crate::AppState;
use crate::portal::{html, message};

/// A target industry's checkbox.
pub(crate) struct Industry {
    pub index: usize,
    pub name: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "apply.html")]
struct ApplyPage {
    workspace: String,
    slug: String,
    csrf: String,
    stamp: String,
    honeypot: &'static str,
    who: Vec<Field>,
    industries: Vec<Industry>,
    industries_error: Option<String>,
    business: Vec<Field>,
    general: Vec<String>,
    /// The form came back with problems.
    invalid: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkspaceQuery {
    workspace: Option<String>,
}

/// The form as posted: the named inputs, and `industry_N` checkboxes in `rest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ApplyForm {
    csrf: String,
    stamp: String,
    workspace: String,
    company_name: String,
    partner_type: String,
    website: String,
    contact_name: String,
    contact_email: String,
    other_industries: String,
    typical_deal: String,
    years_in_business: String,
    client_count: String,
    referrals_per_quarter: String,
    response_time: String,
    message: String,
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

fn purpose(slug: &str) -> String {
    format!("apply:{slug}")
}

async fn workspace(s: &AppState, slug: &str) -> Result<Workspace, AppError> {
    Ok(s.store.workspace_by_slug(slug).await?)
}

fn options<T: Copy>(all: &[T], value: impl Fn(T) -> &'static str, label: impl Fn(T) -> String) -> Vec<(String, String)> {
    all.iter().map(|t| (value(*t).to_owned(), label(*t))).collect()
}

fn page(s: &AppState, ws: &Workspace, criteria: &Criteria, f: &ApplyForm, csrf: &str) -> ApplyPage {
    let checked: Vec<String> = f.rest.iter().filter(|(k, _)| k.starts_with("industry_")).map(|(_, v)| normalise_industry(v)).collect();
    let who = vec![
        Field::new("company_name", "Company name", "text", true, &f.company_name).autocomplete("organization"),
        Field::new("partner_type", "Type of business", "select", true, &f.partner_type).options(options(
            PartnerType::ALL,
            |t| t.as_str(),
            |t| {
                let s = t.as_str();
                format!("{}{}", s[..1].to_uppercase(), &s[1..])
            },
        )),
        Field::new("website", "Website", "text", false, &f.website).hint("For example northwind.example.").autocomplete("url"),
        Field::new("contact_name", "Your name", "text", true, &f.contact_name).autocomplete("name"),
        Field::new("contact_email", "Your email", "email", true, &f.contact_email).autocomplete("email"),
    ];
    let business = vec![
        Field::new("other_industries", "Other industries your clients are in", "text", false, &f.other_industries)
            .hint("Separate them with commas."),
        Field::new("typical_deal", format!("Typical size of a client's deal ({})", ws.currency), "text", true, &f.typical_deal)
            .hint("An amount such as 25000."),
        Field::new("years_in_business", "Years in business", "number", true, &f.years_in_business),
        Field::new("client_count", "Clients you work with today", "number", true, &f.client_count),
        Field::new("referrals_per_quarter", "Introductions you expect to make per quarter", "number", true, &f.referrals_per_quarter),
        Field::new("response_time", "When we ask about a lead, you answer", "select", true, &f.response_time).options(options(
            ResponseTime::ALL,
            |t| t.as_str(),
            |t| t.label().to_owned(),
        )),
        Field::new("message", "Anything else we should know?", "textarea", false, &f.message),
    ];
    ApplyPage {
        workspace: ws.name.clone(),
        slug: ws.slug.clone(),
        csrf: csrf.to_owned(),
        stamp: stamp(s, &purpose(&ws.slug)),
        honeypot: HONEYPOT,
        who,
        industries: criteria
            .target_industries
            .iter()
            .enumerate()
            .map(|(index, name)| Industry { index, name: name.clone(), checked: checked.contains(name) })
            .collect(),
        industries_error: None,
        business,
        general: vec![],
        invalid: false,
    }
}

fn count(v: &mut Validator, field: &str, input: &str, max: u32) -> Option<u32> {
    v.check(
        input
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| FieldError::new(field, format!("must be a whole number from 0 to {max}"))),
    )
}

fn given(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

fn parse(f: &ApplyForm, criteria: &Criteria, currency: &str) -> Result<ApplicationForCreate, Vec<FieldError>> {
    let mut v = Validator::new();
    let company_name = v.check(required_text("company_name", &f.company_name, 200));
    let partner_type = v.check(PartnerType::parse("partner_type", &f.partner_type));
    let website = v.check_opt(given(&f.website), |d| CompanyDomain::parse("website", d));
    let contact_name = v.check(required_text("contact_name", &f.contact_name, 200));
    let contact_email = v.check(Email::parse("contact_email", f.contact_email.trim()));
    // Only the workspace's own industries count as ticked; the rest come from the free text.
    let mut industries: Vec<String> = criteria
        .target_industries
        .iter()
        .enumerate()
        .filter(|(i, name)| f.rest.get(&format!("industry_{i}")).is_some_and(|v| &normalise_industry(v) == *name))
        .map(|(_, name)| name.clone())
        .collect();
    for name in industry_list(&f.other_industries) {
        if !industries.contains(&name) {
            industries.push(name);
        }
    }
    if industries.is_empty() {
        v.push(FieldError::new("industries", "name at least one industry your clients are in"));
    } else if industries.len() > MAX_INDUSTRIES || industries.iter().any(|i| i.chars().count() > 80) {
        v.push(FieldError::new("other_industries", format!("at most {MAX_INDUSTRIES} industries of up to 80 characters")));
    }
    let typical_deal = v.check(Money::parse_non_negative("typical_deal", f.typical_deal.trim(), currency));
    let years = count(&mut v, "years_in_business", &f.years_in_business, 200);
    let clients = count(&mut v, "client_count", &f.client_count, 1_000_000);
    let per_quarter = count(&mut v, "referrals_per_quarter", &f.referrals_per_quarter, 10_000);
    let response_time = v.check(ResponseTime::parse("response_time", &f.response_time));
    let message = v.check(optional_text("message", given(&f.message), 5_000));
    v.finish(|| {
        Some(ApplicationForCreate {
            company_name: company_name?,
            partner_type: partner_type?,
            website: website?,
            contact_name: contact_name?,
            contact_email: contact_email?,
            industries,
            typical_deal: typical_deal?,
            years_in_business: years?,
            client_count: clients?,
            referrals_per_quarter: per_quarter?,
            response_time: response_time?,
            message: message?,
        })
    })
}

fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "No such partner program", "Check the link you followed.")
}

fn thanks(ws: &Workspace) -> Response {
    message(
        StatusCode::OK,
        "Thank you for applying",
        &format!("{} has your application and will answer by email. There is nothing more to do for now.", ws.name),
    )
}

fn failed(e: AppError) -> Response {
    tracing::error!(error = %e, "the application form failed");
    message(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Please try again in a moment.")
}

/// `GET /apply?workspace=SLUG`: the form.
pub async fn form(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<WorkspaceQuery>) -> Response {
    let slug = q.workspace.as_deref().map(str::trim).filter(|w| !w.is_empty()).unwrap_or("default").to_owned();
    let ws = match workspace(&s, &slug).await {
        Ok(ws) => ws,
        Err(AppError::NotFound) => return not_found(),
        Err(e) => return failed(e),
    };
    let criteria = match s.store.criteria(&ws.id).await {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return failed(e.into()),
    };
    let csrf = FormCsrf::of(&s, &headers);
    let p = page(&s, &ws, &criteria, &ApplyForm::default(), &csrf.token);
    csrf.apply(html(StatusCode::OK, p))
}

/// `POST /apply`: a submission.
pub async fn submit(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<ApplyForm>,
) -> Response {
    if !s.public_forms.allow_apply(peer.ip()) {
        return message(StatusCode::TOO_MANY_REQUESTS, "Too many requests", "Please wait a few minutes before sending the form again.");
    }
    let slug = given(&f.workspace).unwrap_or("default").to_owned();
    let ws = match workspace(&s, &slug).await {
        Ok(ws) => ws,
        Err(AppError::NotFound) => return not_found(),
        Err(e) => return failed(e),
    };
    if !csrf_ok(&headers, &f.csrf) {
        return FormCsrf::of(&s, &headers).apply(message(
            StatusCode::FORBIDDEN,
            "Please try again",
            "The form expired; go back, reload the page and send it again.",
        ));
    }
    let honeypot = f.rest.get(HONEYPOT).map(String::as_str).unwrap_or("");
    if !looks_human(&s, &purpose(&ws.slug), &f.stamp, honeypot) {
        tracing::info!(workspace = %ws.slug, "an application was taken for spam and dropped");
        return thanks(&ws);
    }
    let criteria = match s.store.criteria(&ws.id).await {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return failed(e.into()),
    };
    let ctx = Ctx::system(ws.id.clone(), "apply", Timestamp::now());
    let result = match parse(&f, &criteria, &ws.currency) {
        Ok(input) => applications::apply(s.store.as_ref(), &ctx, input).await,
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(_) => thanks(&ws),
        // A decision landed at the same moment: the applicant still sees
        // the same answer as every other time.
        Err(AppError::Conflict { message, .. }) => {
            tracing::info!(%message, "an application raced another change; answered as received");
            thanks(&ws)
        }
        Err(AppError::Invalid(errors)) => {
            let csrf = FormCsrf::of(&s, &headers);
            let mut p = page(&s, &ws, &criteria, &f, &csrf.token);
            let (industries, rest): (Vec<_>, Vec<_>) = errors.into_iter().partition(|e| e.field == "industries");
            p.industries_error = industries.into_iter().next().map(|e| e.message);
            let rest = place_errors(&mut p.who, rest, &[]);
            p.general = place_errors(&mut p.business, rest, &[]).iter().map(ToString::to_string).collect();
            p.invalid = true;
            csrf.apply(html(StatusCode::UNPROCESSABLE_ENTITY, p))
        }
        Err(e) => failed(e),
    }
}
