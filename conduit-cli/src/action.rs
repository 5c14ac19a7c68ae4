//! What the generated table says of each action ([`Group`], [`Action`],
//! [`Param`]), the arguments one call is given ([`Args`]), and the call
//! ready to send ([`Prepared`]).
//!
//! The generated functions move each argument into the SDK's builder
//! setter for it; the SDK checks them (enum values, ranges, ids) when sent.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use conduit_sdk::api::{Paged, RunCustomTool};
use conduit_sdk::{Client, Error, Page, Response, ToolFailure};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The actions of one group, such as `tickets`.
pub struct Group {
    /// Its name on the command line.
    pub name: &'static str,
    /// One line on what it holds.
    pub about: &'static str,
    /// Its actions, in spec order.
    pub actions: &'static [Action],
}

/// One operation of the spec as `conduit <group> <action>`.
pub struct Action {
    /// Its name on the command line, the reference's URL slug.
    pub name: &'static str,
    /// The spec's summary.
    pub summary: &'static str,
    /// The spec's description.
    pub description: &'static str,
    /// `METHOD /path`.
    pub request: &'static str,
    /// Path parameters, in path order (positional).
    pub path: &'static [Param],
    /// Query parameters (`--name`).
    pub query: &'static [Param],
    /// The body's documented fields; `None` when it takes no body.
    pub body: Option<&'static [Param]>,
    /// A cursor-paged list: `--all`, `--max-items`.
    pub list: bool,
    /// Its `KEY=VALUE` items are the tool's `parameters`.
    pub items_are_parameters: bool,
    /// Builds the SDK call from the arguments.
    pub call: for<'a> fn(&'a Client, Args) -> Result<Prepared<'a>, String>,
}

/// A parameter or body field.
pub struct Param {
    /// Its name in the spec, and in a `--batch` line.
    pub name: &'static str,
    /// Its JSON type.
    pub kind: Kind,
    /// Whether the spec requires it.
    pub required: bool,
    /// The first sentence of its description.
    pub description: &'static str,
    /// Its enum values, if any.
    pub values: &'static [&'static str],
    /// An integer's minimum.
    pub min: Option<i64>,
    /// An integer's maximum.
    pub max: Option<i64>,
}

/// A parameter's JSON type. (Not every one is in today's spec.)
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    String,
    /// An integer.
    Integer,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// An array.
    Array,
    /// An object.
    Object,
    /// Anything.
    Any,
}

impl Param {
    /// `integer, 1..=100, required`: what help shows of it.
    pub fn shape(&self) -> String {
        let mut parts = vec![match self.kind {
            Kind::String if !self.values.is_empty() => "one of".to_owned(),
            Kind::String => "string".to_owned(),
            Kind::Integer => "integer".to_owned(),
            Kind::Number => "number".to_owned(),
            Kind::Boolean => "boolean".to_owned(),
            Kind::Array => "array".to_owned(),
            Kind::Object => "object".to_owned(),
            Kind::Any => "any JSON".to_owned(),
        }];
        if !self.values.is_empty() {
            parts[0] = format!("one of {}", self.values.join(", "));
        }
        match (self.min, self.max) {
            (Some(min), Some(max)) => parts.push(format!("{min}..={max}")),
            (Some(min), None) => parts.push(format!(">= {min}")),
            (None, Some(max)) => parts.push(format!("<= {max}")),
            (None, None) => {}
        }
        if self.required {
            parts.push("required".to_owned());
        }
        parts.join(", ")
    }
}

/// One call's arguments, by name: path parameters, query parameters and
/// body fields, as the command line or a `--batch` line gives them.
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// Every named argument still to be used.
    values: Map<String, Value>,
    /// A whole body (`--body`), under the named fields.
    body: Option<Value>,
}

impl Args {
    /// `values` by name, and a whole `body` if given.
    pub fn new(values: Map<String, Value>, body: Option<Value>) -> Self {
        Self { values, body }
    }

    /// These arguments with `line`'s over them: a `--batch` line's own
    /// values win over the command line's.
    pub fn under(&self, line: Map<String, Value>) -> Self {
        let mut args = self.clone();
        args.values.extend(line);
        args
    }

    /// The path parameter `name`, as text.
    pub fn path(&mut self, name: &str) -> Result<String, String> {
        match self.text(name)? {
            Some(value) => Ok(value),
            None => Err(format!("{name} is required (a path parameter)")),
        }
    }

    /// A string (or number, or boolean) argument as text.
    pub fn text(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.values.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
            Some(other) => Err(format!("{name}: expected a string, got {other}")),
        }
    }

    /// An integer argument, from a JSON number or its text.
    pub fn integer(&mut self, name: &str) -> Result<Option<i64>, String> {
        match self.values.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => integer(name, &value).map(Some),
        }
    }

    /// The whole body (`--body`), if given.
    pub fn take_body(&mut self) -> Option<Value> {
        self.body.take()
    }

    /// The arguments left: the body's fields.
    pub fn fields(&mut self) -> Map<String, Value> {
        std::mem::take(&mut self.values)
    }

    /// For an action without a body: fails on a body or a field.
    pub fn no_body(&mut self) -> Result<(), String> {
        if self.body.is_some() {
            return Err("this action takes no body".to_owned());
        }
        Ok(())
    }

    /// Fails on an argument no parameter or field took.
    pub fn done(&self) -> Result<(), String> {
        match self.values.keys().next() {
            Some(name) => Err(format!(
                "{name}: this action has no such parameter (and takes no body)"
            )),
            None => Ok(()),
        }
    }
}

/// `value` as an integer: a JSON integer or the text of one.
pub fn integer(name: &str, value: &Value) -> Result<i64, String> {
    let parsed = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| format!("{name}: expected an integer, got {value}"))
}

/// What a call returned, as the server sent it.
#[derive(Debug)]
pub struct Sent {
    /// The response's `data` as JSON text, as sent (the whole body when it
    /// has no `data`; empty when there is no body).
    pub data: String,
    /// Why the tool failed, for a custom tool's run that did.
    pub tool_failed: Option<ToolFailure>,
}

/// One page of a list, as sent.
pub struct PageText {
    /// Each item's JSON text, as sent.
    pub items: Vec<Box<RawValue>>,
    /// The next page's cursor.
    pub next_cursor: Option<String>,
    /// Whether another page follows.
    pub has_more: bool,
}

type Sending<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// A list builder, able to fetch the page at a cursor.
pub trait Lister: Send + Sync {
    /// The page at `cursor`: the first (or the one `--cursor` names) for
    /// `None`.
    fn page(&self, cursor: Option<String>) -> Sending<'_, PageText>;
}

impl<B> Lister for B
where
    B: Paged + Sync,
{
    fn page(&self, cursor: Option<String>) -> Sending<'_, PageText> {
        let builder = self.clone();
        Box::pin(async move {
            let response = builder.fetch(cursor).await?;
            Ok(page_text(&response))
        })
    }
}

/// A call with its arguments set, ready to send.
pub enum Prepared<'a> {
    /// One request, one answer.
    One(Sending<'a, Sent>),
    /// A cursor-paged list.
    List(Box<dyn Lister + 'a>),
}

impl<'a> Prepared<'a> {
    /// A call answered with one object (or none).
    pub fn one<B, T>(call: B) -> Self
    where
        B: IntoFuture<Output = conduit_sdk::Result<Response<T>>> + Send + 'a,
        B::IntoFuture: Send + 'a,
    {
        Prepared::One(Box::pin(async move {
            let response = call.await?;
            Ok(Sent {
                data: data_text(response.body()),
                tool_failed: None,
            })
        }))
    }

    /// A custom tool's run: a tool that failed is still a 200, with
    /// `success: false`.
    pub fn tool_run(call: RunCustomTool<'a>) -> Self {
        Prepared::One(Box::pin(async move {
            let run = call.send().await?;
            Ok(Sent {
                data: data_text(run.body()),
                tool_failed: run.into_result().err(),
            })
        }))
    }

    /// A cursor-paged list.
    pub fn list<B: Paged + Sync + 'a>(call: B) -> Self {
        Prepared::List(Box::new(call))
    }
}

/// The `data` of a JSON body as sent; the whole body when it has none.
fn data_text(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        data: &'a RawValue,
    }
    match serde_json::from_slice::<Envelope<'_>>(body) {
        Ok(envelope) => envelope.data.get().to_owned(),
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    }
}

fn page_text<T>(response: &Response<Page<T>>) -> PageText {
    #[derive(serde::Deserialize)]
    struct Envelope {
        data: Vec<Box<RawValue>>,
    }
    let items = serde_json::from_slice::<Envelope>(response.body())
        .map(|e| e.data)
        .unwrap_or_default();
    let page = response.data();
    PageText {
        items,
        next_cursor: page.next_cursor.clone(),
        has_more: page.has_more,
    }
}
