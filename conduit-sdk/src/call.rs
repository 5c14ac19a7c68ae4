//! Running any raw operation with the SDK's error mapping.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use progenitor_client::{Error as RawError, ResponseValue};
use serde::Serialize;

use crate::gate::Partition;
use crate::middleware::{CALL, CallState};
use crate::{Client, Error, ErrorKind, retry};

/// How much of an unexpected response body is read before giving up on it.
const UNEXPECTED_BODY_LIMIT: usize = 64 * 1024;

impl Client {
    /// Runs one operation of the raw client with this client's auth, retries,
    /// tracing and timeouts, mapping its failure to [`Error`].
    ///
    /// This is how operations without a hand-written wrapper are called,
    /// including ones added to the spec after this crate was written.
    ///
    /// ```no_run
    /// # async fn demo(client: conduit_sdk::Client) -> Result<(), conduit_sdk::Error> {
    /// let run = client
    ///     .call(|raw| raw.run_custom_tool().id("kg77c0dy0mgdpzmqz6tesry8w184002s").send())
    ///     .await?;
    /// assert_eq!(run.status(), 200);
    /// # Ok(()) }
    /// ```
    pub async fn call<'a, T, E, F, Fut>(&'a self, f: F) -> Result<ResponseValue<T>, Error>
    where
        F: FnOnce(&'a conduit_api_gen::Client) -> Fut,
        Fut: Future<Output = Result<ResponseValue<T>, RawError<E>>>,
        E: Serialize,
    {
        self.call_in(None, f).await
    }

    /// [`call`](Self::call) in the gate partition `partition` (the client's
    /// default when `None`).
    pub(crate) async fn call_in<'a, T, E, F, Fut>(
        &'a self,
        partition: Option<Arc<Partition>>,
        f: F,
    ) -> Result<ResponseValue<T>, Error>
    where
        F: FnOnce(&'a conduit_api_gen::Client) -> Fut,
        Fut: Future<Output = Result<ResponseValue<T>, RawError<E>>>,
        E: Serialize,
    {
        let state = Arc::new(CallState::in_partition(partition));
        let call = CALL.scope(state.clone(), f(self.raw()));
        let result = match self.total_timeout() {
            None => call.await,
            Some(limit) => match tokio::time::timeout(limit, call).await {
                Ok(result) => result,
                Err(_) => {
                    return Err(Error::new(ErrorKind::Timeout)
                        .with_message(format!("no response within {limit:?}"))
                        .with_attempts(state.attempts())
                        .with_waited(state.waited())
                        .with_operation(state.operation()));
                }
            },
        };
        match result {
            Ok(value) => Ok(value),
            Err(e) => Err(map_error(e, &state, self.system_time()).await),
        }
    }
}

/// Maps progenitor's error, using what the middleware saw of the call.
async fn map_error<E: Serialize>(error: RawError<E>, state: &CallState, now: SystemTime) -> Error {
    if let Some(left) = state.refused() {
        // The gate's stand-in 429: nothing was sent this time.
        return Error::new(ErrorKind::RateLimited)
            .with_message(format!(
                "not sent: the workspace's rate-limit cooldown has {left:.0?} left, more than max_wait"
            ))
            .with_retry_after(Some(left))
            .with_attempts(state.attempts())
            .with_waited(state.waited())
            .with_operation(state.operation());
    }
    let mapped = match error {
        RawError::InvalidRequest(message) => Error::invalid_input(message),
        RawError::CommunicationError(e) | RawError::InvalidUpgrade(e) => transport(e),
        RawError::ResponseBodyError(e) if exceeds_limit(&e) => {
            let message = "the response body exceeds max_response_bytes and was not read";
            match state.last_status() {
                Some(status) if !status.is_success() => Error::for_status(status)
                    .with_retry_after(state.retry_after())
                    .with_message(message),
                status => Error::new(ErrorKind::Decode)
                    .with_status(status)
                    .with_message(message),
            }
            .with_source(e)
        }
        RawError::ResponseBodyError(e) => transport(e)
            .with_status(state.last_status())
            .with_message("the response body could not be read"),
        RawError::ErrorResponse(value) => {
            let status = value.status();
            let retry_after = retry::retry_after(value.headers(), now);
            let api_message = serde_json::to_value(value.into_inner())
                .ok()
                .and_then(|v| Some(v.get("error")?.as_str()?.to_owned()));
            Error::for_status(status)
                .with_api_message(api_message)
                .with_retry_after(retry_after)
        }
        RawError::InvalidResponsePayload(body, e) => match state.last_status() {
            // A documented error status whose body is not the documented
            // shape (an HTML page from a proxy, say) is still that status.
            Some(status) if !status.is_success() => Error::for_status(status)
                .with_retry_after(state.retry_after())
                .with_body(&body)
                .with_source(e),
            status => Error::new(ErrorKind::Decode)
                .with_status(status)
                .with_message(format!(
                    "the body does not match the documented schema: {e}"
                ))
                .with_body(&body)
                .with_source(e),
        },
        RawError::UnexpectedResponse(response) => unexpected(response, now).await,
        RawError::Custom(message) => Error::new(ErrorKind::Transport).with_message(message),
    };
    let retry_after = if mapped.kind() == ErrorKind::RateLimited {
        state.retry_after()
    } else {
        None
    };
    mapped
        .with_attempts(state.attempts())
        .with_waited(state.waited())
        .with_operation(state.operation())
        .with_retry_after(retry_after)
}

fn exceeds_limit(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

pub(crate) fn transport(e: reqwest::Error) -> Error {
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
async fn unexpected(mut response: reqwest::Response, now: SystemTime) -> Error {
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
    let api_message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| Some(v.get("error")?.as_str()?.to_owned()));
    let mut error = Error::for_status(status).with_retry_after(retry_after);
    if status.is_redirection()
        && let Some(to) = response.headers().get(reqwest::header::LOCATION)
    {
        let to = String::from_utf8_lossy(to.as_bytes()).into_owned();
        error = error.with_message(format!("not following a redirect to another origin: {to}"));
    }
    match api_message {
        Some(m) => error.with_api_message(Some(m)),
        None => error.with_body(&body),
    }
}
