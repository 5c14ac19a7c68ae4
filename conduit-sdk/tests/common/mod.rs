//! Shared helpers for the wiremock tests.
#![allow(dead_code)]

pub mod cli;

use std::sync::{Arc, Mutex};

use conduit_sdk::time::ManualTime;
use conduit_sdk::{Client, ClientBuilder, RateLimiter};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const TOKEN: &str = "sk_test_TOKEN_4f9a2c";
pub const TOOL: &str = "kg77c0dy0mgdpzmqz6tesry8w184002s";
pub const RUN_PATH: &str = "/v1/custom-tools/kg77c0dy0mgdpzmqz6tesry8w184002s/run";

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

/// What a [`RawServer`] does after reading a request.
#[derive(Clone, Debug)]
pub enum Raw {
    /// Writes these bytes, then closes the connection.
    Close(Vec<u8>),
    /// Writes these bytes, then keeps the connection open, writing nothing
    /// more, until the client hangs up.
    Stall(Vec<u8>),
    /// Writes these bytes, then `chunk` over and over until the client hangs
    /// up (at most `max_repeats` times, so the loop always ends).
    Repeat {
        head: Vec<u8>,
        chunk: Vec<u8>,
        max_repeats: usize,
    },
    /// Writes `head`, then one byte of `body` every `every` until the body
    /// is out or the client hangs up.
    Trickle {
        head: Vec<u8>,
        body: Vec<u8>,
        every: std::time::Duration,
    },
}

/// A loopback TCP server that speaks just enough HTTP/1.1 to misbehave in
/// ways wiremock cannot: a body shorter than its `Content-Length`, a stall
/// after the headers, an endless chunked body, bytes that are not HTTP.
/// It runs on plain threads, so it needs nothing from the test's runtime.
pub struct RawServer {
    pub uri: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RawServer {
    pub fn start(behaviour: Raw) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (behaviour, seen) = (behaviour.clone(), seen.clone());
                std::thread::spawn(move || serve_raw(stream, &behaviour, &seen));
            }
        });
        Self { uri, heads }
    }

    /// The request heads received (request line and headers), in order.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn serve_raw(mut stream: std::net::TcpStream, behaviour: &Raw, seen: &Mutex<Vec<String>>) {
    use std::io::{Read, Write};
    // Read the whole request first: closing with unread input would reset
    // the connection instead of ending it cleanly.
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut byte) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&byte[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut byte) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&byte[..n]),
        }
    }
    seen.lock().unwrap().push(head);
    match behaviour {
        Raw::Close(bytes) => {
            let _ = stream.write_all(bytes);
            let _ = stream.flush();
        }
        Raw::Stall(bytes) => {
            let _ = stream.write_all(bytes);
            let _ = stream.flush();
            // Blocks until the client closes its side (read returns 0).
            while matches!(stream.read(&mut byte), Ok(n) if n > 0) {}
        }
        Raw::Repeat {
            head,
            chunk,
            max_repeats,
        } => {
            if stream.write_all(head).is_err() {
                return;
            }
            for _ in 0..*max_repeats {
                if stream.write_all(chunk).is_err() {
                    return;
                }
            }
        }
        Raw::Trickle { head, body, every } => {
            if stream.write_all(head).is_err() {
                return;
            }
            for byte in body {
                std::thread::sleep(*every);
                if stream
                    .write_all(&[*byte])
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// An HTTP/1.1 response head with `status` and these extra header lines.
pub fn raw_head(status: u16, headers: &[&str]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} X\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}
