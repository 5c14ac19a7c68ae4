//! Where the SDK's overhead over the baseline goes: the same request through
//! each layer the SDK adds, one at a time, measured like the main comparison.
//! Not part of the goals; it points at what to optimise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conduit_sdk::raw;
use serde_json::{Map, Value, json};

use crate::baseline;
use crate::measure::{Clients, PARAMETER, Request, TOKEN, TOOL_ID, burst};
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
    /// SDK's middleware (auth, path check, retry loop, tracing span).
    SdkRaw,
    /// `sdk.call(|raw| ...)`: plus the task-local call state and error mapping.
    SdkCall,
    /// `sdk.custom_tools().run(..).parameter(..).send()`.
    Sdk,
}

impl Layer {
    /// Every layer, in the order above.
    pub const ALL: [Layer; 7] = [
        Layer::Baseline,
        Layer::BaselineTimeouts,
        Layer::Generated,
        Layer::GeneratedTimeouts,
        Layer::SdkRaw,
        Layer::SdkCall,
        Layer::Sdk,
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
                raw::Hooks::default(),
            ),
            generated_timeouts: raw::Client::new_with_client(
                base,
                timeouts()?,
                raw::Hooks::default(),
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

/// Sequential latency and throughput of every layer.
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
    let micros = |start: Instant| start.elapsed().as_secs_f64() * 1e6;
    for _ in 0..rounds {
        for (i, layer) in Layer::ALL.into_iter().enumerate().skip(1) {
            for _ in 0..sequential {
                let start = Instant::now();
                layers.run(layer).await?;
                latency[i].push(micros(start));
                let start = Instant::now();
                layers.run(Layer::Baseline).await?;
                paired[i].push(micros(start));
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
