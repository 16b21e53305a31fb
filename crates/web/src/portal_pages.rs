//! The partner portal for a signed-in partner contact: home, referrals
//! (register, detail with timeline, reply, dispute), earnings, payout
//! details, email preferences and sign-out.
//!
//! Rules of this module:
//! - A page needs a live `pl_session` (else 303 to `/portal`, which offers
//!   the sign-in form). The session maps to a partner-scoped `Ctx`
//!   (`Actor::Partner { key_id: None }`), and every handler calls the same
//!   use cases as the API with it, so "a partner sees only its own
//!   records" is enforced in one place: another partner's referral is 404.
//! - Every form carries a CSRF token equal to the `pl_csrf` cookie (double
//!   submit, constant-time compare); a POST without it is refused with 403
//!   and changes nothing.
//! - A partner reads what the API's partner view shows: partner-friendly
//!   statuses, redacted decision reasons, and of the timeline only the
//!   partner-visible entries (no internal notes, no rule evidence).

use std::collections::BTreeMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use jiff::Timestamp;
use partnerloop_app::outbox::{Preference, Topic};
use partnerloop_app::signin::{self, Holder};
use partnerloop_app::store::{Page, Registered};
use partnerloop_app::{Actor, AppError, Ctx, commissions, notifications, partners, payouts, pipeline, portal_lists, referrals, tiers};
use partnerloop_domain::company::CompanyDomain;
use partnerloop_domain::payout::{PayoutMethod, PayoutMethodInput};
use partnerloop_domain::referral::{Channel, Outcome, Referral, ReferralId, ReferralStatus};
use partnerloop_domain::rules::redact_for_partner;
use partnerloop_domain::validation::{optional_text, required_text};
use partnerloop_domain::{Currency, Email, FieldError, Money, Validator};
use serde::Deserialize;

use crate::AppState;
use crate::console::see_other;
use crate::portal::{CSRF_COOKIE, SESSION_COOKIE, cookie, html, login_form, message, secure};

/// What every portal page's navigation shows.
pub(crate) struct Nav {
    pub partner: String,
    pub contact: String,
    pub csrf: String,
}

/// A signed-in partner contact: its context, the navigation and the CSRF cookie to set when new.
struct Session {
    ctx: Ctx,
    holder: Holder,
    nav: Nav,
    workspace: String,
    set_csrf: Option<HeaderValue>,
}

impl Session {
    /// Adds the CSRF cookie to a response when it is new.
    fn finish(&self, mut r: Response) -> Response {
        if let Some(v) = &self.set_csrf {
            r.headers_mut().append(header::SET_COOKIE, v.clone());
        }
        r
    }

    fn nav(&self) -> Nav {
        Nav { partner: self.nav.partner.clone(), contact: self.nav.contact.clone(), csrf: self.nav.csrf.clone() }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a submitted form's token matches the browser's cookie.
fn csrf_ok(headers: &HeaderMap, submitted: &str) -> bool {
    match cookie(headers, CSRF_COOKIE) {
        Some(c) if !submitted.is_empty() => constant_time_eq(c.as_bytes(), submitted.as_bytes()),
        _ => false,
    }
}

/// The partner contact of the request's session; `None` when signed out.
async fn holder_of(s: &AppState, headers: &HeaderMap) -> Result<Option<Holder>, AppError> {
    match cookie(headers, SESSION_COOKIE) {
        Some(t) => signin::session(s.store.as_ref(), t, Timestamp::now()).await,
        None => Ok(None),
    }
}

/// The signed-in session, or the response to give instead (303 to `/portal`).
async fn session(s: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    let failed = |e: AppError| {
        tracing::error!(error = %e, "reading a portal session failed");
        message(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong", "Please try again in a moment.")
    };
    let Some(h) = holder_of(s, headers).await.map_err(failed)? else {
        return Err(see_other("/portal"));
    };
    let now = Timestamp::now();
    let ctx = Ctx::new(h.workspace_id.clone(), Actor::Partner { partner_id: h.partner_id.clone(), key_id: None }, now);
    let partner = partners::get(s.store.as_ref(), &ctx, &h.partner_id).await.map_err(failed)?;
    let workspace = s.store.workspace(&h.workspace_id).await.map_err(|e| failed(e.into()))?.name;
    let contact = partner.contacts.iter().find(|c| c.id == h.contact_id).map(|c| c.email.as_str().to_owned()).unwrap_or_default();
    let (csrf, set_csrf) = match cookie(headers, CSRF_COOKIE).filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(t) => (t.to_owned(), None),
        None => {
            let t = signin::token_hash(&partnerloop_app::auth::random_secret());
            let c = format!("{CSRF_COOKIE}={t}; Path=/portal; HttpOnly; SameSite=Strict{}", secure(s));
            (t, c.parse().ok())
        }
    };
    Ok(Session { ctx, holder: h, nav: Nav { partner: partner.name, contact, csrf }, workspace, set_csrf })
}

macro_rules! signed_in {
    ($s:expr, $headers:expr) => {
        match session(&$s, &$headers).await {
            Ok(x) => x,
            Err(r) => return r,
        }
    };
}

#[derive(Template)]
#[template(path = "portal_message.html")]
struct MessagePage {
    nav: Nav,
    title: String,
    lines: Vec<String>,
}

/// A use case's error as a page with the navigation.
fn error_page(sess: &Session, e: AppError) -> Response {
    let (status, title, lines) = match e {
        AppError::NotFound => (StatusCode::NOT_FOUND, "Not found", vec!["There is no such record among yours.".to_owned()]),
        AppError::Forbidden(_) | AppError::Unauthorized => (StatusCode::FORBIDDEN, "Not allowed", vec![]),
        AppError::Invalid(fields) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "Please check the form", fields.iter().map(ToString::to_string).collect())
        }
        AppError::Conflict { message, .. } => (StatusCode::CONFLICT, "That cannot be done now", vec![message]),
        AppError::Store(e) => {
            tracing::error!(error = %crate::problem::error_chain(&e), "a portal page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", vec!["Please try again in a moment.".to_owned()])
        }
    };
    sess.finish(html(status, MessagePage { nav: sess.nav(), title: title.to_owned(), lines }))
}

fn expired_form(sess: &Session) -> Response {
    sess.finish(html(
        StatusCode::FORBIDDEN,
        MessagePage {
            nav: sess.nav(),
            title: "Please try again".into(),
            lines: vec!["The form expired; go back, reload and send it again.".into()],
        },
    ))
}

fn date(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// Protection end of a referral that still holds it.
fn protected_until(r: &Referral, now: Timestamp) -> String {
    r.protection.filter(|_| r.is_active(now)).map(|p| date(p.expires_at)).unwrap_or_default()
}

// ---------------------------------------------------------------- home

pub(crate) struct ReferralRow {
    pub id: String,
    pub company: String,
    pub status: String,
    pub protected_until: String,
    pub registered: String,
}

pub(crate) struct BalanceRow {
    pub currency: String,
    pub pending: String,
    pub payable: String,
    pub paid: String,
    pub reversed: String,
}

pub(crate) struct TierView {
    pub name: String,
    pub benefits: String,
    pub next: Option<String>,
    pub at_risk: Option<String>,
}

#[derive(Template)]
#[template(path = "portal.html")]
struct HomePage {
    nav: Nav,
    workspace: String,
    rows: Vec<ReferralRow>,
    balances: Vec<BalanceRow>,
    tier: Option<TierView>,
    onboarding: Option<enablement::ChecklistCard>,
    /// The next (older) page's URL, and whether this is not the first page.
    older: Option<String>,
    paged: bool,
}

fn balance_rows(b: &[partnerloop_app::ledger::Balance]) -> Vec<BalanceRow> {
    b.iter()
        .map(|b| BalanceRow {
            currency: b.currency.code().to_owned(),
            pending: b.pending.to_string(),
            payable: b.payable.to_string(),
            paid: b.paid.to_string(),
            reversed: b.reversed.to_string(),
        })
        .collect()
}

/// The measure of a ladder in words, for `left` still to go.
fn measure_words(m: partnerloop_domain::tier::Measure, left: i64) -> String {
    match m.currency() {
        None if left == 1 => "1 more won referral".to_owned(),
        None => format!("{left} more won referrals"),
        Some(c) => format!("{} more in won deals", Money::from_minor(left, c)),
    }
}

async fn tier_view(s: &AppState, ctx: &Ctx, partner: &partnerloop_domain::ids::PartnerId) -> Result<Option<TierView>, AppError> {
    let p = match tiers::progress(s.store.as_ref(), ctx, partner).await {
        Ok(p) => p,
        // No ladder in this workspace: nothing to show.
        Err(AppError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let (name, benefits) = match (&p.current, &p.tier) {
        (Some(t), _) => (t.name.clone(), t.benefits.clone()),
        (None, Some(slug)) => (slug.clone(), String::new()),
        (None, None) => ("No tier yet".to_owned(), String::new()),
    };
    Ok(Some(TierView {
        name,
        benefits,
        next: p.next.map(|(t, left)| format!("{}: {} to go", t.name, measure_words(p.measure, left))),
        at_risk: p.demotion_at.map(|t| format!("Requalify by {} to keep this tier.", date(t))),
    }))
}

/// A list's `?cursor=` (and `?limit=`), as the API reads them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CursorQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

impl CursorQuery {
    fn page(&self) -> Result<Page, AppError> {
        crate::extract::ListParams { limit: self.limit.clone(), cursor: self.cursor.clone() }.page().map_err(|e| AppError::Invalid(vec![e]))
    }

    /// The link to the page after `next_after`, on `path`.
    fn older(&self, path: &str, next_after: Option<String>) -> Option<String> {
        let limit = self.limit.as_deref().filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
        crate::extract::encode_cursor(next_after)
            .map(|c| format!("{path}?cursor={c}{}", limit.map(|l| format!("&limit={l}")).unwrap_or_default()))
    }
}

/// `GET /portal?cursor=`: the partner's home (its referrals newest first,
/// 50 a page), or the sign-in form.
pub async fn home(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<CursorQuery>) -> Response {
    match holder_of(&s, &headers).await {
        Ok(Some(_)) => {}
        Ok(None) => return login_form(&s, StatusCode::OK, "Partner portal", "Sign in with the link we email you: no password needed."),
        Err(e) => {
            tracing::error!(error = %e, "reading a portal session failed");
            return message(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong", "Please try again in a moment.");
        }
    }
    let sess = signed_in!(s, headers);
    let ctx = &sess.ctx;
    let page = async {
        let labels = s.store.stage_labels(&ctx.workspace_id).await?;
        let page = q.page()?;
        let list = portal_lists::referrals(s.store.as_ref(), ctx, &page).await?;
        let rows = list
            .items
            .iter()
            .map(|r| ReferralRow {
                id: r.id.to_string(),
                company: r.company_name.clone(),
                status: pipeline::partner_status(r, &labels),
                protected_until: protected_until(r, ctx.now),
                registered: date(r.created_at),
            })
            .collect();
        let balances = balance_rows(&commissions::balances(s.store.as_ref(), ctx, &sess.holder.partner_id).await?);
        let tier = tier_view(&s, ctx, &sess.holder.partner_id).await?;
        let onboarding = enablement::checklist_card(&s, ctx, &sess.holder.partner_id).await?;
        Ok::<_, AppError>(HomePage {
            nav: sess.nav(),
            workspace: sess.workspace.clone(),
            rows,
            balances,
            tier,
            onboarding,
            older: q.older("/portal", list.next_after),
            paged: page.after.is_some(),
        })
    }
    .await;
    match page {
        Ok(p) => sess.finish(html(StatusCode::OK, p)),
        Err(e) => error_page(&sess, e),
    }
}

// ---------------------------------------------------------------- register

/// One input of a form, with what was typed and its error.
pub(crate) struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub required: bool,
    pub hint: &'static str,
    pub value: String,
    pub error: Option<String>,
}

impl Field {
    fn new(name: &'static str, label: &'static str, kind: &'static str, required: bool, hint: &'static str, value: &str) -> Self {
        Self { name, label, kind, required, hint, value: value.to_owned(), error: None }
    }
}

#[derive(Template)]
#[template(path = "portal_register.html")]
struct RegisterPage {
    nav: Nav,
    fields: Vec<Field>,
    general: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RegisterForm {
    csrf: String,
    company_name: String,
    company_domain: String,
    contact_name: String,
    contact_email: String,
    contact_title: String,
    context: String,
    estimated_amount: String,
    currency: String,
}

/// Which form input an error of the use case's field `key` belongs to.
const FIELD_KEYS: [(&str, &str); 8] = [
    ("company.name", "company_name"),
    ("company.domain", "company_domain"),
    ("contact.name", "contact_name"),
    ("contact.email", "contact_email"),
    ("contact.title", "contact_title"),
    ("context", "context"),
    ("estimated_value", "estimated_amount"),
    ("currency", "currency"),
];

fn register_fields(f: &RegisterForm) -> Vec<Field> {
    vec![
        Field::new("company_name", "Company name", "text", true, "", &f.company_name),
        Field::new(
            "company_domain",
            "Company website domain",
            "text",
            false,
            "For example acme.com; taken from the contact's email when left empty.",
            &f.company_domain,
        ),
        Field::new("contact_name", "Contact's name", "text", true, "", &f.contact_name),
        Field::new("contact_email", "Contact's email", "email", true, "", &f.contact_email),
        Field::new("contact_title", "Contact's job title", "text", false, "", &f.contact_title),
        Field::new("context", "What is the opportunity?", "textarea", false, "", &f.context),
        Field::new("estimated_amount", "Estimated deal value", "text", false, "An amount such as 12000.00.", &f.estimated_amount),
        Field::new("currency", "Currency", "text", false, "A three-letter code such as USD or EUR.", &f.currency),
    ]
}

/// Puts each error next to its input; the rest are for the whole form.
fn place_errors(fields: &mut [Field], errors: Vec<FieldError>, keys: &[(&str, &str)]) -> Vec<String> {
    let mut general = Vec::new();
    for e in errors {
        let input = keys.iter().find(|(k, _)| e.field == *k || e.field.starts_with(&format!("{k}."))).map(|(_, input)| *input);
        match input.and_then(|i| fields.iter_mut().find(|f| f.name == i)) {
            Some(f) if f.error.is_none() => f.error = Some(e.message),
            Some(f) => f.error = Some(format!("{}; {}", f.error.take().unwrap_or_default(), e.message)),
            None => general.push(if e.field.is_empty() { e.message } else { e.to_string() }),
        }
    }
    general
}

fn given(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

fn parse_register(f: &RegisterForm, default_currency: &str) -> Result<referrals::ReferralForCreate, Vec<FieldError>> {
    let mut v = Validator::new();
    let company_name = v.check(required_text("company.name", &f.company_name, 200));
    let domain = v.check_opt(given(&f.company_domain), |d| CompanyDomain::parse("company.domain", d));
    let contact_name = v.check(required_text("contact.name", &f.contact_name, 200));
    let contact_email = v.check(Email::parse("contact.email", f.contact_email.trim()));
    let title = v.check(optional_text("contact.title", given(&f.contact_title), 200));
    let context = v.check(optional_text("context", given(&f.context), 10_000));
    let currency = given(&f.currency).unwrap_or(default_currency).to_ascii_uppercase();
    let estimated = v.check_opt(given(&f.estimated_amount), |a| Money::parse_non_negative("estimated_value", a, &currency));
    v.finish(|| {
        Some(referrals::ReferralForCreate {
            partner_id: None,
            company_name: company_name?,
            company_domain: domain?,
            contact_name: contact_name?,
            contact_email: contact_email?,
            contact_title: title?,
            context: context?,
            estimated_value: estimated?,
            channel: Channel::Portal,
        })
    })
}

async fn workspace_currency(s: &AppState, ctx: &Ctx) -> String {
    s.store.workspace(&ctx.workspace_id).await.map(|w| w.currency).unwrap_or_else(|_| Currency::USD.code().to_owned())
}

/// `GET /portal/referrals/new`: the registration form.
pub async fn register_form(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let sess = signed_in!(s, headers);
    let f = RegisterForm { currency: workspace_currency(&s, &sess.ctx).await, ..Default::default() };
    sess.finish(html(StatusCode::OK, RegisterPage { nav: sess.nav(), fields: register_fields(&f), general: vec![] }))
}

/// `POST /portal/referrals/new`: registers and shows the decision; field
/// errors show the form again with the input kept.
pub async fn register(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<RegisterForm>) -> Response {
    let sess = signed_in!(s, headers);
    if !csrf_ok(&headers, &f.csrf) {
        return expired_form(&sess);
    }
    let currency = workspace_currency(&s, &sess.ctx).await;
    let result = match parse_register(&f, &currency) {
        Ok(input) => referrals::register(s.store.as_ref(), &s.matcher, &sess.ctx, input).await,
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(Registered::Created(r)) => see_other(&format!("/portal/referrals/{}?registered=1", r.id)),
        Ok(Registered::Existing(r)) => see_other(&format!("/portal/referrals/{}?existing=1", r.id)),
        Err(AppError::Invalid(errors)) => {
            let mut fields = register_fields(&f);
            let general = place_errors(&mut fields, errors, &FIELD_KEYS);
            sess.finish(html(StatusCode::UNPROCESSABLE_ENTITY, RegisterPage { nav: sess.nav(), fields, general }))
        }
        Err(e) => error_page(&sess, e),
    }
}

// ---------------------------------------------------------------- one referral

pub(crate) struct EventRow {
    pub at: String,
    pub what: String,
    pub text: String,
}

#[derive(Template)]
#[template(path = "portal_referral.html")]
struct ReferralPage {
    nav: Nav,
    id: String,
    banner: Option<String>,
    company: String,
    domain: String,
    contact: String,
    context: String,
    estimated: String,
    status: String,
    protected_until: String,
    registered: String,
    decision: String,
    reasons: Vec<String>,
    events: Vec<EventRow>,
    disputable: bool,
    reply_text: String,
    reply_error: Option<String>,
    dispute_text: String,
    dispute_error: Option<String>,
}

/// A decision in plain words.
fn decision_words(r: &Referral, now: Timestamp) -> String {
    match (r.decision.outcome, r.status) {
        (_, ReferralStatus::Won) => "Won: congratulations!".to_owned(),
        (Outcome::Approved, _) | (_, ReferralStatus::Approved) => match protected_until(r, now).as_str() {
            "" => "Approved.".to_owned(),
            until => format!("Approved: this company is registered to you until {until}."),
        },
        (Outcome::Review, ReferralStatus::PendingReview) => {
            "Under review: a partner manager will look at it and you will hear back by email.".to_owned()
        }
        (_, ReferralStatus::Rejected) => "Not accepted. The reasons are below; you may dispute the decision.".to_owned(),
        _ => pipeline::partner_status(r, &BTreeMap::new()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DetailQuery {
    registered: Option<String>,
    existing: Option<String>,
}

#[derive(Default)]
struct DetailInput {
    banner: Option<String>,
    reply_text: String,
    reply_error: Option<String>,
    dispute_text: String,
    dispute_error: Option<String>,
}

async fn detail(s: &AppState, sess: &Session, id: &ReferralId, input: DetailInput, status: StatusCode) -> Response {
    let ctx = &sess.ctx;
    let page = async {
        let r = referrals::get(s.store.as_ref(), ctx, id).await?;
        let labels = s.store.stage_labels(&ctx.workspace_id).await?;
        let me = ctx.actor.audit_name();
        let events = referrals::timeline(s.store.as_ref(), ctx, id)
            .await?
            .into_iter()
            .filter_map(|e| {
                let what = pipeline::partner_event(&e.kind)?;
                let own = e.actor == me;
                let text = match e.kind.as_str() {
                    // Notes by staff are internal; the partner's own show in full.
                    "replied" if !own => return None,
                    "replied" => e.summary,
                    "disputed" if own => e.summary.strip_prefix("disputed: ").unwrap_or(&e.summary).to_owned(),
                    _ => String::new(),
                };
                Some(EventRow { at: date(e.at), what: what.to_owned(), text })
            })
            .collect();
        let banner = input.banner.map(|b| if b.is_empty() { format!("Registered. {}", decision_words(&r, ctx.now)) } else { b });
        Ok::<_, AppError>(ReferralPage {
            nav: sess.nav(),
            id: r.id.to_string(),
            banner,
            company: r.company_name.clone(),
            domain: r.company_domain.as_str().to_owned(),
            contact: format!(
                "{} <{}>{}",
                r.contact_name,
                r.contact_email.as_str(),
                r.contact_title.as_deref().map(|t| format!(", {t}")).unwrap_or_default()
            ),
            context: r.context.clone().unwrap_or_default(),
            estimated: r.estimated_value.map(|m| m.to_string()).unwrap_or_default(),
            status: pipeline::partner_status(&r, &labels),
            protected_until: protected_until(&r, ctx.now),
            registered: date(r.created_at),
            decision: decision_words(&r, ctx.now),
            reasons: if r.decision.outcome == Outcome::Approved {
                vec![]
            } else {
                redact_for_partner(&r.decision.reasons).into_iter().map(|x| x.detail).collect()
            },
            events,
            disputable: r.status == ReferralStatus::Rejected && r.dispute.is_none(),
            reply_text: input.reply_text,
            reply_error: input.reply_error,
            dispute_text: input.dispute_text,
            dispute_error: input.dispute_error,
        })
    }
    .await;
    match page {
        Ok(p) => sess.finish(html(status, p)),
        Err(e) => error_page(sess, e),
    }
}

/// `GET /portal/referrals/{id}`: one of the partner's referrals.
pub async fn referral(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Query(q): Query<DetailQuery>) -> Response {
    let sess = signed_in!(s, headers);
    let banner = if q.existing.is_some() {
        Some("You had already registered this company: here is that registration.".to_owned())
    } else {
        // Filled in with the decision once the referral is read.
        q.registered.map(|_| String::new())
    };
    detail(&s, &sess, &ReferralId::from_string(id), DetailInput { banner, ..Default::default() }, StatusCode::OK).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TextForm {
    csrf: String,
    text: String,
}

/// `POST /portal/referrals/{id}/reply`: a note to the partner manager, on the timeline.
pub async fn reply(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<TextForm>) -> Response {
    let sess = signed_in!(s, headers);
    if !csrf_ok(&headers, &f.csrf) {
        return expired_form(&sess);
    }
    let id = ReferralId::from_string(id);
    match referrals::reply(s.store.as_ref(), &sess.ctx, &id, f.text.clone()).await {
        Ok(_) => see_other(&format!("/portal/referrals/{id}#timeline")),
        Err(AppError::Invalid(errors)) => {
            let reply_error = Some(errors.into_iter().map(|e| e.message).collect::<Vec<_>>().join("; "));
            let input = DetailInput { reply_text: f.text, reply_error, ..Default::default() };
            detail(&s, &sess, &id, input, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => error_page(&sess, e),
    }
}

/// `POST /portal/referrals/{id}/dispute`: disputes a rejection.
pub async fn dispute(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<TextForm>) -> Response {
    let sess = signed_in!(s, headers);
    if !csrf_ok(&headers, &f.csrf) {
        return expired_form(&sess);
    }
    let id = ReferralId::from_string(id);
    let result = match required_text("text", &f.text, 2000) {
        Ok(text) => referrals::dispute(s.store.as_ref(), &sess.ctx, &id, text).await,
        Err(e) => Err(AppError::Invalid(vec![e])),
    };
    match result {
        Ok(_) => see_other(&format!("/portal/referrals/{id}#timeline")),
        Err(AppError::Invalid(errors)) => {
            let dispute_error = Some(errors.into_iter().map(|e| e.message).collect::<Vec<_>>().join("; "));
            let input = DetailInput { dispute_text: f.text, dispute_error, ..Default::default() };
            detail(&s, &sess, &id, input, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(AppError::Conflict { message, .. }) => {
            let input = DetailInput { dispute_text: f.text, dispute_error: Some(message), ..Default::default() };
            detail(&s, &sess, &id, input, StatusCode::CONFLICT).await
        }
        Err(e) => error_page(&sess, e),
    }
}

// ---------------------------------------------------------------- earnings

pub(crate) struct CommissionRow {
    pub created: String,
    pub referral_id: String,
    pub company: String,
    pub kind: String,
    pub amount: String,
    pub status: String,
    pub note: String,
}

pub(crate) struct PayoutRow {
    pub id: String,
    pub total: String,
    pub count: u64,
    pub paid: String,
}

#[derive(Template)]
#[template(path = "portal_earnings.html")]
struct EarningsPage {
    nav: Nav,
    balances: Vec<BalanceRow>,
    rows: Vec<CommissionRow>,
    payouts: Vec<PayoutRow>,
    older: Option<String>,
    paged: bool,
}

fn status_words(s: partnerloop_domain::commission::CommissionStatus) -> &'static str {
    use partnerloop_domain::commission::CommissionStatus as S;
    match s {
        S::Pending => "Pending",
        S::Payable => "Payable",
        S::Paid => "Paid",
        S::Reversed => "Reversed",
    }
}

/// `GET /portal/earnings?cursor=`: balances, the commissions newest first
/// (50 a page), and the payouts those went out in.
pub async fn earnings(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<CursorQuery>) -> Response {
    let sess = signed_in!(s, headers);
    let ctx = &sess.ctx;
    let page = async {
        let balances = balance_rows(&commissions::balances(s.store.as_ref(), ctx, &sess.holder.partner_id).await?);
        let page = q.page()?;
        let list = portal_lists::commissions(s.store.as_ref(), ctx, &page).await?;
        let ids: Vec<_> = list.items.iter().map(|c| c.referral_id.clone()).collect();
        let names = s.store.referral_company_names(&ctx.workspace_id, &ids).await?;
        let mut payouts: BTreeMap<String, (Money, u64, Timestamp)> = BTreeMap::new();
        let mut rows = Vec::with_capacity(list.items.len());
        for c in &list.items {
            let status = c.status_at(ctx.now);
            let note = match status {
                partnerloop_domain::commission::CommissionStatus::Pending => format!("payable from {}", date(c.available_at)),
                _ => c.payout_id.as_ref().map(|p| format!("payout {p}")).unwrap_or_default(),
            };
            if let (Some(p), partnerloop_domain::commission::CommissionStatus::Paid) = (&c.payout_id, status) {
                let e = payouts.entry(p.to_string()).or_insert((Money::zero(c.amount.currency()), 0, c.updated_at));
                e.0 = e.0.checked_add(c.amount).unwrap_or(e.0);
                e.1 += 1;
                e.2 = e.2.max(c.updated_at);
            }
            rows.push(CommissionRow {
                created: date(c.created_at),
                referral_id: c.referral_id.to_string(),
                company: names.get(&c.referral_id).cloned().unwrap_or_default(),
                kind: c.kind.to_string(),
                amount: c.amount.to_string(),
                status: status_words(status).to_owned(),
                note,
            });
        }
        let payouts =
            payouts.into_iter().map(|(id, (total, count, at))| PayoutRow { id, total: total.to_string(), count, paid: date(at) }).collect();
        Ok::<_, AppError>(EarningsPage {
            nav: sess.nav(),
            balances,
            rows,
            payouts,
            older: q.older("/portal/earnings", list.next_after),
            paged: page.after.is_some(),
        })
    }
    .await;
    match page {
        Ok(p) => sess.finish(html(StatusCode::OK, p)),
        Err(e) => error_page(&sess, e),
    }
}

// ---------------------------------------------------------------- statements

#[derive(Template)]
#[template(path = "portal_statement.html")]
struct StatementPage {
    nav: Nav,
    payout_id: String,
    paid: String,
    total: String,
    rows: Vec<CommissionRow>,
}

/// `GET /portal/statements/{payout_id}`: the partner's statement for one
/// payout — every commission it paid them. Another partner's payout (or one
/// that paid this partner nothing) is 404.
pub async fn statement(State(s): State<AppState>, headers: HeaderMap, Path(payout_id): Path<String>) -> Response {
    let sess = signed_in!(s, headers);
    let ctx = &sess.ctx;
    let page = async {
        let filter = partnerloop_app::ledger::CommissionFilter {
            payout_id: Some(partnerloop_domain::commission::PayoutId::from_string(payout_id.clone())),
            ..Default::default()
        };
        // The use case scopes the list to the signed-in partner's own
        // commissions; every page of them, so that the total is the payout's.
        let mut items = Vec::new();
        let mut after = None;
        loop {
            let page = commissions::list(s.store.as_ref(), ctx, filter.clone(), &Page { limit: 500, after }).await?;
            items.extend(page.items);
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let Some(first) = items.first() else { return Err(AppError::NotFound) };
        let ids: Vec<_> = items.iter().map(|c| c.referral_id.clone()).collect();
        let names = s.store.referral_company_names(&ctx.workspace_id, &ids).await?;
        let mut total = Money::zero(first.amount.currency());
        let mut paid = first.updated_at;
        let rows = items
            .iter()
            .map(|c| {
                total = total.checked_add(c.amount).unwrap_or(total);
                paid = paid.max(c.updated_at);
                CommissionRow {
                    created: date(c.created_at),
                    referral_id: c.referral_id.to_string(),
                    company: names.get(&c.referral_id).cloned().unwrap_or_default(),
                    kind: c.kind.to_string(),
                    amount: c.amount.to_string(),
                    status: status_words(c.status_at(ctx.now)).to_owned(),
                    note: c.rule.clone(),
                }
            })
            .collect();
        Ok::<_, AppError>(StatementPage { nav: sess.nav(), payout_id, paid: date(paid), total: total.to_string(), rows })
    }
    .await;
    match page {
        Ok(p) => sess.finish(html(StatusCode::OK, p)),
        Err(e) => error_page(&sess, e),
    }
}

// ---------------------------------------------------------------- payout details

#[derive(Template)]
#[template(path = "portal_payout.html")]
struct PayoutPage {
    nav: Nav,
    saved: bool,
    current: Vec<(String, String)>,
    method: String,
    fields: Vec<Field>,
    account_type: String,
    account_type_error: Option<String>,
    method_error: Option<String>,
    general: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PayoutForm {
    csrf: String,
    method: String,
    email: String,
    account_name: String,
    iban: String,
    bic: String,
    routing_number: String,
    account_number: String,
    account_type: String,
}

const PAYOUT_KEYS: [(&str, &str); 6] = [
    ("email", "email"),
    ("account_name", "account_name"),
    ("iban", "iban"),
    ("bic", "bic"),
    ("routing_number", "routing_number"),
    ("account_number", "account_number"),
];

fn payout_fields(f: &PayoutForm) -> Vec<Field> {
    vec![
        Field::new("email", "PayPal email", "email", false, "PayPal only.", &f.email),
        Field::new("account_name", "Account holder's name", "text", false, "SEPA and ACH.", &f.account_name),
        Field::new("iban", "IBAN", "text", false, "SEPA only.", &f.iban),
        Field::new("bic", "BIC (optional)", "text", false, "SEPA only.", &f.bic),
        Field::new("routing_number", "ABA routing number", "text", false, "ACH only.", &f.routing_number),
        Field::new("account_number", "Account number", "text", false, "ACH only.", &f.account_number),
    ]
}

fn label_of_key(k: &str) -> String {
    match k {
        "method" => "Method".into(),
        "email" => "PayPal email".into(),
        "account_name" => "Account holder".into(),
        "iban_last4" => "IBAN ending in".into(),
        "bic" => "BIC".into(),
        "routing_number" => "Routing number".into(),
        "account_number_last4" => "Account number ending in".into(),
        "account_type" => "Account type".into(),
        other => other.replace('_', " "),
    }
}

async fn payout_page(s: &AppState, sess: &Session, f: &PayoutForm, errors: Vec<FieldError>, saved: bool, status: StatusCode) -> Response {
    let current = match payouts::details(s.store.as_ref(), &sess.ctx, &sess.holder.partner_id).await {
        Ok(v) => v
            .and_then(|v| v.as_object().cloned())
            .map(|o| {
                o.into_iter().map(|(k, v)| (label_of_key(&k), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))).collect()
            })
            .unwrap_or_default(),
        Err(e) => return error_page(sess, e),
    };
    let mut fields = payout_fields(f);
    let mut method_error = None;
    let mut account_type_error = None;
    let mut rest = Vec::new();
    for e in errors {
        match e.field.as_str() {
            "method" => method_error = Some(e.message),
            "account_type" => account_type_error = Some(e.message),
            _ => rest.push(e),
        }
    }
    let general = place_errors(&mut fields, rest, &PAYOUT_KEYS);
    sess.finish(html(
        status,
        PayoutPage {
            nav: sess.nav(),
            saved,
            current,
            method: f.method.clone(),
            fields,
            account_type: f.account_type.clone(),
            account_type_error,
            method_error,
            general,
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SavedQuery {
    saved: Option<String>,
}

/// `GET /portal/payout-details`: the masked details and the form to change them.
pub async fn payout_details(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<SavedQuery>) -> Response {
    let sess = signed_in!(s, headers);
    payout_page(&s, &sess, &PayoutForm::default(), vec![], q.saved.is_some(), StatusCode::OK).await
}

/// `POST /portal/payout-details`: sets the method through the same
/// validation as the API; its errors show next to their fields.
pub async fn set_payout_details(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<PayoutForm>) -> Response {
    let sess = signed_in!(s, headers);
    if !csrf_ok(&headers, &f.csrf) {
        return expired_form(&sess);
    }
    let opt = |v: &str| given(v).map(str::to_owned);
    let input = PayoutMethodInput {
        method: opt(&f.method),
        email: opt(&f.email),
        account_name: opt(&f.account_name),
        iban: opt(&f.iban),
        bic: opt(&f.bic),
        routing_number: opt(&f.routing_number),
        account_number: opt(&f.account_number),
        account_type: opt(&f.account_type),
    };
    let result = match PayoutMethod::parse(input) {
        Ok(method) => payouts::put_details(s.store.as_ref(), &s.sealer, &sess.ctx, &sess.holder.partner_id, method).await.map(|_| ()),
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(()) => see_other("/portal/payout-details?saved=1"),
        Err(AppError::Invalid(errors)) => payout_page(&s, &sess, &f, errors, false, StatusCode::UNPROCESSABLE_ENTITY).await,
        Err(e) => error_page(&sess, e),
    }
}

// ---------------------------------------------------------------- preferences

#[derive(Template)]
#[template(path = "portal_preferences.html")]
struct PreferencesPage {
    nav: Nav,
    email: String,
    saved: bool,
    /// topic, label, subscribed
    topics: Vec<(&'static str, &'static str, bool)>,
}

async fn preferences_page(s: &AppState, sess: &Session, saved: bool) -> Response {
    match crate::preferences::current(s, &sess.ctx, &sess.holder).await {
        Ok((email, topics)) => {
            let topics = topics.into_iter().map(|(t, on)| (t.as_str(), crate::preferences::label(t), on)).collect();
            sess.finish(html(StatusCode::OK, PreferencesPage { nav: sess.nav(), email, saved, topics }))
        }
        Err(e) => error_page(sess, e),
    }
}

/// `GET /portal/preferences`: this contact's email topics.
pub async fn preferences(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let sess = signed_in!(s, headers);
    preferences_page(&s, &sess, false).await
}

/// `POST /portal/preferences`: a checked box (`topic=on`) subscribes, an absent one opts out.
pub async fn save_preferences(State(s): State<AppState>, headers: HeaderMap, Form(form): Form<Vec<(String, String)>>) -> Response {
    let sess = signed_in!(s, headers);
    let csrf = form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
    if !csrf_ok(&headers, csrf) {
        return expired_form(&sess);
    }
    let prefs = Topic::ALL
        .iter()
        .map(|t| Preference { contact_id: sess.holder.contact_id.clone(), topic: *t, enabled: form.iter().any(|(k, _)| k == t.as_str()) })
        .collect();
    if let Err(e) = notifications::put_preferences(s.store.as_ref(), &sess.ctx, &sess.holder.partner_id, prefs).await {
        return error_page(&sess, e);
    }
    preferences_page(&s, &sess, true).await
}

// ---------------------------------------------------------------- sign-out

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /portal/logout`: ends the session and clears its cookie.
pub async fn logout(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    if !csrf_ok(&headers, &f.csrf) {
        return login_form(&s, StatusCode::FORBIDDEN, "Please try again", "The form expired; sign in again if you need to.");
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = signin::sign_out(s.store.as_ref(), token).await
    {
        tracing::error!(error = %e, "ending a portal session failed");
    }
    let mut r = see_other("/portal");
    if let Ok(v) = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}", secure(&s)).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

// The library and the onboarding checklist use this module's session and pages.
pub(crate) mod enablement;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_land_next_to_their_inputs() {
        let mut fields = register_fields(&RegisterForm { contact_email: "not-an-email".into(), ..Default::default() });
        let general = place_errors(
            &mut fields,
            vec![
                FieldError::new("contact.email", "is not an email address"),
                FieldError::new("estimated_value.amount", "must not be negative"),
                FieldError::new("partner_id", "the partner is paused"),
            ],
            &FIELD_KEYS,
        );
        let email = fields.iter().find(|f| f.name == "contact_email").unwrap();
        assert_eq!((email.value.as_str(), email.error.as_deref()), ("not-an-email", Some("is not an email address")));
        assert_eq!(fields.iter().find(|f| f.name == "estimated_amount").unwrap().error.as_deref(), Some("must not be negative"));
        assert_eq!(general, vec!["partner_id: the partner is paused".to_owned()]);
    }

    #[test]
    fn a_registration_defaults_its_currency_and_needs_the_required_fields() {
        let f = RegisterForm {
            company_name: "Acme".into(),
            contact_name: "Ann".into(),
            contact_email: "ann@acme.example".into(),
            estimated_amount: "1200.50".into(),
            ..Default::default()
        };
        let input = parse_register(&f, "EUR").unwrap();
        assert_eq!(input.estimated_value.unwrap().to_string(), Money::parse_non_negative("x", "1200.50", "EUR").unwrap().to_string());
        assert_eq!(input.channel, Channel::Portal);
        let errors = parse_register(&RegisterForm::default(), "EUR").unwrap_err();
        let names: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["company.name", "contact.name", "contact.email"]);
    }
}
