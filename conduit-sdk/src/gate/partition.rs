//! One partition of the gate: the state of one workspace (or token).

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};

use super::adaptive::Adaptive;
use super::{MAX_JITTER, MAX_ROUNDS, Mode, Stats, Store};
use crate::time::{Clock, Sleep};

/// Why the gate sent a call back without letting it through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    /// What is left of the partition's cooldown.
    pub(crate) retry_after: Duration,
}

/// The gate state of one workspace (or token).
pub(crate) struct Partition {
    label: String,
    /// Where the state is shared with other processes, if anywhere.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    store: Store,
    /// The partition's name in the store (a hash).
    #[cfg(feature = "redis")]
    store_key: String,
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
    pub(super) fn new(
        label: String,
        mode: Mode,
        clock: Arc<dyn Clock>,
        stats: Arc<Stats>,
        store: Store,
    ) -> Self {
        let fixed = match mode {
            Mode::Fixed(rate) => governor::Quota::with_period(rate.interval()).map(|q| {
                let q = q.allow_burst(NonZeroU32::MIN);
                governor::RateLimiter::direct_with_clock(q, GateClock::new(clock.clone()))
            }),
            _ => None,
        };
        Self {
            #[cfg(feature = "redis")]
            store_key: super::store::key(&label),
            label,
            store,
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

    /// Whether a call must go through [`wait`](Self::wait) at all: this
    /// partition is pacing or cooling down, or a store may hold a cooldown
    /// from another process. Until then a call costs one atomic load.
    pub(crate) fn must_wait(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.store.get().is_some_and(|s| s.is_up()) {
            return true;
        }
        self.engaged.load(Ordering::Acquire)
    }

    /// Waits until a request may be sent; returns how long that took. A
    /// cooldown longer than `max_wait` is not waited out: the call is
    /// refused at once with what is left of it.
    pub(crate) async fn wait(
        &self,
        sleep: &dyn Sleep,
        max_wait: Duration,
    ) -> Result<Duration, Refused> {
        #[cfg(feature = "redis")]
        if let Some(store) = self.store.get().filter(|s| s.is_up()) {
            let entered = self.clock.now();
            match self.wait_in_store(store, sleep, max_wait).await {
                // The store paced this call (explicit rate): done.
                Some(Ok(true)) => return Ok(self.clock.now().saturating_duration_since(entered)),
                Some(Err(refused)) => return Err(refused),
                // Only the shared cooldown is in the store: pace here too.
                Some(Ok(false)) => {
                    let here = self.wait_here(sleep, max_wait).await?;
                    return Ok(self
                        .clock
                        .now()
                        .saturating_duration_since(entered)
                        .max(here));
                }
                // The store did not answer: this process alone.
                None => {}
            }
        }
        self.wait_here(sleep, max_wait).await
    }

    /// The shared part of [`wait`](Self::wait): `Some(Ok(paced))` when the
    /// store answered (and `paced` when it also reserved the call's slot),
    /// `None` when it did not.
    #[cfg(feature = "redis")]
    async fn wait_in_store(
        &self,
        store: &super::store::RedisStore,
        sleep: &dyn Sleep,
        max_wait: Duration,
    ) -> Option<Result<bool, Refused>> {
        use super::store::Acquired;
        let interval = match self.mode {
            Mode::Fixed(rate) => Some(rate.interval()),
            _ => None,
        };
        match store.acquire(&self.store_key, interval, max_wait).await? {
            Acquired::Refused(left) => Some(Err(Refused { retry_after: left })),
            Acquired::After { wait, cooldown } => {
                if !wait.is_zero() {
                    let reason = if cooldown.is_zero() {
                        "pacing"
                    } else {
                        "cooldown"
                    };
                    self.event(wait, reason);
                    sleep.sleep(wait).await;
                    self.count_wait(wait);
                }
                Some(Ok(interval.is_some()))
            }
        }
    }

    /// One wait of the gate, in the limiter's stats.
    fn count_wait(&self, wait: Duration) {
        self.stats.waits.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        self.stats.waited_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// A tracing event for a wait of the gate.
    fn event(&self, wait: Duration, reason: &'static str) {
        let wait_ms = wait.as_millis() as u64;
        if reason == "cooldown" {
            tracing::info!(partition = %self.label, wait_ms, reason, "waiting for the rate limit");
        } else {
            tracing::debug!(partition = %self.label, wait_ms, reason, "waiting for the rate limit");
        }
    }

    /// The in-process gate.
    async fn wait_here(&self, sleep: &dyn Sleep, max_wait: Duration) -> Result<Duration, Refused> {
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
            self.event(wait, reason);
            waited = true;
            sleep.sleep(wait).await;
        }
        let total = self.clock.now().saturating_duration_since(entered);
        if waited || !total.is_zero() {
            self.count_wait(total);
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
    /// partition cools down until then, in this process and, with a store,
    /// in every process of the fleet.
    pub(crate) async fn throttled(&self, sent: Instant, wait: Duration) {
        self.throttled_here(sent, wait);
        #[cfg(feature = "redis")]
        if let Some(store) = self.store.get().filter(|s| s.is_up()) {
            store.cooldown(&self.store_key, wait).await;
        }
    }

    fn throttled_here(&self, sent: Instant, wait: Duration) {
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
