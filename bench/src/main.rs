//! `conduit-bench [--quick]`: runs the measurements and prints them as one
//! JSON object on the last line of stdout. Progress goes to stderr.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use conduit_bench::measure::{self, Clients, Config};
use conduit_bench::server::Server;
use serde_json::json;

const USAGE: &str = "usage: conduit-bench [--quick]";

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
    for arg in args {
        match arg.as_str() {
            "--quick" => config = Config::quick(),
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
        "limits": limits,
        "fleet": fleet,
        "recovery": recovery,
        "elapsed_s": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    }))
}
