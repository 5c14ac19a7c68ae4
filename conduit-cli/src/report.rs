//! Exit statuses and what goes to stderr.

use std::process::ExitCode;

use conduit_sdk::{Error, ErrorKind, ToolFailure};

const USAGE: &str = "Usage: conduit [OPTIONS] <GROUP> <ACTION> [ARGS]...\n\n\
                     For more information, try 'conduit --help' or 'conduit <GROUP> <ACTION> --help'.";

/// The outcome of one call, worst last: the order picks a batch's exit
/// status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// The call succeeded (a tool's run: and the tool too).
    Succeeded,
    /// A custom tool ran and its code failed (`success: false`).
    ToolFailed,
    /// The API answered with an error (or a body that did not decode).
    ApiError,
    /// No answer: connection failure or timeout.
    NoAnswer,
}

impl Outcome {
    pub fn of_error(e: &Error) -> Self {
        if e.is_transport() {
            Outcome::NoAnswer
        } else {
            Outcome::ApiError
        }
    }

    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Outcome::Succeeded => 0,
            Outcome::ToolFailed => 1,
            Outcome::ApiError => 3,
            Outcome::NoAnswer => 4,
        })
    }
}

/// A usage or configuration error: message and usage on stderr, exit 2.
pub fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

/// Whether the SDK refused the call before sending: bad input or
/// configuration, a usage error.
pub fn is_usage(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Config | ErrorKind::InvalidInput)
}

/// A tool that ran and failed: why on stderr, exit 1. Its text is server
/// text: escaped, the token masked.
pub fn tool_failed(failure: &ToolFailure) -> ExitCode {
    // Shown safely by the SDK: escaped, the token masked, bounded.
    eprintln!("error: tool failed: {}", failure.message());
    if let Some(logs) = failure.logs().filter(|l| !l.trim().is_empty()) {
        eprintln!("tool logs:\n{logs}");
    }
    Outcome::ToolFailed.exit_code()
}

/// Prints an error on stderr and picks the exit status.
pub fn error(e: &Error) -> ExitCode {
    if is_usage(e) {
        return usage_error(&e.to_string());
    }
    let outcome = Outcome::of_error(e);
    match outcome {
        Outcome::NoAnswer => eprintln!("error: {}", with_sources(e)),
        // Rate limited by the SDK's own gate: no request, no server answer.
        _ if e.is_refused_locally() => {
            eprintln!("error: {}", refused_locally(e).unwrap_or_default());
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
        }
    }
    if let Some(id) = e.request_id() {
        eprintln!("request id: {id}");
    }
    outcome.exit_code()
}

/// Why the SDK's rate-limit gate ended a call without sending it, if it
/// did: not the server's refusal, and nothing reached the server.
pub fn refused_locally(e: &Error) -> Option<String> {
    if !e.is_refused_locally() {
        return None;
    }
    let why = match e.retry_after() {
        Some(left) => format!(
            "still holds this workspace for {:.1} s after a 429",
            left.as_secs_f64()
        ),
        None => "would not give this call its turn".to_owned(),
    };
    Some(format!(
        "rate limited: refused locally, nothing sent: the rate-limit gate {why}, \
         longer than a call may wait"
    ))
}

/// The error followed by its sources, `: `-separated.
pub fn with_sources(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
