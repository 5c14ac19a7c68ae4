//! Server text as the SDK shows it: control characters escaped, long text
//! cut with a marker, the client's token masked, in `Display`, `Debug` and
//! every accessor, whatever the server sends.

mod common;

use common::*;
use conduit_sdk::shown::{MESSAGE_LIMIT, SNIPPET_LIMIT};
use conduit_sdk::{Error, ErrorKind};
use serde_json::json;
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

/// Everything an error shows, in one string.
fn shown(e: &Error) -> String {
    format!(
        "{e}\n{e:?}\n{:?}\n{:?}\n{:?}",
        e.api_message(),
        e.body_snippet(),
        std::error::Error::source(e).map(|s| s.to_string())
    )
}

fn assert_no_controls(text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(bad.is_empty(), "control characters {bad:?} in {text:?}");
}

const HOSTILE: &str =
    "pwned\u{1b}]0;owned title\u{7}\u{1b}[2J\u{1b}[31mred\u{8}\u{8}\r\u{202e}gnp.exe";

#[tokio::test]
async fn escape_codes_in_an_api_message_are_shown_escaped() {
    for status in [400, 404, 409, 503] {
        let server = MockServer::start().await;
        always(&server, error(status, HOSTILE)).await;
        let (client, _) = client(&server);
        let e = client.custom_tools().run(TOOL).send().await.unwrap_err();
        let text = shown(&e);
        // Debug escapes by itself; Display and the accessor must too.
        assert_no_controls(&e.to_string());
        assert_no_controls(e.api_message().unwrap());
        assert!(!text.contains('\u{202e}'), "{text}");
        assert!(
            e.api_message().unwrap().contains("\\u{1b}]0;owned title"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn escape_codes_in_a_body_snippet_are_shown_escaped() {
    let server = MockServer::start().await;
    always(
        &server,
        ResponseTemplate::new(502).set_body_raw(format!("<h1>{HOSTILE}</h1>"), "text/html"),
    )
    .await;
    let (client, _) = client(&server);
    let e = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_no_controls(e.body_snippet().unwrap());
    assert!(
        e.body_snippet().unwrap().starts_with("<h1>pwned\\u{1b}]0;"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_one_mib_message_is_cut_with_a_marker() {
    let server = MockServer::start().await;
    always(&server, error(400, &"m".repeat(1 << 20))).await;
    let (client, _) = client(&server);
    let e = client.custom_tools().run(TOOL).send().await.unwrap_err();
    let message = e.api_message().unwrap();
    assert!(
        message.len() <= MESSAGE_LIMIT + 64,
        "{} bytes",
        message.len()
    );
    assert!(message.contains("… [cut: "), "{message}");
    assert!(
        e.to_string().len() < 2 * MESSAGE_LIMIT,
        "{} bytes",
        e.to_string().len()
    );
    assert!(format!("{e:?}").len() < 2 * MESSAGE_LIMIT);
}

/// Echoes the request's `Authorization` header in its error body, as a
/// careless proxy or debug endpoint would.
struct EchoAuthorization(u16);

impl Respond for EchoAuthorization {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = json!({ "error": format!("bad credentials: {auth}"), "echo": auth });
        ResponseTemplate::new(self.0).set_body_json(body)
    }
}

#[tokio::test]
async fn a_token_echoed_by_the_server_is_masked_everywhere() {
    for status in [401, 403, 418, 500] {
        let server = MockServer::start().await;
        always(&server, EchoAuthorization(status)).await;
        let (client, _) = client(&server);
        let e = client.custom_tools().run(TOOL).send().await.unwrap_err();
        let text = shown(&e);
        assert!(!text.contains(TOKEN), "{status}: the token leaked: {text}");
        assert!(text.contains("Bearer [redacted]"), "{status}: {text}");
    }
    // In a body that does not decode, the snippet masks it too.
    let server = MockServer::start().await;
    let body = format!("<pre>Authorization: Bearer {TOKEN}</pre>");
    always(
        &server,
        ResponseTemplate::new(401).set_body_raw(body, "text/html"),
    )
    .await;
    let (client, _) = client(&server);
    let e = client.custom_tools().run(TOOL).send().await.unwrap_err();
    let text = shown(&e);
    assert!(!text.contains(TOKEN), "{text}");
    assert!(
        e.body_snippet().unwrap().contains("Bearer [redacted]"),
        "{text}"
    );
}

#[tokio::test]
async fn a_failed_tools_text_is_shown_safely_and_the_token_masked() {
    let server = MockServer::start().await;
    let body = json!({"data": {
        "success": false, "message": null, "result": null,
        "error": format!("{HOSTILE} token={TOKEN}"),
        "logs": format!("line 1\n\u{1b}[31mline 2\ttab {TOKEN}\n"),
        "run_time_ms": 5
    }});
    always(&server, ResponseTemplate::new(200).set_body_json(body)).await;
    let (client, _) = client(&server);
    let run = client.custom_tools().run(TOOL).send().await.unwrap();
    let failed = run.into_result().unwrap_err();
    // Logs keep their lines and tabs, nothing else.
    assert_eq!(
        failed.logs().unwrap(),
        "line 1\n\\u{1b}[31mline 2\ttab [redacted]\n"
    );
    let failure_text = format!("{failed}\n{failed:?}\n{}", failed.message());
    assert!(!failure_text.contains(TOKEN), "{failure_text}");
    assert_no_controls(&failed.to_string());
    let e = conduit_sdk::Error::from(failed);
    assert_eq!(e.kind(), ErrorKind::ToolFailed);
    let text = shown(&e);
    assert!(!text.contains(TOKEN), "{text}");
    assert_no_controls(&e.to_string());
}

#[tokio::test]
async fn a_decode_error_does_not_quote_the_token_through_its_source() {
    // A 200 whose `success` holds the echoed header: serde's message quotes
    // the string it could not use.
    let server = MockServer::start().await;
    let body = json!({"data": {"success": format!("Bearer {TOKEN}"), "run_time_ms": 1}});
    always(&server, ResponseTemplate::new(200).set_body_json(body)).await;
    let (client, _) = client(&server);
    let e = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    let mut chain = shown(&e);
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        chain.push_str(&format!("\n{s}\n{s:?}"));
        source = s.source();
    }
    assert!(!chain.contains(TOKEN), "{chain}");
    assert!(e.body_snippet().unwrap().len() <= SNIPPET_LIMIT + 64);
}

#[tokio::test]
async fn only_an_error_object_carries_a_server_message() {
    let cases = [
        (json!({"error": "bad id"}), Some("bad id")),
        (json!({"error": ""}), Some("")),
        // serde would read these into the generated ApiError in field
        // order; they are not error objects.
        (json!([""]), None),
        (json!(["bad id"]), None),
        (json!({"error": 7}), None),
    ];
    for (body, expected) in cases {
        let server = MockServer::start().await;
        always(&server, ResponseTemplate::new(400).set_body_json(&body)).await;
        let (client, _) = client(&server);
        let e = client.custom_tools().run(TOOL).send().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadRequest, "{body}");
        assert_eq!(e.api_message(), expected, "{body}");
    }
}
