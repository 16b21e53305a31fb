//! What the fake HubSpot does for each operation, once the request passed
//! auth, the rate limit and spec validation. Uniqueness as in HubSpot:
//! a contact's email, and a deal property defined with `hasUniqueValue`
//! (partnerloop's referral id) — a duplicate create answers 409.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::hubspot::HubState;
use super::hubspot_store::{HubAssociation, object_type};

type Answer = (StatusCode, Value);

fn error(status: StatusCode, category: &str, message: &str) -> Answer {
    (status, json!({"status": "error", "message": message, "correlationId": "fake", "category": category}))
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
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

pub(crate) fn route(state: &mut HubState, method: &Method, path: &str, query: &str, body: Option<&Value>) -> Answer {
    let now = Timestamp::now();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let empty = json!({});
    let body = body.unwrap_or(&empty);
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["crm", "v3", "properties", t, name]) => {
            match object_type(t).and_then(|k| state.property_defs.get(k)).and_then(|d| d.get(*name)) {
                Some(def) => (StatusCode::OK, def.clone()),
                None => error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", &format!("property {name} does not exist")),
            }
        }
        ("POST", ["crm", "v3", "properties", t]) => {
            let Some(kind) = object_type(t) else { return error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "unknown object type") };
            let name = body.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            let defs = state.property_defs.entry(kind.to_string()).or_default();
            if defs.contains_key(&name) {
                return error(StatusCode::CONFLICT, "OBJECT_ALREADY_EXISTS", &format!("property {name} already exists"));
            }
            defs.insert(name, body.clone());
            (StatusCode::CREATED, body.clone())
        }
        ("POST", ["crm", "v3", "objects", t, "batch", "upsert"]) => match object_type(t) {
            Some(kind) => upsert(state, kind, body, now),
            None => error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "unknown object type"),
        },
        ("GET", ["crm", "v3", "pipelines", "deals"]) => (StatusCode::OK, pipelines()),
        ("POST", ["crm", "v3", "objects", t]) => match object_type(t) {
            Some(kind) => create(state, kind, body, now),
            None => error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "unknown object type"),
        },
        ("POST", ["crm", "v3", "objects", t, "search"]) => {
            match object_type(t).map(|k| state.objects.search(k, body, now, state.search_lag)) {
                Some(Ok(answer)) => (StatusCode::OK, answer),
                Some(Err(message)) => error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &message),
                None => error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "unknown object type"),
            }
        }
        ("POST", ["crm", "v3", "objects", t, "batch", "read"]) => {
            let kind = object_type(t).unwrap_or("none");
            let results: Vec<Value> = body
                .get("inputs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| i.get("id").and_then(Value::as_str))
                .filter_map(|id| state.objects.get(kind, id).map(|o| o.json()))
                .collect();
            let at = super::hubspot_store::iso(now);
            (StatusCode::OK, json!({"status": "COMPLETE", "results": results, "startedAt": at, "completedAt": at}))
        }
        ("GET", ["crm", "v3", "objects", t]) => {
            let kind = object_type(t).unwrap_or("none");
            let limit = query_param(query, "limit").and_then(|l| l.parse().ok()).unwrap_or(10usize).min(100);
            let after = query_param(query, "after").and_then(|a| decode(a).parse().ok()).unwrap_or(0u64);
            let with_assoc = query_param(query, "associations").map(decode);
            let (page, next) = state.objects.list(kind, after, limit);
            let results: Vec<Value> = page
                .iter()
                .map(|o| {
                    let mut v = o.json();
                    if let Some(to) = with_assoc.as_deref().and_then(object_type) {
                        let linked: Vec<Value> = o
                            .associations
                            .iter()
                            .filter(|a| a.to_type == to)
                            .map(|a| json!({"id": a.to_id, "type": format!("deal_to_{}", to.trim_end_matches('s'))}))
                            .collect();
                        if !linked.is_empty() {
                            v["associations"] = json!({to: {"results": linked}});
                        }
                    }
                    v
                })
                .collect();
            let mut answer = json!({"results": results});
            if let Some(next) = next {
                answer["paging"] = json!({"next": {"after": next.to_string(), "link": format!("/crm/v3/objects/{t}?after={next}")}});
            }
            (StatusCode::OK, answer)
        }
        ("GET", ["crm", "v3", "objects", t, id]) => {
            let kind = object_type(t).unwrap_or("none");
            let id = decode(id);
            let found = match query_param(query, "idProperty") {
                Some(property) => state.objects.find_by(kind, property, &id),
                None => state.objects.get(kind, &id),
            };
            match found {
                Some(o) => (StatusCode::OK, o.json()),
                None => error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "resource not found"),
            }
        }
        ("PATCH", ["crm", "v3", "objects", t, id]) => {
            let kind = object_type(t).unwrap_or("none");
            let props = body.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
            match state.objects.update(kind, id, &props, now) {
                Some(o) => (StatusCode::OK, o.json()),
                None => error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "resource not found"),
            }
        }
        ("GET", ["crm", "v4", "objects", from, from_id, "associations", to]) => {
            let (Some(from), Some(to)) = (object_type(from), object_type(to)) else {
                return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "unknown object type");
            };
            let Some(object) = state.objects.get(from, from_id) else {
                return error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "resource not found");
            };
            // Associations are stored on the side that made them: look both ways.
            let mut linked: Vec<(String, u32)> =
                object.associations.iter().filter(|a| a.to_type == to).map(|a| (a.to_id.clone(), a.type_id)).collect();
            for other in state.objects.all(to) {
                for a in other.associations.iter().filter(|a| a.to_type == from && a.to_id == *from_id) {
                    linked.push((other.id.clone(), a.type_id));
                }
            }
            let limit = query_param(query, "limit").and_then(|l| l.parse().ok()).unwrap_or(500usize).min(500);
            let after = query_param(query, "after").and_then(|a| a.parse().ok()).unwrap_or(0usize);
            let results: Vec<Value> = linked
                .iter()
                .skip(after)
                .take(limit)
                .map(|(id, type_id)| json!({"toObjectId": id, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": null}]}))
                .collect();
            let mut answer = json!({"results": results});
            if after + limit < linked.len() {
                answer["paging"] = json!({"next": {"after": (after + limit).to_string()}});
            }
            (StatusCode::OK, answer)
        }
        ("PUT", ["crm", "v4", "objects", from, from_id, "associations", "default", to, to_id]) => {
            let (Some(from), Some(to)) = (object_type(from), object_type(to)) else {
                return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "unknown object type");
            };
            if state.objects.get(to, to_id).is_none() {
                return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "target does not exist");
            }
            let Some(object) = state.objects.get_mut(from, from_id) else {
                return error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "resource not found");
            };
            let type_id = match (from, to) {
                ("deals", "companies") => 341,
                ("deals", "contacts") => 3,
                _ => 0,
            };
            if !object.associations.iter().any(|a| a.to_type == to && a.to_id == *to_id) {
                object.associations.push(HubAssociation {
                    to_type: to.into(),
                    to_id: to_id.to_string(),
                    type_id,
                    category: "HUBSPOT_DEFINED".into(),
                });
            }
            let at = super::hubspot_store::iso(now);
            (StatusCode::OK, json!({"status": "COMPLETE", "results": [], "startedAt": at, "completedAt": at}))
        }
        _ => error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", &format!("the fake does not implement {method} {path}")),
    }
}

fn create(state: &mut HubState, kind: &'static str, body: &Value, now: Timestamp) -> Answer {
    let properties: BTreeMap<String, String> = body
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    if kind == "contacts"
        && let Some(email) = properties.get("email")
        && let Some(existing) = state.objects.find_by("contacts", "email", email)
    {
        return error(StatusCode::CONFLICT, "CONFLICT", &format!("Contact already exists. Existing ID: {}", existing.id));
    }
    for name in unique_properties(state, kind) {
        if let Some(value) = properties.get(&name)
            && state.objects.find_by(kind, &name, value).is_some()
        {
            return error(StatusCode::CONFLICT, "CONFLICT", &format!("An object with {name}={value} already exists"));
        }
    }
    let mut associations = Vec::new();
    for a in body.get("associations").and_then(Value::as_array).into_iter().flatten() {
        let to_id = a.pointer("/to/id").and_then(Value::as_str).unwrap_or_default().to_string();
        for t in a.get("types").and_then(Value::as_array).into_iter().flatten() {
            let type_id = t.get("associationTypeId").and_then(Value::as_u64).unwrap_or_default() as u32;
            let Some(to_type) = association_target(kind, type_id) else {
                return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &format!("association type {type_id} does not start at {kind}"));
            };
            if state.objects.get(to_type, &to_id).is_none() {
                return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &format!("{to_type} {to_id} does not exist"));
            }
            let category = t.get("associationCategory").and_then(Value::as_str).unwrap_or_default().to_string();
            associations.push(HubAssociation { to_type: to_type.into(), to_id: to_id.clone(), type_id, category });
        }
    }
    let object = state.objects.create(kind, properties, associations, now);
    (StatusCode::CREATED, object.json())
}

fn unique_properties(state: &HubState, kind: &str) -> Vec<String> {
    state
        .property_defs
        .get(kind)
        .into_iter()
        .flatten()
        .filter(|(_, def)| def.get("hasUniqueValue").and_then(Value::as_bool) == Some(true))
        .map(|(name, _)| name.clone())
        .collect()
}

/// `batch/upsert` by a unique property: update the holder of the value,
/// or create an object carrying it.
fn upsert(state: &mut HubState, kind: &'static str, body: &Value, now: Timestamp) -> Answer {
    let unique = unique_properties(state, kind);
    let mut results = Vec::new();
    for input in body.get("inputs").and_then(Value::as_array).into_iter().flatten() {
        let id = input.get("id").and_then(Value::as_str).unwrap_or_default();
        let Some(id_property) = input.get("idProperty").and_then(Value::as_str) else {
            return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "the fake upserts by idProperty only");
        };
        if !unique.iter().any(|u| u == id_property) {
            return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &format!("{id_property} is not a unique property of {kind}"));
        }
        let properties = input.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        let existing = state.objects.find_by(kind, id_property, id).map(|o| o.id.clone());
        let (object, new) = match existing {
            Some(existing) => (state.objects.update(kind, &existing, &properties, now), false),
            None => {
                let mut props: BTreeMap<String, String> =
                    properties.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect();
                props.insert(id_property.to_string(), id.to_string());
                (Some(state.objects.create(kind, props, Vec::new(), now)), true)
            }
        };
        if let Some(object) = object {
            let mut v = object.json();
            v["new"] = Value::Bool(new);
            results.push(v);
        }
    }
    let at = super::hubspot_store::iso(now);
    (StatusCode::OK, json!({"status": "COMPLETE", "results": results, "startedAt": at, "completedAt": at}))
}

/// HUBSPOT_DEFINED association types the fake knows: (from, id) → to.
fn association_target(from: &str, type_id: u32) -> Option<&'static str> {
    match (from, type_id) {
        ("notes", 214) | ("contacts", 4) | ("companies", 342) => Some("deals"),
        ("notes", 202) | ("deals", 3) | ("companies", 280) => Some("contacts"),
        ("notes", 190) | ("deals", 5) | ("deals", 341) | ("contacts", 279) | ("contacts", 1) => Some("companies"),
        _ => None,
    }
}

fn pipelines() -> Value {
    let stages = [
        ("appointmentscheduled", "Appointment Scheduled", "0.2", "false"),
        ("qualifiedtobuy", "Qualified To Buy", "0.4", "false"),
        ("presentationscheduled", "Presentation Scheduled", "0.6", "false"),
        ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", "false"),
        ("contractsent", "Contract Sent", "0.9", "false"),
        ("closedwon", "Closed Won", "1.0", "true"),
        ("closedlost", "Closed Lost", "0.0", "true"),
    ];
    let at = "2026-01-01T00:00:00.000Z";
    let stages: Vec<Value> = stages
        .iter()
        .enumerate()
        .map(|(i, (id, label, probability, closed))| {
            json!({"id": id, "label": label, "displayOrder": i, "archived": false, "createdAt": at, "updatedAt": at,
                   "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT", "metadata": {"isClosed": closed, "probability": probability}})
        })
        .collect();
    json!({"results": [{"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "archived": false,
                        "createdAt": at, "updatedAt": at, "stages": stages}]})
}
