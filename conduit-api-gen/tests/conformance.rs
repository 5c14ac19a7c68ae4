//! The raw client against Prism serving the vendored spec: Prism checks each
//! request (path, auth header, body) against the spec and answers with the
//! spec's examples, so these prove both directions conform.
//!
//! Run by `cargo xtask test`, which starts Prism and sets `CONDUIT_PRISM_URL`.

use conduit_api_gen::{Client, Error, Hooks, types};

fn prism_url() -> String {
    std::env::var("CONDUIT_PRISM_URL")
        .expect("CONDUIT_PRISM_URL is unset: run these through `cargo xtask test`")
}

fn client(prefer_code: Option<u16>, token: Option<&str>) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if let Some(code) = prefer_code {
        headers.insert("prefer", format!("code={code}").parse().unwrap());
    }
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    Client::new_with_client(&prism_url(), http, Hooks::default())
}

fn body() -> types::RunCustomToolBody {
    let mut parameters = serde_json::Map::new();
    parameters.insert("order_id".into(), "ord_12345".into());
    types::RunCustomToolBody {
        parameters,
        workspace_id: Some("j57demo8f8x7c9v0n2q4r6t8y1u3i5o".into()),
    }
}

#[tokio::test]
#[ignore = "needs Prism: run through `cargo xtask test`"]
async fn run_custom_tool_conforms_and_decodes_the_example() {
    let response = client(None, Some("test-token"))
        .run_custom_tool()
        .id("kg77c0dy0mgdpzmqz6tesry8w184002s")
        .body(body())
        .send()
        .await
        .expect("Prism accepted the request");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("sl-violations").is_none());
    let data = &response.data;
    assert!(data.success);
    assert_eq!(data.result["rawData"]["status"], "shipped");
}

#[tokio::test]
#[ignore = "needs Prism: run through `cargo xtask test`"]
async fn every_documented_error_status_decodes_into_api_error() {
    for code in [400u16, 401, 403, 404, 429] {
        let result = client(Some(code), Some("test-token"))
            .run_custom_tool()
            .id("kg77c0dy0mgdpzmqz6tesry8w184002s")
            .body(body())
            .send()
            .await;
        match result {
            Err(Error::ErrorResponse(e)) => {
                assert_eq!(e.status().as_u16(), code);
                assert_eq!(e.error, "Invalid workspace id", "status {code}");
            }
            other => panic!("status {code}: expected ErrorResponse, got {other:?}"),
        }
    }
}

#[tokio::test]
#[ignore = "needs Prism: run through `cargo xtask test`"]
async fn prism_rejects_a_request_without_the_bearer_token() {
    // Proves Prism validates security: the passing tests above are not vacuous.
    let result = client(None, None)
        .run_custom_tool()
        .id("kg77c0dy0mgdpzmqz6tesry8w184002s")
        .body(body())
        .send()
        .await;
    match result {
        Err(e) => assert_eq!(e.status().map(|s| s.as_u16()), Some(401)),
        Ok(r) => panic!("Prism accepted an unauthenticated request: {r:?}"),
    }
}
