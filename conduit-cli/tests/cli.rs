//! Tests of `conduit tools run` (`custom-tools run`), run as a process against a local
//! wiremock server.

mod common;

use std::time::{Duration, Instant};

use common::{
    Output, binary, conduit, conduit_with_stdin, requests, server_answering, success_body,
};

use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

const TOKEN: &str = "tok-cli-test-8f3a1c9e";

/// Runs `tools run tool_1 ITEMS...` against `server` with the test token.
async fn run_tool(server: &MockServer, items: &[&str]) -> Output {
    let uri = server.uri();
    let mut args = vec!["--base-url", &uri, "tools", "run", "tool_1"];
    args.extend_from_slice(items);
    conduit(&args, &[("CONDUIT_API_TOKEN", TOKEN)]).await
}

#[tokio::test]
async fn a_successful_run_prints_its_data_and_sends_the_items() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let out = run_tool(
        &server,
        &[
            "order_id=ord_1",
            "count:=3",
            "flags:=[true]",
            "--workspace",
            "ws_9",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let data = out.json();
    assert_eq!(data["success"], true, "{out:?}");
    assert_eq!(data["message"], "Order ord_1 is shipped", "{out:?}");
    assert_eq!(data["result"]["rawData"]["status"], "shipped", "{out:?}");

    let requests = requests(&server).await;
    assert_eq!(requests.len(), 1);
    let body: Value = requests[0].body_json().unwrap();
    assert_eq!(
        body,
        json!({
            "parameters": {"order_id": "ord_1", "count": 3, "flags": [true]},
            "workspace_id": "ws_9"
        })
    );
    let auth = requests[0]
        .headers
        .get("authorization")
        .expect("auth header");
    assert_eq!(auth.to_str().unwrap(), format!("Bearer {TOKEN}"));
}

#[tokio::test]
async fn items_split_at_the_first_separator() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let out = run_tool(&server, &["a=b:=c", "n:=1", "s:=\"x=y\"", "e="]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let body: Value = requests(&server).await[0].body_json().unwrap();
    assert_eq!(
        body["parameters"],
        json!({"a": "b:=c", "n": 1, "s": "x=y", "e": ""})
    );
}

#[tokio::test]
async fn a_failed_tool_exits_1_with_its_error_and_data() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(json!({"data": {
        "success": false,
        "message": null,
        "result": null,
        "error": "boom",
        "logs": "trace",
        "run_time_ms": 12
    }})))
    .await;
    let out = run_tool(&server, &["order_id=ord_1"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("boom"), "{out:?}");
    let data = out.json();
    assert_eq!(data["success"], false, "{out:?}");
    assert_eq!(data["error"], "boom", "{out:?}");
}

#[tokio::test]
async fn invalid_json_after_colon_equals_is_a_usage_error() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let out = run_tool(&server, &["count:=[1,"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("Usage"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(requests(&server).await.len(), 0);
}

#[tokio::test]
async fn malformed_items_are_usage_errors() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    for item in ["no_separator", "=value", ":=1"] {
        let out = run_tool(&server, &[item]).await;
        assert_eq!(out.code, 2, "{item}: {out:?}");
    }
    assert_eq!(requests(&server).await.len(), 0);
}

#[tokio::test]
async fn a_missing_token_exits_2_without_sending() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let uri = server.uri();
    let out = conduit(&["--base-url", &uri, "tools", "run", "tool_1"], &[]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("CONDUIT_API_TOKEN"), "{out:?}");
    assert_eq!(requests(&server).await.len(), 0);
}

#[tokio::test]
async fn help_prints_usage_and_exits_0() {
    for flag in ["--help", "-h"] {
        let out = conduit(&[flag], &[]).await;
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.contains("Groups:"), "{out:?}");
        assert!(out.stdout.contains("custom-tools"), "{out:?}");
    }
}

#[tokio::test]
async fn an_api_error_exits_3_with_status_and_message() {
    let server = server_answering(
        ResponseTemplate::new(404).set_body_json(json!({"error": "Custom tool not found"})),
    )
    .await;
    let out = run_tool(&server, &[]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("404"), "{out:?}");
    assert!(out.stderr.contains("Custom tool not found"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

fn rate_limited() -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("Retry-After", "0")
        .set_body_json(json!({"error": "Rate limit exceeded"}))
}

#[tokio::test]
async fn max_retries_flag_bounds_rate_limit_retries_over_the_env() {
    let server = server_answering(rate_limited()).await;
    let uri = server.uri();
    let out = conduit(
        &[
            "--base-url",
            &uri,
            "--max-retries",
            "1",
            "tools",
            "run",
            "tool_1",
        ],
        &[("CONDUIT_API_TOKEN", TOKEN), ("CONDUIT_MAX_RETRIES", "5")],
    )
    .await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("429"), "{out:?}");
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn max_retries_env_applies_without_the_flag() {
    let server = server_answering(rate_limited()).await;
    let uri = server.uri();
    let out = conduit(
        &["--base-url", &uri, "tools", "run", "tool_1"],
        &[("CONDUIT_API_TOKEN", TOKEN), ("CONDUIT_MAX_RETRIES", "0")],
    )
    .await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn base_url_env_applies_without_the_flag() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let uri = server.uri();
    let out = conduit(
        &["tools", "run", "tool_1"],
        &[("CONDUIT_API_TOKEN", TOKEN), ("CONDUIT_BASE_URL", &uri)],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(requests(&server).await.len(), 1);
}

/// Nothing listens on port 1.
const DEAD_URL: &str = "http://127.0.0.1:1";

/// `tools run tool_1` with no retries against a port nothing listens on.
async fn run_against_dead_url() -> Output {
    conduit(
        &[
            "--base-url",
            DEAD_URL,
            "--max-retries",
            "0",
            "tools",
            "run",
            "tool_1",
        ],
        &[("CONDUIT_API_TOKEN", TOKEN)],
    )
    .await
}

#[tokio::test]
async fn a_connection_failure_exits_4() {
    let out = run_against_dead_url().await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[tokio::test]
async fn a_timeout_exits_4_quickly() {
    let server = server_answering(
        ResponseTemplate::new(200)
            .set_body_json(success_body())
            .set_delay(Duration::from_secs(60)),
    )
    .await;
    let uri = server.uri();
    // Build first, so that only the run is timed.
    tokio::task::spawn_blocking(binary).await.unwrap();
    let start = Instant::now();
    let out = conduit(
        &[
            "--base-url",
            &uri,
            "--timeout",
            "0.3",
            "tools",
            "run",
            "tool_1",
        ],
        &[("CONDUIT_API_TOKEN", TOKEN)],
    )
    .await;
    let took = start.elapsed();
    assert_eq!(out.code, 4, "{out:?}");
    // Ended by the 0.3 s timeout, not by the answer a minute later.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[tokio::test]
async fn the_token_is_never_printed() {
    let server = server_answering(
        ResponseTemplate::new(404).set_body_json(json!({"error": "Custom tool not found"})),
    )
    .await;
    let not_found = run_tool(&server, &[]).await;
    assert_eq!(not_found.code, 3, "{not_found:?}");
    not_found.assert_hides(TOKEN);

    let dead = run_against_dead_url().await;
    assert_eq!(dead.code, 4, "{dead:?}");
    dead.assert_hides(TOKEN);
}

#[tokio::test]
async fn stdout_is_the_data_exactly_as_the_server_sent_it() {
    let raw = r#"{"data":{"success":true,"run_time_ms":842,"zeta":"kept","message":"m","result":{"b":1,"a":2},"error":null,"logs":null}}"#;
    let server =
        server_answering(ResponseTemplate::new(200).set_body_raw(raw, "application/json")).await;
    let out = run_tool(&server, &[]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let compact = serde_json::to_string(&out.json()).unwrap();
    assert_eq!(
        compact,
        r#"{"success":true,"run_time_ms":842,"zeta":"kept","message":"m","result":{"b":1,"a":2},"error":null,"logs":null}"#
    );
}

#[tokio::test]
async fn numbers_are_printed_as_the_server_wrote_them() {
    let raw = r#"{"data":{"success":true,"run_time_ms":842.250,"message":null,"result":{"price":1.50,"id":12345678901234567890123},"error":null,"logs":null}}"#;
    let server =
        server_answering(ResponseTemplate::new(200).set_body_raw(raw, "application/json")).await;
    let out = run_tool(&server, &[]).await;
    assert_eq!(out.code, 0, "{out:?}");
    for token in ["842.250", "1.50", "12345678901234567890123"] {
        assert!(out.stdout.contains(token), "{token}: {}", out.stdout);
    }
    // run-batch: one line per item, the same tokens.
    let uri = server.uri();
    let out = conduit_with_stdin(
        &["--base-url", &uri, "tools", "run-batch", "tool_1"],
        &[("CONDUIT_API_TOKEN", TOKEN)],
        Some("{}\n"),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let line = out.stdout.lines().next().unwrap();
    assert!(
        line.starts_with(r#"{"index":0,"data":{"success":true,"run_time_ms":842.250,"#),
        "{line}"
    );
    assert!(line.contains(r#""id":12345678901234567890123}"#), "{line}");
}

#[tokio::test]
async fn header_adds_a_header_to_the_request_and_bad_ones_are_usage_errors() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let uri = server.uri();
    let env = [("CONDUIT_API_TOKEN", TOKEN)];
    let args = [
        "--base-url",
        &uri,
        "--header",
        "Idempotency-Key: k-1",
        "--header",
        "X-Trace:abc",
        "tools",
        "run",
        "tool_1",
    ];
    let out = conduit(&args, &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    let seen = requests(&server).await;
    assert_eq!(seen[0].headers.get("idempotency-key").unwrap(), "k-1");
    assert_eq!(seen[0].headers.get("x-trace").unwrap(), "abc");
    for bad in [
        "no colon",
        ": empty name",
        "Bad Name: v",
        "Authorization: Bearer x",
    ] {
        let args = [
            "--base-url",
            &uri,
            "--header",
            bad,
            "tools",
            "run",
            "tool_1",
        ];
        let out = conduit(&args, &env).await;
        assert_eq!(out.code, 2, "{bad}: {out:?}");
    }
    assert_eq!(requests(&server).await.len(), 1, "no bad header was sent");
}

#[tokio::test]
async fn a_failed_call_prints_its_request_id() {
    let server = server_answering(
        ResponseTemplate::new(404)
            .insert_header("x-request-id", "req_cli_9")
            .set_body_json(json!({"error": "Custom tool not found"})),
    )
    .await;
    let out = run_tool(&server, &[]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("request id: req_cli_9"), "{out:?}");
}

/// The token must not go to a proxy in clear text: a loopback API is
/// reached directly, whatever the proxy variables say.
#[tokio::test]
async fn the_cli_ignores_proxy_variables_for_a_loopback_api() {
    let api = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    // Records whatever reaches it.
    let proxy = MockServer::start().await;
    let (api_uri, proxy_uri) = (api.uri(), proxy.uri());
    let mut env = vec![("CONDUIT_API_TOKEN", TOKEN)];
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        env.push((var, &proxy_uri));
    }
    let out = conduit(&["--base-url", &api_uri, "tools", "run", "tool_1"], &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(requests(&api).await.len(), 1);
    assert_eq!(
        requests(&proxy).await.len(),
        0,
        "the token went to the proxy"
    );
}
