//! `conduit`: a small command line client for the Conduit API, built on
//! `conduit-sdk`.
//!
//! ```text
//! conduit [--base-url URL] [--max-retries N] [--timeout SECS] \
//!     tools run TOOL_ID [--workspace ID] [ITEM...]
//! ```
//!
//! Each `ITEM` is a tool parameter, written as httpie does: `KEY=VALUE` sends
//! `VALUE` as a JSON string and `KEY:=JSON` sends a raw JSON value, so
//! `order_id=ord_1 count:=3 flags:='[true]'` sends
//! `{"order_id": "ord_1", "count": 3, "flags": [true]}`.
//!
//! The token is read from `CONDUIT_API_TOKEN`; `CONDUIT_BASE_URL`,
//! `CONDUIT_MAX_RETRIES` and `CONDUIT_WORKSPACE_ID` apply when the matching
//! option is absent. `--timeout` bounds the whole call, retries included.
//!
//! On a completed run the run's `data` object is printed to stdout as JSON.
//! The exit status is 0 when the tool succeeded, 1 when it ran and failed,
//! 2 for a usage or configuration error (nothing is sent), 3 for an error
//! response from the API and 4 for a connection failure or timeout.
//!
//! ```text
//! CONDUIT_API_TOKEN=... cargo run -p conduit-sdk --example conduit -- \
//!     tools run kg77c0dy0mgdpzmqz6tesry8w184002s order_id=ord_12345
//! ```

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use conduit_sdk::{ClientBuilder, Error, ErrorKind, ToolRun};
use serde_json::{Map, Value};

const USAGE: &str = "\
Usage: conduit [--base-url URL] [--max-retries N] [--timeout SECS] \\
           tools run TOOL_ID [--workspace ID] [ITEM...]

Runs a Conduit custom tool and prints the run's data as JSON.

Options:
  --base-url URL     API root (default: $CONDUIT_BASE_URL, else https://api.conduit.ai)
  --max-retries N    retries after the first attempt (default: $CONDUIT_MAX_RETRIES, else 2)
  --timeout SECS     timeout of the whole call, retries included (decimals allowed)
  --workspace ID     workspace to run in (default: $CONDUIT_WORKSPACE_ID)
  -h, --help         print this help

Items:
  KEY=VALUE          parameter KEY with VALUE as a JSON string
  KEY:=JSON          parameter KEY with a raw JSON value (number, bool, array...)

Environment:
  CONDUIT_API_TOKEN  the API token (required)

Exit status: 0 tool succeeded, 1 tool failed, 2 usage or configuration error,
3 error response from the API, 4 connection failure or timeout.
";

/// A parsed command line.
#[derive(Debug)]
enum Command {
    Help,
    RunTool(RunArgs),
}

/// What `tools run` needs.
#[derive(Debug, Default)]
struct RunArgs {
    base_url: Option<String>,
    max_retries: Option<u32>,
    timeout: Option<Duration>,
    tool_id: String,
    workspace: Option<String>,
    parameters: Map<String, Value>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::RunTool(args)) => args,
        Err(message) => return usage_error(&message),
    };
    match run_tool(args).await {
        Ok(run) => report_run(&run),
        Err(e) => report_error(&e),
    }
}

/// Parses everything after the program name.
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut args = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not valid UTF-8"))
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let mut run = RunArgs::default();

    // Global options, up to the subcommand.
    let subcommand = loop {
        let Some(arg) = args.next() else {
            return Err("missing command; expected `tools run TOOL_ID`".into());
        };
        let (name, inline) = split_option(&arg);
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "--base-url" => run.base_url = Some(option_value(name, inline, &mut args)?),
            "--max-retries" => {
                let n = option_value(name, inline, &mut args)?;
                let n = n
                    .parse()
                    .map_err(|_| format!("--max-retries expects a whole number, got {n:?}"))?;
                run.max_retries = Some(n);
            }
            "--timeout" => {
                let secs = option_value(name, inline, &mut args)?;
                run.timeout = Some(parse_timeout(&secs)?);
            }
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg:?}")),
            _ => break arg,
        }
    };
    match (subcommand.as_str(), args.next().as_deref()) {
        ("tools", Some("run")) => {}
        ("tools", Some(other)) => return Err(format!("unknown tools command {other:?}")),
        ("tools", None) => return Err("missing tools command; expected `tools run`".into()),
        (other, _) => return Err(format!("unknown command {other:?}")),
    }

    // `tools run` arguments: the tool id, --workspace and items, in any
    // order; after `--` everything is an item.
    let mut tool_id = None;
    let mut options_done = false;
    while let Some(arg) = args.next() {
        if !options_done && arg.starts_with('-') {
            let (name, inline) = split_option(&arg);
            match name {
                "--" => options_done = true,
                "-h" | "--help" => return Ok(Command::Help),
                "--workspace" => run.workspace = Some(option_value(name, inline, &mut args)?),
                _ => return Err(format!("unknown option {arg:?}")),
            }
        } else if tool_id.is_none() {
            tool_id = Some(arg);
        } else {
            let (key, value) = parse_item(&arg)?;
            run.parameters.insert(key, value);
        }
    }
    run.tool_id = tool_id.ok_or("missing TOOL_ID")?;
    Ok(Command::RunTool(run))
}

/// `--name=value` into its name and inline value; anything else unchanged.
fn split_option(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((name, value)) if arg.starts_with("--") => (name, Some(value)),
        _ => (arg, None),
    }
}

/// The value of option `name`: inline (`--name=value`) or the next argument.
fn option_value(
    name: &str,
    inline: Option<&str>,
    rest: &mut impl Iterator<Item = String>,
) -> Result<String, String> {
    match inline {
        Some(value) => Ok(value.to_owned()),
        None => rest.next().ok_or_else(|| format!("{name} expects a value")),
    }
}

fn parse_timeout(secs: &str) -> Result<Duration, String> {
    secs.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("--timeout expects a positive number of seconds, got {secs:?}"))
}

/// `KEY=VALUE` (a string) or `KEY:=JSON` (a raw JSON value), split at the
/// first `=` or `:=`.
fn parse_item(item: &str) -> Result<(String, Value), String> {
    let Some(eq) = item.find('=') else {
        return Err(format!("item {item:?} is neither KEY=VALUE nor KEY:=JSON"));
    };
    let (key, value) = match item[..eq].strip_suffix(':') {
        Some(key) => {
            let json = &item[eq + 1..];
            let value = serde_json::from_str(json)
                .map_err(|e| format!("item {key:?}: {json:?} is not valid JSON ({e})"))?;
            (key, value)
        }
        None => (&item[..eq], Value::String(item[eq + 1..].to_owned())),
    };
    if key.is_empty() {
        return Err(format!("item {item:?} has an empty KEY"));
    }
    Ok((key.to_owned(), value))
}

/// Builds the client from the environment and the options, and runs the tool.
async fn run_tool(args: RunArgs) -> Result<ToolRun, Error> {
    // An option replaces its variable, which is then not even read: a bad
    // CONDUIT_MAX_RETRIES does not matter when --max-retries is given.
    let mut builder = ClientBuilder::from_lookup(|key| {
        let overridden = match key {
            "CONDUIT_BASE_URL" => args.base_url.is_some(),
            "CONDUIT_MAX_RETRIES" => args.max_retries.is_some(),
            _ => false,
        };
        if overridden {
            None
        } else {
            std::env::var(key).ok()
        }
    })?;
    if let Some(url) = args.base_url {
        builder = builder.base_url(url);
    }
    if let Some(n) = args.max_retries {
        builder = builder.max_retries(n);
    }
    if let Some(limit) = args.timeout {
        builder = builder.total_timeout(limit).timeout(limit);
    }
    let client = builder.build()?;
    let mut run = client
        .custom_tools()
        .run(args.tool_id)
        .parameters(&args.parameters);
    if let Some(workspace) = args.workspace {
        run = run.workspace(workspace);
    }
    run.send().await
}

/// Prints a completed run: its data on stdout, and why it failed on stderr.
fn report_run(run: &ToolRun) -> ExitCode {
    let printed = serde_json::to_string_pretty(run.as_raw())
        .map_err(|e| e.to_string())
        .and_then(|json| writeln!(std::io::stdout(), "{json}").map_err(|e| e.to_string()));
    if let Err(e) = printed {
        eprintln!("error: the run's data could not be printed: {e}");
        return ExitCode::from(1);
    }
    if run.success() {
        return ExitCode::SUCCESS;
    }
    let reason = run
        .error()
        .unwrap_or("the tool reported failure without an error message");
    eprintln!("error: tool failed: {reason}");
    ExitCode::from(1)
}

/// Prints an error on stderr and picks the exit status.
fn report_error(e: &Error) -> ExitCode {
    match e.kind() {
        ErrorKind::Config | ErrorKind::InvalidInput => usage_error(&e.to_string()),
        ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Transport => {
            eprintln!("error: {}", with_sources(e));
            ExitCode::from(4)
        }
        ErrorKind::ToolFailed => {
            let reason = e.api_message().unwrap_or("no error message");
            eprintln!("error: tool failed: {reason}");
            ExitCode::from(1)
        }
        // Every status kind and Decode, and kinds added later.
        _ => {
            match (e.status(), e.api_message()) {
                (Some(status), Some(message)) => {
                    eprintln!("error: HTTP {}: {message}", status.as_u16());
                }
                (Some(status), None) => eprintln!("error: HTTP {}: {e}", status.as_u16()),
                (None, _) => eprintln!("error: {e}"),
            }
            if e.api_message().is_none()
                && let Some(body) = e.body_snippet().filter(|b| !b.trim().is_empty())
            {
                eprintln!("response body: {body}");
            }
            if let Some(wait) = e.retry_after() {
                eprintln!("the server asks to retry after {:.1} s", wait.as_secs_f64());
            }
            ExitCode::from(3)
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

/// The error followed by its sources, `: `-separated.
fn with_sources(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
