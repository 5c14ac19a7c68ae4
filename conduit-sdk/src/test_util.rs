//! For testing code that uses the SDK: typed mocks of every operation,
//! fakes of what calls return, and virtual time. Available with the
//! `test-util` feature.
//!
//! - [`MockServerExt`] adds one method per operation of the spec to
//!   [`httpmock::MockServer`](https://docs.rs/httpmock/0.9/httpmock/struct.MockServer.html),
//!   generated from the same spec as the client:
//!   `server.run_custom_tool(|when, then| { when.id("t1"); then.ok(&body); })`
//!   matches only that operation's requests and answers only its documented
//!   responses, type-checked.
//! - [`run_response`] builds the body of a 200 from the `data` fields you
//!   care about; [`tool_run`] a [`ToolRun`] and [`error`] an [`Error`] for
//!   fakes that never touch HTTP.
//! - [`ThenExt::rate_limited`] answers 429 with a `Retry-After`, and
//!   [`ThenExt::up_to_n_times`] answers only the first n requests, so that
//!   "429 twice, then 200" is two mocks.
//! - [`ManualTime`] records waits instead of taking them.
//!
//! ```
//! use conduit_sdk::test_util::{MockServerExt, httpmock::MockServer, run_response};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let server = MockServer::start_async().await;
//! let mock = server.run_custom_tool(|when, then| {
//!     when.id("t1");
//!     then.ok(&run_response(json!({"result": {"rawData": {"status": "shipped"}}})));
//! });
//! let client = conduit_sdk::Client::builder().token("t").base_url(server.base_url()).build().unwrap();
//! let run = client.custom_tools().run("t1").send().await.unwrap();
//! assert_eq!(run.result()["rawData"]["status"], "shipped");
//! mock.assert();
//! # }
//! ```

use std::time::Duration;

use bytes::Bytes;
pub use conduit_api_gen::mock::httpmock;
pub use conduit_api_gen::mock::{MockServerExt, operations};
use conduit_api_gen::types::{ApiError, RunCustomToolResponse};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

pub use crate::time::{Clock, ManualTime, Sleep};
use crate::{Error, ErrorKind, ToolRun};

/// The 200 body of a run whose `data` holds `data`'s fields; the rest take
/// the values of a quick successful run (`success: true`, `result`,
/// `message`, `error` and `logs` null, `run_time_ms` 1).
///
/// # Panics
/// If `data` is not an object, or a field has the wrong type: a test's
/// mistake, reported at once.
pub fn run_response(data: Value) -> RunCustomToolResponse {
    serde_json::from_value(json!({ "data": with_defaults(data) }))
        .expect("run_response: the data fields have the documented types")
}

/// A [`ToolRun`] as a successful call would return it, from `data`'s
/// fields (the rest as in [`run_response`]), with status 200 and no
/// headers.
///
/// # Panics
/// As [`run_response`].
pub fn tool_run(data: Value) -> ToolRun {
    let data = with_defaults(data);
    let body = Bytes::from(json!({ "data": data }).to_string());
    let decoded = run_response(data).data;
    ToolRun::fake(decoded, body)
}

fn with_defaults(data: Value) -> Value {
    let Value::Object(fields) = data else {
        panic!("run_response: data must be a JSON object");
    };
    let mut full: Map<String, Value> = json!({
        "success": true, "message": null, "result": null, "error": null, "logs": null,
        "run_time_ms": 1
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    full.extend(fields);
    Value::Object(full)
}

/// What every typed mock's `then` can also answer, beyond the responses
/// its operation documents.
///
/// Two mocks of one operation answer 429 twice with `Retry-After: 2`,
/// then 200 (httpmock serves a request with the first mock, in the order
/// they were made, that matches it and is not used up):
///
/// ```
/// use std::time::Duration;
/// use conduit_sdk::test_util::{ManualTime, MockServerExt, ThenExt, httpmock::MockServer, run_response};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let server = MockServer::start_async().await;
/// let limited = server.run_custom_tool(|when, then| {
///     when.id("t1");
///     then.rate_limited(Duration::from_secs(2)).up_to_n_times(2);
/// });
/// let ok = server.run_custom_tool(|when, then| {
///     when.id("t1");
///     then.ok(&run_response(json!({})));
/// });
/// let time = ManualTime::new();
/// let client = conduit_sdk::Client::builder()
///     .token("t")
///     .base_url(server.base_url())
///     .manual_time(&time)
///     // Without the rate-limit gate, which spreads callers out after a
///     // 429, each wait is the Retry-After alone.
///     .rate_limiter(conduit_sdk::RateLimiter::disabled())
///     .build()
///     .unwrap();
/// assert!(client.custom_tools().run("t1").send().await.unwrap().success());
/// limited.assert_calls(2);
/// ok.assert_calls(1);
/// assert_eq!(time.waits(), [Duration::from_secs(2); 2]);
/// # }
/// ```
pub trait ThenExt: Sized {
    /// Answers 429 with `Retry-After: retry_after` (whole seconds, rounded
    /// up, as the header has no fractions) and the API's error body, as the
    /// API does when a workspace is over its rate limit.
    fn rate_limited(self, retry_after: Duration) -> Self;

    /// Answers only the first `n` requests this mock matches; later ones go
    /// to the next mock that matches them (httpmock's
    /// [`Then::up_to_n_times`](https://docs.rs/httpmock/0.9/httpmock/struct.Then.html#method.up_to_n_times)).
    ///
    /// # Panics
    /// When `n` is 0 (httpmock refuses it).
    fn up_to_n_times(self, n: usize) -> Self;
}

impl ThenExt for httpmock::Then {
    fn rate_limited(self, retry_after: Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let body = ApiError {
            error: "Rate limit exceeded".to_owned(),
        };
        self.status(429)
            .header("content-type", "application/json")
            .header("retry-after", seconds.to_string())
            .json_body_obj(&body)
    }

    fn up_to_n_times(self, n: usize) -> Self {
        httpmock::Then::up_to_n_times(self, n)
    }
}

impl ThenExt for operations::RunCustomToolThen {
    fn rate_limited(self, retry_after: Duration) -> Self {
        Self::new(self.into_inner().rate_limited(retry_after))
    }

    fn up_to_n_times(self, n: usize) -> Self {
        Self::new(ThenExt::up_to_n_times(self.into_inner(), n))
    }
}

/// Starts a fake [`Error`] of `kind`; set what the code under test reads.
///
/// ```
/// use std::time::Duration;
/// use conduit_sdk::{ErrorKind, test_util};
///
/// let e = test_util::error(ErrorKind::RateLimited)
///     .status(429)
///     .api_message("Rate limit exceeded")
///     .retry_after(Duration::from_secs(30))
///     .build();
/// assert!(e.is_rate_limited());
/// assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
/// ```
pub fn error(kind: ErrorKind) -> FakeError {
    FakeError(Error::new(kind))
}

/// A fake [`Error`] being built; see [`error`].
#[derive(Debug)]
#[must_use = "build() makes the error"]
pub struct FakeError(Error);

impl FakeError {
    /// The HTTP status (any number 100-999; others are ignored).
    pub fn status(self, status: u16) -> Self {
        Self(self.0.with_status(StatusCode::from_u16(status).ok()))
    }

    /// The server's `error` string.
    pub fn api_message(self, message: impl Into<String>) -> Self {
        Self(self.0.with_api_message(Some(message.into())))
    }

    /// The SDK's own message.
    pub fn message(self, message: impl Into<String>) -> Self {
        Self(self.0.with_message(message))
    }

    /// How long the server asked to wait.
    pub fn retry_after(self, wait: Duration) -> Self {
        Self(self.0.with_retry_after(Some(wait)))
    }

    /// The server's request id.
    pub fn request_id(self, id: impl Into<String>) -> Self {
        Self(self.0.with_request_id(Some(id.into())))
    }

    /// Requests sent.
    pub fn attempts(self, attempts: u32) -> Self {
        Self(self.0.with_attempts(attempts))
    }

    /// The error.
    pub fn build(self) -> Error {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_run_reads_like_a_real_one() {
        let run = tool_run(json!({"success": false, "error": "boom", "future_field": 1}));
        assert!(!run.success());
        assert_eq!(run.error(), Some("boom"));
        assert_eq!(run.json()["future_field"], 1);
        let failed = run.into_result().unwrap_err();
        assert_eq!(failed.message(), "boom");
        assert_eq!(failed.run().json()["error"], "boom");
    }

    #[test]
    fn a_fake_error_carries_what_was_set() {
        let e = error(ErrorKind::NotFound)
            .status(404)
            .api_message("no such tool")
            .request_id("r1")
            .build();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.status().map(|s| s.as_u16()), Some(404));
        assert_eq!(
            e.to_string(),
            "not found (status 404): no such tool (request id r1)"
        );
    }
}
