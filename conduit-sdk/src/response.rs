//! What a successful call gives: [`Response`] for one object, [`Page`] for
//! one page of a list.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use serde::de::DeserializeOwned;

use crate::error::from_reply;
use crate::learned::Learned;
use crate::shown::Redactor;
use crate::{Error, ErrorKind};

/// The final 2xx response of a call, read whole, with what the call took.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) learned: Learned,
    pub(crate) redactor: Redactor,
}

#[allow(
    dead_code,
    reason = "for operations without a JSON body, which the spec may gain at regen"
)]
impl Reply {
    /// The response, its body ignored.
    pub(crate) fn unit(self) -> Response<()> {
        Response::new((), self)
    }

    /// The response, its body as sent.
    pub(crate) fn bytes(self) -> Response<Bytes> {
        let body = self.body.clone();
        Response::new(body, self)
    }

    /// The body decoded as `T`: a body of another shape is
    /// [`ErrorKind::Decode`], quoting a bounded, masked snippet.
    /// A 2xx other than the documented 200 succeeds when its body is the
    /// documented shape (a write it made is not reported lost); otherwise
    /// it is that status's error, with the server's text.
    pub(crate) fn decode<T: DeserializeOwned>(self) -> Result<Response<T>, Error> {
        match serde_json::from_slice::<T>(&self.body) {
            Ok(value) => Ok(Response::new(value, self)),
            Err(_) if self.status != StatusCode::OK => Err(from_reply(
                self.status,
                &self.headers,
                &self.body,
                &self.learned,
                &self.redactor,
                std::time::SystemTime::now(),
            )
            .with_learned(&self.learned)),
            Err(e) => {
                let reason = crate::error::ShownSource(self.redactor.message(&e.to_string()));
                Err(Error::new(ErrorKind::Decode)
                    .with_status(Some(self.status))
                    .with_message(format!(
                        "the body does not match the documented schema: {reason}"
                    ))
                    .with_body(self.redactor.snippet(&self.body))
                    .with_source(reason)
                    .with_learned(&self.learned))
            }
        }
    }
}

/// The value a call returned (the response's `data`), with the response
/// it came in: status, headers, request id, the body as sent, and what the
/// call took (requests sent, time waited). Derefs to the value.
///
/// ```no_run
/// # async fn demo(client: conduit_sdk::Client) -> conduit_sdk::Result<()> {
/// let ticket = client.tickets().close("tk_123").send().await?;
/// println!("{:?} ({:?})", ticket.status, ticket.request_id());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Response<T> {
    data: T,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    json: OnceLock<Value>,
    attempts: u32,
    waited: Duration,
    pub(crate) redactor: Redactor,
}

impl<T> Response<T> {
    pub(crate) fn new(data: T, reply: Reply) -> Self {
        Self {
            data,
            status: reply.status,
            headers: reply.headers,
            body: reply.body,
            json: OnceLock::new(),
            attempts: reply.learned.attempts.max(1),
            waited: reply.learned.waited,
            redactor: reply.redactor,
        }
    }

    /// A response made up for tests: `data` with status 200, no headers,
    /// and `body` as the body sent.
    #[cfg(feature = "test-util")]
    pub(crate) fn fake(data: T, body: Bytes) -> Self {
        Self {
            data,
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body,
            json: OnceLock::new(),
            attempts: 1,
            waited: Duration::ZERO,
            redactor: Redactor::default(),
        }
    }

    /// The same response around another value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            data: f(self.data),
            status: self.status,
            headers: self.headers,
            body: self.body,
            json: self.json,
            attempts: self.attempts,
            waited: self.waited,
            redactor: self.redactor,
        }
    }

    /// The value.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The value, the response dropped.
    pub fn into_data(self) -> T {
        self.data
    }

    /// The HTTP status of the response.
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

    /// How many requests the call sent: 1, or more after retries.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How long the call waited in all: in the rate-limit gate and between
    /// attempts.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The whole response body, as sent.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The response's `data`, parsed as JSON: fields this SDK does not
    /// know kept, keys in the server's order. Numbers are parsed, so their
    /// spelling is not kept; [`data_text`](Self::data_text) has them as
    /// sent.
    pub fn json(&self) -> &Value
    where
        T: serde::Serialize,
    {
        self.json.get_or_init(|| {
            serde_json::from_slice::<Value>(&self.body)
                .ok()
                .and_then(|mut v| v.get_mut("data").map(Value::take))
                // A response made without a body (a test fake).
                .unwrap_or_else(|| serde_json::to_value(&self.data).unwrap_or(Value::Null))
        })
    }

    /// The response's `data` as JSON text, exactly as the server sent it:
    /// numbers as written (`842.250` stays `842.250`), white space and all.
    pub fn data_text(&self) -> Cow<'_, str>
    where
        T: serde::Serialize,
    {
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            data: &'a serde_json::value::RawValue,
        }
        match serde_json::from_slice::<Envelope<'_>>(&self.body) {
            Ok(envelope) => Cow::Borrowed(envelope.data.get()),
            Err(_) => Cow::Owned(self.json().to_string()),
        }
    }
}

impl<T> Deref for Response<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: fmt::Debug> fmt::Debug for Response<T> {
    /// The value as server text is shown: the client's token masked,
    /// should a server echo it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self.redactor.message(&format!("{:?}", self.data));
        f.debug_struct("Response")
            .field("status", &self.status.as_u16())
            .field("data", &format_args!("{data}"))
            .field("request_id", &self.request_id())
            .field("attempts", &self.attempts)
            .field("waited", &self.waited)
            .finish_non_exhaustive()
    }
}

/// One page of a list operation: its items, and where the next starts.
///
/// Every list builder also has `.items()`, a stream of every item across
/// pages.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page, in the server's order.
    pub items: Vec<T>,
    /// The cursor of the next page, when there is one.
    pub next_cursor: Option<String>,
    /// Whether another page follows.
    pub has_more: bool,
    /// How many items match in all, where the operation says.
    pub total_count: Option<i64>,
}

impl<T> Page<T> {
    pub(crate) fn new(
        items: Vec<T>,
        next_cursor: Option<String>,
        has_more: bool,
        total_count: Option<i64>,
    ) -> Self {
        Self {
            items,
            next_cursor,
            has_more,
            total_count,
        }
    }
}
