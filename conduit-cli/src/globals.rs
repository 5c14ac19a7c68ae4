//! The global options, before the group (or anywhere after it), and the
//! client they and the environment describe.

use std::time::Duration;

use clap::Args;
use conduit_sdk::{CallOptions, Client, ClientBuilder, Error, Rate};

/// Options of every command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Globals {
    /// The API root.
    #[arg(
        long,
        value_name = "URL",
        global = true,
        help = "API root [default: $CONDUIT_BASE_URL, else https://api.conduit.ai]"
    )]
    pub base_url: Option<String>,

    /// Retries after the first attempt [default: $CONDUIT_MAX_RETRIES, else 2]
    #[arg(long, value_name = "N", global = true)]
    pub max_retries: Option<u32>,

    /// Timeout of each whole call in seconds, retries and waits included
    #[arg(long, value_name = "SECS", value_parser = parse_timeout, global = true)]
    pub timeout: Option<Duration>,

    /// Share the rate limit with other processes through Redis at URL
    /// (redis://host:port) [default: $CONDUIT_RATE_STORE]
    #[arg(long, value_name = "URL", global = true)]
    pub rate_store: Option<String>,

    /// An extra header for every request, such as 'Idempotency-Key: k1'
    /// (repeatable)
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header, global = true)]
    pub headers: Vec<(String, String)>,

    /// The workspace of every call that takes one (--workspace-id on an
    /// action overrides it) [default: $CONDUIT_WORKSPACE_ID]
    #[arg(long, value_name = "ID", global = true)]
    pub workspace: Option<String>,

    /// Send at most N requests in any minute (N/min) or second (N/s), such
    /// as 120/min [default: adaptive, or $CONDUIT_RATE_LIMIT]
    #[arg(long, value_name = "N/min|N/s", value_parser = parse_rate, global = true)]
    pub rate: Option<Rate>,
}

impl Globals {
    /// The client the options and the environment describe. An option
    /// replaces its variable, which is then not even read: a bad
    /// `CONDUIT_MAX_RETRIES` does not matter when `--max-retries` is given.
    pub fn client(&self) -> Result<Client, Error> {
        let rate = self.rate;
        let mut builder = ClientBuilder::from_lookup(|key| {
            let overridden = match key {
                "CONDUIT_BASE_URL" => self.base_url.is_some(),
                "CONDUIT_MAX_RETRIES" => self.max_retries.is_some(),
                "CONDUIT_RATE_LIMIT" => rate.is_some(),
                "CONDUIT_RATE_STORE" => self.rate_store.is_some(),
                "CONDUIT_WORKSPACE_ID" => self.workspace.is_some(),
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
        if let Some(workspace) = &self.workspace {
            builder = builder.workspace_id(workspace);
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
