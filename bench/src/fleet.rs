//! Fleets of processes against one workspace limit: two and four, each
//! process the SDK with the explicit rate (once sharing the gate through
//! Redis, once each alone), the peer, or naive reqwest. Each process is
//! this binary again (`--fleet-worker`), so nothing but Redis is shared.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::goodput::BUDGET;
use crate::scenario::{Caller, Kind, LIMIT, WINDOW, limit_per_second, pull, ratios, share};
use crate::server::Server;
use crate::stats::round;

/// Processes in each fleet.
pub const SIZES: [usize; 2] = [2, 4];
/// Tasks per process.
pub const TASKS: usize = 10;

/// The fleets: (name, kind, whether through Redis).
const FLEETS: [(&str, Kind, bool); 4] = [
    ("sdk_redis", Kind::Explicit, true),
    ("sdk_alone", Kind::Explicit, false),
    ("peer", Kind::Peer, false),
    ("naive", Kind::Naive, false),
];

/// Every fleet of every size, `calls` calls per process; the SDK's fleets
/// through Redis are skipped, with a reason, when redis-server cannot be
/// started.
pub async fn fleet(server: &Server, calls: usize) -> Result<Value, String> {
    let redis = OwnRedis::start();
    let mut sizes = Map::new();
    for processes in SIZES {
        let mut runs = Map::new();
        for (name, kind, shared) in FLEETS {
            let store = match (&redis, shared) {
                (Ok(redis), true) => Some(redis.url.as_str()),
                (Err(e), true) => {
                    runs.insert(name.into(), json!({ "skipped": e }));
                    continue;
                }
                _ => None,
            };
            eprintln!("conduit-bench: fleet of {processes} ({name})");
            let run = run(server, kind, store, processes, calls).await?;
            runs.insert(name.into(), run);
        }
        let sdk = runs.get("sdk_redis").cloned().unwrap_or_default();
        let vs = |name: &str| runs.get(name).map_or(Value::Null, |o| ratios(&sdk, o));
        let (vs_peer, vs_naive) = (vs("peer"), vs("naive"));
        sizes.insert(
            processes.to_string(),
            json!({ "vs_peer": vs_peer, "vs_naive": vs_naive, "runs": runs }),
        );
    }
    Ok(json!({
        "calls_per_process": calls,
        "tasks_per_process": TASKS,
        "server": format!("{LIMIT} per {} s sliding window ({}/s)", WINDOW.as_secs(), limit_per_second()),
        "processes": sizes,
    }))
}

/// One fleet of `processes` workers of `kind`, through `store` if any.
async fn run(
    server: &Server,
    kind: Kind,
    store: Option<&str>,
    processes: usize,
    calls: usize,
) -> Result<Value, String> {
    tokio::time::sleep(WINDOW).await;
    server.limit(Some((LIMIT, WINDOW)));
    let started = Instant::now();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let (base, calls_arg, tasks) = (server.url(), calls.to_string(), TASKS.to_string());
    let workers: Vec<Child> = (0..processes)
        .map(|_| {
            Command::new(&exe)
                .args(["--fleet-worker", &base, kind.name(), store.unwrap_or("-")])
                .args([&calls_arg, &tasks])
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
    let elapsed = started.elapsed().as_secs_f64();
    let (requests, throttled) = server.counts();
    server.limit(None);
    let (requests, throttled) = (requests as usize, throttled as usize);
    let calls = calls * processes;
    eprintln!(
        "  {succeeded} of {calls} calls succeeded, {requests} requests ({throttled} 429), {elapsed:.2} s"
    );
    Ok(json!({
        "calls": calls,
        "ended": true,
        "succeeded": succeeded,
        "failed_share": share(calls - succeeded as usize, calls),
        "requests": requests,
        "throttled": throttled,
        "throttled_share": share(throttled, requests),
        "elapsed_s": round(elapsed),
        "goodput_vs_limit": round(succeeded as f64 / elapsed / limit_per_second()),
    }))
}

/// One process of a fleet: `args` are the server's URL, the client's
/// kind, the Redis URL or `-`, the calls and the tasks; prints how many
/// calls succeeded as JSON.
pub fn worker(args: &[String]) -> Result<(), String> {
    let [base, kind, store, calls, tasks] = args else {
        return Err("usage: --fleet-worker <base> <kind> <store|-> <calls> <tasks>".into());
    };
    let kind = Kind::named(kind).ok_or_else(|| format!("no client kind {kind}"))?;
    let store = (store != "-").then_some(store.as_str());
    let number = |s: &str| s.parse::<usize>().map_err(|e| format!("{s}: {e}"));
    let (calls, tasks) = (number(calls)?, number(tasks)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // In the runtime: the Redis store connects from a task.
    let tally = runtime.block_on(async {
        let caller = Caller::new(kind, base, BUDGET, store)?;
        Ok::<_, String>(pull(&caller, tasks, calls).await.0)
    })?;
    println!("{}", json!({ "succeeded": tally.succeeded() }));
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
