//! The measurements `cargo xtask bench` reports, one function each.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::baseline::{self, RunData};
use crate::server::Server;
use crate::stats::{Summary, median, round};

/// The tool id every request names.
pub const TOOL_ID: &str = "kg77c0dy0mgdpzmqz6tesry8w184002s";
/// The bearer token every request carries.
pub const TOKEN: &str = "bench-token";
/// The one parameter every request sends.
pub const PARAMETER: (&str, &str) = ("order_id", "ord_12345");
/// Requests in flight at once in the throughput measurement.
pub const CONCURRENCY: usize = 64;

/// How much of each measurement to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `quick` or `full`, for the report.
    pub mode: &'static str,
    /// Untimed SDK/baseline pairs before the latency samples.
    pub latency_warmup: usize,
    /// Timed SDK/baseline pairs.
    pub latency_pairs: usize,
    /// Sequential calls per client counted for allocations per call.
    pub alloc_calls: usize,
    /// Requests per throughput round.
    pub throughput_requests: usize,
    /// Timed throughput rounds per client (after one untimed round each).
    pub throughput_rounds: usize,
    /// Runs of the 429 → retry measurement (about 1 s each).
    pub retry_runs: usize,
    /// (operations, runs) for the code generation timings.
    pub codegen: Vec<(usize, usize)>,
    /// Calls before the first memory reading.
    pub rss_first: usize,
    /// Calls before the second memory reading, counting the first ones.
    pub rss_total: usize,
}

impl Config {
    /// Enough for stable medians in well under three minutes on two cores.
    pub fn quick() -> Self {
        Self {
            mode: "quick",
            latency_warmup: 1_000,
            latency_pairs: 10_000,
            alloc_calls: 1_000,
            throughput_requests: 4_000,
            throughput_rounds: 16,
            retry_runs: 3,
            codegen: vec![(10, 3), (100, 3), (500, 1)],
            rss_first: 1_000,
            rss_total: 10_000,
        }
    }

    /// The full run.
    pub fn full() -> Self {
        Self {
            mode: "full",
            latency_warmup: 2_000,
            latency_pairs: 50_000,
            alloc_calls: 5_000,
            throughput_requests: 5_000,
            throughput_rounds: 60,
            retry_runs: 5,
            codegen: vec![(10, 9), (100, 7), (500, 5)],
            rss_first: 1_000,
            rss_total: 10_000,
        }
    }
}

/// One SDK client and one reqwest client, both pointed at the same server
/// and reused for every call, so both connection pools stay warm.
#[derive(Clone)]
pub struct Clients {
    /// The SDK, with its defaults (retries, timeouts, the real sleeper).
    pub sdk: conduit_sdk::Client,
    /// reqwest-middleware + reqwest-retry on a client with the SDK's timeouts.
    pub peer: reqwest_middleware::ClientWithMiddleware,
    /// A reqwest client with the SDK's default timeouts.
    pub floor: reqwest::Client,
    /// A plain `reqwest::Client::new()`.
    pub http: reqwest::Client,
    /// The server's URL.
    pub base: String,
}

/// Which client to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `client.custom_tools().run(..).parameter(..).send()`.
    Sdk,
    /// [`baseline::run_tool_peer`]: reqwest-middleware + reqwest-retry.
    Peer,
    /// [`baseline::run_tool`] on a client with the SDK's timeouts.
    Floor,
    /// [`baseline::run_tool`] on `reqwest::Client::new()`.
    Baseline,
}

impl Which {
    /// Every client, in the order measurements rotate through them.
    pub const ALL: [Which; 4] = [Which::Sdk, Which::Peer, Which::Floor, Which::Baseline];

    /// The client whose [`name`](Self::name) is `name`.
    pub fn named(name: &str) -> Option<Which> {
        Which::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Which::Sdk => "sdk",
            Which::Peer => "peer",
            Which::Floor => "floor",
            Which::Baseline => "baseline",
        }
    }
}

impl Clients {
    /// Clients for `base` (the server's URL).
    pub fn new(base: &str) -> Result<Self, String> {
        let sdk = conduit_sdk::Client::builder()
            .token(TOKEN)
            .base_url(base)
            .build()
            .map_err(|e| format!("SDK client: {e}"))?;
        Ok(Self {
            sdk,
            peer: baseline::peer().map_err(|e| format!("peer client: {e}"))?,
            floor: baseline::with_timeouts().map_err(|e| format!("floor client: {e}"))?,
            http: reqwest::Client::new(),
            base: base.to_owned(),
        })
    }

    /// One run through the SDK.
    pub async fn sdk_run(&self) -> Result<conduit_sdk::ToolRun, String> {
        self.sdk
            .custom_tools()
            .run(TOOL_ID)
            .parameter(PARAMETER.0, PARAMETER.1)
            .send()
            .await
            .map_err(|e| format!("SDK call: {e}"))
    }

    /// The same run, by hand.
    pub async fn baseline_run(&self) -> Result<RunData, String> {
        self.by_hand(&self.http, "baseline").await
    }

    /// The same run by hand on `client` (the baseline's or the floor's).
    async fn by_hand(&self, client: &reqwest::Client, name: &str) -> Result<RunData, String> {
        baseline::run_tool(client, &self.base, TOKEN, TOOL_ID, PARAMETER.0, PARAMETER.1)
            .await
            .map_err(|e| format!("{name} call: {e}"))
    }

    /// One run through `which`, checking it decoded a successful run.
    pub async fn run(&self, which: Which) -> Result<(), String> {
        let success = match which {
            Which::Sdk => self.sdk_run().await?.success(),
            Which::Baseline => self.baseline_run().await?.success,
            Which::Floor => self.by_hand(&self.floor, "floor").await?.success,
            Which::Peer => {
                baseline::run_tool_peer(
                    &self.peer,
                    &self.base,
                    TOKEN,
                    TOOL_ID,
                    PARAMETER.0,
                    PARAMETER.1,
                )
                .await
                .map_err(|e| format!("peer call: {e}"))?
                .success
            }
        };
        if success {
            Ok(())
        } else {
            Err(format!("{which:?}: the run did not decode as a success"))
        }
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `phase` against a fresh loopback server on a new multi-threaded
/// runtime (whose threads, like the server's, inherit the calling thread's
/// CPU affinity) and returns what it measured.
pub fn on_fresh_server<F, Fut>(phase: F) -> Result<Value, String>
where
    F: FnOnce(Arc<Server>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>> + Send + 'static,
{
    let server = Server::start().map_err(|e| format!("server: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    // On a worker, as in the full run: polled by `block_on`'s own thread,
    // every call wakes that thread through a futex, and the latency ratios
    // read about 0.03 higher.
    let phase = runtime.spawn(phase(Arc::new(server)));
    runtime
        .block_on(phase)
        .map_err(|e| format!("measurement task: {e}"))?
}

/// The indices of [`Which::ALL`] in the order of round `n`: rotated by one
/// place per round, so that over every four rounds each client runs in
/// each place once.
pub fn rotation(n: usize) -> impl Iterator<Item = usize> {
    let len = Which::ALL.len();
    (0..len).map(move |k| (n + k) % len)
}

/// The order of the sequential calls, repeated: every client follows every
/// other client exactly once per cycle (counting the wrap to the start),
/// and runs three times. A call costs more after a call through another
/// client's pool, and how much more depends on which client that was:
/// [`rotation`] put each client in each place equally often but had it
/// follow one same client three times in four (the SDK the baseline, the
/// peer the SDK).
pub const SEQUENCE: [usize; 12] = [0, 1, 2, 3, 0, 2, 1, 3, 2, 0, 3, 1];

/// Sequential latency, every client's calls in [`SEQUENCE`] so that all
/// see the same conditions and the same predecessors.
pub async fn latency(clients: &Clients, config: &Config) -> Result<Value, String> {
    for _ in 0..config.latency_warmup {
        for which in Which::ALL {
            clients.run(which).await?;
        }
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(config.latency_pairs); Which::ALL.len()];
    // Whole cycles, so that every predecessor counts alike.
    let cycles = config
        .latency_pairs
        .div_ceil(SEQUENCE.len() / Which::ALL.len());
    for _ in 0..cycles {
        for i in SEQUENCE {
            let start = Instant::now();
            clients.run(Which::ALL[i]).await?;
            times[i].push(micros(start.elapsed()));
        }
    }
    let (sdk, peer, floor, base) = (&times[0], &times[1], &times[2], &times[3]);
    let per_pair: Vec<f64> = sdk.iter().zip(base).map(|(s, b)| s / b).collect();
    Ok(json!({
        "warmup_pairs": config.latency_warmup,
        "pairs": sdk.len(),
        "sdk_us": Summary::of(sdk).to_json(),
        "peer_us": Summary::of(peer).to_json(),
        "floor_us": Summary::of(floor).to_json(),
        "baseline_us": Summary::of(base).to_json(),
        "pair_ratio": Summary::of(&per_pair).to_json(),
        "ratio": round(median(sdk) / median(base)),
        "vs_peer": round(median(sdk) / median(peer)),
        "vs_floor": round(median(sdk) / median(floor)),
    }))
}

/// Allocations per call of each client, over `calls` sequential calls
/// after the same number untimed (0 everywhere when the counting allocator
/// is not installed, as in unit tests).
pub async fn allocations(clients: &Clients, calls: usize) -> Result<Value, String> {
    let mut per_call = Map::new();
    for which in Which::ALL {
        for _ in 0..calls {
            clients.run(which).await?;
        }
        let before = crate::allocs::allocations();
        for _ in 0..calls {
            clients.run(which).await?;
        }
        let used = crate::allocs::allocations() - before;
        per_call.insert(
            which.name().to_owned(),
            json!(round(used as f64 / calls as f64)),
        );
    }
    Ok(json!({ "calls": calls, "per_call": per_call }))
}

/// CPU time the threads of this process have used, in ns, split into the
/// loopback server's thread and everything else (the clients and the
/// runtime), from `/proc/self/task/*/schedstat`. Unlike wall-clock rates it
/// barely moves when other processes compete for the cores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cpu {
    /// Every thread but the server's.
    pub clients_ns: u64,
    /// The server's thread.
    pub server_ns: u64,
    /// Every thread but the server's, in user mode, in clock ticks (from
    /// `stat`; coarse, so only read over long runs, as a share).
    pub clients_user_ticks: u64,
    /// The same in the kernel.
    pub clients_system_ticks: u64,
}

impl Cpu {
    /// Now.
    pub fn now() -> Self {
        let mut cpu = Self::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return cpu;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let Some(ns) = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            else {
                continue;
            };
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.trim_end() == crate::server::THREAD_NAME {
                cpu.server_ns += ns;
            } else {
                cpu.clients_ns += ns;
                let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
                if let Some((user, system)) = user_system_ticks(&stat) {
                    cpu.clients_user_ticks += user;
                    cpu.clients_system_ticks += system;
                }
            }
        }
        cpu
    }
}

/// `utime` and `stime` from a `/proc/<pid>/task/<tid>/stat` line: the
/// 14th and 15th fields, counted after the command name in parentheses
/// (which may itself hold spaces and parentheses).
fn user_system_ticks(stat: &str) -> Option<(u64, u64)> {
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// One burst of concurrent requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Requests per second, wall clock.
    pub rps: f64,
    /// CPU µs per request of every thread but the server's.
    pub client_cpu_us: f64,
}

/// A request, boxed so every kind is driven the same way.
pub type Request = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// Sends `total` requests, [`CONCURRENCY`] at a time.
pub async fn burst(request: &Request, total: usize) -> Result<Burst, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = Cpu::now();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let request = request.clone();
        let next = next.clone();
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                request().await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| format!("throughput task: {e}"))??;
    }
    let elapsed = start.elapsed();
    let used = Cpu::now();
    Ok(Burst {
        rps: total as f64 / elapsed.as_secs_f64(),
        client_cpu_us: used.clients_ns.saturating_sub(cpu.clients_ns) as f64 / 1e3 / total as f64,
    })
}

/// A [`Request`] running `which` on `clients`.
pub fn request(clients: &Arc<Clients>, which: Which) -> Request {
    let clients = clients.clone();
    Arc::new(move || {
        let clients = clients.clone();
        Box::pin(async move { clients.run(which).await })
    })
}

/// Throughput at [`CONCURRENCY`] requests in flight; rounds rotate through
/// the clients.
pub async fn throughput(clients: &Arc<Clients>, config: &Config) -> Result<Value, String> {
    let requests: Vec<Request> = Which::ALL
        .into_iter()
        .map(|w| request(clients, w))
        .collect();
    // Untimed: opens the pools' connections.
    for r in &requests {
        burst(r, config.throughput_requests).await?;
    }
    let mut bursts: Vec<Vec<Burst>> = vec![Vec::new(); requests.len()];
    for round in 0..config.throughput_rounds {
        for i in rotation(round) {
            bursts[i].push(burst(&requests[i], config.throughput_requests).await?);
        }
    }
    Ok(throughput_report(&bursts, config))
}

/// The throughput figures of `bursts` (one list per client of
/// [`Which::ALL`], one burst per round).
fn throughput_report(bursts: &[Vec<Burst>], config: &Config) -> Value {
    let rps = |b: &[Burst]| b.iter().map(|b| b.rps).collect::<Vec<_>>();
    let cpu = |b: &[Burst]| b.iter().map(|b| b.client_cpu_us).collect::<Vec<_>>();
    let (sdk, peer, floor, base) = (&bursts[0], &bursts[1], &bursts[2], &bursts[3]);
    // Each round runs every client back to back, so the SDK and another
    // client in one round share the machine's conditions: the ratio is the
    // median of the rounds' ratios. A ratio of medians does not pair them,
    // and moves by more than the differences measured when the rounds
    // straddle a quiet and a busy period (it once put the floor, which
    // arms timers the baseline does not, 12 % ahead of the baseline).
    let ratios = |other: &[Burst], of: fn(&Burst) -> f64| -> Vec<f64> {
        sdk.iter().zip(other).map(|(s, o)| of(s) / of(o)).collect()
    };
    let ratio = |other: &[Burst]| round(median(&ratios(other, |b| b.rps)));
    let unpaired = |other: &[Burst]| round(median(&rps(sdk)) / median(&rps(other)));
    let per_round = |other: &[Burst], of: fn(&Burst) -> f64| -> Value {
        Summary::of(&ratios(other, of)).to_json()
    };
    json!({
        "concurrency": CONCURRENCY,
        "requests_per_round": config.throughput_requests,
        "rounds": config.throughput_rounds,
        "sdk_rps": Summary::of(&rps(sdk)).to_json(),
        "peer_rps": Summary::of(&rps(peer)).to_json(),
        "floor_rps": Summary::of(&rps(floor)).to_json(),
        "baseline_rps": Summary::of(&rps(base)).to_json(),
        "ratio": ratio(base),
        "vs_peer": ratio(peer),
        "vs_floor": ratio(floor),
        "unpaired_vs_baseline": unpaired(base),
        "unpaired_vs_peer": unpaired(peer),
        "unpaired_vs_floor": unpaired(floor),
        "baseline_round_pair_ratio": per_round(base, |b| b.rps),
        "baseline_round_pair_cpu_ratio": per_round(base, |b| b.client_cpu_us),
        "peer_round_pair_ratio": per_round(peer, |b| b.rps),
        "floor_round_pair_ratio": per_round(floor, |b| b.rps),
        "peer_round_pair_cpu_ratio": per_round(peer, |b| b.client_cpu_us),
        "floor_round_pair_cpu_ratio": per_round(floor, |b| b.client_cpu_us),
        "sdk_client_cpu_us": Summary::of(&cpu(sdk)).to_json(),
        "peer_client_cpu_us": Summary::of(&cpu(peer)).to_json(),
        "floor_client_cpu_us": Summary::of(&cpu(floor)).to_json(),
        "baseline_client_cpu_us": Summary::of(&cpu(base)).to_json(),
        "client_cpu_ratio": round(median(&cpu(sdk)) / median(&cpu(base))),
    })
}

/// How late after `Retry-After` the SDK's retry reaches the server: the
/// server answers 429 with `Retry-After: 1`, then 200; lateness is the
/// retry's arrival minus (the moment the 429 was written + 1 s), in ms.
pub async fn retry_after(
    clients: &Clients,
    server: &Server,
    config: &Config,
) -> Result<Value, String> {
    let mut late = Vec::new();
    for _ in 0..config.retry_runs {
        server.set_recording(true);
        server.throttle_next(1);
        let run = clients.sdk_run().await;
        let seen = server.recorded_at_least(2).await;
        server.set_recording(false);
        server.throttle_next(0);
        let run = run?;
        let statuses: Vec<u16> = seen.iter().map(|s| s.status).collect();
        if statuses != [429, 200] || !run.success() {
            return Err(format!(
                "retry run: the server answered {statuses:?}, expected [429, 200]"
            ));
        }
        let deadline = seen[0].answered + Duration::from_secs(1);
        let arrived = seen[1].arrived;
        late.push(if arrived >= deadline {
            millis(arrived - deadline)
        } else {
            -millis(deadline - arrived)
        });
    }
    Ok(json!({
        "runs": config.retry_runs,
        "late_ms": late.iter().map(|&x| round(x)).collect::<Vec<_>>(),
        "summary_ms": Summary::of(&late).to_json(),
        "median_ms": round(median(&late)),
    }))
}

/// `VmRSS` of this process, in KiB.
pub fn rss_kb() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/self/status".into())
}

/// Resident memory growth over sequential SDK calls on a fresh client.
pub async fn rss_growth(base: &str, config: &Config) -> Result<Value, String> {
    let clients = Clients::new(base)?;
    let before = rss_kb()?;
    for _ in 0..config.rss_first {
        clients.run(Which::Sdk).await?;
    }
    let first = rss_kb()?;
    for _ in config.rss_first..config.rss_total {
        clients.run(Which::Sdk).await?;
    }
    let last = rss_kb()?;
    Ok(json!({
        "before_kb": before,
        "after_first_kb": first,
        "after_total_kb": last,
        "first_calls": config.rss_first,
        "total_calls": config.rss_total,
        "growth_kb": last as i64 - first as i64,
    }))
}

/// The vendored spec with its run operation (`runCustomTool`) cloned `n`
/// times as `POST /v1/bench{i}/{id}/run` (`benchOp{i}`), in place of every
/// path, each with the same error bodies, path parameter and request body.
pub fn synthetic_spec(vendored: &Value, n: usize) -> Result<Value, String> {
    let paths = vendored["paths"]
        .as_object()
        .ok_or("the vendored spec has no paths")?;
    let (method, operation) = paths
        .values()
        .filter_map(Value::as_object)
        .flat_map(|item| item.iter())
        .find(|(_, op)| op["operationId"] == "runCustomTool")
        .ok_or("the vendored spec has no runCustomTool operation")?;
    let mut new_paths = serde_json::Map::new();
    for i in 0..n {
        let mut op = operation.clone();
        op["operationId"] = json!(format!("benchOp{i}"));
        new_paths.insert(
            format!("/v1/bench{i}/{{id}}/run"),
            json!({ method.clone(): op }),
        );
    }
    let mut doc = vendored.clone();
    doc["paths"] = Value::Object(new_paths);
    Ok(doc)
}

/// Times `conduit_codegen::generate` on synthetic specs of each size.
pub fn codegen(spec_path: &Path, config: &Config) -> Result<Value, String> {
    let vendored = conduit_codegen::Source::load(spec_path)
        .map_err(|e| format!("{}: {e}", spec_path.display()))?
        .doc;
    let mut sizes = Vec::new();
    for &(operations, runs) in &config.codegen {
        let doc = synthetic_spec(&vendored, operations)?;
        let mut times = Vec::new();
        let mut lines = 0;
        for _ in 0..runs {
            let start = Instant::now();
            let generated = conduit_codegen::generate(&doc)
                .map_err(|e| format!("generate ({operations} operations): {e}"))?;
            times.push(millis(start.elapsed()));
            lines = generated.code.lines().count();
            drop(generated);
        }
        eprintln!(
            "  {operations} operations: median {:.0} ms over {runs} run(s)",
            median(&times)
        );
        sizes.push(json!({
            "operations": operations,
            "runs": runs,
            "generated_lines": lines,
            "ms": Summary::of(&times).to_json(),
            "median_ms": round(median(&times)),
        }));
    }
    Ok(Value::Array(sizes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_user_and_system_ticks() {
        let line = "4242 (tokio-rt-worker) S 1 2 3 0 -1 4194368 120 0 0 0 731 412 0 0 20 0";
        assert_eq!(user_system_ticks(line), Some((731, 412)));
        // A command name with spaces and a parenthesis does not shift them.
        let odd = "7 (a) b (c)) R 1 2 3 0 -1 0 0 0 0 0 15 9 0 0";
        assert_eq!(user_system_ticks(odd), Some((15, 9)));
        assert_eq!(user_system_ticks("7 (short) R 1 2"), None);
    }

    #[test]
    fn throughput_ratios_pair_the_clients_round_by_round() {
        let burst = |rps: f64| Burst {
            rps,
            client_cpu_us: 1e6 / rps,
        };
        // The machine's load differs from round to round; the SDK is 10 %
        // ahead of the peer in two rounds and 30 % behind in one.
        let sdk = vec![burst(110.0), burst(330.0), burst(105.0)];
        let peer = vec![burst(100.0), burst(300.0), burst(150.0)];
        let bursts = [sdk, peer.clone(), peer.clone(), peer];
        let report = throughput_report(&bursts, &Config::quick());
        assert_eq!(report["vs_peer"], 1.1);
        assert_eq!(report["vs_floor"], 1.1);
        assert_eq!(report["ratio"], 1.1);
        assert_eq!(report["peer_round_pair_ratio"]["min"], 0.7);
        // 110 / 150: the medians fall in different rounds.
        assert_eq!(report["unpaired_vs_peer"], 0.733);
    }

    #[test]
    fn every_client_follows_every_other_once_per_sequence() {
        let len = Which::ALL.len();
        let mut runs = vec![0; len];
        let mut follows = vec![vec![0; len]; len];
        for (k, &client) in SEQUENCE.iter().enumerate() {
            runs[client] += 1;
            // The sequence repeats: the first call follows the last.
            let before = SEQUENCE[(k + SEQUENCE.len() - 1) % SEQUENCE.len()];
            follows[client][before] += 1;
        }
        assert!(runs.iter().all(|&n| n == len - 1), "{runs:?}");
        for (client, row) in follows.iter().enumerate() {
            for (before, &n) in row.iter().enumerate() {
                let want = usize::from(client != before);
                assert_eq!(n, want, "client {client} after {before}: {follows:?}");
            }
        }
    }

    #[test]
    fn every_client_takes_every_place_once_in_four_rounds() {
        let len = Which::ALL.len();
        let mut seen = vec![vec![0; len]; len];
        for round in 0..len {
            let order: Vec<usize> = rotation(round).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..len).collect::<Vec<_>>(), "round {round}");
            for (place, client) in order.into_iter().enumerate() {
                seen[client][place] += 1;
            }
        }
        assert!(seen.iter().flatten().all(|&n| n == 1), "{seen:?}");
    }
}
