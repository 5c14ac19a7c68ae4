//! Custom code tools.

mod tool_run;

use std::borrow::Cow;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use conduit_api_gen::types::RunCustomToolBody;
use serde::Serialize;
use serde_json::{Map, Value};

pub use tool_run::ToolRun;

use crate::params;
use crate::{CallOptions, Client, Error};

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
    pub fn run(&self, tool_id: impl Into<Cow<'a, str>>) -> RunTool<'a> {
        RunTool {
            client: self.client,
            tool_id: tool_id.into(),
            parameters: Ok(Map::new()),
            workspace_id: None,
            options: None,
        }
    }
}

/// A pending custom tool run; `.send().await` (or `.await`) runs it.
#[derive(Debug)]
#[must_use = "a RunTool does nothing until sent"]
pub struct RunTool<'a> {
    client: &'a Client,
    tool_id: Cow<'a, str>,
    parameters: Result<Map<String, Value>, String>,
    workspace_id: Option<String>,
    options: Option<CallOptions>,
}

impl<'a> RunTool<'a> {
    /// All parameters at once, from any value that serializes to a JSON
    /// object (a struct, a map, `json!({...})`). Replaces earlier ones.
    /// A float that is NaN or infinite anywhere in them is refused when
    /// sent (JSON cannot carry it; `serde_json` would send `null`).
    pub fn parameters<T: Serialize + ?Sized>(mut self, parameters: &T) -> Self {
        self.parameters = match params::to_json(parameters, params::Root::Parameters) {
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
            match params::to_json(&value, params::Root::Parameter(&key)) {
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

    /// Overrides the client's settings for this call only (timeouts,
    /// retries, extra headers such as an `Idempotency-Key`).
    ///
    /// ```no_run
    /// # async fn demo(client: conduit_sdk::Client) -> Result<(), conduit_sdk::Error> {
    /// use conduit_sdk::CallOptions;
    ///
    /// let run = client
    ///     .custom_tools()
    ///     .run("kg77c0dy0mgdpzmqz6tesry8w184002s")
    ///     .options(CallOptions::new().header("Idempotency-Key", "refund-4711"))
    ///     .send()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// Sends the request. Invalid input fails here, before anything is sent.
    // A plain fn: the checks run now, and the future keeps only what the
    // call needs (an async fn would keep this builder twice, and the
    // future is moved into the caller's: its size is paid per call).
    #[allow(clippy::manual_async_fn, reason = "see above")]
    pub fn send(self) -> impl Future<Output = Result<ToolRun, Error>> + Send + 'a {
        let checked = self.check();
        async move {
            let Checked {
                client,
                tool_id,
                body,
            } = checked?;
            let called = client
                .call_with(true, |raw| {
                    raw.run_custom_tool().id(&*tool_id).body(body).send()
                })
                .await?;
            let response = called.value;
            let status = response.status();
            let (body, headers) = called
                .kept
                .unwrap_or_else(|| (Default::default(), response.headers().clone()));
            Ok(ToolRun::new(
                response.into_inner().data,
                status,
                headers,
                body,
                client.redactor().clone(),
            )
            .with_effort(called.attempts, called.waited))
        }
    }

    /// The input checked, and the client with the call's options.
    fn check(self) -> Result<Checked<'a>, Error> {
        check_id("tool id", &self.tool_id)?;
        let parameters = self.parameters.map_err(Error::invalid_input)?;
        if let Some(ws) = &self.workspace_id {
            check_id("workspace id", ws)?;
        }
        let workspace_id = self
            .workspace_id
            .or_else(|| self.client.workspace_id().map(str::to_owned));
        let client = match self.options {
            Some(options) => Cow::Owned(self.client.with_options(options)),
            None => Cow::Borrowed(self.client),
        };
        Ok(Checked {
            client,
            tool_id: self.tool_id,
            body: RunCustomToolBody {
                parameters,
                workspace_id,
            },
        })
    }
}

/// What [`RunTool::send`] keeps across the call.
struct Checked<'a> {
    client: Cow<'a, Client>,
    tool_id: Cow<'a, str>,
    body: RunCustomToolBody,
}

/// An id as sent: not empty, not padded, no control characters, not over
/// [`MAX_TOOL_ID_LEN`] characters. Messages never quote it whole.
fn check_id<'a>(what: &str, id: &'a str) -> Result<&'a str, Error> {
    // Real ids are short visible ASCII: settled in one pass.
    if !id.is_empty() && id.len() <= MAX_TOOL_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(id);
    }
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
