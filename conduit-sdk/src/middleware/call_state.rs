//! What one call learned inside the hooks, carried by a task-local.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;

use crate::gate::Refused;

/// What the middleware learns during one [`Client::call`](crate::Client::call),
/// for the error it may become.
///
/// Held by the call's task-local scope itself, not behind an `Arc`: only the
/// task polling the call reaches it (through [`with_call`]), so plain cells
/// do, with no allocation, lock or atomic per call.
#[derive(Default)]
pub(crate) struct CallState {
    /// Whether the caller wants the final response's body as sent.
    pub(crate) keep_body: bool,
    learned: RefCell<Learned>,
    body: Cell<Option<Bytes>>,
    headers: Cell<Option<HeaderMap>>,
}

/// What a call learned, for the error it may become.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    /// Attempts sent, counted before each is sent.
    pub(crate) attempts: u32,
    /// The final response's status, recorded as it is handed on.
    pub(crate) last_status: Option<reqwest::StatusCode>,
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
    /// Adds `d` to the time the call spent waiting.
    pub(super) fn add_waited(&mut self, d: Duration) {
        self.waited = self.waited.saturating_add(d);
    }
}

impl CallState {
    pub(crate) fn new(keep_body: bool) -> Self {
        Self {
            keep_body,
            ..Self::default()
        }
    }

    /// Records what the call learned. The borrow lasts only for `f`, which
    /// only assigns, so borrows never overlap.
    pub(super) fn learn(&self, f: impl FnOnce(&mut Learned)) {
        f(&mut self.learned.borrow_mut());
    }

    /// What the call learned, taken out once it is over.
    pub(crate) fn take_learned(&self) -> Learned {
        self.learned.take()
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

    pub(crate) fn set_body(&self, body: Bytes) {
        self.body.set(Some(body));
    }

    pub(super) fn set_headers(&self, headers: HeaderMap) {
        self.headers.set(Some(headers));
    }
}

tokio::task_local! {
    /// Set by `Client::call` around the raw call; absent when the raw client
    /// is used directly, which still gets auth, the gate and retries.
    pub(crate) static CALL: CallState;
}

/// Records what the current call learned, when there is a call.
pub(super) fn learn(f: impl FnOnce(&mut Learned)) {
    with_call(|state| state.learn(f));
}

/// Runs `f` on the current call's state, when there is a call.
///
/// Looked up each time rather than held: a reference to the state must not
/// live across an await (the state is `Send`, not `Sync`).
pub(crate) fn with_call<R>(f: impl FnOnce(&CallState) -> R) -> Option<R> {
    CALL.try_with(|state| f(state)).ok()
}
