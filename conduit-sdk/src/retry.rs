//! When to retry and how long to wait.
//!
//! Classification (is this outcome retryable, and after how long at the
//! least) is kept apart from the strategy ([`RetryPolicy`]: how many times,
//! the backoff, the longest wait worth taking), and sleeping goes through
//! [`Sleep`](crate::time::Sleep) so tests can observe waits instead of
//! taking them.
//!
//! The rules:
//! - 429 means the request was not processed, so every method retries it,
//!   never before its `Retry-After` (delta-seconds or HTTP-date). Without a
//!   usable `Retry-After` the wait is exponential backoff with jitter.
//! - A call waits [`RetryPolicy::max_wait`] at most, in all: a wait past it
//!   is not taken, and the rate-limit error is returned at once, carrying
//!   the retry-after value.
//! - A connection that could not be opened never reached the server: any
//!   method retries it. A failed TLS handshake is not retried.
//! - 502, 503, 504 and timeouts may have happened after the server acted, so
//!   only idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) retry them.

use std::time::{Duration, SystemTime};

use crate::time::Clock;

use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};

/// How many times to retry and how long to wait.
///
/// ```
/// use std::time::Duration;
/// use conduit_sdk::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_max_retries(5)
///     .with_max_wait(Duration::from_secs(10));
/// assert_eq!(policy.max_retries(), 5);
/// assert_eq!(policy.max_wait(), Duration::from_secs(10));
/// assert_eq!(RetryPolicy::none().max_retries(), 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_wait: Duration,
}

impl Default for RetryPolicy {
    /// 2 retries, backoff from 0.5 s doubling up to 8 s, at most 60 s of
    /// waiting a call.
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self::default().with_max_retries(0)
    }

    /// With `n` retries after the first attempt; 0 turns retrying off.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// With this first backoff, taken when the server gives no usable
    /// `Retry-After`.
    pub fn with_initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }

    /// With backoffs growing to at most `d`.
    pub fn with_max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// With `d` the most a call waits in all: in the rate-limit gate
    /// (queued, cooled down, paced) and between attempts, together. A wait
    /// that would take the call past it is not taken: the call ends at once,
    /// as [`RateLimited`](crate::ErrorKind::RateLimited) with the server's
    /// `Retry-After`, or refused by the gate without sending
    /// ([`Error::is_refused_locally`](crate::Error::is_refused_locally)).
    pub fn with_max_wait(mut self, d: Duration) -> Self {
        self.max_wait = d;
        self
    }

    /// Retries after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The first backoff.
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The most a backoff grows to.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The most a call waits in all.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Backoff before retry number `retry` (1-based): doubling from the
    /// initial backoff, capped, less up to 25 % jitter (from `clock`) so
    /// that clients that failed together do not retry together.
    pub(crate) fn backoff(&self, retry: u32, clock: &dyn Clock) -> Duration {
        let doubled = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        let capped = doubled.min(self.max_backoff);
        capped.saturating_sub(clock.jitter(capped / 4))
    }

    /// What to do before retry number `retry` (1-based) after an attempt
    /// ended in `outcome`, when the call may still wait `budget`.
    pub(crate) fn decide(
        &self,
        outcome: &Outcome,
        method: &Method,
        retry: u32,
        budget: Duration,
        clock: &dyn Clock,
    ) -> Decision {
        if !outcome.retryable(method) {
            return Decision::Return;
        }
        if retry > self.max_retries {
            return Decision::Exhausted;
        }
        let wait = match outcome {
            Outcome::Throttled {
                retry_after: Some(at_least),
            } => *at_least,
            _ => self.backoff(retry, clock),
        };
        if wait > budget {
            Decision::TooLong(wait)
        } else {
            Decision::RetryAfter(wait)
        }
    }
}

/// What happened to one attempt, as far as retrying cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A final answer: success, or an error that retrying will not change.
    Done,
    /// 429, with the server's `Retry-After` if it gave a usable one.
    Throttled { retry_after: Option<Duration> },
    /// 502, 503 or 504.
    Unavailable,
    /// The connection could not be opened: nothing reached the server.
    ConnectFailed,
    /// The request may have reached the server, but no answer came in time
    /// (or the connection dropped after sending).
    Timeout,
}

impl Outcome {
    /// Classifies a response by status and headers.
    /// `now` is read only for a 429, to resolve a `Retry-After` date: a
    /// clock read is not free, and most responses are not 429s.
    pub(crate) fn of_response(
        status: StatusCode,
        headers: &HeaderMap,
        now: impl FnOnce() -> SystemTime,
    ) -> Self {
        match status.as_u16() {
            429 => Outcome::Throttled {
                retry_after: retry_after(headers, now()),
            },
            502..=504 => Outcome::Unavailable,
            _ => Outcome::Done,
        }
    }

    /// Classifies a transport error. A failed TLS handshake is final: a
    /// retry would meet the same certificate or the same plain-HTTP port.
    pub(crate) fn of_error(error: &reqwest::Error) -> Self {
        if find::<rustls::Error>(error).is_some() {
            Outcome::Done
        } else if error.is_connect() {
            Outcome::ConnectFailed
        } else if error.is_timeout() {
            Outcome::Timeout
        } else {
            Outcome::Done
        }
    }

    fn retryable(&self, method: &Method) -> bool {
        match self {
            Outcome::Done => false,
            Outcome::Throttled { .. } | Outcome::ConnectFailed => true,
            Outcome::Unavailable | Outcome::Timeout => is_idempotent(method),
        }
    }
}

/// The verdict on one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Not retryable: hand the outcome back.
    Return,
    /// Retryable, but no retries are left.
    Exhausted,
    /// Retryable, but the wait exceeds the policy's maximum.
    TooLong(Duration),
    /// Wait this long, then retry.
    RetryAfter(Duration),
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// The largest `Retry-After` taken literally; anything above is clamped so
/// that absurd values still compare (and are reported) as "too long".
const MAX_RETRY_AFTER: Duration = Duration::from_secs(365 * 24 * 3600);

/// The wait a `Retry-After` header asks for, if it holds a valid value:
/// delta-seconds (a non-negative number) or an HTTP-date (a date in the past
/// means no wait). Negative, non-numeric and unparsable values are ignored.
///
/// A date is read against the response's own `Date` when it has a valid
/// one, as RFC 9110 intends: both come from the server's clock, so a client
/// clock that is off by an hour does not turn two seconds into an hour.
/// Without it, against `now`.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let server_now = headers
        .get(DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d.trim()).ok());
    parse_retry_after(value, server_now.unwrap_or(now))
}

/// `retry_after` on a header value (public for the fuzz targets).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        let secs: f64 = value.parse().ok()?;
        if !secs.is_finite() {
            return None;
        }
        return Some(
            Duration::try_from_secs_f64(secs).map_or(MAX_RETRY_AFTER, |d| d.min(MAX_RETRY_AFTER)),
        );
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// The first `T` in the error's chain, looking inside `io::Error`s too
/// (whose `source()` skips the error they wrap).
pub(crate) fn find<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && let Some(found) = find::<T>(inner)
        {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::TokioTime;

    /// `decide` with the whole of `max_wait` left.
    fn decide(p: &RetryPolicy, outcome: &Outcome, method: &Method, retry: u32) -> Decision {
        p.decide(outcome, method, retry, p.max_wait(), &TokioTime)
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, value.parse().unwrap());
        h
    }

    #[test]
    fn retry_after_in_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(retry_after(&headers(" 0 "), now), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&headers("1.5"), now),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn retry_after_as_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
        assert_eq!(
            retry_after(&headers(&later), now),
            Some(Duration::from_secs(42))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(retry_after(&headers(&past), now), Some(Duration::ZERO));
    }

    #[test]
    fn unusable_retry_after_values_are_ignored() {
        let now = SystemTime::now();
        for bad in ["-5", "soon", "", "NaN", "inf", "1e400x", "Mon, 32 Foo 2020"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn absurd_retry_after_is_clamped_not_overflowed() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("99999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("1e300", now), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn backoff_doubles_from_half_a_second_and_caps_near_eight() {
        let p = RetryPolicy::default();
        for (retry, full) in [
            (1, 500),
            (2, 1000),
            (3, 2000),
            (4, 4000),
            (5, 8000),
            (9, 8000),
            (40, 8000),
        ] {
            let d = p.backoff(retry, &TokioTime).as_millis() as u64;
            assert!(
                d <= full && d >= full * 3 / 4,
                "retry {retry}: {d} ms not in [{}, {full}]",
                full * 3 / 4
            );
        }
    }

    #[test]
    fn throttling_is_retried_for_every_method_never_before_retry_after() {
        let p = RetryPolicy::default();
        let t = Outcome::Throttled {
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            decide(&p, &t, &Method::POST, 1),
            Decision::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            decide(&p, &t, &Method::GET, 2),
            Decision::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(decide(&p, &t, &Method::POST, 3), Decision::Exhausted);
    }

    #[test]
    fn a_wait_above_the_cap_is_not_taken() {
        let p = RetryPolicy::default();
        let t = Outcome::Throttled {
            retry_after: Some(Duration::from_secs(61)),
        };
        assert_eq!(
            decide(&p, &t, &Method::POST, 1),
            Decision::TooLong(Duration::from_secs(61))
        );
    }

    #[test]
    fn only_idempotent_methods_retry_unavailable_and_timeouts() {
        let p = RetryPolicy::default();
        for outcome in [Outcome::Unavailable, Outcome::Timeout] {
            assert_eq!(decide(&p, &outcome, &Method::POST, 1), Decision::Return);
            assert_eq!(decide(&p, &outcome, &Method::PATCH, 1), Decision::Return);
            for m in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
                assert!(
                    matches!(decide(&p, &outcome, &m, 1), Decision::RetryAfter(_)),
                    "{m}"
                );
            }
        }
    }

    #[test]
    fn connect_failures_retry_for_every_method() {
        let p = RetryPolicy::default();
        assert!(matches!(
            decide(&p, &Outcome::ConnectFailed, &Method::POST, 1),
            Decision::RetryAfter(_)
        ));
    }

    #[test]
    fn zero_retries_never_retries() {
        let p = RetryPolicy::none();
        let t = Outcome::Throttled { retry_after: None };
        assert_eq!(decide(&p, &t, &Method::GET, 1), Decision::Exhausted);
        assert_eq!(
            decide(&p, &Outcome::Done, &Method::GET, 1),
            Decision::Return
        );
    }

    #[test]
    fn statuses_classify() {
        let now = SystemTime::now();
        let h = HeaderMap::new();
        assert_eq!(
            Outcome::of_response(StatusCode::OK, &h, || now),
            Outcome::Done
        );
        assert_eq!(
            Outcome::of_response(StatusCode::NOT_FOUND, &h, || now),
            Outcome::Done
        );
        assert_eq!(
            Outcome::of_response(StatusCode::INTERNAL_SERVER_ERROR, &h, || now),
            Outcome::Done
        );
        assert_eq!(
            Outcome::of_response(StatusCode::BAD_GATEWAY, &h, || now),
            Outcome::Unavailable
        );
        assert_eq!(
            Outcome::of_response(StatusCode::TOO_MANY_REQUESTS, &headers("2"), || now),
            Outcome::Throttled {
                retry_after: Some(Duration::from_secs(2))
            }
        );
    }
}
