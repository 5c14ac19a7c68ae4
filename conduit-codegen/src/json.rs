//! Small helpers over an OpenAPI document held as JSON, shared by the
//! rewrites and the merge.

use serde_json::{Map, Value};

/// The keys of a path item that are operations.
pub const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `value` as an object, replacing anything else with an empty one.
pub fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    value.as_object_mut().expect("just made an object")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ensure_object_keeps_objects_and_replaces_the_rest() {
        let mut v = json!({"a": 1});
        ensure_object(&mut v).insert("b".into(), json!(2));
        assert_eq!(v, json!({"a": 1, "b": 2}));
        let mut v = json!([1]);
        assert!(ensure_object(&mut v).is_empty());
        assert_eq!(v, json!({}));
    }
}
