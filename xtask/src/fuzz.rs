//! `cargo xtask fuzz [--seconds N] [--cases N]`: every fuzz target, each
//! under a time bound.
//!
//! - The libFuzzer targets in `fuzz/` (cargo-fuzz, on the nightly toolchain):
//!   whole HTTP responses through the SDK, `Retry-After` parsing, and spec
//!   loading and generation. Each runs for `--seconds`; cargo-fuzz is
//!   installed first if it is missing.
//! - The property tests (`conduit-sdk` and `conduit-codegen`,
//!   `tests/fuzz.rs`, and `conduit-sdk`'s `retry::proptests` unit tests, as
//!   the parser is private), built in release mode and run with `--cases`
//!   cases, killed and failed after `--seconds`. They also run, with few cases, in
//!   `cargo xtask test`, which has no nightly toolchain to rely on.
//!
//! A crash, a failed property or a target still running when its time is up
//! fails the command.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::children::{self, Running};
use crate::{cargo, root, run_step};

/// The cargo-fuzz targets in `fuzz/fuzz_targets`.
const LIBFUZZER_TARGETS: [&str; 3] = ["response", "retry_after", "spec_source"];

/// The packages whose `fuzz` test target is run.
const PACKAGES: [&str; 2] = ["conduit-sdk", "conduit-codegen"];

/// `cargo xtask fuzz`'s options.
#[derive(Debug, PartialEq, clap::Args)]
pub struct Options {
    /// Seconds per libFuzzer target; also the limit for each property target
    #[arg(long, value_name = "N", default_value_t = 60, value_parser = positive::<u64>)]
    seconds: u64,
    /// Cases per property test
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = positive::<u32>)]
    cases: u32,
}

/// Unit tests that are property tests, by package: run with a name filter
/// from the package's library test binary.
const UNIT_PROPERTIES: [(&str, &str); 1] = [("conduit-sdk", "retry::proptests")];

/// A built test binary with property tests.
struct Target {
    package: String,
    executable: PathBuf,
    /// The package directory, which `cargo test` would run it in.
    dir: PathBuf,
    /// The test name filter, for a library's unit tests.
    filter: Option<&'static str>,
}

pub fn run(options: &Options) -> Result<(), String> {
    let started = Instant::now();
    run_libfuzzer(options)?;
    run_step(
        "build the fuzz targets (release)",
        &mut build_command(false),
    )?;
    let targets = built_targets()?;
    for target in &targets {
        run_target(target, options)?;
    }
    println!(
        "\nxtask fuzz: {} libFuzzer targets ran {} s each without a crash; \
         {} property targets passed, {} cases per property, in {:.0?}",
        LIBFUZZER_TARGETS.len(),
        options.seconds,
        targets.len(),
        options.cases,
        started.elapsed()
    );
    Ok(())
}

/// Runs each cargo-fuzz target for `options.seconds`, installing cargo-fuzz
/// if needed. libFuzzer needs the nightly toolchain.
fn run_libfuzzer(options: &Options) -> Result<(), String> {
    let nightly = |args: &[&str]| {
        let mut cmd = Command::new("rustup");
        cmd.args(["run", "nightly", "cargo"]).args(args);
        cmd.env_remove("CARGO").env_remove("RUSTUP_TOOLCHAIN");
        cmd
    };
    let has_nightly = children::status(
        nightly(&["--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .is_ok_and(|s| s.success());
    if !has_nightly {
        return Err(
            "the libFuzzer targets need a nightly toolchain (rustup toolchain list)".into(),
        );
    }
    let has_cargo_fuzz = children::status(
        nightly(&["fuzz", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .is_ok_and(|s| s.success());
    if !has_cargo_fuzz {
        run_step(
            "install cargo-fuzz",
            cargo().args(["install", "cargo-fuzz", "--locked"]),
        )?;
    }
    for target in LIBFUZZER_TARGETS {
        let time = format!("-max_total_time={}", options.seconds);
        run_step(
            &format!("cargo fuzz run {target} ({} s)", options.seconds),
            &mut nightly(&["fuzz", "run", "--fuzz-dir", "fuzz", target, "--", &time]),
        )?;
    }
    Ok(())
}

/// Parses a whole number above zero that fits in `T`.
fn positive<T: TryFrom<u64>>(value: &str) -> Result<T, String> {
    let n: u64 = value
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "expects a positive whole number".to_owned())?;
    T::try_from(n).map_err(|_| format!("{n} is too large"))
}

/// `cargo test --release --no-run` of the `fuzz` targets and of the
/// libraries with property unit tests.
fn build_command(json: bool) -> Command {
    let mut cmd = cargo();
    cmd.args(["test", "--release", "--no-run", "--test", "fuzz", "--lib"]);
    for package in PACKAGES {
        cmd.args(["-p", package]);
    }
    if json {
        cmd.arg("--message-format=json");
    }
    cmd.current_dir(root());
    cmd
}

/// The executables of the `fuzz` targets, from cargo's JSON messages (the
/// build is already done, so this only reports it).
fn built_targets() -> Result<Vec<Target>, String> {
    let out = children::stdout_of(&mut build_command(true))
        .map_err(|e| format!("cargo: cannot start: {e}"))?;
    if !out.status.success() {
        return Err(format!("listing the fuzz targets failed ({})", out.status));
    }
    let mut targets = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let is_test =
            message["reason"] == "compiler-artifact" && message["profile"]["test"] == true;
        let is_lib = message["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "lib"));
        let is_fuzz_test = is_test && (message["target"]["name"] == "fuzz" || is_lib);
        let (Some(executable), Some(manifest)) = (
            message["executable"].as_str(),
            message["manifest_path"].as_str(),
        ) else {
            continue;
        };
        if !is_fuzz_test {
            continue;
        }
        let dir = PathBuf::from(manifest)
            .parent()
            .map(PathBuf::from)
            .ok_or_else(|| format!("cargo reported a manifest without a folder: {manifest}"))?;
        let package = dir
            .file_name()
            .map_or_else(|| manifest.to_owned(), |n| n.to_string_lossy().into_owned());
        let filter = if is_lib {
            match UNIT_PROPERTIES.iter().find(|(p, _)| *p == package) {
                Some((_, filter)) => Some(*filter),
                None => continue,
            }
        } else {
            None
        };
        targets.push(Target {
            package,
            executable: PathBuf::from(executable),
            dir,
            filter,
        });
    }
    targets.sort_by_key(|t| (PACKAGES.iter().position(|p| *p == t.package), t.filter));
    if targets.len() != PACKAGES.len() + UNIT_PROPERTIES.len() {
        return Err(format!(
            "expected a fuzz test target in each of {PACKAGES:?}, cargo built {}",
            targets.len()
        ));
    }
    Ok(targets)
}

/// Runs one target with the case count set, killing it at the time bound.
fn run_target(target: &Target, options: &Options) -> Result<(), String> {
    let name = format!(
        "fuzz {}{} ({} cases per property)",
        target.package,
        target.filter.map_or(String::new(), |f| format!(" {f}")),
        options.cases
    );
    println!("\n== {name}");
    let limit = Duration::from_secs(options.seconds);
    let started = Instant::now();
    let mut child = Running::spawn(
        Command::new(&target.executable)
            .args(target.filter)
            .current_dir(&target.dir)
            .env("CONDUIT_FUZZ_CASES", options.cases.to_string())
            .stdin(Stdio::null()),
    )
    .map_err(|e| format!("{name}: cannot start {}: {e}", target.executable.display()))?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                println!("{name}: passed in {:.1?}", started.elapsed());
                return Ok(());
            }
            Ok(Some(status)) => return Err(format!("{name} failed ({status})")),
            Ok(None) if started.elapsed() >= limit => {
                drop(child);
                return Err(format!(
                    "{name} did not finish within {} s and was stopped; \
                     lower --cases or raise --seconds",
                    options.seconds
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            // Dropping `child` stops it.
            Err(e) => return Err(format!("{name}: cannot wait for it: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: Options,
    }

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Cli::try_parse_from(std::iter::once("fuzz").chain(args.iter().copied())).map(|c| c.options)
    }

    #[test]
    fn options_have_defaults_and_both_spellings() {
        assert_eq!(
            parse(&[]).unwrap(),
            Options {
                seconds: 60,
                cases: 10_000
            }
        );
        assert_eq!(
            parse(&["--seconds", "5", "--cases=10"]).unwrap(),
            Options {
                seconds: 5,
                cases: 10
            }
        );
    }

    #[test]
    fn bad_options_are_refused() {
        for bad in [
            &["--seconds"][..],
            &["--seconds", "0"],
            &["--seconds", "x"],
            &["--cases", "-1"],
            &["--cases", "99999999999"],
            &["--frobnicate"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
