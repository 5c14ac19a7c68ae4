//! The SDK's requests against Prism serving the vendored spec. Prism checks
//! the path, the bearer token and the body against the spec; a violation
//! turns into an error status and fails these tests.
//!
//! Run by `cargo xtask test`, which starts Prism and sets `CONDUIT_PRISM_URL`.

mod common;

use conduit_sdk::time::ManualTime;
use conduit_sdk::{Client, ErrorKind};

fn prism(prefer_code: Option<u16>) -> (Client, ManualTime) {
    let url = std::env::var("CONDUIT_PRISM_URL")
        .expect("CONDUIT_PRISM_URL is unset: run these through `cargo xtask test`");
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(code) = prefer_code {
        headers.insert("prefer", format!("code={code}").parse().unwrap());
    }
    let sleep = ManualTime::new();
    let client = Client::builder()
        .token("test-token")
        .base_url(url)
        .workspace_id("j57demo8f8x7c9v0n2q4r6t8y1u3i5o")
        .http_client(
            reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .unwrap(),
        )
        .manual_time(&sleep)
        .build()
        .unwrap();
    (client, sleep)
}

#[tokio::test]
#[ignore = "needs Prism: run through `cargo xtask test`"]
async fn run_conforms_and_decodes_the_documented_example() {
    let (client, _) = prism(None);
    let run = client
        .custom_tools()
        .run("kg77c0dy0mgdpzmqz6tesry8w184002s")
        .parameter("order_id", "ord_12345")
        .send()
        .await
        .expect("Prism accepted the SDK's request");
    assert!(run.success());
    assert_eq!(run.message(), Some("Order ord_12345 is shipped"));
    assert_eq!(run.run_time().as_millis(), 842);
    let raw: serde_json::Value = run.raw_data().unwrap().unwrap();
    assert_eq!(raw["status"], "shipped");
}

#[tokio::test]
#[ignore = "needs Prism: run through `cargo xtask test`"]
async fn documented_error_statuses_become_typed_errors() {
    for (code, kind) in [
        (400, ErrorKind::BadRequest),
        (401, ErrorKind::Unauthorized),
        (403, ErrorKind::Forbidden),
        (404, ErrorKind::NotFound),
    ] {
        let (client, _) = prism(Some(code));
        let err = client.custom_tools().run("tool").send().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {err:?}");
        assert_eq!(err.status().unwrap().as_u16(), code);
        assert_eq!(err.api_message(), Some("Invalid workspace id"));
    }
}

#[tokio::test]
#[ignore = "needs Prism: run through `cargo xtask test`"]
async fn a_429_is_retried_then_reported() {
    let (client, sleep) = prism(Some(429));
    let err = client.custom_tools().run("tool").send().await.unwrap_err();
    assert!(err.is_rate_limited(), "{err:?}");
    assert_eq!(err.attempts(), 3);
    assert_eq!(sleep.waits().len(), 2);
}
