//! A fleet of two processes against one workspace limit: each paces itself
//! just under the server's limit, once sharing the gate through Redis and
//! once alone. Each process is this binary again (`--fleet-worker`), so
//! nothing but Redis is shared between them.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conduit_sdk::{Client, Rate};
use serde_json::{Value, json};

use crate::limits::{LIMIT, WINDOW, pull_calls};
use crate::measure::TOKEN;
use crate::server::Server;

/// Processes in the fleet.
pub const PROCESSES: usize = 2;
/// Calls per process.
pub const CALLS: usize = 100;
/// Tasks per process.
pub const TASKS: usize = 10;
/// Each process's explicit rate: just under the server's limit (20/s).
pub const RATE_PER_SECOND: u32 = 19;

/// The fleet run with and without Redis; `null` figures and a reason when
/// redis-server cannot be started.
pub async fn fleet(base: &str, server: &Server) -> Result<Value, String> {
    let shared = match OwnRedis::start() {
        Ok(redis) => {
            let run = run(base, server, Some(&redis.url)).await?;
            drop(redis);
            run
        }
        Err(e) => json!({ "skipped": e }),
    };
    let alone = run(base, server, None).await?;
    Ok(json!({
        "processes": PROCESSES,
        "calls_per_process": CALLS,
        "rate_per_process_per_s": RATE_PER_SECOND,
        "server_limit": format!("{LIMIT} per {} s sliding window", WINDOW.as_secs()),
        "with_redis": shared,
        "without_redis": alone,
    }))
}

/// Runs the fleet once; `store` is the Redis URL, if any.
async fn run(base: &str, server: &Server, store: Option<&str>) -> Result<Value, String> {
    tokio::time::sleep(WINDOW).await;
    server.limit(Some((LIMIT, WINDOW)));
    let started = Instant::now();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let workers: Vec<Child> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args(["--fleet-worker", base, store.unwrap_or("-")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("cannot start a fleet worker: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut succeeded = 0;
    for worker in workers {
        let out = tokio::task::spawn_blocking(move || worker.wait_with_output())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("a fleet worker failed ({})", out.status));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value =
            serde_json::from_str(text.trim()).map_err(|e| format!("worker output: {e}"))?;
        succeeded += v["succeeded"].as_u64().unwrap_or(0);
    }
    let elapsed = started.elapsed();
    let (requests, throttled) = server.counts();
    server.limit(None);
    let share = if requests == 0 {
        0.0
    } else {
        throttled as f64 / requests as f64
    };
    Ok(json!({
        "succeeded": succeeded,
        "requests": requests,
        "throttled": throttled,
        "throttled_share": (share * 1000.0).round() / 1000.0,
        "elapsed_s": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
    }))
}

/// One process of the fleet: [`CALLS`] calls over [`TASKS`] tasks at
/// [`RATE_PER_SECOND`], through `store` unless it is `-`; prints what
/// succeeded as JSON.
pub fn worker(base: &str, store: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut builder = Client::builder()
        .token(TOKEN)
        .base_url(base)
        .workspace_id("ws_bench_fleet")
        .rate_limit(Rate::per_second(RATE_PER_SECOND).ok_or("zero rate")?);
    if store != "-" {
        builder = builder.rate_store(store);
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let succeeded = runtime.block_on(pull_calls(&client, TASKS, CALLS))?;
    println!("{}", json!({ "succeeded": succeeded }));
    Ok(())
}

/// A private redis-server on a free loopback port, stopped when dropped.
struct OwnRedis {
    child: Child,
    url: String,
}

impl OwnRedis {
    fn start() -> Result<Self, String> {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server could not be started ({e}); install the Debian package redis-server"))?;
        let redis = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
