//! `/admin/tiers`: the workspace's tier ladder — its measure, tiers lowest
//! first with their thresholds and benefits, the requalification grace —
//! how many partners hold each tier, and "evaluate now". Every staff role
//! reads; admins and managers save the ladder and evaluate (the use cases
//! decide: `Ctx::require_admin`).
//!
//! Rules: every POST needs its CSRF token. The form's inputs are named as
//! the fields of `PUT /api/v1/tiers` (`tiers[1].threshold`) and parse
//! through the API's own validation and then the ladder's rules, so a
//! mistake is shown beside its row with what was typed (422) and the old
//! ladder stays. A row left wholly empty is no tier: that is how a tier is
//! removed, and how one is added in the spare rows.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use partnerloop_app::tiers::{self, EvaluationReport, StoredLadder};
use partnerloop_app::{AppError, Ctx};
use partnerloop_domain::FieldError;
use partnerloop_domain::tier::{DEFAULT_GRACE_DAYS, MAX_TIERS, Measure};
use serde_json::json;

use super::admin::{Session, finish, forbidden_form, nav_clone, signed_in};
use super::pages::{Nav, error_page, minute};
use super::see_other;
use crate::AppState;
use crate::api::tiers::{LadderPut, TierIn};
use crate::portal::html;

/// Empty rows offered below the ladder's tiers, for new ones.
const SPARE_ROWS: usize = 2;
const FIELDS: [&str; 4] = ["slug", "name", "benefits", "threshold"];

/// One row of the ladder form: what it holds and what is wrong, per field.
pub(crate) struct TierRow {
    pub index: usize,
    pub slug: String,
    pub name: String,
    pub benefits: String,
    pub threshold: String,
    pub errors: HashMap<&'static str, String>,
}

impl TierRow {
    #[cfg(test)]
    fn err(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

/// One input of a ladder row as the page shows it.
pub(crate) struct RowInput {
    pub field: &'static str,
    pub label: &'static str,
    pub value: String,
    pub error: Option<String>,
}

impl TierRow {
    fn inputs(mut self) -> (usize, Vec<RowInput>) {
        let labels = [
            ("slug", "Slug (letters, digits, - or _; the key of tiered plan rates)", self.slug),
            ("name", "Name", self.name),
            ("threshold", "Threshold", self.threshold),
            ("benefits", "Benefits (shown to partners)", self.benefits),
        ];
        (
            self.index,
            labels.into_iter().map(|(field, label, value)| RowInput { field, label, value, error: self.errors.remove(field) }).collect(),
        )
    }
}

/// A tier of the stored ladder, with how many partners hold it.
pub(crate) struct LadderRow {
    pub name: String,
    pub slug: String,
    pub threshold: String,
    pub benefits: String,
    pub partners: i64,
}

#[derive(Template)]
#[template(path = "admin_tiers.html")]
pub(crate) struct TiersPage {
    pub nav: Nav,
    pub may_manage: bool,
    /// The stored ladder (none yet: empty), its measure in words and when it changed.
    pub ladder: Vec<LadderRow>,
    pub measure_text: String,
    pub updated: Option<String>,
    /// Partners without a tier, and those holding one that is not on the ladder.
    pub untiered: i64,
    pub off_ladder: Vec<(String, i64)>,
    pub measure: String,
    pub currency: String,
    pub grace: String,
    /// Each form row's index and inputs.
    pub rows: Vec<(usize, Vec<RowInput>)>,
    pub errors: HashMap<String, String>,
    pub report: Option<EvaluationReport>,
    pub notice: Option<String>,
}

impl TiersPage {
    pub(crate) fn err(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

/// The ladder form as posted: the top fields, and the rows by index.
#[derive(Default)]
pub(crate) struct LadderForm {
    pub measure: String,
    pub currency: String,
    pub grace: String,
    /// slug, name, benefits, threshold of each row, in the form's order.
    pub rows: Vec<[String; 4]>,
}

impl LadderForm {
    fn of(stored: Option<&StoredLadder>, currency: &str) -> Self {
        let Some(s) = stored else {
            return Self {
                measure: "won_count".into(),
                currency: currency.to_owned(),
                grace: DEFAULT_GRACE_DAYS.to_string(),
                rows: vec![Default::default(); SPARE_ROWS + 1],
            };
        };
        let m = s.ladder.measure();
        let mut rows: Vec<[String; 4]> =
            s.ladder.tiers().iter().map(|t| [t.slug.clone(), t.name.clone(), t.benefits.clone(), threshold_text(m, t.threshold)]).collect();
        rows.resize(rows.len() + SPARE_ROWS, Default::default());
        Self {
            measure: m.name().into(),
            currency: m.currency().map_or(currency.to_owned(), |c| c.code().to_owned()),
            grace: s.ladder.requalification_grace_days().to_string(),
            rows,
        }
    }

    fn posted(form: &HashMap<String, String>) -> Self {
        let get = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        let last = (0..MAX_TIERS + SPARE_ROWS).rev().find(|i| FIELDS.iter().any(|f| form.contains_key(&format!("tiers[{i}].{f}"))));
        let rows = (0..last.map_or(0, |i| i + 1)).map(|i| FIELDS.map(|f| get(&format!("tiers[{i}].{f}")))).collect();
        Self { measure: get("measure"), currency: get("currency"), grace: get("requalification_grace_days"), rows }
    }

    /// The API's body, and for each of its tiers the form row it came from.
    fn body(&self) -> (LadderPut, Vec<usize>) {
        let revenue = self.measure == "won_revenue";
        let currency = Some(self.currency.clone()).filter(|c| revenue && !c.is_empty());
        let mut from_row = Vec::new();
        let mut tiers = Vec::new();
        for (i, [slug, name, benefits, threshold]) in self.rows.iter().enumerate() {
            if [slug, name, benefits, threshold].iter().all(|v| v.is_empty()) {
                continue;
            }
            let threshold = match (revenue, threshold.parse::<i64>()) {
                (false, Ok(n)) => json!(n),
                (false, Err(_)) => json!(threshold),
                (true, _) if threshold == "0" => json!(0),
                (true, _) => match &currency {
                    Some(c) => json!({"amount": threshold, "currency": c}),
                    None => json!({"amount": threshold}),
                },
            };
            from_row.push(i);
            tiers.push(TierIn { slug: slug.clone(), name: name.clone(), benefits: Some(benefits.clone()), threshold });
        }
        // A grace that is not a whole number is refused by the range check, under its own name.
        let grace = Some(self.grace.as_str()).filter(|g| !g.is_empty()).map(|g| g.parse::<i64>().unwrap_or(-1));
        (LadderPut { measure: self.measure.clone(), currency, requalification_grace_days: grace, tiers }, from_row)
    }
}

fn threshold_text(m: Measure, value: i64) -> String {
    m.money(value).map_or(value.to_string(), |money| money.amount_string())
}

/// Puts each error beside its row (`tiers[k]` is the k-th tier sent, which
/// is form row `from_row[k]`), and says "tier 2" where the message says `tiers[1]`.
fn place(errors: Vec<FieldError>, from_row: &[usize], rows: &mut [TierRow]) -> HashMap<String, String> {
    let rename = |message: String| {
        from_row.iter().enumerate().rev().fold(message, |m, (k, row)| m.replace(&format!("tiers[{k}]"), &format!("tier {}", row + 1)))
    };
    let mut rest = HashMap::new();
    for e in errors {
        let at_row = e.field.strip_prefix("tiers[").and_then(|r| r.split_once("].")).and_then(|(k, f)| {
            let row = *from_row.get(k.parse::<usize>().ok()?)?;
            let field = FIELDS.into_iter().find(|name| f == *name || f.starts_with(&format!("{name}.")))?;
            Some((row, field))
        });
        match at_row {
            Some((row, field)) if row < rows.len() => {
                rows[row].errors.insert(field, rename(e.message));
            }
            _ => {
                rest.insert(e.field, rename(e.message));
            }
        }
    }
    rest
}

/// What the page shows beside the stored ladder: the form, its errors, an evaluation.
#[derive(Default)]
pub(crate) struct Shown {
    pub form: Option<LadderForm>,
    pub errors: Vec<FieldError>,
    pub from_row: Vec<usize>,
    pub report: Option<EvaluationReport>,
    pub notice: Option<String>,
}

async fn stored(s: &AppState, ctx: &Ctx) -> Result<Option<StoredLadder>, AppError> {
    match tiers::ladder(s.store.as_ref(), ctx).await {
        Ok(l) => Ok(Some(l)),
        Err(AppError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn render(s: &AppState, who: Session, shown: Shown, status: StatusCode) -> Response {
    let (ctx, nav, csrf, may_manage) = who;
    let result = async {
        let ladder = stored(s, &ctx).await?;
        let mut counts: HashMap<Option<String>, i64> = tiers::partner_counts(s.store.as_ref(), &ctx).await?.into_iter().collect();
        let currency = s.store.workspace(&ctx.workspace_id).await?.currency;
        let form = shown.form.unwrap_or_else(|| LadderForm::of(ladder.as_ref(), &currency));
        let mut rows: Vec<TierRow> = form
            .rows
            .iter()
            .enumerate()
            .map(|(index, [slug, name, benefits, threshold])| TierRow {
                index,
                slug: slug.clone(),
                name: name.clone(),
                benefits: benefits.clone(),
                threshold: threshold.clone(),
                errors: HashMap::new(),
            })
            .collect();
        let errors = place(shown.errors, &shown.from_row, &mut rows);
        let (ladder_rows, measure_text, updated) = match &ladder {
            Some(l) => {
                let m = l.ladder.measure();
                let rows = l
                    .ladder
                    .tiers()
                    .iter()
                    .map(|t| LadderRow {
                        name: t.name.clone(),
                        slug: t.slug.clone(),
                        threshold: m.describe(t.threshold),
                        benefits: t.benefits.clone(),
                        partners: counts.remove(&Some(t.slug.clone())).unwrap_or(0),
                    })
                    .collect();
                let text = match m {
                    Measure::WonCount => "won referrals over the trailing 12 months".to_owned(),
                    Measure::WonRevenue(c) => format!("won revenue in {c} over the trailing 12 months"),
                };
                (rows, text, Some(minute(l.updated_at)))
            }
            None => (Vec::new(), String::new(), None),
        };
        let untiered = counts.remove(&None).unwrap_or(0);
        let mut off_ladder: Vec<(String, i64)> = counts.into_iter().filter_map(|(t, n)| Some((t?, n))).collect();
        off_ladder.sort();
        Ok::<_, AppError>(TiersPage {
            nav: nav_clone(&nav),
            may_manage,
            ladder: ladder_rows,
            measure_text,
            updated,
            untiered,
            off_ladder,
            measure: form.measure,
            currency: form.currency,
            grace: form.grace,
            rows: rows.into_iter().map(TierRow::inputs).collect(),
            errors,
            report: shown.report,
            notice: shown.notice,
        })
    }
    .await;
    finish(csrf, result.map(|p| html(status, p)).map_err(|e| (nav, e)), "/admin")
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct TiersQuery {
    #[serde(default)]
    saved: Option<String>,
}

/// `GET /admin/tiers`.
pub(super) async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<TiersQuery>,
) -> Response {
    match signed_in(&s, &headers).await {
        Ok(who) => {
            let notice = q.saved.map(|_| "The ladder is saved. Partners move on it at the next evaluation.".to_owned());
            render(&s, who, Shown { notice, ..Default::default() }, StatusCode::OK).await
        }
        Err(r) => r,
    }
}

/// A signed-in staff user whose form carries its token and whose role may change tiers.
async fn manager(s: &AppState, headers: &HeaderMap, token: &str) -> Result<Session, Response> {
    let who = signed_in(s, headers).await?;
    let refused = if !super::csrf_ok(headers, token) { Some(None) } else { who.0.require_admin().err().map(Some) };
    match refused {
        None => Ok(who),
        Some(why) => {
            let (_, nav, csrf, _) = who;
            Err(csrf.apply(match why {
                None => forbidden_form(nav),
                Some(e) => error_page(Some(nav), e, "/admin/tiers"),
            }))
        }
    }
}

/// `POST /admin/tiers`: replaces the ladder.
pub(super) async fn save(State(s): State<AppState>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let who = match manager(&s, &headers, form.get("csrf").map_or("", String::as_str)).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let typed = LadderForm::posted(&form);
    let (body, from_row) = typed.body();
    let result = match body.parse() {
        Ok(ladder) => tiers::put_ladder(s.store.as_ref(), &who.0, ladder).await.map(|_| ()),
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(()) => see_other("/admin/tiers?saved=1"),
        Err(AppError::Invalid(errors)) => {
            render(&s, who, Shown { form: Some(typed), errors, from_row, ..Default::default() }, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => {
            let (_, nav, csrf, _) = who;
            csrf.apply(error_page(Some(nav), e, "/admin/tiers"))
        }
    }
}

/// `POST /admin/tiers/evaluate`: evaluates every partner now and shows what moved.
pub(super) async fn evaluate(State(s): State<AppState>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let who = match manager(&s, &headers, form.get("csrf").map_or("", String::as_str)).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match tiers::evaluate_workspace(s.store.as_ref(), &who.0).await {
        Ok(report) => render(&s, who, Shown { report: Some(report), ..Default::default() }, StatusCode::OK).await,
        Err(e) => {
            let (_, nav, csrf, _) = who;
            csrf.apply(error_page(Some(nav), e, "/admin/tiers"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_lands_on_the_form_row_its_tier_came_from() {
        let form: HashMap<String, String> = [
            ("measure", "won_count"),
            ("tiers[0].slug", "bronze"),
            ("tiers[0].name", "Bronze"),
            ("tiers[0].threshold", "5"),
            ("tiers[1].slug", ""),
            ("tiers[1].name", ""),
            ("tiers[1].threshold", ""),
            ("tiers[2].slug", "silver"),
            ("tiers[2].name", "Silver"),
            ("tiers[2].threshold", "3"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let typed = LadderForm::posted(&form);
        assert_eq!(typed.rows.len(), 3);
        let (body, from_row) = typed.body();
        assert_eq!(from_row, vec![0, 2]);
        let errors = body.parse().unwrap_err();
        let mut rows: Vec<TierRow> = (0..3)
            .map(|index| TierRow {
                index,
                slug: String::new(),
                name: String::new(),
                benefits: String::new(),
                threshold: String::new(),
                errors: HashMap::new(),
            })
            .collect();
        let rest = place(errors, &from_row, &mut rows);
        assert!(rest.is_empty(), "{rest:?}");
        let message = rows[2].err("threshold").unwrap();
        assert!(message.contains("tier 1"), "{message}");
        assert!(rows[0].errors.is_empty() && rows[1].errors.is_empty());
    }
}
