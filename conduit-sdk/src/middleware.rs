//! Auth, path checks, retries and tracing for every request of the raw client.

use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use conduit_api_gen::{BoxFuture, Middleware, Operation};
use reqwest::header::{AUTHORIZATION, HeaderValue, USER_AGENT};
use tracing::Instrument;

use crate::retry::{Decision, Outcome, RetryPolicy, Sleep};

/// What the middleware learns during one [`Client::call`](crate::Client::call),
/// for the error it may become.
#[derive(Debug, Default)]
pub(crate) struct CallState {
    attempts: AtomicU32,
    last_status: AtomicU16,
    retry_after: Mutex<Option<Duration>>,
    operation: OnceLock<&'static str>,
}

impl CallState {
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
}

tokio::task_local! {
    /// Set by `Client::call` around the raw call; absent when the raw client
    /// is used directly, which still gets auth and retries.
    pub(crate) static CALL: Arc<CallState>;
}

fn with_call(f: impl FnOnce(&CallState)) {
    let _ = CALL.try_with(|state| f(state));
}

/// The SDK's [`Middleware`].
pub(crate) struct Transport {
    pub(crate) authorization: HeaderValue,
    pub(crate) user_agent: HeaderValue,
    pub(crate) base_path: String,
    pub(crate) retry: RetryPolicy,
    pub(crate) sleeper: Arc<dyn Sleep>,
    pub(crate) max_response_bytes: usize,
}

impl Middleware for Transport {
    fn prepare(
        &self,
        request: &mut reqwest::Request,
        op: Option<&'static Operation>,
    ) -> Result<(), String> {
        if let Some(op) = op {
            with_call(|s| {
                let _ = s.operation.set(op.id);
            });
        }
        if let Some(op) = op
            && !path_matches(request.url().path(), &self.base_path, op.path)
        {
            // A path parameter such as `..` was resolved away by URL
            // normalisation: the request would reach another endpoint.
            return Err(format!(
                "a path parameter of {} changes the request path (got {})",
                op.id,
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
        Box::pin(self.send_with_retries(client, request, op.map_or("unknown", |o| o.id)))
    }
}

impl Transport {
    async fn send_with_retries(
        &self,
        client: &reqwest::Client,
        mut request: reqwest::Request,
        op: &'static str,
    ) -> reqwest::Result<reqwest::Response> {
        let method = request.method().clone();
        let mut attempt = 1;
        loop {
            // Kept for a retry, so only while one is possible. A streaming
            // body cannot be replayed; such a request gets one try.
            let replay = if attempt <= self.retry.get_max_retries() {
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
            let result = client
                .execute(request)
                .instrument(span.clone())
                .await
                .map(|r| limit_body(r, self.max_response_bytes));
            let outcome = match &result {
                Ok(response) => {
                    let status = response.status();
                    span.record("status", status.as_u16());
                    with_call(|s| s.last_status.store(status.as_u16(), Ordering::Relaxed));
                    Outcome::of_response(status, response.headers(), SystemTime::now())
                }
                Err(e) => Outcome::of_error(e),
            };
            if let Outcome::Throttled { retry_after } = &outcome {
                with_call(|s| {
                    *s.retry_after.lock().unwrap_or_else(|e| e.into_inner()) = *retry_after
                });
            }
            let decision = self.retry.decide(&outcome, &method, attempt);
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
            self.sleeper.sleep(*wait).await;
            request = next;
            attempt += 1;
        }
    }
}

/// Makes reading more than `limit` bytes of the body fail, so that a huge
/// or endless body cannot exhaust memory. Bodies whose declared length is
/// within the limit are left alone (hyper enforces the declared length).
fn limit_body(response: reqwest::Response, limit: usize) -> reqwest::Response {
    if response
        .content_length()
        .is_some_and(|len| len <= limit as u64)
    {
        return response;
    }
    let url = response.url().clone();
    let (parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
    let body = reqwest::Body::wrap(http_body_util::Limited::new(body, limit));
    let mut limited = http::Response::from_parts(parts, body);
    // reqwest keeps a response's URL in an extension only its builder can set.
    if let Ok(marker) = reqwest::ResponseBuilderExt::url(http::Response::builder(), url).body(()) {
        limited
            .extensions_mut()
            .extend(marker.into_parts().0.extensions);
    }
    reqwest::Response::from(limited)
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
    use std::sync::Mutex;

    use super::*;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    struct NoSleep(Mutex<u32>);

    impl Sleep for NoSleep {
        fn sleep(
            &self,
            _: Duration,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
            *self.0.lock().unwrap() += 1;
            Box::pin(async {})
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
        let transport = Transport {
            authorization: HeaderValue::from_static("Bearer t"),
            user_agent: HeaderValue::from_static("test"),
            base_path: "/".into(),
            retry: RetryPolicy::default(),
            sleeper: Arc::new(NoSleep(Mutex::new(0))),
            max_response_bytes: 1024,
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
