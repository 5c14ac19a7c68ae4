//! Maintainers' commands. Run `cargo xtask help`.

mod bench;
mod fuzz;
mod prism;
mod regen;
mod suite;
mod surface_diff;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  regen [--check] [SOURCE...]  merge SOURCEs (OpenAPI YAML/JSON or reference pages) into
                               openapi/conduit.yaml, regenerate, build, update SURFACE.md;
                               --check fails if either file would change
  test                         the whole suite: fmt, clippy, regen --check, docs, tests,
                               Prism conformance
  mock [--port N]              serve the vendored spec with the pinned Prism on 127.0.0.1:4010
  fuzz [--seconds N] [--cases N]
                               libFuzzer targets (cargo fuzz, nightly) and property tests of
                               response decoding, error mapping, Retry-After parsing and spec
                               loading, each bounded in time
  bench [--quick] [--json]     measure the SDK against plain reqwest and time codegen; writes
                               BENCHMARKS.md; --json prints the headline numbers last
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((cmd, rest)) => (cmd.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match cmd {
        "regen" => regen::run(rest),
        "test" => suite::run(rest),
        "mock" => prism::mock(rest),
        "fuzz" => fuzz::run(rest),
        "bench" => bench::run(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// Runs a command in the workspace root, failing with its name.
fn run_step(name: &str, cmd: &mut Command) -> Result<(), String> {
    println!("\n== {name}");
    let status = cmd
        .current_dir(root())
        .status()
        .map_err(|e| format!("{name}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}
