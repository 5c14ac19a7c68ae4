//! Folding reference pages into the vendored spec.
//!
//! Each page is a complete document holding one operation plus the shared
//! parts (info, tags, security schemes). Merging adds what is new and checks
//! that what is already there is defined identically: an operation (path and
//! method), a component, a tag or a top-level field that differs is a
//! conflict, and the whole merge is refused.
//!
//! A page may reference (`$ref`) a component another page defines, such as
//! a shared object kept once on a components page: references are checked
//! on the merged document, and one that points at nothing is refused, naming
//! the page that holds it.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::json::{METHODS, ensure_object};
use crate::{Error, Result, Source};

/// Merges `extras` into `base`, in order; the result or the first conflict.
pub fn merge(base: &Source, extras: &[Source]) -> Result<Value> {
    let mut merger = Merger {
        doc: base.doc.clone(),
        seen: Provenance {
            origins: HashMap::new(),
            base_name: &base.name,
        },
    };
    for extra in extras {
        merger.add(extra)?;
    }
    for source in std::iter::once(base).chain(extras) {
        if let Some(dangling) = local_refs(&source.doc)
            .into_iter()
            .find(|r| resolve(&merger.doc, r).is_none())
        {
            return Err(Error::Invalid(format!(
                "{}: `$ref: {dangling}` points at nothing in the merged spec",
                source.name
            )));
        }
    }
    Ok(merger.doc)
}

/// Every `$ref` to a place in the same document (`#/...`) under `value`.
fn local_refs(value: &Value) -> Vec<&str> {
    match value {
        Value::Object(map) => {
            let own = map.get("$ref").and_then(Value::as_str);
            own.filter(|r| r.starts_with("#/"))
                .into_iter()
                .chain(map.values().flat_map(local_refs))
                .collect()
        }
        Value::Array(items) => items.iter().flat_map(local_refs).collect(),
        _ => Vec::new(),
    }
}

/// What the local reference `#/a/b` points at in `doc`.
fn resolve<'d>(doc: &'d Value, reference: &str) -> Option<&'d Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

struct Merger<'a> {
    doc: Value,
    seen: Provenance<'a>,
}

struct Provenance<'a> {
    /// Which source defined each definition; absent means the base.
    origins: HashMap<String, &'a str>,
    base_name: &'a str,
}

impl<'a> Merger<'a> {
    fn add(&mut self, extra: &'a Source) -> Result<()> {
        let Some(fields) = extra.doc.as_object() else {
            return Err(Error::Invalid(format!(
                "{} is not a JSON object",
                extra.name
            )));
        };
        for (key, value) in fields {
            match key.as_str() {
                "paths" => {
                    for (path, item) in objects(value, &extra.name, "paths")? {
                        for (field, def) in objects(item, &extra.name, path)? {
                            let what = if METHODS.contains(&field.as_str()) {
                                format!("{} {path}", field.to_ascii_uppercase())
                            } else {
                                format!("paths.{path}.{field}")
                            };
                            let slot = entry(&mut self.doc, &["paths", path]);
                            self.seen.put(slot, field, def, what, &extra.name)?;
                        }
                    }
                }
                "components" => {
                    for (section, items) in objects(value, &extra.name, "components")? {
                        for (name, def) in objects(items, &extra.name, section)? {
                            let slot = entry(&mut self.doc, &["components", section]);
                            let what = format!("components.{section}.{name}");
                            self.seen.put(slot, name, def, what, &extra.name)?;
                        }
                    }
                }
                "tags" => self.add_tags(value, &extra.name)?,
                _ => {
                    let slot = self.doc.as_object_mut().expect("base is an object");
                    self.seen.put(slot, key, value, key.clone(), &extra.name)?;
                }
            }
        }
        Ok(())
    }

    fn add_tags(&mut self, tags: &Value, source: &'a str) -> Result<()> {
        let tags = tags
            .as_array()
            .ok_or_else(|| Error::Invalid(format!("{source}: `tags` is not a list")))?;
        for tag in tags {
            let name = tag["name"].as_str().unwrap_or_default().to_owned();
            let what = format!("tag {name}");
            let list = self
                .doc
                .as_object_mut()
                .expect("base is an object")
                .entry("tags")
                .or_insert_with(|| Value::Array(Vec::new()));
            let Some(list) = list.as_array_mut() else {
                return Err(Error::Invalid("the base's `tags` is not a list".into()));
            };
            match list.iter().find(|t| t["name"] == name.as_str()) {
                None => {
                    list.push(tag.clone());
                    self.seen.origins.insert(what, source);
                }
                Some(existing) if existing == tag => {}
                Some(existing) => return Err(self.seen.conflict(what, existing, tag, source)),
            }
        }
        Ok(())
    }
}

impl<'a> Provenance<'a> {
    fn put(
        &mut self,
        slot: &mut Map<String, Value>,
        key: &str,
        def: &Value,
        what: String,
        source: &'a str,
    ) -> Result<()> {
        match slot.get(key) {
            None => {
                slot.insert(key.to_owned(), def.clone());
                self.origins.insert(what, source);
                Ok(())
            }
            Some(existing) if existing == def => Ok(()),
            Some(existing) => {
                let existing = existing.clone();
                Err(self.conflict(what, &existing, def, source))
            }
        }
    }

    fn conflict(&self, what: String, existing: &Value, new: &Value, source: &str) -> Error {
        let existing_source = self.origins.get(&what).copied().unwrap_or(self.base_name);
        Error::Conflict {
            at: first_difference(existing, new, String::new()),
            what,
            existing_source: existing_source.to_owned(),
            new_source: source.to_owned(),
        }
    }
}

fn objects<'v>(value: &'v Value, source: &str, at: &str) -> Result<&'v Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| Error::Invalid(format!("{source}: `{at}` is not a mapping")))
}

/// The mapping at `path` below `doc`, created if absent.
fn entry<'d>(doc: &'d mut Value, path: &[&str]) -> &'d mut Map<String, Value> {
    let mut at = doc;
    for key in path {
        let map = ensure_object(at);
        at = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    ensure_object(at)
}

/// A JSON pointer to the first place where `a` and `b` differ.
fn first_difference(a: &Value, b: &Value, at: String) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if w == v => {}
                    Some(w) => return first_difference(v, w, format!("{at}/{k}")),
                    None => return format!("{at}/{k}"),
                }
            }
            let extra = y.keys().find(|k| !x.contains_key(*k));
            extra.map_or(at.clone(), |k| format!("{at}/{k}"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            let i = x.iter().zip(y).position(|(v, w)| v != w).unwrap_or(0);
            first_difference(&x[i], &y[i], format!("{at}/{i}"))
        }
        _ if at.is_empty() => "/".into(),
        _ => at,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn src(name: &str, doc: Value) -> Source {
        Source {
            name: name.into(),
            doc,
        }
    }

    fn page(path: &str, op_id: &str, summary: &str) -> Value {
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Conduit API", "version": "1.0.0"},
            "tags": [{"name": "meta", "description": "Meta."}],
            "paths": {path: {"get": {"operationId": op_id, "summary": summary, "responses": {}}}},
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}}
        })
    }

    #[test]
    fn adds_new_operations_and_keeps_shared_parts_once() {
        let base = src("vendored.yaml", page("/v1/a", "getA", "A"));
        let merged = merge(&base, &[src("b.md", page("/v1/b", "getB", "B"))]).unwrap();
        assert_eq!(merged["paths"]["/v1/a"]["get"]["operationId"], "getA");
        assert_eq!(merged["paths"]["/v1/b"]["get"]["operationId"], "getB");
        assert_eq!(merged["tags"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_second_method_on_an_existing_path_is_added() {
        let base = src("vendored.yaml", page("/v1/a", "getA", "A"));
        let mut extra = page("/v1/a", "deleteA", "A");
        let op = extra["paths"]["/v1/a"]["get"].take();
        extra["paths"]["/v1/a"] = json!({ "delete": op });
        let merged = merge(&base, &[src("d.md", extra)]).unwrap();
        assert!(merged["paths"]["/v1/a"]["get"].is_object());
        assert!(merged["paths"]["/v1/a"]["delete"].is_object());
    }

    #[test]
    fn identical_redefinitions_are_accepted() {
        let base = src("vendored.yaml", page("/v1/a", "getA", "A"));
        let merged = merge(&base, &[src("a.md", page("/v1/a", "getA", "A"))]).unwrap();
        assert_eq!(merged, base.doc);
    }

    #[test]
    fn a_conflicting_operation_names_both_sources_and_the_difference() {
        let base = src("openapi/conduit.yaml", page("/v1/a", "getA", "A"));
        let err = merge(&base, &[src("new.md", page("/v1/a", "getA", "changed"))]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Conflict { .. }));
        for part in ["GET /v1/a", "openapi/conduit.yaml", "new.md", "/summary"] {
            assert!(msg.contains(part), "{part} missing from: {msg}");
        }
    }

    #[test]
    fn a_conflict_between_two_new_sources_names_the_earlier_one() {
        let base = src("vendored.yaml", page("/v1/a", "getA", "A"));
        let mut second = page("/v1/c", "getC", "C");
        second["components"]["schemas"] = json!({"Thing": {"type": "string"}});
        let mut third = page("/v1/d", "getD", "D");
        third["components"]["schemas"] = json!({"Thing": {"type": "integer"}});
        let err = merge(&base, &[src("c.md", second), src("d.md", third)]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("components.schemas.Thing"), "{msg}");
        assert!(msg.contains("d.md differs from c.md"), "{msg}");
    }

    #[test]
    fn a_page_may_reference_a_component_another_page_defines() {
        let base = src("vendored.yaml", page("/v1/a", "getA", "A"));
        let components = src(
            "components.md",
            json!({"openapi": "3.0.0", "paths": {},
                   "components": {"schemas": {"Thing": {"type": "object"}}}}),
        );
        let mut user = page("/v1/b", "getB", "B");
        user["paths"]["/v1/b"]["get"]["responses"] = json!({"200": {"description": "ok",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}});
        // In either order: the check runs on the merged document.
        let user = src("b.md", user);
        for pages in [[components.clone(), user.clone()], [user, components]] {
            let merged = merge(&base, &pages).unwrap();
            assert_eq!(merged["components"]["schemas"]["Thing"]["type"], "object");
            assert!(merged["paths"]["/v1/b"]["get"].is_object());
        }
    }

    #[test]
    fn a_reference_to_nothing_is_refused_naming_its_page() {
        let base = src("vendored.yaml", page("/v1/a", "getA", "A"));
        let mut user = page("/v1/b", "getB", "B");
        user["paths"]["/v1/b"]["get"]["responses"] =
            json!({"404": {"$ref": "#/components/responses/Missing"}});
        let err = merge(&base, &[src("b.md", user)]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("b.md"), "{msg}");
        assert!(msg.contains("#/components/responses/Missing"), "{msg}");
    }

    #[test]
    fn a_conflicting_tag_is_refused() {
        let base = src("vendored.yaml", page("/v1/a", "getA", "A"));
        let mut other = page("/v1/b", "getB", "B");
        other["tags"][0]["description"] = json!("Different.");
        let err = merge(&base, &[src("b.md", other)]).unwrap_err();
        assert!(err.to_string().contains("tag meta"), "{err}");
    }
}
