//! The rate-limit gate: every request of a [`Client`](crate::Client) passes
//! it before it is sent, first attempts and retries alike.
//!
//! It keeps one [`Partition`] per workspace (or per token when no workspace
//! is named), shared by every clone of the client and by every client built
//! with the same [`RateLimiter`]. A partition holds:
//!
//! - a **cooldown**: after a 429, no request of the partition goes before the
//!   server's `Retry-After` deadline; the first one after it goes a random
//!   part of one pacing interval later (not into an assumed window, whose
//!   slow start spreads them), the rest follow at the pacing rate;
//! - a **pacer**: none until the first 429 in adaptive mode (the default),
//!   then the window that 429 shows ([`assumed`]), or where that proves
//!   wrong, the adaptive rate of [`adaptive`]; or, with an explicit
//!   [`Rate`], the rate's allowance from the first call ([`window`]).
//!
//! Waiting calls queue in order (a fair async mutex), so only the head of
//! the queue watches the clock: no herd wakes at each slot, and a cancelled
//! call leaves the queue at once.
//!
//! **How the rate rises after 429s stop** is [`assumed`]'s and
//! [`adaptive`]'s to say: a window assumed is probed once a window for a
//! lifted limit; a pace goes back to just under the limit found within a
//! second of the cooldown, holds for a time that lengthens with each 429
//! met, then doubles on evidence every 250 ms. Either way a lifted limit is
//! found in seconds (smithy-rs's CUBIC, our anchor, takes tens of seconds
//! to pass ten times its last limit, and ignores `Retry-After`).
//!
//! **The bound on every wait.** Each call brings a budget, what is left of
//! its [`RetryPolicy::max_wait`](crate::RetryPolicy::max_wait). A cooldown or
//! a pacing slot further off than that is refused at once; a call still
//! queued when its budget runs out leaves the queue (the head never sleeps
//! past the earliest deadline of the calls behind it, and wakes them when it
//! wakes). So no call waits in the gate longer than it allows, whatever the
//! server says, and a cooldown is never cut short: a call either waits it
//! out whole or is refused unsent. One 429 imposes at most
//! [`RateLimiter::MAX_COOLDOWN`].

mod adaptive;
mod assumed;
mod partition;
mod rate;
#[cfg(feature = "redis")]
mod store;
mod window;

use std::collections::HashMap;
use std::fmt;
#[cfg(feature = "redis")]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) use partition::Partition;
pub use rate::Rate;

use crate::time::Clock;

/// How a call got through the gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Passed {
    /// How long it waited.
    pub(crate) waited: Duration,
    /// Its request goes beyond an assumed window, to probe it
    /// ([`assumed`]).
    pub(crate) probe: bool,
}

/// A request sent through the gate, for its answer to be told to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) at: Instant,
    /// See [`Passed::probe`].
    pub(crate) probe: bool,
}

impl From<Instant> for Sent {
    /// A request that was no probe.
    fn from(at: Instant) -> Self {
        Self { at, probe: false }
    }
}

/// What a pacer let a request through as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Within the allowance or the pace.
    Within,
    /// Beyond an assumed window, to probe it.
    Probe,
}

/// The longest jitter added after a cooldown.
const MAX_JITTER: Duration = Duration::from_millis(500);
/// Rounds of the head's wait loop without the clock moving before it goes
/// regardless: only a sleeper that does not advance the clock needs more.
const MAX_ROUNDS: usize = 64;
/// [`RateLimiter::MAX_COOLDOWN`].
const MAX_COOLDOWN: Duration = RateLimiter::MAX_COOLDOWN;
/// A partition not looked up for this long, with no cooldown ahead and no
/// call waiting, may be dropped: what it learned is stale by then.
const IDLE: Duration = Duration::from_secs(120);
/// Partitions kept before the first sweep for idle ones.
const SWEEP_FROM: usize = 1024;

/// Paces the calls of one workspace and holds them through 429 cooldowns.
///
/// Every client has one; its clones share it. Give two builders the same
/// handle ([`ClientBuilder::rate_limiter`](crate::ClientBuilder::rate_limiter))
/// to make two clients share their partitions.
///
/// ```
/// use conduit_sdk::{Client, Rate, RateLimiter};
///
/// // Two clients (say, with different timeouts) that keep to one limit.
/// let limiter = RateLimiter::fixed(Rate::per_minute(120).unwrap());
/// let a = Client::builder().token("t").rate_limiter(limiter.clone()).build()?;
/// let b = Client::builder().token("t").rate_limiter(limiter.clone()).build()?;
/// assert_eq!(limiter.stats().throttled, 0);
/// # Ok::<(), conduit_sdk::Error>(())
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

struct Shared {
    mode: Mode,
    partitions: Mutex<Partitions>,
    stats: Arc<Stats>,
    store: Store,
}

/// The partitions of a limiter, by name.
#[derive(Default)]
struct Partitions {
    map: HashMap<String, Arc<Partition>>,
    /// The size at which the next sweep for idle partitions runs: twice
    /// what the last one kept, so sweeping costs O(1) a partition made.
    sweep_at: usize,
}

impl Partitions {
    /// Drops the idle partitions nobody holds, once the map has grown
    /// enough since the last sweep.
    fn sweep(&mut self, now: Instant) {
        if self.map.len() < self.sweep_at.max(SWEEP_FROM) {
            return;
        }
        self.map
            .retain(|_, p| Arc::strong_count(p) > 1 || !p.is_idle(now, IDLE));
        self.sweep_at = 2 * self.map.len();
    }
}

/// Where partitions share their state with other processes: set at most
/// once per limiter ([`ClientBuilder::rate_store`](crate::ClientBuilder)),
/// empty otherwise.
#[cfg(feature = "redis")]
pub(crate) type Store = Arc<OnceLock<store::RedisStore>>;
/// Without the `redis` feature there is nothing to share state through.
#[cfg(not(feature = "redis"))]
pub(crate) type Store = ();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Adaptive,
    Fixed(Rate),
}

/// What a [`RateLimiter`] has seen, over all its partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimiterStats {
    /// 429 responses received.
    pub throttled: u64,
    /// Calls that waited in the gate.
    pub waits: u64,
    /// Time spent waiting in the gate, summed over calls.
    pub waited: Duration,
}

#[derive(Debug, Default)]
struct Stats {
    throttled: AtomicU64,
    waits: AtomicU64,
    waited_nanos: AtomicU64,
}

impl RateLimiter {
    /// The longest cooldown one 429 can impose on a workspace: twice the
    /// one-minute window Conduit documents. A `Retry-After` beyond it still
    /// ends the call that got it (as [`RateLimited`](crate::ErrorKind::RateLimited),
    /// with the server's value), but holds the workspace's other calls, in
    /// this process and through a shared store, for this long at most.
    pub const MAX_COOLDOWN: Duration = Duration::from_secs(120);

    /// The default: no pacing and no cost until a workspace gets its first
    /// 429; from then on its calls wait out each `Retry-After` together and
    /// keep to the window that 429 showed (the requests accepted, over the
    /// whole seconds of the time they took plus the `Retry-After`), as [`fixed`](Self::fixed)
    /// keeps to a rate given. A 429 that window did not foresee (a server
    /// that does not count in windows) and they are paced near the rate the
    /// server accepted instead. Either way they probe for a lifted limit.
    pub fn adaptive() -> Self {
        Self::new(Mode::Adaptive)
    }

    /// Keeps each workspace to `rate` from the first call: at most
    /// [`Rate::count`] requests in any [`Rate::per`], so a job within the
    /// allowance goes at once and a larger one takes each slot as it frees
    /// (a span after the request that held it was answered); holds it
    /// through 429 cooldowns as [`adaptive`](Self::adaptive) does, and for
    /// a span after each cooldown lets slots go one [`Rate::interval`]
    /// apart rather than at once.
    pub fn fixed(rate: Rate) -> Self {
        Self::new(Mode::Fixed(rate))
    }

    /// No gate: each call waits out its own 429s as its retry policy says,
    /// unaware of the others.
    pub fn disabled() -> Self {
        Self::new(Mode::Off)
    }

    fn new(mode: Mode) -> Self {
        Self {
            shared: Arc::new(Shared {
                mode,
                partitions: Mutex::default(),
                stats: Arc::default(),
                store: Store::default(),
            }),
        }
    }

    /// The explicit rate, if this limiter has one.
    pub fn rate(&self) -> Option<Rate> {
        match self.shared.mode {
            Mode::Fixed(rate) => Some(rate),
            _ => None,
        }
    }

    /// Whether calls pass a gate at all (false for [`disabled`](Self::disabled)).
    pub fn is_enabled(&self) -> bool {
        self.shared.mode != Mode::Off
    }

    /// Counts so far: 429s seen, calls that waited, and how long.
    pub fn stats(&self) -> RateLimiterStats {
        let s = &self.shared.stats;
        RateLimiterStats {
            throttled: s.throttled.load(Ordering::Relaxed),
            waits: s.waits.load(Ordering::Relaxed),
            waited: Duration::from_nanos(s.waited_nanos.load(Ordering::Relaxed)),
        }
    }

    /// The partition named `key`, made on first use; `None` when disabled.
    pub(crate) fn partition(&self, key: &str, clock: &Arc<dyn Clock>) -> Option<Arc<Partition>> {
        if self.shared.mode == Mode::Off {
            return None;
        }
        let now = clock.now();
        let mut partitions = self
            .shared
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(partition) = partitions.map.get(key) {
            partition.touch(now);
            return Some(partition.clone());
        }
        partitions.sweep(now);
        let partition = Arc::new(Partition::new(
            key.to_owned(),
            self.shared.mode,
            clock.clone(),
            self.shared.stats.clone(),
            self.shared.store.clone(),
        ));
        partition.touch(now);
        partitions.map.insert(key.to_owned(), partition.clone());
        Some(partition)
    }

    /// Partitions held now (idle ones are dropped as new ones come).
    #[cfg(test)]
    fn partition_count(&self) -> usize {
        let partitions = self.shared.partitions.lock();
        partitions.unwrap_or_else(|e| e.into_inner()).map.len()
    }

    /// Keeps this limiter's state in the Redis at `url`, shared with every
    /// process that uses the same store and workspace. Once per limiter:
    /// another URL later is an error, the same one is fine.
    #[cfg(feature = "redis")]
    pub(crate) fn use_store(&self, url: &str) -> Result<(), crate::Error> {
        let new = store::RedisStore::new(url)?;
        let set = self.shared.store.get_or_init(|| new);
        if set.url() != url.trim() {
            return Err(crate::Error::config(format!(
                "this rate limiter already keeps its state in {}",
                set.shown()
            )));
        }
        Ok(())
    }

    /// Counts a 429 seen while the gate is disabled.
    pub(crate) fn count_throttled(&self) {
        self.shared.stats.throttled.fetch_add(1, Ordering::Relaxed);
    }
}

impl Default for RateLimiter {
    /// [`RateLimiter::adaptive`].
    fn default() -> Self {
        Self::adaptive()
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.shared.mode {
            Mode::Off => "disabled".to_owned(),
            Mode::Adaptive => "adaptive".to_owned(),
            Mode::Fixed(rate) => format!("fixed {rate}"),
        };
        f.debug_struct("RateLimiter")
            .field("mode", &mode)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The gate partition of a workspace.
pub(crate) fn workspace_key(workspace_id: &str) -> String {
    format!("workspace:{workspace_id}")
}

#[cfg(test)]
mod tests;
