//! `conduit`: the whole Conduit API from the command line, built on
//! `conduit-sdk`.
//!
//! ```text
//! conduit [OPTIONS] <GROUP> <ACTION> [PATH PARAMETERS] [--QUERY VALUE]... [ITEM]...
//! conduit [OPTIONS] <GROUP> <ACTION> --batch FILE|-
//! conduit completions bash|zsh|fish
//! ```
//!
//! Every operation of the spec is an action, named after the reference's
//! URL slugs (`conduit tickets list-notes TICKET_ID`). The actions are
//! generated from the spec by `cargo xtask regen` (`generated.rs`, a table
//! and one function per action calling the SDK's builder); everything else
//! is written once for all of them:
//!
//! - [`commands`]: the clap command line built from the table, and what a
//!   parse asks for;
//! - [`once`]: one call, its data on stdout (a list one item per line,
//!   `--all` following cursors);
//! - [`batch`]: `--batch`, one call per line of JSON Lines input;
//! - [`report`]: exit statuses and error lines.
//!
//! Exit status: 0 success; 1 a custom tool ran and failed; 2 usage or
//! configuration error (nothing is sent); 3 an error response from the
//! API; 4 a connection failure or timeout; 130, 143, 129 a batch stopped by
//! SIGINT, SIGTERM, SIGHUP. Otherwise, for a batch, the worst outcome of its
//! items.

mod action;
mod batch;
mod commands;
mod globals;
mod input;
mod items;
mod json_text;
mod once;
mod report;
mod shown;
mod warnings;

// Included rather than a module file, so that rustfmt leaves regen's
// output as written (`regen --check` compares it byte for byte).
#[allow(clippy::all, unused_mut)]
mod generated {
    include!("generated.rs");
}

use std::process::ExitCode;

use clap::FromArgMatches;

use commands::Invocation;
use globals::Globals;

#[tokio::main]
async fn main() -> ExitCode {
    let mut command = commands::command();
    let matches = match command.try_get_matches_from_mut(std::env::args_os()) {
        Ok(matches) => matches,
        // Help goes to stdout with 0; usage errors to stderr with 2, and
        // always with the usage.
        Err(e) if e.use_stderr() => {
            let text = e.render().to_string();
            eprint!("{text}");
            if !text.contains("Usage:") {
                eprintln!("\n{}", commands::usage_of(&mut command, std::env::args()));
            }
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let invocation = commands::invocation(&matches);
    let call = match invocation {
        Ok(Invocation::Completions(shell)) => {
            clap_complete::generate(shell, &mut command, "conduit", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Call(call)) => call,
        Err(message) => return report::usage_error(&message),
    };
    let globals = match Globals::from_arg_matches(&matches) {
        Ok(globals) => globals,
        Err(e) => return report::usage_error(&e.to_string()),
    };
    warnings::print_store_warnings();
    let client = match globals.client() {
        Ok(client) => client,
        Err(e) => return report::usage_error(&e.to_string()),
    };
    if call.batch.is_some() {
        batch::run(client, *call).await
    } else {
        once::run(&client, *call).await
    }
}
