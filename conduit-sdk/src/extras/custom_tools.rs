//! A custom tool's run: a tool whose own code failed is still a 200, with
//! `success: false`, and what it returned (`result.rawData`) is whatever
//! the tool's author chose. [`ToolRun`] says so in types.

use std::fmt;
use std::time::Duration;

use conduit_api_gen::types::RunCustomToolResponseData;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::RunCustomTool;
use crate::error::ShownSource;
use crate::{Error, ErrorKind, Response};

/// The outcome of running a custom tool: `client.custom_tools().run(id)`.
///
/// A tool whose own code failed is still a successful API call:
/// [`success`](Response::success) is false and [`error`](Response::error)
/// says why. [`into_result`](Response::into_result) turns that into a
/// [`ToolFailure`].
///
/// ```no_run
/// # async fn demo(client: conduit_sdk::Client) -> conduit_sdk::Result<()> {
/// #[derive(serde::Deserialize)]
/// struct Order { status: String }
///
/// let run = client
///     .custom_tools()
///     .run("kg77c0dy0mgdpzmqz6tesry8w184002s")
///     .parameter("order_id", "ord_12345")
///     .send()
///     .await?
///     .into_result()?;
/// let order: Option<Order> = run.raw_data()?;
/// # Ok(()) }
/// ```
pub type ToolRun = Response<RunCustomToolResponseData>;

impl RunCustomTool<'_> {
    /// One of the tool's parameters, added to those set before. NaN and
    /// infinite floats are refused when sent (JSON cannot carry them).
    pub fn parameter(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        let key = key.into();
        let value = crate::params::to_json(&value, crate::params::Root::Parameter(&key));
        self.request = match value {
            Ok(value) => self.request.with_field_entry("parameters", key, value),
            Err(e) => self.request.refused(e),
        };
        self
    }
}

impl Response<RunCustomToolResponseData> {
    /// Whether the tool's code ran to completion and returned the expected shape.
    pub fn success(&self) -> bool {
        self.data().success
    }

    /// The `message` the tool returned.
    pub fn message(&self) -> Option<&str> {
        self.data().message.as_deref()
    }

    /// The full object the tool returned (`null` when it failed).
    pub fn result(&self) -> &Value {
        &self.data().result
    }

    /// Why the tool failed, when it did.
    pub fn error(&self) -> Option<&str> {
        self.data().error.as_deref()
    }

    /// What the tool printed.
    pub fn logs(&self) -> Option<&str> {
        self.data().logs.as_deref()
    }

    /// Wall-clock run time; zero if the server reported an impossible value.
    pub fn run_time(&self) -> Duration {
        Duration::try_from_secs_f64(self.data().run_time_ms / 1000.0).unwrap_or_default()
    }

    /// The run time in milliseconds, exactly as the server reported it.
    pub fn run_time_ms(&self) -> f64 {
        self.data().run_time_ms
    }

    /// `result.rawData` decoded as `T`; `None` when the tool returned none.
    /// Data of another shape is [`ErrorKind::Decode`]: the tool returned
    /// something else than the caller expects (the API kept its schema).
    pub fn raw_data<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        match self.data().result.get("rawData") {
            None | Some(Value::Null) => Ok(None),
            Some(raw) => T::deserialize(raw).map(Some).map_err(|e| {
                // serde's message may quote the data: shown as server text.
                let reason = ShownSource(self.redactor.message(&e.to_string()));
                Error::new(ErrorKind::Decode)
                    .with_message(format!(
                        "rawData does not decode as {}: {reason}",
                        std::any::type_name::<T>()
                    ))
                    .with_source(reason)
            }),
        }
    }

    /// `Ok(self)` if the tool succeeded, else a [`ToolFailure`] with the
    /// tool's error text and logs (shown safely) and the run itself. `?`
    /// turns it into an [`Error`] of kind [`ErrorKind::ToolFailed`].
    pub fn into_result(self) -> Result<ToolRun, ToolFailure> {
        if self.data().success {
            return Ok(self);
        }
        let message = match &self.data().error {
            Some(text) => self.redactor.message(text),
            None => "the tool reported failure without an error message".into(),
        };
        let logs = self.data().logs.as_deref().map(|l| self.redactor.logs(l));
        Err(ToolFailure {
            message,
            logs,
            run: Box::new(self),
        })
    }
}

/// A run whose tool failed (`success: false`), from
/// [`ToolRun::into_result`]: the API call succeeded, the tool's own code
/// did not.
///
/// ```no_run
/// # async fn demo(client: conduit_sdk::Client) -> conduit_sdk::Result<()> {
/// let run = client.custom_tools().run("kg77c0dy0mgdpzmqz6tesry8w184002s").send().await?;
/// match run.into_result() {
///     Ok(run) => println!("{:?}", run.message()),
///     Err(failed) => eprintln!("{failed}\n{}", failed.logs().unwrap_or("")),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ToolFailure {
    message: String,
    logs: Option<String>,
    run: Box<ToolRun>,
}

impl ToolFailure {
    /// The tool's error text: control characters escaped, the token
    /// masked, cut after [`MESSAGE_LIMIT`](crate::shown::MESSAGE_LIMIT)
    /// bytes.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What the tool printed: lines kept, other control characters
    /// escaped, the token masked, cut after
    /// [`LOGS_LIMIT`](crate::shown::LOGS_LIMIT) bytes.
    pub fn logs(&self) -> Option<&str> {
        self.logs.as_deref()
    }

    /// The run, with its fields as the server sent them.
    pub fn run(&self) -> &ToolRun {
        &self.run
    }

    /// The run, with its fields as the server sent them.
    pub fn into_run(self) -> ToolRun {
        *self.run
    }
}

impl fmt::Display for ToolFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the tool's code failed: {}", self.message)
    }
}

impl std::error::Error for ToolFailure {}

/// The failure as an [`Error`] of kind [`ErrorKind::ToolFailed`], with the
/// tool's text as its [`api_message`](Error::api_message) and the run's
/// request id; the failure itself is its [`source`](std::error::Error::source).
impl From<ToolFailure> for Error {
    fn from(failure: ToolFailure) -> Self {
        let request_id = failure.run.request_id().map(str::to_owned);
        Error::new(ErrorKind::ToolFailed)
            .with_api_message(Some(failure.message.clone()))
            .with_request_id(request_id)
            .with_source(failure)
    }
}
