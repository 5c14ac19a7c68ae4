//! Spans carry the operation, method, attempt, status and wait; the token
//! appears nowhere: not in trace output, Debug output or error text.

mod common;

use common::*;
use wiremock::MockServer;

fn subscriber(out: &Captured) -> impl tracing::Subscriber + Send + Sync {
    let out = out.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || out.clone())
        .finish()
}

#[tokio::test(flavor = "current_thread")]
async fn spans_record_operation_attempt_status_and_wait() {
    let out = Captured::default();
    let _guard = tracing::subscriber::set_default(subscriber(&out));
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("1")), 1, ok()).await;
    let (client, _) = client(&server);
    client.custom_tools().run(TOOL).send().await.unwrap();
    let text = out.text();
    for part in [
        "conduit.request",
        "operation=\"run_custom_tool\"",
        "method=POST",
        "attempt=1",
        "attempt=2",
        "status=429",
        "status=200",
        "retry_in_ms=1000",
        "retrying",
    ] {
        assert!(text.contains(part), "{part} missing from:\n{text}");
    }
    assert!(!text.contains(TOKEN), "token leaked into traces:\n{text}");
}

#[tokio::test(flavor = "current_thread")]
async fn no_failure_shows_the_token_anywhere() {
    let out = Captured::default();
    let _guard = tracing::subscriber::set_default(subscriber(&out));
    let server = MockServer::start().await;
    let mut texts = Vec::new();
    for response in [
        error(400, "Invalid workspace id"),
        error(401, "Invalid token"),
        error(403, "Read-only token"),
        error(404, "Custom tool not found"),
        error(409, "Conflict"),
        error(500, "boom"),
        throttled(Some("1")),
        throttled(Some("999")),
        wiremock::ResponseTemplate::new(200).set_body_string("not json"),
        wiremock::ResponseTemplate::new(502).set_body_raw("<html>bad gateway</html>", "text/html"),
    ] {
        server.reset().await;
        always(&server, response).await;
        let (client, _) = client(&server);
        texts.push(format!("{client:?}"));
        let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
        texts.push(format!("{err} | {err:?} | {err:#?}"));
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            texts.push(format!("{s} | {s:?}"));
            source = s.source();
        }
    }
    // Transport failures and refused input too.
    let closed = conduit_sdk::Client::builder()
        .token(TOKEN)
        .base_url("http://127.0.0.1:9")
        .max_retries(0)
        .build()
        .unwrap();
    let err = closed.custom_tools().run(TOOL).send().await.unwrap_err();
    texts.push(format!("{err} | {err:?}"));
    let err = closed.custom_tools().run("").send().await.unwrap_err();
    texts.push(format!("{err} | {err:?}"));
    texts.push(format!("{:?}", conduit_sdk::Client::builder().token(TOKEN)));
    // A timeout, a failed tool and configuration errors.
    server.reset().await;
    always(&server, ok().set_delay(std::time::Duration::from_secs(5))).await;
    let slow = builder(&server)
        .timeout(std::time::Duration::from_millis(100))
        .build()
        .unwrap();
    let err = slow.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    texts.push(format!("{err} | {err:?}"));
    server.reset().await;
    let failed = serde_json::json!({"data": {"success": false, "message": null, "result": null,
        "error": "boom", "logs": "log line", "run_time_ms": 1}});
    always(
        &server,
        wiremock::ResponseTemplate::new(200).set_body_json(failed),
    )
    .await;
    let (client, _) = client(&server);
    let run = client.custom_tools().run(TOOL).send().await.unwrap();
    texts.push(format!("{run:?}"));
    let err = conduit_sdk::Error::from(run.into_result().unwrap_err());
    assert!(err.is_tool_failure());
    texts.push(format!("{err} | {err:?}"));
    for url in ["http://example.com", "not a url", "https://u:p@x"] {
        let err = conduit_sdk::Client::builder()
            .token(TOKEN)
            .base_url(url)
            .build()
            .unwrap_err();
        texts.push(format!("{err} | {err:?}"));
    }
    texts.push(out.text());
    for text in &texts {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
        assert!(!text.contains("TOKEN_4f9a2c"), "token leaked: {text}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_gate_wait_is_an_event_naming_partition_wait_and_reason() {
    let out = Captured::default();
    let _guard = tracing::subscriber::set_default(subscriber(&out));
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("2")), 1, ok()).await;
    let time = conduit_sdk::test_util::ManualTime::new();
    let client = builder(&server)
        .manual_time(&time)
        .workspace_id("ws_traced")
        .max_retries(0)
        .build()
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap_err();
    client.custom_tools().run(TOOL).send().await.unwrap();
    let text = out.text();
    let event = text
        .lines()
        .find(|l| l.contains("waiting for the rate limit"))
        .unwrap_or_else(|| panic!("no gate event in:\n{text}"));
    for part in [
        "partition=workspace:ws_traced",
        "reason=\"cooldown\"",
        "wait_ms=2",
    ] {
        assert!(event.contains(part), "{part} missing from {event}");
    }
    assert!(!text.contains(TOKEN));
}

#[tokio::test(flavor = "current_thread")]
async fn the_window_a_429_shows_is_an_event_naming_its_allowance() {
    let out = Captured::default();
    let _guard = tracing::subscriber::set_default(subscriber(&out));
    let server = MockServer::start().await;
    sequence(&server, ok(), 3, throttled(Some("2"))).await;
    let time = conduit_sdk::test_util::ManualTime::new();
    let client = builder(&server)
        .manual_time(&time)
        .workspace_id("ws_window")
        .max_retries(0)
        .build()
        .unwrap();
    for _ in 0..3 {
        client.custom_tools().run(TOOL).send().await.unwrap();
    }
    client.custom_tools().run(TOOL).send().await.unwrap_err();
    let text = out.text();
    let event = text
        .lines()
        .find(|l| l.contains("keeping to the window a 429 showed"))
        .unwrap_or_else(|| panic!("no window event in:\n{text}"));
    // Three accepted at once (the clock stands still), then 2 s to wait.
    for part in ["partition=workspace:ws_window", "requests=3", "per_ms=2000"] {
        assert!(event.contains(part), "{part} missing from {event}");
    }
    // The window's first request, once it frees, is refused too: it was
    // not a window, and the partition paces instead.
    client.custom_tools().run(TOOL).send().await.unwrap_err();
    let text = out.text();
    let paced = text
        .lines()
        .find(|l| l.contains("pacing near the rate the server accepted"))
        .unwrap_or_else(|| panic!("no pacing event in:\n{text}"));
    assert!(paced.contains("refuted=true"), "{paced}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_partition_without_workspace_is_named_by_a_hash_not_the_token() {
    let out = Captured::default();
    let _guard = tracing::subscriber::set_default(subscriber(&out));
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("1")), 1, ok()).await;
    let (client, _) = gated_client(&server);
    client.custom_tools().run(TOOL).send().await.unwrap();
    let text = out.text();
    assert!(text.contains("partition=token:"), "{text}");
    assert!(!text.contains(TOKEN), "the token leaked");
}
