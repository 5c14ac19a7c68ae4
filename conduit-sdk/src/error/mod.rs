//! The one error type of the SDK.

mod from_response;

pub(crate) use from_response::{body_error, from_raw, from_reply, refused, transport_error};

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, broadly. New kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The client could not be built (missing token, bad base URL…).
    Config,
    /// The request was refused before anything was sent (empty tool id,
    /// parameters that are not a JSON object…).
    InvalidInput,
    /// 400: the server rejected the request.
    BadRequest,
    /// 401: the token is missing, malformed or revoked.
    Unauthorized,
    /// 403: the token may not do this (write access, workspace).
    Forbidden,
    /// 404: no such resource.
    NotFound,
    /// 429, after the retries the policy allows.
    RateLimited,
    /// A 5xx status.
    Server,
    /// Any other non-success status.
    OtherStatus,
    /// The connection could not be opened.
    Connect,
    /// The TLS handshake failed (certificate, protocol, or a port that does
    /// not speak TLS): not retried, a retry would fail the same way.
    Tls,
    /// No response in time.
    Timeout,
    /// The connection failed otherwise (reset, dropped mid-response…).
    Transport,
    /// The response did not decode into the documented shape.
    Decode,
    /// The custom tool ran and its own code failed (`success: false`):
    /// from a [`ToolFailure`](crate::ToolFailure), which keeps the run.
    ToolFailed,
}

impl ErrorKind {
    /// The kind in snake case, such as `not_found` or `rate_limited`: a
    /// stable name for logs and machine-readable output.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Server => "server",
            ErrorKind::OtherStatus => "other_status",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Transport => "transport",
            ErrorKind::Decode => "decode",
            ErrorKind::ToolFailed => "tool_failed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every fallible SDK call.
///
/// Inspect it with [`kind`](Error::kind) or the `is_*` predicates; it carries
/// the HTTP status, the server's `error` message, the number of attempts and,
/// for rate limits, the server's retry-after. It never holds the API token.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: Option<String>,
    status: Option<StatusCode>,
    api_message: Option<String>,
    operation: Option<&'static str>,
    attempts: u32,
    waited: Duration,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    refused_locally: bool,
    body_snippet: Option<String>,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: None,
                status: None,
                api_message: None,
                operation: None,
                attempts: 0,
                waited: Duration::ZERO,
                request_id: None,
                retry_after: None,
                refused_locally: false,
                body_snippet: None,
                source: None,
            }),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config).with_message(message)
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput).with_message(message)
    }

    /// The kind for a non-success HTTP status.
    pub(crate) fn for_status(status: StatusCode) -> Self {
        let kind = match status.as_u16() {
            400 => ErrorKind::BadRequest,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::OtherStatus,
        };
        let mut e = Self::new(kind);
        e.inner.status = Some(status);
        e
    }

    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Self {
        self.inner.message = Some(message.into());
        self
    }

    pub(crate) fn with_status(mut self, status: Option<StatusCode>) -> Self {
        self.inner.status = status.or(self.inner.status);
        self
    }

    pub(crate) fn with_api_message(mut self, message: Option<String>) -> Self {
        self.inner.api_message = message;
        self
    }

    pub(crate) fn with_operation(mut self, op: Option<&'static str>) -> Self {
        self.inner.operation = op.or(self.inner.operation);
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = attempts;
        self
    }

    pub(crate) fn with_waited(mut self, waited: Duration) -> Self {
        self.inner.waited = waited;
        self
    }

    pub(crate) fn with_request_id(mut self, id: Option<String>) -> Self {
        self.inner.request_id = id.or(self.inner.request_id.take());
        self
    }

    pub(crate) fn with_retry_after(mut self, d: Option<Duration>) -> Self {
        self.inner.retry_after = d.or(self.inner.retry_after);
        self
    }

    /// Marks a call the rate-limit gate ended without sending.
    pub(crate) fn refused_locally(mut self) -> Self {
        self.inner.refused_locally = true;
        self
    }

    /// A snippet made by [`Redactor::snippet`](crate::shown::Redactor::snippet).
    pub(crate) fn with_body(mut self, snippet: String) -> Self {
        self.inner.body_snippet = Some(snippet);
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The HTTP status of the response that ended the call, if there was one.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The `error` string of the server's JSON error body, or the failed
    /// tool's error text: control characters escaped, the token masked,
    /// cut after [`MESSAGE_LIMIT`](crate::shown::MESSAGE_LIMIT) bytes.
    pub fn api_message(&self) -> Option<&str> {
        self.inner.api_message.as_deref()
    }

    /// How many requests were sent (0 when refused before sending).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// How long the call waited in all before it ended: in the rate-limit
    /// gate and between attempts.
    pub fn waited(&self) -> Duration {
        self.inner.waited
    }

    /// The id the server gave the request that ended the call
    /// (`x-request-id`, or `request-id`): what a support ticket needs.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.request_id.as_deref()
    }

    /// For rate limits: how long the server asked to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The start of a response body that could not be used: at most
    /// [`SNIPPET_LIMIT`](crate::shown::SNIPPET_LIMIT) bytes, lossily
    /// decoded, control characters escaped, the token masked.
    pub fn body_snippet(&self) -> Option<&str> {
        self.inner.body_snippet.as_deref()
    }

    /// The operation (progenitor's name, such as `run_custom_tool`).
    pub fn operation(&self) -> Option<&'static str> {
        self.inner.operation
    }

    /// The request was refused before sending: nothing was sent.
    pub fn is_invalid_input(&self) -> bool {
        self.kind() == ErrorKind::InvalidInput
    }

    /// The client could not be built from its settings.
    pub fn is_config(&self) -> bool {
        self.kind() == ErrorKind::Config
    }

    /// The server answered with a non-success status.
    pub fn is_status(&self) -> bool {
        self.inner.status.is_some_and(|s| !s.is_success())
            && !matches!(self.kind(), ErrorKind::Decode | ErrorKind::ToolFailed)
    }

    /// Rate limited (429) after the retries allowed.
    pub fn is_rate_limited(&self) -> bool {
        self.kind() == ErrorKind::RateLimited
    }

    /// Rate limited by the SDK itself, not by a response: the workspace's
    /// cooldown, or the wait for its turn, would take longer than the call
    /// may wait ([`RetryPolicy::max_wait`](crate::RetryPolicy::max_wait)),
    /// so its last request was not sent. [`retry_after`](Self::retry_after)
    /// says how long the cooldown has left, when there is one.
    pub fn is_refused_locally(&self) -> bool {
        self.inner.refused_locally
    }

    /// 404.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// No response in time.
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// Connect, TLS, timeout or other connection failures.
    pub fn is_transport(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Connect | ErrorKind::Tls | ErrorKind::Timeout | ErrorKind::Transport
        )
    }

    /// The response did not decode.
    pub fn is_decode(&self) -> bool {
        self.kind() == ErrorKind::Decode
    }

    /// The tool ran and failed.
    pub fn is_tool_failure(&self) -> bool {
        self.kind() == ErrorKind::ToolFailed
    }
}

/// A source error whose text quotes the server, shown as
/// [`Redactor`](crate::shown::Redactor) made it: a parser's message can
/// quote any part of a body.
#[derive(Debug)]
pub(crate) struct ShownSource(pub(crate) String);

impl fmt::Display for ShownSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShownSource {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let what = match self.kind() {
            ErrorKind::Config => "invalid client configuration",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::BadRequest => "bad request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not found",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Server => "server error",
            ErrorKind::OtherStatus => "unexpected status",
            ErrorKind::Connect => "connection failed",
            ErrorKind::Tls => "TLS handshake failed",
            ErrorKind::Timeout => "request timed out",
            ErrorKind::Transport => "transport error",
            ErrorKind::Decode => "response did not decode",
            ErrorKind::ToolFailed => "tool failed",
        };
        f.write_str(what)?;
        if let Some(status) = i.status {
            write!(f, " (status {})", status.as_u16())?;
        }
        if let Some(op) = i.operation {
            write!(f, " in {op}")?;
        }
        if let Some(m) = i.api_message.as_ref().or(i.message.as_ref()) {
            write!(f, ": {m}")?;
        }
        match (i.attempts > 1, !i.waited.is_zero()) {
            (true, true) => write!(
                f,
                " (after {} attempts, waited {:.1?})",
                i.attempts, i.waited
            )?,
            (true, false) => write!(f, " (after {} attempts)", i.attempts)?,
            (false, true) => write!(f, " (waited {:.1?})", i.waited)?,
            (false, false) => {}
        }
        if let Some(d) = i.retry_after {
            write!(f, " (retry after {:.0?})", d)?;
        }
        if let Some(id) = &i.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind());
        if let Some(v) = &i.status {
            d.field("status", v);
        }
        if let Some(v) = &i.operation {
            d.field("operation", v);
        }
        if let Some(v) = &i.api_message {
            d.field("api_message", v);
        }
        if let Some(v) = &i.message {
            d.field("message", v);
        }
        d.field("attempts", &i.attempts);
        if !i.waited.is_zero() {
            d.field("waited", &i.waited);
        }
        if let Some(v) = &i.retry_after {
            d.field("retry_after", v);
        }
        if let Some(v) = &i.request_id {
            d.field("request_id", v);
        }
        if let Some(v) = &i.body_snippet {
            d.field("body_snippet", v);
        }
        if let Some(v) = &i.source {
            d.field("source", v);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        for (code, kind) in [
            (400, ErrorKind::BadRequest),
            (401, ErrorKind::Unauthorized),
            (403, ErrorKind::Forbidden),
            (404, ErrorKind::NotFound),
            (429, ErrorKind::RateLimited),
            (500, ErrorKind::Server),
            (503, ErrorKind::Server),
            (409, ErrorKind::OtherStatus),
            (302, ErrorKind::OtherStatus),
        ] {
            let e = Error::for_status(StatusCode::from_u16(code).unwrap());
            assert_eq!(e.kind(), kind, "{code}");
            assert_eq!(e.status().unwrap().as_u16(), code);
            assert!(e.is_status());
        }
    }

    #[test]
    fn display_is_lowercase_without_trailing_punctuation() {
        let e = Error::for_status(StatusCode::NOT_FOUND)
            .with_operation(Some("run_custom_tool"))
            .with_api_message(Some("Custom tool not found".into()))
            .with_attempts(1);
        assert_eq!(
            e.to_string(),
            "not found (status 404) in run_custom_tool: Custom tool not found"
        );
        let e = Error::for_status(StatusCode::TOO_MANY_REQUESTS)
            .with_attempts(3)
            .with_retry_after(Some(Duration::from_secs(30)));
        assert_eq!(
            e.to_string(),
            "rate limited (status 429) (after 3 attempts) (retry after 30s)"
        );
    }

    #[test]
    fn kinds_have_stable_snake_case_names() {
        assert_eq!(ErrorKind::RateLimited.to_string(), "rate_limited");
        assert_eq!(ErrorKind::NotFound.as_str(), "not_found");
        assert_eq!(ErrorKind::InvalidInput.as_str(), "invalid_input");
    }

    #[test]
    fn error_is_send_sync_static() {
        fn assert_bounds<T: std::error::Error + Send + Sync + 'static>() {}
        assert_bounds::<Error>();
    }
}
