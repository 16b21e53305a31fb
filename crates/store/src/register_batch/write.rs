//! The batch's rows, one multi-row statement per table (more only past
//! SQLite's parameter limit), with the columns and values of
//! `insert_deal!`, `write_referral!`, `insert_claims!`, `insert_events!`,
//! `insert_audit!` and `log_name!`. Rows go in in arrival order; the
//! claims right after their referrals, so that a refused claim costs
//! little before the savepoint is rolled back.

use std::collections::HashSet;

use partnerloop_app::matching::referral_key;
use partnerloop_app::referrals::{claim_keys, decision_summary};
use partnerloop_app::store::{StoreResult, TimelineEvent};
use partnerloop_domain::referral::Outcome;
use sqlx::query_builder::Separated;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{MAX_PARAMS, Write};
use crate::errors::map;
use crate::referral_rows::push_referral_row;
use crate::time::{opt_to_text, to_text};

/// Inserts `rows` with `head` (`INSERT INTO t (…) `), `cols` values each.
async fn insert<T>(
    conn: &mut SqliteConnection,
    head: &str,
    cols: usize,
    rows: &[T],
    mut bind: impl FnMut(Separated<'_, Sqlite, &'static str>, &T),
) -> StoreResult<()> {
    for chunk in rows.chunks(MAX_PARAMS / cols) {
        let mut q = QueryBuilder::<Sqlite>::new(head);
        q.push_values(chunk, &mut bind);
        q.build().execute(&mut *conn).await.map_err(map)?;
    }
    Ok(())
}

pub(super) async fn write_all(conn: &mut SqliteConnection, writes: Vec<&Write<'_>>) -> StoreResult<()> {
    let deals: Vec<_> = writes.iter().filter_map(|w| w.deal.map(|d| (w.ws, d))).collect();
    insert(
        conn,
        "INSERT INTO deals (workspace_id, id, name, company_name, company_domain, stage, amount_minor, currency, source, owner_email, \
         created_at, closed_at, updated_at) ",
        13,
        &deals,
        |mut b, (ws, d)| {
            b.push_bind(ws.as_str())
                .push_bind(d.id.as_str())
                .push_bind(d.name.as_str())
                .push_bind(d.company_name.as_str())
                .push_bind(d.company_domain.as_ref().map(|c| c.as_str()))
                .push_bind(d.stage.as_str())
                .push_bind(d.amount.minor())
                .push_bind(d.amount.currency().code())
                .push_bind(d.source.as_str())
                .push_bind(d.owner_email.as_ref().map(|e| e.as_str()))
                .push_bind(to_text(d.created_at))
                .push_bind(opt_to_text(d.closed_at))
                .push_bind(to_text(d.updated_at));
        },
    )
    .await?;

    insert(
        conn,
        concat!("INSERT INTO referrals (workspace_id, ", crate::referral_rows::referral_cols!(), ") "),
        27,
        &writes,
        |mut b, w| {
            push_referral_row!(b, w.ws.as_str(), w.referral.as_ref());
        },
    )
    .await?;

    // No ON CONFLICT: a key already held fails the statement on
    // `protection_claims_key_uq`, and the index has the last word.
    let mut claims = Vec::new();
    for w in writes.iter().filter(|w| w.claims) {
        let r = w.referral.as_ref();
        let expires = to_text(r.protection.map(|p| p.expires_at).unwrap_or(r.updated_at));
        for key in claim_keys(r.company_domain.as_str(), r.contact_email.as_str()) {
            claims.push((w.ws, key, r, expires.clone()));
        }
    }
    insert(
        conn,
        "INSERT INTO protection_claims (workspace_id, match_key, referral_id, partner_id, expires_at) ",
        5,
        &claims,
        |mut b, (ws, key, r, expires)| {
            b.push_bind(ws.as_str())
                .push_bind(key.as_str())
                .push_bind(r.id.as_str())
                .push_bind(r.partner_id.as_str())
                .push_bind(expires.as_str());
        },
    )
    .await?;

    let mut events = Vec::new();
    for w in &writes {
        let r = w.referral.as_ref();
        let decided = TimelineEvent {
            at: r.decision.decided_at,
            kind: "decided".into(),
            actor: "system:rules".into(),
            summary: decision_summary(&r.decision),
        };
        let all: Vec<&TimelineEvent> = w.registration.events.iter().chain(std::iter::once(&decided)).collect();
        // One id base per referral keeps its events in order, as `insert_events!` does.
        let base = partnerloop_app::ids::event_id(all[0].at);
        for (n, e) in all.into_iter().enumerate() {
            events.push((format!("{base}_{n:03}"), w.ws, r.id.as_str(), to_text(e.at), e.kind.clone(), e.actor.clone(), e.summary.clone()));
        }
    }
    insert(
        conn,
        "INSERT INTO referral_events (id, workspace_id, referral_id, at, kind, actor, summary) ",
        7,
        &events,
        |mut b, (id, ws, referral_id, at, kind, actor, summary)| {
            b.push_bind(id.as_str())
                .push_bind(ws.as_str())
                .push_bind(*referral_id)
                .push_bind(at.as_str())
                .push_bind(kind.as_str())
                .push_bind(actor.as_str())
                .push_bind(summary.as_str());
        },
    )
    .await?;

    let audits: Vec<_> =
        writes.iter().map(|w| (partnerloop_app::ids::audit_id(w.audit.at).into_string(), w.ws, w.audit.as_ref())).collect();
    insert(
        conn,
        "INSERT INTO audit_log (id, workspace_id, at, actor, action, entity, entity_id, before_state, after_state) ",
        9,
        &audits,
        |mut b, (id, ws, a)| crate::records::push_audit_row!(b, id.as_str(), ws.as_str(), a),
    )
    .await?;
    let pending: Vec<_> = audits.iter().filter(|(_, _, a)| partnerloop_app::notify::is_event(&a.action)).collect();
    insert(conn, "INSERT INTO pending_events (audit_id, workspace_id) ", 2, &pending, |mut b, (id, ws, _)| {
        b.push_bind(id.as_str()).push_bind(ws.as_str());
    })
    .await?;

    let names: Vec<_> = writes
        .iter()
        .filter(|w| w.referral.decision.outcome == Outcome::Approved)
        .map(|w| (w.ws, referral_key(w.referral.partner_id.as_str(), w.referral.id.as_str()), w.referral.company_name.as_str()))
        .collect();
    insert(conn, "INSERT INTO name_index_log (workspace_id, entity_id, name, active) ", 4, &names, |mut b, (ws, key, name)| {
        b.push_bind(ws.as_str()).push_bind(key.as_str()).push_bind(*name).push_bind(true);
    })
    .await?;

    // A partner's first referral: the earliest in arrival order sets the
    // time (later ones would find it set), as one registration at a time.
    let mut seen = HashSet::new();
    let firsts: Vec<_> = writes
        .iter()
        .filter(|w| w.registration.first_referral && seen.insert((w.ws.as_str(), w.referral.partner_id.as_str())))
        .map(|w| (w.ws, w.referral.partner_id.as_str(), to_text(w.referral.created_at)))
        .collect();
    for chunk in firsts.chunks(MAX_PARAMS / 3) {
        let mut q = QueryBuilder::<Sqlite>::new("WITH firsts (workspace_id, partner_id, at) AS (");
        q.push_values(chunk, |mut b, (ws, partner, at)| {
            b.push_bind(ws.as_str()).push_bind(*partner).push_bind(at.as_str());
        });
        q.push(
            ") UPDATE partners SET first_referral_at = firsts.at FROM firsts \
             WHERE partners.workspace_id = firsts.workspace_id AND partners.id = firsts.partner_id AND partners.first_referral_at IS NULL",
        );
        q.build().execute(&mut *conn).await.map_err(map)?;
    }
    Ok(())
}
