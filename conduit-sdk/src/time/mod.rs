//! Time, injected: a [`Clock`] to read it and a [`Sleep`] to wait on it.
//!
//! Every wait the SDK takes (retry backoff, `Retry-After`, the rate-limit
//! gate) and every reading of "now" it acts on goes through these two, as in
//! smithy's `TimeSource` and `AsyncSleep`. The default, [`TokioTime`], follows
//! Tokio's clock, so `#[tokio::test(start_paused = true)]` works unchanged;
//! [`ManualTime`] makes tests exact without a runtime clock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

/// Reads the time.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic now, for deadlines and rates.
    fn now(&self) -> Instant;
    /// Wall-clock now, for HTTP-date `Retry-After` values.
    fn system_time(&self) -> SystemTime;

    /// A random part of `max`, added to or taken from waits so that calls
    /// that failed together do not retry together. Uniform by default;
    /// [`ManualTime`] takes none, so that tests see exact waits.
    fn jitter(&self, max: Duration) -> Duration {
        Duration::try_from_secs_f64(max.as_secs_f64() * fastrand::f64()).map_or(max, |d| d.min(max))
    }
}

/// Waits between attempts and in the rate-limit gate.
pub trait Sleep: Send + Sync + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl fmt::Debug for dyn Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sleep")
    }
}

impl fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// Tokio's clock and `tokio::time::sleep`: the default. Paused Tokio time
/// (`start_paused`) pauses it too.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioTime;

impl Clock for TokioTime {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn system_time(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl Sleep for TokioTime {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(any(test, feature = "test-util"))]
mod manual;
#[cfg(any(test, feature = "test-util"))]
pub use manual::ManualTime;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_time_moves_only_when_slept_or_advanced() {
        let t = ManualTime::starting_at(SystemTime::UNIX_EPOCH);
        let (i0, s0) = (t.now(), t.system_time());
        assert_eq!(s0, SystemTime::UNIX_EPOCH);
        t.sleep(Duration::from_millis(1500)).await;
        t.advance(Duration::from_secs(1));
        assert_eq!(t.now() - i0, Duration::from_millis(2500));
        assert_eq!(
            t.system_time().duration_since(s0).unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(t.waits(), vec![Duration::from_millis(1500)]);
        let clone = t.clone();
        clone.sleep(Duration::from_secs(2)).await;
        assert_eq!(t.total_waited(), Duration::from_millis(3500));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_time_follows_the_paused_clock() {
        let start = TokioTime.now();
        TokioTime.sleep(Duration::from_secs(30)).await;
        assert_eq!(TokioTime.now() - start, Duration::from_secs(30));
    }
}
