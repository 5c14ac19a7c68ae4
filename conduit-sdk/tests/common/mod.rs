//! Shared helpers for the wiremock tests.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conduit_sdk::{Client, ClientBuilder, Sleep};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const TOKEN: &str = "sk_test_TOKEN_4f9a2c";
pub const TOOL: &str = "kg77c0dy0mgdpzmqz6tesry8w184002s";
pub const RUN_PATH: &str = "/v1/custom-tools/kg77c0dy0mgdpzmqz6tesry8w184002s/run";

/// Records each wait instead of taking it.
#[derive(Clone, Default)]
pub struct RecordingSleep(pub Arc<Mutex<Vec<Duration>>>);

impl RecordingSleep {
    pub fn waits(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

impl Sleep for RecordingSleep {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

pub fn builder(server: &MockServer) -> ClientBuilder {
    Client::builder().token(TOKEN).base_url(server.uri())
}

/// A client whose waits are recorded, not taken.
pub fn client(server: &MockServer) -> (Client, RecordingSleep) {
    let sleep = RecordingSleep::default();
    let client = builder(server)
        .sleeper(Arc::new(sleep.clone()))
        .build()
        .unwrap();
    (client, sleep)
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

/// Answers every run request with `response`.
pub async fn always(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(RUN_PATH))
        .respond_with(response)
        .mount(server)
        .await;
}

pub async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}
