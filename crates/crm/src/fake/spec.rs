//! Request-body validation against HubSpot's published OpenAPI documents
//! (copies in `crates/crm/specs/hubspot/`, embedded at build time).
//!
//! Each operation's request-body schema becomes a JSON Schema document:
//! `{"allOf": [<the body schema>], "components": <the spec's components>}`
//! so that `#/components/schemas/…` references resolve inside it. OpenAPI
//! 3.0 is JSON Schema draft 4 plus a few keywords; the one that changes
//! meaning is `nullable: true`, rewritten to `type: [T, "null"]`.
//! A path matches the operation whose template fits it with the fewest
//! `{parameters}`, so `…/companies/search` is search, not `{companyId}`.

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value, json};

const SPECS: [&str; 6] = [
    include_str!("../../specs/hubspot/CRM_Companies_Rollouts_424_v3_companies.json"),
    include_str!("../../specs/hubspot/CRM_Contacts_Rollouts_424_v3_contacts.json"),
    include_str!("../../specs/hubspot/CRM_Deals_Rollouts_424_v3_deals.json"),
    include_str!("../../specs/hubspot/CRM_Notes_Rollouts_424_v3_notes.json"),
    include_str!("../../specs/hubspot/CRM_Associations_Rollouts_130902_v4_associations.json"),
    include_str!("../../specs/hubspot/CRM_Pipelines_Rollouts_145896_v3_pipelines.json"),
];

struct Operation {
    method: String,
    template: Vec<String>,
    params: usize,
    /// `None`: the operation takes no body.
    body: Option<Validator>,
}

/// Every operation of the embedded HubSpot specs, with body validators.
pub struct SpecValidator {
    operations: Vec<Operation>,
}

impl SpecValidator {
    pub fn hubspot() -> Self {
        let mut operations = Vec::new();
        for text in SPECS {
            let spec: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("an embedded HubSpot spec is not JSON: {e}"));
            let components = openapi_to_json_schema(spec.get("components").cloned().unwrap_or(json!({})));
            for (path, item) in spec.get("paths").and_then(Value::as_object).into_iter().flatten() {
                for (method, op) in item.as_object().into_iter().flatten() {
                    if !matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                        continue;
                    }
                    let body = op.pointer("/requestBody/content/application~1json/schema").map(|schema| {
                        let document = json!({"allOf": [openapi_to_json_schema(schema.clone())], "components": components});
                        jsonschema::options()
                            .with_draft(Draft::Draft4)
                            .build(&document)
                            .unwrap_or_else(|e| panic!("the HubSpot schema of {method} {path} does not compile: {e}"))
                    });
                    let template: Vec<String> = path.trim_matches('/').split('/').map(str::to_string).collect();
                    let params = template.iter().filter(|s| s.starts_with('{')).count();
                    operations.push(Operation { method: method.to_ascii_uppercase(), template, params, body });
                }
            }
        }
        Self { operations }
    }

    /// The spec's path template for a request, e.g. `/crm/v3/objects/companies/{companyId}`.
    pub fn template(&self, method: &str, path: &str) -> Option<String> {
        self.find(method, path).map(|op| format!("/{}", op.template.join("/")))
    }

    fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method) && op.template.len() == segments.len())
            .filter(|op| op.template.iter().zip(&segments).all(|(t, s)| t.starts_with('{') || t == s))
            .min_by_key(|op| op.params)
    }

    /// Ok when the operation exists and the body (if any) fits its schema.
    pub fn validate(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(), Vec<String>> {
        let op = self.find(method, path).ok_or_else(|| vec![format!("no operation {method} {path} in HubSpot's spec")])?;
        match (&op.body, body) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(vec![format!("{method} {path} takes no request body")]),
            (Some(_), None) => Err(vec![format!("{method} {path} needs a request body")]),
            (Some(validator), Some(body)) => {
                let errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
                if errors.is_empty() { Ok(()) } else { Err(errors) }
            }
        }
    }
}

/// OpenAPI 3.0 schema → JSON Schema: `nullable: true` widens `type`.
pub fn openapi_to_json_schema(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let nullable = map.get("nullable").and_then(Value::as_bool) == Some(true);
            let mut out: Map<String, Value> =
                map.into_iter().filter(|(k, _)| k != "nullable").map(|(k, v)| (k, openapi_to_json_schema(v))).collect();
            if nullable && let Some(Value::String(t)) = out.get("type").cloned() {
                out.insert("type".into(), json!([t, "null"]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(openapi_to_json_schema).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_widens_the_type() {
        let schema = openapi_to_json_schema(json!({"properties": {"a": {"type": "string", "nullable": true}}}));
        assert_eq!(schema, json!({"properties": {"a": {"type": ["string", "null"]}}}));
    }

    #[test]
    fn search_is_matched_before_a_path_parameter() {
        let v = SpecValidator::hubspot();
        assert_eq!(v.template("POST", "/crm/v3/objects/companies/search").as_deref(), Some("/crm/v3/objects/companies/search"));
        assert_eq!(v.template("PATCH", "/crm/v3/objects/companies/12").as_deref(), Some("/crm/v3/objects/companies/{companyId}"));
        assert_eq!(v.template("POST", "/crm/v3/objects/widgets/12/x"), None);
    }
}
