//! Shared helpers for the wiremock tests.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conduit_sdk::test_util::ManualTime;
use conduit_sdk::{Client, ClientBuilder, RateLimiter};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const TOKEN: &str = "sk_test_TOKEN_4f9a2c";
pub const TOOL: &str = "kg77c0dy0mgdpzmqz6tesry8w184002s";
pub const RUN_PATH: &str = "/v1/custom-tools/kg77c0dy0mgdpzmqz6tesry8w184002s/run";

/// The longest snippet an error keeps: the limit and the longest cut marker.
pub const SNIPPET_MAX: usize =
    conduit_sdk::shown::SNIPPET_LIMIT + "… [cut: 18446744073709551615 bytes not shown]".len();

/// The run through the raw client, with the SDK's middleware but not
/// `call`'s error mapping.
pub async fn raw_run(
    client: &Client,
) -> Result<
    conduit_sdk::ResponseValue<conduit_sdk::raw::types::RunCustomToolResponse>,
    conduit_sdk::raw::Error<conduit_sdk::raw::types::ApiError>,
> {
    client.raw().run_custom_tool().id(TOOL).send().await
}

pub fn builder(server: &MockServer) -> ClientBuilder {
    Client::builder().token(TOKEN).base_url(server.uri())
}

/// A client on virtual time (its waits are recorded, not taken) without the
/// rate-limit gate, so that each wait is exactly what the retry policy says.
/// The gate's own rules are tested in `gate.rs`.
pub fn client(server: &MockServer) -> (Client, ManualTime) {
    let time = ManualTime::new();
    let client = builder(server)
        .manual_time(&time)
        .rate_limiter(RateLimiter::disabled())
        .build()
        .unwrap();
    (client, time)
}

/// A client with the default (adaptive) gate, on virtual time.
pub fn gated_client(server: &MockServer) -> (Client, ManualTime) {
    let time = ManualTime::new();
    let client = builder(server).manual_time(&time).build().unwrap();
    (client, time)
}

/// A client with the default (adaptive) gate on virtual time that never
/// retries: a 429 fails its call at once, and the gate's waits stand alone.
pub fn unretried_client(server: &MockServer) -> (Client, ManualTime) {
    let time = ManualTime::new();
    let client = builder(server)
        .manual_time(&time)
        .max_retries(0)
        .build()
        .unwrap();
    (client, time)
}

pub fn ok_body() -> Value {
    json!({"data": {"success": true, "message": "Order ord_12345 is shipped",
        "result": {"message": "Order ord_12345 is shipped", "rawData": {"status": "shipped"}},
        "error": null, "logs": null, "run_time_ms": 842}})
}

pub fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(ok_body())
}

pub fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "error": message }))
}

pub fn throttled(retry_after: Option<&str>) -> ResponseTemplate {
    let t = error(429, "Rate limit exceeded");
    match retry_after {
        Some(v) => t.insert_header("retry-after", v),
        None => t,
    }
}

/// Answers `first` for the first `times` requests, then `then`.
pub async fn sequence(
    server: &MockServer,
    first: ResponseTemplate,
    times: u64,
    then: ResponseTemplate,
) {
    Mock::given(method("POST"))
        .and(path(RUN_PATH))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(RUN_PATH))
        .respond_with(then)
        .with_priority(2)
        .mount(server)
        .await;
}

/// Answers every run request with `response` (a template, or any
/// [`wiremock::Respond`]).
pub async fn always(server: &MockServer, response: impl wiremock::Respond + 'static) {
    Mock::given(method("POST"))
        .and(path(RUN_PATH))
        .respond_with(response)
        .mount(server)
        .await;
}

/// Runs the tool with each id and checks the path the server saw holds it
/// as exactly one segment, encoded as given.
pub async fn assert_ids_encode(cases: &[(&str, &str)]) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok())
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    for (id, encoded) in cases {
        client.custom_tools().run(*id).send().await.unwrap();
        let reqs = server.received_requests().await.unwrap();
        let got = reqs.last().unwrap().url.path().to_owned();
        assert_eq!(got, format!("/v1/custom-tools/{encoded}/run"), "{id:?}");
    }
}

pub async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

pub use conduit_test_server::Reply;

/// A loopback server (`conduit-test-server`) answering every request with
/// one [`Reply`], for what wiremock cannot do: a body shorter than its
/// `Content-Length`, a stall after the headers, an endless chunked body,
/// bytes that are not HTTP. It runs on its own thread and runtime, so it
/// needs nothing from the test's runtime.
pub struct RawServer {
    pub uri: String,
    server: conduit_test_server::Server<Reply>,
}

impl RawServer {
    pub fn start(reply: Reply) -> Self {
        let server = conduit_test_server::Server::start(reply).expect("start the raw server");
        server.set_recording(true);
        Self {
            uri: server.url(),
            server,
        }
    }

    /// The request heads received (request line and headers), in order.
    pub fn heads(&self) -> Vec<String> {
        self.server.recorded().into_iter().map(|e| e.head).collect()
    }

    /// Whether each reply was written to its end, in order, once `n` have
    /// been recorded (a reply is recorded when written, or when the client
    /// hangs up partway). Waits for them as long as a test may take.
    pub async fn completed(&self, n: usize) -> Vec<bool> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.server.recorded().len() < n {
            assert!(Instant::now() < deadline, "{n} replies never ended");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.server.recorded().iter().map(|e| e.complete).collect()
    }
}

/// An HTTP/1.1 response head with `status` and these extra header lines.
pub fn raw_head(status: u16, headers: &[&str]) -> Vec<u8> {
    conduit_test_server::response_head(status, "X", headers)
}

/// A server allowing `limit` run requests per sliding `window`, answering
/// the rest with 429 and a fractional `Retry-After` so tests stay short.
pub struct Limiting {
    limit: usize,
    window: Duration,
    log: Mutex<VecDeque<Instant>>,
}

impl Limiting {
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            log: Mutex::default(),
        }
    }
}

impl wiremock::Respond for Limiting {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut log = self.log.lock().unwrap();
        while log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            log.pop_front();
        }
        if log.len() < self.limit {
            log.push_back(now);
            return ok();
        }
        let wait = *log.front().unwrap() + self.window - now;
        throttled(Some(&format!("{:.3}", wait.as_secs_f64())))
    }
}

/// Trace output written by a `tracing_subscriber::fmt` subscriber, kept for
/// the test to read.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
