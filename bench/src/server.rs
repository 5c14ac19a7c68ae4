//! A minimal HTTP/1.1 keep-alive responder on loopback, so both clients talk
//! to the same, cheap, predictable server.
//!
//! It reads a request head and a `Content-Length` body, then answers with a
//! fixed `200` JSON body, or with `429` + `Retry-After: 1` while
//! [`Server::throttle_next`] requests remain, or, with [`Server::limit`],
//! as a sliding window rate limit would. It runs on its own thread and
//! Tokio runtime, so its work does not queue behind the clients' tasks.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// The body of every `200`: a successful run, as the spec's example.
pub const OK_BODY: &str = r#"{"data":{"success":true,"message":"Order ord_12345 is shipped","result":{"message":"Order ord_12345 is shipped","rawData":{"status":"shipped"}},"error":null,"logs":null,"run_time_ms":842}}"#;

/// The name of the server's thread.
pub const THREAD_NAME: &str = "bench-server";

const THROTTLED_BODY: &str = r#"{"error":"Rate limit exceeded"}"#;
const MAX_HEAD: usize = 64 * 1024;

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

#[derive(Default)]
struct State {
    throttle: AtomicU32,
    recording: AtomicBool,
    seen: Mutex<Vec<Seen>>,
    window: Mutex<Option<SlidingWindow>>,
    answered: AtomicU64,
    throttled: AtomicU64,
}

/// At most `limit` requests accepted in any `window`; the rest are answered
/// 429 with the whole seconds until a slot frees, as HTTP servers send
/// `Retry-After`.
struct SlidingWindow {
    limit: usize,
    window: Duration,
    accepted: VecDeque<Instant>,
}

impl SlidingWindow {
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
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server on a free loopback port.
    pub fn start() -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return eprintln!("bench server: {e}"),
                    };
                    let accept = async {
                        loop {
                            match listener.accept().await {
                                Ok((stream, _)) => {
                                    tokio::spawn(serve(stream, shared.clone()));
                                }
                                Err(e) => eprintln!("bench server: accept: {e}"),
                            }
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next `n` requests with `429` + `Retry-After: 1`.
    pub fn throttle_next(&self, n: u32) {
        self.state.throttle.store(n, Ordering::SeqCst);
    }

    /// From now on, accepts at most `limit` requests in any `window` and
    /// answers the rest 429 with `Retry-After` in whole seconds; `None` ends
    /// the limit. Also resets [`counts`](Self::counts).
    pub fn limit(&self, limit: Option<(usize, Duration)>) {
        *self.state.window.lock().unwrap_or_else(|e| e.into_inner()) =
            limit.map(|(limit, window)| SlidingWindow {
                limit,
                window,
                accepted: VecDeque::new(),
            });
        self.state.answered.store(0, Ordering::SeqCst);
        self.state.throttled.store(0, Ordering::SeqCst);
    }

    /// Requests answered, and how many of them with 429, since the last
    /// [`limit`](Self::limit).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.state.answered.load(Ordering::SeqCst),
            self.state.throttled.load(Ordering::SeqCst),
        )
    }

    /// Turns recording of requests on or off; turning it on forgets earlier ones.
    pub fn set_recording(&self, on: bool) {
        if on {
            self.seen().clear();
        }
        self.state.recording.store(on, Ordering::SeqCst);
    }

    /// The requests recorded so far, oldest first.
    pub fn recorded(&self) -> Vec<Seen> {
        self.seen().clone()
    }

    /// The recorded requests once there are at least `n` (a response can
    /// reach the client before the server has logged it), or after 5 s.
    pub async fn recorded_at_least(&self, n: usize) -> Vec<Seen> {
        for _ in 0..5_000 {
            if self.seen().len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        self.recorded()
    }

    fn seen(&self) -> MutexGuard<'_, Vec<Seen>> {
        self.state.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves one connection until the client closes it or sends garbage.
async fn serve(mut stream: TcpStream, state: Arc<State>) {
    if let Err(e) = serve_inner(&mut stream, &state).await
        && e.kind() != std::io::ErrorKind::ConnectionReset
    {
        eprintln!("bench server: {e}");
    }
}

async fn serve_inner(stream: &mut TcpStream, state: &State) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let ok = response(200, "OK", &[], OK_BODY);
    let throttled = response(
        429,
        "Too Many Requests",
        &["retry-after: 1"],
        THROTTLED_BODY,
    );
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    loop {
        // A request that arrived with the previous one's bytes is already here.
        let mut arrived = (!buf.is_empty()).then(Instant::now);
        let head_len = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                break end + 4;
            }
            if buf.len() > MAX_HEAD {
                return Err(invalid("request head too large"));
            }
            buf.reserve(8 * 1024);
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(()); // closed between requests
            }
            arrived.get_or_insert_with(Instant::now);
        };
        let arrived = arrived.unwrap_or_else(Instant::now);
        let head = std::str::from_utf8(&buf[..head_len]).map_err(|_| invalid("non-UTF-8 head"))?;
        let head = Head::parse(head)?;
        let total = head_len + head.content_length;
        while buf.len() < total {
            buf.reserve(total - buf.len());
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(invalid("connection closed inside a body"));
            }
        }
        let throttle = state
            .throttle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let limited = state
            .window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|w| w.admit(arrived).err());
        // Decided before answering: the client may stop recording as soon
        // as it has the answer, before this task gets to log it.
        let record = state.recording.load(Ordering::SeqCst);
        let limited_bytes;
        let (status, bytes) = match (throttle, limited) {
            (true, _) => (429, &throttled),
            (false, Some(secs)) => {
                let header = format!("retry-after: {secs}");
                limited_bytes = response(429, "Too Many Requests", &[&header], THROTTLED_BODY);
                (429, &limited_bytes)
            }
            (false, None) => (200, &ok),
        };
        state.answered.fetch_add(1, Ordering::SeqCst);
        if status == 429 {
            state.throttled.fetch_add(1, Ordering::SeqCst);
        }
        stream.write_all(bytes).await?;
        let answered = Instant::now();
        if record {
            let seen = Seen {
                arrived,
                answered,
                status,
                method: head.method,
                path: head.path,
                authorization: head.authorization,
                content_type: head.content_type,
                body: buf[head_len..total].to_vec(),
            };
            state
                .seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(seen);
        }
        buf.drain(..total);
    }
}

struct Head {
    method: String,
    path: String,
    content_length: usize,
    authorization: Option<String>,
    content_type: Option<String>,
}

impl Head {
    fn parse(head: &str) -> std::io::Result<Self> {
        let mut lines = head.split("\r\n");
        let mut start = lines.next().unwrap_or_default().split(' ');
        let method = start.next().unwrap_or_default().to_owned();
        let path = start.next().unwrap_or_default().to_owned();
        let mut parsed = Self {
            method,
            path,
            content_length: 0,
            authorization: None,
            content_type: None,
        };
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid("header without a colon"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                parsed.content_length = value.parse().map_err(|_| invalid("bad content-length"))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(invalid("chunked request bodies are not supported"));
            } else if name.eq_ignore_ascii_case("authorization") {
                parsed.authorization = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("content-type") {
                parsed.content_type = Some(value.to_owned());
            }
        }
        Ok(parsed)
    }
}

fn response(status: u16, reason: &str, extra: &[&str], body: &str) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for header in extra {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_owned())
}
