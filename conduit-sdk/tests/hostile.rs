//! Hostile and broken servers: empty, truncated, mislabelled and huge
//! bodies, stalls, dropped connections, bytes that are not HTTP, strange
//! `Retry-After` values, endless throttling and redirects. Each ends in a
//! typed error (kind, status, snippet) or the documented retry. Waits are
//! recorded by `ManualTime`, never slept; the only real waits are the
//! sub-second per-attempt timeouts of the stall tests.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use conduit_sdk::test_util::ManualTime;
use conduit_sdk::{Client, ClientBuilder, Error, ErrorKind};
use conduit_test_server::Bytes;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

async fn run_err(client: &Client) -> Error {
    client.custom_tools().run(TOOL).send().await.unwrap_err()
}

/// The same call through `call` and the raw operation, not the wrapper.
async fn call_err(client: &Client) -> Error {
    client
        .call(|raw| raw.run_custom_tool().id(TOOL).send())
        .await
        .unwrap_err()
}

/// A client with a small body limit, waits recorded.
fn limited_client(server: &MockServer, limit: usize) -> (Client, ManualTime) {
    let sleep = ManualTime::new();
    let client = builder(server)
        .max_response_bytes(limit)
        .manual_time(&sleep)
        .rate_limiter(conduit_sdk::RateLimiter::disabled())
        .build()
        .unwrap();
    (client, sleep)
}

/// A client builder for a [`RawServer`].
fn raw_builder(server: &RawServer) -> ClientBuilder {
    Client::builder().token(TOKEN).base_url(&server.uri)
}

/// A client for a [`RawServer`]: waits recorded, not taken, and a
/// half-second per-attempt timeout so that a stall ends fast.
fn raw_client(server: &RawServer, limit: Option<usize>) -> Client {
    let mut b = raw_builder(server)
        .timeout(Duration::from_millis(500))
        .manual_time(&ManualTime::new());
    if let Some(limit) = limit {
        b = b.max_response_bytes(limit);
    }
    b.build().unwrap()
}

/// The successful body, padded with trailing white space (still valid JSON)
/// to exactly `len` bytes.
fn ok_body_of_len(len: usize) -> Vec<u8> {
    let mut body = serde_json::to_vec(&ok_body()).unwrap();
    assert!(body.len() <= len);
    body.resize(len, b' ');
    body
}

fn assert_bounded_snippet(err: &Error) {
    let snippet = err.body_snippet().expect("a snippet");
    assert!(snippet.len() <= SNIPPET_MAX, "{} bytes", snippet.len());
}

// ---------------------------------------------------------------- bodies --

#[tokio::test]
async fn an_empty_200_is_a_decode_error_with_status_200() {
    let server = MockServer::start().await;
    always(&server, ResponseTemplate::new(200)).await;
    let (client, sleep) = client(&server);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
    assert_eq!(err.body_snippet(), Some(""));
    assert!(!err.is_status(), "a decode error is not a status error");
    assert_eq!(err.attempts(), 1);
    assert!(sleep.waits().is_empty());
}

#[tokio::test]
async fn an_empty_404_is_not_found_with_an_empty_snippet() {
    let server = MockServer::start().await;
    always(&server, ResponseTemplate::new(404)).await;
    let (client, _) = client(&server);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
    assert_eq!(err.api_message(), None);
    assert_eq!(err.body_snippet(), Some(""));
    assert!(err.is_status());
}

#[tokio::test]
async fn a_truncated_json_200_is_a_decode_error_with_the_partial_body() {
    let server = MockServer::start().await;
    let full = serde_json::to_string(&ok_body()).unwrap();
    let cut = &full[..full.len() / 2];
    always(
        &server,
        ResponseTemplate::new(200).set_body_raw(cut, "application/json"),
    )
    .await;
    let (client, _) = client(&server);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
    assert_eq!(err.body_snippet(), Some(cut));
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn broken_200_bodies_are_decode_errors_with_status_and_snippet() {
    let valid = serde_json::to_vec(&ok_body()).unwrap();
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), &valid].concat();
    let with_garbage = [valid.as_slice(), b" trailing"].concat();
    let cases: [(&str, Vec<u8>); 8] = [
        ("null", b"null".to_vec()),
        ("array", b"[]".to_vec()),
        ("data null", br#"{"data": null}"#.to_vec()),
        ("wrong type", br#"{"data": {"success": 1}}"#.to_vec()),
        ("a byte-order mark", with_bom),
        ("trailing garbage", with_garbage),
        ("invalid UTF-8", b"{\"data\": \"\xff\xfe\"}".to_vec()),
        ("an HTML page", b"<html>maintenance</html>".to_vec()),
    ];
    let server = MockServer::start().await;
    for (name, body) in cases {
        server.reset().await;
        always(
            &server,
            ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json"),
        )
        .await;
        let (client, _) = client(&server);
        let err = run_err(&client).await;
        assert_eq!(err.kind(), ErrorKind::Decode, "{name}: {err:?}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(200), "{name}");
        let expected = String::from_utf8_lossy(&body);
        assert_eq!(err.body_snippet(), Some(&*expected), "{name}");
    }
}

#[tokio::test]
async fn broken_404_bodies_keep_not_found_and_the_server_message_when_there_is_one() {
    let server = MockServer::start().await;
    for (body, api_message, snippet) in [
        ("Not Found", None, Some("Not Found")),
        ("null", None, Some("null")),
        (r#"{"error": 42}"#, None, Some(r#"{"error": 42}"#)),
        (
            r#"{"message": "gone"}"#,
            None,
            Some(r#"{"message": "gone"}"#),
        ),
        (
            r#"{"error": "Custom tool not found", "code": "E404", "extra": [1]}"#,
            Some("Custom tool not found"),
            None,
        ),
    ] {
        server.reset().await;
        always(
            &server,
            ResponseTemplate::new(404).set_body_raw(body, "application/json"),
        )
        .await;
        let (client, _) = client(&server);
        let err = run_err(&client).await;
        assert_eq!(err.kind(), ErrorKind::NotFound, "{body}: {err:?}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{body}");
        assert_eq!(err.api_message(), api_message, "{body}");
        assert_eq!(err.body_snippet(), snippet, "{body}");
    }
}

/// Decision: the content type is not checked. Like progenitor, the SDK
/// decodes any body as JSON, so a mislabelled but valid body works and a
/// mislabelled error body keeps its message.
#[tokio::test]
async fn valid_json_labelled_text_plain_is_decoded_regardless_of_content_type() {
    let server = MockServer::start().await;
    let body = serde_json::to_string(&ok_body()).unwrap();
    always(
        &server,
        ResponseTemplate::new(200).set_body_raw(body, "text/plain"),
    )
    .await;
    let (client, _) = client(&server);
    let run = client.custom_tools().run(TOOL).send().await.unwrap();
    assert!(run.success());
    assert_eq!(run.message(), Some("Order ord_12345 is shipped"));

    server.reset().await;
    always(
        &server,
        ResponseTemplate::new(403)
            .set_body_raw(r#"{"error": "Write access required"}"#, "text/html"),
    )
    .await;
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err:?}");
    assert_eq!(err.api_message(), Some("Write access required"));
}

// ----------------------------------------------------------- huge bodies --

#[tokio::test]
async fn a_huge_500_body_is_not_buffered_and_keeps_the_status_and_a_bounded_snippet() {
    let server = MockServer::start().await;
    let body = vec![b'e'; 8 * MIB];
    always(
        &server,
        ResponseTemplate::new(500).set_body_raw(body, "text/plain"),
    )
    .await;
    let (client, sleep) = limited_client(&server, 64 * KIB);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(500));
    assert!(err.body_snippet().unwrap().starts_with("eeee"));
    assert_bounded_snippet(&err);
    assert_eq!(err.attempts(), 1);
    assert!(sleep.waits().is_empty(), "POST is not retried after a 500");
}

/// Through the wrapper, through `call` and through the raw client.
#[tokio::test]
async fn a_huge_200_body_over_the_limit_is_a_decode_error_naming_the_limit() {
    let server = MockServer::start().await;
    // Valid JSON, but 8 MiB of it.
    always(
        &server,
        ResponseTemplate::new(200).set_body_raw(ok_body_of_len(8 * MIB), "application/json"),
    )
    .await;
    let (client, _) = limited_client(&server, 64 * KIB);
    for err in [run_err(&client).await, call_err(&client).await] {
        assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
        assert!(err.to_string().contains("max_response_bytes"), "{err}");
        assert!(
            err.body_snippet().is_none_or(|s| s.len() <= SNIPPET_MAX),
            "{err:?}"
        );
    }
    // The raw client, without `call`'s error mapping, fails the same way:
    // the limit is in its error's source chain.
    let raw = raw_run(&client).await.unwrap_err();
    let mut chain = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(&raw);
    while let Some(e) = next {
        chain.push(e.to_string());
        next = e.source();
    }
    assert!(
        chain.iter().any(|e| e.contains("max_response_bytes")),
        "{chain:?}"
    );
}

#[tokio::test]
async fn a_huge_429_body_is_retried_then_rate_limited_naming_the_limit() {
    let server = MockServer::start().await;
    let body = format!(r#"{{"error": "{}"}}"#, "z".repeat(MIB));
    always(
        &server,
        ResponseTemplate::new(429)
            .insert_header("retry-after", "1")
            .set_body_raw(body, "application/json"),
    )
    .await;
    let (client, sleep) = limited_client(&server, 64 * KIB);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
    assert_eq!(sleep.waits(), vec![Duration::from_secs(1); 2]);
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_refused() {
    let limit = 4 * KIB;
    let server = MockServer::start().await;
    always(
        &server,
        ResponseTemplate::new(200).set_body_raw(ok_body_of_len(limit), "application/json"),
    )
    .await;
    let (client, _) = limited_client(&server, limit);
    assert!(
        client
            .custom_tools()
            .run(TOOL)
            .send()
            .await
            .unwrap()
            .success()
    );

    server.reset().await;
    always(
        &server,
        ResponseTemplate::new(200).set_body_raw(ok_body_of_len(limit + 1), "application/json"),
    )
    .await;
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
}

#[tokio::test]
async fn a_40_mib_500_with_the_default_limit_yields_a_bounded_snippet() {
    let server = MockServer::start().await;
    let body = vec![b'x'; 40 * MIB];
    always(
        &server,
        ResponseTemplate::new(500).set_body_raw(body, "text/html"),
    )
    .await;
    let (client, _) = client(&server);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(500));
    assert_bounded_snippet(&err);
    assert!(err.body_snippet().unwrap().contains("… [cut: "));
}

#[tokio::test]
async fn an_endless_chunked_200_stops_at_the_limit() {
    // No Content-Length: the limit is the only thing that ends the read.
    // The server gives up after 64 MiB, so a client without a limit would
    // fail this test by reading far past it rather than hang.
    let mut chunk = format!("{:x}\r\n", KIB).into_bytes();
    chunk.extend_from_slice(&[b' '; KIB]);
    chunk.extend_from_slice(b"\r\n");
    let server = RawServer::start(Reply::Repeat {
        head: raw_head(
            200,
            &[
                "Content-Type: application/json",
                "Transfer-Encoding: chunked",
            ],
        )
        .into(),
        chunk: chunk.into(),
        max_repeats: 64 * KIB,
    });
    let client = raw_client(&server, Some(64 * KIB));
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
}

/// The snippet is documented as at most 512 bytes (plus a marker when cut).
/// Bytes that are not UTF-8, or a character split at byte 512, must not
/// make it longer.
#[tokio::test]
async fn snippets_stay_within_512_bytes_and_a_marker() {
    let binary = vec![0xFFu8; 600];
    let split = [vec![b'a'; 510], "🔧🔧".as_bytes().to_vec()].concat();
    let server = MockServer::start().await;
    let mut too_long = Vec::new();
    for (name, body) in [
        ("600 bytes of 0xFF", binary),
        ("an emoji across byte 512", split),
    ] {
        server.reset().await;
        always(
            &server,
            ResponseTemplate::new(500).set_body_raw(body, "application/octet-stream"),
        )
        .await;
        let (client, _) = client(&server);
        let err = run_err(&client).await;
        assert_eq!(err.kind(), ErrorKind::Server, "{name}: {err:?}");
        let len = err.body_snippet().expect("a snippet").len();
        if len > SNIPPET_MAX {
            too_long.push(format!("{name}: {len} bytes"));
        }
    }
    assert!(
        too_long.is_empty(),
        "snippets longer than {SNIPPET_MAX} bytes: {too_long:?}"
    );
}

/// The middleware reads a 2xx of an operation that reads its bodies whole,
/// wrapper or not: a body within the limit decodes through `call` and the
/// raw client too.
#[tokio::test]
async fn through_call_and_the_raw_client_a_200_within_the_limit_decodes() {
    let server = MockServer::start().await;
    always(
        &server,
        ResponseTemplate::new(200).set_body_raw(ok_body_of_len(32 * KIB), "application/json"),
    )
    .await;
    let (client, _) = limited_client(&server, 64 * KIB);
    let run = client
        .call(|raw| raw.run_custom_tool().id(TOOL).send())
        .await
        .unwrap();
    assert!(run.into_inner().data.success);
    assert!(raw_run(&client).await.unwrap().into_inner().data.success);
}

// ------------------------------------------------------------- transport --

#[tokio::test]
async fn a_response_that_never_starts_times_out() {
    let server = RawServer::start(Reply::Stall(Bytes::new()));
    let client = raw_client(&server, None);
    let err = run_err(&client).await;
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.is_transport());
    assert_eq!(err.status(), None);
    assert_eq!(err.attempts(), 1, "POST is not retried after a timeout");
    assert_eq!(server.heads().len(), 1);
}

#[tokio::test]
async fn a_body_stalled_after_the_headers_times_out_with_status_200() {
    let mut response = raw_head(
        200,
        &["Content-Type: application/json", "Content-Length: 1000"],
    );
    response.extend_from_slice(br#"{"data": {"#);
    let server = RawServer::start(Reply::Stall(response.into()));
    let client = raw_client(&server, None);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
    assert_eq!(err.attempts(), 1);
    assert_eq!(server.heads().len(), 1);
}

#[tokio::test]
async fn a_connection_dropped_mid_body_is_a_transport_error_with_status_200() {
    let mut response = raw_head(
        200,
        &["Content-Type: application/json", "Content-Length: 1000"],
    );
    response.extend_from_slice(b"{\"data\": {");
    let server = RawServer::start(Reply::Close(response.into()));
    let client = raw_client(&server, None);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert!(err.is_transport());
    assert!(!err.is_timeout());
    assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
    assert_eq!(err.attempts(), 1);
    assert_eq!(server.heads().len(), 1, "a dropped response is not retried");
}

#[tokio::test]
async fn a_connection_dropped_mid_error_body_keeps_the_status() {
    // A documented error status (404) whose body is cut short: the body
    // cannot be read, so this is a transport error that still names 404.
    let mut response = raw_head(
        404,
        &["Content-Type: application/json", "Content-Length: 500"],
    );
    response.extend_from_slice(b"{\"error\": \"Cust");
    let server = RawServer::start(Reply::Close(response.into()));
    let client = raw_client(&server, None);
    let err = run_err(&client).await;
    assert!(err.is_transport(), "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
}

#[tokio::test]
async fn a_connection_closed_before_any_response_is_a_transport_error() {
    let server = RawServer::start(Reply::Close(Bytes::new()));
    let client = raw_client(&server, None);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_eq!(err.status(), None);
    assert_eq!(err.attempts(), 1);
    assert_eq!(
        server.heads().len(),
        1,
        "the request reached the server, so POST is not resent"
    );
}

#[tokio::test]
async fn a_reply_that_is_not_http_is_a_transport_error() {
    let server = RawServer::start(Reply::Close(Bytes::from_static(b"SSH-2.0-OpenSSH_9.6\r\n")));
    let client = raw_client(&server, None);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_eq!(err.status(), None);
    assert_eq!(err.attempts(), 1);
}

// ------------------------------------------------------------ Retry-After --

#[tokio::test]
async fn unusable_retry_after_values_fall_back_to_backoff() {
    for bad in [
        "-1", "abc", "", "+5", "1,5", "0x10", "NaN", "Infinity", "1 2",
    ] {
        let server = MockServer::start().await;
        sequence(&server, throttled(Some(bad)), 1, ok()).await;
        let (client, sleep) = client(&server);
        client.custom_tools().run(TOOL).send().await.unwrap();
        let waits = sleep.waits();
        assert_eq!(waits.len(), 1, "{bad:?}");
        let ms = waits[0].as_millis();
        assert!((375..=500).contains(&ms), "{bad:?}: {ms} ms is not backoff");
    }
}

#[tokio::test]
async fn an_absurd_retry_after_is_clamped_and_returned_at_once() {
    let server = MockServer::start().await;
    always(&server, throttled(Some("99999999999"))).await;
    let (client, sleep) = client(&server);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    assert_eq!(
        err.retry_after(),
        Some(Duration::from_secs(365 * 24 * 3600)),
        "clamped to a year"
    );
    assert_eq!(err.attempts(), 1);
    assert!(sleep.waits().is_empty());
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn a_retry_after_date_in_the_past_retries_at_once() {
    let server = MockServer::start().await;
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    sequence(&server, throttled(Some(&past)), 1, ok()).await;
    let (client, sleep) = client(&server);
    client.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(sleep.waits(), vec![Duration::ZERO]);
    assert_eq!(requests(&server).await, 2);
}

/// Decision: a `Retry-After` in exponent form is not RFC 9110
/// delta-seconds, but the SDK reads any non-negative decimal number as
/// seconds, so `1e1` waits 10 s and `1e3` (1000 s, above the 60 s cap)
/// returns the rate-limit error at once with that value. Erring towards
/// waiting longer never undercuts the server.
#[tokio::test]
async fn retry_after_in_exponent_form_is_read_as_seconds() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("1e1")), 1, ok()).await;
    let (c, sleep) = client(&server);
    c.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(sleep.waits(), vec![Duration::from_secs(10)]);

    let server = MockServer::start().await;
    always(&server, throttled(Some("1e3"))).await;
    let (client, sleep) = client(&server);
    let err = run_err(&client).await;
    assert!(err.is_rate_limited(), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1000)));
    assert_eq!(err.attempts(), 1);
    assert!(sleep.waits().is_empty());
}

#[tokio::test]
async fn endless_throttling_gives_up_after_max_retries_plus_one_attempts() {
    let server = MockServer::start().await;
    always(&server, throttled(None)).await;
    let sleep = ManualTime::new();
    let client = builder(&server)
        .max_retries(5)
        .rate_limiter(conduit_sdk::RateLimiter::disabled())
        .manual_time(&sleep)
        .build()
        .unwrap();
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    assert_eq!(err.attempts(), 6);
    assert_eq!(err.retry_after(), None, "the server never said");
    assert_eq!(err.api_message(), Some("Rate limit exceeded"));
    assert_eq!(requests(&server).await, 6);
    let waits = sleep.waits();
    assert_eq!(waits.len(), 5);
    assert!(
        waits.iter().all(|w| *w <= Duration::from_secs(8)),
        "{waits:?}"
    );
    assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
}

// -------------------------------------------------------------- redirects --

/// The SDK's own HTTP client follows redirects only within the base URL's
/// origin: elsewhere, a 307/308 would re-send the tool parameters to a host
/// the caller never chose. The 3xx comes back as an error naming the target.
#[tokio::test]
async fn a_cross_origin_redirect_is_not_followed() {
    for status in [307u16, 308, 302, 303] {
        let other = MockServer::start().await;
        Mock::given(path("/elsewhere"))
            .respond_with(ok())
            .mount(&other)
            .await;
        let server = MockServer::start().await;
        let target = format!("{}/elsewhere", other.uri());
        always(
            &server,
            ResponseTemplate::new(status).insert_header("location", target.as_str()),
        )
        .await;
        let (client, _) = client(&server);
        let err = run_err(&client).await;
        assert_eq!(err.kind(), ErrorKind::OtherStatus, "{status}: {err:?}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert!(err.to_string().contains(&target), "{err}");
        assert_eq!(
            requests(&other).await,
            0,
            "{status}: followed to another origin"
        );
    }
}

#[tokio::test]
async fn a_same_host_redirect_keeps_the_token() {
    let server = MockServer::start().await;
    Mock::given(path("/moved"))
        .respond_with(ok())
        .mount(&server)
        .await;
    always(
        &server,
        ResponseTemplate::new(307).insert_header("location", "/moved"),
    )
    .await;
    let (client, _) = client(&server);
    client.custom_tools().run(TOOL).send().await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].url.path(), "/moved");
    assert_eq!(
        reqs[1].headers.get("authorization").unwrap(),
        &format!("Bearer {TOKEN}")
    );
}

#[tokio::test]
async fn a_redirect_loop_is_a_transport_error_after_ten_hops() {
    let server = MockServer::start().await;
    always(
        &server,
        ResponseTemplate::new(307).insert_header("location", RUN_PATH),
    )
    .await;
    let (client, sleep) = client(&server);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_eq!(err.attempts(), 1);
    assert!(sleep.waits().is_empty());
    let sent = requests(&server).await;
    assert!((2..=11).contains(&sent), "{sent} requests");
}

#[tokio::test]
async fn a_redirect_without_location_is_an_unexpected_status() {
    let server = MockServer::start().await;
    always(&server, ResponseTemplate::new(302).set_body_string("moved")).await;
    let (client, _) = client(&server);
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::OtherStatus, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(302));
    assert_eq!(err.body_snippet(), Some("moved"));
}

// -------------------------------------------------------------- tool ids --

#[tokio::test]
async fn more_special_ids_stay_in_one_encoded_path_segment() {
    assert_ids_encode(&[
        ("...", "..."),
        ("%2e%2e", "%252e%252e"),
        (".%2e", ".%252e"),
        ("\u{feff}x", "%EF%BB%BFx"),
        ("工具", "%E5%B7%A5%E5%85%B7"),
        ("a;b=c", "a;b=c"),
        ("a|b", "a|b"),
    ])
    .await;
}

/// Control characters cannot be in a real id (the audit sent CR, LF, tab
/// and NUL); nor can 10,000 characters. Refused before sending, with a
/// message that does not echo the id.
#[tokio::test]
async fn ids_with_control_characters_or_over_the_limit_are_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ok())
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let long = "k".repeat(10_000);
    let at_limit = "k".repeat(conduit_sdk::api::MAX_ID_LEN);
    for (id, says) in [
        ("a\rb", "control character (U+000D)"),
        ("a\nb", "control character (U+000A)"),
        ("a\tb", "control character (U+0009)"),
        ("a\0b", "control character (U+0000)"),
        ("a\u{85}b", "control character (U+0085)"),
        (long.as_str(), "10000 characters long; the limit is 256"),
    ] {
        let err = client.custom_tools().run(id).send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{id:?}: {err:?}");
        assert!(err.to_string().contains(says), "{err}");
        assert!(
            !err.to_string().contains("kkkkkkkkkk"),
            "the id is not echoed"
        );
        assert_eq!(err.attempts(), 0);
    }
    assert_eq!(requests(&server).await, 0);
    client.custom_tools().run(at_limit).send().await.unwrap();
    let err = client
        .custom_tools()
        .run(TOOL)
        .workspace_id("ws\n1")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("workspace_id contains a control"),
        "{err}"
    );
}

/// Limitation: progenitor does not percent-encode `\`, which URL parsing
/// turns into `/` for http(s). The generated code refuses such a path
/// parameter as it builds the URL (`conduit_api_gen::request_url`): such
/// an id is never sent, never misrouted.
#[tokio::test]
async fn ids_with_a_backslash_are_refused_before_sending() {
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let (client, _) = client(&server);
    for id in ["a\\b", "..\\x", "\\"] {
        let err = client.custom_tools().run(id).send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{id:?}: {err:?}");
        assert_eq!(err.attempts(), 0, "{id:?}");
    }
    assert_eq!(requests(&server).await, 0);
}

/// The raw client builds the URL the same way for every operation: a path
/// parameter that would leave its segment is refused there, not sent.
#[tokio::test]
async fn raw_path_parameters_that_would_leave_their_segment_are_refused_before_sending() {
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let (client, _) = client(&server);
    for id in ["", ".", "..", "a\\b", "..\\x"] {
        let err = client
            .call(|raw| raw.run_custom_tool().id(id).send())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{id:?}: {err:?}");
        assert!(
            err.to_string().contains("changes the request path"),
            "{err}"
        );
        assert_eq!(err.attempts(), 0, "{id:?}");
    }
    assert_eq!(requests(&server).await, 0);
    // Dots that are not a whole segment, and escaped separators, are sent
    // (this server knows only one tool: the others are its 404s).
    for id in ["...", ".a", "a/b"] {
        let sent = client.call(|raw| raw.run_custom_tool().id(id).send()).await;
        assert!(!sent.is_err_and(|e| e.is_invalid_input()), "{id:?}");
    }
    assert_eq!(requests(&server).await, 3);
}

// ---------------------------------------------------------------- secrets --

/// A password in the base URL is a secret like the token: whatever rule
/// refuses the URL, its message must not repeat it.
#[test]
fn base_url_credentials_never_appear_in_errors() {
    let mut leaks = Vec::new();
    for url in [
        "https://user:hunter2-secret@api.example",
        "http://user:hunter2-secret@api.example",
        "ftp://user:hunter2-secret@api.example",
        "https://user:hunter2-secret@api.example/?q=1",
        "https://user:hunter2-secret@api.example/#top",
        "user:hunter2-secret@api.example",
        "https://user:hunter2-secret@",
    ] {
        let err = Client::builder()
            .token(TOKEN)
            .base_url(url)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
        let text = format!("{err} | {err:?}");
        if text.contains("hunter2-secret") {
            leaks.push(format!("{url}\n    -> {err}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "the password is echoed for:\n{}",
        leaks.join("\n")
    );
}

// ------------------------------------------------------ the outside audit --

/// `https` to a port that speaks plain HTTP: the handshake fails the same
/// way every time, so it is not retried, and the error says TLS.
#[tokio::test]
async fn a_tls_handshake_failure_is_not_retried_and_says_tls() {
    // Answers whatever arrives (a TLS ClientHello) with plain HTTP.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let https = format!("https://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream.read(&mut [0u8; 4096]);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let time = ManualTime::new();
    let client = Client::builder()
        .token(TOKEN)
        .base_url(&https)
        .manual_time(&time)
        .build()
        .unwrap();
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    assert!(err.is_transport());
    assert!(err.to_string().contains("TLS"), "{err}");
    assert_eq!(err.attempts(), 1);
    assert!(time.waits().is_empty(), "no backoff: {:?}", time.waits());
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one connection"
    );
}

/// A body that stops delivering bytes fails after the read-stall limit,
/// not the per-attempt timeout (60 s by default), through the wrapper and
/// through `call`.
#[tokio::test]
async fn a_stalled_body_fails_after_the_read_stall_limit() {
    let mut response = raw_head(
        200,
        &["Content-Type: application/json", "Content-Length: 1000"],
    );
    response.extend_from_slice(b"{\"data\": {");
    let server = RawServer::start(Reply::Stall(response.into()));
    let client = raw_builder(&server)
        .read_stall_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    // The stall lasts until the server stops; the stall limit ends these
    // calls long before the default 60 s attempt timeout, and says so.
    for through_call in [false, true] {
        let err = if through_call {
            call_err(&client).await
        } else {
            run_err(&client).await
        };
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
        assert!(err.to_string().contains("stalled"), "{err}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
    }
}

/// A body that keeps trickling is not a stall: it is read to its end.
#[tokio::test]
async fn a_slow_but_steady_body_is_not_a_stall() {
    let body = serde_json::to_vec(&ok_body()).unwrap();
    let head = raw_head(
        200,
        &[
            "Content-Type: application/json",
            &format!("Content-Length: {}", body.len()),
        ],
    );
    let server = RawServer::start(Reply::Trickle {
        head: head.into(),
        body: body.into(),
        every: Duration::from_millis(1),
    });
    let client = raw_builder(&server)
        .read_stall_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    assert!(
        client
            .custom_tools()
            .run(TOOL)
            .send()
            .await
            .unwrap()
            .success()
    );
}

/// The audit held a call with a 1 s total timeout for 8 s with a trickling
/// 503 body: the error body was read after the timeout had returned. Every
/// byte read for a call now falls inside its total timeout.
#[tokio::test]
async fn total_timeout_bounds_reading_an_error_body_too() {
    let server = RawServer::start(Reply::Trickle {
        head: raw_head(503, &["Content-Type: text/plain", "Content-Length: 10000"]).into(),
        body: vec![b'.'; 10_000].into(),
        every: Duration::from_millis(20),
    });
    let client = raw_builder(&server)
        .total_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = run_err(&client).await;
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    // The body takes 200 s to send: the client hung up before its end, so
    // the timeout was not held back by reading it.
    assert_eq!(server.completed(1).await, [false]);
}

/// JSON has no NaN or infinity; serde_json would send `null` in their
/// place. Refused, naming the parameter, and nothing is sent.
#[tokio::test]
async fn nan_and_infinite_parameters_are_refused_before_sending() {
    #[derive(serde::Serialize)]
    struct Scores {
        order: &'static str,
        scores: Vec<f64>,
    }
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let (client, _) = client(&server);
    let cases = [
        client.custom_tools().run(TOOL).parameter("score", f64::NAN),
        client
            .custom_tools()
            .run(TOOL)
            .parameter("score", f32::INFINITY),
        client.custom_tools().run(TOOL).parameters(&Scores {
            order: "o1",
            scores: vec![1.0, f64::NEG_INFINITY],
        }),
    ];
    let expected = [
        "parameter \"score\" is NaN",
        "parameter \"score\" is inf",
        "parameters.scores[1] is -inf",
    ];
    for (call, says) in cases.into_iter().zip(expected) {
        let err = call.send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
        assert!(err.to_string().contains(says), "{err}");
    }
    assert_eq!(requests(&server).await, 0);
}
