//! A request being built by one of the generated builders: its path
//! parameters, query and body as set, checked as they are set, and sent
//! through [`Client::invoke`](crate::Client).

use std::borrow::Cow;
use std::fmt::Display;

use conduit_api_gen::Operation;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::middleware::Scope;
use crate::response::Reply;
use crate::{CallOptions, Client, Error, params};

/// The longest path parameter (an id) sent, in characters. Real ids are
/// about 32; a longer one is a mistake (a pasted document, a path),
/// refused before sending.
pub const MAX_ID_LEN: usize = 256;

/// Where an operation takes `workspace_id`, which the client's default
/// fills when the call gives none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workspace {
    /// The operation targets no workspace: it counts against the token.
    None,
    /// A query parameter.
    Query,
    /// A field of the JSON body.
    Body,
    /// Neither, but the operation acts in a workspace Conduit finds by a
    /// path parameter: it counts against the workspace the path names
    /// (`/v1/workspaces/{id}/..`), else the client's partition.
    Implied,
}

/// One request as the caller builds it.
#[derive(Debug, Clone)]
pub(crate) struct Request<'a> {
    client: &'a Client,
    op: &'static Operation,
    workspace: Workspace,
    path: Vec<(&'static str, String)>,
    query: Vec<(&'static str, String)>,
    /// The body's fields as set; `None` for an operation without a body.
    body: Option<Map<String, Value>>,
    options: Option<CallOptions>,
    /// The query parameters the operation requires.
    required: &'static [&'static str],
    /// The first input refused, reported when sent.
    invalid: Option<String>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(
        client: &'a Client,
        op: &'static Operation,
        workspace: Workspace,
        has_body: bool,
    ) -> Self {
        Self {
            client,
            op,
            workspace,
            path: Vec::new(),
            query: Vec::new(),
            body: has_body.then(Map::new),
            options: None,
            required: &[],
            invalid: None,
        }
    }

    /// The query parameters the operation requires, checked when sent.
    pub(crate) fn requires(mut self, names: &'static [&'static str]) -> Self {
        self.required = names;
        self
    }

    fn refuse(&mut self, why: String) {
        self.invalid.get_or_insert(why);
    }

    /// A path parameter: an id, checked as [`check_id`] says.
    pub(crate) fn path(mut self, name: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        if let Err(e) = check_id(name, &value) {
            self.refuse(e);
        }
        self.path.push((name, value));
        self
    }

    /// A query parameter, converted to its documented type (one of the
    /// `allowed` values of an enum) and sent as that type's text.
    pub(crate) fn query<T, V>(mut self, name: &'static str, value: V, allowed: &[&str]) -> Self
    where
        V: TryInto<T>,
        V::Error: Display,
        T: Display,
    {
        match value.try_into() {
            Ok(value) => {
                self.query.retain(|(n, _)| *n != name);
                self.query.push((name, value.to_string()));
            }
            Err(e) => self.refuse(not_converted(name, e, allowed)),
        }
        self
    }

    /// An integer query parameter, within its documented range.
    pub(crate) fn query_int<V>(
        self,
        name: &'static str,
        value: V,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Self
    where
        V: TryInto<i64>,
        V::Error: Display,
    {
        match in_range(value, min, max) {
            Ok(v) => self.query::<i64, i64>(name, v, &[]),
            Err(e) => self.refused(format!("{name}: {e}")),
        }
    }

    /// A body field, converted to its documented type and kept as JSON.
    pub(crate) fn field<T, V>(mut self, name: &'static str, value: V, allowed: &[&str]) -> Self
    where
        V: TryInto<T>,
        V::Error: Display,
        T: Serialize,
    {
        match value.try_into() {
            Ok(value) => self = self.json(name, &value),
            Err(e) => self.refuse(not_converted(name, e, allowed)),
        }
        self
    }

    /// An integer body field, within its documented range.
    pub(crate) fn field_int<V>(
        self,
        name: &'static str,
        value: V,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Self
    where
        V: TryInto<i64>,
        V::Error: Display,
    {
        match in_range(value, min, max) {
            Ok(v) => self.json(name, &v),
            Err(e) => self.refused(format!("{name}: {e}")),
        }
    }

    /// A body field from anything that serializes (a struct, a map,
    /// `json!`). NaN and infinite floats are refused: JSON cannot carry
    /// them.
    pub(crate) fn json<T: Serialize + ?Sized>(mut self, name: &str, value: &T) -> Self {
        match params::to_json(value, params::Root::Field(name)) {
            Ok(value) => match &mut self.body {
                Some(body) => {
                    body.insert(name.to_owned(), value);
                }
                None => self.refuse(format!("{} takes no body", self.op.operation_id)),
            },
            Err(e) => self.refuse(e),
        }
        self
    }

    /// The whole body, replacing fields set before.
    pub(crate) fn body<T: Serialize>(mut self, body: &T) -> Self {
        match params::to_json(body, params::Root::Body) {
            Ok(Value::Object(map)) => self.body = Some(map),
            Ok(_) => self.refuse("the body must serialize to a JSON object".to_owned()),
            Err(e) => self.refuse(e),
        }
        self
    }

    /// Sets `key` in the object body field `field`, keeping its other
    /// entries.
    pub(crate) fn with_field_entry(mut self, field: &str, key: String, value: Value) -> Self {
        let op = self.op.operation_id;
        let Some(body) = &mut self.body else {
            return self.refused(format!("{op} takes no body"));
        };
        match body
            .entry(field)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            Value::Object(map) => {
                map.insert(key, value);
            }
            _ => self.refuse(format!("{field} is not an object")),
        }
        self
    }

    /// Refuses the request with `why` when sent.
    pub(crate) fn refused(mut self, why: String) -> Self {
        self.refuse(why);
        self
    }

    pub(crate) fn options(mut self, options: CallOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// Checks what was set, fills the default workspace, and sends; the
    /// body must decode as `B`, the operation's documented body.
    pub(crate) async fn send<B: DeserializeOwned>(self) -> Result<Reply, Error> {
        let (client, request, op, scope) = self.build::<B>()?;
        client.invoke(op, request, scope).await
    }

    /// The request as it will be sent, and the client (with the call's
    /// options) that sends it.
    #[allow(clippy::type_complexity)]
    fn build<B: DeserializeOwned>(
        mut self,
    ) -> Result<(Cow<'a, Client>, reqwest::Request, &'static Operation, Scope), Error> {
        let default = self.client.workspace_id().map(str::to_owned);
        match (self.workspace, default) {
            (Workspace::Query, Some(ws))
                if !self.query.iter().any(|(n, _)| *n == "workspace_id") =>
            {
                self.query.push(("workspace_id", ws));
            }
            (Workspace::Body, Some(ws)) => {
                if let Some(body) = &mut self.body {
                    body.entry("workspace_id").or_insert(Value::String(ws));
                }
            }
            _ => {}
        }
        if let Some(missing) = self
            .required
            .iter()
            .find(|name| !self.query.iter().any(|(n, _)| n == *name))
        {
            let hint = if *missing == "workspace_id" {
                "; set it on the call, or a default on the client"
            } else {
                ""
            };
            self.refuse(format!("{missing} is required{hint}"));
        }
        if let Some(why) = self.invalid {
            return Err(Error::invalid_input(why).with_operation(Some(self.op.rust_method)));
        }
        let in_body = self
            .body
            .as_ref()
            .and_then(|b| b.get("workspace_id")?.as_str());
        let in_query = self.query.iter().find(|(n, _)| *n == "workspace_id");
        for ws in in_query
            .map(|(_, ws)| ws.as_str())
            .into_iter()
            .chain(in_body)
        {
            check_id("workspace_id", ws).map_err(Error::invalid_input)?;
        }
        let body = match self.body {
            Some(map) => {
                let value = Value::Object(map);
                // Required fields, types and enum values, as documented.
                serde_json::from_value::<B>(value.clone()).map_err(|e| {
                    Error::invalid_input(format!("body: {e}"))
                        .with_operation(Some(self.op.rust_method))
                })?;
                Some(serde_json::to_vec(&value).map_err(|e| Error::invalid_input(e.to_string()))?)
            }
            None => None,
        };
        let mut url = self.client.base_url().clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Error::config("the base URL cannot take a path"))?;
            segments.pop_if_empty();
            for segment in self.op.path.split('/').filter(|s| !s.is_empty()) {
                match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        let value = self.path.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
                        let Some(value) = value else {
                            return Err(Error::invalid_input(format!("{name} is not set")));
                        };
                        segments.push(value);
                    }
                    None => {
                        segments.push(segment);
                    }
                }
            }
        }
        if !self.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &self.query {
                pairs.append_pair(name, value);
            }
        }
        let method = reqwest::Method::from_bytes(self.op.method.as_bytes())
            .map_err(|e| Error::invalid_input(e.to_string()))?;
        let mut request = reqwest::Request::new(method, url);
        let headers = request.headers_mut();
        headers.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        if let Some(body) = body {
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                reqwest::header::HeaderValue::from_static("application/json"),
            );
            *request.body_mut() = Some(body.into());
        }
        let scope = match self.workspace {
            Workspace::None => Scope::Token,
            _ => Scope::Workspace(Some(self.op.path)),
        };
        let client = match self.options {
            Some(options) => Cow::Owned(self.client.with_options(options)),
            None => Cow::Borrowed(self.client),
        };
        Ok((client, request, self.op, scope))
    }
}

/// Why `name`'s value was refused, naming the values an enum allows.
fn not_converted(name: &str, e: impl Display, allowed: &[&str]) -> String {
    match allowed {
        [] => format!("{name}: {e}"),
        _ => format!("{name}: {e}; one of: {}", allowed.join(", ")),
    }
}

/// `value` as an integer within `min..=max`, or why not.
fn in_range<V>(value: V, min: Option<i64>, max: Option<i64>) -> Result<i64, String>
where
    V: TryInto<i64>,
    V::Error: Display,
{
    let v = value.try_into().map_err(|e| e.to_string())?;
    match (min, max) {
        (Some(min), _) if v < min => Err(format!("{v} is below the minimum {min}")),
        (_, Some(max)) if v > max => Err(format!("{v} is above the maximum {max}")),
        _ => Ok(v),
    }
}

/// An id as sent in a path: not empty, not `.` or `..`, not padded, no
/// backslash, no control characters, not over [`MAX_ID_LEN`] characters. Messages never
/// quote it whole.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), String> {
    // Real ids are short visible ASCII: settled in one pass.
    if !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
    {
        return Ok(());
    }
    if id.trim().is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if id == "." || id == ".." {
        return Err(format!(
            "the {what} is `{id}`, which would leave its path segment"
        ));
    }
    if id.trim() != id {
        return Err(format!("the {what} has leading or trailing white space"));
    }
    if id.contains('\\') {
        return Err(format!(
            "the {what} contains a backslash, which some servers read as a path separator"
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the {what} contains a control character (U+{:04X})",
            u32::from(c)
        ));
    }
    let len = id.chars().count();
    if len > MAX_ID_LEN {
        return Err(format!(
            "the {what} is {len} characters long; the limit is {MAX_ID_LEN}"
        ));
    }
    Ok(())
}
