//! What one call learned inside the hooks, carried by a task-local.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;

use crate::gate::Partition;

/// What the middleware learns during one [`Client::call`](crate::Client::call),
/// for the error it may become.
///
/// Held by the call's task-local scope itself, not behind an `Arc`: only the
/// task polling the call reaches it (through [`with_call`]), so plain cells
/// do, with no allocation, lock or atomic per call.
#[derive(Default)]
pub(crate) struct CallState {
    attempts: Cell<u32>,
    last_status: Cell<u16>,
    operation: Cell<Option<&'static str>>,
    /// The gate partition of this call, when not the client's default.
    pub(crate) partition: Option<Arc<Partition>>,
    waited: Cell<Duration>,
    /// Whether the caller wants the final response's body as sent.
    pub(crate) keep_body: bool,
    retry_after: Cell<Option<Duration>>,
    /// Set when the gate refused to send: what was left of the cooldown.
    refused: Cell<Option<Duration>>,
    body: Cell<Option<Bytes>>,
    headers: Cell<Option<HeaderMap>>,
    request_id: Cell<Option<String>>,
}

/// What a call learned, read out of its [`CallState`] once it is over.
#[derive(Debug, Clone, Default)]
pub(crate) struct Learned {
    pub(crate) attempts: u32,
    pub(crate) last_status: Option<reqwest::StatusCode>,
    pub(crate) operation: Option<&'static str>,
    /// Time spent waiting: in the gate and between attempts.
    pub(crate) waited: Duration,
    /// The server's last `Retry-After`.
    pub(crate) retry_after: Option<Duration>,
    /// Set when the gate refused to send: what was left of the cooldown.
    pub(crate) refused: Option<Duration>,
    /// The final response's request id, if it had one.
    pub(crate) request_id: Option<String>,
}

impl CallState {
    pub(crate) fn new(partition: Option<Arc<Partition>>, keep_body: bool) -> Self {
        Self {
            partition,
            keep_body,
            ..Self::default()
        }
    }

    /// The final response's body as sent and its headers, when
    /// [`keep_body`](Self::keep_body) and the response was a 2xx; a body
    /// the decoding did not read is empty.
    pub(crate) fn take_kept(&self) -> Option<(Bytes, HeaderMap)> {
        let headers = self.take_headers()?;
        Some((self.take_body().unwrap_or_default(), headers))
    }

    /// The final response's body, when [`keep_body`](Self::keep_body).
    pub(crate) fn take_body(&self) -> Option<Bytes> {
        self.body.take()
    }

    /// The final response's headers, when the body was kept.
    pub(crate) fn take_headers(&self) -> Option<HeaderMap> {
        self.headers.take()
    }

    /// What the call learned, for the error it becomes.
    pub(crate) fn learned(&self) -> Learned {
        Learned {
            attempts: self.attempts.get(),
            last_status: reqwest::StatusCode::from_u16(self.last_status.get()).ok(),
            operation: self.operation.get(),
            waited: self.waited.get(),
            retry_after: self.retry_after.get(),
            refused: self.refused.get(),
            request_id: self.request_id.take(),
        }
    }

    pub(crate) fn set_body(&self, body: Bytes) {
        self.body.set(Some(body));
    }

    pub(super) fn set_headers(&self, headers: HeaderMap) {
        self.headers.set(Some(headers));
    }

    pub(super) fn set_request_id(&self, id: Option<String>) {
        self.request_id.set(id);
    }

    pub(super) fn set_attempts(&self, n: u32) {
        self.attempts.set(n);
    }

    pub(super) fn set_status(&self, status: u16) {
        self.last_status.set(status);
    }

    pub(super) fn set_operation(&self, op: &'static str) {
        self.operation.set(Some(op));
    }

    pub(super) fn set_retry_after(&self, d: Option<Duration>) {
        self.retry_after.set(d);
    }

    pub(super) fn set_refused(&self, left: Duration) {
        self.refused.set(Some(left));
    }

    pub(super) fn add_waited(&self, d: Duration) {
        self.waited.set(self.waited.get().saturating_add(d));
    }
}

tokio::task_local! {
    /// Set by `Client::call` around the raw call; absent when the raw client
    /// is used directly, which still gets auth, the gate and retries.
    pub(crate) static CALL: CallState;
}

/// Runs `f` on the current call's state, when there is a call.
///
/// Looked up each time rather than held: a reference to the state must not
/// live across an await (the state is `Send`, not `Sync`).
pub(crate) fn with_call<R>(f: impl FnOnce(&CallState) -> R) -> Option<R> {
    CALL.try_with(|state| f(state)).ok()
}
