//! The benchmark's responder on the shared loopback HTTP/1.1 server
//! (`conduit-test-server`), so both clients talk to the same, cheap,
//! predictable server.
//!
//! It answers every request with a fixed `200` JSON body, or with `429` +
//! `Retry-After: 1` while [`Server::throttle_next`] requests remain, or,
//! with [`Server::limit`], as a sliding window rate limit would. The
//! server runs on its own thread and Tokio runtime, so its work does not
//! queue behind the clients' tasks, and it keeps connections alive.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conduit_test_server::{Bytes, Exchange, Reply, Request, Respond, response_head};

/// The body of every `200`: a successful run, as the spec's example.
pub const OK_BODY: &str = r#"{"data":{"success":true,"message":"Order ord_12345 is shipped","result":{"message":"Order ord_12345 is shipped","rawData":{"status":"shipped"}},"error":null,"logs":null,"run_time_ms":842}}"#;

/// The name of the server's thread.
pub const THREAD_NAME: &str = "bench-server";

const THROTTLED_BODY: &str = r#"{"error":"Rate limit exceeded"}"#;

/// One request as the server saw it (recorded only while
/// [`Server::set_recording`] is on).
#[derive(Debug, Clone)]
pub struct Seen {
    /// When the first bytes of the request were read.
    pub arrived: Instant,
    /// When the whole response had been written to the socket.
    pub answered: Instant,
    /// The status it was answered with.
    pub status: u16,
    /// The method, such as `POST`.
    pub method: String,
    /// The request target, such as `/v1/custom-tools/x/run`.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The request body.
    pub body: Vec<u8>,
}

impl From<Exchange> for Seen {
    fn from(exchange: Exchange) -> Self {
        let request = exchange.request();
        let (method, path) = (request.method().to_owned(), request.target().to_owned());
        let authorization = request.header("authorization").map(str::to_owned);
        let content_type = request.header("content-type").map(str::to_owned);
        Self {
            arrived: exchange.arrived,
            answered: exchange.answered,
            status: exchange.status.unwrap_or_default(),
            method,
            path,
            authorization,
            content_type,
            body: exchange.body,
        }
    }
}

/// The benchmark's answers, rendered once, and the state that picks one.
struct Responder {
    ok: Bytes,
    throttled: Bytes,
    throttle: AtomicU32,
    window: Mutex<Option<SlidingWindow>>,
    answered: AtomicU64,
    throttled_count: AtomicU64,
}

impl Respond for Responder {
    fn respond(&self, request: &Request<'_>) -> Reply {
        // The server's work is not the clients'.
        crate::allocs::exclude_this_thread();
        let throttle = self
            .throttle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let limited = self
            .window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|w| w.admit(request.arrived).err().map(|secs| w.throttled(secs)));
        let (throttled, bytes) = match (throttle, limited) {
            (true, _) => (true, self.throttled.clone()),
            (false, Some(bytes)) => (true, bytes),
            (false, None) => (false, self.ok.clone()),
        };
        self.answered.fetch_add(1, Ordering::SeqCst);
        if throttled {
            self.throttled_count.fetch_add(1, Ordering::SeqCst);
        }
        Reply::KeepAlive(bytes)
    }
}

/// At most `limit` requests accepted in any `window`; the rest are answered
/// 429 with the whole seconds until a slot frees, as HTTP servers send
/// `Retry-After`.
struct SlidingWindow {
    limit: usize,
    window: Duration,
    accepted: VecDeque<Instant>,
    /// The 429s by their `Retry-After` seconds (at most the window's),
    /// rendered when the limit is set so that answering is a clone.
    throttled: Vec<Bytes>,
}

impl SlidingWindow {
    fn new(limit: usize, window: Duration) -> Self {
        let most = window.as_secs() + u64::from(window.subsec_nanos() > 0);
        Self {
            limit,
            window,
            accepted: VecDeque::new(),
            // Longer waits, which the bench never sets, are rendered as needed.
            throttled: (0..=most.min(60)).map(throttled).collect(),
        }
    }

    /// The 429 telling the client to retry after `secs`.
    fn throttled(&self, secs: u64) -> Bytes {
        usize::try_from(secs)
            .ok()
            .and_then(|i| self.throttled.get(i).cloned())
            .unwrap_or_else(|| throttled(secs))
    }

    /// `Ok` to accept now, else the `Retry-After` seconds.
    fn admit(&mut self, now: Instant) -> Result<(), u64> {
        while self
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.accepted.pop_front();
        }
        match self.accepted.front() {
            Some(oldest) if self.accepted.len() >= self.limit => {
                let free = *oldest + self.window - now;
                Err(free.as_secs() + u64::from(free.subsec_nanos() > 0))
            }
            _ => {
                self.accepted.push_back(now);
                Ok(())
            }
        }
    }
}

/// The running server; dropping it stops it.
pub struct Server {
    inner: conduit_test_server::Server<Responder>,
}

impl Server {
    /// Starts a server on a free loopback port, on a thread named
    /// [`THREAD_NAME`].
    pub fn start() -> std::io::Result<Self> {
        let responder = Responder {
            ok: response(200, "OK", &[], OK_BODY),
            throttled: throttled(1),
            throttle: AtomicU32::new(0),
            window: Mutex::new(None),
            answered: AtomicU64::new(0),
            throttled_count: AtomicU64::new(0),
        };
        let inner = conduit_test_server::Server::start_named(THREAD_NAME, responder)?;
        Ok(Self { inner })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// Answers the next `n` requests with `429` + `Retry-After: 1`.
    pub fn throttle_next(&self, n: u32) {
        self.responder().throttle.store(n, Ordering::SeqCst);
    }

    /// From now on, accepts at most `limit` requests in any `window` and
    /// answers the rest 429 with `Retry-After` in whole seconds; `None` ends
    /// the limit. Also resets [`counts`](Self::counts).
    pub fn limit(&self, limit: Option<(usize, Duration)>) {
        let responder = self.responder();
        *responder.window.lock().unwrap_or_else(|e| e.into_inner()) =
            limit.map(|(limit, window)| SlidingWindow::new(limit, window));
        responder.answered.store(0, Ordering::SeqCst);
        responder.throttled_count.store(0, Ordering::SeqCst);
    }

    /// Requests answered, and how many of them with 429, since the last
    /// [`limit`](Self::limit).
    pub fn counts(&self) -> (u64, u64) {
        let responder = self.responder();
        (
            responder.answered.load(Ordering::SeqCst),
            responder.throttled_count.load(Ordering::SeqCst),
        )
    }

    /// Turns recording of requests on or off; turning it on forgets earlier ones.
    pub fn set_recording(&self, on: bool) {
        self.inner.set_recording(on);
    }

    /// The requests recorded so far, oldest first.
    pub fn recorded(&self) -> Vec<Seen> {
        self.inner.recorded().into_iter().map(Seen::from).collect()
    }

    /// The recorded requests once there are at least `n` (a response can
    /// reach the client before the server has logged it), or after 5 s.
    pub async fn recorded_at_least(&self, n: usize) -> Vec<Seen> {
        for _ in 0..5_000 {
            if self.inner.recorded().len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        self.recorded()
    }

    fn responder(&self) -> &Responder {
        self.inner.responder()
    }
}

/// A whole JSON response, rendered once so that answering it is a clone.
fn response(status: u16, reason: &str, extra: &[&str], body: &str) -> Bytes {
    let length = format!("content-length: {}", body.len());
    let headers = [&["content-type: application/json", length.as_str()], extra].concat();
    let mut bytes = response_head(status, reason, &headers);
    bytes.extend_from_slice(body.as_bytes());
    Bytes::from(bytes)
}

/// A `429` with `Retry-After: secs`.
fn throttled(secs: u64) -> Bytes {
    let header = format!("retry-after: {secs}");
    response(429, "Too Many Requests", &[&header], THROTTLED_BODY)
}
