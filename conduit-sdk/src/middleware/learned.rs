//! What one call learns on its way, for the value or error it becomes.

use std::time::Duration;

use crate::gate::Refused;

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
