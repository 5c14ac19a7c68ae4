//! Running any raw operation with the SDK's error mapping.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::Either;
use progenitor_client::{Error as RawError, ResponseValue};
use reqwest::header::HeaderMap;
use serde::Serialize;
use tokio::time::Instant;

use crate::error::from_raw;
use crate::middleware::{CALL, CallState, Learned};
use crate::{Client, Error, ErrorKind};

/// A call that succeeded, with what it took.
pub(crate) struct Called<T> {
    pub(crate) value: ResponseValue<T>,
    /// The body as sent and the headers, when asked for.
    pub(crate) kept: Option<(Bytes, HeaderMap)>,
    /// Requests sent.
    pub(crate) attempts: u32,
    /// Time spent waiting: in the gate and between attempts.
    pub(crate) waited: Duration,
}

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
        self.call_with(false, f).await.map(|called| called.value)
    }

    /// [`call`](Self::call), also returning the final response's body as
    /// sent and its headers when `keep_body` (a 2xx only; the headers are
    /// then not in the `ResponseValue`).
    pub(crate) async fn call_with<'a, T, E, F, Fut>(
        &'a self,
        keep_body: bool,
        f: F,
    ) -> Result<Called<T>, Error>
    where
        F: FnOnce(&'a conduit_api_gen::Client) -> Fut,
        Fut: Future<Output = Result<ResponseValue<T>, RawError<E>>>,
        E: Serialize,
    {
        let deadline = self
            .total_timeout()
            .map(|limit| (Instant::now() + limit, limit));
        let timed_out = |learned: &Learned, limit: Duration| {
            Error::new(ErrorKind::Timeout)
                .with_message(format!("no response within {limit:?}"))
                .with_learned(learned)
        };
        // The call, in a block of its own: its future is gone before the
        // error mapping's is made, so the two share space in this one.
        let (e, learned) = {
            // The state lives in the scope, which hands it back when done:
            // no allocation, lock or atomic per call.
            let mut scoped = pin!(CALL.scope(CallState::new(keep_body), f(self.raw())));
            // One await, so that the call's future is live across a single
            // suspension point and can share space with the mapping's.
            let waited = match deadline {
                None => Either::Left(scoped.as_mut().map(Ok)),
                Some((at, _)) => Either::Right(tokio::time::timeout_at(at, scoped.as_mut())),
            };
            let waited = waited.await;
            let state = scoped.take_value().unwrap_or_default();
            match waited {
                // Only the deadline cuts a call short.
                Err(_) => {
                    let limit = deadline.map_or(Duration::ZERO, |(_, limit)| limit);
                    return Err(timed_out(&state.take_learned(), limit));
                }
                // Headers are taken whenever the body is kept; a body the
                // decoding did not read is empty.
                Ok(Ok(value)) => {
                    let kept = state.take_kept();
                    let learned = state.take_learned();
                    return Ok(Called {
                        value,
                        kept,
                        attempts: learned.attempts,
                        waited: learned.waited,
                    });
                }
                // Read out of the state, which must not be held across an
                // await (it is not `Sync`).
                Ok(Err(e)) => (e, state.take_learned()),
            }
        };
        // The error mapping may read the rest of an error body: it runs
        // inside the total timeout too, so every byte read for a call is.
        let mapping = from_raw(e, &learned, self.redactor(), self.system_time());
        Err(match deadline {
            None => mapping.await,
            Some((at, limit)) => tokio::time::timeout_at(at, mapping)
                .await
                .unwrap_or_else(|_| timed_out(&learned, limit)),
        })
    }
}
