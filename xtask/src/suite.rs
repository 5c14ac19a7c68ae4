//! `cargo xtask test`: everything CI checks, in one command.

use std::path::{Path, PathBuf};
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
    // The docs of the last build, with every feature, as docs.rs builds
    // them (docs.rs adds nightly's feature badges).
    unresolved_links(&artefact::target_dir()?.join("doc"))?;
    run_step("tests", cargo().args(["test", "--workspace"]))?;

    println!("\n== start Prism");
    let prism = prism::start(0, true)?;
    println!("Prism on {}", prism.url);
    run_step(
        "conformance (Prism)",
        conformance().env("CONDUIT_PRISM_URL", &prism.url),
    )?;
    run_step(
        "every CLI action (Prism)",
        cargo()
            .args([
                "test",
                "-p",
                "conduit-cli",
                "--test",
                "every_action",
                "--",
                "--ignored",
                // Shows the count of actions run.
                "--nocapture",
            ])
            .env("CONDUIT_PRISM_URL", &prism.url),
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
    run_step(
        "two CLI processes sharing one limit through Redis",
        cargo()
            .args([
                "test",
                "-p",
                "conduit-cli",
                "--test",
                "fleet",
                "--",
                "--ignored",
            ])
            .env("CONDUIT_REDIS_URL", &redis.url),
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

/// Fails on links rustdoc left as written, without a warning, because the
/// item they name is in a crate whose docs `--no-deps` does not build (as
/// httpmock's, from `test_util`): `[text](path)` becomes `href="path"` and
/// `[`path`]` is printed with its brackets. Only the docs written here are
/// read: pages with a source link into this workspace, up to the blanket
/// implementations, whose docs are upstream's.
fn unresolved_links(doc: &Path) -> Result<(), String> {
    let mut found = Vec::new();
    for krate in ["conduit_sdk", "conduit_api_gen"] {
        html_files(&doc.join(krate), &mut found)?;
    }
    if found.is_empty() {
        return Err(format!("no docs found under {}", doc.display()));
    }
    let broken: Vec<String> = found
        .iter()
        .filter_map(|file| {
            let html = std::fs::read_to_string(file).ok()?;
            if !html.contains("/src/conduit_") {
                return None;
            }
            let ours = html.split("id=\"blanket-implementations\"").next()?;
            let mut bad = broken_hrefs(ours);
            bad.extend(bracketed_paths(ours));
            (!bad.is_empty()).then(|| format!("{}: {}", file.display(), bad.join(", ")))
        })
        .collect();
    if broken.is_empty() {
        println!("docs: no unresolved links in {} pages", found.len());
        Ok(())
    } else {
        Err(format!("unresolved doc links:\n{}", broken.join("\n")))
    }
}

/// The `href`s in `html` that are Rust paths rustdoc did not resolve.
fn broken_hrefs(html: &str) -> Vec<&str> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with("::") || href.starts_with("crate::"))
        .collect()
}

/// Intra-doc links printed as written: `[<code>path</code>]`.
fn bracketed_paths(html: &str) -> Vec<&str> {
    html.split("[<code>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</code>]").map(|(path, _)| path))
        .filter(|path| !path.contains('<'))
        .collect()
}

fn html_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            html_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
    Ok(())
}

/// `cargo xtask test` with `CARGO_TARGET_DIR` set, as CI caches and shared
/// machines set it: the CLI must be found where cargo put it. The
/// directory lies inside the workspace's own and is kept, so only the
/// first run builds the CLI's dependencies a second time.
fn try_moved() -> Result<(), String> {
    let moved = artefact::target_dir()?.join("moved-target-dir");
    let cli = try_it::build_cli(cargo().env("CARGO_TARGET_DIR", &moved))?;
    if !cli.starts_with(&moved) {
        return Err(format!(
            "with CARGO_TARGET_DIR={} the CLI was taken from {}",
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
        // Shows the count of operations exercised.
        "--nocapture",
    ]);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_rustdoc_could_not_resolve_are_found() {
        let html = r#"<a href="trait.MockServerExt.html">ok</a>
            <a href="::httpmock::MockServer">MockServer</a>
            <a href="https://docs.rs/httpmock">ok</a>
            <a href="crate::mock::httpmock::When">When</a>"#;
        assert_eq!(
            broken_hrefs(html),
            ["::httpmock::MockServer", "crate::mock::httpmock::When"]
        );
        assert!(broken_hrefs(r#"<a href="../index.html">up</a>"#).is_empty());
    }

    #[test]
    fn intra_doc_links_printed_with_their_brackets_are_found() {
        let html =
            "to\n[<code>httpmock::MockServer</code>], and <code>[1]</code> [<code>a</code> b]";
        assert_eq!(bracketed_paths(html), ["httpmock::MockServer"]);
    }
}
