//! The benchmark's responder on the shared loopback HTTP/1.1 server
//! (`conduit-test-server`), so both clients talk to the same, cheap,
//! predictable server.
//!
//! It answers every request with a fixed `200` JSON body (a run, or an
//! empty page for a `GET`), or, with [`Server::limit`], as a sliding window
//! rate limit would, or, with [`Server::bucket`], as a token bucket would,
//! or, with [`Server::refuse_all`], with `429` to
//! everything. [`Server::limit_for`] and `refuse_all` can hold for a while
//! only, counted from the first request that follows, and then accept
//! everything: a server that recovers. The server runs on its own thread
//! and Tokio runtime, so its work does not queue behind the clients'
//! tasks, and it keeps connections alive.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conduit_test_server::{Bytes, Exchange, Reply, Request, Respond, response_head};

/// The body of every `200`: a successful run, as the spec's example.
pub const OK_BODY: &str = r#"{"data":{"success":true,"message":"Order ord_12345 is shipped","result":{"message":"Order ord_12345 is shipped","rawData":{"status":"shipped"}},"error":null,"logs":null,"run_time_ms":842}}"#;

/// The body of a `200` to a `GET`: an empty last page.
const PAGE_BODY: &str = r#"{"data":[],"next_cursor":null,"has_more":false}"#;

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
    page: Bytes,
    rule: Mutex<Option<Rule>>,
    answered: AtomicU64,
    throttled_count: AtomicU64,
}

impl Respond for Responder {
    fn respond(&self, request: &Request<'_>) -> Reply {
        // The server's work is not the clients'.
        crate::allocs::exclude_this_thread();
        let limited = self
            .rule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|rule| rule.refusal(request.arrived));
        let (throttled, bytes) = match limited {
            Some(bytes) => (true, bytes),
            None if request.method() == "GET" => (false, self.page.clone()),
            None => (false, self.ok.clone()),
        };
        self.answered.fetch_add(1, Ordering::SeqCst);
        if throttled {
            self.throttled_count.fetch_add(1, Ordering::SeqCst);
        }
        Reply::KeepAlive(bytes)
    }
}

/// Which requests the server refuses, and for how long.
struct Rule {
    refuse: Refuse,
    /// How long the rule holds, counted from the first request it answers;
    /// `None`: until it is replaced.
    lasts: Option<Duration>,
    /// When the first request it answered arrived.
    since: Option<Instant>,
}

/// How a [`Rule`] refuses.
enum Refuse {
    /// Every request, with this 429.
    All(Bytes),
    /// Beyond a sliding window's limit.
    Window(SlidingWindow),
    /// When a token bucket is empty.
    Bucket(TokenBucket),
}

impl Rule {
    fn new(refuse: Refuse, lasts: Option<Duration>) -> Self {
        Self {
            refuse,
            lasts,
            since: None,
        }
    }

    /// The 429 for a request that arrived at `now`, or `None` to accept it.
    fn refusal(&mut self, now: Instant) -> Option<Bytes> {
        let since = *self.since.get_or_insert(now);
        // Requests are answered concurrently, so `now` may precede `since`:
        // `duration_since` saturates to zero, which keeps them inside.
        if self
            .lasts
            .is_some_and(|lasts| now.duration_since(since) >= lasts)
        {
            return None;
        }
        match &mut self.refuse {
            Refuse::All(bytes) => Some(bytes.clone()),
            Refuse::Window(w) => w.admit(now).err().map(|secs| w.throttled.answer(secs)),
            Refuse::Bucket(b) => b.admit(now).err().map(|secs| b.throttled.answer(secs)),
        }
    }
}

/// The 429s by their `Retry-After` seconds, rendered when a limit is set
/// so that answering is a clone.
struct Throttled(Vec<Bytes>);

impl Throttled {
    /// Those of up to `most` seconds (at most a minute's).
    fn up_to(most: Duration) -> Self {
        let secs = most.as_secs() + u64::from(most.subsec_nanos() > 0);
        Self((0..=secs.min(60)).map(throttled).collect())
    }

    /// The 429 telling the client to retry after `secs`.
    fn answer(&self, secs: u64) -> Bytes {
        usize::try_from(secs)
            .ok()
            .and_then(|i| self.0.get(i).cloned())
            // Longer waits, which the bench never sets, are rendered as needed.
            .unwrap_or_else(|| throttled(secs))
    }
}

/// The whole seconds in `wait`, rounded up, as HTTP servers send
/// `Retry-After`.
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// At most `limit` requests accepted in any `window`; the rest are answered
/// 429 with the whole seconds until a slot frees.
struct SlidingWindow {
    limit: usize,
    window: Duration,
    accepted: VecDeque<Instant>,
    throttled: Throttled,
}

impl SlidingWindow {
    fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            accepted: VecDeque::new(),
            throttled: Throttled::up_to(window),
        }
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
                Err(whole_seconds(*oldest + self.window - now))
            }
            _ => {
                self.accepted.push_back(now);
                Ok(())
            }
        }
    }
}

/// A bucket of `burst` tokens filling at `per_second`: a request takes a
/// token, or is answered 429 with the whole seconds until one is there.
struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    /// When `tokens` was counted.
    at: Option<Instant>,
    throttled: Throttled,
}

impl TokenBucket {
    fn new(per_second: f64, burst: usize) -> Self {
        let burst = burst as f64;
        Self {
            per_second,
            burst,
            tokens: burst,
            at: None,
            throttled: Throttled::up_to(Duration::from_secs_f64(1.0 / per_second)),
        }
    }

    /// `Ok` to accept now, else the `Retry-After` seconds.
    fn admit(&mut self, now: Instant) -> Result<(), u64> {
        // Requests are answered concurrently: `now` may precede `at`, and
        // saturates to no time passed.
        let passed = self
            .at
            .map_or(0.0, |at| now.duration_since(at).as_secs_f64());
        self.tokens = (self.tokens + passed * self.per_second).min(self.burst);
        self.at = Some(self.at.map_or(now, |at| at.max(now)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / self.per_second;
        Err(whole_seconds(Duration::from_secs_f64(wait)))
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
            page: response(200, "OK", &[], PAGE_BODY),
            rule: Mutex::new(None),
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

    /// From now on, accepts at most `limit` requests in any `window` and
    /// answers the rest 429 with `Retry-After` in whole seconds; `None` ends
    /// the limit. Also resets [`counts`](Self::counts).
    pub fn limit(&self, limit: Option<(usize, Duration)>) {
        self.set_rule(limit.map(|(limit, window)| {
            Rule::new(Refuse::Window(SlidingWindow::new(limit, window)), None)
        }));
    }

    /// From now on, accepts requests as a token bucket of `burst` filling at
    /// `per_second` would, and answers the rest 429 with `Retry-After` in
    /// whole seconds, until the next [`limit`](Self::limit). Also resets
    /// [`counts`](Self::counts).
    pub fn bucket(&self, per_second: f64, burst: usize) {
        let bucket = TokenBucket::new(per_second, burst);
        self.set_rule(Some(Rule::new(Refuse::Bucket(bucket), None)));
    }

    /// Like [`limit`](Self::limit), for `lasts` from the first request that
    /// follows; then accepts everything: a limit lifted.
    pub fn limit_for(&self, limit: usize, window: Duration, lasts: Duration) {
        let window = SlidingWindow::new(limit, window);
        self.set_rule(Some(Rule::new(Refuse::Window(window), Some(lasts))));
    }

    /// From now on, answers every request 429 with `Retry-After:
    /// retry_after_secs`, for `lasts` from the first request that follows
    /// (then accepts everything), or with `None` until the next
    /// [`limit`](Self::limit). Also resets [`counts`](Self::counts).
    pub fn refuse_all(&self, retry_after_secs: u64, lasts: Option<Duration>) {
        let refuse = Refuse::All(throttled(retry_after_secs));
        self.set_rule(Some(Rule::new(refuse, lasts)));
    }

    /// When the first request under the current rule of [`limit_for`],
    /// [`refuse_all`] or [`limit`] arrived, which starts the time a rule
    /// lasts; `None` before one has.
    ///
    /// [`limit_for`]: Self::limit_for
    /// [`refuse_all`]: Self::refuse_all
    /// [`limit`]: Self::limit
    pub fn rule_since(&self) -> Option<Instant> {
        let rule = self.responder().rule.lock();
        rule.unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|r| r.since)
    }

    fn set_rule(&self, rule: Option<Rule>) {
        let responder = self.responder();
        *responder.rule.lock().unwrap_or_else(|e| e.into_inner()) = rule;
        responder.answered.store(0, Ordering::SeqCst);
        responder.throttled_count.store(0, Ordering::SeqCst);
    }

    /// Requests answered, and how many of them with 429, since the last
    /// [`limit`](Self::limit), [`limit_for`](Self::limit_for) or
    /// [`refuse_all`](Self::refuse_all).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(bytes: &Bytes) -> Option<String> {
        let text = String::from_utf8_lossy(bytes);
        assert!(text.starts_with("HTTP/1.1 429 "), "{text}");
        text.lines()
            .find_map(|l| l.strip_prefix("retry-after: "))
            .map(|v| v.trim().to_owned())
    }

    #[test]
    fn a_storm_refuses_everything_until_it_ends_counted_from_the_first_request() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut rule = Rule::new(Refuse::All(throttled(2)), Some(Duration::from_millis(500)));
        let first = rule.refusal(at(100)).expect("a 429 at the start");
        assert_eq!(retry_after(&first).as_deref(), Some("2"));
        // Answered after the first, though it arrived before: still inside.
        assert!(rule.refusal(at(50)).is_some());
        assert!(rule.refusal(at(599)).is_some());
        assert!(rule.refusal(at(600)).is_none());
        assert!(rule.refusal(at(5_000)).is_none());
    }

    #[test]
    fn a_lifted_limit_refuses_beyond_its_window_then_accepts_everything() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let window = SlidingWindow::new(2, Duration::from_secs(1));
        let mut rule = Rule::new(Refuse::Window(window), Some(Duration::from_secs(3)));
        assert!(rule.refusal(at(0)).is_none());
        assert!(rule.refusal(at(100)).is_none());
        let refused = rule.refusal(at(200)).expect("a 429 beyond the limit");
        assert_eq!(retry_after(&refused).as_deref(), Some("1"));
        // The first slot frees at 1 s.
        assert!(rule.refusal(at(1_000)).is_none());
        assert!(rule.refusal(at(1_050)).is_some());
        assert!((0..10).all(|_| rule.refusal(at(3_000)).is_none()));
    }

    #[test]
    fn a_bucket_lets_its_burst_go_then_one_a_token() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 3 tokens, filling at 4 a second.
        let mut rule = Rule::new(Refuse::Bucket(TokenBucket::new(4.0, 3)), None);
        assert!((0..3).all(|_| rule.refusal(at(0)).is_none()));
        let refused = rule.refusal(at(0)).expect("the bucket is empty");
        assert_eq!(retry_after(&refused).as_deref(), Some("1"));
        // A token a quarter second.
        assert!(rule.refusal(at(200)).is_some());
        assert!(rule.refusal(at(250)).is_none());
        assert!(rule.refusal(at(250)).is_some());
        // Never more than the burst, however long it stood.
        assert!((0..3).all(|_| rule.refusal(at(60_000)).is_none()));
        assert!(rule.refusal(at(60_000)).is_some());
    }

    #[test]
    fn refusing_everything_without_an_end_never_accepts() {
        let t0 = Instant::now();
        let mut rule = Rule::new(Refuse::All(throttled(1)), None);
        for secs in [0, 1, 60, 3_600] {
            let refused = rule.refusal(t0 + Duration::from_secs(secs));
            assert_eq!(refused.as_ref().and_then(retry_after).as_deref(), Some("1"));
        }
    }

    #[test]
    fn a_server_refusing_for_a_while_answers_429_then_200() {
        let server = Server::start().unwrap();
        server.set_recording(true);
        server.refuse_all(2, Some(Duration::from_millis(200)));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let statuses = runtime.block_on(async {
            let http = reqwest::Client::new();
            let url = format!("{}/v1/custom-tools/x/run", server.url());
            let first = http.post(&url).send().await.unwrap();
            let header = first.headers().get("retry-after").cloned();
            // Past the 200 ms, counted from the first request.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let second = http.post(&url).send().await.unwrap();
            (first.status().as_u16(), header, second.status().as_u16())
        });
        assert_eq!(statuses.0, 429);
        assert_eq!(statuses.1.as_ref().and_then(|h| h.to_str().ok()), Some("2"));
        assert_eq!(statuses.2, 200);
        assert_eq!(server.counts(), (2, 1));
        assert!(server.rule_since().is_some());
    }
}
