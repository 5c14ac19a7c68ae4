//! Property tests: fuzzing on the stable toolchain. `Retry-After` parsing on
//! arbitrary strings, and the whole call (response decoding, error mapping,
//! retries) against a local server answering arbitrary statuses, headers
//! and bodies. None may panic; every error keeps the status that was sent.
//!
//! Each property runs 64 cases by default; `CONDUIT_FUZZ_CASES=N` raises
//! that (`cargo xtask fuzz` does). A failure prints the smallest input
//! found.

mod common;

use std::time::Duration;

use common::*;
use conduit_sdk::test_util::ManualTime;
use conduit_sdk::{ErrorKind, RateLimiter};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};
use wiremock::matchers::any as any_request;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The longest wait the default policy takes.
const MAX_WAIT: Duration = Duration::from_secs(60);

fn cases() -> u32 {
    std::env::var("CONDUIT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(64)
}

/// No regression files are written next to the sources: a failure prints
/// its minimal input, which becomes a plain test.
fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    }
}

// ------------------------------------------------------ whole-call fuzzing --

/// A response body, shown as text when a failure is printed.
#[derive(Clone)]
struct Body(Vec<u8>);

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// One response the server gives to every request.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    content_type: &'static str,
    retry_after: Option<String>,
    body: Body,
}

/// Statuses wiremock can send as a final answer, weighted towards the
/// documented ones and those with their own rules.
fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        2 => 200u16..600,
        3 => select(vec![
            200u16, 201, 204, 205, 301, 302, 304, 307, 308, 400, 401, 403, 404, 409, 418,
            429, 500, 502, 503, 504, 599,
        ]),
    ]
}

fn content_type() -> impl Strategy<Value = &'static str> {
    select(vec![
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "text/html",
        "application/octet-stream",
        "application/problem+json",
    ])
}

fn retry_after() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        "[0-9]{1,3}",
        "[ -~]{0,24}",
        "[-+ .0-9eE]{0,12}",
        "(Mon|Sun), [0-9]{2} (Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
    ])
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((".{0,10}", inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A run's `data`: with `mangled`, each field may be missing or of the
/// wrong type; without, every field is there with its documented type
/// (values still arbitrary: any `result`, huge or negative run times).
/// Unknown extra fields are added either way.
fn data_object(mangled: bool) -> impl Strategy<Value = Value> {
    let field = move |valid: BoxedStrategy<Value>| {
        if mangled {
            proptest::option::weighted(0.8, prop_oneof![3 => valid, 1 => json_value()]).boxed()
        } else {
            valid.prop_map(Some).boxed()
        }
    };
    let opt_string = || prop_oneof![Just(Value::Null), ".{0,30}".prop_map(Value::from)].boxed();
    let number = prop_oneof![
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any::<i64>().prop_map(Value::from),
        select(vec![
            json!(0),
            json!(-1),
            json!(1e308),
            json!(-1e308),
            json!(u64::MAX)
        ]),
    ]
    .boxed();
    (
        field(any::<bool>().prop_map(Value::from).boxed()),
        field(opt_string()),
        field(json_value().boxed()),
        field(opt_string()),
        field(opt_string()),
        field(number),
        vec((".{0,10}", json_value()), 0..3),
    )
        .prop_map(
            |(success, message, result, error, logs, run_time_ms, extra)| {
                let mut data: Map<String, Value> = extra.into_iter().collect();
                for (key, value) in [
                    ("success", success),
                    ("message", message),
                    ("result", result),
                    ("error", error),
                    ("logs", logs),
                    ("run_time_ms", run_time_ms),
                ] {
                    if let Some(v) = value {
                        data.insert(key.to_owned(), v);
                    }
                }
                Value::Object(data)
            },
        )
}

/// `{"data": ...}` with every documented field well typed.
fn valid_data_body() -> impl Strategy<Value = Body> {
    data_object(false).prop_map(|d| Body(to_body(&json!({ "data": d }))))
}

fn to_body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a Value serializes")
}

/// Bodies shaped like what the API sends, or nearly: error objects with any
/// `error` value, `data` objects with any fields, truncated or deeply
/// nested JSON.
fn json_body() -> impl Strategy<Value = Body> {
    let error_object =
        (json_value(), vec((".{0,10}", json_value()), 0..3)).prop_map(|(error, extra)| {
            let mut map: Map<String, Value> = extra.into_iter().collect();
            map.insert("error".into(), error);
            to_body(&Value::Object(map))
        });
    let error_string = ".{0,80}".prop_map(|e| to_body(&json!({ "error": e })));
    let data = data_object(true).prop_map(|d| to_body(&json!({ "data": d })));
    let truncated = (data_object(true), any::<prop::sample::Index>()).prop_map(|(d, at)| {
        let full = to_body(&json!({ "data": d }));
        let cut = at.index(full.len());
        full[..cut].to_vec()
    });
    let deep = (1usize..3000, any::<bool>()).prop_map(|(depth, in_result)| {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        if in_result {
            format!(r#"{{"data": {{"success": true, "result": {nested}, "run_time_ms": 1}}}}"#)
                .into_bytes()
        } else {
            nested.into_bytes()
        }
    });
    prop_oneof![
        2 => error_object,
        2 => error_string,
        3 => data,
        1 => truncated,
        1 => deep,
        1 => json_value().prop_map(|v| to_body(&v)),
    ]
    .prop_map(Body)
}

fn byte_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        vec(any::<u8>(), 0..2048),
        ".{0,600}".prop_map(String::into_bytes),
    ]
    .prop_map(Body)
}

fn answer(body: impl Strategy<Value = Body>) -> impl Strategy<Value = Answer> {
    (status(), content_type(), retry_after(), body).prop_map(
        |(status, content_type, retry_after, body)| Answer {
            status,
            content_type,
            retry_after,
            body,
        },
    )
}

/// The kind a non-success status maps to.
fn kind_for(status: u16) -> ErrorKind {
    match status {
        400 => ErrorKind::BadRequest,
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::OtherStatus,
    }
}

/// The server message an error should carry: the `error` string of a JSON
/// object, whatever the status. A one-element array (`["text"]`, which
/// serde would take for the generated `ApiError` in field order) is not an
/// error object, and carries none.
fn api_message(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| Some(v.get("error")?.as_str()?.to_owned()))
}

/// Checks a snippet against its body: no control characters, at most the
/// limit before the cut marker, and a body with nothing to escape shown as
/// it is, cut exactly when longer than the limit.
fn check_snippet(snippet: &str, body: &[u8]) -> Result<(), TestCaseError> {
    let limit = conduit_sdk::shown::SNIPPET_LIMIT;
    let (text, cut) = match snippet.find("… [cut: ") {
        Some(i) => {
            prop_assert!(snippet.ends_with(" bytes not shown]"), "{snippet:?}");
            (&snippet[..i], true)
        }
        None => (snippet, false),
    };
    prop_assert!(text.len() <= limit, "{} bytes", text.len());
    prop_assert!(
        !text.chars().any(|c| c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "a control character is shown: {text:?}"
    );
    // Text with nothing to escape is shown as it is: the body itself,
    // decoded lossily, up to the limit.
    let decoded = String::from_utf8_lossy(body);
    let plain = !decoded
        .chars()
        .any(|c| c.is_control() || c == '\\' || !c.is_ascii());
    if plain {
        let expected = &decoded[..decoded.len().min(limit)];
        prop_assert_eq!(text, expected);
        prop_assert_eq!(cut, decoded.len() > limit);
    }
    Ok(())
}

/// Runs the tool against a server answering every request with each
/// generated [`Answer`], checking what comes back.
fn fuzz_calls(strategy: impl Strategy<Value = Answer>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(MockServer::start());
    let sleep = ManualTime::new();
    // The cases share one client: without the gate, the pacing one case's
    // 429 starts would add waits to the next case's.
    let client = builder(&server)
        .manual_time(&sleep)
        .rate_limiter(RateLimiter::disabled())
        .build()
        .unwrap();
    let mut runner = TestRunner::new(config());
    let result = runner.run(&strategy, |answer| {
        let Answer {
            status,
            content_type,
            retry_after,
            body,
        } = answer;
        let mut template = ResponseTemplate::new(status).set_body_raw(body.0.clone(), content_type);
        if let Some(v) = &retry_after {
            template = template.insert_header("retry-after", v.as_str());
        }
        let waits_before = sleep.waits().len();
        let (result, sent) = rt.block_on(async {
            server.reset().await;
            Mock::given(any_request())
                .respond_with(template)
                .mount(&server)
                .await;
            let result = client.custom_tools().run(TOOL).send().await;
            (result, requests(&server).await)
        });
        let waits = sleep.waits().split_off(waits_before);
        prop_assert!(
            waits.iter().all(|w| *w <= MAX_WAIT),
            "a wait above the cap was taken: {waits:?}"
        );
        prop_assert_eq!(waits.len() + 1, sent, "one wait between attempts");
        if status != 429 {
            prop_assert_eq!(sent, 1, "POST is only retried after 429");
        }
        let err = match result {
            Ok(run) => {
                // A 2xx other than the documented 200 succeeds only with
                // the documented body: a write it made is not reported lost.
                prop_assert!((200..300).contains(&status), "{status} succeeded");
                prop_assert_eq!(run.status().as_u16(), status);
                // The accessors of any decoded run are total.
                let _ = (run.run_time(), run.raw_data::<Value>(), run.message());
                let _ = run.into_result().map_err(|e| e.to_string());
                return Ok(());
            }
            Err(err) => err,
        };
        let text = format!("{err} | {err:?}");
        prop_assert!(!text.contains(TOKEN), "the token leaked: {text}");
        prop_assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{}", text);
        prop_assert_eq!(err.attempts() as usize, sent, "{}", text);
        let expected_kind = match status {
            200 => ErrorKind::Decode,
            201..=299 => ErrorKind::OtherStatus,
            _ => kind_for(status),
        };
        prop_assert_eq!(err.kind(), expected_kind, "{}", text);
        if let Some(snippet) = err.body_snippet() {
            prop_assert!(snippet.len() <= SNIPPET_MAX, "{} bytes", snippet.len());
            // 204 and 304 carry no body on the wire.
            if ![204, 304].contains(&status) {
                check_snippet(snippet, &body.0)?;
            }
        }
        if status >= 400 {
            let expected = api_message(&body.0);
            prop_assert_eq!(err.api_message().is_some(), expected.is_some(), "{}", text);
            if let (Some(shown), Some(raw)) = (err.api_message(), expected) {
                prop_assert!(!shown.chars().any(char::is_control), "{shown:?}");
                prop_assert!(
                    shown.len() <= conduit_sdk::shown::MESSAGE_LIMIT + 64,
                    "{}",
                    shown.len()
                );
                // A message with nothing to escape or cut is shown as sent.
                let plain = raw.len() <= conduit_sdk::shown::MESSAGE_LIMIT
                    && !raw
                        .chars()
                        .any(|c| c.is_control() || c == '\\' || !c.is_ascii());
                if plain {
                    prop_assert_eq!(shown, raw.as_str());
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn any_status_with_any_bytes_gives_a_typed_error_with_that_status() {
    fuzz_calls(answer(byte_body()));
}

#[test]
fn any_status_with_api_shaped_json_gives_a_typed_error_with_that_status() {
    fuzz_calls(answer(json_body()));
}

#[test]
fn a_200_with_any_data_object_decodes_or_is_a_decode_error() {
    fuzz_calls(
        (
            content_type(),
            prop_oneof![3 => valid_data_body(), 1 => json_body()],
        )
            .prop_map(|(content_type, body)| Answer {
                status: 200,
                content_type,
                retry_after: None,
                body,
            }),
    );
}
