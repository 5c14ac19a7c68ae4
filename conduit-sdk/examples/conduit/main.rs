//! `conduit`: a small command line client for the Conduit API, built on
//! `conduit-sdk`.
//!
//! ```text
//! conduit [OPTIONS] tools run TOOL_ID [--workspace ID] [ITEM...]
//! conduit [OPTIONS] tools run-batch TOOL_ID [--workspace ID] [--concurrency N]
//!                                   [--rate N/min|N/s] [--input FILE]
//! ```
//!
//! `tools run` runs a tool once with the parameters given as `ITEM`s, written
//! as httpie does: `KEY=VALUE` sends `VALUE` as a JSON string and `KEY:=JSON`
//! a raw JSON value, so `order_id=ord_1 count:=3 flags:='[true]'` sends
//! `{"order_id": "ord_1", "count": 3, "flags": [true]}`. It prints the run's
//! `data` object as JSON, exactly as the server sent it.
//!
//! `tools run-batch` runs a tool once per line of JSON Lines input (each a
//! parameters object), with `--concurrency` calls in flight sharing one
//! client and its rate-limit gate, and prints one JSON line per item in
//! input order. See [`batch`].
//!
//! `--header 'Name: value'` (repeatable, before `tools`) adds a header to
//! every request. `--rate-store redis://host:port` (or `CONDUIT_RATE_STORE`)
//! shares the rate limit with every other process using that Redis; if it
//! cannot be reached, one warning line says so and the calls go on. The token is read from `CONDUIT_API_TOKEN`; `CONDUIT_BASE_URL`,
//! `CONDUIT_MAX_RETRIES`, `CONDUIT_WORKSPACE_ID` and `CONDUIT_RATE_LIMIT`
//! apply when the matching option is absent. `--timeout` bounds each whole
//! call, retries and rate-limit waits included.
//!
//! Exit status: 0 the tool succeeded; 1 it ran and failed; 2 usage or
//! configuration error (nothing is sent); 3 an error response from the API;
//! 4 a connection failure or timeout; 130, 143, 129 run-batch stopped by
//! SIGINT, SIGTERM, SIGHUP. Otherwise, for a batch, the worst outcome of its
//! items.

mod args;
mod batch;
mod input;
mod json_text;
mod report;
mod run;
mod warnings;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, Tools};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help goes to stdout with 0; usage errors to stderr with 2, and
        // always with the usage.
        Err(e) if e.use_stderr() => {
            let text = e.render().to_string();
            eprint!("{text}");
            if !text.contains("Usage:") {
                eprintln!(
                    "\n{}",
                    <Cli as clap::CommandFactory>::command().render_usage()
                );
            }
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    warnings::print_store_warnings();
    let client = match cli.client() {
        Ok(client) => client,
        Err(e) => return report::usage_error(&e.to_string()),
    };
    match cli.command {
        Command::Tools(Tools::Run(args)) => run::run(&client, args).await,
        Command::Tools(Tools::RunBatch(args)) => batch::run(client, args).await,
    }
}
