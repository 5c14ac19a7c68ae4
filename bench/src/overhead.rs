//! Overhead per call, as a budget: the SDK's latency and client CPU per
//! call against the floor (the same request by hand with reqwest and the
//! SDK's timeouts), allocations per call, and the peer beside them for
//! reference. Loopback calls, so the per-call work is all there is to see.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::Config;
use crate::baseline::{self, PARAMETER, TOOL_ID};
use crate::stats::{Summary, median, round};

/// Requests in flight at once when client CPU is measured.
pub const CONCURRENCY: usize = 64;

/// One client of each kind, pointed at the same server and reused for
/// every call, so every connection pool stays warm.
#[derive(Clone)]
pub struct Clients {
    /// The SDK, with its defaults.
    pub sdk: conduit_sdk::Client,
    /// reqwest-middleware + reqwest-retry on a client with the SDK's timeouts.
    pub peer: reqwest_middleware::ClientWithMiddleware,
    /// A reqwest client with the SDK's default timeouts.
    pub floor: reqwest::Client,
    /// The server's URL.
    pub base: String,
}

/// Which client to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `client.custom_tools().run(..).parameter(..).send()`.
    Sdk,
    /// [`baseline::run_tool_peer`].
    Peer,
    /// [`baseline::run_tool`] on [`baseline::with_timeouts`].
    Floor,
}

impl Which {
    /// Every client, in the order rounds rotate through them.
    pub const ALL: [Which; 3] = [Which::Sdk, Which::Peer, Which::Floor];

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Which::Sdk => "sdk",
            Which::Peer => "peer",
            Which::Floor => "floor",
        }
    }
}

impl Clients {
    /// Clients for `base` (the server's URL).
    pub fn new(base: &str) -> Result<Self, String> {
        let sdk = conduit_sdk::Client::builder()
            .token(baseline::TOKEN)
            .base_url(base)
            .build()
            .map_err(|e| format!("SDK client: {e}"))?;
        Ok(Self {
            sdk,
            peer: baseline::peer(crate::goodput::BUDGET)
                .map_err(|e| format!("peer client: {e}"))?,
            floor: baseline::with_timeouts().map_err(|e| format!("floor client: {e}"))?,
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

    /// One run through `which`, checking it decoded a successful run.
    pub async fn run(&self, which: Which) -> Result<(), String> {
        let success = match which {
            Which::Sdk => self.sdk_run().await?.success(),
            Which::Floor => {
                baseline::run_tool(&self.floor, &self.base)
                    .await
                    .map_err(|e| format!("floor call: {e}"))?
                    .success
            }
            Which::Peer => {
                baseline::run_tool_peer(&self.peer, &self.base)
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

/// The order of the sequential calls, repeated: every client follows
/// every other exactly once per cycle (counting the wrap), and runs twice.
/// A call costs more after one through another client's pool, and how
/// much more depends on which client that was.
pub const SEQUENCE: [usize; 6] = [0, 1, 2, 0, 2, 1];

/// The indices of [`Which::ALL`] in the order of round `n`: rotated by one
/// place per round, so each client runs in each place equally often.
pub fn rotation(n: usize) -> impl Iterator<Item = usize> {
    let len = Which::ALL.len();
    (0..len).map(move |k| (n + k) % len)
}

/// Latency, client CPU and allocations per call of each client.
pub async fn overhead(clients: &Arc<Clients>, config: &Config) -> Result<Value, String> {
    eprintln!("conduit-bench: sequential latency");
    let latency = latency(clients, config).await?;
    eprintln!("conduit-bench: client CPU at {CONCURRENCY} in flight");
    let cpu = cpu(clients, config).await?;
    eprintln!("conduit-bench: allocations per call");
    let allocs = allocations(clients, config.alloc_calls).await?;
    Ok(json!({
        "latency_vs_floor": latency["vs_floor"],
        "latency_vs_peer": latency["vs_peer"],
        "cpu_vs_floor": cpu["vs_floor"],
        "cpu_vs_peer": cpu["vs_peer"],
        "allocs_per_call": allocs["per_call"],
        "latency": latency,
        "cpu": cpu,
        "alloc_calls": allocs["calls"],
    }))
}

/// Sequential latency, every client's calls in [`SEQUENCE`] so that all
/// see the same conditions and the same predecessors.
async fn latency(clients: &Clients, config: &Config) -> Result<Value, String> {
    for _ in 0..config.latency_warmup {
        for which in Which::ALL {
            clients.run(which).await?;
        }
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); Which::ALL.len()];
    let per_cycle = SEQUENCE.len() / Which::ALL.len();
    for _ in 0..config.latency_calls.div_ceil(per_cycle) {
        for i in SEQUENCE {
            let start = Instant::now();
            clients.run(Which::ALL[i]).await?;
            times[i].push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    let (sdk, peer, floor) = (&times[0], &times[1], &times[2]);
    Ok(json!({
        "calls": sdk.len(),
        "sdk_us": Summary::of(sdk).to_json(),
        "peer_us": Summary::of(peer).to_json(),
        "floor_us": Summary::of(floor).to_json(),
        "vs_peer": round(median(sdk) / median(peer)),
        "vs_floor": round(median(sdk) / median(floor)),
    }))
}

/// Client CPU per request at [`CONCURRENCY`] in flight: one untimed burst
/// per client, then rounds of one burst each in rotated order. The result
/// is the median over the rounds of the SDK's CPU per request over the
/// other client's in the same round, as the two ran back to back.
async fn cpu(clients: &Arc<Clients>, config: &Config) -> Result<Value, String> {
    let requests = config.load_requests;
    for which in Which::ALL {
        burst(clients, which, requests).await?;
    }
    let mut per_request: Vec<Vec<f64>> = vec![Vec::new(); Which::ALL.len()];
    for round in 0..config.load_rounds {
        for i in rotation(round) {
            per_request[i].push(burst(clients, Which::ALL[i], requests).await?);
        }
    }
    Ok(cpu_report(&per_request, requests))
}

/// The CPU figures of `per_request` (one list per client of
/// [`Which::ALL`], one entry per round).
fn cpu_report(per_request: &[Vec<f64>], requests: usize) -> Value {
    let sdk = &per_request[0];
    let paired =
        |other: &[f64]| -> Vec<f64> { sdk.iter().zip(other).map(|(s, o)| s / o).collect() };
    let (peer, floor) = (paired(&per_request[1]), paired(&per_request[2]));
    json!({
        "concurrency": CONCURRENCY,
        "requests_per_round": requests,
        "rounds": sdk.len(),
        "sdk_us": Summary::of(sdk).to_json(),
        "peer_us": Summary::of(&per_request[1]).to_json(),
        "floor_us": Summary::of(&per_request[2]).to_json(),
        "vs_peer": round(median(&peer)),
        "vs_floor": round(median(&floor)),
        "vs_floor_rounds": Summary::of(&floor).to_json(),
    })
}

/// Sends `total` requests through `which`, [`CONCURRENCY`] at a time; the
/// client CPU per request, in µs.
async fn burst(clients: &Arc<Clients>, which: Which, total: usize) -> Result<f64, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let before = client_cpu_ns();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (clients, next) = (clients.clone(), next.clone());
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                clients.run(which).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| format!("burst task: {e}"))??;
    }
    let used = client_cpu_ns().saturating_sub(before);
    Ok(used as f64 / 1e3 / total as f64)
}

/// CPU time every thread of this process but the loopback server's has
/// used, in ns, from `/proc/self/task/*/schedstat`. Unlike wall-clock
/// rates it barely moves when other processes compete for the cores.
fn client_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            comm.trim_end() != crate::server::THREAD_NAME
        })
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            stat.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Allocations per call of each client, over `calls` sequential calls
/// after as many untimed (0 everywhere when the counting allocator is not
/// installed, as in unit tests).
async fn allocations(clients: &Clients, calls: usize) -> Result<Value, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ratios_pair_the_clients_round_by_round() {
        // The machine's load differs from round to round; the SDK takes
        // 10 % more than the floor in two rounds and 30 % less in one.
        let sdk = vec![11.0, 33.0, 10.5];
        let floor = vec![10.0, 30.0, 15.0];
        let report = cpu_report(&[sdk, floor.clone(), floor], 100);
        assert_eq!(report["vs_floor"], 1.1);
        assert_eq!(report["vs_peer"], 1.1);
        assert_eq!(report["vs_floor_rounds"]["min"], 0.7);
        assert_eq!(report["rounds"], 3);
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
                assert_eq!(n, usize::from(client != before), "{follows:?}");
            }
        }
    }

    #[test]
    fn every_client_takes_every_place_once_in_as_many_rounds() {
        let len = Which::ALL.len();
        let mut seen = vec![vec![0; len]; len];
        for round in 0..len {
            for (place, client) in rotation(round).enumerate() {
                seen[client][place] += 1;
            }
        }
        assert!(seen.iter().flatten().all(|&n| n == 1), "{seen:?}");
    }
}
