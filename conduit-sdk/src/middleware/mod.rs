//! Auth, the rate-limit gate, retries and tracing: the [`Pipeline`] every
//! request passes, whether the SDK's generated layer sent it
//! ([`Client::invoke`](crate::Client)) or the raw client did (through
//! progenitor's hooks, [`Middleware`]).
//!
//! The path of one call of the SDK, top to bottom:
//!
//! ```text
//!  client.tickets().list().status("open").send()          api/generated.rs
//!   │ input checks: path parameters, enums, ranges,
//!   │ required body fields (InvalidInput, nothing sent);
//!   │ the client's workspace fills workspace_id
//!   ▼
//!  Client::invoke(op, request)                             invoke.rs
//!   │ Learned::of(op), passed by &mut below; total_timeout
//!   ├─ Pipeline::prepare                                   auth, user agent, extra headers
//!   ├─ Pipeline::send_with_retries                         the partition: the request's
//!   │    │                                                 workspace (query, JSON body, path),
//!   │    │                                                 else the client's;
//!   │    │                                                 then one loop per attempt:
//!   │    ├─ Partition::wait                                gate/: cooldown, pacing, the budget
//!   │    ├─ reqwest sends
//!   │    ├─ Outcome::of_response/error                     retry.rs: classification
//!   │    ├─ Partition::accepted/throttled
//!   │    └─ RetryPolicy::decide                            wait and loop, or return
//!   ├─ body::read_all                                      size cap, stalls
//!   └─ Reply, or error::from_reply → Error                 error/: server text via shown.rs
//!   ▼
//!  Reply::decode → Response<T> / Page<T>                   response.rs
//! ```
//!
//! Nothing is carried beside the arguments: what the call learned
//! ([`Learned`]) is a local of `invoke`, lent to the loop. The modules
//! depend one way: `learned`, `time`, `shown` and `body` depend on none;
//! `error` on those and `retry`; `gate` on `error`; `middleware` on `gate`
//! and `retry`; `client` on all of these.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conduit_api_gen::{BoxFuture, Middleware, Operation};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use tracing::Instrument;

use crate::body;
use crate::gate::{Partition, RateLimiter, Sent};
use crate::learned::{Learned, NOT_SENT, Refused, request_id};
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
    /// The client's default partition (its workspace's, else its
    /// token's); `None` when the gate is disabled.
    pub(crate) partition: Option<Arc<Partition>>,
    /// The token's partition, for requests that target no workspace.
    pub(crate) token_partition: Option<Arc<Partition>>,
    pub(crate) max_response_bytes: usize,
    pub(crate) read_stall_timeout: Duration,
    /// A per-attempt timeout overriding the HTTP client's.
    pub(crate) attempt_timeout: Option<Duration>,
    /// Extra headers from call options, or why they cannot be sent.
    pub(crate) headers: Result<HeaderMap, String>,
}

/// Which rate-limit partition a request counts against: Conduit limits
/// requests per workspace, and those that target none per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The workspace the request names (`workspace_id` in its query or
    /// JSON body, or the path parameter after `workspaces/` in the
    /// operation's path template, when given), else the client's default.
    Workspace(Option<&'static str>),
    /// The token's own partition.
    Token,
}

impl Middleware for Pipeline {
    fn prepare(
        &self,
        request: &mut reqwest::Request,
        op: Option<&'static Operation>,
    ) -> Result<(), String> {
        let _ = op;
        Pipeline::prepare(self, request)
    }

    fn execute<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        op: Option<&'static Operation>,
    ) -> BoxFuture<'a, reqwest::Result<reqwest::Response>> {
        // The raw client's path: what the call learns has no reader here
        // (progenitor passes only the request and the response).
        Box::pin(async move {
            let mut learned = Learned {
                operation: op.map(|o| o.rust_method),
                ..Learned::default()
            };
            let response = self
                .send_with_retries(
                    |r| client.execute(r),
                    request,
                    Scope::Workspace(op.map(|o| o.path)),
                    &mut learned,
                )
                .await?;
            Ok(body::guard(
                response,
                self.max_response_bytes,
                self.read_stall_timeout,
            ))
        })
    }
}

impl Pipeline {
    /// Adds auth, the user agent, the call's extra headers and timeout;
    /// refuses extra headers that cannot be sent.
    pub(crate) fn prepare(&self, request: &mut reqwest::Request) -> Result<(), String> {
        // No path check here: path parameters are checked as the URL is
        // built (by the SDK's builders, and by the raw client's
        // `request_url`), so every request reaches its operation's path.
        let extra = self.headers.as_ref().map_err(Clone::clone)?;
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
}

impl Pipeline {
    /// Sends `request` with `send` (the HTTP client; a simulated server in
    /// tests), retrying as the policy allows, and records in `learned`
    /// what the call met. When the gate refuses to send, `learned.refused`
    /// says why and the response is a stand-in 429.
    pub(crate) async fn send_with_retries<S, F>(
        &self,
        send: S,
        mut request: reqwest::Request,
        scope: Scope,
        learned: &mut Learned,
    ) -> reqwest::Result<reqwest::Response>
    where
        S: Fn(reqwest::Request) -> F,
        F: Future<Output = reqwest::Result<reqwest::Response>>,
    {
        {
            // The workspace the request targets in its query or body, else
            // the client's own partition; or the token's.
            let targeted = match scope {
                Scope::Workspace(path) => self.targeted_partition(&request, path),
                Scope::Token => None,
            };
            let partition = match scope {
                Scope::Workspace(_) => targeted.as_ref().or(self.partition.as_ref()),
                Scope::Token => self.token_partition.as_ref(),
            };
            let method = request.method().clone();
            let operation = learned.operation;
            // Requests sent, and the retries among them that count against
            // `max_retries`.
            let (mut attempt, mut counted) = (1, 0);
            // What the call has waited so far, against `max_wait`.
            let mut waited = Duration::ZERO;
            loop {
                // Whether the gate let this attempt through as a probe.
                let mut probe = false;
                if let Some(partition) = partition.filter(|p| p.must_wait()) {
                    // Boxed, as the 429 path below: the wait (with a store, a
                    // Redis round trip) is a large future, and only calls that
                    // wait should carry it.
                    let budget = self.retry.max_wait().saturating_sub(waited);
                    let wait = Box::pin(partition.wait(&*self.sleeper, budget));
                    match wait.await {
                        Ok(passed) => {
                            waited += passed.waited;
                            learned.add_waited(passed.waited);
                            probe = passed.probe;
                        }
                        Err(refused) => {
                            let left = match refused {
                                Refused::Cooldown(left) => Some(left),
                                Refused::Turn { waited: w } => {
                                    learned.add_waited(w);
                                    None
                                }
                            };
                            tracing::warn!(
                                partition = partition.label(),
                                cooldown_left_ms = left.map(|d| d.as_millis() as u64),
                                "the rate-limit gate would hold this call past max_wait; not sending"
                            );
                            learned.refused = Some(refused);
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
                learned.attempts = attempt;
                let progress = partition.map(|p| p.progress());
                let sent = Sent {
                    at: self.clock.now(),
                    probe,
                };
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
                // is the gate's turn-taking, and one to a probe is the gate's
                // own trial of the window, not this call failing: neither
                // counts against `max_retries` (a few times at most; the
                // call's waits stay bounded by `max_wait`).
                let gates_own = probe
                    || partition
                        .zip(progress)
                        .is_some_and(|(p, before)| p.progress() > before);
                let free = matches!(outcome, Outcome::Throttled { .. })
                    && gates_own
                    && self.retry.max_retries() > 0
                    && attempt - counted <= FREE_RETRIES;
                let retry = if free { counted } else { counted + 1 };
                let budget = self.retry.max_wait().saturating_sub(waited);
                let decision =
                    self.retry
                        .decide(&outcome, &method, retry.max(1), budget, &*self.clock);
                match (&outcome, &partition) {
                    (Outcome::Throttled { retry_after }, _) => {
                        learned.retry_after = *retry_after;
                        let cooldown = match (&decision, retry_after) {
                            (Decision::RetryAfter(wait), _) => *wait,
                            (_, Some(wait)) => *wait,
                            (_, None) => self.retry.backoff(retry.max(1), &*self.clock),
                        };
                        match &partition {
                            Some(p) => Box::pin(p.throttled(sent, cooldown)).await,
                            None => self.limiter.count_throttled(),
                        }
                    }
                    (_, Some(p)) if result.is_ok() => p.accepted(sent).await,
                    _ => {}
                }
                let (Decision::RetryAfter(wait), Some(next)) = (&decision, replay) else {
                    if let Ok(response) = &result {
                        learned.last_status = Some(response.status());
                        learned.request_id = request_id(response.headers());
                    }
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
                    learned.add_waited(wait);
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
    fn targeted_partition(
        &self,
        request: &reqwest::Request,
        template: Option<&str>,
    ) -> Option<Arc<Partition>> {
        let workspace = targeted_workspace(request, template)?;
        let key = crate::gate::workspace_key(&workspace);
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

/// The workspace a request names: `workspace_id` in its query, else at the
/// top of its JSON body, else the path parameter that follows `workspaces`
/// in its path `template` (`/v1/workspaces/{id}/users`).
fn targeted_workspace(request: &reqwest::Request, template: Option<&str>) -> Option<String> {
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
    let in_body = request
        .body()
        .and_then(|b| b.as_bytes())
        .and_then(|b| serde_json::from_slice::<Body<'_>>(b).ok()?.workspace_id);
    if let Some(id) = in_body {
        return Some(id.into_owned());
    }
    in_path(request.url(), template?)
}

/// The segment of `url` that the parameter after `workspaces` in
/// `template` stands for, counted from the end so that a base URL with a
/// path of its own changes nothing.
fn in_path(url: &url::Url, template: &str) -> Option<String> {
    let template: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let at = template
        .windows(2)
        .position(|w| w[0] == "workspaces" && w[1].starts_with('{'))?
        + 1;
    let segments: Vec<&str> = url.path_segments()?.collect();
    let from = segments.len().checked_sub(template.len())?;
    let segment = segments.get(from + at)?;
    let id = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()?
        .into_owned();
    (!id.is_empty()).then_some(id)
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
    let mut response = http::Response::builder()
        .status(http::StatusCode::TOO_MANY_REQUESTS)
        .header(
            NOT_SENT,
            if cooldown_left.is_some() {
                "cooldown"
            } else {
                "turn"
            },
        );
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
            token_partition: None,
            max_response_bytes: 1024,
            read_stall_timeout: Duration::from_secs(10),
            attempt_timeout: None,
            headers: Ok(HeaderMap::new()),
        }
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
            .send_with_retries(
                |r| client.execute(r),
                request,
                Scope::Workspace(None),
                &mut Learned::default(),
            )
            .await
            .unwrap()
            .status()
            .as_u16();
        (status, server.received_requests().await.unwrap().len())
    }

    #[test]
    fn a_workspace_in_the_path_is_found_under_any_base_path() {
        let template = Some("/v1/workspaces/{id}/users");
        for base in ["https://api.example", "https://example.com/conduit/api"] {
            let url = format!("{base}/v1/workspaces/ws%20a/users?limit=5");
            let request = reqwest::Request::new(reqwest::Method::GET, url.parse().unwrap());
            assert_eq!(
                targeted_workspace(&request, template).as_deref(),
                Some("ws a")
            );
            // The query names it first; no template, no path workspace.
            let url = format!("{base}/v1/workspaces/ws_a/users?workspace_id=ws_q");
            let request = reqwest::Request::new(reqwest::Method::GET, url.parse().unwrap());
            assert_eq!(
                targeted_workspace(&request, template).as_deref(),
                Some("ws_q")
            );
            let url = format!("{base}/v1/workspaces/ws_a/users");
            let request = reqwest::Request::new(reqwest::Method::GET, url.parse().unwrap());
            assert_eq!(targeted_workspace(&request, None), None);
            assert_eq!(
                targeted_workspace(&request, Some("/v1/tickets/{id}/notes")),
                None
            );
        }
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
