//! Running the `conduit` binary as a process, and the servers the tests
//! run it against.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The path of `tools run tool_1`.
pub const TOOL_PATH: &str = "/v1/custom-tools/tool_1/run";

/// A documented 200 body of a successful run.
pub fn success_body() -> Value {
    json!({"data": {
        "success": true,
        "message": "Order ord_1 is shipped",
        "result": {"message": "Order ord_1 is shipped", "rawData": {"status": "shipped"}},
        "error": null,
        "logs": null,
        "run_time_ms": 842
    }})
}

/// A server answering every run of `tool_1` with `response`.
pub async fn server_answering(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOOL_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

/// The requests `server` received.
pub async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording is on")
}

/// Variables of the CLI that a test sets only on purpose.
const CONDUIT_VARS: [&str; 5] = [
    "CONDUIT_API_TOKEN",
    "CONDUIT_BASE_URL",
    "CONDUIT_MAX_RETRIES",
    "CONDUIT_WORKSPACE_ID",
    "CONDUIT_RATE_LIMIT",
];

/// The `conduit` binary cargo built for these tests.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_conduit"))
}

/// What one run of the CLI did.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout as the one JSON document it should be.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    pub fn assert_hides(&self, token: &str) {
        assert!(
            !self.stdout.contains(token) && !self.stderr.contains(token),
            "the token was printed: {self:?}"
        );
    }
}

/// Runs the CLI with `args` and, of the `CONDUIT_*` variables, only `env`.
pub async fn conduit(args: &[&str], env: &[(&str, &str)]) -> Output {
    conduit_with_stdin(args, env, None).await
}

/// The CLI as a command with `args` and, of the `CONDUIT_*` variables, only
/// `env`; stdin, stdout and stderr are left to the caller.
pub async fn command(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let binary = tokio::task::spawn_blocking(binary).await.unwrap();
    let mut cmd = tokio::process::Command::new(binary);
    cmd.args(args).kill_on_drop(true);
    for var in CONDUIT_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// Like [`conduit`], with `stdin` as its standard input (none if `None`).
pub async fn conduit_with_stdin(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = command(args, env).await;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the CLI runs");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .expect("stdin is written");
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the CLI finishes within 60 s")
        .expect("the CLI runs");
    Output::from(out)
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Output {
            code: out.status.code().expect("the CLI exits, not killed"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
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

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(success_body())
}

/// A 429 with `Retry-After: retry_after`.
pub fn throttled(retry_after: Option<&str>) -> ResponseTemplate {
    let mut response =
        ResponseTemplate::new(429).set_body_json(json!({"error": "Rate limit exceeded"}));
    if let Some(after) = retry_after {
        response = response.insert_header("Retry-After", after);
    }
    response
}
