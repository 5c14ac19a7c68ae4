//! `cargo xtask bench [--quick] [--json]`: runs the `conduit-bench` binary in
//! release, times cold builds of a tiny app against the SDK and against bare
//! reqwest (full mode only), writes `BENCHMARKS.md` and, with `--json`,
//! prints one JSON object with the headline numbers as the last stdout line.

mod cold_build;
mod machine;
mod report;
mod run;

use std::time::Instant;

use crate::root;
use machine::{Machine, load_average};
use report::{Timing, headline, render, table};

/// The report file, at the workspace root.
const REPORT: &str = "BENCHMARKS.md";

/// `cargo xtask bench`'s options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Fewer rounds, and no cold build comparison
    #[arg(long)]
    quick: bool,
    /// Print the headline numbers as one JSON line instead of the table
    #[arg(long)]
    json: bool,
}

/// Runs `cargo xtask bench` with `options`.
pub fn run(options: &Options) -> Result<(), String> {
    let Options {
        quick,
        json: json_out,
    } = *options;
    let root = root();
    let started = Instant::now();
    let load_before = load_average();

    let measured = run::conduit_bench(&root, quick)?;

    let cold = if quick {
        None
    } else {
        eprintln!("== cold builds (fresh directories and target dirs, --offline)");
        Some(cold_build::cold_builds(&root))
    };
    let load_after = load_average();

    let summary = headline(&measured.json, cold.as_ref().and_then(|c| c.as_ref().ok()));
    let machine = Machine::probe(load_before, load_after);
    let timing = Timing {
        build_s: measured.build_s,
        run_s: measured.run_s,
        total_s: started.elapsed().as_secs_f64(),
    };
    let report = render(
        &measured.json,
        cold.as_ref(),
        &summary,
        &machine,
        &timing,
        quick,
    );
    let path = root.join(REPORT);
    std::fs::write(&path, report).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());

    if !json_out {
        println!("{}", table(&measured.json, cold.as_ref(), &summary));
    }
    if json_out {
        println!("{summary}");
    }
    match cold {
        Some(Err(e)) => Err(format!(
            "the cold build comparison failed (reported as null): {e}"
        )),
        _ => Ok(()),
    }
}
