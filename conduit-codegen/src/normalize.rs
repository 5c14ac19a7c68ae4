//! Rewrites applied at generation time, so that progenitor generates what the
//! spec means. The vendored file is never edited by hand or by these.
//!
//! Why each exists:
//! - [`inline_response_refs`]: the next rewrite must see every response's
//!   schema, including responses shared through `components.responses`.
//! - [`hoist_error_schemas`]: progenitor names every inline response schema of
//!   an operation `<Op>Response`, so the inline `{error: string}` bodies of the
//!   4xx responses silently become the *success* type and a real 404 body
//!   fails to decode. Moving each inline error schema into
//!   `components.schemas` (one component per distinct shape) gives errors
//!   their own type. Progenitor also requires one error type per operation;
//!   an operation whose error shapes differ gets untyped JSON errors instead.

use serde_json::{Map, Value, json};

use crate::json::{METHODS, ensure_object};

/// Applies every rewrite, returning a line per change for logs.
pub fn normalize(doc: &mut Value) -> Vec<String> {
    let mut notes = inline_response_refs(doc);
    notes.extend(hoist_error_schemas(doc));
    notes
}

/// Replaces `$ref`s to `components.responses` in operations by their target.
pub fn inline_response_refs(doc: &mut Value) -> Vec<String> {
    let shared = doc["components"]["responses"].clone();
    let mut notes = Vec::new();
    for (label, op) in operations_mut(doc) {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            let Some(target) = response["$ref"].as_str() else {
                continue;
            };
            let Some(name) = target.strip_prefix("#/components/responses/") else {
                continue;
            };
            if let Some(resolved) = shared.get(name) {
                notes.push(format!("{label} {status}: inlined response {name}"));
                *response = resolved.clone();
            }
        }
    }
    notes
}

/// Moves inline JSON schemas of non-2xx responses into `components.schemas`,
/// sharing one component among identical shapes.
pub fn hoist_error_schemas(doc: &mut Value) -> Vec<String> {
    let mut schemas = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut notes = Vec::new();
    for (label, op) in operations_mut(doc) {
        let pascal = pascal_case(op["operationId"].as_str().unwrap_or(&label));
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        let mut used = Vec::new();
        for (status, response) in responses.iter_mut() {
            if status.starts_with('2') {
                continue;
            }
            let Some(schema) = json_schema_mut(response) else {
                continue;
            };
            if schema.get("$ref").is_none() {
                let name = component_for(&mut schemas, schema, &pascal, status);
                notes.push(format!(
                    "{label} {status}: error body is #/components/schemas/{name}"
                ));
                *schema = json!({ "$ref": format!("#/components/schemas/{name}") });
            }
            if !used.contains(schema) {
                used.push(schema.clone());
            }
        }
        if used.len() > 1 {
            notes.push(format!(
                "{label}: error bodies differ in shape; typed as any JSON"
            ));
            for (status, response) in responses.iter_mut() {
                if let Some(schema) = json_schema_mut(response).filter(|_| !status.starts_with('2'))
                {
                    *schema = json!({});
                }
            }
        }
    }
    if !schemas.is_empty() {
        let components = ensure_object(&mut doc["components"]);
        components.insert("schemas".into(), Value::Object(schemas));
    }
    notes
}

/// The component name for `schema`: an existing one of the same shape, or a
/// new one (`ApiError` first, then names from the operation).
fn component_for(
    schemas: &mut Map<String, Value>,
    schema: &Value,
    op: &str,
    status: &str,
) -> String {
    let wanted = shape(schema);
    if let Some((name, _)) = schemas.iter().find(|(_, s)| shape(s) == wanted) {
        return name.clone();
    }
    let candidates = [
        "ApiError".to_owned(),
        format!("{op}Error"),
        format!("{op}Error{status}"),
    ];
    let name = candidates
        .into_iter()
        .chain((2..).map(|n| format!("{op}Error{status}_{n}")))
        .find(|n| !schemas.contains_key(n))
        .expect("an unused name exists");
    schemas.insert(name.clone(), schema.clone());
    name
}

/// A schema without its documentation, for comparing shapes.
fn shape(schema: &Value) -> Value {
    let Some(fields) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (k, v) in fields {
        let v = match k.as_str() {
            "description" | "example" | "examples" | "title" | "externalDocs" => continue,
            "properties" => Value::Object(
                v.as_object()
                    .map(|props| props.iter().map(|(n, s)| (n.clone(), shape(s))).collect())
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" | "not" => shape(v),
            "allOf" | "oneOf" | "anyOf" => Value::Array(
                v.as_array()
                    .map(|a| a.iter().map(shape).collect())
                    .unwrap_or_default(),
            ),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

fn json_schema_mut(response: &mut Value) -> Option<&mut Value> {
    let content = response.get_mut("content")?.as_object_mut()?;
    let (_, media) = content
        .iter_mut()
        .find(|(mt, _)| *mt == "application/json" || mt.starts_with("application/json;"))?;
    media.get_mut("schema")
}

/// Every operation object, labelled `METHOD /path`.
fn operations_mut(doc: &mut Value) -> Vec<(String, &mut Value)> {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    paths
        .iter_mut()
        .filter_map(|(path, item)| Some((path, item.as_object_mut()?)))
        .flat_map(|(path, item)| {
            item.iter_mut()
                .filter(|(m, _)| METHODS.contains(&m.as_str()))
                .map(move |(m, op)| (format!("{} {path}", m.to_ascii_uppercase()), op))
        })
        .collect()
}

/// `runCustomTool` / `run-custom_tool` → `RunCustomTool`.
fn pascal_case(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_response(description: &str) -> Value {
        json!({"description": description, "content": {"application/json": {"schema": {
            "type": "object", "description": "Standard error response.",
            "properties": {"error": {"type": "string"}}, "required": ["error"],
            "example": {"error": description}
        }}}})
    }

    fn doc_with(responses: Value) -> Value {
        json!({"openapi": "3.0.0", "paths": {"/v1/x/{id}": {"post": {
            "operationId": "runThing", "responses": responses
        }}}})
    }

    #[test]
    fn identical_inline_error_bodies_share_one_component() {
        let mut doc = doc_with(json!({
            "200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": error_response("Bad"),
            "404": error_response("Missing"),
        }));
        hoist_error_schemas(&mut doc);
        let responses = &doc["paths"]["/v1/x/{id}"]["post"]["responses"];
        let r = json!({"$ref": "#/components/schemas/ApiError"});
        assert_eq!(responses["400"]["content"]["application/json"]["schema"], r);
        assert_eq!(responses["404"]["content"]["application/json"]["schema"], r);
        // The success body stays inline and the component keeps its docs.
        assert_eq!(
            responses["200"]["content"]["application/json"]["schema"]["type"],
            "object"
        );
        let component = &doc["components"]["schemas"]["ApiError"];
        assert_eq!(component["properties"]["error"]["type"], "string");
        assert_eq!(component["description"], "Standard error response.");
    }

    #[test]
    fn an_existing_component_of_the_same_shape_is_reused() {
        let mut doc = doc_with(json!({"404": error_response("Missing")}));
        doc["components"] = json!({"schemas": {"Problem": {
            "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]
        }}});
        hoist_error_schemas(&mut doc);
        let schema = &doc["paths"]["/v1/x/{id}"]["post"]["responses"]["404"]["content"]["application/json"]
            ["schema"];
        assert_eq!(schema, &json!({"$ref": "#/components/schemas/Problem"}));
        assert!(doc["components"]["schemas"].get("ApiError").is_none());
    }

    #[test]
    fn differing_error_shapes_in_one_operation_become_untyped() {
        let mut other = error_response("Other");
        other["content"]["application/json"]["schema"]["properties"]["code"] =
            json!({"type": "integer"});
        let mut doc = doc_with(json!({"400": error_response("Bad"), "409": other}));
        let notes = hoist_error_schemas(&mut doc);
        let responses = &doc["paths"]["/v1/x/{id}"]["post"]["responses"];
        assert_eq!(
            responses["400"]["content"]["application/json"]["schema"],
            json!({})
        );
        assert_eq!(
            responses["409"]["content"]["application/json"]["schema"],
            json!({})
        );
        assert!(
            notes.iter().any(|n| n.contains("differ in shape")),
            "{notes:?}"
        );
    }

    #[test]
    fn shared_responses_are_inlined_then_hoisted() {
        let mut doc = doc_with(json!({"404": {"$ref": "#/components/responses/NotFound"}}));
        doc["components"] = json!({"responses": {"NotFound": error_response("Missing")}});
        normalize(&mut doc);
        let schema = &doc["paths"]["/v1/x/{id}"]["post"]["responses"]["404"]["content"]["application/json"]
            ["schema"];
        assert_eq!(schema, &json!({"$ref": "#/components/schemas/ApiError"}));
    }

    #[test]
    fn pascal_case_follows_operation_ids() {
        assert_eq!(pascal_case("runCustomTool"), "RunCustomTool");
        assert_eq!(pascal_case("list-kb_nodes"), "ListKbNodes");
    }
}
