//! The `conduit` CLI against hostile servers and hostile input: each
//! case ends in the documented exit status (2 usage or configuration error,
//! nothing sent; 3 an error response, including a body that does not
//! decode; 4 a transport error or timeout) with a useful message.

mod common;

use common::{Output, TOOL_PATH, requests, server_answering, success_body};
use common::{RawServer, Reply, raw_head};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "tok-cli-hostile-5b2e7d41";

/// Runs the CLI with `args` and the test token, checking it is never printed.
async fn conduit(args: &[&str]) -> Output {
    let out = common::conduit(args, &[("CONDUIT_API_TOKEN", TOKEN)]).await;
    out.assert_hides(TOKEN);
    out
}

/// `tools run TOOL_ID` against `base_url`.
async fn run_tool_at(base_url: &str, tool_id: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--base-url", base_url];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["tools", "run", "--", tool_id]);
    conduit(&args).await
}

// ----------------------------------------------------- hostile responses --

#[tokio::test]
async fn an_html_502_exits_3_naming_502_and_showing_the_page() {
    let server = server_answering(
        ResponseTemplate::new(502)
            .set_body_raw("<html><h1>502 Bad Gateway</h1></html>", "text/html"),
    )
    .await;
    let out = run_tool_at(&server.uri(), "tool_1", &[]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("HTTP 502"), "{out:?}");
    assert!(out.stderr.contains("<h1>502 Bad Gateway</h1>"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(requests(&server).await.len(), 1, "POST is not retried");
}

#[tokio::test]
async fn a_200_that_breaks_the_schema_exits_3() {
    let server = server_answering(
        ResponseTemplate::new(200).set_body_json(json!({"data": {"success": "yes"}})),
    )
    .await;
    let out = run_tool_at(&server.uri(), "tool_1", &[]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("HTTP 200"), "{out:?}");
    assert!(out.stderr.contains("did not decode"), "{out:?}");
    assert!(out.stderr.contains("\"success\":\"yes\""), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// A complete response whose JSON stops half-way is a body that does not
/// decode: exit 3, like any unusable answer from the API.
#[tokio::test]
async fn a_truncated_json_body_exits_3() {
    let full = serde_json::to_string(&success_body()).unwrap();
    let server = server_answering(
        ResponseTemplate::new(200).set_body_raw(&full[..full.len() / 2], "application/json"),
    )
    .await;
    let out = run_tool_at(&server.uri(), "tool_1", &[]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("HTTP 200"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// A connection that ends before the declared length is a transport
/// failure: exit 4.
#[tokio::test]
async fn a_connection_dropped_mid_body_exits_4() {
    let mut response = raw_head(
        200,
        &["Content-Type: application/json", "Content-Length: 1000"],
    );
    response.extend_from_slice(b"{\"data\": {");
    let server = RawServer::start(Reply::Close(response.into()));
    let out = run_tool_at(&server.uri, "tool_1", &[]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("transport error"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(server.heads().len(), 1);
}

#[tokio::test]
async fn a_body_stalled_after_the_headers_exits_4() {
    let mut response = raw_head(
        200,
        &["Content-Type: application/json", "Content-Length: 1000"],
    );
    response.extend_from_slice(b"{\"data\": {");
    let server = RawServer::start(Reply::Stall(response.into()));
    let out = run_tool_at(&server.uri, "tool_1", &["--timeout", "0.3"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("timed out"), "{out:?}");
}

#[tokio::test]
async fn a_40_mib_200_exits_3_without_reading_it_all() {
    let body = vec![b' '; 40 * 1024 * 1024];
    let server =
        server_answering(ResponseTemplate::new(200).set_body_raw(body, "application/json")).await;
    let out = run_tool_at(&server.uri(), "tool_1", &[]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("max_response_bytes"), "{out:?}");
    assert!(
        out.stderr.len() < 4096,
        "{} bytes of stderr",
        out.stderr.len()
    );
}

// -------------------------------------------------------------- tool ids --

#[tokio::test]
async fn dot_segment_blank_and_backslash_ids_exit_2_and_send_nothing() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    for id in ["..", ".", "", " tool_1", "a\\b"] {
        let out = run_tool_at(&server.uri(), id, &[]).await;
        assert_eq!(out.code, 2, "{id:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{id:?}: {out:?}");
    }
    assert_eq!(requests(&server).await.len(), 0);
}

#[tokio::test]
async fn special_ids_are_sent_as_exactly_one_encoded_segment() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(success_body()))
        .mount(&server)
        .await;
    let cases = [
        ("a/b", "a%2Fb"),
        ("../x", "..%2Fx"),
        ("a?b", "a%3Fb"),
        ("a#b", "a%23b"),
        ("50%", "50%25"),
        ("%2e%2e", "%252e%252e"),
        ("a b", "a%20b"),
        ("ü", "%C3%BC"),
        ("工具", "%E5%B7%A5%E5%85%B7"),
        ("🔧", "%F0%9F%94%A7"),
        ("...", "..."),
        ("-dash", "-dash"),
    ];
    for (id, encoded) in cases {
        let out = run_tool_at(&server.uri(), id, &[]).await;
        assert_eq!(out.code, 0, "{id:?}: {out:?}");
        let reqs = requests(&server).await;
        let got = reqs.last().unwrap().url.path().to_owned();
        assert_eq!(got, format!("/v1/custom-tools/{encoded}/run"), "{id:?}");
    }
    assert_eq!(requests(&server).await.len(), cases.len());
}

// ------------------------------------------------------------- base URLs --

#[tokio::test]
async fn a_base_url_without_scheme_exits_2_and_sends_nothing() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let host_port = server.uri().trim_start_matches("http://").to_owned();
    let localhost = host_port.replace("127.0.0.1", "localhost");
    for url in [host_port.as_str(), localhost.as_str(), "api.conduit.ai"] {
        let out = run_tool_at(url, "tool_1", &[]).await;
        assert_eq!(out.code, 2, "{url}: {out:?}");
        assert!(out.stderr.contains("base URL"), "{url}: {out:?}");
    }
    assert_eq!(requests(&server).await.len(), 0);
}

/// Plain http to a host that is not loopback is refused before connecting.
/// The unspecified addresses are not loopback for the SDK, yet a connection
/// to them stays on this machine (to this test's server, for `0.0.0.0`), so
/// "nothing sent" is checked rather than assumed and no traffic can leave
/// the machine even if the rule regressed. (A public name such as
/// `http://example.com` is refused by the same rule; the unit tests of
/// `client.rs` cover that without a network.)
#[tokio::test]
async fn plain_http_to_a_non_loopback_host_exits_2_and_sends_nothing() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let port = server.address().port();
    let v4 = format!("http://0.0.0.0:{port}");
    let v6 = format!("http://[::]:{port}");
    for url in [v4.as_str(), v6.as_str()] {
        let out = run_tool_at(url, "tool_1", &[]).await;
        assert_eq!(out.code, 2, "{url}: {out:?}");
        assert!(out.stderr.contains("plain http"), "{url}: {out:?}");
    }
    assert_eq!(requests(&server).await.len(), 0);
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_and_trailing_slash_works() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/proxy/conduit{TOOL_PATH}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(success_body()))
        .expect(2)
        .mount(&server)
        .await;
    for url in [
        format!("{}/proxy/conduit/", server.uri()),
        format!("{}/proxy/conduit", server.uri()),
    ] {
        let out = run_tool_at(&url, "tool_1", &[]).await;
        assert_eq!(out.code, 0, "{url}: {out:?}");
    }
}

// ------------------------------------------------------ the outside audit --

/// Escape codes, a 1 MiB message and an echoed token in an API error reach
/// stderr escaped, cut and masked.
#[tokio::test]
async fn server_text_reaches_stderr_escaped_cut_and_masked() {
    let hostile = format!(
        "\u{1b}]0;pwned\u{7}\u{1b}[2J{} Bearer {TOKEN}",
        "m".repeat(1 << 20)
    );
    let server =
        server_answering(ResponseTemplate::new(401).set_body_json(json!({ "error": hostile })))
            .await;
    let out = run_tool_at(&server.uri(), "tool_1", &[]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        !out.stderr.contains('\u{1b}') && !out.stderr.contains('\u{7}'),
        "{:?}",
        &out.stderr[..200]
    );
    assert!(
        out.stderr.contains("\\u{1b}]0;pwned"),
        "{:?}",
        &out.stderr[..200]
    );
    assert!(
        out.stderr.len() < 8 * 1024,
        "{} bytes of stderr",
        out.stderr.len()
    );
    assert!(out.stderr.contains("[cut: "));
    out.assert_hides(TOKEN);
}

/// A failed tool's own error text is server text too: escaped and masked
/// on stderr. stdout is the run's data as the server sent it, in JSON,
/// which escapes control characters itself.
#[tokio::test]
async fn a_failed_tools_text_reaches_stderr_escaped() {
    let body = json!({"data": {
        "success": false, "message": null, "result": null,
        "error": format!("\u{1b}[31mboom\u{8}\u{8}\r{TOKEN}"), "logs": null, "run_time_ms": 1
    }});
    let server = server_answering(ResponseTemplate::new(200).set_body_json(body)).await;
    let uri = server.uri();
    let args = ["--base-url", uri.as_str(), "tools", "run", "tool_1"];
    let out = common::conduit(&args, &[("CONDUIT_API_TOKEN", TOKEN)]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("\\u{1b}[31mboom\\u{8}\\u{8}\\r[redacted]"),
        "{out:?}"
    );
    assert!(!out.stderr.contains(TOKEN), "{out:?}");
    assert!(!out.stdout.contains('\u{1b}'), "{out:?}");
}

/// `https` to a port that speaks plain HTTP: exit 4 at once, saying TLS.
#[tokio::test]
async fn a_tls_failure_exits_4_saying_tls() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let https = format!("https://{}", listener.local_addr().unwrap());
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream.read(&mut [0u8; 4096]);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let out = run_tool_at(&https, "tool_1", &[]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("TLS"), "{out:?}");
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "not retried"
    );
}

#[tokio::test]
async fn a_timeout_under_a_millisecond_is_a_usage_error() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    for secs in ["0.0001", "0.0009", "1e-9"] {
        let out = run_tool_at(&server.uri(), "tool_1", &["--timeout", secs]).await;
        assert_eq!(out.code, 2, "{secs}: {out:?}");
    }
    let out = run_tool_at(&server.uri(), "tool_1", &["--timeout", "0.001"]).await;
    assert_ne!(out.code, 2, "a millisecond is allowed: {out:?}");
    assert!(requests(&server).await.len() <= 1);
}
