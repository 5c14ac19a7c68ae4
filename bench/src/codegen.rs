//! Code generation time on the vendored spec (the whole API) and on a
//! synthetic spec of 500 operations.

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use crate::Config;
use crate::stats::{Summary, median, round};

/// Operations in the synthetic spec.
pub const SYNTHETIC_OPERATIONS: usize = 500;

/// The vendored spec with its run operation (`runCustomTool`) cloned `n`
/// times as `POST /v1/bench{i}/{id}/run` (`benchOp{i}`, the SDK's
/// `bench().op_{i}()`), in place of every
/// path, each with the same error bodies, path parameter and request body.
pub fn synthetic_spec(vendored: &Value, n: usize) -> Result<Value, String> {
    let paths = vendored["paths"]
        .as_object()
        .ok_or("the vendored spec has no paths")?;
    let (method, operation) = paths
        .values()
        .filter_map(Value::as_object)
        .flat_map(|item| item.iter())
        .find(|(_, op)| op["operationId"] == "runCustomTool")
        .ok_or("the vendored spec has no runCustomTool operation")?;
    let mut new_paths = serde_json::Map::new();
    for i in 0..n {
        let mut op = operation.clone();
        op["operationId"] = json!(format!("benchOp{i}"));
        op["x-page"] = json!(format!("bench/op-{i}"));
        new_paths.insert(
            format!("/v1/bench{i}/{{id}}/run"),
            json!({ method.clone(): op }),
        );
    }
    let mut doc = vendored.clone();
    doc["paths"] = Value::Object(new_paths);
    Ok(doc)
}

/// The operations of a spec.
fn operations(doc: &Value) -> usize {
    doc["paths"].as_object().map_or(0, |paths| {
        paths
            .values()
            .filter_map(Value::as_object)
            .map(|item| {
                item.values()
                    .filter(|op| op.get("operationId").is_some())
                    .count()
            })
            .sum()
    })
}

/// `conduit_codegen::generate` timed on `doc`, `runs` times.
fn timed(name: &str, doc: &Value, runs: usize) -> Result<Value, String> {
    let mut times = Vec::new();
    let mut lines = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let generated =
            conduit_codegen::generate(doc).map_err(|e| format!("generate ({name}): {e}"))?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        lines = generated.code.lines().count() + generated.types.lines().count();
    }
    eprintln!(
        "  {name}: median {:.0} ms over {runs} run(s)",
        median(&times)
    );
    Ok(json!({
        "operations": operations(doc),
        "runs": runs,
        "generated_lines": lines,
        "ms": Summary::of(&times).to_json(),
        "median_ms": round(median(&times)),
    }))
}

/// Both timings.
pub fn codegen(spec_path: &Path, config: &Config) -> Result<Value, String> {
    let vendored = conduit_codegen::Source::load(spec_path)
        .map_err(|e| format!("{}: {e}", spec_path.display()))?
        .doc;
    let synthetic = synthetic_spec(&vendored, SYNTHETIC_OPERATIONS)?;
    Ok(json!({
        "spec": timed("the vendored spec", &vendored, config.codegen_runs)?,
        "synthetic_500": timed("500 operations", &synthetic, config.codegen_runs.div_ceil(2))?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_specs_clone_the_vendored_operation() {
        let vendored = json!({
            "openapi": "3.0.0",
            "paths": {
                "/v1/custom-tools/{id}/run": { "post": {
                    "operationId": "runCustomTool",
                    "responses": { "404": { "description": "x" } }
                } },
                "/v1/tickets": { "get": { "operationId": "listTickets" } }
            }
        });
        assert_eq!(operations(&vendored), 2);
        let doc = synthetic_spec(&vendored, 3).unwrap();
        assert_eq!(operations(&doc), 3);
        let op = &doc["paths"]["/v1/bench2/{id}/run"]["post"];
        assert_eq!(op["operationId"], "benchOp2");
        assert_eq!(op["x-page"], "bench/op-2");
        assert_eq!(op["responses"]["404"]["description"], "x");
        assert_eq!(doc["openapi"], "3.0.0");
    }
}
