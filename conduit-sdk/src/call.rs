//! Running any raw operation with the SDK's error mapping.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use progenitor_client::{Error as RawError, ResponseValue};
use reqwest::header::HeaderMap;
use serde::Serialize;

use crate::error::from_raw;
use crate::gate::Partition;
use crate::middleware::{CALL, CallState};
use crate::{Client, Error, ErrorKind};

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
        self.call_with(None, false, f).await.map(|(value, _)| value)
    }

    /// [`call`](Self::call) in the gate partition `partition` (the client's
    /// default when `None`), also returning the final response's body as
    /// sent and its headers when `keep_body` (a 2xx only; the headers are
    /// then not in the `ResponseValue`).
    pub(crate) async fn call_with<'a, T, E, F, Fut>(
        &'a self,
        partition: Option<Arc<Partition>>,
        keep_body: bool,
        f: F,
    ) -> Result<(ResponseValue<T>, Option<(Bytes, HeaderMap)>), Error>
    where
        F: FnOnce(&'a conduit_api_gen::Client) -> Fut,
        Fut: Future<Output = Result<ResponseValue<T>, RawError<E>>>,
        E: Serialize,
    {
        let state = Arc::new(CallState::new(partition, keep_body));
        // The error mapping may read the rest of an error body: it runs
        // inside the total timeout too, so every byte read for a call is.
        let call = async {
            // The error is moved out before the mapping is awaited: awaited
            // inside the match, the whole result would be kept beside it.
            let e = match CALL.scope(state.clone(), f(self.raw())).await {
                Ok(value) => {
                    // Headers are taken whenever the body is kept; a body
                    // the decoding did not read is empty.
                    let kept = state
                        .take_headers()
                        .map(|headers| (state.take_body().unwrap_or_default(), headers));
                    return Ok((value, kept));
                }
                Err(e) => e,
            };
            Err(from_raw(e, &state, self.redactor(), self.system_time()).await)
        };
        match self.total_timeout() {
            None => call.await,
            Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                Err(Error::new(ErrorKind::Timeout)
                    .with_message(format!("no response within {limit:?}"))
                    .with_request_id(state.request_id())
                    .with_attempts(state.attempts())
                    .with_waited(state.waited())
                    .with_operation(state.operation()))
            }),
        }
    }
}
