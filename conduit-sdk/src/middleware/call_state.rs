//! What one call learned inside the hooks, carried by a task-local.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;

use crate::gate::Partition;

/// What the middleware learns during one [`Client::call`](crate::Client::call),
/// for the error it may become.
#[derive(Debug, Default)]
pub(crate) struct CallState {
    attempts: AtomicU32,
    last_status: AtomicU16,
    operation: OnceLock<&'static str>,
    /// The gate partition of this call, when not the client's default.
    pub(crate) partition: Option<Arc<Partition>>,
    waited_nanos: AtomicU64,
    /// Whether the caller wants the final response's body as sent.
    pub(crate) keep_body: bool,
    learned: Mutex<Learned>,
}

/// What a response told the call, set at most a few times per call.
#[derive(Debug, Default)]
struct Learned {
    retry_after: Option<Duration>,
    /// Set when the gate refused to send: what was left of the cooldown.
    refused: Option<Duration>,
    body: Option<Bytes>,
    headers: Option<HeaderMap>,
    request_id: Option<String>,
}

impl CallState {
    pub(crate) fn new(partition: Option<Arc<Partition>>, keep_body: bool) -> Self {
        Self {
            partition,
            keep_body,
            ..Self::default()
        }
    }

    fn learned(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    pub(crate) fn last_status(&self) -> Option<reqwest::StatusCode> {
        reqwest::StatusCode::from_u16(self.last_status.load(Ordering::Relaxed)).ok()
    }

    pub(crate) fn operation(&self) -> Option<&'static str> {
        self.operation.get().copied()
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.learned().retry_after
    }

    /// Time spent waiting: in the gate and between attempts.
    pub(crate) fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed))
    }

    pub(crate) fn refused(&self) -> Option<Duration> {
        self.learned().refused
    }

    /// The final response's body, when [`keep_body`](Self::keep_body).
    pub(crate) fn take_body(&self) -> Option<Bytes> {
        self.learned().body.take()
    }

    /// The final response's headers, when the body was kept.
    pub(crate) fn take_headers(&self) -> Option<HeaderMap> {
        self.learned().headers.take()
    }

    /// The final response's request id, if it had one.
    pub(crate) fn request_id(&self) -> Option<String> {
        self.learned().request_id.clone()
    }

    pub(crate) fn set_body(&self, body: Bytes) {
        self.learned().body = Some(body);
    }

    pub(super) fn set_headers(&self, headers: HeaderMap) {
        self.learned().headers = Some(headers);
    }

    pub(super) fn set_request_id(&self, id: Option<String>) {
        self.learned().request_id = id;
    }

    pub(super) fn set_attempts(&self, n: u32) {
        self.attempts.store(n, Ordering::Relaxed);
    }

    pub(super) fn set_status(&self, status: u16) {
        self.last_status.store(status, Ordering::Relaxed);
    }

    pub(super) fn set_operation(&self, op: &'static str) {
        let _ = self.operation.set(op);
    }

    pub(super) fn set_retry_after(&self, d: Option<Duration>) {
        self.learned().retry_after = d;
    }

    pub(super) fn set_refused(&self, left: Duration) {
        self.learned().refused = Some(left);
    }

    pub(super) fn add_waited(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.waited_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

tokio::task_local! {
    /// Set by `Client::call` around the raw call; absent when the raw client
    /// is used directly, which still gets auth, the gate and retries.
    pub(crate) static CALL: Arc<CallState>;
}

/// Runs `f` on the current call's state, when there is a call.
pub(super) fn with_call(f: impl FnOnce(&CallState)) {
    let _ = CALL.try_with(|state| f(state));
}
