//! From progenitor's error to [`Error`], using what the middleware saw of
//! the call: the response-to-error mapping beside the error type, as
//! octocrab's `from_response.rs`.

use std::time::SystemTime;

use progenitor_client::Error as RawError;
use serde::Serialize;

use super::ShownSource;
use crate::gate::Refused;
use crate::middleware::Learned;
use crate::shown::Redactor;
use crate::{Error, ErrorKind, retry};

/// How much of an unexpected response body is read before giving up on it.
const UNEXPECTED_BODY_LIMIT: usize = 64 * 1024;

/// Maps progenitor's error for a call, with what the call `learned`. Server
/// text passes `redactor`; `now` dates HTTP-date `Retry-After` values.
pub(crate) async fn from_raw<E: Serialize>(
    error: RawError<E>,
    learned: &Learned,
    redactor: &Redactor,
    now: SystemTime,
) -> Error {
    if let Some(refused) = learned.refused {
        // The gate's stand-in 429: nothing was sent this time.
        let (message, left) = match refused {
            Refused::Cooldown(left) => (
                format!(
                    "not sent: the workspace's rate-limit cooldown has {left:.0?} left, \
                     longer than max_wait lets this call wait"
                ),
                Some(left),
            ),
            Refused::Turn { .. } => (
                "not sent: the workspace's turn under its rate limit did not come within \
                 max_wait"
                    .to_owned(),
                None,
            ),
        };
        return Error::new(ErrorKind::RateLimited)
            .with_message(message)
            .with_retry_after(left)
            .refused_locally()
            .with_learned(learned);
    }
    let mapped = match error {
        RawError::InvalidRequest(message) => Error::invalid_input(message),
        // Reading the body inside the hooks (to keep it as sent) fails here.
        RawError::CommunicationError(e) if e.is_body() || is_body_error(&e) => {
            body_error(e, learned)
        }
        RawError::CommunicationError(e) | RawError::InvalidUpgrade(e) => transport(e),
        RawError::ResponseBodyError(e) => body_error(e, learned),
        RawError::ErrorResponse(value) => {
            let status = value.status();
            let retry_after = retry::retry_after(value.headers(), now);
            let api_message = serde_json::to_value(value.into_inner())
                .ok()
                .and_then(|v| Some(redactor.message(v.get("error")?.as_str()?)));
            Error::for_status(status)
                .with_api_message(api_message)
                .with_retry_after(retry_after)
        }
        RawError::InvalidResponsePayload(body, e) => {
            let reason = ShownSource(redactor.message(&e.to_string()));
            match learned.last_status {
                // A documented error status whose body is not the documented
                // shape (an HTML page from a proxy, say) is still that status.
                Some(status) if !status.is_success() => Error::for_status(status)
                    .with_retry_after(learned.retry_after)
                    .with_body(redactor.snippet(&body))
                    .with_source(reason),
                status => Error::new(ErrorKind::Decode)
                    .with_status(status)
                    .with_message(format!(
                        "the body does not match the documented schema: {reason}"
                    ))
                    .with_body(redactor.snippet(&body))
                    .with_source(reason),
            }
        }
        RawError::UnexpectedResponse(response) => unexpected(response, redactor, now).await,
        RawError::Custom(message) => Error::new(ErrorKind::Transport).with_message(message),
    };
    let retry_after = if mapped.kind() == ErrorKind::RateLimited {
        learned.retry_after
    } else {
        None
    };
    mapped.with_learned(learned).with_retry_after(retry_after)
}

impl Error {
    /// What the call learned that every error of it reports: its request
    /// id, attempts, time waited and operation.
    pub(crate) fn with_learned(self, learned: &Learned) -> Self {
        self.with_request_id(learned.request_id.clone())
            .with_attempts(learned.attempts)
            .with_waited(learned.waited)
            .with_operation(learned.operation)
    }
}

/// Whether `e` is a body over the size limit or a stalled one.
fn is_body_error(e: &reqwest::Error) -> bool {
    find::<crate::body::TooLarge>(e).is_some() || find::<crate::body::Stalled>(e).is_some()
}

/// A body that could not be read to its end.
fn body_error(e: reqwest::Error, learned: &Learned) -> Error {
    if let Some(too_large) = find::<crate::body::TooLarge>(&e) {
        let message = too_large.to_string();
        return match learned.last_status {
            Some(status) if !status.is_success() => Error::for_status(status)
                .with_retry_after(learned.retry_after)
                .with_message(message),
            status => Error::new(ErrorKind::Decode)
                .with_status(status)
                .with_message(message),
        }
        .with_source(e);
    }
    if let Some(stall) = find::<crate::body::Stalled>(&e) {
        return Error::new(ErrorKind::Timeout)
            .with_status(learned.last_status)
            .with_message(stall.to_string())
            .with_source(e);
    }
    transport(e)
        .with_status(learned.last_status)
        .with_message("the response body could not be read")
}

/// The kind of a transport failure; a TLS failure says so.
pub(crate) fn transport(e: reqwest::Error) -> Error {
    if let Some(tls) = find::<rustls::Error>(&e) {
        return Error::new(ErrorKind::Tls)
            .with_message(tls.to_string())
            .with_source(e);
    }
    let kind = if e.is_connect() {
        ErrorKind::Connect
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Transport
    };
    Error::new(kind).with_source(e)
}

/// The first `T` in the error's chain, looking inside `io::Error`s too
/// (whose `source()` skips the error they wrap).
pub(crate) fn find<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && let Some(found) = find::<T>(inner)
        {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// An undocumented status: keep the server's `error` string if the body has
/// one, else a bounded snippet. Reads at most 64 KiB of the body.
async fn unexpected(
    mut response: reqwest::Response,
    redactor: &Redactor,
    now: SystemTime,
) -> Error {
    let status = response.status();
    let retry_after = retry::retry_after(response.headers(), now);
    // A 2xx body the middleware kept is already read.
    let mut body = match response
        .extensions_mut()
        .remove::<conduit_api_gen::BodyRead>()
    {
        Some(read) => read.0[..read.0.len().min(UNEXPECTED_BODY_LIMIT)].to_vec(),
        None => Vec::new(),
    };
    while body.len() < UNEXPECTED_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(UNEXPECTED_BODY_LIMIT);
    let api_message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| Some(redactor.message(v.get("error")?.as_str()?)));
    let mut error = Error::for_status(status).with_retry_after(retry_after);
    if status.is_redirection()
        && let Some(to) = response.headers().get(reqwest::header::LOCATION)
    {
        let to = redactor.message(&String::from_utf8_lossy(to.as_bytes()));
        error = error.with_message(format!("not following a redirect to another origin: {to}"));
    }
    match api_message {
        Some(m) => error.with_api_message(Some(m)),
        None => error.with_body(redactor.snippet(&body)),
    }
}
