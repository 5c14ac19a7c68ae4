//! Benchmarks of the Conduit SDK, run by `cargo xtask bench`.
//!
//! The `conduit-bench` binary measures, on an in-process loopback server
//! ([`server`]), the SDK's `custom_tools().run()` against the same request
//! written by hand with reqwest ([`baseline`]), times code generation, runs
//! the rate-limit gate under a limiting server ([`limits`]), a fleet of
//! processes sharing it through Redis ([`fleet`]) and how soon calls
//! recover once 429s stop ([`recovery`]). It prints one JSON object; the
//! xtask turns it into `BENCHMARKS.md`.

pub mod allocs;
pub mod baseline;
pub mod fleet;
pub mod limits;
pub mod measure;
pub mod recovery;
pub mod server;
pub mod stats;

#[cfg(test)]
mod tests {
    use crate::baseline::RunData;
    use crate::measure::{Clients, PARAMETER, TOKEN, TOOL_ID, Which, synthetic_spec};
    use crate::server::Server;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sdk_and_baseline_send_the_same_request_and_decode_the_same_body() {
        let server = Server::start().unwrap();
        let clients = Clients::new(&server.url()).unwrap();
        server.set_recording(true);
        let sdk = clients.sdk_run().await.unwrap();
        let base = clients.baseline_run().await.unwrap();
        let seen = server.recorded_at_least(2).await;

        let from_sdk = RunData {
            success: sdk.success(),
            message: sdk.message().map(str::to_owned),
            result: sdk.result().clone(),
            error: sdk.error().map(str::to_owned),
            logs: sdk.logs().map(str::to_owned),
            run_time_ms: sdk.run_time_ms(),
        };
        assert_eq!(from_sdk, base);
        assert!(base.success);
        assert_eq!(base.result["rawData"]["status"], "shipped");

        assert_eq!(seen.len(), 2);
        let path = format!("/v1/custom-tools/{TOOL_ID}/run");
        let body = serde_json::json!({ "parameters": { PARAMETER.0: PARAMETER.1 } });
        for request in &seen {
            assert_eq!(request.status, 200);
            assert_eq!(request.method, "POST");
            assert_eq!(request.path, path);
            assert_eq!(
                request.authorization.as_deref(),
                Some(format!("Bearer {TOKEN}").as_str())
            );
            assert_eq!(request.content_type.as_deref(), Some("application/json"));
            let sent: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(sent, body);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_throttled_request_is_answered_429_then_200() {
        let server = Server::start().unwrap();
        let clients = Clients::new(&server.url()).unwrap();
        server.set_recording(true);
        server.throttle_next(1);
        // The baseline does not retry: it sees the 429 itself.
        let err = clients.baseline_run().await.unwrap_err();
        assert!(err.contains("429"), "{err}");
        clients.baseline_run().await.unwrap();
        let statuses: Vec<u16> = server
            .recorded_at_least(2)
            .await
            .iter()
            .map(|s| s.status)
            .collect();
        assert_eq!(statuses, [429, 200]);
    }

    #[test]
    fn clients_are_found_by_their_report_name() {
        for which in Which::ALL {
            assert_eq!(Which::named(which.name()), Some(which));
        }
        assert_eq!(Which::named("reqwest"), None);
    }

    #[test]
    fn synthetic_specs_clone_the_vendored_operation() {
        let vendored = serde_json::json!({
            "openapi": "3.0.0",
            "paths": {
                "/v1/custom-tools/{id}/run": { "post": {
                    "operationId": "runCustomTool",
                    "responses": { "404": { "description": "x" } }
                } },
                "/v1/tickets": { "get": { "operationId": "listTickets" } }
            }
        });
        let doc = synthetic_spec(&vendored, 3).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 3);
        let op = &doc["paths"]["/v1/bench2/{id}/run"]["post"];
        assert_eq!(op["operationId"], "benchOp2");
        assert_eq!(op["responses"]["404"]["description"], "x");
        assert_eq!(doc["openapi"], "3.0.0");
    }
}
