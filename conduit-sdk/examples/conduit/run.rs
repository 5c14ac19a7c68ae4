//! `tools run`: one call, its data on stdout.

use std::io::Write;
use std::process::ExitCode;

use conduit_sdk::{Client, ToolRun};
use serde_json::Map;

use crate::args::RunArgs;
use crate::{json_text, report};

pub async fn run(client: &Client, args: RunArgs) -> ExitCode {
    let parameters: Map<_, _> = args.items.into_iter().collect();
    let mut call = client
        .custom_tools()
        .run(args.tool_id)
        .parameters(&parameters);
    if let Some(workspace) = args.workspace {
        call = call.workspace_id(workspace);
    }
    match call.send().await {
        Ok(run) => print_run(&run),
        Err(e) => report::error(&e),
    }
}

/// Prints a completed run: its data on stdout, and why it failed on stderr.
fn print_run(run: &ToolRun) -> ExitCode {
    // The data as the server sent it: fields this SDK does not know yet
    // kept, key order and numbers unchanged, laid out anew.
    let json = json_text::indent(&run.data_text());
    let printed = writeln!(std::io::stdout(), "{json}").map_err(|e| e.to_string());
    if let Err(e) = printed {
        eprintln!("error: the run's data could not be printed: {e}");
        return ExitCode::from(1);
    }
    match run.clone().into_result() {
        Ok(_) => ExitCode::SUCCESS,
        // The error shows the tool's text safely (escaped, token masked).
        Err(failed) => report::error(&failed.into()),
    }
}
