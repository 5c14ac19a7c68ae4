//! Per-call options, response metadata and the data as the server sent it.

mod common;

use std::time::Duration;

use common::*;
use conduit_sdk::{CallOptions, ErrorKind, RetryPolicy};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn with_options_overrides_the_timeout_and_leaves_the_client_alone() {
    let server = MockServer::start().await;
    // Far past the 100 ms limits below, so that a busy machine cannot make
    // the answer arrive first.
    always(&server, ok().set_delay(Duration::from_secs(2))).await;
    let (client, _) = client(&server);
    let hasty = client.with_options(CallOptions::new().timeout(Duration::from_millis(100)));
    let err = hasty.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    client.custom_tools().run(TOOL).send().await.unwrap();
    let patient_total =
        client.with_options(CallOptions::new().total_timeout(Duration::from_millis(100)));
    let err = patient_total
        .custom_tools()
        .run(TOOL)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn options_override_retries_for_the_derived_client_or_one_call() {
    let server = MockServer::start().await;
    always(&server, throttled(Some("1"))).await;
    let (client, _) = client(&server);
    let five = client.with_options(CallOptions::new().max_retries(5));
    assert_eq!(
        five.custom_tools()
            .run(TOOL)
            .send()
            .await
            .unwrap_err()
            .attempts(),
        6
    );
    let once = client
        .custom_tools()
        .run(TOOL)
        .options(CallOptions::new().retry_policy(RetryPolicy::none()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(once.attempts(), 1);
    // The client itself keeps its default of 2 retries.
    assert_eq!(
        client
            .custom_tools()
            .run(TOOL)
            .send()
            .await
            .unwrap_err()
            .attempts(),
        3
    );
}

#[tokio::test]
async fn headers_go_with_every_attempt_and_only_with_the_calls_they_were_given_to() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("1")), 1, ok()).await;
    let (client, _) = client(&server);
    client
        .custom_tools()
        .run(TOOL)
        .options(
            CallOptions::new()
                .header("Idempotency-Key", "refund-4711")
                .header("X-Trace", "a")
                .header("x-trace", "b")
                .header("Api-Version", "2026-11-01"),
        )
        .send()
        .await
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap();
    let seen = server.received_requests().await.unwrap();
    assert_eq!(seen.len(), 3);
    for attempt in &seen[..2] {
        assert_eq!(
            attempt.headers.get("idempotency-key").unwrap(),
            "refund-4711"
        );
        let traces: Vec<_> = attempt.headers.get_all("x-trace").iter().collect();
        assert_eq!(traces, ["a", "b"]);
        // The SDK drops progenitor's `api-version`, not the caller's.
        let versions: Vec<_> = attempt.headers.get_all("api-version").iter().collect();
        assert_eq!(versions, ["2026-11-01"]);
        assert_eq!(
            attempt.headers.get("authorization").unwrap(),
            &format!("Bearer {TOKEN}")
        );
    }
    assert!(seen[2].headers.get("idempotency-key").is_none());
    assert!(seen[2].headers.get("api-version").is_none());
}

#[tokio::test]
async fn bad_or_forbidden_headers_fail_the_call_before_sending() {
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let (client, _) = client(&server);
    for options in [
        CallOptions::new().header("bad name", "v"),
        CallOptions::new().header("X-A", "line\nbreak"),
        CallOptions::new().header("Authorization", "Bearer someone-else"),
        CallOptions::new().header("Content-Length", "1"),
        CallOptions::new().header("content-length", "100000"),
        CallOptions::new().header("Host", "elsewhere.example"),
        CallOptions::new().header("TRANSFER-ENCODING", "chunked"),
        CallOptions::new().header("User-Agent", "me/1.0"),
        CallOptions::new().header("user-agent", "me/1.0"),
    ] {
        let err = client
            .custom_tools()
            .run(TOOL)
            .options(options.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
        assert_eq!(err.attempts(), 0);
        assert_eq!(err.operation(), Some("run_custom_tool"), "{err:?}");
        // The same through a derived client.
        let derived = client.with_options(options);
        let err = derived.custom_tools().run(TOOL).send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    }
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test]
async fn a_derived_client_shares_the_rate_limit_gate() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("6")), 1, ok()).await;
    let (client, time) = unretried_client(&server);
    client.custom_tools().run(TOOL).send().await.unwrap_err();
    let derived = client.with_options(CallOptions::new().header("X-A", "1"));
    derived.custom_tools().run(TOOL).send().await.unwrap();
    assert!(
        time.waits()
            .first()
            .is_some_and(|w| *w >= Duration::from_secs(6)),
        "{:?}",
        time.waits()
    );
}

#[tokio::test]
async fn a_run_carries_its_status_headers_and_request_id() {
    let server = MockServer::start().await;
    always(&server, ok().insert_header("x-request-id", "req_8c1f")).await;
    let (client, _) = client(&server);
    let run = client.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(run.status(), conduit_sdk::StatusCode::OK);
    assert_eq!(run.request_id(), Some("req_8c1f"));
    assert_eq!(run.headers().get("x-request-id").unwrap(), "req_8c1f");
}

#[tokio::test]
async fn an_error_carries_the_request_id_and_shows_it() {
    let server = MockServer::start().await;
    always(
        &server,
        error(404, "Custom tool not found").insert_header("request-id", "req_77"),
    )
    .await;
    let (client, _) = client(&server);
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(err.request_id(), Some("req_77"));
    assert!(err.to_string().ends_with("(request id req_77)"), "{err}");
}

#[tokio::test]
async fn json_is_the_data_exactly_as_sent() {
    let server = MockServer::start().await;
    let raw = r#"{"data":{"success":true,"run_time_ms":842,"message":"ok","zeta":1,"result":{"rawData":{"b":1,"a":2}},"error":null,"logs":null,"new_field":{"x":[1.50,2]}}}"#;
    Mock::given(method("POST"))
        .and(path(RUN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(raw, "application/json"))
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let run = client.custom_tools().run(TOOL).send().await.unwrap();
    let printed = serde_json::to_string(run.json()).unwrap();
    assert_eq!(
        printed,
        r#"{"success":true,"run_time_ms":842,"message":"ok","zeta":1,"result":{"rawData":{"b":1,"a":2}},"error":null,"logs":null,"new_field":{"x":[1.5,2]}}"#
    );
    assert_eq!(run.run_time_ms(), 842.0);
}

#[tokio::test]
async fn the_derived_client_sends_its_headers_through_the_raw_client_too() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-tenant", "t1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": ok_body()["data"]})))
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let derived = client.with_options(CallOptions::new().header("X-Tenant", "t1"));
    let response = derived
        .call(|raw| raw.run_custom_tool().id(TOOL).send())
        .await
        .unwrap();
    assert!(response.into_inner().data.success);
}
