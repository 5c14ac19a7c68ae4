//! One partition of the gate: the state of one workspace (or token).

use std::collections::BTreeMap;
use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::adaptive::{Adaptive, Holds};
use super::window::Window;
use super::{MAX_COOLDOWN, MAX_JITTER, MAX_ROUNDS, Mode, Passed, Sent, Slot, Stats, Store};
use crate::learned::Refused;
use crate::time::{Clock, Sleep};

/// The gate state of one workspace (or token).
pub(crate) struct Partition {
    label: String,
    /// Where the state is shared with other processes, if anywhere.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    store: Store,
    /// The partition's name in the store (a hash).
    #[cfg(feature = "redis")]
    store_key: String,
    /// The slots this process took in the store's window and has not had
    /// an answer for, with when each was taken.
    #[cfg(feature = "redis")]
    slots: Mutex<Vec<(Instant, String)>>,
    mode: Mode,
    /// False while nothing can hold a call: the fast path is one load.
    engaged: AtomicBool,
    /// The order of waiting calls; tokio's mutex is fair (FIFO).
    queue: tokio::sync::Mutex<()>,
    /// Calls in [`wait`](Self::wait)'s slow path, queued or at its head.
    waiting: AtomicUsize,
    /// Pulsed by the head of the queue each time it wakes, so that calls
    /// behind it see the time and leave once they may wait no longer.
    tick: tokio::sync::Notify,
    /// The deadlines of the calls in [`wait`](Self::wait), as a multiset:
    /// the head never sleeps past the earliest.
    deadlines: Mutex<BTreeMap<Instant, usize>>,
    /// Answers other than 429, counted: a call that meets a 429 while this
    /// grows is not the one holding the workspace back.
    progress: AtomicU64,
    /// When the partition was last looked up, in ms since `origin`.
    last_used: AtomicU64,
    origin: Instant,
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
}

#[derive(Debug, Default)]
struct State {
    cooldown_until: Option<Instant>,
    adaptive: Adaptive,
    /// The allowance of an explicit rate.
    window: Option<Window>,
}

/// What the head of the queue does next.
enum Step {
    Go(Slot),
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
        let state = State {
            window: match mode {
                Mode::Fixed(rate) => Some(Window::new(rate)),
                _ => None,
            },
            ..State::default()
        };
        Self {
            #[cfg(feature = "redis")]
            store_key: super::store::key(&label),
            #[cfg(feature = "redis")]
            slots: Mutex::default(),
            label,
            store,
            mode,
            engaged: AtomicBool::new(matches!(mode, Mode::Fixed(_))),
            queue: tokio::sync::Mutex::new(()),
            waiting: AtomicUsize::new(0),
            tick: tokio::sync::Notify::new(),
            deadlines: Mutex::default(),
            progress: AtomicU64::new(0),
            last_used: AtomicU64::new(0),
            origin: clock.now(),
            state: Mutex::new(state),
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

    /// Answers other than 429 so far.
    pub(crate) fn progress(&self) -> u64 {
        self.progress.load(Ordering::Acquire)
    }

    /// Records a lookup at `now`, for [`is_idle`](Self::is_idle).
    pub(super) fn touch(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.origin).as_millis();
        self.last_used
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Whether dropping this partition loses nothing that matters: not
    /// looked up for `idle`, no cooldown ahead, no slot of an explicit
    /// rate still held, nobody waiting.
    pub(super) fn is_idle(&self, now: Instant, idle: Duration) -> bool {
        let used = self.origin + Duration::from_millis(self.last_used.load(Ordering::Relaxed));
        if now.saturating_duration_since(used) < idle {
            return false;
        }
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.cooldown_until.is_none_or(|until| until <= now)
            && state.window.as_ref().is_none_or(|w| w.is_idle(now))
            && self.queue.try_lock().is_ok()
    }

    /// Waits until a request may be sent; says how long that took. A
    /// call waits `budget` at most: a cooldown or a turn further off than
    /// that is not waited for, and a call still queued when its budget runs
    /// out leaves the queue; either way it is refused, unsent.
    pub(crate) async fn wait(
        &self,
        sleep: &dyn Sleep,
        budget: Duration,
    ) -> Result<Passed, Refused> {
        #[cfg(feature = "redis")]
        if let Some(store) = self.store.get().filter(|s| s.is_up()) {
            let entered = self.clock.now();
            match self.wait_in_store(store, sleep, budget).await {
                // The store paced this call (explicit rate): done.
                Some(Ok(true)) => {
                    return Ok(Passed {
                        waited: self.clock.now().saturating_duration_since(entered),
                        probe: false,
                    });
                }
                Some(Err(refused)) => return Err(refused),
                // Only the shared cooldown is in the store: pace here too.
                Some(Ok(false)) => {
                    let spent = self.clock.now().saturating_duration_since(entered);
                    let here = self
                        .wait_here(sleep, budget.saturating_sub(spent))
                        .await
                        .map_err(|refused| match refused {
                            Refused::Turn { waited } => Refused::Turn {
                                waited: waited + spent,
                            },
                            cooldown => cooldown,
                        })?;
                    return Ok(Passed {
                        waited: spent + here.waited,
                        ..here
                    });
                }
                // The store did not answer: this process alone.
                None => {}
            }
        }
        self.wait_here(sleep, budget).await
    }

    /// The shared part of [`wait`](Self::wait): `Some(Ok(paced))` when the
    /// store answered (and `paced` when it also reserved the call's slot),
    /// `None` when it did not.
    #[cfg(feature = "redis")]
    async fn wait_in_store(
        &self,
        store: &super::store::RedisStore,
        sleep: &dyn Sleep,
        budget: Duration,
    ) -> Option<Result<bool, Refused>> {
        use super::store::{Acquired, Allowance};
        let allowance = match self.mode {
            Mode::Fixed(rate) => Some(Allowance {
                count: rate.count(),
                span: rate.per(),
            }),
            _ => None,
        };
        let mut waited = Duration::ZERO;
        let outcome = loop {
            let left = budget.saturating_sub(waited);
            match store.acquire(&self.store_key, allowance, left).await? {
                Acquired::Refused(left) => break Err(Refused::Cooldown(left)),
                Acquired::Full => break Err(Refused::Turn { waited }),
                Acquired::Later { wait, cooldown } => {
                    if waited.is_zero() {
                        self.event(wait, reason(cooldown));
                    }
                    // Never a busy loop, even on a store that says "now".
                    let wait = wait.max(Duration::from_millis(1));
                    sleep.sleep(wait).await;
                    waited += wait;
                }
                Acquired::After {
                    wait,
                    cooldown,
                    slot,
                } => {
                    if let Some(slot) = slot {
                        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                        slots.push((self.clock.now(), slot));
                        // Slots past the allowance are out of the window anyway.
                        let most = allowance.map_or(0, |a| a.count as usize);
                        while slots.len() > most {
                            take_earliest(&mut slots);
                        }
                    }
                    if !wait.is_zero() {
                        self.event(wait, reason(cooldown));
                        sleep.sleep(wait).await;
                        waited += wait;
                    }
                    break Ok(allowance.is_some());
                }
            }
        };
        if !waited.is_zero() {
            self.count_wait(waited);
        }
        Some(outcome)
    }

    /// An answer came: the earliest slot this process holds in the store's
    /// window is held a span from now (see [`window`](super::window)). The
    /// earliest taken, not the first noted: calls take their slots in one
    /// order and may note them in another.
    #[cfg(feature = "redis")]
    async fn answered_in_store(&self) {
        let (Mode::Fixed(rate), Some(store)) = (self.mode, self.store.get()) else {
            return;
        };
        let slot = take_earliest(&mut self.slots.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(slot) = slot.filter(|_| store.is_up()) {
            Box::pin(store.answered(&self.store_key, &slot, rate.per())).await;
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

    /// The in-process gate: the call queues for its turn, then the head of
    /// the queue waits out cooldowns and pacing while the rest stay parked.
    async fn wait_here(&self, sleep: &dyn Sleep, budget: Duration) -> Result<Passed, Refused> {
        if !self.engaged.load(Ordering::Acquire) {
            return Ok(Passed::default());
        }
        let entered = self.clock.now();
        // `None`: a budget too large to matter.
        let deadline = entered.checked_add(budget);
        let _deadline = Deadline::enter(&self.deadlines, deadline);
        let _waiting = Waiting::enter(&self.waiting);
        // The head may be asleep past this call's deadline: it looks again.
        self.tick.notify_waiters();
        let refused = |now: Instant| Refused::Turn {
            waited: now.saturating_duration_since(entered),
        };
        // Queue, leaving when the budget runs out: the head pulses `tick`
        // whenever it wakes, and never sleeps past the earliest deadline.
        let _turn = {
            let mut lock = pin!(self.queue.lock());
            loop {
                let mut tick = pin!(self.tick.notified());
                tick.as_mut().enable();
                tokio::select! {
                    biased;
                    turn = &mut lock => break turn,
                    () = &mut tick => {}
                }
                let now = self.clock.now();
                if deadline.is_some_and(|d| now >= d) {
                    return Err(refused(now));
                }
            }
        };
        let mut waited = false;
        let mut probe = false;
        // Rounds that slept without the clock moving: only a sleeper that
        // does not advance it makes more than a few.
        let mut still = 0;
        loop {
            let now = self.clock.now();
            let stuck = still > MAX_ROUNDS;
            let (target, reason) = match self.next_step(now) {
                Step::Go(slot) => {
                    probe = slot == Slot::Probe;
                    break;
                }
                Step::Cooldown { until, .. } if stuck => {
                    // Never sent inside a cooldown, even then.
                    return Err(Refused::Cooldown(until - now));
                }
                Step::Pace { .. } if stuck => break,
                Step::Cooldown { until, jitter } => {
                    if deadline.is_some_and(|d| until > d) {
                        return Err(Refused::Cooldown(until - now));
                    }
                    let target = until.checked_add(jitter).unwrap_or(until);
                    (deadline.map_or(target, |d| target.min(d)), "cooldown")
                }
                Step::Pace { until } => {
                    if deadline.is_some_and(|d| until > d) {
                        return Err(refused(now));
                    }
                    (until, "pacing")
                }
            };
            // Woken early for a call behind whose budget runs out first.
            let wake = self.next_deadline(now).map_or(target, |d| d.min(target));
            let wait = wake.saturating_duration_since(now);
            if !waited {
                self.event(target.saturating_duration_since(now), reason);
            }
            waited = true;
            // Woken early too when an answer comes in: a pace that grew
            // brings the next slot nearer.
            let mut tick = pin!(self.tick.notified());
            tick.as_mut().enable();
            let slept = tokio::select! {
                biased;
                () = sleep.sleep(wait) => true,
                () = &mut tick => false,
            };
            still = if slept && self.clock.now() <= now {
                still + 1
            } else {
                0
            };
            self.tick.notify_waiters();
        }
        let total = self.clock.now().saturating_duration_since(entered);
        if waited || !total.is_zero() {
            self.count_wait(total);
        }
        Ok(Passed {
            waited: total,
            probe,
        })
    }

    /// Whether the head of the queue is the only call waiting.
    fn alone(&self) -> bool {
        self.waiting.load(Ordering::Acquire) <= 1
    }

    /// The earliest deadline of a waiting call still ahead of `now` (those
    /// past it leave on their own once pulsed).
    fn next_deadline(&self, now: Instant) -> Option<Instant> {
        use std::ops::Bound::{Excluded, Unbounded};
        let deadlines = self.deadlines.lock().unwrap_or_else(|e| e.into_inner());
        deadlines
            .range((Excluded(now), Unbounded))
            .next()
            .map(|(d, _)| *d)
    }

    fn next_step(&self, now: Instant) -> Step {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = state.cooldown_until.filter(|until| *until > now) {
            // The first call after the cooldown goes a random part of an
            // interval late, so that clients held by it do not all go at
            // once; not into an assumed window, whose slow start or slots
            // already spread them.
            let jitter = if matches!(state.adaptive.holds(), Holds::Window(_)) {
                Duration::ZERO
            } else {
                self.clock
                    .jitter(self.interval(&state, now).min(MAX_JITTER))
            };
            return Step::Cooldown { until, jitter };
        }
        if let Some(window) = &mut state.window {
            return match window.take(now) {
                Ok(()) => Step::Go(Slot::Within),
                Err(until) => Step::Pace { until },
            };
        }
        match self.mode {
            Mode::Adaptive => match state.adaptive.take_slot(now, self.alone()) {
                Ok(slot) => {
                    if state.adaptive.is_free() {
                        // Unpaced and no cooldown ahead: nothing can hold a
                        // call until the next 429.
                        state.cooldown_until = None;
                        self.engaged.store(false, Ordering::Release);
                    }
                    Step::Go(slot)
                }
                Err(until) => Step::Pace { until },
            },
            Mode::Off | Mode::Fixed(_) => Step::Go(Slot::Within),
        }
    }

    /// The pacing interval now, for the jitter after a cooldown.
    fn interval(&self, state: &State, now: Instant) -> Duration {
        match self.mode {
            Mode::Fixed(rate) => rate.interval(),
            _ => state.adaptive.interval(now).unwrap_or(MAX_JITTER),
        }
    }

    /// A request was answered with something other than 429.
    pub(crate) async fn accepted(&self, sent: impl Into<Sent>) {
        self.progress.fetch_add(1, Ordering::AcqRel);
        if self.mode != Mode::Off {
            let now = self.clock.now();
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match &mut state.window {
                Some(window) => window.answered(now),
                None => {
                    let before = state.adaptive.holds();
                    state.adaptive.accepted(sent, now);
                    self.log_change(before, &state.adaptive, now);
                }
            }
        }
        // A pace that grew shortens the head's sleep at once; with nothing
        // engaged, nobody sleeps.
        if self.engaged.load(Ordering::Acquire) {
            self.tick.notify_waiters();
        }
        #[cfg(feature = "redis")]
        self.answered_in_store().await;
    }

    /// A request got a 429 asking to wait `wait`: the whole
    /// partition cools down until then (for [`MAX_COOLDOWN`] at most), in
    /// this process and, with a store, in every process of the fleet.
    pub(crate) async fn throttled(&self, sent: impl Into<Sent>, wait: Duration) {
        let wait = wait.min(MAX_COOLDOWN);
        self.throttled_here(sent.into(), wait);
        #[cfg(feature = "redis")]
        if let Some(store) = self.store.get().filter(|s| s.is_up()) {
            store.cooldown(&self.store_key, wait).await;
            self.answered_in_store().await;
        }
    }

    fn throttled_here(&self, sent: Sent, wait: Duration) {
        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let until = now.checked_add(wait).unwrap_or(now);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.cooldown_until = Some(state.cooldown_until.map_or(until, |u| u.max(until)));
        match &mut state.window {
            Some(window) => {
                window.answered(now);
                window.throttled(until);
            }
            None => {
                let before = state.adaptive.holds();
                state.adaptive.throttled(sent, now, wait);
                self.log_change(before, &state.adaptive, now);
            }
        }
        self.engaged.store(true, Ordering::Release);
    }

    /// An event when what holds the calls changed from `before`: a window
    /// assumed, pacing begun, a limit found lifted. A window that grows as
    /// the rest of its burst is answered is the same window.
    fn log_change(&self, before: Holds, adaptive: &Adaptive, now: Instant) {
        let partition = &self.label;
        match (before, adaptive.holds()) {
            (Holds::Window(_), Holds::Window(_)) | (Holds::Pace, Holds::Pace) => {}
            (_, Holds::Window(rate)) => tracing::info!(
                %partition,
                requests = rate.count(),
                per_ms = rate.per().as_millis() as u64,
                "rate limit: keeping to the window a 429 showed"
            ),
            (before, Holds::Pace) => tracing::info!(
                %partition,
                per_s = adaptive.interval(now).map_or(0.0, |i| 1.0 / i.as_secs_f64()),
                refuted = matches!(before, Holds::Window(_)),
                "rate limit: pacing near the rate the server accepted"
            ),
            (Holds::Window(_), Holds::Nothing) => tracing::info!(
                %partition,
                "rate limit: a probe found the limit above the window; calls go freely until the next 429"
            ),
            (_, Holds::Nothing) => {}
        }
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

/// Why a wait of the store is: the part of it that is a cooldown, if any.
#[cfg(feature = "redis")]
fn reason(cooldown: Duration) -> &'static str {
    if cooldown.is_zero() {
        "pacing"
    } else {
        "cooldown"
    }
}

/// Removes the slot taken first.
#[cfg(feature = "redis")]
fn take_earliest(slots: &mut Vec<(Instant, String)>) -> Option<String> {
    let (i, _) = slots.iter().enumerate().min_by_key(|(_, (due, _))| *due)?;
    Some(slots.swap_remove(i).1)
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

/// A call's deadline in [`Partition::wait`], registered while it is there,
/// cancelled or not.
struct Deadline<'a> {
    deadlines: &'a Mutex<BTreeMap<Instant, usize>>,
    at: Option<Instant>,
}

impl<'a> Deadline<'a> {
    fn enter(deadlines: &'a Mutex<BTreeMap<Instant, usize>>, at: Option<Instant>) -> Self {
        if let Some(at) = at {
            *deadlines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(at)
                .or_default() += 1;
        }
        Self { deadlines, at }
    }
}

impl Drop for Deadline<'_> {
    fn drop(&mut self) {
        let Some(at) = self.at else { return };
        let mut deadlines = self.deadlines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = deadlines.get_mut(&at) {
            *n -= 1;
            if *n == 0 {
                deadlines.remove(&at);
            }
        }
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;

    #[test]
    fn an_answer_ends_the_slot_taken_first_not_the_first_noted() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Noted out of order: a call that took a later slot noted it first.
        let mut slots = vec![
            (t0 + ms(7), "third".to_owned()),
            (t0, "first".to_owned()),
            (t0 + ms(5), "second".to_owned()),
        ];
        assert_eq!(take_earliest(&mut slots).as_deref(), Some("first"));
        assert_eq!(take_earliest(&mut slots).as_deref(), Some("second"));
        assert_eq!(take_earliest(&mut slots).as_deref(), Some("third"));
        assert_eq!(take_earliest(&mut slots), None);
    }
}
