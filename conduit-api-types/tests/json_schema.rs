//! With the `schemars` feature, the types describe themselves as JSON Schema
//! (without it they carry no derive, which the build checks).

use conduit_api_types::types;

#[test]
fn with_the_feature_the_types_describe_themselves_as_json_schema() {
    let schema = serde_json::to_value(schemars::schema_for!(types::RunCustomToolResponse)).unwrap();
    assert_eq!(schema["title"], "RunCustomToolResponse", "{schema}");
    assert!(schema["properties"]["data"].is_object(), "{schema}");
    let error = serde_json::to_value(schemars::schema_for!(types::ApiError)).unwrap();
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
}
