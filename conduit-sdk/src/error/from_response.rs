//! From a response, or the lack of one, to [`Error`]: the response-to-error
//! mapping beside the error type, as octocrab's `from_response.rs`.
//! [`from_reply`] serves the SDK's own calls, [`from_raw`] progenitor's
//! errors for [`Client::call`](crate::Client::call).

use std::time::SystemTime;

use bytes::Bytes;
use progenitor_client::Error as RawError;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Serialize;

use super::ShownSource;
use crate::learned::{Learned, NOT_SENT, Refused, request_id};
use crate::retry::find;
use crate::shown::Redactor;
use crate::{Error, ErrorKind, retry};

/// How much of an unexpected response body is read before giving up on it.
const UNEXPECTED_BODY_LIMIT: usize = 64 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error for a final response that is not a 2xx, read whole: the
/// server's `error` text when the body has one, else a bounded snippet.
pub(crate) fn from_reply(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Bytes,
    learned: &Learned,
    redactor: &Redactor,
    now: SystemTime,
) -> Error {
    let retry_after = retry::retry_after(headers, now).or(learned.retry_after);
    let api_message = server_message(serde_json::from_slice(body).ok(), redactor);
    let mut error = Error::for_status(status);
    if status == StatusCode::TOO_MANY_REQUESTS {
        error = error.with_retry_after(retry_after);
    }
    if status.is_redirection()
        && let Some(to) = headers.get(reqwest::header::LOCATION)
    {
        let to = redactor.message(&String::from_utf8_lossy(to.as_bytes()));
        error = error.with_message(format!("not following a redirect to another origin: {to}"));
    }
    match api_message {
        Some(m) => error.with_api_message(Some(m)),
        None => error.with_body(redactor.snippet(&body[..body.len().min(UNEXPECTED_BODY_LIMIT)])),
    }
}

/// The error for a call the gate would not send.
pub(crate) fn refused(why: Refused) -> Error {
    let (message, left) = match why {
        Refused::Cooldown(left) => (
            format!(
                "not sent: the workspace's rate-limit cooldown has {left:.0?} left, \
                 longer than max_wait lets this call wait"
            ),
            Some(left),
        ),
        Refused::Turn { .. } => (
            "not sent: the workspace's turn under its rate limit did not come within max_wait"
                .to_owned(),
            None,
        ),
    };
    Error::new(ErrorKind::RateLimited)
        .with_message(message)
        .with_retry_after(left)
        .refused_locally()
}

/// A body that could not be read to its end: over the size limit (the
/// response's status, if an error, else a decode error), stalled
/// (a timeout), or cut (a transport error).
pub(crate) fn body_error(e: BoxError, status: StatusCode, learned: &Learned) -> Error {
    if let Some(too_large) = find::<crate::body::TooLarge>(&*e) {
        let message = too_large.to_string();
        return if status.is_success() {
            Error::new(ErrorKind::Decode)
                .with_status(Some(status))
                .with_message(message)
        } else {
            let retry_after = (status == StatusCode::TOO_MANY_REQUESTS)
                .then_some(learned.retry_after)
                .flatten();
            Error::for_status(status)
                .with_retry_after(retry_after)
                .with_message(message)
        }
        .with_source(e);
    }
    if let Some(stall) = find::<crate::body::Stalled>(&*e) {
        return Error::new(ErrorKind::Timeout)
            .with_status(Some(status))
            .with_message(stall.to_string())
            .with_source(e);
    }
    let kind = match find::<reqwest::Error>(&*e) {
        Some(inner) if inner.is_timeout() => ErrorKind::Timeout,
        _ => ErrorKind::Transport,
    };
    Error::new(kind)
        .with_status(Some(status))
        .with_message("the response body could not be read")
        .with_source(e)
}

/// Maps progenitor's error for a raw call. The raw client's hooks hand
/// nothing back but the response, so the error carries what that shows.
pub(crate) async fn from_raw<E: Serialize>(
    error: RawError<E>,
    redactor: &Redactor,
    now: SystemTime,
) -> Error {
    match error {
        RawError::InvalidRequest(message) => Error::invalid_input(message),
        RawError::CommunicationError(e) | RawError::ResponseBodyError(e) if is_body_error(&e) => {
            let status = e.status().unwrap_or(StatusCode::OK);
            body_error(Box::new(e), status, &Learned::default())
        }
        RawError::CommunicationError(e) | RawError::InvalidUpgrade(e) => transport_error(e),
        RawError::ResponseBodyError(e) => {
            transport_error(e).with_message("the response body could not be read")
        }
        RawError::ErrorResponse(value) => {
            let status = value.status();
            let retry_after = retry::retry_after(value.headers(), now);
            match value.headers().get(NOT_SENT).map(|v| v.as_bytes()) {
                Some(b"cooldown") => {
                    return refused(Refused::Cooldown(retry_after.unwrap_or_default()));
                }
                Some(_) => {
                    return refused(Refused::Turn {
                        waited: Default::default(),
                    });
                }
                None => {}
            }
            let request_id = request_id(value.headers());
            let api_message =
                server_message(serde_json::to_value(value.into_inner()).ok(), redactor);
            let retry_after = (status == StatusCode::TOO_MANY_REQUESTS)
                .then_some(retry_after)
                .flatten();
            Error::for_status(status)
                .with_api_message(api_message)
                .with_retry_after(retry_after)
                .with_request_id(request_id)
        }
        RawError::InvalidResponsePayload(body, e) => {
            let reason = ShownSource(redactor.message(&e.to_string()));
            Error::new(ErrorKind::Decode)
                .with_message(format!(
                    "the body does not match the documented schema: {reason}"
                ))
                .with_body(redactor.snippet(&body))
                .with_source(reason)
        }
        RawError::UnexpectedResponse(response) => unexpected(response, redactor, now).await,
        RawError::Custom(message) => Error::new(ErrorKind::Transport).with_message(message),
    }
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

/// The kind of a transport failure; a TLS failure says so.
pub(crate) fn transport_error(e: reqwest::Error) -> Error {
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

/// An undocumented status: keep the server's `error` string if the body has
/// one, else a bounded snippet. Reads at most 64 KiB of the body.
async fn unexpected(
    mut response: reqwest::Response,
    redactor: &Redactor,
    now: SystemTime,
) -> Error {
    let status = response.status();
    let retry_after = retry::retry_after(response.headers(), now);
    let mut body = Vec::new();
    while body.len() < UNEXPECTED_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(UNEXPECTED_BODY_LIMIT);
    let api_message = server_message(serde_json::from_slice(&body).ok(), redactor);
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

/// The server's `error` text from a JSON error object, as shown.
fn server_message(body: Option<serde_json::Value>, redactor: &Redactor) -> Option<String> {
    Some(redactor.message(body?.get("error")?.as_str()?))
}
