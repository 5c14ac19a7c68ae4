//! Where the SDK's overhead over the baseline goes: the same request through
//! each layer the SDK adds, one at a time, measured like the main comparison.
//! Not part of the goals; it points at what to optimise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conduit_sdk::raw;
use serde_json::{Map, Value, json};

use crate::baseline;
use crate::measure::{
    Clients, Config, PARAMETER, Request, TOKEN, TOOL_ID, Which, burst, on_fresh_server,
};
use crate::stats::{Summary, median, round};

/// One way of sending the run request, from bare reqwest up to the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// [`baseline::run_tool`] on `reqwest::Client::new()`.
    Baseline,
    /// The same, on a reqwest client with the SDK's default timeouts
    /// (60 s per request, 10 s to connect).
    BaselineTimeouts,
    /// The generated client with no middleware, on `reqwest::Client::new()`
    /// (no auth header: the server does not check it).
    Generated,
    /// The generated client with no middleware, on a client with timeouts.
    GeneratedTimeouts,
    /// `sdk.raw().run_custom_tool()...send()`: generated code plus the
    /// SDK's middleware (auth, retry loop, tracing span, body limits).
    SdkRaw,
    /// `sdk.call(|raw| ...)`: plus the task-local call state and error mapping.
    SdkCall,
    /// `sdk.custom_tools().run(..).parameter(..).send()`.
    Sdk,
    /// For comparison, not a layer: the peer, reqwest-middleware with
    /// reqwest-retry on the client with the SDK's timeouts.
    Peer,
}

impl Layer {
    /// Every layer, in the order above.
    pub const ALL: [Layer; 8] = [
        Layer::Baseline,
        Layer::BaselineTimeouts,
        Layer::Generated,
        Layer::GeneratedTimeouts,
        Layer::SdkRaw,
        Layer::SdkCall,
        Layer::Sdk,
        Layer::Peer,
    ];

    /// A short name for the report.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Baseline => "reqwest (baseline)",
            Layer::BaselineTimeouts => "reqwest + SDK's timeouts",
            Layer::Generated => "generated client, no hooks",
            Layer::GeneratedTimeouts => "generated client, no hooks, timeouts",
            Layer::SdkRaw => "sdk.raw() (hooks/middleware)",
            Layer::SdkCall => "sdk.call(..) (+ error mapping)",
            Layer::Sdk => "custom_tools().run() (SDK)",
            Layer::Peer => "for comparison: the peer (reqwest-middleware + reqwest-retry)",
        }
    }
}

/// The clients for every layer.
pub struct Layers {
    clients: Clients,
    http_timeouts: reqwest::Client,
    generated: raw::Client,
    generated_timeouts: raw::Client,
}

impl Layers {
    /// Clients for every layer, pointed at `base`.
    pub fn new(base: &str) -> Result<Self, String> {
        let timeouts = || {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| format!("reqwest client: {e}"))
        };
        Ok(Self {
            clients: Clients::new(base)?,
            http_timeouts: timeouts()?,
            generated: raw::Client::new_with_client(
                base,
                reqwest::Client::new(),
                conduit_api_gen::Hooks::default(),
            ),
            generated_timeouts: raw::Client::new_with_client(
                base,
                timeouts()?,
                conduit_api_gen::Hooks::default(),
            ),
        })
    }

    /// One request through `layer`; checks it decoded a successful run.
    pub async fn run(&self, layer: Layer) -> Result<(), String> {
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", layer.name());
        let success = match layer {
            Layer::Baseline => self.clients.baseline_run().await?.success,
            Layer::BaselineTimeouts => {
                let (key, value) = PARAMETER;
                baseline::run_tool(
                    &self.http_timeouts,
                    &self.clients.base,
                    TOKEN,
                    TOOL_ID,
                    key,
                    value,
                )
                .await
                .map_err(|e| fail(&e))?
                .success
            }
            Layer::Generated | Layer::GeneratedTimeouts | Layer::SdkRaw => {
                let client = match layer {
                    Layer::Generated => &self.generated,
                    Layer::GeneratedTimeouts => &self.generated_timeouts,
                    _ => self.clients.sdk.raw(),
                };
                client
                    .run_custom_tool()
                    .id(TOOL_ID)
                    .body(body())
                    .send()
                    .await
                    .map_err(|e| fail(&e))?
                    .into_inner()
                    .data
                    .success
            }
            Layer::SdkCall => {
                self.clients
                    .sdk
                    .call(|raw| raw.run_custom_tool().id(TOOL_ID).body(body()).send())
                    .await
                    .map_err(|e| fail(&e))?
                    .into_inner()
                    .data
                    .success
            }
            Layer::Sdk => self.clients.sdk_run().await?.success(),
            Layer::Peer => return self.clients.run(Which::Peer).await,
        };
        if success {
            Ok(())
        } else {
            Err(format!("{}: not a successful run", layer.name()))
        }
    }
}

/// The request body the SDK builds for one parameter.
fn body() -> raw::types::RunCustomToolBody {
    let mut parameters = Map::new();
    parameters.insert(PARAMETER.0.to_owned(), Value::from(PARAMETER.1));
    raw::types::RunCustomToolBody {
        parameters,
        workspace_id: None,
    }
}

fn request(layers: &Arc<Layers>, layer: Layer) -> Request {
    let layers = layers.clone();
    Arc::new(move || {
        let layers = layers.clone();
        Box::pin(async move { layers.run(layer).await })
    })
}

/// [`breakdown`] as configured, on a thread pinned to one CPU with its own
/// loopback server and runtime, which inherit the pin ([`crate::pin`]):
/// on one CPU the medians of a few runs agree within about 1 %, steady
/// enough to measure one change at a time.
pub fn pinned(config: &Config) -> Result<Value, String> {
    let (rounds, sequential, requests) = (
        config.breakdown_rounds,
        config.breakdown_sequential,
        config.breakdown_requests,
    );
    let thread = std::thread::spawn(move || {
        let cpu = crate::pin::to_one_cpu()?;
        // The server and runtime are started after the pin, so that their
        // threads inherit it.
        let mut value = on_fresh_server(move |server| async move {
            let layers = Arc::new(Layers::new(&server.url())?);
            breakdown(&layers, rounds, sequential, requests).await
        })?;
        value["pinned_cpu"] = json!(cpu);
        Ok::<_, String>(value)
    });
    thread
        .join()
        .map_err(|_| "the breakdown's thread panicked".to_owned())?
}

/// Sequential latency, allocations per call and throughput of every layer.
///
/// Latency: each layer is alternated with the baseline (layer, baseline,
/// layer, ...), as in the main comparison, because a call costs more when
/// the previous one went through another client's connection pool; its
/// ratio is to the baseline calls it was paired with. Throughput: one burst
/// per layer per round, in rotation; the client CPU per request is the
/// steadier signal of the two on a shared machine.
pub async fn breakdown(
    layers: &Arc<Layers>,
    rounds: usize,
    sequential: usize,
    burst_requests: usize,
) -> Result<Value, String> {
    let n = Layer::ALL.len();
    let requests: Vec<Request> = Layer::ALL.map(|layer| request(layers, layer)).to_vec();
    for (layer, request) in Layer::ALL.into_iter().zip(&requests) {
        for _ in 0..sequential / 10 {
            layers.run(layer).await?;
        }
        burst(request, burst_requests).await?;
    }
    let mut latency: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut paired: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut rps: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); n];
    // Allocations during each layer's sequential calls; the calls are the
    // layer's latency samples.
    let mut allocs = vec![0u64; n];
    let micros = |start: Instant| start.elapsed().as_secs_f64() * 1e6;
    // `row` is the layer's place in `Layer::ALL`.
    let mut timed = async |row: usize, samples: &mut Vec<f64>| {
        let layer = Layer::ALL[row];
        let before = crate::allocs::allocations();
        let start = Instant::now();
        layers.run(layer).await?;
        samples.push(micros(start));
        allocs[row] += crate::allocs::allocations() - before;
        Ok::<_, String>(())
    };
    for _ in 0..rounds {
        for i in 1..n {
            for _ in 0..sequential {
                timed(i, &mut latency[i]).await?;
                timed(0, &mut paired[i]).await?;
            }
        }
        for (i, request) in requests.iter().enumerate() {
            let burst = burst(request, burst_requests).await?;
            rps[i].push(burst.rps);
            cpu[i].push(burst.client_cpu_us);
        }
    }
    latency[0] = paired.concat();
    paired[0] = latency[0].clone();
    let base_rps = median(&rps[0]);
    let base_cpu = median(&cpu[0]);
    let rows: Vec<Value> = Layer::ALL
        .into_iter()
        .enumerate()
        .map(|(i, layer)| {
            json!({
                "layer": layer.name(),
                "latency_us": Summary::of(&latency[i]).to_json(),
                "latency_ratio": round(median(&latency[i]) / median(&paired[i])),
                "rps": Summary::of(&rps[i]).to_json(),
                "throughput_ratio": round(median(&rps[i]) / base_rps),
                "client_cpu_us": Summary::of(&cpu[i]).to_json(),
                "client_cpu_ratio": round(median(&cpu[i]) / base_cpu),
                "allocs_per_call": round(allocs[i] as f64 / latency[i].len().max(1) as f64),
            })
        })
        .collect();
    Ok(json!({
        "rounds": rounds,
        "sequential_per_round": sequential,
        "requests_per_burst": burst_requests,
        "layers": rows,
    }))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_breakdown_measures_every_layer_and_the_peer_on_one_cpu() {
        let config = Config {
            breakdown_rounds: 1,
            breakdown_sequential: 20,
            breakdown_requests: 64,
            ..Config::quick()
        };
        let v = pinned(&config).unwrap();
        let rows = v["layers"].as_array().unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r["layer"].as_str().unwrap()).collect();
        assert_eq!(names, Layer::ALL.map(Layer::name));
        assert!(names.last().unwrap().contains("peer"));
        // The baseline's calls are the ones paired with every other layer.
        let paired = 20 * (Layer::ALL.len() - 1);
        for (row, layer) in rows.iter().zip(Layer::ALL) {
            let n = if layer == Layer::Baseline { paired } else { 20 };
            assert_eq!(row["latency_us"]["n"], n, "{row}");
            // Present, not measured: the CPU a burst takes depends on the
            // machine's load (it once read 0.0 under load 4.3), and figures
            // belong to `cargo xtask bench`.
            for figure in ["client_cpu_us", "rps"] {
                assert_eq!(row[figure]["n"], 1, "{figure}: {row}");
            }
            // 0 here: unit tests run without the counting allocator.
            assert!(row["allocs_per_call"].as_f64().is_some(), "{row}");
        }
        let cpu = v["pinned_cpu"].as_u64().unwrap() as usize;
        let allowed = rustix::thread::sched_getaffinity(None).unwrap();
        assert!(
            allowed.is_set(cpu),
            "pinned to CPU {cpu}, outside this process's set"
        );
    }
}
