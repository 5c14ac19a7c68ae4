//! The client, its builder, and what the builder checks.

mod base_url;
mod builder;
mod proxy;
mod token;

pub use builder::ClientBuilder;
pub use proxy::Proxy;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::gate::RateLimiter;
use crate::middleware::Pipeline;
use crate::shown::Redactor;
use crate::time::Clock;
use crate::{CallOptions, Error};

/// The production API.
pub const DEFAULT_BASE_URL: &str = "https://api.conduit.ai";

/// A Conduit API client.
///
/// Cheap to clone (an `Arc`); clones share one connection pool. Every call
/// sends the bearer token, retries as its [`RetryPolicy`](crate::RetryPolicy) says and opens a
/// `conduit.request` tracing span per attempt.
///
/// ```
/// let client = conduit_sdk::Client::builder()
///     .token("secret-token")
///     .workspace_id("j57demo8f8x7c9v0n2q4r6t8y1u3i5o")
///     .build()?;
/// // The token never shows in Debug output.
/// assert!(!format!("{client:?}").contains("secret-token"));
/// # Ok::<(), conduit_sdk::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// Always `Some` once assembled: the raw client runs `pipeline`.
    raw: Option<conduit_api_gen::Client>,
    pipeline: Arc<Pipeline>,
    http: reqwest::Client,
    base_url: Url,
    workspace_id: Option<String>,
    total_timeout: Option<Duration>,
    limiter: RateLimiter,
    clock: Arc<dyn Clock>,
    redactor: Redactor,
}

impl Client {
    /// A builder; only the token is required.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from the environment: `CONDUIT_API_TOKEN`
    /// (required), `CONDUIT_BASE_URL`, `CONDUIT_WORKSPACE_ID`,
    /// `CONDUIT_MAX_RETRIES` and `CONDUIT_RATE_LIMIT` (such as `120/min`).
    pub fn from_env() -> Result<Self, Error> {
        ClientBuilder::from_env()?.build()
    }

    /// The generated client, with this client's auth and retries applied to
    /// every operation. [`Client::call`] adds the SDK's error mapping.
    pub fn raw(&self) -> &conduit_api_gen::Client {
        self.inner
            .raw
            .as_ref()
            .expect("assembled clients have a raw client")
    }

    /// A client whose calls use `options` over this client's settings. It
    /// is cheap: it shares this client's connection pool, rate-limit gate
    /// and everything else; only what `options` names differs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use conduit_sdk::{CallOptions, Client};
    ///
    /// let client = Client::builder().token("t").build()?;
    /// let quick = client.with_options(CallOptions::new().total_timeout(Duration::from_secs(5)));
    /// # Ok::<(), conduit_sdk::Error>(())
    /// ```
    pub fn with_options(&self, options: CallOptions) -> Client {
        let base = &*self.inner.pipeline;
        let mut pipeline = base.clone();
        pipeline.retry = options.retry(&base.retry);
        if options.timeout.is_some() {
            pipeline.attempt_timeout = options.timeout;
        }
        pipeline.headers = match (&base.headers, options.header_map()) {
            (Ok(old), Ok(new)) => {
                let mut merged = old.clone();
                for (name, value) in &new {
                    merged.append(name, value.clone());
                }
                Ok(merged)
            }
            (Err(e), _) => Err(e.clone()),
            (_, Err(e)) => Err(e),
        };
        let i = &self.inner;
        Client::assemble(Inner {
            raw: None,
            pipeline: Arc::new(pipeline),
            http: i.http.clone(),
            base_url: i.base_url.clone(),
            workspace_id: i.workspace_id.clone(),
            total_timeout: options.total_timeout.or(i.total_timeout),
            limiter: i.limiter.clone(),
            clock: i.clock.clone(),
            redactor: i.redactor.clone(),
        })
    }

    /// A client from its parts, with a raw client running its pipeline.
    fn assemble(mut inner: Inner) -> Client {
        let root = inner.base_url.as_str().trim_end_matches('/');
        inner.raw = Some(conduit_api_gen::Client::new_with_client(
            root,
            inner.http.clone(),
            conduit_api_gen::Hooks::new(inner.pipeline.clone()),
        ));
        Client {
            inner: Arc::new(inner),
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The workspace used when a call names none.
    pub fn workspace_id(&self) -> Option<&str> {
        self.inner.workspace_id.as_deref()
    }

    /// The rate limiter every request of this client passes.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    pub(crate) fn pipeline(&self) -> &Pipeline {
        &self.inner.pipeline
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn total_timeout(&self) -> Option<Duration> {
        self.inner.total_timeout
    }

    pub(crate) fn system_time(&self) -> std::time::SystemTime {
        self.inner.clock.system_time()
    }

    /// Makes server text fit to show, masking this client's token.
    pub(crate) fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("workspace_id", &self.inner.workspace_id)
            .field("retry", &self.inner.pipeline.retry)
            .field("total_timeout", &self.inner.total_timeout)
            .field("rate_limiter", &self.inner.limiter)
            .field("token", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conduit_api_gen::ClientInfo;
    #[test]
    fn the_raw_client_gets_the_base_url_without_trailing_slash() {
        let c = Client::builder()
            .token("t")
            .base_url("https://proxy.example/conduit/")
            .build()
            .unwrap();
        assert_eq!(c.raw().baseurl(), "https://proxy.example/conduit");
    }

    #[test]
    fn client_is_send_sync_and_clone() {
        fn assert_bounds<T: Send + Sync + Clone + 'static>() {}
        assert_bounds::<Client>();
    }
}
