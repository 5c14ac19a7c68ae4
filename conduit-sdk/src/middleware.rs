//! Auth, path checks, the rate-limit gate, retries and tracing for every
//! request of the raw client: the [`Pipeline`] that progenitor's hooks call.
//!
//! The path of one call, wrappers and raw operations alike:
//!
//! ```text
//!  client.custom_tools().run(id).send()     client.call(|raw| raw.op().send())
//!   │ input checks (InvalidInput,                 │
//!   │ nothing sent)                               │
//!   └──────────────► Client::call_in ◄────────────┘        call.rs
//!                     │ task-local CallState: partition, attempts, waits
//!                     │ total_timeout around everything below
//!                     ▼
//!                generated builder .send()                 conduit-api-gen
//!                     │ builds the reqwest::Request
//!                     ├─ Hooks::pre  → Pipeline::prepare   path check, auth, user agent
//!                     └─ Hooks::exec → Pipeline::execute   one loop per attempt:
//!                           ├─ Partition::wait             gate/: cooldown, pacing
//!                           ├─ reqwest sends; body::guard  body.rs: size cap, stalls
//!                           ├─ Outcome::of_response/error  retry.rs: classification
//!                           ├─ Partition::accepted/throttled
//!                           └─ RetryPolicy::decide         wait and loop, or return
//!                     ▼
//!                generated decoding → ResponseValue, or progenitor's Error
//!                     ▼
//!                error::from_raw → Error                   error/: server text via shown.rs
//! ```
//!
//! The task-local is how what happened inside the hooks (attempts, the last
//! status, the server's `Retry-After`, time waited) reaches the error: the
//! generated code between them passes only the request and the response.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use conduit_api_gen::{BoxFuture, Middleware, Operation};
use reqwest::header::{AUTHORIZATION, HeaderValue, USER_AGENT};
use tracing::Instrument;

use crate::body;
use crate::gate::{Partition, RateLimiter};
use crate::retry::{Decision, Outcome, RetryPolicy};
use crate::time::{Clock, Sleep};

/// What the middleware learns during one [`Client::call`](crate::Client::call),
/// for the error it may become.
#[derive(Debug, Default)]
pub(crate) struct CallState {
    attempts: AtomicU32,
    last_status: AtomicU16,
    retry_after: Mutex<Option<Duration>>,
    operation: OnceLock<&'static str>,
    /// The gate partition of this call, when not the client's default.
    pub(crate) partition: Option<Arc<Partition>>,
    waited_nanos: AtomicU64,
    /// Set when the gate refused to send: what was left of the cooldown.
    refused: Mutex<Option<Duration>>,
}

impl CallState {
    pub(crate) fn in_partition(partition: Option<Arc<Partition>>) -> Self {
        Self {
            partition,
            ..Self::default()
        }
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    pub(crate) fn last_status(&self) -> Option<reqwest::StatusCode> {
        reqwest::StatusCode::from_u16(self.last_status.load(Ordering::Relaxed)).ok()
    }

    pub(crate) fn operation(&self) -> Option<&'static str> {
        self.operation.get().copied()
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        *self.retry_after.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Time spent waiting: in the gate and between attempts.
    pub(crate) fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed))
    }

    pub(crate) fn refused(&self) -> Option<Duration> {
        *self.refused.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add_waited(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.waited_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

tokio::task_local! {
    /// Set by `Client::call` around the raw call; absent when the raw client
    /// is used directly, which still gets auth, the gate and retries.
    pub(crate) static CALL: Arc<CallState>;
}

fn with_call(f: impl FnOnce(&CallState)) {
    let _ = CALL.try_with(|state| f(state));
}

/// The SDK's [`Middleware`].
pub(crate) struct Pipeline {
    pub(crate) authorization: HeaderValue,
    pub(crate) user_agent: HeaderValue,
    pub(crate) base_path: String,
    pub(crate) retry: RetryPolicy,
    pub(crate) sleeper: Arc<dyn Sleep>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limiter: RateLimiter,
    /// The client's default partition; `None` when the gate is disabled.
    pub(crate) partition: Option<Arc<Partition>>,
    pub(crate) max_response_bytes: usize,
    pub(crate) read_stall_timeout: Duration,
}

impl Middleware for Pipeline {
    fn prepare(
        &self,
        request: &mut reqwest::Request,
        op: Option<&'static Operation>,
    ) -> Result<(), String> {
        if let Some(op) = op {
            with_call(|s| {
                let _ = s.operation.set(op.rust_method);
            });
        }
        if let Some(op) = op
            && !path_matches(request.url().path(), &self.base_path, op.path)
        {
            // A path parameter such as `..` was resolved away by URL
            // normalisation: the request would reach another endpoint.
            return Err(format!(
                "a path parameter of {} changes the request path (got {})",
                op.rust_method,
                request.url().path()
            ));
        }
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert(USER_AGENT, self.user_agent.clone());
        Ok(())
    }

    fn execute<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        op: Option<&'static Operation>,
    ) -> BoxFuture<'a, reqwest::Result<reqwest::Response>> {
        Box::pin(self.send_with_retries(client, request, op.map_or("unknown", |o| o.rust_method)))
    }
}

impl Pipeline {
    async fn send_with_retries(
        &self,
        client: &reqwest::Client,
        mut request: reqwest::Request,
        op: &'static str,
    ) -> reqwest::Result<reqwest::Response> {
        let call = CALL.try_with(Arc::clone).ok();
        let partition = call
            .as_ref()
            .and_then(|c| c.partition.clone())
            .or_else(|| self.partition.clone());
        let method = request.method().clone();
        let mut attempt = 1;
        loop {
            if let Some(partition) = &partition {
                match partition.wait(&*self.sleeper, self.retry.max_wait()).await {
                    Ok(waited) => with_call(|s| s.add_waited(waited)),
                    Err(refused) => {
                        tracing::warn!(
                            partition = partition.label(),
                            retry_after_ms = refused.retry_after.as_millis() as u64,
                            "the rate-limit cooldown exceeds max_wait; not sending"
                        );
                        with_call(|s| {
                            *s.refused.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(refused.retry_after)
                        });
                        return Ok(refused_response(request.url(), refused.retry_after));
                    }
                }
            }
            // Kept for a retry, so only while one is possible. A streaming
            // body cannot be replayed; such a request gets one try.
            let replay = if attempt <= self.retry.max_retries() {
                request.try_clone()
            } else {
                None
            };
            let span = tracing::info_span!(
                "conduit.request",
                operation = op,
                method = %method,
                attempt,
                status = tracing::field::Empty,
                retry_in_ms = tracing::field::Empty,
            );
            // Counted before sending: a call cut short mid-attempt still sent it.
            with_call(|s| s.attempts.store(attempt, Ordering::Relaxed));
            let sent_at = self.clock.now();
            let result = client
                .execute(request)
                .instrument(span.clone())
                .await
                .map(|r| body::guard(r, self.max_response_bytes, self.read_stall_timeout));
            let outcome = match &result {
                Ok(response) => {
                    let status = response.status();
                    span.record("status", status.as_u16());
                    with_call(|s| s.last_status.store(status.as_u16(), Ordering::Relaxed));
                    Outcome::of_response(status, response.headers(), self.clock.system_time())
                }
                Err(e) => Outcome::of_error(e),
            };
            let decision = self.retry.decide(&outcome, &method, attempt);
            match (&outcome, &partition) {
                (Outcome::Throttled { retry_after }, _) => {
                    with_call(|s| {
                        *s.retry_after.lock().unwrap_or_else(|e| e.into_inner()) = *retry_after
                    });
                    let cooldown = match (&decision, retry_after) {
                        (Decision::RetryAfter(wait), _) => *wait,
                        (_, Some(wait)) => *wait,
                        (_, None) => self.retry.backoff(attempt),
                    };
                    match &partition {
                        Some(p) => p.throttled(sent_at, cooldown),
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
                            "retry-after exceeds max_wait; giving up"
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
            if !gated {
                self.sleeper.sleep(*wait).await;
                with_call(|s| s.add_waited(*wait));
            }
            request = next;
            attempt += 1;
        }
    }
}

/// The stand-in for a 429 when the gate refuses to send: what the server
/// would have said, so that the raw client decodes it as a rate limit.
/// [`Client::call`](crate::Client::call) reports it as not sent.
fn refused_response(url: &reqwest::Url, retry_after: Duration) -> reqwest::Response {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let response = http::Response::builder()
        .status(http::StatusCode::TOO_MANY_REQUESTS)
        .header(http::header::RETRY_AFTER, secs)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(reqwest::Body::from(
            r#"{"error":"Rate limit cooldown in progress (not sent by the SDK)"}"#,
        ));
    body::with_url(response.expect("a valid static response"), url.clone())
}

/// Whether `actual` is `base_path` followed by `template`, each `{param}`
/// standing for exactly one non-empty segment.
pub(crate) fn path_matches(actual: &str, base_path: &str, template: &str) -> bool {
    let Some(rest) = actual.strip_prefix(base_path.trim_end_matches('/')) else {
        return false;
    };
    let (mut got, mut want) = (rest.split('/'), template.split('/'));
    loop {
        match (got.next(), want.next()) {
            (None, None) => return true,
            (Some(g), Some(w)) if w.starts_with('{') && w.ends_with('}') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(g), Some(w)) if g == w => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ManualTime;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

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
        let transport = Pipeline {
            authorization: HeaderValue::from_static("Bearer t"),
            user_agent: HeaderValue::from_static("test"),
            base_path: "/".into(),
            retry: RetryPolicy::default(),
            sleeper: Arc::new(ManualTime::new()),
            clock: Arc::new(ManualTime::new()),
            limiter: RateLimiter::disabled(),
            partition: None,
            max_response_bytes: 1024,
            read_stall_timeout: Duration::from_secs(10),
        };
        let client = reqwest::Client::new();
        let request = client.request(m, server.uri()).build().unwrap();
        let status = transport
            .send_with_retries(&client, request, "test")
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

    #[test]
    fn paths_match_their_template_segment_by_segment() {
        let t = "/v1/custom-tools/{id}/run";
        assert!(path_matches("/v1/custom-tools/abc/run", "", t));
        assert!(path_matches("/v1/custom-tools/a%2Fb/run", "", t));
        assert!(path_matches("/proxy/v1/custom-tools/abc/run", "/proxy/", t));
        assert!(!path_matches("/v1/custom-tools/run", "", t));
        assert!(!path_matches("/v1/run", "", t));
        assert!(!path_matches("/v1/custom-tools//run", "", t));
        assert!(!path_matches("/other/v1/custom-tools/abc/run", "/proxy", t));
    }
}
