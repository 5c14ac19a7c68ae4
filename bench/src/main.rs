//! `conduit-bench [--quick]`: runs the measurements and prints them as one
//! JSON object on the last line of stdout. Progress goes to stderr.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use conduit_bench::overhead::Clients;
use conduit_bench::server::Server;
use conduit_bench::{Config, codegen, fleet, goodput, memory, overhead, recovery};
use serde_json::json;

const USAGE: &str = "usage: conduit-bench [--quick]";

#[global_allocator]
static ALLOCATOR: conduit_bench::allocs::Counting = conduit_bench::allocs::Counting;

fn main() -> ExitCode {
    let mut config = Config::full();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // One process of a fleet, started by the parent.
    if args.first().is_some_and(|a| a == "--fleet-worker") {
        return match fleet::worker(&args[1..]) {
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
    let server = Arc::new(Server::start().map_err(|e| format!("server: {e}"))?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let phases = {
        let (config, server) = (config.clone(), server.clone());
        async move {
            let base = server.url();
            let steady = goodput::steady(&server, config.steady_calls).await?;
            let bucket = goodput::bucket(&server, config.steady_calls).await?;
            let recovery = recovery::recovery().await?;
            let fleet = fleet::fleet(&server, config.fleet_calls).await?;
            eprintln!("conduit-bench: memory over a long run and per workspace");
            let memory = memory::memory(&base, &config).await?;
            let clients = Arc::new(Clients::new(&base)?);
            let overhead = overhead::overhead(&clients, &config).await?;
            Ok::<_, String>(json!({
                "steady": steady,
                "bucket": bucket,
                "recovery": recovery,
                "fleet": fleet,
                "memory": memory,
                "overhead": overhead,
            }))
        }
    };
    // Spawned, so the measured futures are polled on the runtime's workers
    // like an application's tasks, not on this thread.
    let mut report = runtime
        .block_on(runtime.spawn(phases))
        .map_err(|e| format!("measurement task: {e}"))??;
    drop(runtime);
    drop(server);

    eprintln!("conduit-bench: code generation");
    let spec = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(conduit_codegen::VENDORED_SPEC);
    report["codegen"] = codegen::codegen(&spec, config)?;
    report["mode"] = json!(config.mode);
    report["elapsed_s"] = json!((started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
    report["threads"] = json!(std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(report)
}
