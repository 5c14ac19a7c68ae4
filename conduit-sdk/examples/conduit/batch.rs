//! `tools run-batch`: one call per line of JSON Lines input.
//!
//! - Every line is read and checked before anything is sent: a non-blank
//!   line that is not a JSON object is a usage error naming its line.
//! - `--concurrency` workers share one client, so the rate-limit gate paces
//!   all of them together (`--rate`, or adaptively after the first 429).
//! - stdout gets one JSON line per item, in input order, as soon as the item
//!   and every one before it are final: `{"index": I, "data": {...}}` when the
//!   API answered 200, else `{"index": I, "error": {"kind", "status",
//!   "message"}}`.
//! - stderr gets a progress bar while it is a terminal, and a summary.
//! - Ctrl-C: no new call starts, calls in flight finish and are printed,
//!   exit 130; a second Ctrl-C abandons them.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use conduit_sdk::{Client, Error, ErrorKind, ToolRun};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::args::BatchArgs;
use crate::report::{self, Outcome};

type Parameters = Map<String, Value>;

pub async fn run(client: Client, args: BatchArgs) -> ExitCode {
    let items = match read_input(args.input.as_deref()).and_then(|text| parse_lines(&text)) {
        Ok(items) => items,
        Err(message) => return report::usage_error(&message),
    };
    if items.is_empty() {
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    let total = items.len();
    let progress = progress_bar(total);
    let mut batch = Batch::start(client.clone(), args, items);
    let mut results = Results::default();
    let mut interrupted = false;
    loop {
        tokio::select! {
            received = batch.results.recv() => match received {
                Some((index, result)) => {
                    if let Err(e) = &result
                        && e.kind() == ErrorKind::InvalidInput
                    {
                        // The same tool id and workspace go with every item:
                        // refused before sending here, refused everywhere.
                        progress.finish_and_clear();
                        batch.abandon();
                        return report::usage_error(&e.to_string());
                    }
                    results.add(index, result);
                    progress.inc(1);
                    if let Err(e) = results.print_ready() {
                        progress.finish_and_clear();
                        eprintln!("error: stdout: {e}");
                        batch.abandon();
                        return ExitCode::from(1);
                    }
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                if interrupted {
                    progress.suspend(|| eprintln!("interrupted again: abandoning the calls in flight"));
                    batch.abandon();
                    break;
                }
                interrupted = true;
                batch.stop();
                progress.suspend(|| eprintln!(
                    "interrupted: no new calls; finishing those in flight (Ctrl-C again abandons them)"
                ));
            }
        }
    }
    progress.finish_and_clear();
    // After an interruption there are gaps: print what finished anyway.
    let _ = results.print_all();
    let throttled = client.rate_limiter().stats().throttled;
    eprintln!("{}", results.summary(total, throttled, started.elapsed()));
    if interrupted {
        ExitCode::from(130)
    } else {
        results.counts.worst.exit_code()
    }
}

/// The whole input: `path`, or stdin.
fn read_input(path: Option<&Path>) -> Result<String, String> {
    let mut text = String::new();
    match path {
        Some(path) => std::fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read stdin: {e}"))?,
    };
    Ok(text)
}

/// One parameters object per non-blank line; the first bad line is an
/// error naming it (1-based).
fn parse_lines(text: &str) -> Result<Vec<Parameters>, String> {
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => items.push(map),
            Ok(other) => {
                return Err(format!(
                    "input line {}: expected a JSON object of parameters, got {}",
                    i + 1,
                    json_type(&other)
                ));
            }
            Err(e) => return Err(format!("input line {}: not JSON: {e}", i + 1)),
        }
    }
    Ok(items)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn progress_bar(total: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} calls, {elapsed} elapsed, eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// The workers and the channel their results come back on.
struct Batch {
    results: mpsc::UnboundedReceiver<(usize, Result<ToolRun, Error>)>,
    stop: Arc<AtomicBool>,
    workers: JoinSet<()>,
}

impl Batch {
    fn start(client: Client, args: BatchArgs, items: Vec<Parameters>) -> Self {
        let (tx, results) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let items = Arc::new(items);
        let tool_id: Arc<str> = args.tool_id.into();
        let workspace: Option<Arc<str>> = args.workspace.map(Into::into);
        let mut workers = JoinSet::new();
        for _ in 0..usize::from(args.concurrency).min(items.len()) {
            let (client, tx, stop, next, items) = (
                client.clone(),
                tx.clone(),
                stop.clone(),
                next.clone(),
                items.clone(),
            );
            let (tool_id, workspace) = (tool_id.clone(), workspace.clone());
            workers.spawn(async move {
                while !stop.load(Ordering::Acquire) {
                    let index = next.fetch_add(1, Ordering::AcqRel);
                    let Some(parameters) = items.get(index) else {
                        break;
                    };
                    let mut call = client.custom_tools().run(&*tool_id).parameters(parameters);
                    if let Some(ws) = &workspace {
                        call = call.workspace(&**ws);
                    }
                    if tx.send((index, call.send().await)).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            results,
            stop,
            workers,
        }
    }

    /// No new calls; those in flight finish.
    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Drops the calls in flight.
    fn abandon(&mut self) {
        self.stop();
        self.workers.abort_all();
    }
}

/// Final results, printed in input order.
#[derive(Default)]
struct Results {
    ready: BTreeMap<usize, Value>,
    next_to_print: usize,
    counts: Counts,
}

/// Counts of outcomes, and the worst.
struct Counts {
    succeeded: usize,
    tool_failed: usize,
    errors: BTreeMap<&'static str, usize>,
    worst: Outcome,
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            succeeded: 0,
            tool_failed: 0,
            errors: BTreeMap::new(),
            worst: Outcome::Succeeded,
        }
    }
}

impl Results {
    fn add(&mut self, index: usize, result: Result<ToolRun, Error>) {
        let counts = &mut self.counts;
        let (line, outcome) = match result {
            Ok(run) => {
                let data = run.json().clone();
                let outcome = if run.success() {
                    counts.succeeded += 1;
                    Outcome::Succeeded
                } else {
                    counts.tool_failed += 1;
                    Outcome::ToolFailed
                };
                (json!({ "index": index, "data": data }), outcome)
            }
            Err(e) => {
                *counts.errors.entry(e.kind().as_str()).or_default() += 1;
                let line = json!({ "index": index, "error": {
                    "kind": e.kind().as_str(),
                    "status": e.status().map(|s| s.as_u16()),
                    "message": e.to_string(),
                }});
                (line, Outcome::of_error(&e))
            }
        };
        counts.worst = counts.worst.max(outcome);
        self.ready.insert(index, line);
    }

    /// Prints every result whose predecessors are all printed.
    fn print_ready(&mut self) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        while let Some(line) = self.ready.remove(&self.next_to_print) {
            writeln!(out, "{line}")?;
            self.next_to_print += 1;
        }
        out.flush()
    }

    /// Prints every result left, gaps or not.
    fn print_all(&mut self) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        for line in std::mem::take(&mut self.ready).into_values() {
            writeln!(out, "{line}")?;
        }
        out.flush()
    }

    fn summary(&self, total: usize, throttled: u64, elapsed: std::time::Duration) -> String {
        let w = &self.counts;
        let failed: usize = w.errors.values().sum();
        let done = w.succeeded + w.tool_failed + failed;
        let mut text = format!(
            "run-batch: {done} of {total} items in {:.1} s: {} succeeded, {} tool failures, {failed} errors",
            elapsed.as_secs_f64(),
            w.succeeded,
            w.tool_failed,
        );
        if failed > 0 {
            let kinds: Vec<String> = w.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            text.push_str(&format!(" ({})", kinds.join(", ")));
        }
        text.push_str(&format!("; 429s seen: {throttled}"));
        text
    }
}
