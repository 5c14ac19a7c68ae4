//! `cargo xtask try`: the newcomer's first five minutes in one command.
//! Starts the pinned Prism mock on the vendored spec, runs the `conduit`
//! CLI against it (a list with `--all`, one write, a tool run, then a small
//! batch), shows each command and what it printed, and stops the mock.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{artefact, cargo, children, prism, root};

/// A tool id from the spec's example.
const TOOL_ID: &str = "kg77c0dy0mgdpzmqz6tesry8w184002s";

/// A workspace id from the spec's example.
const WORKSPACE_ID: &str = "j57demo8f8x7c9v0n2q4r6t8y1u3i5o";

pub fn run() -> Result<(), String> {
    let cli = build_cli(&mut cargo())?;
    try_cli(&cli)
}

/// Builds the CLI with `cargo` (a cargo command, with its environment);
/// the path cargo reports for it.
pub fn build_cli(cargo: &mut Command) -> Result<PathBuf, String> {
    println!("\n== build the CLI");
    artefact::build(
        "build the CLI",
        cargo
            .args(["build", "-q", "-p", "conduit-cli", "--bin", "conduit"])
            .current_dir(root()),
        "bin",
        "conduit",
    )
}

/// Starts the mock, runs the CLI `cli` against it and stops it.
pub fn try_cli(cli: &Path) -> Result<(), String> {
    println!("\n== start the mock (Prism on the vendored spec)");
    let prism = prism::start(0, true)?;
    println!("Prism serves openapi/conduit.yaml at {}", prism.url);

    let base = [
        "--base-url",
        prism.url.as_str(),
        "--workspace",
        WORKSPACE_ID,
    ];
    // Prism answers every page with `has_more: true` and the same cursor:
    // --max-items ends the walk after the second page.
    let list = [
        &base[..],
        &["contacts", "list", "--all", "--max-items", "2"],
    ]
    .concat();
    show(cli, &list, None)?;
    let write = [
        &base[..],
        &[
            "tickets",
            "create-note",
            "tk_123",
            "body=Called the guest back",
        ],
    ]
    .concat();
    show(cli, &write, None)?;
    let one = [&base[..], &["tools", "run", TOOL_ID, "order_id=ord_12345"]].concat();
    show(cli, &one, None)?;
    let items = "{\"order_id\": \"ord_1\"}\n{\"order_id\": \"ord_2\"}\n{\"order_id\": \"ord_3\"}\n";
    let batch = [
        &base[..],
        &["tools", "run-batch", TOOL_ID, "--rate", "10/s"],
    ]
    .concat();
    show(cli, &batch, Some(items))?;
    drop(prism);
    println!(
        "\nThe mock is stopped. Against the real API: export CONDUIT_API_TOKEN=<your token> \
         and run the same commands without --base-url (see README, \"The `conduit` CLI\")."
    );
    Ok(())
}

/// Runs the CLI with `args` (and `stdin`), printing the command line, its
/// output and its exit status; fails if the CLI did.
fn show(cli: &Path, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let shown: Vec<String> = args.iter().map(|a| quote(a)).collect();
    match stdin {
        Some(text) => println!(
            "\n$ printf '{}' | conduit {}",
            text.replace('\n', "\\n"),
            shown.join(" ")
        ),
        None => println!("\n$ conduit {}", shown.join(" ")),
    }
    let mut child = children::Running::spawn(
        Command::new(cli)
            .args(args)
            .env("CONDUIT_API_TOKEN", "try-it-token")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            }),
    )
    .map_err(|e| format!("cannot start {}: {e}", cli.display()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.take_stdin()) {
        use std::io::Write;
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write the CLI's stdin: {e}"))?;
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    println!("(exit status {})", status.code().unwrap_or(-1));
    if status.success() {
        Ok(())
    } else {
        Err(format!("the CLI failed ({status})"))
    }
}

/// `arg` as a shell would need it.
fn quote(arg: &str) -> String {
    if arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
