//! Maintainers' commands. Run `cargo xtask help`.

mod artefact;
mod bench;
mod children;
mod fuzz;
mod prism;
mod redis;
mod regen;
mod suite;
mod surface_diff;
mod try_it;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{CommandFactory, Parser, Subcommand};

/// Maintainers' commands for the Conduit Rust SDK.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build openapi/conduit.yaml from openapi/pages, regenerate, build, update SURFACE.md
    ///
    /// Puts each SOURCE (a reference page) under openapi/pages, in place of
    /// the page written from the reference that holds its operation, or else
    /// by its file name; merges every page there into the vendored spec,
    /// openapi/conduit.yaml; regenerates the client from it, builds both
    /// ways of getting the client and updates SURFACE.md.
    #[command(verbatim_doc_comment)]
    Regen {
        /// Change nothing; fail if the spec or SURFACE.md would change
        #[arg(long)]
        check: bool,
        /// Reference pages to put under openapi/pages
        #[arg(value_name = "SOURCE")]
        sources: Vec<PathBuf>,
    },
    /// The whole suite: fmt, clippy, regen --check, docs, tests, Prism conformance, Redis
    Test,
    /// Serve the vendored spec with the pinned Prism on 127.0.0.1 until interrupted
    Mock {
        /// Port on 127.0.0.1 to serve on
        #[arg(long, value_name = "N", default_value_t = 4010)]
        port: u16,
    },
    /// Try the SDK in one command: start the mock, run the CLI, stop
    ///
    /// Starts the pinned Prism mock on the vendored spec, runs the `conduit` CLI
    /// against it (a list with `--all`, a write, `tools run`, then a
    /// three-item `tools run-batch`), shows
    /// each command and what it printed, and stops the mock. Needs node and
    /// npm (Prism is installed on first use).
    #[command(verbatim_doc_comment)]
    Try,
    /// Run the libFuzzer targets and property tests, each bounded in time
    ///
    /// Runs the libFuzzer targets in fuzz/ (cargo fuzz, nightly: whole HTTP
    /// responses, Retry-After parsing, spec loading) for --seconds each, then
    /// the property tests of response decoding, error mapping, Retry-After
    /// parsing and spec loading (tests/fuzz.rs in conduit-sdk and
    /// conduit-codegen) in release mode with --cases cases per property,
    /// failing a target that runs longer than --seconds.
    #[command(verbatim_doc_comment)]
    Fuzz(fuzz::Options),
    /// Measure the SDK under a rate limit and against plain reqwest; a full run writes BENCHMARKS.md
    ///
    /// Runs conduit-bench in release (calls under a limiting server, the SDK
    /// beside reqwest-retry and naive reqwest; overhead per call; code
    /// generation; memory), times cold builds of a tiny app against the SDK
    /// and against reqwest, prints the results and writes them to
    /// BENCHMARKS.md. --quick only prints: it never rewrites BENCHMARKS.md,
    /// which holds the last full run.
    #[command(verbatim_doc_comment)]
    Bench(bench::Options),
}

fn main() -> ExitCode {
    if let Err(message) = children::stop_on_signals() {
        return fail(&message);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version go to stdout and succeed.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(e.to_string().trim_start_matches("error: ")),
    };
    let result = match cli.command {
        Some(Cmd::Regen { check, sources }) => regen::run(check, &sources),
        Some(Cmd::Test) => suite::run(),
        Some(Cmd::Mock { port }) => prism::mock(port),
        Some(Cmd::Try) => try_it::run(),
        Some(Cmd::Fuzz(options)) => fuzz::run(&options),
        Some(Cmd::Bench(options)) => bench::run(&options),
        None => {
            print!("{}", Cli::command().render_help());
            Ok(())
        }
    };
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    };
    children::settle();
    code
}

fn fail(message: &str) -> ExitCode {
    eprintln!("xtask: {}", message.trim_end());
    ExitCode::FAILURE
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
    let status = children::status(cmd.current_dir(root()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cargo xtask").chain(args.iter().copied()))
    }

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn commands_take_their_options() {
        let cli = parse(&["regen", "--check", "a.md", "b.yaml"]).unwrap();
        let Some(Cmd::Regen { check, sources }) = cli.command else {
            panic!("{cli:?}");
        };
        assert!(check);
        assert_eq!(sources, [PathBuf::from("a.md"), PathBuf::from("b.yaml")]);
        assert!(matches!(
            parse(&["mock"]).unwrap().command,
            Some(Cmd::Mock { port: 4010 })
        ));
        assert!(matches!(
            parse(&["mock", "--port", "8080"]).unwrap().command,
            Some(Cmd::Mock { port: 8080 })
        ));
        assert!(matches!(parse(&["test"]).unwrap().command, Some(Cmd::Test)));
        assert!(parse(&[]).unwrap().command.is_none());
    }

    #[test]
    fn unknown_commands_and_options_are_refused() {
        for bad in [
            &["frobnicate"][..],
            &["test", "x"],
            &["regen", "--frobnicate"],
            &["mock", "--port", "x"],
            &["mock", "--port", "70000"],
            &["bench", "--slow"],
            &["bench", "--footprint"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
