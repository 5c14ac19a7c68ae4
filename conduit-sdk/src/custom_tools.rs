//! Custom code tools.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use conduit_api_gen::types::{RunCustomToolBody, RunCustomToolResponseData};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ShownSource;
use crate::params;
use crate::shown::Redactor;
use crate::{Client, Error, ErrorKind};

/// The longest tool id sent, in characters. Real ids are about 32; a longer
/// one is a mistake (a pasted document, a path), refused before sending.
pub const MAX_TOOL_ID_LEN: usize = 256;

/// Custom code tools: `client.custom_tools()`.
#[derive(Debug, Clone, Copy)]
pub struct CustomTools<'a> {
    client: &'a Client,
}

impl<'a> CustomTools<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Runs the tool `tool_id` as an agent would; see [`RunTool`].
    ///
    /// ```no_run
    /// # async fn demo(client: conduit_sdk::Client) -> Result<(), conduit_sdk::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Order { status: String }
    ///
    /// let run = client
    ///     .custom_tools()
    ///     .run("kg77c0dy0mgdpzmqz6tesry8w184002s")
    ///     .parameters(&serde_json::json!({ "order_id": "ord_12345" }))
    ///     .await?
    ///     .into_result()?;
    /// let order: Option<Order> = run.raw_data()?;
    /// # Ok(()) }
    /// ```
    pub fn run(&self, tool_id: impl Into<String>) -> RunTool<'a> {
        RunTool {
            client: self.client,
            tool_id: tool_id.into(),
            parameters: Ok(Map::new()),
            workspace_id: None,
        }
    }
}

/// A pending custom tool run; `.send().await` (or `.await`) runs it.
#[derive(Debug)]
#[must_use = "a RunTool does nothing until sent"]
pub struct RunTool<'a> {
    client: &'a Client,
    tool_id: String,
    parameters: Result<Map<String, Value>, String>,
    workspace_id: Option<String>,
}

impl<'a> RunTool<'a> {
    /// All parameters at once, from any value that serializes to a JSON
    /// object (a struct, a map, `json!({...})`). Replaces earlier ones.
    /// A float that is NaN or infinite anywhere in them is refused when
    /// sent (JSON cannot carry it; `serde_json` would send `null`).
    pub fn parameters<T: Serialize + ?Sized>(mut self, parameters: &T) -> Self {
        self.parameters = match params::to_json(parameters, "parameters") {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(format!(
                "parameters must serialize to a JSON object, got {}",
                json_type(&other)
            )),
            Err(e) => Err(e),
        };
        self
    }

    /// One parameter; NaN and infinite floats are refused as in
    /// [`parameters`](Self::parameters).
    pub fn parameter(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        let key = key.into();
        if let Ok(map) = &mut self.parameters {
            match params::to_json(&value, &format!("parameter {key:?}")) {
                Ok(v) => {
                    map.insert(key, v);
                }
                Err(e) => self.parameters = Err(e),
            }
        }
        self
    }

    /// Runs in this workspace instead of the client's default.
    pub fn workspace(mut self, workspace_id: impl Into<String>) -> Self {
        self.workspace_id = Some(workspace_id.into());
        self
    }

    /// Sends the request. Invalid input fails here, before anything is sent.
    pub async fn send(self) -> Result<ToolRun, Error> {
        let tool_id = check_id("tool id", &self.tool_id)?;
        let parameters = self.parameters.map_err(Error::invalid_input)?;
        if let Some(ws) = &self.workspace_id {
            check_id("workspace id", ws)?;
        }
        // A workspace other than the client's default has its own partition
        // of the rate-limit gate.
        let partition = match &self.workspace_id {
            Some(ws) if Some(ws.as_str()) != self.client.workspace_id() => {
                self.client.workspace_partition(ws)
            }
            _ => None,
        };
        let workspace_id = self
            .workspace_id
            .or_else(|| self.client.workspace_id().map(str::to_owned));
        let body = RunCustomToolBody {
            parameters,
            workspace_id,
        };
        let response = self
            .client
            .call_in(partition, |raw| {
                raw.run_custom_tool().id(tool_id).body(body).send()
            })
            .await?;
        Ok(ToolRun {
            data: response.into_inner().data,
            redactor: self.client.redactor().clone(),
        })
    }
}

/// An id as sent: not empty, not padded, no control characters, not over
/// [`MAX_TOOL_ID_LEN`] characters. Messages never quote it whole.
fn check_id<'a>(what: &str, id: &'a str) -> Result<&'a str, Error> {
    if id.trim().is_empty() {
        return Err(Error::invalid_input(format!("the {what} is empty")));
    }
    if id.trim() != id {
        return Err(Error::invalid_input(format!(
            "the {what} has leading or trailing white space"
        )));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(Error::invalid_input(format!(
            "the {what} contains a control character (U+{:04X})",
            u32::from(c)
        )));
    }
    let len = id.chars().count();
    if len > MAX_TOOL_ID_LEN {
        return Err(Error::invalid_input(format!(
            "the {what} is {len} characters long; the limit is {MAX_TOOL_ID_LEN}"
        )));
    }
    Ok(id)
}

impl<'a> IntoFuture for RunTool<'a> {
    type Output = Result<ToolRun, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The outcome of running a custom tool.
///
/// A tool whose own code failed is still a successful API call:
/// [`success`](Self::success) is false and [`error`](Self::error) says why.
/// [`into_result`](Self::into_result) turns that into an [`Error`].
#[derive(Debug, Clone)]
pub struct ToolRun {
    data: RunCustomToolResponseData,
    redactor: Redactor,
}

impl ToolRun {
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
    pub fn raw_data<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        match self.data.result.get("rawData") {
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

    /// `Ok(self)` if the tool succeeded, else a [`ErrorKind::ToolFailed`]
    /// error with the tool's error text and logs.
    pub fn into_result(self) -> Result<ToolRun, Error> {
        if self.data.success {
            return Ok(self);
        }
        let text = match &self.data.error {
            Some(text) => self.redactor.message(text),
            None => "the tool reported failure without an error message".into(),
        };
        let logs = self.data.logs.as_deref().map(|l| self.redactor.logs(l));
        Err(Error::new(ErrorKind::ToolFailed)
            .with_api_message(Some(text))
            .with_tool_logs(logs))
    }

    /// The run as the API returned it (`data` of the response).
    pub fn as_raw(&self) -> &RunCustomToolResponseData {
        &self.data
    }
}
