//! The fake HubSpot's objects: companies, contacts, deals and notes with
//! string properties and associations, and the search/list semantics the
//! connector relies on (EQ, comparisons on numbers and datetimes,
//! CONTAINS_TOKEN, `associations.<type>` filters, string sorts, paging
//! by offset, the 10,000-result search window).

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use serde_json::{Value, json};

/// An association from an object to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubAssociation {
    /// `companies`, `contacts`, `deals`, `notes`.
    pub to_type: String,
    pub to_id: String,
    pub type_id: u32,
    pub category: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubObject {
    pub id: String,
    pub properties: BTreeMap<String, String>,
    pub associations: Vec<HubAssociation>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl HubObject {
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    pub fn json(&self) -> Value {
        json!({
            "id": self.id, "properties": self.properties,
            "createdAt": iso(self.created_at), "updatedAt": iso(self.updated_at), "archived": false,
        })
    }
}

pub fn iso(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `deals`, `companies`… from a path segment (`0-3` is deals).
pub fn object_type(segment: &str) -> Option<&'static str> {
    match segment {
        "companies" | "0-2" => Some("companies"),
        "contacts" | "0-1" => Some("contacts"),
        "deals" | "0-3" => Some("deals"),
        "notes" | "0-46" => Some("notes"),
        _ => None,
    }
}

#[derive(Default)]
pub struct Objects {
    by_type: HashMap<&'static str, BTreeMap<u64, HubObject>>,
    next_id: u64,
}

impl Objects {
    pub fn all(&self, kind: &str) -> Vec<HubObject> {
        self.by_type.get(kind).map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    pub fn count(&self, kind: &str) -> usize {
        self.by_type.get(kind).map_or(0, BTreeMap::len)
    }

    pub fn create(
        &mut self,
        kind: &'static str,
        mut properties: BTreeMap<String, String>,
        associations: Vec<HubAssociation>,
        now: Timestamp,
    ) -> HubObject {
        self.next_id += 1;
        let id = self.next_id;
        properties.insert("hs_object_id".into(), id.to_string());
        properties.insert("createdate".into(), iso(now));
        properties.insert("hs_lastmodifieddate".into(), iso(now));
        let object = HubObject { id: id.to_string(), properties, associations, created_at: now, updated_at: now };
        self.by_type.entry(kind).or_default().insert(id, object.clone());
        object
    }

    pub fn get(&self, kind: &str, id: &str) -> Option<&HubObject> {
        self.by_type.get(kind)?.get(&id.parse::<u64>().ok()?)
    }

    pub fn get_mut(&mut self, kind: &str, id: &str) -> Option<&mut HubObject> {
        self.by_type.get_mut(kind)?.get_mut(&id.parse::<u64>().ok()?)
    }

    /// Looks up by a property value (`?idProperty=`), case-insensitively.
    pub fn find_by(&self, kind: &str, property: &str, value: &str) -> Option<&HubObject> {
        self.by_type.get(kind)?.values().find(|o| o.prop(property).is_some_and(|v| v.eq_ignore_ascii_case(value)))
    }

    pub fn update(&mut self, kind: &str, id: &str, properties: &serde_json::Map<String, Value>, now: Timestamp) -> Option<HubObject> {
        let object = self.get_mut(kind, id)?;
        for (k, v) in properties {
            object.properties.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
        object.properties.insert("hs_lastmodifieddate".into(), iso(now));
        object.updated_at = now;
        Some(object.clone())
    }

    /// Ids after `after` (exclusive), at most `limit`, and whether more exist.
    pub fn list(&self, kind: &str, after: u64, limit: usize) -> (Vec<HubObject>, Option<u64>) {
        let Some(map) = self.by_type.get(kind) else { return (Vec::new(), None) };
        let mut page: Vec<HubObject> = map.range(after + 1..).take(limit + 1).map(|(_, o)| o.clone()).collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let next = if more { page.last().and_then(|o| o.id.parse().ok()) } else { None };
        (page, next)
    }

    pub fn search(&self, kind: &str, request: &Value, now: Timestamp, lag: std::time::Duration) -> Result<Value, String> {
        let limit = request.get("limit").and_then(Value::as_u64).unwrap_or(10).min(200) as usize;
        let after: usize =
            request.get("after").and_then(Value::as_str).unwrap_or("0").parse().map_err(|_| "after is not a number".to_string())?;
        if after + limit > 10_000 {
            return Err("search results are limited to 10,000".into());
        }
        let groups = request.get("filterGroups").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut hits: Vec<&HubObject> = self
            .by_type
            .get(kind)
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|o| now.duration_since(o.updated_at).unsigned_abs() >= lag)
            .filter(|o| {
                groups.is_empty()
                    || groups.iter().any(|g| g.get("filters").and_then(Value::as_array).into_iter().flatten().all(|f| matches(o, f)))
            })
            .collect();
        if let Some(sort) = request.get("sorts").and_then(Value::as_array).and_then(|s| s.first()).and_then(Value::as_str) {
            let (name, descending) = match sort.strip_prefix('-') {
                Some(name) => (name, true),
                None => (sort, false),
            };
            hits.sort_by(|a, b| {
                let order = compare(a.prop(name).unwrap_or_default(), b.prop(name).unwrap_or_default())
                    .then(a.id.len().cmp(&b.id.len()))
                    .then(a.id.cmp(&b.id));
                if descending { order.reverse() } else { order }
            });
        }
        let total = hits.len();
        let results: Vec<Value> = hits.iter().skip(after).take(limit).map(|o| o.json()).collect();
        let mut answer = json!({"total": total, "results": results});
        if after + limit < total {
            answer["paging"] = json!({"next": {"after": (after + limit).to_string()}});
        }
        Ok(answer)
    }
}

fn matches(object: &HubObject, filter: &Value) -> bool {
    let name = filter.get("propertyName").and_then(Value::as_str).unwrap_or_default();
    let operator = filter.get("operator").and_then(Value::as_str).unwrap_or_default();
    let value = filter.get("value").and_then(Value::as_str).unwrap_or_default();
    if let Some(to_type) = name.strip_prefix("associations.") {
        let to_type = object_type(to_type).or_else(|| object_type(&format!("{to_type}s"))).unwrap_or(to_type);
        let linked = object.associations.iter().any(|a| a.to_type == to_type && a.to_id == value);
        return match operator {
            "EQ" => linked,
            "NEQ" => !linked,
            _ => false,
        };
    }
    let actual = object.prop(name);
    match (operator, actual) {
        ("HAS_PROPERTY", a) => a.is_some_and(|a| !a.is_empty()),
        ("NOT_HAS_PROPERTY", a) => a.is_none_or(str::is_empty),
        (_, None) => false,
        ("EQ", Some(a)) => a.eq_ignore_ascii_case(value),
        ("NEQ", Some(a)) => !a.eq_ignore_ascii_case(value),
        ("GT", Some(a)) => compare(a, value).is_gt(),
        ("GTE", Some(a)) => compare(a, value).is_ge(),
        ("LT", Some(a)) => compare(a, value).is_lt(),
        ("LTE", Some(a)) => compare(a, value).is_le(),
        ("CONTAINS_TOKEN", Some(a)) => tokens(a).any(|t| t.eq_ignore_ascii_case(value)),
        ("NOT_CONTAINS_TOKEN", Some(a)) => !tokens(a).any(|t| t.eq_ignore_ascii_case(value)),
        _ => false,
    }
}

fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty())
}

/// Numbers and datetimes (ISO or epoch ms) compare as numbers.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    match (numeric(a), numeric(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

fn numeric(text: &str) -> Option<i128> {
    if let Ok(n) = text.parse::<i128>() {
        return Some(n);
    }
    text.parse::<Timestamp>().ok().map(|t| i128::from(t.as_millisecond()))
}
