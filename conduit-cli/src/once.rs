//! One call (no `--batch`): its data on stdout; a list's items one per
//! line, page after page with `--all`.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use conduit_sdk::Client;

use crate::action::{Lister, Prepared, Sent};
use crate::commands::Call;
use crate::{json_text, report, shown};

pub async fn run(client: &Client, call: Call) -> ExitCode {
    let action = call.action;
    let prepared = match (action.call)(client, call.args) {
        Ok(prepared) => prepared,
        Err(message) => return report::usage_error(&message),
    };
    match prepared {
        Prepared::One(sending) => match sending.await {
            Ok(sent) => print_one(&sent),
            Err(e) => report::error(&e),
        },
        Prepared::List(lister) => {
            let limit = call.max_items.unwrap_or(u64::MAX);
            match list(&*lister, call.all, limit).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(Failed::Call(e)) => report::error(&e),
                Err(Failed::Server(why)) => {
                    eprintln!("error: {why}");
                    ExitCode::from(3)
                }
                Err(Failed::Stdout(e)) => {
                    eprintln!("error: stdout: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Prints one answer: its data (indented on a terminal, one line
/// otherwise), and on stderr why a tool failed.
fn print_one(sent: &Sent) -> ExitCode {
    if !sent.data.is_empty() {
        let json = if std::io::stdout().is_terminal() {
            json_text::indent(&sent.data)
        } else {
            json_text::compact(&sent.data)
        };
        if let Err(e) = writeln!(std::io::stdout(), "{json}") {
            eprintln!("error: the data could not be printed: {e}");
            return ExitCode::from(1);
        }
    }
    match &sent.tool_failed {
        Some(failure) => report::tool_failed(failure),
        None => ExitCode::SUCCESS,
    }
}

enum Failed {
    Call(conduit_sdk::Error),
    /// The pages do not chain up.
    Server(String),
    Stdout(std::io::Error),
}

/// Prints the items of one page, or with `all` of every page, up to
/// `limit`. Each page is printed as it arrives: what a failed page stops
/// stays printed, and nothing is printed twice.
async fn list(lister: &dyn Lister, all: bool, limit: u64) -> Result<(), Failed> {
    let mut printed = 0u64;
    let mut cursor = None;
    let mut seen = HashSet::new();
    loop {
        let page = lister.page(cursor.take()).await.map_err(Failed::Call)?;
        let mut out = std::io::stdout().lock();
        for item in &page.items {
            if printed == limit {
                return Ok(());
            }
            writeln!(out, "{}", json_text::compact(item.get())).map_err(Failed::Stdout)?;
            printed += 1;
        }
        out.flush().map_err(Failed::Stdout)?;
        drop(out);
        if !page.has_more || printed == limit {
            return Ok(());
        }
        let Some(next) = page.next_cursor else {
            return Err(Failed::Server(
                "the page says more follow but gives no next_cursor".to_owned(),
            ));
        };
        if !all {
            // Server text: escaped, as any other shown on stderr.
            let next = shown::message(&next);
            eprintln!("more items: add --cursor {next} for the next page, or --all for every page");
            return Ok(());
        }
        if !seen.insert(next.clone()) {
            let shown: String = next.chars().take(40).collect();
            return Err(Failed::Server(format!(
                "the server gave the cursor {shown:?} a second time; stopping rather than loop"
            )));
        }
        cursor = Some(next);
    }
}
