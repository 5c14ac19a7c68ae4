//! Benchmarks of the Conduit SDK, run by `cargo xtask bench`.
//!
//! The `conduit-bench` binary measures what a user of the SDK feels: how
//! fast a job of many calls finishes under a rate limit, and whether it
//! fails, for the SDK beside reqwest-retry and naive reqwest
//! ([`goodput`], [`recovery`], [`fleet`], on [`scenario`]'s machinery,
//! against the loopback [`server`]); then the SDK's overhead per call
//! against the same request by hand ([`overhead`], [`baseline`]), its
//! memory ([`memory`]) and code generation time ([`codegen`]). It prints
//! one JSON object; the xtask turns it into `BENCHMARKS.md`.

pub mod allocs;
pub mod baseline;
pub mod codegen;
pub mod fleet;
pub mod goodput;
pub mod memory;
pub mod overhead;
pub mod recovery;
pub mod scenario;
pub mod server;
pub mod stats;

/// How much of each measurement to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `quick` or `full`, for the report.
    pub mode: &'static str,
    /// Calls in the steady-limit scenario, per client.
    pub steady_calls: usize,
    /// Calls per process in the fleets.
    pub fleet_calls: usize,
    /// Untimed rounds of every client before the latency samples.
    pub latency_warmup: usize,
    /// Timed sequential calls per client.
    pub latency_calls: usize,
    /// Requests per round when client CPU is measured.
    pub load_requests: usize,
    /// Rounds per client when client CPU is measured.
    pub load_rounds: usize,
    /// Sequential calls per client counted for allocations.
    pub alloc_calls: usize,
    /// Calls between the two memory readings of the long run.
    pub rss_calls: usize,
    /// Distinct workspaces called for the memory each keeps.
    pub workspaces: usize,
    /// Runs of code generation on the vendored spec (half as many at 500
    /// operations).
    pub codegen_runs: usize,
}

impl Config {
    /// Every measurement, smaller: a few minutes on two cores.
    pub fn quick() -> Self {
        Self {
            mode: "quick",
            steady_calls: 200,
            fleet_calls: 40,
            latency_warmup: 500,
            latency_calls: 5_000,
            load_requests: 2_000,
            load_rounds: 9,
            alloc_calls: 1_000,
            rss_calls: 10_000,
            workspaces: 2_000,
            codegen_runs: 2,
        }
    }

    /// The full run.
    pub fn full() -> Self {
        Self {
            mode: "full",
            steady_calls: 400,
            fleet_calls: 100,
            latency_warmup: 2_000,
            latency_calls: 30_000,
            load_requests: 5_000,
            load_rounds: 30,
            alloc_calls: 5_000,
            rss_calls: 50_000,
            workspaces: 10_000,
            codegen_runs: 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::baseline::{self, PARAMETER, RunData, TOKEN, TOOL_ID};
    use crate::overhead::Clients;
    use crate::server::Server;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sdk_and_floor_send_the_same_request_and_decode_the_same_body() {
        let server = Server::start().unwrap();
        let clients = Clients::new(&server.url()).unwrap();
        server.set_recording(true);
        let sdk = clients.sdk_run().await.unwrap();
        let floor = baseline::run_tool(&clients.floor, &clients.base)
            .await
            .unwrap();
        let seen = server.recorded_at_least(2).await;

        let from_sdk = RunData {
            success: sdk.success(),
            message: sdk.message().map(str::to_owned),
            result: sdk.result().clone(),
            error: sdk.error().map(str::to_owned),
            logs: sdk.logs().map(str::to_owned),
            run_time_ms: sdk.run_time_ms(),
        };
        assert_eq!(from_sdk, floor);
        assert!(floor.success);
        assert_eq!(floor.result["rawData"]["status"], "shipped");

        assert_eq!(seen.len(), 2);
        let path = format!("/v1/custom-tools/{TOOL_ID}/run");
        let body = serde_json::json!({ "parameters": { PARAMETER.0: PARAMETER.1 } });
        for request in &seen {
            assert_eq!(request.status, 200);
            assert_eq!(request.method, "POST");
            assert_eq!(request.path, path);
            assert_eq!(
                request.authorization.as_deref(),
                Some(format!("Bearer {TOKEN}").as_str())
            );
            assert_eq!(request.content_type.as_deref(), Some("application/json"));
            let sent: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(sent, body);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn naive_reqwest_waits_out_retry_after_then_succeeds_or_gives_up() {
        use std::time::{Duration, Instant};
        let server = Server::start().unwrap();
        let client = baseline::with_timeouts().unwrap();
        let base = server.url();
        // 429 `Retry-After: 1` for the first 300 ms: one wait, then a 200.
        server.refuse_all(1, Some(Duration::from_millis(300)));
        let started = Instant::now();
        let run = baseline::run_tool_naive(&client, &base, Duration::from_secs(5)).await;
        assert!(run.unwrap().success);
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(server.counts(), (2, 1));
        // Refused for good, with no budget for a wait: one request, a 429.
        server.refuse_all(1, None);
        let run = baseline::run_tool_naive(&client, &base, Duration::ZERO).await;
        assert_eq!(run.unwrap_err(), Some(429));
        assert_eq!(server.counts(), (1, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_workspace_list_is_answered_with_an_empty_page() {
        let server = Server::start().unwrap();
        let clients = Clients::new(&server.url()).unwrap();
        let page = clients
            .sdk
            .agents()
            .list()
            .workspace_id("ws_1")
            .send()
            .await
            .unwrap();
        assert!(page.items.is_empty() && !page.has_more);
    }
}
