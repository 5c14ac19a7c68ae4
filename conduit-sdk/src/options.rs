//! Settings for some calls only: [`CallOptions`].

use std::fmt;
use std::time::Duration;

use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, HOST, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING,
    USER_AGENT,
};

use crate::RetryPolicy;

/// Settings that override a client's for some calls: per-attempt and total
/// timeouts, the retry policy, extra headers.
///
/// Give them to [`Client::with_options`](crate::Client::with_options) for a
/// derived client (cheap: it shares the connection pool and the rate-limit
/// gate), or to any builder's `options` (such as [`RunCustomTool::options`](crate::api::RunCustomTool::options)) for one call.
///
/// ```no_run
/// use std::time::Duration;
/// use conduit_sdk::{CallOptions, Client};
///
/// # async fn demo(order_id: &str) -> Result<(), conduit_sdk::Error> {
/// let client = Client::builder().token("t").build()?;
/// // A derived client for slow tools: shared by many calls, so nothing in
/// // it is particular to one call.
/// let patient = client.with_options(
///     CallOptions::new()
///         .timeout(Duration::from_secs(120))
///         .max_retries(5),
/// );
/// // A header particular to one call, such as an idempotency key, goes on
/// // that call alone.
/// let run = patient
///     .custom_tools()
///     .run("kg77c0dy0mgdpzmqz6tesry8w184002s")
///     .options(CallOptions::new().header("Idempotency-Key", format!("refund-{order_id}")))
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct CallOptions {
    pub(crate) timeout: Option<Duration>,
    pub(crate) total_timeout: Option<Duration>,
    retry_policy: Option<RetryPolicy>,
    max_retries: Option<u32>,
    headers: Vec<(String, String)>,
}

impl CallOptions {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Timeout of each attempt, from sending to the end of the body.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Timeout of the whole call, retries and waits included.
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = Some(timeout);
        self
    }

    /// The retry policy, replacing the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = Some(policy);
        self
    }

    /// Retries after the first attempt, on top of the policy in force.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }

    /// A header sent with every request (repeatable; the same name twice
    /// sends both). A name or value HTTP does not allow, or one of the
    /// headers the client sets itself (`Authorization`, `Content-Length`,
    /// `Host`, `Transfer-Encoding`, `User-Agent`, in any case), fails each
    /// call with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput),
    /// nothing sent.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `base` with these overrides applied.
    pub(crate) fn retry(&self, base: &RetryPolicy) -> RetryPolicy {
        let policy = self.retry_policy.clone().unwrap_or_else(|| base.clone());
        match self.max_retries {
            Some(n) => policy.with_max_retries(n),
            None => policy,
        }
    }

    /// The headers, checked; the message names the first bad one.
    pub(crate) fn header_map(&self) -> Result<HeaderMap, String> {
        let mut map = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let name = HeaderName::try_from(name.trim())
                .map_err(|_| format!("header name {name:?} is not a valid HTTP header name"))?;
            if let Some(why) = reserved(&name) {
                return Err(format!("the {name} header is the client's: {why}"));
            }
            let mut value = HeaderValue::try_from(value.as_str())
                .map_err(|_| format!("the value of header {name} is not a valid header value"))?;
            // Headers may carry secrets (keys, signatures): keep them out of
            // anything that prints requests.
            value.set_sensitive(true);
            map.append(name, value);
        }
        Ok(map)
    }
}

/// Why a per-call header `name` is refused, if it is: the client sets it,
/// and a second value would be dropped or, for the body's framing, cut the
/// body short while the call reports success.
fn reserved(name: &HeaderName) -> Option<&'static str> {
    Some(if name == AUTHORIZATION {
        "set the token with ClientBuilder::token"
    } else if name == USER_AGENT {
        "set it with ClientBuilder::user_agent"
    } else if name == HOST {
        "it is the base URL's host (ClientBuilder::base_url)"
    } else if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
        "it frames the request body, which the client writes"
    } else {
        return None;
    })
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("CallOptions")
            .field("timeout", &self.timeout)
            .field("total_timeout", &self.total_timeout)
            .field("retry_policy", &self.retry_policy)
            .field("max_retries", &self.max_retries)
            .field("headers", &names)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_retries_applies_on_top_of_the_policy() {
        let base = RetryPolicy::default();
        assert_eq!(CallOptions::new().retry(&base), base);
        assert_eq!(
            CallOptions::new().max_retries(7).retry(&base).max_retries(),
            7
        );
        let own = RetryPolicy::none().with_max_wait(Duration::from_secs(5));
        let merged = CallOptions::new()
            .retry_policy(own)
            .max_retries(1)
            .retry(&base);
        assert_eq!(
            (merged.max_retries(), merged.max_wait()),
            (1, Duration::from_secs(5))
        );
    }

    #[test]
    fn headers_are_checked_and_their_values_never_shown() {
        let ok = CallOptions::new()
            .header("X-Trace", "a")
            .header("x-trace", "b")
            .header("Idempotency-Key", "secret-key-1");
        let map = ok.header_map().unwrap();
        assert_eq!(map.get_all("x-trace").iter().count(), 2);
        assert!(!format!("{ok:?}").contains("secret-key-1"));
        for (bad, says) in [
            (
                CallOptions::new().header("bad name", "v"),
                "not a valid HTTP header name",
            ),
            (
                CallOptions::new().header("X-A", "line\nbreak"),
                "not a valid header value",
            ),
            (
                CallOptions::new().header("authorization", "Bearer x"),
                "the client's",
            ),
        ] {
            let e = bad.header_map().unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        for (name, says) in [
            ("Content-Length", "content-length header is the client's"),
            ("content-length", "frames the request body"),
            ("HOST", "host header is the client's"),
            (
                "Transfer-Encoding",
                "transfer-encoding header is the client's",
            ),
            ("user-AGENT", "ClientBuilder::user_agent"),
            (" Authorization ", "ClientBuilder::token"),
        ] {
            let bad = CallOptions::new().header("X-Ok", "1").header(name, "1");
            let e = bad.header_map().unwrap_err();
            assert!(e.contains(says), "{name}: {e}");
        }
    }
}
