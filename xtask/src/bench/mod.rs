//! `cargo xtask bench [--quick] [--json]`: runs the `conduit-bench` binary in
//! release, times cold builds of a tiny app against the SDK and against bare
//! reqwest (full mode only), writes `BENCHMARKS.md` (full mode only) and, with
//! `--json`, prints one JSON object with the headline numbers as the last
//! stdout line.

mod cold_build;
mod machine;
mod report;
mod run;

use std::path::Path;
use std::time::Instant;

use crate::root;
use machine::{Machine, load_average};
use report::{Timing, headline, render, table};

/// The report file, at the workspace root.
const REPORT: &str = "BENCHMARKS.md";

/// `cargo xtask bench`'s options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Fewer rounds and no cold builds; prints the results, never writes BENCHMARKS.md
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
    let timing = Timing {
        build_s: measured.build_s,
        run_s: measured.run_s,
        total_s: started.elapsed().as_secs_f64(),
    };
    let path = root.join(REPORT);
    let wrote = write_report(&path, quick, || {
        let machine = Machine::probe(load_before, load_after);
        render(&measured.json, cold.as_ref(), &summary, &machine, &timing)
    })?;
    if wrote {
        eprintln!("wrote {}", path.display());
    } else {
        eprintln!("left {REPORT} as it is: only a full run writes it");
    }

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

/// Writes the report that `render` makes to `path`, unless the run was
/// quick: BENCHMARKS.md holds the last full run, which a quick run's coarser
/// numbers, without the cold builds, must not replace. Returns whether it
/// wrote.
fn write_report(path: &Path, quick: bool, render: impl FnOnce() -> String) -> Result<bool, String> {
    if quick {
        return Ok(false);
    }
    std::fs::write(path, render()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quick_run_never_writes_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REPORT);
        std::fs::write(&path, "the last full run").unwrap();

        let quick = write_report(&path, true, || {
            unreachable!("a quick run renders no report")
        });
        assert_eq!(quick, Ok(false));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "the last full run");

        assert_eq!(
            write_report(&path, false, || "a new full run".into()),
            Ok(true)
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a new full run");
    }
}
