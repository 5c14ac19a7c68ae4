//! Virtual time for tests: [`ManualTime`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{Clock, Sleep};

/// Virtual time for tests: it stands still until something sleeps, and a
/// sleep returns at once, moving the time forward by its duration and
/// recording it. Clones share one time line.
///
/// Give the same value to [`ClientBuilder::clock`](crate::ClientBuilder::clock)
/// and [`ClientBuilder::sleeper`](crate::ClientBuilder::sleeper) (or use
/// [`ClientBuilder::manual_time`](crate::ClientBuilder::manual_time)): then
/// waits are observed exactly, and none is taken.
///
/// ```
/// use std::time::Duration;
/// use conduit_sdk::test_util::{Clock, ManualTime, Sleep};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let time = ManualTime::new();
/// let start = time.now();
/// time.sleep(Duration::from_secs(3)).await; // returns at once
/// assert_eq!(time.now() - start, Duration::from_secs(3));
/// assert_eq!(time.waits(), vec![Duration::from_secs(3)]);
/// # }
/// ```
#[derive(Clone)]
pub struct ManualTime {
    inner: Arc<Mutex<Manual>>,
}

struct Manual {
    start: Instant,
    start_system: SystemTime,
    elapsed: Duration,
    waits: Vec<Duration>,
}

impl ManualTime {
    /// Virtual time starting at the real present.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// Virtual time whose wall clock starts at `system_time`.
    pub fn starting_at(system_time: SystemTime) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Manual {
                start: Instant::now(),
                start_system: system_time,
                elapsed: Duration::ZERO,
                waits: Vec::new(),
            })),
        }
    }

    /// Moves the time forward without recording a wait.
    pub fn advance(&self, by: Duration) {
        self.lock().elapsed += by;
    }

    /// The waits taken so far, in order.
    pub fn waits(&self) -> Vec<Duration> {
        self.lock().waits.clone()
    }

    /// The sum of the waits taken so far.
    pub fn total_waited(&self) -> Duration {
        self.lock().waits.iter().sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Manual> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for ManualTime {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.lock();
        f.debug_struct("ManualTime")
            .field("elapsed", &m.elapsed)
            .field("waits", &m.waits.len())
            .finish()
    }
}

impl Clock for ManualTime {
    fn now(&self) -> Instant {
        let m = self.lock();
        m.start + m.elapsed
    }

    fn system_time(&self) -> SystemTime {
        let m = self.lock();
        m.start_system + m.elapsed
    }

    /// None: waits under virtual time are exact.
    fn jitter(&self, _max: Duration) -> Duration {
        Duration::ZERO
    }
}

impl Sleep for ManualTime {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut m = self.lock();
        m.elapsed += duration;
        m.waits.push(duration);
        Box::pin(std::future::ready(()))
    }
}
