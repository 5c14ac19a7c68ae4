//! Two `conduit` processes sharing one rate limit through a real Redis
//! (`--rate-store`).
//!
//! This needs `redis-server`: `cargo xtask test` starts one on a free
//! loopback port (`CONDUIT_REDIS_URL`) and runs it with `--ignored`. In a
//! plain `cargo test` it shows as ignored, never as passed.

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{command, success_body};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "test-token";

fn shared_redis() -> String {
    std::env::var("CONDUIT_REDIS_URL")
        .expect("CONDUIT_REDIS_URL is unset: run this through `cargo xtask test`, which starts redis-server")
}

/// Records when each run request arrived and answers 200.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<Instant>>>);

impl Respond for Arrivals {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().push(Instant::now());
        ResponseTemplate::new(200).set_body_json(success_body())
    }
}

#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn two_processes_keep_one_limit() {
    let arrivals = Arrivals::default();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(arrivals.clone())
        .mount(&server)
        .await;
    let uri = server.uri();
    let store = shared_redis();
    let input = "{}\n".repeat(10);
    let args = [
        "--base-url",
        &uri,
        "--rate-store",
        &store,
        "tools",
        "run-batch",
        "tool_1",
        "--workspace",
        "ws_fleet_two",
        "--rate",
        "10/s",
        "--concurrency",
        "3",
    ];
    let mut children = Vec::new();
    for _ in 0..2 {
        let mut cmd = command(&args, &[("CONDUIT_API_TOKEN", TOKEN)]).await;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut stdin, input.as_bytes())
            .await
            .unwrap();
        drop(stdin);
        children.push(child);
    }
    for child in children {
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("warning"),
            "the store failed"
        );
    }
    let times = arrivals.0.lock().unwrap().clone();
    assert_eq!(times.len(), 20);
    // 20 requests at 10/s together: ten in the first second, the other
    // ten when their slots free a second later (alone, each process would
    // send its ten at once).
    let wait = times[10] - times[0];
    assert!(
        wait >= Duration::from_millis(990),
        "the two took 20 slots of 10 in a second: {wait:?}"
    );
}
