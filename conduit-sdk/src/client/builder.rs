//! [`ClientBuilder`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;

use super::base_url::{is_loopback, parse_base_url, same_origin_redirects};
use super::{Client, DEFAULT_BASE_URL, Inner, Proxy, token};
use crate::Error;
use crate::gate::workspace_key;
use crate::gate::{Rate, RateLimiter};
use crate::middleware::Pipeline;
use crate::retry::RetryPolicy;
use crate::shown::Redactor;
#[cfg(feature = "test-util")]
use crate::time::ManualTime;
use crate::time::{Clock, Sleep, TokioTime};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
const DEFAULT_READ_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Configures a [`Client`]. Cloning it is cheap: a builder can be the
/// template of several clients.
#[derive(Clone, Default)]
pub struct ClientBuilder {
    token: Option<String>,
    base_url: Option<String>,
    workspace_id: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    total_timeout: Option<Duration>,
    retry: RetryPolicy,
    user_agent: Option<String>,
    http_client: Option<reqwest::Client>,
    sleeper: Option<Arc<dyn Sleep>>,
    clock: Option<Arc<dyn Clock>>,
    limiter: Option<RateLimiter>,
    allow_insecure_http: bool,
    max_response_bytes: Option<usize>,
    read_stall_timeout: Option<Duration>,
    proxy: Option<Proxy>,
    rate_store: Option<String>,
}

impl ClientBuilder {
    /// A builder filled from the environment (see [`Client::from_env`]),
    /// which further calls may override.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let set = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let token = set("CONDUIT_API_TOKEN")
            .ok_or_else(|| Error::config("CONDUIT_API_TOKEN is not set"))?;
        let mut builder = Self::default().token(token);
        if let Some(url) = set("CONDUIT_BASE_URL") {
            builder = builder.base_url(url);
        }
        if let Some(ws) = set("CONDUIT_WORKSPACE_ID") {
            builder = builder.workspace_id(ws);
        }
        if let Some(n) = set("CONDUIT_MAX_RETRIES") {
            let n = n.trim().parse().map_err(|_| {
                Error::config(format!(
                    "CONDUIT_MAX_RETRIES must be a whole number, got {n:?}"
                ))
            })?;
            builder = builder.max_retries(n);
        }
        if let Some(rate) = set("CONDUIT_RATE_LIMIT") {
            let rate: Rate = rate.parse().map_err(|_| {
                Error::config(format!(
                    "CONDUIT_RATE_LIMIT must be a rate such as 120/min or 2/s, got {rate:?}"
                ))
            })?;
            builder = builder.rate_limit(rate);
        }
        if let Some(url) = set("CONDUIT_RATE_STORE") {
            builder.rate_store = Some(url);
        }
        Ok(builder)
    }

    /// The API token (required). It is sent as `Authorization: Bearer` and
    /// kept out of Debug output, logs and errors. Outer white space is
    /// trimmed; [`build`](Self::build) refuses a token with white space or
    /// characters outside visible ASCII inside, or a `Bearer ` prefix.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The API root; defaults to `https://api.conduit.ai`. A path prefix is
    /// kept; plain `http` is refused unless the host is loopback or
    /// [`allow_insecure_http`](Self::allow_insecure_http) is set.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Allows `http://` to non-loopback hosts, sending the token in clear
    /// text (and to any proxy on the way: see [`proxy`](Self::proxy)).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The workspace used when a call names none.
    pub fn workspace_id(mut self, id: impl Into<String>) -> Self {
        self.workspace_id = Some(id.into());
        self
    }

    /// Timeout of each attempt, from sending to the end of the body
    /// (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Timeout for opening a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Timeout of a whole call, retries and waits included (default none).
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = Some(timeout);
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Shorthand for the policy's [`RetryPolicy::max_retries`].
    pub fn max_retries(mut self, n: u32) -> Self {
        self.retry = self.retry.with_max_retries(n);
        self
    }

    /// The `User-Agent` header (default `conduit-sdk-rust/<version>`).
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = Some(agent.into());
        self
    }

    /// Your own `reqwest::Client` (proxies, TLS roots…). Its own timeouts
    /// and redirect policy apply (the SDK's own client follows redirects
    /// only within the base URL's origin); combining it with
    /// [`timeout`](Self::timeout) or [`connect_timeout`](Self::connect_timeout)
    /// is an error.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The largest response body read (default 32 MiB). A larger body fails
    /// the call instead of filling memory.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = Some(limit);
        self
    }

    /// The longest the response body may go without delivering a byte
    /// (default 10 s): a body that stalls fails the call with
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) instead of
    /// holding it until the per-attempt timeout. Waiting for the response
    /// head is not a stall (the tool runs then): the per-attempt timeout
    /// bounds that.
    pub fn read_stall_timeout(mut self, limit: Duration) -> Self {
        self.read_stall_timeout = Some(limit);
        self
    }

    /// The proxy requests go through (default [`Proxy::from_env`]). A
    /// loopback base URL never goes through one. See [`Proxy`].
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// How waits are taken: retry backoff, `Retry-After` and the
    /// rate-limit gate (default: Tokio's timer). It must wait on the time
    /// line of the [`clock`](Self::clock).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleep>) -> Self {
        self.sleeper = Some(sleeper);
        self
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// How the time is read, for the gate's deadlines and rates and for
    /// HTTP-date `Retry-After` values (default: Tokio's clock, so paused
    /// Tokio time pauses it too).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    /// Virtual time for tests: `time` is both the clock and the sleeper,
    /// so every wait is recorded and none is taken.
    ///
    /// ```
    /// use conduit_sdk::{Client, test_util::ManualTime};
    ///
    /// let time = ManualTime::new();
    /// let client = Client::builder().token("t").manual_time(&time).build()?;
    /// # Ok::<(), conduit_sdk::Error>(())
    /// ```
    pub fn manual_time(self, time: &ManualTime) -> Self {
        self.clock(Arc::new(time.clone()))
            .sleeper(Arc::new(time.clone()))
    }

    /// Keeps every workspace to `rate` (at most [`Rate::count`] requests in
    /// any [`Rate::per`]) from the first call: shorthand for
    /// `rate_limiter(RateLimiter::fixed(rate))`. Also read from
    /// `CONDUIT_RATE_LIMIT` (such as `120/min`).
    pub fn rate_limit(self, rate: Rate) -> Self {
        self.rate_limiter(RateLimiter::fixed(rate))
    }

    /// Keeps the rate-limit gate's state in Redis at `url`
    /// (`redis://[:password@]host[:port][/db]`), so that every process using
    /// the same store and workspace keeps to one limit together: the 429
    /// cooldowns, and the allowance of an explicit
    /// [`rate_limit`](Self::rate_limit). Also read from
    /// `CONDUIT_RATE_STORE`.
    ///
    /// The store never costs a call: when Redis is unreachable, slow or
    /// failing, calls go on under this process's own gate, one warning is
    /// logged, and the store is used again once it answers.
    ///
    /// Available with the `redis` feature.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn rate_store(mut self, url: impl Into<String>) -> Self {
        self.rate_store = Some(url.into());
        self
    }

    /// The rate limiter calls pass (default: [`RateLimiter::adaptive`]). A
    /// handle given to several builders makes their clients share it.
    pub fn rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Builds the client; fails on a missing or malformed token, a bad base
    /// URL or proxy, or settings that contradict each other.
    pub fn build(self) -> Result<Client, Error> {
        let token = token::check(self.token.as_deref())?;
        let mut authorization = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Error::config("the API token is not a valid header value"))?;
        authorization.set_sensitive(true);
        let agent = self
            .user_agent
            .unwrap_or_else(|| format!("conduit-sdk-rust/{}", env!("CARGO_PKG_VERSION")));
        let user_agent = HeaderValue::try_from(agent)
            .map_err(|_| Error::config("the user agent is not a valid header value"))?;
        let base_url = parse_base_url(
            self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            self.allow_insecure_http,
        )?;
        let proxy_set = self.proxy.is_some();
        let proxy = self.proxy.unwrap_or_default();
        let http = match self.http_client {
            Some(_) if self.timeout.is_some() || self.connect_timeout.is_some() => {
                return Err(Error::config(
                    "timeout and connect_timeout configure the SDK's own HTTP client; \
                     set them on the reqwest::Client passed to http_client instead",
                ));
            }
            Some(_) if proxy_set => {
                return Err(Error::config(
                    "proxy configures the SDK's own HTTP client; \
                     set it on the reqwest::Client passed to http_client instead",
                ));
            }
            Some(client) => client,
            None => {
                let builder = reqwest::Client::builder()
                    .timeout(self.timeout.unwrap_or(DEFAULT_TIMEOUT))
                    .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
                    .redirect(same_origin_redirects());
                proxy.apply(builder, &base_url)?.build().map_err(|e| {
                    Error::config("the HTTP client could not be built").with_source(e)
                })?
            }
        };
        if base_url.scheme() == "http"
            && !is_loopback(&base_url)
            && proxy.may_see_clear_text(|k| std::env::var(k).ok())
        {
            tracing::warn!(
                "plain http through a proxy: the proxy sees every request, the token included"
            );
        }
        let workspace_id = self.workspace_id.filter(|w| !w.trim().is_empty());
        let clock = self.clock.unwrap_or_else(|| Arc::new(TokioTime));
        let limiter = self.limiter.unwrap_or_default();
        if let Some(url) = &self.rate_store {
            #[cfg(feature = "redis")]
            limiter.use_store(url)?;
            #[cfg(not(feature = "redis"))]
            return Err(Error::config(format!(
                "a rate store ({}) needs conduit-sdk's redis feature",
                crate::shown::mask_url(url.trim())
            )));
        }
        let partition_key = match &workspace_id {
            Some(ws) => workspace_key(ws),
            None => token::partition_key(token),
        };
        let pipeline = Pipeline {
            authorization,
            user_agent,
            retry: self.retry.clone(),
            sleeper: self.sleeper.unwrap_or_else(|| Arc::new(TokioTime)),
            partition: limiter.partition(&partition_key, &clock),
            token_partition: limiter.partition(&token::partition_key(token), &clock),
            limiter: limiter.clone(),
            clock: clock.clone(),
            max_response_bytes: self
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            read_stall_timeout: self
                .read_stall_timeout
                .unwrap_or(DEFAULT_READ_STALL_TIMEOUT),
            attempt_timeout: None,
            headers: Ok(Default::default()),
        };
        Ok(Client::assemble(Inner {
            raw: None,
            pipeline: Arc::new(pipeline),
            http,
            base_url,
            workspace_id,
            total_timeout: self.total_timeout,
            limiter,
            clock,
            redactor: Redactor::new(token),
        }))
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field(
                "base_url",
                &self.base_url.as_deref().map(crate::shown::mask_url),
            )
            .field("workspace_id", &self.workspace_id)
            .field("retry", &self.retry)
            .field("rate_limiter", &self.limiter)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn from_lookup_reads_every_variable() {
        let env = |k: &str| match k {
            "CONDUIT_API_TOKEN" => Some("tok".to_owned()),
            "CONDUIT_BASE_URL" => Some("http://127.0.0.1:9".to_owned()),
            "CONDUIT_WORKSPACE_ID" => Some("ws_1".to_owned()),
            "CONDUIT_MAX_RETRIES" => Some("5".to_owned()),
            _ => None,
        };
        let b = ClientBuilder::from_lookup(env).unwrap();
        assert_eq!(b.retry.max_retries(), 5);
        let c = b.build().unwrap();
        assert_eq!(c.base_url().as_str(), "http://127.0.0.1:9/");
        assert_eq!(c.workspace_id(), Some("ws_1"));
    }

    #[test]
    fn from_lookup_requires_a_token_and_a_numeric_retry_count() {
        let e = ClientBuilder::from_lookup(|_| None).unwrap_err();
        assert!(
            e.to_string().contains("CONDUIT_API_TOKEN is not set"),
            "{e}"
        );
        let e = ClientBuilder::from_lookup(|k| match k {
            "CONDUIT_API_TOKEN" => Some("t".into()),
            "CONDUIT_MAX_RETRIES" => Some("many".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(e.to_string().contains("CONDUIT_MAX_RETRIES"), "{e}");
    }

    #[test]
    fn a_token_unfit_for_a_header_is_refused_without_echoing_it() {
        let e = Client::builder()
            .token("bad\ntoken-xyz")
            .build()
            .unwrap_err();
        assert!(e.is_config());
        assert!(!format!("{e} {e:?}").contains("token-xyz"));
    }

    #[test]
    fn a_base_url_password_is_not_in_the_builders_debug() {
        for c in ["/", "?", "#", "@", ":", "%", " "] {
            let b = Client::builder().base_url(format!("https://u:PW{c}PASS999@h/"));
            let shown = format!("{b:?}");
            assert!(!shown.contains("PASS999"), "{shown}");
            assert!(shown.contains("***@h/"), "{shown}");
        }
    }

    #[test]
    fn a_rate_store_password_is_never_shown() {
        for c in ["/", "?", "#", "@", ":", "%", " "] {
            let url = format!("redis://:RD{c}PASS777@127.0.0.1:16390/0");
            let env = |k: &str| match k {
                "CONDUIT_API_TOKEN" => Some("tok".to_owned()),
                "CONDUIT_RATE_STORE" => Some(url.clone()),
                _ => None,
            };
            let b = ClientBuilder::from_lookup(env).unwrap();
            let built = b.clone().build();
            let shown = match &built {
                Ok(c) => format!("{b:?} {c:?}"),
                Err(e) => format!("{b:?} {e} {e:?}"),
            };
            assert!(!shown.contains("PASS777"), "{url}: {shown}");
            // A second, different store for the same limiter names the first.
            #[cfg(feature = "redis")]
            if let Ok(client) = built {
                let e = Client::builder()
                    .token("tok")
                    .rate_limiter(client.rate_limiter().clone())
                    .rate_store("redis://other:6379")
                    .build()
                    .unwrap_err();
                let shown = format!("{e} {e:?}");
                assert!(
                    e.is_config() && !shown.contains("PASS777"),
                    "{url}: {shown}"
                );
            }
        }
    }

    #[test]
    fn own_http_client_with_sdk_timeouts_is_refused() {
        let e = Client::builder()
            .token("t")
            .http_client(reqwest::Client::new())
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("http_client"), "{e}");
    }
}
