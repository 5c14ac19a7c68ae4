//! Where cargo puts what it builds, asked of cargo: `CARGO_TARGET_DIR`,
//! `build.target-dir` in a config file and `--target` all move it, so no
//! path under a fixed `target/` is right everywhere.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::{cargo, children, root};

/// The workspace's target directory, from `cargo metadata`.
pub fn target_dir() -> Result<PathBuf, String> {
    target_dir_of(&mut cargo())
}

/// The target directory `cargo` (a cargo command, with its environment)
/// reports.
fn target_dir_of(cargo: &mut Command) -> Result<PathBuf, String> {
    let out = children::stdout_of(
        cargo
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(root()),
    )
    .map_err(|e| format!("cargo metadata: cannot start: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed ({})", out.status));
    }
    let metadata: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata gave no target_directory".to_owned())
}

/// Runs `build` (a `cargo build`; `step` names it in errors) with cargo's JSON messages, its progress and diagnostics
/// shown on stderr as usual, and returns the executable cargo reported
/// for the target named `name` of `kind` ("bin", "example").
pub fn build(step: &str, build: &mut Command, kind: &str, name: &str) -> Result<PathBuf, String> {
    let out = children::stdout_of(build.arg("--message-format=json-render-diagnostics"))
        .map_err(|e| format!("{step}: cannot start: {e}"))?;
    if !out.status.success() {
        return Err(format!("{step} failed ({})", out.status));
    }
    executable(&String::from_utf8_lossy(&out.stdout), kind, name)
        .ok_or_else(|| format!("{step}: cargo reported no executable for the {kind} {name}"))
}

/// The executable of the `kind` target `name` in cargo's JSON messages.
fn executable(messages: &str, kind: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == kind))
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages as `cargo build --example conduit` prints them with the
    /// target directory moved; the library comes first and has no
    /// executable.
    const MESSAGES: &str = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"conduit_sdk"},"executable":null}
not json: a line cargo's JSON format never prints, skipped
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"conduit"},"executable":"/elsewhere/debug/conduit"}
{"reason":"compiler-artifact","target":{"kind":["example"],"name":"conduit"},"executable":"/ci-cache/x86_64-unknown-linux-gnu/debug/examples/conduit"}
{"reason":"build-finished","success":true}"#;

    #[test]
    fn the_executable_is_the_one_cargo_reports_for_that_kind_and_name() {
        assert_eq!(
            executable(MESSAGES, "example", "conduit"),
            Some(PathBuf::from(
                "/ci-cache/x86_64-unknown-linux-gnu/debug/examples/conduit"
            ))
        );
        assert_eq!(
            executable(MESSAGES, "bin", "conduit"),
            Some(PathBuf::from("/elsewhere/debug/conduit"))
        );
        assert_eq!(executable(MESSAGES, "lib", "conduit_sdk"), None);
        assert_eq!(executable(MESSAGES, "example", "other"), None);
    }

    #[test]
    fn the_target_dir_follows_cargo_target_dir() {
        let dir = tempfile::tempdir().unwrap();
        let found = target_dir_of(cargo().env("CARGO_TARGET_DIR", dir.path())).unwrap();
        assert_eq!(found, dir.path());
        assert_ne!(found, root().join("target"));
    }
}
