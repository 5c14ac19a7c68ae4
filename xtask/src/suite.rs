//! `cargo xtask test`: everything CI checks, in one command.

use std::process::Command;
use std::time::Instant;

use crate::{artefact, cargo, prism, redis, regen, run_step, try_it};

pub fn run() -> Result<(), String> {
    let started = Instant::now();
    run_step("format", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run_step(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            // Features users turn on (redis, test-util) and the fuzz
            // targets' `fuzzing` are linted too.
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    println!("\n== regen --check");
    regen::run(true, &[])?;
    // Applications build conduit-api-gen without `codegen`, on the
    // checked-in client; the workspace's other steps use build.rs output.
    run_step(
        "check the SDK on the checked-in client and mocks",
        cargo().args(["check", "-p", "conduit-sdk", "--features", "test-util"]),
    )?;
    // Both ways: a link can break with the features (an item they make
    // public) or without them (an item they add).
    for features in [&[][..], &["--all-features"]] {
        run_step(
            if features.is_empty() {
                "docs"
            } else {
                "docs, all features"
            },
            cargo()
                .args(["doc", "--workspace", "--no-deps"])
                .args(features)
                .env("RUSTDOCFLAGS", "-D warnings"),
        )?;
    }
    run_step("tests", cargo().args(["test", "--workspace"]))?;

    println!("\n== start Prism");
    let prism = prism::start(0, true)?;
    println!("Prism on {}", prism.url);
    run_step(
        "conformance (Prism)",
        conformance().env("CONDUIT_PRISM_URL", &prism.url),
    )?;
    drop(prism);
    run_step(
        "cargo xtask mock stops Prism when stopped",
        cargo().args(["test", "-p", "xtask", "--test", "mock", "--", "--ignored"]),
    )?;
    println!("\n== start redis-server");
    let redis = redis::start()?;
    println!("redis-server on {}", redis.url);
    run_step(
        "the gate shared through Redis",
        cargo()
            .args([
                "test",
                "-p",
                "conduit-sdk",
                "--test",
                "fleet",
                "--",
                "--ignored",
            ])
            .env("CONDUIT_REDIS_URL", &redis.url)
            .env("CONDUIT_REDIS_SERVER", &redis.binary),
    )?;
    drop(redis);
    println!("\n== the newcomer path (cargo xtask try), built into another target dir");
    try_moved()?;
    println!(
        "\nxtask test: all steps passed in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

/// `cargo xtask try` with `CARGO_TARGET_DIR` set, as CI caches and shared
/// machines set it: the example CLI must be found where cargo put it. The
/// directory lies inside the workspace's own and is kept, so only the
/// first run builds the example's dependencies a second time.
fn try_moved() -> Result<(), String> {
    let moved = artefact::target_dir()?.join("moved-target-dir");
    let cli = try_it::build_cli(cargo().env("CARGO_TARGET_DIR", &moved))?;
    if !cli.starts_with(&moved) {
        return Err(format!(
            "with CARGO_TARGET_DIR={} the example CLI was taken from {}",
            moved.display(),
            cli.display()
        ));
    }
    try_it::try_cli(&cli)
}

/// The `conformance` test targets, which are ignored unless run against Prism.
fn conformance() -> Command {
    let mut cmd = cargo();
    cmd.args([
        "test",
        "-p",
        "conduit-api-gen",
        "-p",
        "conduit-sdk",
        "--test",
        "conformance",
        "--",
        "--ignored",
    ]);
    cmd
}
