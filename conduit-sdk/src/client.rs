//! The client and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderValue;

use crate::gate::{Partition, Rate, RateLimiter};
use crate::middleware::Transport;
use crate::retry::RetryPolicy;
use crate::time::{Clock, ManualTime, Sleep, TokioTime};
use crate::{CustomTools, Error};

/// The production API.
pub const DEFAULT_BASE_URL: &str = "https://api.conduit.ai";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// A Conduit API client.
///
/// Cheap to clone (an `Arc`); clones share one connection pool. Every call
/// sends the bearer token, retries as its [`RetryPolicy`] says and opens a
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
    raw: conduit_api_gen::Client,
    base_url: Url,
    workspace_id: Option<String>,
    retry: RetryPolicy,
    total_timeout: Option<Duration>,
    limiter: RateLimiter,
    clock: Arc<dyn Clock>,
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

    /// Custom code tools.
    pub fn custom_tools(&self) -> CustomTools<'_> {
        CustomTools::new(self)
    }

    /// The generated client, with this client's auth and retries applied to
    /// every operation. [`Client::call`] adds the SDK's error mapping.
    pub fn raw(&self) -> &conduit_api_gen::Client {
        &self.inner.raw
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

    pub(crate) fn total_timeout(&self) -> Option<Duration> {
        self.inner.total_timeout
    }

    pub(crate) fn system_time(&self) -> std::time::SystemTime {
        self.inner.clock.system_time()
    }

    /// The gate partition of calls in `workspace_id`; `None` when the gate
    /// is disabled.
    pub(crate) fn workspace_partition(&self, workspace_id: &str) -> Option<Arc<Partition>> {
        self.inner
            .limiter
            .partition(&workspace_key(workspace_id), &self.inner.clock)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("workspace_id", &self.inner.workspace_id)
            .field("retry", &self.inner.retry)
            .field("total_timeout", &self.inner.total_timeout)
            .field("rate_limiter", &self.inner.limiter)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Configures a [`Client`].
#[derive(Default)]
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
        Ok(builder)
    }

    /// The API token (required). It is sent as `Authorization: Bearer` and
    /// kept out of Debug output, logs and errors.
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

    /// Allows `http://` to non-loopback hosts, sending the token in clear text.
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
        self.retry = self.retry.max_retries(n);
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

    /// How waits are taken: retry backoff, `Retry-After` and the
    /// rate-limit gate (default: [`TokioTime`]). It must wait on the time
    /// line of the [`clock`](Self::clock).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleep>) -> Self {
        self.sleeper = Some(sleeper);
        self
    }

    /// How the time is read, for the gate's deadlines and rates and for
    /// HTTP-date `Retry-After` values (default: [`TokioTime`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Virtual time for tests: `time` is both the clock and the sleeper,
    /// so every wait is recorded and none is taken.
    ///
    /// ```
    /// use conduit_sdk::{Client, time::ManualTime};
    ///
    /// let time = ManualTime::new();
    /// let client = Client::builder().token("t").manual_time(&time).build()?;
    /// # Ok::<(), conduit_sdk::Error>(())
    /// ```
    pub fn manual_time(self, time: &ManualTime) -> Self {
        self.clock(Arc::new(time.clone()))
            .sleeper(Arc::new(time.clone()))
    }

    /// Paces every workspace evenly at `rate` from the first call: shorthand
    /// for `rate_limiter(RateLimiter::fixed(rate))`. Also read from
    /// `CONDUIT_RATE_LIMIT` (such as `120/min`).
    pub fn rate_limit(self, rate: Rate) -> Self {
        self.rate_limiter(RateLimiter::fixed(rate))
    }

    /// The rate limiter calls pass (default: [`RateLimiter::adaptive`]). A
    /// handle given to several builders makes their clients share it.
    pub fn rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Builds the client; fails on a missing token or a bad base URL.
    pub fn build(self) -> Result<Client, Error> {
        let token = self
            .token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| Error::config("an API token is required"))?;
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {}", token.trim())).map_err(|_| {
                Error::config("the API token contains characters not allowed in a header")
            })?;
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
        let http = match self.http_client {
            Some(_) if self.timeout.is_some() || self.connect_timeout.is_some() => {
                return Err(Error::config(
                    "timeout and connect_timeout configure the SDK's own HTTP client; \
                     set them on the reqwest::Client passed to http_client instead",
                ));
            }
            Some(client) => client,
            None => reqwest::Client::builder()
                .timeout(self.timeout.unwrap_or(DEFAULT_TIMEOUT))
                .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
                .redirect(same_origin_redirects())
                .build()
                .map_err(|e| Error::config("the HTTP client could not be built").with_source(e))?,
        };
        let workspace_id = self.workspace_id.filter(|w| !w.trim().is_empty());
        let clock = self.clock.unwrap_or_else(|| Arc::new(TokioTime));
        let limiter = self.limiter.unwrap_or_default();
        let partition_key = match &workspace_id {
            Some(ws) => workspace_key(ws),
            None => token_key(token.trim()),
        };
        let transport = Transport {
            authorization,
            user_agent,
            base_path: base_url.path().to_owned(),
            retry: self.retry.clone(),
            sleeper: self.sleeper.unwrap_or_else(|| Arc::new(TokioTime)),
            partition: limiter.partition(&partition_key, &clock),
            limiter: limiter.clone(),
            clock: clock.clone(),
            max_response_bytes: self
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
        };
        let root = base_url.as_str().trim_end_matches('/');
        let raw = conduit_api_gen::Client::new_with_client(
            root,
            http,
            conduit_api_gen::Hooks::new(Arc::new(transport)),
        );
        Ok(Client {
            inner: Arc::new(Inner {
                raw,
                base_url,
                workspace_id,
                retry: self.retry,
                total_timeout: self.total_timeout,
                limiter,
                clock,
            }),
        })
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("workspace_id", &self.workspace_id)
            .field("retry", &self.retry)
            .field("rate_limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

/// The gate partition of a workspace.
fn workspace_key(workspace_id: &str) -> String {
    format!("workspace:{workspace_id}")
}

/// The gate partition of a token used without a workspace: a short hash,
/// so that neither logs nor shared stores ever hold the token.
fn token_key(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("token:{hex}")
}

/// Checks and normalises a base URL: http(s) only, no credentials, query or
/// fragment, no clear-text http beyond loopback unless allowed. Messages show
/// the URL with any user info masked.
fn parse_base_url(raw: &str, allow_insecure_http: bool) -> Result<Url, Error> {
    let raw = raw.trim();
    let shown = mask_user_info(raw);
    let url = Url::parse(raw).map_err(|e| {
        Error::config(format!(
            "base URL {shown:?} is not an absolute URL ({e}); it should look like https://api.conduit.ai"
        ))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            "base URL must not hold credentials; the token authenticates",
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::config(format!(
                "base URL {shown:?} uses plain http to a host that is not loopback, \
                 which would send the token in clear text; use https or allow_insecure_http"
            )));
        }
        other => {
            return Err(Error::config(format!(
                "base URL scheme {other:?} is not http or https"
            )));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(format!("base URL {shown:?} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(format!(
            "base URL {shown:?} must not have a query or fragment"
        )));
    }
    Ok(url)
}

/// `scheme://user:pass@host/…` → `scheme://***@host/…`, for messages.
fn mask_user_info(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    match raw[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..start], &raw[start + at..]),
        None => raw.to_owned(),
    }
}

/// Follows redirects only within the base URL's origin: a redirect elsewhere
/// would re-send the request body (tool parameters) to a host the caller did
/// not choose. The 3xx is then returned as an error naming the target.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 10 {
            attempt.error("too many redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conduit_api_gen::ClientInfo;

    #[test]
    fn base_urls_are_checked_and_normalised() {
        let ok = |u: &str| parse_base_url(u, false).unwrap().to_string();
        assert_eq!(ok("https://api.conduit.ai/"), "https://api.conduit.ai/");
        assert_eq!(
            ok("https://proxy.example/conduit/"),
            "https://proxy.example/conduit/"
        );
        assert_eq!(ok("http://127.0.0.1:4010"), "http://127.0.0.1:4010/");
        assert_eq!(ok("http://localhost:4010"), "http://localhost:4010/");
        assert_eq!(ok("http://[::1]:4010"), "http://[::1]:4010/");
        for bad in [
            "api.conduit.ai",
            "",
            "ftp://x",
            "http://api.conduit.ai",
            "https://x/?a=1",
            "https://u:p@x",
        ] {
            let e = parse_base_url(bad, false).unwrap_err();
            assert!(e.is_invalid_input(), "{bad}: {e}");
        }
        assert!(parse_base_url("http://api.conduit.ai", true).is_ok());
    }

    #[test]
    fn user_info_is_masked_in_messages() {
        assert_eq!(mask_user_info("https://u:p@h/x?y#z"), "https://***@h/x?y#z");
        assert_eq!(mask_user_info("u:p@h"), "***@h");
        assert_eq!(mask_user_info("https://h/a@b"), "https://h/a@b");
        assert_eq!(mask_user_info("https://u:p@"), "https://***@");
    }

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
    fn from_lookup_reads_every_variable() {
        let env = |k: &str| match k {
            "CONDUIT_API_TOKEN" => Some("tok".to_owned()),
            "CONDUIT_BASE_URL" => Some("http://127.0.0.1:9".to_owned()),
            "CONDUIT_WORKSPACE_ID" => Some("ws_1".to_owned()),
            "CONDUIT_MAX_RETRIES" => Some("5".to_owned()),
            _ => None,
        };
        let b = ClientBuilder::from_lookup(env).unwrap();
        assert_eq!(b.retry.get_max_retries(), 5);
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
        assert!(e.is_invalid_input());
        assert!(!format!("{e} {e:?}").contains("token-xyz"));
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

    #[test]
    fn client_is_send_sync_and_clone() {
        fn assert_bounds<T: Send + Sync + Clone + 'static>() {}
        assert_bounds::<Client>();
    }
}
