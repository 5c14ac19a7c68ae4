//! What one call learns on its way, for the value or error it becomes:
//! its attempts and waits, the gate's refusal, the request id.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName};

/// What a call learned while it was sent: passed by `&mut` down the
/// request path and read back by the caller once the call is over.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    /// Attempts sent, counted before each is sent.
    pub(crate) attempts: u32,
    /// The final response's status.
    pub(crate) last_status: Option<reqwest::StatusCode>,
    /// The operation's Rust method, such as `list_tickets`.
    pub(crate) operation: Option<&'static str>,
    /// Time spent waiting: in the gate and between attempts.
    pub(crate) waited: Duration,
    /// The server's last `Retry-After`.
    pub(crate) retry_after: Option<Duration>,
    /// Set when the gate refused to send, and why.
    pub(crate) refused: Option<Refused>,
    /// The final response's request id, if it had one.
    pub(crate) request_id: Option<String>,
}

impl Learned {
    /// What a call of `operation` knows before it is sent.
    pub(crate) fn of(operation: &'static str) -> Self {
        Self {
            operation: Some(operation),
            ..Self::default()
        }
    }

    /// Adds `d` to the time the call spent waiting.
    pub(crate) fn add_waited(&mut self, d: Duration) {
        self.waited = self.waited.saturating_add(d);
    }
}

/// Why the gate sent a call back without letting it through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The partition's cooldown has this much left, more than the call may
    /// still wait.
    Cooldown(Duration),
    /// The call's turn would come later than it may wait; it waited this
    /// long in the gate before giving up.
    Turn { waited: Duration },
}

/// The header that marks the gate's stand-in 429: the raw client hands
/// back only the response, and this is how [`Client::call`](crate::Client::call)
/// tells it from the server's.
pub(crate) const NOT_SENT: &str = "x-conduit-sdk-not-sent";

/// The request id a response carries, if any: `x-request-id`, else
/// `request-id`; only visible ASCII, at most 200 characters.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    // Names made once: looking up by `&str` parses the name on every call.
    static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    static REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
    let value = headers
        .get(&X_REQUEST_ID)
        .or_else(|| headers.get(&REQUEST_ID))?
        .to_str()
        .ok()?
        .trim();
    let fits =
        !value.is_empty() && value.len() <= 200 && value.chars().all(|c| c.is_ascii_graphic());
    fits.then(|| value.to_owned())
}
