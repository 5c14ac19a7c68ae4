//! The command line, parsed by clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use conduit_sdk::{CallOptions, Client, ClientBuilder, Error, Rate};
use serde_json::Value;

const USAGE: &str = "\
conduit [OPTIONS] tools run TOOL_ID [--workspace ID] [ITEM...]
       conduit [OPTIONS] tools run-batch TOOL_ID [--workspace ID] [--concurrency N] [--rate N/min|N/s] [--input FILE]";

const AFTER_HELP: &str = "\
Items (tools run):
  KEY=VALUE          parameter KEY with VALUE as a JSON string
  KEY:=JSON          parameter KEY with a raw JSON value (number, bool, array...)

Environment:
  CONDUIT_API_TOKEN  the API token (required)

Exit status: 0 tool succeeded, 1 tool failed, 2 usage or configuration error,
3 error response from the API, 4 connection failure or timeout; run-batch:
130, 143, 129 stopped by SIGINT, SIGTERM, SIGHUP, else the worst outcome of its
items.";

/// Runs Conduit custom tools and prints what they return as JSON.
#[derive(Debug, Parser)]
#[command(name = "conduit", override_usage = USAGE, after_help = AFTER_HELP)]
pub struct Cli {
    /// API root [default: $CONDUIT_BASE_URL, else https://api.conduit.ai]
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Retries after the first attempt [default: $CONDUIT_MAX_RETRIES, else 2]
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,

    /// Timeout of each whole call in seconds, retries and waits included
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    /// Share the rate limit with other processes through Redis at URL
    /// (redis://host:port) [default: $CONDUIT_RATE_STORE]
    #[arg(long, value_name = "URL")]
    pub rate_store: Option<String>,

    /// An extra header for every request, such as 'Idempotency-Key: k1'
    /// (repeatable)
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Custom code tools.
    #[command(subcommand)]
    Tools(Tools),
}

#[derive(Debug, Subcommand)]
pub enum Tools {
    /// Runs a tool once and prints the run's data.
    Run(RunArgs),
    /// Runs a tool once per line of JSON Lines input.
    RunBatch(BatchArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The tool to run.
    #[arg(value_name = "TOOL_ID")]
    pub tool_id: String,

    /// Workspace to run in [default: $CONDUIT_WORKSPACE_ID]
    #[arg(long, value_name = "ID")]
    pub workspace: Option<String>,

    /// Parameters: KEY=VALUE (a string) or KEY:=JSON (a raw JSON value)
    #[arg(value_name = "ITEM", value_parser = parse_item)]
    pub items: Vec<(String, Value)>,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The tool to run.
    #[arg(value_name = "TOOL_ID")]
    pub tool_id: String,

    /// Workspace to run in [default: $CONDUIT_WORKSPACE_ID]
    #[arg(long, value_name = "ID")]
    pub workspace: Option<String>,

    /// Calls in flight at once, sharing one client
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Pace evenly at this rate, such as 120/min or 2/s [default: adaptive,
    /// or $CONDUIT_RATE_LIMIT]
    #[arg(long, value_name = "N/min|N/s", value_parser = parse_rate)]
    pub rate: Option<Rate>,

    /// JSON Lines input, one parameters object per line [default: stdin]
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

impl Cli {
    /// The client the options and the environment describe. An option
    /// replaces its variable, which is then not even read: a bad
    /// `CONDUIT_MAX_RETRIES` does not matter when `--max-retries` is given.
    pub fn client(&self) -> Result<Client, Error> {
        let rate = match &self.command {
            Command::Tools(Tools::RunBatch(b)) => b.rate,
            Command::Tools(Tools::Run(_)) => None,
        };
        let mut builder = ClientBuilder::from_lookup(|key| {
            let overridden = match key {
                "CONDUIT_BASE_URL" => self.base_url.is_some(),
                "CONDUIT_MAX_RETRIES" => self.max_retries.is_some(),
                "CONDUIT_RATE_LIMIT" => rate.is_some(),
                "CONDUIT_RATE_STORE" => self.rate_store.is_some(),
                _ => false,
            };
            if overridden {
                None
            } else {
                std::env::var(key).ok()
            }
        })?;
        if let Some(url) = &self.base_url {
            builder = builder.base_url(url);
        }
        if let Some(n) = self.max_retries {
            builder = builder.max_retries(n);
        }
        if let Some(limit) = self.timeout {
            builder = builder.total_timeout(limit).timeout(limit);
        }
        if let Some(rate) = rate {
            builder = builder.rate_limit(rate);
        }
        if let Some(url) = &self.rate_store {
            builder = builder.rate_store(url);
        }
        let client = builder.build()?;
        if self.headers.is_empty() {
            return Ok(client);
        }
        let options = self
            .headers
            .iter()
            .fold(CallOptions::new(), |o, (name, value)| o.header(name, value));
        Ok(client.with_options(options))
    }
}

/// Seconds, at least a millisecond: anything shorter would time out every
/// call before it could be sent.
fn parse_timeout(secs: &str) -> Result<Duration, String> {
    secs.parse::<f64>()
        .ok()
        .filter(|s| *s >= 0.001)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("expected a number of seconds of at least 0.001, got {secs:?}"))
}

/// `Name: value`, split at the first colon. The name and value are checked
/// when the call is made (a bad one is a usage error, nothing sent).
fn parse_header(header: &str) -> Result<(String, String), String> {
    let (name, value) = header
        .split_once(':')
        .ok_or_else(|| format!("header {header:?} is not NAME: VALUE"))?;
    if name.trim().is_empty() {
        return Err(format!("header {header:?} has an empty name"));
    }
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

fn parse_rate(rate: &str) -> Result<Rate, String> {
    rate.parse::<Rate>().map_err(|e| e.to_string())
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
