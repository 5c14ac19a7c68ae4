//! Auth, the rate-limit gate, retries and tracing for every
//! request of the raw client: the [`Pipeline`] that progenitor's hooks call.
//!
//! The path of one call, wrappers and raw operations alike:
//!
//! ```text
//!  client.custom_tools().run(id).send()     client.call(|raw| raw.op().send())
//!   │ input checks (InvalidInput,                 │
//!   │ nothing sent)                               │
//!   └──────────────► Client::call_with ◄──────────┘        call.rs
//!                     │ task-local CallState: attempts, waits, the body kept
//!                     │ total_timeout around everything below
//!                     ▼
//!                generated builder .send()                 conduit-api-gen
//!                     │ builds the URL (a path parameter that would leave its
//!                     │ segment: InvalidInput, nothing sent) and the request
//!                     ├─ Hooks::pre  → Pipeline::prepare   auth, user agent, extra headers
//!                     └─ Hooks::exec → Pipeline::execute   the partition: the request's
//!                           │                              workspace_id (query or JSON body),
//!                           │                              else the client's;
//!                           │                              then one loop per attempt:
//!                           ├─ Partition::wait             gate/: cooldown, pacing, the budget
//!                           ├─ reqwest sends
//!                           ├─ Outcome::of_response/error  retry.rs: classification
//!                           ├─ Partition::accepted/throttled
//!                           ├─ RetryPolicy::decide         wait and loop, or return
//!                         then, once:
//!                           └─ Pipeline::finish            body.rs: size cap, stalls;
//!                                                          a JSON operation's 2xx read whole
//!                     ▼
//!                generated decoding → ResponseValue, or progenitor's Error
//!                     ▼
//!                error::from_raw → Error                   error/: server text via shown.rs
//! ```
//!
//! The task-local is how what happened inside the hooks (attempts, the last
//! status, the server's `Retry-After`, time waited) reaches the error: the
//! generated code between them passes only the request and the response.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conduit_api_gen::{BoxFuture, Middleware, Operation};
use futures_util::FutureExt;
use futures_util::future::Either;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use tracing::Instrument;

mod call_state;

use call_state::learn;
pub(crate) use call_state::{CALL, CallState, Learned, with_call};

use crate::body;
use crate::gate::{Partition, RateLimiter, Refused};
use crate::retry::{Decision, Outcome, RetryPolicy};
use crate::time::{Clock, Sleep};

/// 429s a call may meet, beyond `max_retries`, while the rest of its
/// workspace makes progress.
const FREE_RETRIES: u32 = 8;

/// The SDK's [`Middleware`]. Cloned, with overrides, by
/// [`Client::with_options`](crate::Client::with_options).
#[derive(Clone)]
pub(crate) struct Pipeline {
    pub(crate) authorization: HeaderValue,
    pub(crate) user_agent: HeaderValue,
    pub(crate) retry: RetryPolicy,
    pub(crate) sleeper: Arc<dyn Sleep>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limiter: RateLimiter,
    /// The client's default partition; `None` when the gate is disabled.
    pub(crate) partition: Option<Arc<Partition>>,
    pub(crate) max_response_bytes: usize,
    pub(crate) read_stall_timeout: Duration,
    /// A per-attempt timeout overriding the HTTP client's.
    pub(crate) attempt_timeout: Option<Duration>,
    /// Extra headers from call options, or why they cannot be sent.
    pub(crate) headers: Result<HeaderMap, String>,
}

impl Middleware for Pipeline {
    fn prepare(
        &self,
        request: &mut reqwest::Request,
        op: Option<&'static Operation>,
    ) -> Result<(), String> {
        // No path check here: the generated code refuses a path parameter
        // that would leave its segment (empty, `.`, `..`, or with a `\`) as
        // it builds the URL (`conduit_api_gen::request_url`), so every
        // request reaches its operation's own path.
        let extra = self.headers.as_ref().map_err(|e| {
            // The operation is recorded with each attempt; this one is not sent.
            learn(|l| l.operation = op.map(|o| o.rust_method));
            e.clone()
        })?;
        let headers = request.headers_mut();
        for (name, value) in extra {
            headers.append(name, value.clone());
        }
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert(USER_AGENT, self.user_agent.clone());
        if let Some(timeout) = self.attempt_timeout {
            *request.timeout_mut() = Some(timeout);
        }
        Ok(())
    }

    fn execute<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        op: Option<&'static Operation>,
    ) -> BoxFuture<'a, reqwest::Result<reqwest::Response>> {
        let whole = op.is_some_and(|o| o.reads_whole);
        // Chained rather than awaited in turn inside an async block, which
        // would hold both futures and a copy of the request side by side:
        // see `send_with_retries` for why the size matters.
        let sent = self.send_with_retries(move |r| client.execute(r), request, op);
        Box::pin(sent.then(move |result| match result {
            Ok(response) => Either::Left(self.finish(response, whole).map(Ok)),
            Err(e) => Either::Right(std::future::ready(Err(e))),
        }))
    }
}

impl Pipeline {
    /// Sends `request` with `send` (the HTTP client; a simulated server in
    /// tests), retrying as the policy allows.
    // This future (chained with `finish`'s) is boxed for every call and
    // held while the call is in flight, so it is kept small: a plain fn
    // around an `async move` block (an async fn keeps a second copy of its
    // arguments, here a whole Request), the gate's waits boxed only when
    // they happen, and the retry copy turned back into the request before
    // a backoff rather than held beside it.
    #[allow(clippy::manual_async_fn, reason = "an async fn copies its arguments")]
    fn send_with_retries<'a, S, F>(
        &'a self,
        send: S,
        mut request: reqwest::Request,
        op: Option<&'static Operation>,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + Send + 'a
    where
        S: Fn(reqwest::Request) -> F + Send + 'a,
        F: Future<Output = reqwest::Result<reqwest::Response>> + Send + 'a,
    {
        async move {
            // The workspace the request targets in its query or body, else
            // the client's own partition, borrowed.
            let targeted = self.targeted_partition(&request);
            let partition = targeted.as_ref().or(self.partition.as_ref());
            let method = request.method().clone();
            let operation = op.map(|o| o.rust_method);
            // Requests sent, and the retries among them that count against
            // `max_retries`.
            let (mut attempt, mut counted) = (1, 0);
            // What the call has waited so far, against `max_wait`.
            let mut waited = Duration::ZERO;
            loop {
                if let Some(partition) = partition.filter(|p| p.must_wait()) {
                    // Boxed, as the 429 path below: the wait (with a store, a
                    // Redis round trip) is a large future, and only calls that
                    // wait should carry it.
                    let budget = self.retry.max_wait().saturating_sub(waited);
                    let wait = Box::pin(partition.wait(&*self.sleeper, budget));
                    match wait.await {
                        Ok(w) => {
                            waited += w;
                            learn(|l| l.add_waited(w));
                        }
                        Err(refused) => {
                            let left = match refused {
                                Refused::Cooldown(left) => Some(left),
                                Refused::Turn { waited: w } => {
                                    learn(|l| l.add_waited(w));
                                    None
                                }
                            };
                            tracing::warn!(
                                partition = partition.label(),
                                cooldown_left_ms = left.map(|d| d.as_millis() as u64),
                                "the rate-limit gate would hold this call past max_wait; not sending"
                            );
                            learn(|l| l.refused = Some(refused));
                            return Ok(refused_response(request.url(), left));
                        }
                    }
                }
                // Kept for a retry, so only while one is possible. A streaming
                // body cannot be replayed; such a request gets one try.
                let replay = if self.retry.max_retries() > 0 {
                    Replay::of(&request)
                } else {
                    None
                };
                let span = tracing::info_span!(
                    "conduit.request",
                    operation = operation.unwrap_or("unknown"),
                    method = %method,
                    attempt,
                    status = tracing::field::Empty,
                    retry_in_ms = tracing::field::Empty,
                );
                // Counted before sending: a call cut short mid-attempt still
                // sent it.
                learn(|l| {
                    l.attempts = attempt;
                    l.operation = operation;
                });
                let progress = partition.map(|p| p.progress());
                let sent_at = self.clock.now();
                let result = send(request).instrument(span.clone()).await;
                let outcome = match &result {
                    Ok(response) => {
                        let status = response.status();
                        span.record("status", status.as_u16());
                        Outcome::of_response(status, response.headers(), || {
                            self.clock.system_time()
                        })
                    }
                    Err(e) => Outcome::of_error(e),
                };
                // A 429 met while the workspace's other requests went through
                // is the gate's turn-taking, not this call failing: it does
                // not count against `max_retries` (a few times at most; the
                // call's waits stay bounded by `max_wait`).
                let others_progressed = matches!(outcome, Outcome::Throttled { .. })
                    && partition
                        .zip(progress)
                        .is_some_and(|(p, before)| p.progress() > before);
                let free = others_progressed
                    && self.retry.max_retries() > 0
                    && attempt - counted <= FREE_RETRIES;
                let retry = if free { counted } else { counted + 1 };
                let budget = self.retry.max_wait().saturating_sub(waited);
                let decision =
                    self.retry
                        .decide(&outcome, &method, retry.max(1), budget, &*self.clock);
                match (&outcome, &partition) {
                    (Outcome::Throttled { retry_after }, _) => {
                        learn(|l| l.retry_after = *retry_after);
                        let cooldown = match (&decision, retry_after) {
                            (Decision::RetryAfter(wait), _) => *wait,
                            (_, Some(wait)) => *wait,
                            (_, None) => self.retry.backoff(retry.max(1), &*self.clock),
                        };
                        match &partition {
                            Some(p) => Box::pin(p.throttled(sent_at, cooldown)).await,
                            None => self.limiter.count_throttled(),
                        }
                    }
                    (_, Some(p)) if result.is_ok() => p.accepted(sent_at),
                    _ => {}
                }
                let (Decision::RetryAfter(wait), Some(next)) = (&decision, replay) else {
                    if let Decision::TooLong(wait) = decision {
                        span.in_scope(|| {
                            tracing::warn!(
                                wait_ms = wait.as_millis() as u64,
                                "the wait asked for exceeds what max_wait leaves; giving up"
                            );
                        });
                    } else if decision == Decision::Exhausted {
                        span.in_scope(|| tracing::warn!(?outcome, "retries exhausted"));
                    }
                    return result;
                };
                span.record("retry_in_ms", wait.as_millis() as u64);
                span.in_scope(|| {
                    tracing::info!(?outcome, wait_ms = wait.as_millis() as u64, "retrying")
                });
                drop(result);
                // After a 429 the gate holds the retry until the partition's
                // cooldown ends; other retries wait out their own backoff.
                let gated = partition.is_some() && matches!(outcome, Outcome::Throttled { .. });
                // Rebuilt before the wait, so that only the request is held
                // across it.
                let wait = *wait;
                request = next.request();
                if !gated {
                    self.sleeper.sleep(wait).await;
                    waited += wait;
                    learn(|l| l.add_waited(wait));
                }
                attempt += 1;
                counted = retry;
            }
        }
    }
}

impl Pipeline {
    /// The partition of the workspace `request` names in its query or its
    /// JSON body (`workspace_id`), when that is not the client's own:
    /// Conduit counts a request against the workspace it targets.
    fn targeted_partition(&self, request: &reqwest::Request) -> Option<Arc<Partition>> {
        let workspace = targeted_workspace(request)?;
        let key = crate::client::workspace_key(&workspace);
        if self
            .partition
            .as_ref()
            .is_some_and(|own| own.label() == key)
        {
            return None;
        }
        self.limiter.partition(&key, &self.clock)
    }
}

/// The `workspace_id` a request names: in its query, else at the top of
/// its JSON body.
fn targeted_workspace(request: &reqwest::Request) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        workspace_id: Option<std::borrow::Cow<'a, str>>,
    }
    if let Some((_, id)) = request
        .url()
        .query_pairs()
        .find(|(k, _)| k == "workspace_id")
    {
        return Some(id.into_owned());
    }
    let body = request.body()?.as_bytes()?;
    let id = serde_json::from_slice::<Body<'_>>(body)
        .ok()?
        .workspace_id?;
    Some(id.into_owned())
}

impl Pipeline {
    /// The final response, its body behind the guard (size cap, stalls).
    /// A 2xx of an operation that reads its bodies `whole` is read now,
    /// under the same rules, which costs less than the guard's wrapping;
    /// so is one whose caller asked for the body as sent (a wrapper's),
    /// kept in the call's state with the headers (the generated decoding
    /// does not need them).
    #[allow(clippy::manual_async_fn, reason = "an async fn copies its arguments")]
    fn finish(
        &self,
        mut response: reqwest::Response,
        whole: bool,
    ) -> impl Future<Output = reqwest::Response> + Send + '_ {
        async move {
            let success = response.status().is_success();
            let keep = with_call(|call| {
                // Recorded for the final response only: what a call's error
                // reports. The request id is parsed only for a call.
                call.learn(|l| {
                    l.last_status = Some(response.status());
                    l.request_id = request_id(response.headers());
                });
                let keep = call.keep_body && success;
                if keep {
                    call.set_headers(std::mem::take(response.headers_mut()));
                }
                keep
            })
            .unwrap_or(false);
            let (max, stall) = (self.max_response_bytes, self.read_stall_timeout);
            if !(keep || whole && success) {
                return body::guard(response, max, stall);
            }
            body::read_whole(response, max, stall, keep).await
        }
    }
}

/// The request id a response carries, if any: `x-request-id`, else
/// `request-id`; only visible ASCII, at most 200 characters.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    // Names made once: looking up by `&str` parses the name on every call.
    static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    static REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
    let value = headers
        .get(&X_REQUEST_ID)
        .or_else(|| headers.get(&REQUEST_ID))?
        .to_str()
        .ok()?
        .trim();
    let fits =
        !value.is_empty() && value.len() <= 200 && value.chars().all(|c| c.is_ascii_graphic());
    fits.then(|| value.to_owned())
}

/// What a retry needs to send `request` again, or `None` for a streaming
/// body. Made for every call while a retry is possible, and usually
/// dropped unused, so it is cheaper than `Request::try_clone` (which copies
/// the extensions map and, here, a whole `HeaderMap`): the headers as a
/// flat list, the body (a small JSON document) copied.
struct Replay {
    method: reqwest::Method,
    url: reqwest::Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<bytes::Bytes>,
    timeout: Option<Duration>,
    version: reqwest::Version,
}

impl Replay {
    fn of(request: &reqwest::Request) -> Option<Self> {
        let body = match request.body() {
            Some(body) => Some(bytes::Bytes::copy_from_slice(body.as_bytes()?)),
            None => None,
        };
        Some(Self {
            method: request.method().clone(),
            url: request.url().clone(),
            headers: request
                .headers()
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            body,
            timeout: request.timeout().copied(),
            version: request.version(),
        })
    }

    fn request(self) -> reqwest::Request {
        let mut request = reqwest::Request::new(self.method, self.url);
        let headers = request.headers_mut();
        headers.reserve(self.headers.len());
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        // Set only when there is one: it lives in the extensions map.
        if self.timeout.is_some() {
            *request.timeout_mut() = self.timeout;
        }
        *request.version_mut() = self.version;
        *request.body_mut() = self.body.map(reqwest::Body::from);
        request
    }
}

/// The stand-in for a 429 when the gate refuses to send: what the server
/// would have said, so that the raw client decodes it as a rate limit.
/// [`Client::call`](crate::Client::call) reports it as not sent.
fn refused_response(url: &reqwest::Url, cooldown_left: Option<Duration>) -> reqwest::Response {
    let mut response = http::Response::builder().status(http::StatusCode::TOO_MANY_REQUESTS);
    if let Some(left) = cooldown_left {
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        response = response.header(http::header::RETRY_AFTER, secs);
    }
    let response = response
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(reqwest::Body::from(
            r#"{"error":"Rate limit cooldown in progress (not sent by the SDK)"}"#,
        ));
    let (parts, body) = response.expect("a valid static response").into_parts();
    body::rebuild(parts, body, url.clone())
}

#[cfg(test)]
mod under_load;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ManualTime;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// A pipeline with no gate, manual time and a 1 KiB body limit.
    fn pipeline() -> Pipeline {
        Pipeline {
            authorization: HeaderValue::from_static("Bearer t"),
            user_agent: HeaderValue::from_static("test"),
            retry: RetryPolicy::default(),
            sleeper: Arc::new(ManualTime::new()),
            clock: Arc::new(ManualTime::new()),
            limiter: RateLimiter::disabled(),
            partition: None,
            max_response_bytes: 1024,
            read_stall_timeout: Duration::from_secs(10),
            attempt_timeout: None,
            headers: Ok(HeaderMap::new()),
        }
    }

    /// A response of `status` with a JSON body.
    fn response(status: u16) -> reqwest::Response {
        let mut r = http::Response::new(reqwest::Body::from(r#"{"a":1}"#));
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
        reqwest::Response::from(r)
    }

    #[tokio::test]
    async fn a_2xx_of_an_operation_that_reads_whole_is_read_by_the_middleware() {
        let p = pipeline();
        // Read now, with or without a call, and handed on to the decoding.
        let without = p.finish(response(200), true).await;
        let with = CALL.scope(CallState::new(false), p.finish(response(200), true));
        for mut r in [without, with.await] {
            let read = r.extensions_mut().remove::<conduit_api_gen::BodyRead>();
            assert_eq!(read.unwrap().0, r#"{"a":1}"#);
        }
        // A body another decoding streams, or an error's, stays unread.
        for (status, whole) in [(200, false), (500, true)] {
            let r = p.finish(response(status), whole).await;
            assert!(r.extensions().get::<conduit_api_gen::BodyRead>().is_none());
            assert_eq!(r.bytes().await.unwrap(), r#"{"a":1}"#, "{status}");
        }
        // A wrapper's 2xx is read, and kept as sent, whatever the operation.
        let mut kept =
            std::pin::pin!(CALL.scope(CallState::new(true), p.finish(response(200), false)));
        let r = kept.as_mut().await;
        assert!(r.extensions().get::<conduit_api_gen::BodyRead>().is_some());
        let call = kept.take_value().unwrap();
        assert_eq!(call.take_body().unwrap(), r#"{"a":1}"#);
        assert!(call.take_headers().is_some());
    }

    /// Sends `method` to a server answering 503 once, then 200; returns the
    /// final status and how many requests the server saw.
    async fn unavailable_then_ok(m: reqwest::Method) -> (u16, usize) {
        let server = MockServer::start().await;
        Mock::given(method(m.as_str()))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method(m.as_str()))
            .respond_with(ResponseTemplate::new(200))
            .with_priority(2)
            .mount(&server)
            .await;
        let transport = pipeline();
        let client = reqwest::Client::new();
        let request = client.request(m, server.uri()).build().unwrap();
        let status = transport
            .send_with_retries(|r| client.execute(r), request, None)
            .await
            .unwrap()
            .status()
            .as_u16();
        (status, server.received_requests().await.unwrap().len())
    }

    #[tokio::test]
    async fn idempotent_methods_retry_503_and_post_does_not() {
        for m in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
            reqwest::Method::HEAD,
        ] {
            assert_eq!(unavailable_then_ok(m.clone()).await, (200, 2), "{m}");
        }
        for m in [reqwest::Method::POST, reqwest::Method::PATCH] {
            assert_eq!(unavailable_then_ok(m.clone()).await, (503, 1), "{m}");
        }
    }
}
