//! The fake Salesforce's REST data API (`/services/data/vXX.X/…`).

use axum::http::{Method, StatusCode};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::hubspot::Violation;
use super::salesforce::{SfState, insert, modstamp};
use super::soql;

type Answer = (StatusCode, Value);

fn sf_error(status: StatusCode, code: &str, message: &str) -> Answer {
    (status, json!([{"message": message, "errorCode": code, "fields": []}]))
}

/// Writable fields per object, and the ones a create needs.
fn schema(object: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    match object {
        "Account" => Some((&["Name", "Website", "Type", "Prm_Domain__c"], &["Name"])),
        "Contact" => Some((&["Email", "FirstName", "LastName", "AccountId", "Prm_Email__c"], &["LastName"])),
        "Opportunity" => Some((
            &[
                "Name",
                "StageName",
                "CloseDate",
                "AccountId",
                "Amount",
                "LeadSource",
                "Prm_Referral_Id__c",
                "Prm_Partner_Name__c",
                "Prm_Partner_Id__c",
                "Prm_Partner_Sourced__c",
            ],
            &["Name", "StageName", "CloseDate"],
        )),
        "Task" => Some((&["WhatId", "Subject", "Description", "Status", "Priority", "ActivityDate", "Prm_Key__c"], &[])),
        _ => None,
    }
}

pub(crate) fn stage_is_closed(stage: &str) -> (bool, bool) {
    match stage {
        "Closed Won" => (true, true),
        "Closed Lost" => (true, false),
        _ => (false, false),
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a write body; a problem is recorded as a violation and answered 400.
fn check(s: &mut SfState, method: &Method, path: &str, object: &str, body: &Value, creating: bool) -> Result<Map<String, Value>, Answer> {
    let problem = |s: &mut SfState, code: &str, message: String| {
        s.violations.push(Violation {
            method: method.to_string(),
            path: path.to_string(),
            errors: vec![message.clone()],
            body: body.to_string(),
        });
        sf_error(StatusCode::BAD_REQUEST, code, &message)
    };
    let Some((fields, required)) = schema(object) else {
        return Err(problem(s, "NOT_FOUND", format!("sObject type '{object}' is not supported")));
    };
    let Some(map) = body.as_object() else { return Err(problem(s, "JSON_PARSER_ERROR", "the body is not a JSON object".into())) };
    if let Some(unknown) = map.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(problem(s, "INVALID_FIELD", format!("No such column '{unknown}' on sobject of type {object}")));
    }
    if let Some(amount) = map.get("Amount").filter(|a| !a.is_number() && !a.is_null()) {
        return Err(problem(s, "JSON_PARSER_ERROR", format!("Amount must be a number, got {amount}")));
    }
    if let Some(date) = map.get("CloseDate").filter(|d| d.as_str().and_then(|d| d.parse::<jiff::civil::Date>().ok()).is_none()) {
        return Err(problem(s, "JSON_PARSER_ERROR", format!("CloseDate must be a date, got {date}")));
    }
    if creating && let Some(missing) = required.iter().find(|r| map.get(**r).is_none_or(Value::is_null)) {
        return Err(problem(s, "REQUIRED_FIELD_MISSING", format!("Required fields are missing: [{missing}]")));
    }
    Ok(map.clone())
}

fn apply(record: &mut Map<String, Value>, fields: Map<String, Value>) {
    for (k, v) in fields {
        if k == "StageName" {
            let (closed, won) = stage_is_closed(v.as_str().unwrap_or_default());
            record.insert("IsClosed".into(), json!(closed));
            record.insert("IsWon".into(), json!(won));
        }
        record.insert(k, v);
    }
    record.insert("SystemModstamp".into(), json!(modstamp(Timestamp::now())));
}

pub(crate) fn data_route(s: &mut SfState, method: &Method, path: &str, query: &str, body: &[u8]) -> Answer {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let parsed: Value =
        if body.is_empty() { Value::Null } else { serde_json::from_slice(body).unwrap_or(Value::String("<not JSON>".into())) };
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["services", "data", _, "limits"]) => {
            (StatusCode::OK, json!({"DailyApiRequests": {"Max": s.api_max, "Remaining": s.api_max.saturating_sub(s.api_used)}}))
        }
        ("PATCH", ["services", "data", _, "sobjects", object, field, value]) => {
            let value = decode(value);
            let existing =
                s.records.get(*object).and_then(|rs| rs.iter().position(|r| r.get(*field).and_then(Value::as_str) == Some(value.as_str())));
            let fields = match check(s, method, path, object, &parsed, existing.is_none()) {
                Ok(f) => f,
                Err(answer) => return answer,
            };
            match existing {
                Some(i) => {
                    let record = &mut s.records.get_mut(*object).expect("object exists")[i];
                    apply(record, fields);
                    let id = record.get("Id").cloned().unwrap_or_default();
                    (StatusCode::OK, json!({"id": id, "success": true, "errors": [], "created": false}))
                }
                None => {
                    let mut record = Map::new();
                    record.insert((*field).to_string(), json!(value));
                    apply(&mut record, fields);
                    let id = insert(s, object, record);
                    (StatusCode::CREATED, json!({"id": id, "success": true, "errors": [], "created": true}))
                }
            }
        }
        ("PATCH", ["services", "data", _, "sobjects", object, id]) => {
            let fields = match check(s, method, path, object, &parsed, false) {
                Ok(f) => f,
                Err(answer) => return answer,
            };
            match s.records.get_mut(*object).and_then(|rs| rs.iter_mut().find(|r| r.get("Id").and_then(Value::as_str) == Some(*id))) {
                Some(record) => {
                    apply(record, fields);
                    (StatusCode::NO_CONTENT, Value::Null)
                }
                None => sf_error(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist"),
            }
        }
        ("GET", ["services", "data", _, "sobjects", object, field, value]) => {
            let value = decode(value);
            match s.records.get(*object).and_then(|rs| rs.iter().find(|r| r.get(*field).and_then(Value::as_str) == Some(value.as_str()))) {
                Some(r) => (StatusCode::OK, Value::Object(r.clone())),
                None => sf_error(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist"),
            }
        }
        ("GET", ["services", "data", version, "query"]) => {
            let Some(q) = query.split('&').find_map(|kv| kv.strip_prefix("q=")) else {
                return sf_error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", "no q");
            };
            match soql::parse(&decode(q)) {
                Ok(parsed) => run(s, version, &parsed),
                Err(e) => sf_error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &e),
            }
        }
        ("GET", ["services", "data", version, "query", locator]) => match s.locators.get(*locator).cloned() {
            Some(rest) => page(s, version, rest),
            None => sf_error(StatusCode::NOT_FOUND, "INVALID_QUERY_LOCATOR", "invalid query locator"),
        },
        _ => sf_error(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("the fake does not implement {method} {path}")),
    }
}

fn run(s: &mut SfState, version: &str, q: &soql::Query) -> Answer {
    let all = s.records.get(&q.object).cloned().unwrap_or_default();
    let accounts = s.records.get("Account").cloned().unwrap_or_default();
    let mut hits: Vec<Map<String, Value>> = all.into_iter().filter(|r| soql::matches(r, &q.conditions)).collect();
    if let Some((field, descending)) = &q.order_by {
        hits.sort_by(|a, b| {
            let o = soql::compare(a.get(field).unwrap_or(&Value::Null), b.get(field).unwrap_or(&Value::Null))
                .unwrap_or(std::cmp::Ordering::Equal);
            if *descending { o.reverse() } else { o }
        });
    }
    if let Some(limit) = q.limit {
        hits.truncate(limit);
    }
    let projected: Vec<Map<String, Value>> = hits
        .iter()
        .map(|r| {
            let mut out = Map::new();
            let id = r.get("Id").and_then(Value::as_str).unwrap_or_default();
            out.insert(
                "attributes".into(),
                json!({"type": q.object, "url": format!("/services/data/{version}/sobjects/{}/{id}", q.object)}),
            );
            for f in &q.fields {
                if let Some(sub) = f.strip_prefix("Account.") {
                    let account = r
                        .get("AccountId")
                        .and_then(Value::as_str)
                        .and_then(|aid| accounts.iter().find(|a| a.get("Id").and_then(Value::as_str) == Some(aid)));
                    let entry = out
                        .entry("Account")
                        .or_insert_with(|| if account.is_some() { json!({"attributes": {"type": "Account"}}) } else { Value::Null });
                    if let (Some(a), Value::Object(m)) = (account, entry) {
                        m.insert(sub.to_string(), a.get(sub).cloned().unwrap_or(Value::Null));
                    }
                } else {
                    out.insert(f.clone(), r.get(f).cloned().unwrap_or(Value::Null));
                }
            }
            out
        })
        .collect();
    let total = projected.len();
    let (status, mut answer) = page(s, version, projected);
    answer["totalSize"] = json!(total);
    (status, answer)
}

fn page(s: &mut SfState, version: &str, mut records: Vec<Map<String, Value>>) -> Answer {
    let rest = if records.len() > s.page_size { records.split_off(s.page_size) } else { Vec::new() };
    let mut answer = json!({"totalSize": records.len() + rest.len(), "done": rest.is_empty(), "records": records});
    if !rest.is_empty() {
        let locator = format!("01gFAKE{:08}-{}", s.locators.len() + 1, s.page_size);
        answer["nextRecordsUrl"] = json!(format!("/services/data/{version}/query/{locator}"));
        s.locators.insert(locator, rest);
    }
    (StatusCode::OK, answer)
}
