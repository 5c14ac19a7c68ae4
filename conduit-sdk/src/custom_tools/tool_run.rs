//! [`ToolRun`]: what running a custom tool gave, as decoded and as sent.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use conduit_api_gen::types::RunCustomToolResponseData;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ShownSource;
use crate::shown::Redactor;
use crate::{Error, ErrorKind};

/// The outcome of running a custom tool.
///
/// A tool whose own code failed is still a successful API call:
/// [`success`](Self::success) is false and [`error`](Self::error) says why.
/// [`into_result`](Self::into_result) turns that into an [`Error`].
#[derive(Clone)]
pub struct ToolRun {
    data: RunCustomToolResponseData,
    status: StatusCode,
    headers: HeaderMap,
    /// The whole response body, as sent.
    body: Bytes,
    json: OnceLock<Value>,
    redactor: Redactor,
    attempts: u32,
    waited: Duration,
}

impl ToolRun {
    pub(crate) fn new(
        data: RunCustomToolResponseData,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        redactor: Redactor,
    ) -> Self {
        Self {
            data,
            status,
            headers,
            body,
            json: OnceLock::new(),
            redactor,
            attempts: 1,
            waited: Duration::ZERO,
        }
    }

    /// With what the call took: requests sent, and time waited.
    pub(crate) fn with_effort(mut self, attempts: u32, waited: Duration) -> Self {
        self.attempts = attempts;
        self.waited = waited;
        self
    }

    /// How many requests the call sent: 1, or more after retries.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How long the call waited in all: in the rate-limit gate and between
    /// attempts.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The HTTP status of the response (200).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The id the server gave the request (`x-request-id`, or
    /// `request-id`): what a support ticket needs.
    pub fn request_id(&self) -> Option<&str> {
        self.headers
            .get("x-request-id")
            .or_else(|| self.headers.get("request-id"))
            .and_then(|v| v.to_str().ok())
    }

    /// The run's `data` object, parsed: fields this SDK does not know yet
    /// kept, keys in the server's order. Numbers are parsed, so their
    /// spelling is not kept (`842.250` reads `842.25`, an integer beyond
    /// 64 bits a float); [`data_text`](Self::data_text) has them as sent.
    ///
    /// ```
    /// # fn demo(run: conduit_sdk::ToolRun) {
    /// let data = run.json();
    /// println!("{}", serde_json::to_string_pretty(data).unwrap());
    /// # }
    /// ```
    pub fn json(&self) -> &Value {
        self.json.get_or_init(|| {
            serde_json::from_slice::<Value>(&self.body)
                .ok()
                .and_then(|mut v| v.get_mut("data").map(Value::take))
                // A run made without a body (a test fake): its decoded data.
                .unwrap_or_else(|| serde_json::to_value(&self.data).unwrap_or(Value::Null))
        })
    }

    /// The run's `data` object as JSON text, exactly as the server sent it:
    /// numbers as written (`842.250` stays `842.250`), white space and all.
    ///
    /// ```
    /// # fn demo(run: conduit_sdk::ToolRun) {
    /// let exact: serde_json::Value = serde_json::from_str(&run.data_text()).unwrap();
    /// # }
    /// ```
    pub fn data_text(&self) -> Cow<'_, str> {
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            data: &'a serde_json::value::RawValue,
        }
        match serde_json::from_slice::<Envelope<'_>>(&self.body) {
            Ok(envelope) => Cow::Borrowed(envelope.data.get()),
            // A run made without a body (a test fake): its decoded data.
            Err(_) => Cow::Owned(self.json().to_string()),
        }
    }

    /// The whole response body, as sent.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Whether the tool's code ran to completion and returned the expected shape.
    pub fn success(&self) -> bool {
        self.data.success
    }

    /// The `message` the tool returned.
    pub fn message(&self) -> Option<&str> {
        self.data.message.as_deref()
    }

    /// The full object the tool returned (`null` when it failed).
    pub fn result(&self) -> &Value {
        &self.data.result
    }

    /// Why the tool failed, when it did.
    pub fn error(&self) -> Option<&str> {
        self.data.error.as_deref()
    }

    /// What the tool printed.
    pub fn logs(&self) -> Option<&str> {
        self.data.logs.as_deref()
    }

    /// Wall-clock run time; zero if the server reported an impossible value.
    pub fn run_time(&self) -> Duration {
        Duration::try_from_secs_f64(self.data.run_time_ms / 1000.0).unwrap_or_default()
    }

    /// The run time in milliseconds, exactly as the server reported it.
    pub fn run_time_ms(&self) -> f64 {
        self.data.run_time_ms
    }

    /// `result.rawData` decoded as `T`; `None` when the tool returned none.
    /// Data of another shape is [`ErrorKind::ResultType`]: the tool returned
    /// something else than the caller expects (the API kept its schema).
    pub fn raw_data<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        match self.data.result.get("rawData") {
            None | Some(Value::Null) => Ok(None),
            Some(raw) => T::deserialize(raw).map(Some).map_err(|e| {
                // serde's message may quote the data: shown as server text.
                let reason = ShownSource(self.redactor.message(&e.to_string()));
                Error::new(ErrorKind::ResultType)
                    .with_message(format!(
                        "rawData does not decode as {}: {reason}",
                        std::any::type_name::<T>()
                    ))
                    .with_source(reason)
            }),
        }
    }

    /// `Ok(self)` if the tool succeeded, else a [`ErrorKind::ToolFailed`]
    /// error with the tool's error text and logs (shown safely), which
    /// keeps the run: [`Error::tool_run`] gives back its message, logs and
    /// run time as sent.
    pub fn into_result(self) -> Result<ToolRun, Error> {
        if self.data.success {
            return Ok(self);
        }
        let text = match &self.data.error {
            Some(text) => self.redactor.message(text),
            None => "the tool reported failure without an error message".into(),
        };
        let logs = self.data.logs.as_deref().map(|l| self.redactor.logs(l));
        let request_id = self.request_id().map(str::to_owned);
        Err(Error::new(ErrorKind::ToolFailed)
            .with_api_message(Some(text))
            .with_tool_logs(logs)
            .with_request_id(request_id)
            .with_tool_run(self))
    }

    /// The run as the API returned it (`data` of the response).
    pub fn as_raw(&self) -> &RunCustomToolResponseData {
        &self.data
    }
}

impl fmt::Debug for ToolRun {
    /// The decoded fields; the tool's own text is shown as server text is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolRun")
            .field("status", &self.status.as_u16())
            .field("success", &self.data.success)
            .field(
                "message",
                &self
                    .data
                    .message
                    .as_deref()
                    .map(|m| self.redactor.message(m)),
            )
            .field(
                "error",
                &self.data.error.as_deref().map(|m| self.redactor.message(m)),
            )
            .field("run_time_ms", &self.data.run_time_ms)
            .field("request_id", &self.request_id())
            .field("attempts", &self.attempts)
            .field("waited", &self.waited)
            .finish_non_exhaustive()
    }
}
