//! `--batch`: one call per line of JSON Lines input, each line the call's
//! arguments by name (path parameters, query parameters, body fields) over
//! those of the command line. `tools run-batch TOOL_ID` is `custom-tools
//! run TOOL_ID --batch`, each line the tool's parameters.
//!
//! - The input is read a line at a time ([`input`](crate::input)): memory
//!   is bounded by `--concurrency`, not by the input's size. A regular file
//!   is checked whole before anything is sent; a pipe's lines are checked
//!   one by one, and a bad one stops the batch (nothing sent for it or
//!   after it, the calls started before it finish), exit 2. So does a line
//!   whose arguments the SDK refuses before sending.
//! - `--concurrency` calls share one client, so the rate-limit gate paces
//!   all of them together (`--rate`, or adaptively after the first 429).
//!   At most that many items are started and not yet printed: a slow item
//!   holds up the ones after it rather than letting finished ones pile up.
//! - stdout gets one JSON line per item, in input order, as soon as the item
//!   and every one before it are final: `{"index": I, "data": ...}` when the
//!   API answered 2xx (a list: the page's items; with `--all`, every
//!   page's), else `{"index": I, "error": {"kind", "status",
//!   "message"}}`. `index` counts non-blank lines from 0.
//! - stderr gets a progress bar while it is a terminal (cleared while a
//!   line is printed, so none is left behind), and a summary.
//! - SIGINT (Ctrl-C), SIGTERM or SIGHUP: no new call starts; calls waiting
//!   (in the rate-limit gate, or to retry) are dropped, nothing more is
//!   sent, and they are printed as `not_sent` (or `interrupted` when an
//!   earlier attempt went out); calls with a request out finish and are
//!   printed. Exit 128 + the signal's number (130, 143, 129). A second
//!   signal abandons the calls still out (`interrupted`).

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use conduit_sdk::{Client, Error};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};

use crate::action::{Action, Args, Prepared, Sent};
use crate::commands::Call as Invoked;
use crate::input::{Input, Parameters};
use crate::json_text;
use crate::report::{self, Outcome};
use crate::warnings::Sending;

pub async fn run(client: Client, invoked: Invoked) -> ExitCode {
    let Some(args) = invoked.batch else {
        return report::usage_error("--batch is required");
    };
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(e) => {
            say(&format!("error: cannot handle signals: {e}"));
            return ExitCode::from(1);
        }
    };
    let mut input = match Input::open(args.input.as_deref()) {
        Ok(input) => input,
        Err(message) => return report::usage_error(&message),
    };
    if input.total() == Some(0) {
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    let window = usize::from(args.concurrency);
    let call = CallMaker {
        client: client.clone(),
        action: invoked.action,
        base: Arc::new(invoked.args),
        lines_are_parameters: args.lines_are_parameters,
        all: invoked.all,
    };
    let mut progress: Option<ProgressBar> = None;
    let mut results = Results::default();
    let mut running = FuturesUnordered::new();
    let stopping = Arc::new(AtomicBool::new(false));
    let mut next_index = 0;
    let mut input_open = true;
    let mut bad_line = None;
    let mut stopped_by: Option<Stop> = None;
    loop {
        if running.is_empty() && (!input_open || stopping.load(Ordering::Acquire)) {
            break;
        }
        let room = next_index - results.printed < window;
        tokio::select! {
            item = input.items.recv(), if input_open && room && !stopping.load(Ordering::Acquire) => {
                match item {
                    Some(Ok(parameters)) => {
                        running.push(Tracked::new(
                            next_index,
                            call.make(parameters),
                            stopping.clone(),
                        ));
                        next_index += 1;
                    }
                    Some(Err(message)) => {
                        // Nothing for this line or after it; the calls
                        // started before it are valid and finish.
                        bad_line = Some(message);
                        input_open = false;
                    }
                    None => input_open = false,
                }
            }
            Some((index, ending)) = running.next() => {
                if let Ending::Done(result) = &ending
                    && let Err(refused) = &**result
                    && let Some(why) = refused.usage()
                {
                    // Refused before sending: the command line's arguments
                    // go with every line, and a bad line is a bad input.
                    if let Some(bar) = &progress {
                        bar.finish_and_clear();
                    }
                    return report::usage_error(&format!("input item {index}: {why}"));
                }
                results.add(index, ending);
                let bar = progress.get_or_insert_with(|| progress_bar(input.total()));
                if let Err(e) = bar.suspend(|| results.print_ready()) {
                    bar.finish_and_clear();
                    say(&format!("error: stdout: {e}"));
                    return stopped_by.map_or(ExitCode::from(1), Stop::exit_code);
                }
                if let (Some(total), None) = (input.total(), bar.length()) {
                    bar.set_length(total as u64);
                }
                bar.set_position(results.printed as u64);
            }
            stop = signals.recv() => {
                let bar = progress.get_or_insert_with(|| progress_bar(input.total()));
                if stopped_by.is_some() {
                    bar.suspend(|| say(&format!(
                        "{}: again: abandoning the calls in flight", stop.name()
                    )));
                    for tracked in std::mem::take(&mut running) {
                        results.add(tracked.index, tracked.abandoned());
                    }
                } else {
                    stopped_by = Some(stop);
                    stopping.store(true, Ordering::Release);
                    // Every call not sending now is dropped unpolled: its
                    // wait ends here and nothing of it is sent.
                    for tracked in std::mem::take(&mut running) {
                        match tracked.stopped() {
                            Ok(sending) => running.push(sending),
                            Err((index, ending)) => results.add(index, ending),
                        }
                    }
                    bar.suspend(|| say(&format!(
                        "{}: no new calls, waiting ones dropped; finishing the {} in flight \
                         (a second signal abandons them)",
                        stop.name(),
                        running.len()
                    )));
                }
                if let Err(e) = bar.suspend(|| results.print_ready()) {
                    bar.finish_and_clear();
                    say(&format!("error: stdout: {e}"));
                    return stop.exit_code();
                }
                bar.set_position(results.printed as u64);
            }
        }
    }
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    if results.printed == 0 && stopped_by.is_none() && bad_line.is_none() {
        return ExitCode::SUCCESS;
    }
    if results.printed > 0 || stopped_by.is_some() {
        let throttled = client.rate_limiter().stats().throttled;
        say(&results.summary(input.total(), stopped_by, throttled, started.elapsed()));
    }
    if let Some(stop) = stopped_by {
        stop.exit_code()
    } else if let Some(message) = bad_line {
        report::usage_error(&message)
    } else {
        results.counts.worst.exit_code()
    }
}

/// A line on stderr; a closed terminal (SIGHUP) must not end the summary
/// in a panic.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn progress_bar(total: Option<usize>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total.map(|n| n as u64), ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{bar:40} {pos}/{len} calls, {elapsed} elapsed, eta {eta}"
    } else {
        "{pos} calls, {elapsed} elapsed"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Makes one item's call.
struct CallMaker {
    client: Client,
    action: &'static Action,
    /// The command line's arguments, under each line's.
    base: Arc<Args>,
    lines_are_parameters: bool,
    all: bool,
}

/// Why a call ended without an answer to print as data.
enum Failure {
    /// The line's arguments do not fit the action.
    Arguments(String),
    /// The SDK's error: refused before sending, or the API's answer.
    Call(Error),
}

impl Failure {
    /// The message of a usage error, if it is one.
    fn usage(&self) -> Option<String> {
        match self {
            Failure::Arguments(why) => Some(why.clone()),
            Failure::Call(e) if report::is_usage(e) => Some(e.to_string()),
            Failure::Call(_) => None,
        }
    }
}

type Call = Pin<Box<dyn Future<Output = Result<Sent, Failure>> + Send>>;

impl CallMaker {
    fn make(&self, line: Parameters) -> Call {
        let line = if self.lines_are_parameters {
            Map::from_iter([("parameters".to_owned(), Value::Object(line))])
        } else {
            line
        };
        let (client, action, args, all) = (
            self.client.clone(),
            self.action,
            self.base.under(line),
            self.all,
        );
        Box::pin(async move {
            match (action.call)(&client, args).map_err(Failure::Arguments)? {
                Prepared::One(sending) => sending.await.map_err(Failure::Call),
                Prepared::List(lister) => {
                    // The page's items (every page's with --all), as sent.
                    let mut items = Vec::new();
                    let mut cursor = None;
                    loop {
                        let page = lister.page(cursor).await.map_err(Failure::Call)?;
                        items.extend(page.items.iter().map(|i| json_text::compact(i.get())));
                        match page.next_cursor {
                            Some(next) if all && page.has_more => cursor = Some(next),
                            _ => break,
                        }
                    }
                    Ok(Sent {
                        data: format!("[{}]", items.join(",")),
                        tool_failed: None,
                    })
                }
            }
        })
    }
}

/// How an item ended.
enum Ending {
    Done(Box<Result<Sent, Failure>>),
    /// Dropped on a signal before any request of it went out.
    NotSent,
    /// Dropped on a signal while waiting to retry: an attempt went out.
    BetweenAttempts,
    /// Abandoned by a second signal with a request out.
    Abandoned,
}

/// One item's call, polled by the batch's own task, so that nothing of it
/// runs while a signal is handled.
struct Tracked {
    index: usize,
    sending: Arc<Sending>,
    call: Call,
    stopping: Arc<AtomicBool>,
}

impl Tracked {
    fn new(index: usize, call: Call, stopping: Arc<AtomicBool>) -> Self {
        Self {
            index,
            sending: Arc::default(),
            call,
            stopping,
        }
    }

    /// On the first signal: kept if a request is out, else dropped.
    fn stopped(self) -> Result<Self, (usize, Ending)> {
        if self.sending.now() {
            Ok(self)
        } else {
            Err((self.index, self.waiting_ending()))
        }
    }

    fn abandoned(self) -> Ending {
        if self.sending.now() {
            Ending::Abandoned
        } else {
            self.waiting_ending()
        }
    }

    fn waiting_ending(&self) -> Ending {
        if self.sending.ever() {
            Ending::BetweenAttempts
        } else {
            Ending::NotSent
        }
    }
}

impl Future for Tracked {
    type Output = (usize, Ending);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let stopping = this.stopping.load(Ordering::Acquire);
        if stopping && !this.sending.now() {
            return Poll::Ready((this.index, this.waiting_ending()));
        }
        let polled = this.sending.track(|| this.call.as_mut().poll(cx));
        match polled {
            Poll::Ready(result) => Poll::Ready((this.index, Ending::Done(Box::new(result)))),
            // An attempt ended and the call now waits to retry: after a
            // signal, that retry is not sent.
            Poll::Pending if stopping && !this.sending.now() => {
                Poll::Ready((this.index, this.waiting_ending()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The signals that stop a batch cleanly.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Interrupt,
    Terminate,
    Hangup,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
            Stop::Hangup => "SIGHUP",
        }
    }

    /// 128 + the signal's number, as a shell reports a process the signal
    /// ended: the caller can tell the batch did not finish, and why.
    fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
            Stop::Hangup => 129,
        })
    }
}

#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> Stop {
        tokio::select! {
            _ = self.interrupt.recv() => Stop::Interrupt,
            _ = self.terminate.recv() => Stop::Terminate,
            _ = self.hangup.recv() => Stop::Hangup,
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn recv(&mut self) -> Stop {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Stop::Interrupt,
            Err(_) => std::future::pending().await,
        }
    }
}

/// Final results, printed in input order.
#[derive(Default)]
struct Results {
    ready: BTreeMap<usize, String>,
    /// Lines printed, which is also the next index to print.
    printed: usize,
    counts: Counts,
}

/// Counts of outcomes, and the worst.
struct Counts {
    succeeded: usize,
    tool_failed: usize,
    errors: BTreeMap<&'static str, usize>,
    not_sent: usize,
    interrupted: usize,
    worst: Outcome,
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            succeeded: 0,
            tool_failed: 0,
            errors: BTreeMap::new(),
            not_sent: 0,
            interrupted: 0,
            worst: Outcome::Succeeded,
        }
    }
}

impl Results {
    fn add(&mut self, index: usize, ending: Ending) {
        let counts = &mut self.counts;
        let not_final = |kind: &str, message: &str| {
            json!({ "index": index, "error": {
                "kind": kind,
                "status": null,
                "message": message,
            }})
            .to_string()
        };
        let line = match ending {
            Ending::Done(result) => match *result {
                Ok(sent) => {
                    // As sent: numbers keep their spelling.
                    let data = match json_text::compact(&sent.data) {
                        empty if empty.is_empty() => "null".to_owned(),
                        data => data,
                    };
                    let outcome = if sent.tool_failed.is_none() {
                        counts.succeeded += 1;
                        Outcome::Succeeded
                    } else {
                        counts.tool_failed += 1;
                        Outcome::ToolFailed
                    };
                    counts.worst = counts.worst.max(outcome);
                    format!(r#"{{"index":{index},"data":{data}}}"#)
                }
                // Usage errors end the batch before they are printed.
                Err(Failure::Arguments(why)) => not_final("invalid_input", &why),
                Err(Failure::Call(e)) => {
                    *counts.errors.entry(e.kind().as_str()).or_default() += 1;
                    counts.worst = counts.worst.max(Outcome::of_error(&e));
                    let message = report::refused_locally(&e).unwrap_or_else(|| e.to_string());
                    json!({ "index": index, "error": {
                        "kind": e.kind().as_str(),
                        "status": e.status().map(|s| s.as_u16()),
                        "message": message,
                    }})
                    .to_string()
                }
            },
            Ending::NotSent => {
                counts.not_sent += 1;
                not_final("not_sent", "stopped by a signal before it was sent")
            }
            Ending::BetweenAttempts => {
                counts.interrupted += 1;
                not_final(
                    "interrupted",
                    "stopped by a signal while waiting to retry; an earlier attempt was sent",
                )
            }
            Ending::Abandoned => {
                counts.interrupted += 1;
                not_final(
                    "interrupted",
                    "abandoned by a second signal with its request out: it may have run",
                )
            }
        };
        self.ready.insert(index, line);
    }

    /// Prints every result whose predecessors are all printed.
    fn print_ready(&mut self) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        while let Some(line) = self.ready.remove(&self.printed) {
            writeln!(out, "{line}")?;
            self.printed += 1;
        }
        out.flush()
    }

    fn summary(
        &self,
        total: Option<usize>,
        stopped_by: Option<Stop>,
        throttled: u64,
        elapsed: std::time::Duration,
    ) -> String {
        let w = &self.counts;
        let failed: usize = w.errors.values().sum();
        let done = self.printed;
        let of = match total {
            Some(total) => format!("{done} of {total} items"),
            None => format!("{done} items (the input was not read to its end)"),
        };
        let mut text = format!(
            "batch: {of} in {:.1} s: {} succeeded, {} tool failures, {failed} errors",
            elapsed.as_secs_f64(),
            w.succeeded,
            w.tool_failed,
        );
        if failed > 0 {
            let kinds: Vec<String> = w.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            text.push_str(&format!(" ({})", kinds.join(", ")));
        }
        if let Some(stop) = stopped_by {
            text.push_str(&format!(
                "; stopped by {}: {} not sent, {} interrupted",
                stop.name(),
                w.not_sent,
                w.interrupted
            ));
        }
        text.push_str(&format!("; 429s seen: {throttled}"));
        text
    }
}
