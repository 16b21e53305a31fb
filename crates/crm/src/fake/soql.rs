//! Just enough SOQL for the fake Salesforce: `SELECT fields FROM Object
//! [WHERE a op b [AND …]] [ORDER BY field [ASC|DESC]] [LIMIT n]`, with
//! `=`, `!=`, `>`, `>=`, `<`, `<=` on strings ('quoted'), booleans,
//! numbers and datetimes, and `Account.Field` through `AccountId`.

use std::cmp::Ordering;

use jiff::Timestamp;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub fields: Vec<String>,
    pub object: String,
    pub conditions: Vec<(String, String, Value)>,
    pub order_by: Option<(String, bool)>,
    pub limit: Option<usize>,
}

pub fn parse(soql: &str) -> Result<Query, String> {
    let upper = soql.to_ascii_uppercase();
    let select = upper.find("SELECT ").ok_or("no SELECT")?;
    let from = upper.find(" FROM ").ok_or("no FROM")?;
    let fields = soql[select + 7..from].split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect();
    let rest = &soql[from + 6..];
    let rest_upper = rest.to_ascii_uppercase();
    let end_of = |kw: &str| rest_upper.find(kw);
    let where_at = end_of(" WHERE ");
    let order_at = end_of(" ORDER BY ");
    let limit_at = end_of(" LIMIT ");
    let object_end = [where_at, order_at, limit_at].into_iter().flatten().min().unwrap_or(rest.len());
    let object = rest[..object_end].trim().to_string();
    let mut conditions = Vec::new();
    if let Some(w) = where_at {
        let end = [order_at, limit_at].into_iter().flatten().filter(|i| *i > w).min().unwrap_or(rest.len());
        let clause = &rest[w + 7..end];
        for part in split_and(clause) {
            conditions.push(condition(part.trim())?);
        }
    }
    let order_by = order_at.map(|o| {
        let end = limit_at.filter(|l| *l > o).unwrap_or(rest.len());
        let words: Vec<&str> = rest[o + 10..end].split_whitespace().collect();
        (words.first().copied().unwrap_or("Id").to_string(), words.get(1).is_some_and(|d| d.eq_ignore_ascii_case("DESC")))
    });
    let limit = limit_at.and_then(|l| rest[l + 7..].trim().parse().ok());
    Ok(Query { fields, object, conditions, order_by, limit })
}

fn split_and(clause: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let upper = clause.to_ascii_uppercase();
    let mut start = 0;
    let mut search = 0;
    while let Some(i) = upper[search..].find(" AND ") {
        let at = search + i;
        let quotes = clause[start..at].matches('\'').count();
        if quotes.is_multiple_of(2) {
            parts.push(&clause[start..at]);
            start = at + 5;
        }
        search = at + 5;
    }
    parts.push(&clause[start..]);
    parts
}

fn condition(text: &str) -> Result<(String, String, Value), String> {
    for op in [">=", "<=", "!=", "=", ">", "<"] {
        if let Some(i) = text.find(op) {
            let field = text[..i].trim().to_string();
            let raw = text[i + op.len()..].trim();
            let value = if let Some(s) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                Value::String(s.replace("\\'", "'"))
            } else if raw.eq_ignore_ascii_case("true") || raw.eq_ignore_ascii_case("false") {
                Value::Bool(raw.eq_ignore_ascii_case("true"))
            } else if raw.eq_ignore_ascii_case("null") {
                Value::Null
            } else {
                Value::String(raw.to_string())
            };
            return Ok((field, op.to_string(), value));
        }
    }
    Err(format!("cannot read the condition '{text}'"))
}

/// Compares a record's value with a literal: datetimes and numbers as such.
pub fn compare(actual: &Value, literal: &Value) -> Option<Ordering> {
    match (actual, literal) {
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Number(a), Value::String(b)) => a.as_f64()?.partial_cmp(&b.parse::<f64>().ok()?),
        (Value::String(a), Value::String(b)) => match (time(a), time(b)) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => Some(a.cmp(b)),
        },
        _ => None,
    }
}

fn time(text: &str) -> Option<Timestamp> {
    let t = text.strip_suffix("+0000").map(|h| format!("{h}Z")).unwrap_or_else(|| text.to_string());
    t.parse().ok().filter(|_| text.contains('T'))
}

pub fn matches(record: &Map<String, Value>, conditions: &[(String, String, Value)]) -> bool {
    conditions.iter().all(|(field, op, literal)| {
        let actual = record.get(field).unwrap_or(&Value::Null);
        let Some(order) = compare(actual, literal) else { return op == "!=" };
        match op.as_str() {
            "=" => order.is_eq(),
            "!=" => order.is_ne(),
            ">" => order.is_gt(),
            ">=" => order.is_ge(),
            "<" => order.is_lt(),
            "<=" => order.is_le(),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connectors_queries_parse() {
        let q = parse("SELECT Id, StageName FROM Opportunity WHERE SystemModstamp >= 2026-11-01T00:00:00Z AND IsClosed = false ORDER BY SystemModstamp ASC LIMIT 5").unwrap();
        assert_eq!(q.fields, vec!["Id", "StageName"]);
        assert_eq!(q.object, "Opportunity");
        assert_eq!(q.conditions.len(), 2);
        assert_eq!(q.conditions[1], ("IsClosed".to_string(), "=".to_string(), Value::Bool(false)));
        assert_eq!(q.order_by, Some(("SystemModstamp".to_string(), false)));
        assert_eq!(q.limit, Some(5));
        let mut r = Map::new();
        r.insert("SystemModstamp".into(), Value::String("2026-11-02T00:00:00.000+0000".into()));
        r.insert("IsClosed".into(), Value::Bool(false));
        assert!(matches(&r, &q.conditions));
        r.insert("IsClosed".into(), Value::Bool(true));
        assert!(!matches(&r, &q.conditions));
    }
}
