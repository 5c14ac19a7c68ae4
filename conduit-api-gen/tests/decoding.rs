//! Every documented status of `runCustomTool` decodes into its documented
//! body: 200 into `RunCustomToolResponse`, each error into `ApiError`.

use conduit_api_gen::{Client, Error, Hooks, types};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn serve(status: u16, body: serde_json::Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/custom-tools/tool_1/run"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(&server)
        .await;
    server
}

async fn run(server: &MockServer) -> Result<types::RunCustomToolResponse, Error<types::ApiError>> {
    let client = Client::new(&server.uri(), Hooks::default());
    client
        .run_custom_tool()
        .id("tool_1")
        .body(types::RunCustomToolBody::default())
        .send()
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn status_200_decodes_the_run_result() {
    let server = serve(
        200,
        json!({"data": {"success": true, "message": "Order ord_12345 is shipped",
            "result": {"message": "Order ord_12345 is shipped", "rawData": {"status": "shipped"}},
            "error": null, "logs": null, "run_time_ms": 842}}),
    )
    .await;
    let data = run(&server).await.unwrap().data;
    assert!(data.success);
    assert_eq!(data.message.as_deref(), Some("Order ord_12345 is shipped"));
    assert_eq!(data.result["rawData"]["status"], "shipped");
    assert_eq!(data.error, None);
    assert_eq!(data.run_time_ms, 842.0);
}

#[tokio::test]
async fn status_200_with_a_failed_tool_is_still_a_response() {
    let server = serve(
        200,
        json!({"data": {"success": false, "message": null, "result": null,
            "error": "ReferenceError: x is not defined", "logs": "trace", "run_time_ms": 3.5}}),
    )
    .await;
    let data = run(&server).await.unwrap().data;
    assert!(!data.success);
    assert_eq!(
        data.error.as_deref(),
        Some("ReferenceError: x is not defined")
    );
    assert!(data.result.is_null());
}

async fn assert_error_status(status: u16, message: &str) {
    let server = serve(status, json!({ "error": message })).await;
    match run(&server).await {
        Err(Error::ErrorResponse(body)) => {
            assert_eq!(body.status().as_u16(), status);
            assert_eq!(body.error, message);
        }
        other => panic!("status {status}: expected ErrorResponse, got {other:?}"),
    }
}

#[tokio::test]
async fn status_400_decodes_the_error_body() {
    assert_error_status(400, "Invalid workspace id").await;
}

#[tokio::test]
async fn status_401_decodes_the_error_body() {
    assert_error_status(401, "Invalid API token").await;
}

#[tokio::test]
async fn status_403_decodes_the_error_body() {
    assert_error_status(403, "Token lacks write access").await;
}

#[tokio::test]
async fn status_404_decodes_the_error_body() {
    assert_error_status(404, "Custom tool not found").await;
}

#[tokio::test]
async fn status_429_decodes_the_error_body() {
    assert_error_status(429, "Rate limit exceeded").await;
}

#[tokio::test]
async fn an_undocumented_status_is_an_unexpected_response() {
    let server = serve(502, json!({"error": "bad gateway"})).await;
    match run(&server).await {
        Err(Error::UnexpectedResponse(r)) => assert_eq!(r.status().as_u16(), 502),
        other => panic!("expected UnexpectedResponse, got {other:?}"),
    }
}

#[test]
fn the_operation_table_matches_the_spec() {
    let op = conduit_api_gen::Operation::find("run_custom_tool").unwrap();
    assert_eq!(op.operation_id, "runCustomTool");
    assert_eq!(op.method, "POST");
    assert_eq!(op.path, "/v1/custom-tools/{id}/run");
}

#[test]
fn the_operation_table_is_sorted_for_lookup() {
    let ids: Vec<&str> = conduit_api_gen::OPERATIONS
        .iter()
        .map(|op| op.rust_method)
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    for op in conduit_api_gen::OPERATIONS {
        assert_eq!(conduit_api_gen::Operation::find(op.rust_method), Some(op));
    }
    assert_eq!(conduit_api_gen::Operation::find("no_such_operation"), None);
}
