//! The rate-limit gate shared through a real Redis (feature `redis`): a
//! cooldown reaches a process that never got
//! the 429 but holds it no longer than the ceiling, corrupt values in the
//! store are repaired, and Redis going away (killed, unreachable, failing
//! scripts) never costs a call and is reported once, with its cause.
//!
//! These need `redis-server`; `cargo xtask test` starts one on a free
//! loopback port (`CONDUIT_REDIS_URL`) and runs them with `--ignored`; the
//! tests that kill, lock or break Redis start their own
//! (`CONDUIT_REDIS_SERVER`, the binary; a missing one fails them). In a
//! plain `cargo test` they show as ignored, never as passed.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use conduit_sdk::test_util::ManualTime;
use conduit_sdk::{Client, Rate, RateLimiter, RetryPolicy};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

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
        Self::start_with(port, &[])
    }

    /// On a free port, with more `redis-server` options.
    fn start(extra: &[&str]) -> Self {
        Self::start_with(free_port(), extra)
    }

    fn start_with(port: u16, extra: &[&str]) -> Self {
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
            .args(extra)
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
    (con, [format!("{base}:cooldown"), format!("{base}:window")])
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    c.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(c.rate_limiter().stats().waits, 0, "c waited in the gate");
}

#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn keys_are_namespaced_hashed_and_expire() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("0.2")), 1, ok()).await;
    let store = shared_redis();
    let client = builder(&server)
        .workspace_id("ws_fleet_keys")
        .rate_limit(Rate::new(10, Duration::from_millis(200)).unwrap())
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

/// A connection to `store`, for looking at (and breaking) its keys.
async fn connect(store: &str) -> redis::aio::MultiplexedConnection {
    let redis = redis::Client::open(store).unwrap();
    redis.get_multiplexed_async_connection().await.unwrap()
}

/// Runs a Redis command, failing the test if Redis does.
async fn run<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> T {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(con)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Redis's clock, in µs: what the store's deadlines are written in.
async fn redis_now(con: &mut redis::aio::MultiplexedConnection) -> i64 {
    let (secs, micros): (i64, i64) = run(con, &["TIME"]).await;
    secs * 1_000_000 + micros
}

/// `key` is gone, or holds a finite number at most `limit` past Redis's
/// clock and expires within `limit` and a second.
async fn assert_sane(con: &mut redis::aio::MultiplexedConnection, key: &str, limit: Duration) {
    let value: Option<String> = run(con, &["GET", key]).await;
    let Some(value) = value else { return };
    let now = redis_now(con).await;
    let deadline: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("{key} = {value:?}"));
    assert!(deadline.is_finite(), "{key} = {value}");
    let ahead = Duration::from_micros((deadline - now as f64).max(0.0) as u64);
    assert!(ahead <= limit, "{key} is {ahead:?} ahead");
    let ttl: i64 = run(con, &["PTTL", key]).await;
    let most = limit.as_millis() as i64 + 1_000;
    assert!((1..=most).contains(&ttl), "{key} expires in {ttl} ms");
}

/// A new "process" (its own limiter) on virtual time, in `workspace`, that
/// may wait `max_wait` in the gate: its waits are recorded, not taken.
fn process(
    server: &MockServer,
    workspace: &str,
    store: &str,
    limiter: RateLimiter,
    max_wait: Duration,
) -> (Client, ManualTime) {
    let time = ManualTime::new();
    let client = builder(server)
        .manual_time(&time)
        .workspace_id(workspace)
        .rate_limiter(limiter)
        .rate_store(store)
        .retry_policy(RetryPolicy::none().with_max_wait(max_wait))
        .build()
        .unwrap();
    (client, time)
}

/// A new "process" in `workspace` at an explicit `rate`, on real time:
/// for rules that depend on Redis's clock.
fn at_rate(server: &MockServer, workspace: &str, store: &str, rate: Rate) -> Client {
    builder(server)
        .workspace_id(workspace)
        .rate_limit(rate)
        .rate_store(store)
        .build()
        .unwrap()
}

/// A process that may wait ten minutes: longer than any cooldown.
fn patient_process(
    server: &MockServer,
    workspace: &str,
    store: &str,
    limiter: RateLimiter,
) -> (Client, ManualTime) {
    process(server, workspace, store, limiter, Duration::from_secs(600))
}

/// Redis's TIME and expiry are real time, so these tests wait for real
/// (the SDK's side is on virtual time).
#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn corrupt_cooldowns_hold_no_call_past_the_ceiling_and_are_repaired() {
    let (out, _guard) = capture();
    let redis = OwnRedis::start(&[]);
    let store = redis.url();
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let mut con = connect(&store).await;
    let ceiling = RateLimiter::MAX_COOLDOWN;
    let second = Duration::from_secs(1);
    // (what is stored, its expiry in ms, the wait it may cause)
    let year_us = 365 * 24 * 3_600 * 1_000_000_i64;
    let now = redis_now(&mut con).await;
    let cases: Vec<(String, Option<i64>, std::ops::RangeInclusive<Duration>)> = vec![
        ("1e30".into(), None, ceiling - second..=ceiling),
        (
            "1e30".into(),
            Some(year_us / 1_000),
            ceiling - second..=ceiling,
        ),
        (
            (now + year_us).to_string(),
            Some(year_us / 1_000),
            ceiling - second..=ceiling,
        ),
        (
            (now + 5_000_000).to_string(),
            None,
            Duration::from_secs(4)..=Duration::from_secs(5),
        ),
        (
            (now - 5_000_000).to_string(),
            None,
            Duration::ZERO..=Duration::ZERO,
        ),
        ("inf".into(), None, Duration::ZERO..=Duration::ZERO),
        ("-inf".into(), None, Duration::ZERO..=Duration::ZERO),
        ("nan".into(), None, Duration::ZERO..=Duration::ZERO),
        ("garbage".into(), None, Duration::ZERO..=Duration::ZERO),
        ("".into(), Some(60_000), Duration::ZERO..=Duration::ZERO),
    ];
    for (i, (value, ttl, waits)) in cases.into_iter().enumerate() {
        let workspace = format!("ws_corrupt_{i}");
        let (_, [cooldown, _]) = partition_keys(&store, &workspace).await;
        match ttl {
            Some(ms) => {
                run::<()>(&mut con, &["SET", &cooldown, &value, "PX", &ms.to_string()]).await
            }
            None => run::<()>(&mut con, &["SET", &cooldown, &value]).await,
        }
        let (client, time) = patient_process(&server, &workspace, &store, RateLimiter::adaptive());
        client.custom_tools().run(TOOL).send().await.unwrap();
        let waited = time.total_waited();
        assert!(
            waits.contains(&waited),
            "{value:?}: waited {waited:?}, not {waits:?}"
        );
        assert_sane(&mut con, &cooldown, ceiling).await;
        let ttl: i64 = run(&mut con, &["PTTL", &cooldown]).await;
        assert_ne!(ttl, -1, "{value:?}: the key never expires");
        // A process that may not wait that long is refused at once, told
        // to come back within the ceiling.
        let minute = Duration::from_secs(60);
        let (impatient, _) = process(&server, &workspace, &store, RateLimiter::adaptive(), minute);
        match impatient.custom_tools().run(TOOL).send().await {
            Ok(_) => assert!(waited < minute, "{value:?}"),
            Err(e) => {
                assert!(e.is_refused_locally(), "{value:?}: {e:?}");
                let after = e.retry_after().unwrap_or_default();
                assert!(
                    after <= ceiling && after > Duration::from_secs(60),
                    "{value:?}: {after:?}"
                );
            }
        }
    }
    // A key of the wrong type is repaired too: no call lost, no warning,
    // the store still in use.
    let workspace = "ws_corrupt_type";
    let (_, keys) = partition_keys(&store, workspace).await;
    for key in &keys {
        run::<()>(&mut con, &["HSET", key, "f", "v"]).await;
    }
    let (client, _) = patient_process(
        &server,
        workspace,
        &store,
        RateLimiter::fixed(Rate::per_second(10).unwrap()),
    );
    client.custom_tools().run(TOOL).send().await.unwrap();
    for key in &keys {
        let kind: String = run(&mut con, &["TYPE", key]).await;
        assert_ne!(kind, "hash", "{key} was left broken");
    }
    assert_eq!(out.warnings(), 0, "{}", out.text());
}

#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn a_corrupt_window_stalls_no_call() {
    let redis = OwnRedis::start(&[]);
    let store = redis.url();
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let mut con = connect(&store).await;
    let rate = Rate::per_second(2).unwrap();
    // A window full of slots taken further ahead than any call could have
    // (by a bug, a person, an older SDK): they are dropped, and the call
    // goes at once.
    let bound = RateLimiter::MAX_COOLDOWN + rate.per();
    let now = redis_now(&mut con).await;
    let year = 365 * 24 * 3_600 * 1_000_000_i64;
    for (i, scores) in [
        vec!["1e30".to_owned(), "1e30".to_owned()],
        vec![(now + year).to_string(), (now + year).to_string()],
        vec!["inf".to_owned(), "inf".to_owned()],
    ]
    .into_iter()
    .enumerate()
    {
        let workspace = format!("ws_corrupt_window_{i}");
        let (_, [_, window]) = partition_keys(&store, &workspace).await;
        for (j, score) in scores.iter().enumerate() {
            run::<()>(&mut con, &["ZADD", &window, score, &format!("m{j}")]).await;
        }
        let (client, time) = patient_process(&server, &workspace, &store, RateLimiter::fixed(rate));
        client.custom_tools().run(TOOL).send().await.unwrap();
        let waited = time.total_waited();
        assert_eq!(waited, Duration::ZERO, "{scores:?}");
        // What is left in the window is sane: no score past the bound,
        // and the key expires.
        let newest: Vec<(String, f64)> =
            run(&mut con, &["ZRANGE", &window, "-1", "-1", "WITHSCORES"]).await;
        let ahead = newest[0].1 - redis_now(&mut con).await as f64;
        assert!(
            ahead <= bound.as_micros() as f64,
            "{scores:?}: {ahead} µs ahead"
        );
        let ttl: i64 = run(&mut con, &["PTTL", &window]).await;
        assert!(ttl > 0, "{scores:?}: the window never expires ({ttl})");
    }
}

/// A fleet at an explicit rate takes the window's allowance together: the
/// first `count` requests of all processes at once, the next a span later.
/// Redis's clock is real, so this waits for real (a second).
#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn a_fleet_shares_one_window() {
    let redis = OwnRedis::start(&[]);
    let store = redis.url();
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let rate = Rate::new(4, Duration::from_secs(1)).unwrap();
    let process = || at_rate(&server, "ws_fleet_window", &store, rate);
    let processes = [process(), process(), process()];
    let start = Instant::now();
    // Two calls each: six requests against an allowance of four.
    let mut ended = Vec::new();
    for client in &processes {
        for _ in 0..2 {
            client.custom_tools().run(TOOL).send().await.unwrap();
        }
        ended.push(start.elapsed());
    }
    // The first four went at once (processes one and two); the last two
    // (process three) waited for the first slots to free, a second on.
    assert!(ended[1] < Duration::from_millis(500), "{ended:?}");
    assert!(ended[2] >= Duration::from_secs(1), "{ended:?}");
    assert!(ended[2] < Duration::from_secs(2), "{ended:?}");
}

/// The server may count a request as late as its answer: a slot in the
/// fleet's window is held a span after the answer, not after the send.
#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn a_slot_is_held_a_span_after_its_answer() {
    let redis = OwnRedis::start(&[]);
    let store = redis.url();
    let server = MockServer::start().await;
    always(&server, ok().set_delay(Duration::from_millis(400))).await;
    let rate = Rate::new(1, Duration::from_secs(1)).unwrap();
    let process = || at_rate(&server, "ws_fleet_answer", &store, rate);
    let (a, b) = (process(), process());
    a.custom_tools().run(TOOL).send().await.unwrap();
    let answered = Instant::now();
    // a's answer came 400 ms after its slot: b's turn is a second after
    // the answer, not 600 ms from now; its own answer 400 ms later.
    b.custom_tools().run(TOOL).send().await.unwrap();
    let waited = answered.elapsed();
    assert!(
        waited >= Duration::from_millis(1_350) && waited < Duration::from_millis(1_900),
        "{waited:?}"
    );
}

#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn one_429_holds_the_fleet_no_longer_than_the_ceiling() {
    let redis = OwnRedis::start(&[]);
    let store = redis.url();
    let mut con = connect(&store).await;
    let ceiling = RateLimiter::MAX_COOLDOWN;
    for (i, retry_after) in ["1000000000000", "Fri, 01 Jan 2100 00:00:00 GMT", "86400"]
        .into_iter()
        .enumerate()
    {
        let server = MockServer::start().await;
        sequence(&server, throttled(Some(retry_after)), 1, ok()).await;
        let workspace = format!("ws_ceiling_{i}");
        let a = fleet_client(&server, &workspace, &store, RateLimiter::adaptive());
        let e = a.custom_tools().run(TOOL).send().await.unwrap_err();
        assert!(e.is_rate_limited(), "{retry_after}: {e:?}");
        let (_, [cooldown, _]) = partition_keys(&store, &workspace).await;
        let ttl: i64 = run(&mut con, &["PTTL", &cooldown]).await;
        assert!(ttl > 0, "{retry_after}: no cooldown stored ({ttl})");
        assert_sane(&mut con, &cooldown, ceiling).await;
        // Another process is held, the ceiling at most.
        let (b, time) = patient_process(&server, &workspace, &store, RateLimiter::adaptive());
        b.custom_tools().run(TOOL).send().await.unwrap();
        let waited = time.total_waited();
        assert!(
            waited > ceiling - Duration::from_secs(2) && waited <= ceiling,
            "{retry_after}: waited {waited:?}"
        );
    }
}

/// A store that answers PING but refuses the scripts: each call goes on
/// without it, and the outage is reported once, not at every probe, until
/// an operation succeeds again.
#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn a_store_failing_its_scripts_costs_no_call_and_warns_once_per_outage() {
    let (out, _guard) = capture();
    let redis = OwnRedis::start(&[]);
    let store = redis.url();
    let mut con = connect(&store).await;
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let client = builder(&server)
        .workspace_id("ws_fleet_script")
        .rate_limit(Rate::per_second(100).unwrap())
        .rate_store(&store)
        .build()
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap();
    run::<()>(&mut con, &["ACL", "SETUSER", "default", "-@scripting"]).await;
    // Past two probes (one a second): each finds PING answered.
    let start = Instant::now();
    let mut calls = 1;
    while start.elapsed() < Duration::from_millis(2_600) {
        client.custom_tools().run(TOOL).send().await.unwrap();
        calls += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(requests(&server).await, calls);
    let log = out.text();
    assert_eq!(out.warnings(), 1, "{log}");
    assert!(log.contains("permission denied"), "{log}");
    assert!(!log.contains("paces together again"), "{log}");
    // Scripts allowed again: the next call after a probe uses the store,
    // and says so once.
    run::<()>(&mut con, &["ACL", "SETUSER", "default", "+@all"]).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for _ in 0..3 {
        client.custom_tools().run(TOOL).send().await.unwrap();
    }
    let log = out.text();
    assert_eq!(log.matches("paces together again").count(), 1, "{log}");
    let (_, [_, window]) = partition_keys(&store, "ws_fleet_script").await;
    let used: bool = run(&mut con, &["EXISTS", &window]).await;
    assert!(used, "the store is not used again:\n{log}");
    // A new outage is a new warning.
    run::<()>(&mut con, &["ACL", "SETUSER", "default", "-@scripting"]).await;
    client.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(out.warnings(), 2, "{}", out.text());
}

#[tokio::test]
#[ignore = "needs redis-server: run through `cargo xtask test`"]
async fn the_store_warning_names_its_cause_and_masks_the_password() {
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let redis = OwnRedis::start(&["--requirepass", "right:pass@word"]);
    let port = redis.port;
    for (url, says) in [
        (
            format!("redis://127.0.0.1:{}", free_port()),
            "connection refused",
        ),
        (
            format!("redis://:WR:ONG@PASS777@127.0.0.1:{port}"),
            "authentication failed",
        ),
        (
            format!("redis://us:er:WR@ONG%PASS777@127.0.0.1:{port}"),
            "authentication failed",
        ),
        (format!("redis://127.0.0.1:{port}"), "authentication failed"),
    ] {
        let (out, _guard) = capture();
        let client = builder(&server)
            .rate_store(&url)
            .rate_limit(Rate::per_second(100).unwrap())
            .build()
            .unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            client.custom_tools().run(TOOL).send().await.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{url}: {:?}",
            start.elapsed()
        );
        let log = out.text();
        assert_eq!(out.warnings(), 1, "{url}: {log}");
        assert!(log.contains(says), "{url}: {log}");
        assert!(!log.contains("no answer within"), "{url}: {log}");
        assert!(
            !log.contains("PASS777") && !log.contains("er:WR"),
            "{url}: {log}"
        );
    }
}
