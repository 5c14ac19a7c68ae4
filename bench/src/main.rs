//! `conduit-bench [--quick]`: runs the measurements and prints them as one
//! JSON object on the last line of stdout. Progress goes to stderr.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use conduit_bench::breakdown;
use conduit_bench::measure::{self, Clients, Config, Which};
use conduit_bench::server::Server;
use serde_json::json;

const USAGE: &str = "usage: conduit-bench [--quick] [--allocs-only | --load-only | --latency-only | --throughput-only | --breakdown-only | --limits-only | --recovery-only]\n       CONDUIT_BENCH_ONLY=<client> conduit-bench --calls-only <N>";

#[global_allocator]
static ALLOCATOR: conduit_bench::allocs::Counting = conduit_bench::allocs::Counting;

fn main() -> ExitCode {
    let mut config = Config::full();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // One process of the fleet measurement, started by the parent.
    if let [flag, base, store] = args.as_slice()
        && flag == "--fleet-worker"
    {
        return match conduit_bench::fleet::worker(base, store) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("conduit-bench fleet worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // N calls of one client and nothing else, for a profiler.
    if let [flag, calls] = args.as_slice()
        && flag == "--calls-only"
    {
        return calls_only(calls);
    }
    for arg in args {
        match arg.as_str() {
            "--quick" => config = Config::quick(),
            // Maintainers' shortcut while tuning the gate: the rate-limit
            // and fleet runs alone.
            "--limits-only" => return limits_only(),
            // And the recovery scenarios alone, each on its own server.
            "--recovery-only" => return recovery_only(),
            // And while trimming per-call work: allocations alone.
            "--allocs-only" => return allocs_only(),
            // And throughput alone (all four clients), for A/B runs.
            "--throughput-only" => return throughput_only(config),
            // And allocations and CPU under load (with CONDUIT_BENCH_ONLY,
            // one client at 64 in flight for a profiler).
            "--load-only" => return load_only(config),
            // And the sequential latencies alone (all four clients, or with
            // CONDUIT_BENCH_ONLY one client, its calls not interleaved).
            "--latency-only" => return latency_only(config),
            // And the overhead by layer alone.
            "--breakdown-only" => return breakdown_only(config),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("conduit-bench: unknown argument {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match run(&config) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("conduit-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Only the allocations per call, printed as JSON.
fn allocs_only() -> ExitCode {
    print_json(|server| async move {
        let clients = Clients::new(&server.url())?;
        measure::allocations(&clients, 2_000).await
    })
}

/// Only `calls` calls of the client `CONDUIT_BENCH_ONLY` names, after a
/// warm-up, printed as JSON.
fn calls_only(calls: &str) -> ExitCode {
    let calls = match calls.parse::<usize>() {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!(
                "conduit-bench: --calls-only takes a number of calls, not {calls:?}\n{USAGE}"
            );
            return ExitCode::from(2);
        }
    };
    let Some(which) = measure::only().as_deref().and_then(Which::named) else {
        eprintln!(
            "conduit-bench: --calls-only needs CONDUIT_BENCH_ONLY=sdk, peer, floor or baseline"
        );
        return ExitCode::from(2);
    };
    print_json(move |server| async move {
        let clients = Clients::new(&server.url())?;
        measure::calls_alone(&clients, which, calls).await
    })
}

/// Only the sequential latencies, printed as JSON: the four clients
/// alternated, or the one `CONDUIT_BENCH_ONLY` names, alone.
fn latency_only(config: Config) -> ExitCode {
    let only = measure::only();
    print_json(|server| async move {
        let clients = Clients::new(&server.url())?;
        match only {
            Some(name) => {
                let which = Which::named(&name).ok_or_else(|| {
                    format!("CONDUIT_BENCH_ONLY={name}: not one of sdk, peer, floor, baseline")
                })?;
                measure::latency_alone(&clients, &config, which).await
            }
            None => measure::latency(&clients, &config).await,
        }
    })
}

/// Only allocations and CPU per request at 64 in flight, printed as JSON.
fn load_only(config: Config) -> ExitCode {
    print_json(|server| async move {
        let clients = Arc::new(Clients::new(&server.url())?);
        let (requests, bursts) = (config.throughput_requests, config.throughput_rounds);
        measure::under_load(&clients, requests, bursts).await
    })
}

/// Only the throughput comparison, printed as JSON.
fn throughput_only(config: Config) -> ExitCode {
    print_json(|server| async move {
        let clients = Arc::new(Clients::new(&server.url())?);
        measure::throughput(&clients, &config).await
    })
}

/// Only the overhead by layer, on one pinned CPU, printed as JSON.
fn breakdown_only(config: Config) -> ExitCode {
    printed(breakdown::pinned(&config))
}

/// Only the rate-limit runs, printed as JSON.
fn limits_only() -> ExitCode {
    print_json(|server| async move {
        let base = server.url();
        let limits = conduit_bench::limits::limits(&base, &server).await?;
        let fleet = conduit_bench::fleet::fleet(&base, &server).await?;
        Ok(serde_json::json!({ "limits": limits, "fleet": fleet }))
    })
}

/// Only the recovery scenarios, printed as JSON.
fn recovery_only() -> ExitCode {
    // Each scenario starts its own server: the one given here stays idle.
    print_json(|_server| conduit_bench::recovery::recovery())
}

/// Runs `phase` against a fresh loopback server on a multi-threaded
/// runtime and prints what it returns as JSON.
fn print_json<F, Fut>(phase: F) -> ExitCode
where
    F: FnOnce(Arc<Server>) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, String>> + Send + 'static,
{
    printed(measure::on_fresh_server(phase))
}

/// Prints a measurement as JSON, or why it failed.
fn printed(result: Result<serde_json::Value, String>) -> ExitCode {
    match result {
        Ok(v) => {
            println!("{v:#}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("conduit-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: &Config) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    let server = Server::start().map_err(|e| format!("server: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let base = server.url();
    let server = Arc::new(server);
    let phases = {
        let config = config.clone();
        let server = server.clone();
        async move {
            let phase = |name: &str| eprintln!("conduit-bench: {name}");
            phase("memory growth over sequential SDK calls");
            let rss = measure::rss_growth(&base, &config).await?;
            let clients = Arc::new(Clients::new(&base)?);
            phase("sequential latency, SDK and baseline alternated");
            let latency = measure::latency(&clients, &config).await?;
            phase("allocations per call");
            let allocs = measure::allocations(&clients, config.alloc_calls).await?;
            phase("throughput at 64 in flight");
            let throughput = measure::throughput(&clients, &config).await?;
            phase("Retry-After punctuality");
            let retry = measure::retry_after(&clients, &server, &config).await?;
            phase("rate limits under overload: explicit, adaptive, disabled");
            let limits = conduit_bench::limits::limits(&base, &server).await?;
            phase("a fleet of two processes, with and without Redis");
            let fleet = conduit_bench::fleet::fleet(&base, &server).await?;
            phase("recovery after 429s: storm, limit lifted, always 429");
            let recovery = conduit_bench::recovery::recovery().await?;
            Ok::<_, String>((
                rss, latency, allocs, throughput, retry, limits, fleet, recovery,
            ))
        }
    };
    // Spawned, so the measured futures are polled on the runtime's workers
    // like an application's tasks, not on this thread.
    let (rss, latency, allocs, throughput, retry, limits, fleet, recovery) = runtime
        .block_on(runtime.spawn(phases))
        .map_err(|e| format!("measurement task: {e}"))??;
    drop(runtime);
    drop(server);

    // On its own pinned thread, server and runtime: after the others, which
    // use both cores.
    eprintln!("conduit-bench: overhead by layer, on one pinned CPU");
    let breakdown = breakdown::pinned(config)?;

    eprintln!("conduit-bench: code generation");
    let spec = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(conduit_codegen::VENDORED_SPEC);
    let codegen = measure::codegen(&spec, config)?;

    Ok(json!({
        "mode": config.mode,
        "latency": latency,
        "allocs": allocs,
        "throughput": throughput,
        "retry_after": retry,
        "rss": rss,
        "codegen": codegen,
        "breakdown": breakdown,
        "limits": limits,
        "fleet": fleet,
        "recovery": recovery,
        "elapsed_s": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    }))
}
