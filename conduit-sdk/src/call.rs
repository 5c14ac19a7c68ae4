//! Running an operation of the raw client with the SDK's error mapping.

use std::future::Future;

use progenitor_client::{Error as RawError, ResponseValue};
use serde::Serialize;

use crate::error::from_raw;
use crate::{Client, Error, ErrorKind};

impl Client {
    /// Runs one operation of the raw client with this client's auth, gate,
    /// retries, tracing and timeouts, mapping its failure to [`Error`].
    ///
    /// Every operation has a typed builder (`client.tickets().list()`);
    /// this is for the raw client's own types and builders. Progenitor's
    /// hooks hand back only the response, so an error from here does not
    /// report [`attempts`](Error::attempts) or time waited, and a call the
    /// gate would not send reads as the 429 the server would have given.
    ///
    /// ```no_run
    /// # async fn demo(client: conduit_sdk::Client) -> conduit_sdk::Result<()> {
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
        let run = async {
            match f(self.raw()).await {
                Ok(value) => Ok(value),
                Err(e) => Err(from_raw(e, self.redactor(), self.system_time()).await),
            }
        };
        match self.total_timeout() {
            None => run.await,
            Some(limit) => tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
                Err(Error::new(ErrorKind::Timeout)
                    .with_message(format!("no response within {limit:?}")))
            }),
        }
    }
}
