//! Building and running the `conduit-bench` binary, and collecting the JSON
//! it prints.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::{artefact, cargo, children};

/// What `conduit-bench` measured, and how long it took.
pub(super) struct Measured {
    /// Its JSON object, the last line it printed.
    pub(super) json: Value,
    /// Seconds spent building it in release.
    pub(super) build_s: f64,
    /// Seconds spent running it.
    pub(super) run_s: f64,
}

/// Builds `conduit-bench` in release under `root`, runs it (with `--quick`
/// if `quick`) and parses its output.
pub(super) fn conduit_bench(root: &Path, quick: bool) -> Result<Measured, String> {
    let build_started = Instant::now();
    build(root)?;
    let build_s = build_started.elapsed().as_secs_f64();

    eprintln!(
        "== run conduit-bench{}",
        if quick { " --quick" } else { "" }
    );
    let run_started = Instant::now();
    let args: &[&str] = if quick { &["--quick"] } else { &[] };
    let stdout = run(root, args)?;
    let json = last_json_line(&stdout).map_err(|e| format!("{e}; its output was:\n{stdout}"))?;
    let run_s = run_started.elapsed().as_secs_f64();
    Ok(Measured {
        json,
        build_s,
        run_s,
    })
}

fn build(root: &Path) -> Result<PathBuf, String> {
    eprintln!("== build conduit-bench (release)");
    artefact::build(
        "building conduit-bench",
        cargo()
            .args(["build", "--release", "-p", "conduit-bench"])
            .current_dir(root),
        "bin",
        "conduit-bench",
    )
}

/// Runs the built `conduit-bench` with `args`; its stdout.
fn run(root: &Path, args: &[&str]) -> Result<String, String> {
    let output = children::stdout_of(
        cargo()
            .args(["run", "--quiet", "--release", "-p", "conduit-bench", "--"])
            .args(args)
            .current_dir(root),
    )
    .map_err(|e| format!("cargo run -p conduit-bench: {e}"))?;
    if !output.status.success() {
        return Err(format!("conduit-bench failed ({})", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The last non-blank line of `stdout`, parsed as JSON.
fn last_json_line(stdout: &str) -> Result<Value, &'static str> {
    stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or("conduit-bench printed nothing")
        .and_then(|l| serde_json::from_str(l).map_err(|_| "conduit-bench's last line is not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_non_blank_line_is_the_json() {
        let out = "progress\n{\"latency\":{\"ratio\":1.01}}\n\n";
        assert_eq!(last_json_line(out).unwrap()["latency"]["ratio"], 1.01);
        assert!(last_json_line("").is_err());
        assert!(last_json_line("{}\ndone\n").is_err());
    }
}
