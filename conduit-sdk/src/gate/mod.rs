//! The rate-limit gate: every request of a [`Client`](crate::Client) passes
//! it before it is sent, first attempts and retries alike.
//!
//! It keeps one [`Partition`] per workspace (or per token when no workspace
//! is named), shared by every clone of the client and by every client built
//! with the same [`RateLimiter`]. A partition holds:
//!
//! - a **cooldown**: after a 429, no request of the partition goes before the
//!   server's `Retry-After` deadline; the first one after it goes a random
//!   part of one pacing interval later, the rest follow at the pacing rate;
//! - a **pacer**: none until the first 429 in adaptive mode (the default),
//!   then the adaptive rate of [`adaptive`]; or, with an explicit [`Rate`],
//!   even pacing from the first call by `governor`'s GCRA.
//!
//! Waiting calls queue in order (a fair async mutex), so only the head of
//! the queue watches the clock: no herd wakes at each slot, and a cancelled
//! call leaves the queue at once.

mod adaptive;
mod rate;

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};

pub use rate::Rate;

use crate::time::{Clock, Sleep};
use adaptive::Adaptive;

/// The longest jitter added after a cooldown.
const MAX_JITTER: Duration = Duration::from_secs(1);
/// Rounds of the head's wait loop before it goes regardless: only a sleeper
/// that does not advance the clock ever needs more than a few.
const MAX_ROUNDS: usize = 64;

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
    partitions: Mutex<HashMap<String, Arc<Partition>>>,
    stats: Arc<Stats>,
}

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
    /// The default: no pacing and no cost until a workspace gets its first
    /// 429; from then on its calls wait out each `Retry-After` together and
    /// are paced near the rate the server accepted, probing back up over
    /// time.
    pub fn adaptive() -> Self {
        Self::new(Mode::Adaptive)
    }

    /// Paces each workspace evenly at `rate` from the first call (one
    /// request every [`Rate::interval`], no burst), and holds it through
    /// 429 cooldowns as [`adaptive`](Self::adaptive) does.
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
                partitions: Mutex::new(HashMap::new()),
                stats: Arc::default(),
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
        let mut map = self
            .shared
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let partition = map.entry(key.to_owned()).or_insert_with(|| {
            Arc::new(Partition::new(
                key.to_owned(),
                self.shared.mode,
                clock.clone(),
                self.shared.stats.clone(),
            ))
        });
        Some(partition.clone())
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

/// Why the gate sent a call back without letting it through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    /// What is left of the partition's cooldown.
    pub(crate) retry_after: Duration,
}

/// The gate state of one workspace (or token).
pub(crate) struct Partition {
    label: String,
    mode: Mode,
    /// False while nothing can hold a call: the fast path is one load.
    engaged: AtomicBool,
    /// The order of waiting calls; tokio's mutex is fair (FIFO).
    queue: tokio::sync::Mutex<()>,
    /// Calls in the slow path of [`wait`](Self::wait), queued or at its head.
    waiting: AtomicUsize,
    state: Mutex<State>,
    fixed: Option<Governor>,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
}

type Governor = governor::RateLimiter<NotKeyed, InMemoryState, GateClock, NoOpMiddleware<Nanos>>;

#[derive(Debug, Default)]
struct State {
    cooldown_until: Option<Instant>,
    adaptive: Adaptive,
}

/// What the head of the queue does next.
enum Step {
    Go,
    Cooldown { until: Instant, jitter: Duration },
    Pace { until: Instant },
}

impl Partition {
    fn new(label: String, mode: Mode, clock: Arc<dyn Clock>, stats: Arc<Stats>) -> Self {
        let fixed = match mode {
            Mode::Fixed(rate) => governor::Quota::with_period(rate.interval()).map(|q| {
                let q = q.allow_burst(NonZeroU32::MIN);
                governor::RateLimiter::direct_with_clock(q, GateClock::new(clock.clone()))
            }),
            _ => None,
        };
        Self {
            label,
            mode,
            engaged: AtomicBool::new(matches!(mode, Mode::Fixed(_))),
            queue: tokio::sync::Mutex::new(()),
            waiting: AtomicUsize::new(0),
            state: Mutex::default(),
            fixed,
            clock,
            stats,
        }
    }

    /// The partition's name in logs: `workspace:<id>` or `token:<hash>`.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Waits until a request may be sent; returns how long that took. A
    /// cooldown longer than `max_wait` is not waited out: the call is
    /// refused at once with what is left of it.
    pub(crate) async fn wait(
        &self,
        sleep: &dyn Sleep,
        max_wait: Duration,
    ) -> Result<Duration, Refused> {
        if !self.engaged.load(Ordering::Acquire) {
            return Ok(Duration::ZERO);
        }
        let entered = self.clock.now();
        let _waiting = Waiting::enter(&self.waiting);
        let _turn = self.queue.lock().await;
        let mut served: Option<Instant> = None;
        let mut waited = false;
        for round in 0..MAX_ROUNDS {
            let now = self.clock.now();
            let alone = round == 0 && self.waiting.load(Ordering::Acquire) == 1;
            let step = self.next_step(now, served, alone);
            let (until, reason) = match step {
                Step::Go => break,
                Step::Cooldown { until, jitter } => {
                    let left = until - now;
                    if left > max_wait {
                        return Err(Refused { retry_after: left });
                    }
                    served = Some(until);
                    (until + jitter, "cooldown")
                }
                Step::Pace { until } => (until, "pacing"),
            };
            let wait = until.saturating_duration_since(now);
            if reason == "cooldown" {
                tracing::info!(partition = %self.label, wait_ms = wait.as_millis() as u64, reason, "waiting for the rate limit");
            } else {
                tracing::debug!(partition = %self.label, wait_ms = wait.as_millis() as u64, reason, "waiting for the rate limit");
            }
            waited = true;
            sleep.sleep(wait).await;
        }
        let total = self.clock.now().saturating_duration_since(entered);
        if waited || !total.is_zero() {
            self.stats.waits.fetch_add(1, Ordering::Relaxed);
            self.stats.waited_nanos.fetch_add(
                u64::try_from(total.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        Ok(total)
    }

    fn next_step(&self, now: Instant, served: Option<Instant>, alone: bool) -> Step {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = state.cooldown_until {
            // A cooldown this call already waited out is done with, even if
            // a sleeper returned early; a later, longer one is not.
            if until > now && served.is_none_or(|s| until > s) {
                let jitter = self
                    .interval(&mut state, now)
                    .min(MAX_JITTER)
                    .mul_f64(fastrand::f64());
                return Step::Cooldown { until, jitter };
            }
        }
        match (&self.fixed, self.mode) {
            (Some(governor), _) => match governor.check() {
                Ok(()) => Step::Go,
                Err(not_until) => Step::Pace {
                    until: now + not_until.wait_time_from(governor.clock().at(now)),
                },
            },
            (None, Mode::Adaptive) => match state.adaptive.take_slot(now, alone) {
                Ok(()) => {
                    if state.adaptive.rate(now).is_none() {
                        // Unpaced again: nothing can hold a call until the
                        // next 429.
                        state.cooldown_until = None;
                        self.engaged.store(false, Ordering::Release);
                    }
                    Step::Go
                }
                Err(until) => Step::Pace { until },
            },
            _ => Step::Go,
        }
    }

    /// The pacing interval now, for the jitter after a cooldown.
    fn interval(&self, state: &mut State, now: Instant) -> Duration {
        match self.mode {
            Mode::Fixed(rate) => rate.interval(),
            _ => state
                .adaptive
                .rate(now)
                .map_or(MAX_JITTER, |r| Duration::from_secs_f64(1.0 / r)),
        }
    }

    /// A request sent at `sent` was answered with something other than 429.
    pub(crate) fn accepted(&self, sent: Instant) {
        if self.mode == Mode::Adaptive {
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .adaptive
                .accepted(sent);
        }
    }

    /// A request sent at `sent` got a 429 asking to wait `wait`: the whole
    /// partition cools down until then.
    pub(crate) fn throttled(&self, sent: Instant, wait: Duration) {
        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let until = now + wait;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.cooldown_until = Some(state.cooldown_until.map_or(until, |u| u.max(until)));
        if self.mode == Mode::Adaptive {
            state.adaptive.throttled(sent, now, wait);
        }
        self.engaged.store(true, Ordering::Release);
    }
}

impl fmt::Debug for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partition")
            .field("label", &self.label)
            .field("engaged", &self.engaged.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Counts a call in [`Partition::wait`]'s slow path while it is there,
/// cancelled or not.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The SDK's [`Clock`] as `governor` reads time: nanoseconds since the
/// clock's first reading.
#[derive(Clone)]
struct GateClock {
    clock: Arc<dyn Clock>,
    origin: Instant,
}

impl GateClock {
    fn new(clock: Arc<dyn Clock>) -> Self {
        let origin = clock.now();
        Self { clock, origin }
    }

    fn at(&self, now: Instant) -> Nanos {
        Nanos::from(now.saturating_duration_since(self.origin))
    }
}

impl GovernorClock for GateClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        self.at(self.clock.now())
    }
}

#[cfg(test)]
mod tests;
