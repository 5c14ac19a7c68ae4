//! The rate-limit gate shared through a real Redis (feature `redis`): two
//! processes keep one limit, a cooldown reaches a process that never got
//! the 429, and Redis going away (killed, unreachable, failing scripts)
//! never costs a call.
//!
//! These need `redis-server`; `cargo xtask test` starts one on a free
//! loopback port (`CONDUIT_REDIS_URL`) and runs them with `--ignored`; the
//! test that kills Redis starts its own (`CONDUIT_REDIS_SERVER`, the
//! binary). In a plain `cargo test` they show as ignored, never as passed.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cli::{command, success_body};
use common::*;
use conduit_sdk::{Client, Rate, RateLimiter};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn shared_redis() -> String {
    std::env::var("CONDUIT_REDIS_URL")
        .expect("CONDUIT_REDIS_URL is unset: run these through `cargo xtask test`, which starts redis-server")
}

/// A private `redis-server` on a free loopback port, killed when dropped.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start_on(port: u16) -> Self {
        let binary =
            std::env::var("CONDUIT_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} (Debian package redis-server): {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The two Redis keys of a workspace's partition, as the SDK names them,
/// and a connection to `store` to look at them.
async fn partition_keys(
    store: &str,
    workspace: &str,
) -> (redis::aio::MultiplexedConnection, [String; 2]) {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("workspace:{workspace}").as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let base = format!("conduit:gate:v1:{hex}");
    let redis = redis::Client::open(store).unwrap();
    let con = redis.get_multiplexed_async_connection().await.unwrap();
    (con, [format!("{base}:cooldown"), format!("{base}:tat")])
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

impl Captured {
    /// The SDK's rate-store warnings in the captured output.
    fn warnings(&self) -> usize {
        self.text()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("rate store"))
            .count()
    }
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (out, tracing::subscriber::set_default(subscriber))
}

/// A client of `server` in `workspace` with its own limiter and `store`.
fn fleet_client(server: &MockServer, workspace: &str, store: &str, limiter: RateLimiter) -> Client {
    builder(server)
        .workspace_id(workspace)
        .rate_limiter(limiter)
        .rate_store(store)
        .max_retries(0)
        .build()
        .unwrap()
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
    // 20 requests at 10/s together: 19 intervals of 100 ms, not 9.
    let span = times[19] - times[0];
    assert!(
        span >= Duration::from_millis(1_700),
        "the two went at 20/s: {span:?}"
    );
}

#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn a_cooldown_reaches_a_process_that_never_got_the_429() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("1")), 1, ok()).await;
    let store = shared_redis();
    // Two limiters share nothing in memory: as two processes would.
    let a = fleet_client(&server, "ws_fleet_cool", &store, RateLimiter::adaptive());
    let b = fleet_client(&server, "ws_fleet_cool", &store, RateLimiter::adaptive());
    a.custom_tools().run(TOOL).send().await.unwrap_err();
    let start = Instant::now();
    b.custom_tools().run(TOOL).send().await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "b did not wait out a's cooldown: {waited:?}"
    );
    // A client of another workspace is not held.
    let c = fleet_client(&server, "ws_fleet_other", &store, RateLimiter::adaptive());
    let start = Instant::now();
    c.custom_tools().run(TOOL).send().await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn keys_are_namespaced_hashed_and_expire() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("0.2")), 1, ok()).await;
    let store = shared_redis();
    let client = builder(&server)
        .workspace_id("ws_fleet_keys")
        .rate_limit(Rate::per_second(50).unwrap())
        .rate_store(&store)
        .max_retries(0)
        .build()
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap_err();
    let (mut con, keys) = partition_keys(&store, "ws_fleet_keys").await;
    for key in &keys {
        let exists: bool = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(exists, "{key} was not written");
        assert!(!key.contains("ws_fleet") && !key.contains(TOKEN), "{key}");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!((1..=2_000).contains(&ttl), "{key} expires in {ttl} ms");
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for key in &keys {
        let exists: bool = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(!exists, "{key} outlived its use");
    }
}

#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn an_unreachable_store_costs_no_call_and_warns_once() {
    let (out, _guard) = capture();
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let client = builder(&server)
        .rate_store(&dead)
        .rate_limit(Rate::per_second(100).unwrap())
        .build()
        .unwrap();
    let start = Instant::now();
    for _ in 0..5 {
        client.custom_tools().run(TOOL).send().await.unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(out.warnings(), 1);
    assert_eq!(requests(&server).await, 5);
}

#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn redis_killed_mid_run_costs_no_call_and_is_used_again_when_back() {
    let (out, _guard) = capture();
    let port = free_port();
    let redis = OwnRedis::start_on(port);
    let url = redis.url();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(serde_json::json!({"error": "Rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ok())
        .with_priority(2)
        .mount(&server)
        .await;
    // A fast explicit rate: what is measured is the store, not pacing.
    let fast = || RateLimiter::fixed(Rate::per_second(100).unwrap());
    let a = fleet_client(&server, "ws_fleet_kill", &url, fast());
    let b = fleet_client(&server, "ws_fleet_kill", &url, fast());
    a.custom_tools().run(TOOL).send().await.unwrap_err(); // the 429, shared
    tokio::time::sleep(Duration::from_millis(1_100)).await; // past the cooldown
    drop(redis);
    // Redis is gone: both "processes" go on alone, each after one warning.
    for _ in 0..3 {
        for client in [&a, &b] {
            let start = Instant::now();
            client.custom_tools().run(TOOL).send().await.unwrap();
            let took = start.elapsed();
            assert!(took < Duration::from_millis(1_000), "{took:?}");
        }
    }
    assert_eq!(out.warnings(), 2, "one warning per process for the outage");
    // Back on the same port: after a probe the store is used again, so a
    // fresh 429 to a reaches b once more.
    let _redis = OwnRedis::start_on(port);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    server.reset().await;
    sequence(&server, throttled(Some("1")), 1, ok()).await;
    a.custom_tools().run(TOOL).send().await.unwrap_err();
    let start = Instant::now();
    b.custom_tools().run(TOOL).send().await.unwrap();
    let took = start.elapsed();
    let log = out.text();
    assert!(
        took >= Duration::from_millis(900),
        "the store was not used again: {took:?}\n{log}"
    );
    assert_eq!(
        out.warnings(),
        2,
        "no more warnings once it is back:\n{log}"
    );
}

#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn a_failing_script_costs_no_call() {
    let (out, _guard) = capture();
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let store = shared_redis();
    let client = builder(&server)
        .workspace_id("ws_fleet_script")
        .rate_limit(Rate::per_second(100).unwrap())
        .rate_store(&store)
        .build()
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap();
    // Break the partition's keys: the scripts' GET now fails (WRONGTYPE).
    let (mut con, keys) = partition_keys(&store, "ws_fleet_script").await;
    for key in &keys {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(key)
            .arg("f")
            .arg("v")
            .query_async(&mut con)
            .await
            .unwrap();
    }
    for _ in 0..3 {
        client.custom_tools().run(TOOL).send().await.unwrap();
    }
    assert_eq!(requests(&server).await, 4);
    assert_eq!(out.warnings(), 1);
    for key in &keys {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
    }
}
