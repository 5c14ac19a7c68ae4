//! The adaptive rate: none until a partition's first 429; then the window
//! that 429 shows, if the server counts in windows
//! ([`assumed`](super::assumed)); else paced near the rate the server
//! accepted, climbing back once 429s stop. A window assumed and refuted
//! (by a 429 it did not foresee) is not assumed again: the partition paces
//! from then on, as described here.
//!
//! The anchor is the AWS SDKs' adaptive retry mode (smithy-rs
//! `client_rate_limiter.rs`: CUBIC on the measured send rate, cut by β at
//! each throttle). It recovers within seconds from a brief throttle but
//! ignores `Retry-After`, starts from the send rate (hundreds a second after
//! a burst, so it takes many 429s to come down), and grows past the old
//! limit along a cubic, too slowly to find a limit lifted by ten times.
//! Here, using what Conduit tells us:
//!
//! - **The limit found.** After a 429 the pace starts from an estimate of
//!   the rate the server accepted: the most requests accepted over any
//!   recent span, divided by that span plus the `Retry-After`. A burst of
//!   120 that earns `Retry-After: 59` gives 2/s at once. Answers to requests
//!   sent before the 429 that keep coming in refine it upwards.
//! - **Recover.** The clock starts when the cooldown ends (a long
//!   `Retry-After` is not time spent probing); the pace climbs from β of the
//!   limit to [`PLATEAU`] of it over [`RAMP`].
//!   A 429 to a probe puts the pace back on the plateau of the limit it
//!   was held under; a 429 while holding cuts the limit to the estimate and
//!   the pace to β of it.
//! - **Hold.** It stays there for a dwell: [`DWELL_MIN`] after the first 429,
//!   doubling with each 429 met while paced (up to [`DWELL_MAX`]), so a
//!   steady limit is probed more and more rarely. Each probe past it costs
//!   a whole `Retry-After` of silence, so the hold after one lasts at least
//!   [`HOLD_PER_COST`] times that wait: probing costs a few percent of the
//!   time whatever the server's window.
//! - **Probe.** Then the pace doubles every [`DOUBLING`], each time on the
//!   evidence of an accepted answer to a request sent at the pace before:
//!   a lifted limit is found within seconds, a client with few calls does
//!   not climb on no evidence, and a pace that overshoots is stopped by the
//!   first 429 one round trip later rather than by a burst of them.
//! - **Release.** Once the pace is past [`RELEASE`] times the limit with no
//!   429, a call that finds nobody else waiting ends pacing: the partition
//!   is unpaced (free) until the next 429. Never with calls queued, which
//!   would all go at once.
//! - **Blind 429s.** A 429 with nothing accepted recently (a storm from the
//!   first request) tells nothing of the limit. As in TCP slow start, the
//!   pace starts at one request per round trip (as long as the 429 took to
//!   come back) and doubles with each accepted answer to a request sent
//!   since the last doubling.
//!
//! Pure logic on explicit instants; the gate supplies the time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::assumed::{Assumed, Verdict};
use super::{Rate, Sent, Slot};

/// How far back accepted requests count for the estimate.
const LOOKBACK: Duration = Duration::from_secs(120);
/// Accepted requests remembered, at most.
const MAX_SAMPLES: usize = 4096;
/// The share of the estimate the pace starts from after the first 429.
const FIRST_BETA: f64 = 0.9;
/// The share of the limit the pace starts from after a 429 met while paced.
const BETA: f64 = 0.7;
/// The share of the limit held: a 429 costs a whole `Retry-After` of
/// silence, so the pace dwells just under the limit.
pub(crate) const PLATEAU: f64 = 0.97;
/// How long the pace takes to climb from its start to the plateau.
pub(crate) const RAMP: Duration = Duration::from_secs(1);
/// The first hold at the plateau before probing.
pub(crate) const DWELL_MIN: Duration = Duration::from_secs(1);
/// A 429 met while paced costs its `Retry-After` of silence; the next hold
/// lasts at least this many times that, so probing a steady limit costs
/// at most about 5% of the time.
pub(crate) const HOLD_PER_COST: u32 = 20;
/// The longest hold a costly 429 can ask for.
const HOLD_MAX: Duration = Duration::from_secs(3600);
/// The longest hold at the plateau before probing.
pub(crate) const DWELL_MAX: Duration = Duration::from_secs(60);
/// While probing, the pace doubles at most this often.
pub(crate) const DOUBLING: Duration = Duration::from_millis(250);
/// The fastest pace, requests per second: past it, pacing holds no call.
const MAX_RATE: f64 = 1e6;
/// Pacing ends once the pace passes this multiple of the limit found.
pub(crate) const RELEASE: f64 = 8.0;
/// The slowest pace, requests per second (3 a minute).
pub(crate) const MIN_RATE: f64 = 0.05;
/// The shortest round trip a blind pace starts from.
const MIN_ROUND_TRIP: Duration = Duration::from_millis(1);
/// The shortest `Retry-After` used in the estimate.
const MIN_RETRY_AFTER: Duration = Duration::from_millis(100);

/// What holds a partition's calls, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holds {
    Nothing,
    /// The window a 429 showed.
    Window(Rate),
    /// A pace near the rate the server accepted.
    Pace,
}

/// The adaptive state of one partition.
#[derive(Debug)]
pub(crate) struct Adaptive {
    /// Send times of accepted requests, oldest first.
    accepted: VecDeque<Instant>,
    pace: Option<Pace>,
    /// When the pace last went down: 429s to requests sent before it were
    /// caused by the old pace and do not lower it again.
    lowered_at: Option<Instant>,
    /// When the last paced request went: the next goes one interval at the
    /// current pace later, so a pace that grew shortens the gap at once.
    last: Option<Instant>,
    /// The hold before the next probe.
    dwell: Duration,
    /// The window assumed from the first 429 of a burst, while it holds.
    assumed: Option<Assumed>,
    /// A window assumed here was refuted: pace from then on.
    refuted: bool,
}

impl Default for Adaptive {
    fn default() -> Self {
        Self {
            accepted: VecDeque::new(),
            pace: None,
            lowered_at: None,
            last: None,
            dwell: DWELL_MIN,
            assumed: None,
            refuted: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Pace {
    /// The rate the server is believed to accept, per second.
    limit: f64,
    /// The pace right after the cooldown.
    start: f64,
    /// When the cooldown ends: the ramp starts here.
    from: Instant,
    /// When probing starts.
    probe_from: Instant,
    /// The share of the limit the pace started from.
    beta: f64,
    /// What probing has multiplied the pace by so far.
    probed: f64,
    /// When the pace last doubled: only answers to requests sent since
    /// count as evidence for the next doubling.
    grown_at: Instant,
    /// Started from a blind 429: no ramp, a doubling per round trip.
    blind: bool,
    /// What the limit was found from, to refine it.
    seed: Seed,
}

#[derive(Debug, Clone, Copy)]
struct Seed {
    /// When the 429 came.
    at: Instant,
    /// The wait it asked for.
    wait: Duration,
    /// The pace then (infinite when unpaced): the limit is below it.
    cap: f64,
}

impl Pace {
    /// A pace from a limit found: from `beta` of it when the cooldown ends
    /// at `from`, probing after the ramp and `dwell`.
    fn seeded(limit: f64, beta: f64, from: Instant, dwell: Duration, seed: Seed) -> Self {
        let probe_from = from + RAMP + dwell;
        Self {
            limit,
            start: (beta * limit).max(MIN_RATE),
            from,
            probe_from,
            beta,
            probed: 1.0,
            // The hold was the wait for the first doubling.
            grown_at: probe_from.checked_sub(DOUBLING).unwrap_or(probe_from),
            blind: false,
            seed,
        }
    }

    fn rate(&self, now: Instant) -> f64 {
        let base = if self.blind {
            self.start
        } else {
            let t = now.saturating_duration_since(self.from).as_secs_f64();
            let share = (t / RAMP.as_secs_f64()).min(1.0);
            self.start + (PLATEAU * self.limit - self.start).max(0.0) * share
        };
        (base * self.probed).clamp(MIN_RATE, MAX_RATE)
    }
}

impl Adaptive {
    /// A request got an answer other than 429 at `now`.
    pub(crate) fn accepted(&mut self, request: impl Into<Sent>, now: Instant) {
        let request = request.into();
        let sent = request.at;
        if self.accepted.len() == MAX_SAMPLES {
            self.accepted.pop_front();
        }
        self.accepted.push_back(sent);
        if let Some(assumed) = &mut self.assumed {
            if assumed.accepted(request, now) == Verdict::Lifted {
                // What was accepted under the old limit says nothing of
                // the new one.
                self.assumed = None;
                self.accepted.clear();
            }
            return;
        }
        let Some(mut pace) = self.pace else {
            return;
        };
        if !self.refuted
            && sent <= pace.seed.at
            && pace.blind
            && pace.seed.cap.is_infinite()
            && now < pace.from
        {
            // The 429 of an unpaced burst came before the answers to the
            // requests accepted with it: the burst was not blind after all.
            if let Some(assumed) = self.assume(pace.seed.at, pace.seed.wait, pace.from) {
                self.assumed = Some(assumed);
                self.pace = None;
                return;
            }
        }
        if sent <= pace.seed.at {
            // An answer to a request sent before the last 429 came after
            // it: the server accepted more than the estimate knew, or, for
            // a blind pace, something at all: the 429 was not blind.
            if let Some(limit) = self.estimate(pace.seed.at, pace.seed.wait) {
                let limit = limit.min(pace.seed.cap);
                if pace.blind {
                    pace = Pace::seeded(limit, FIRST_BETA, pace.from, self.dwell, pace.seed);
                } else if limit > pace.limit {
                    pace.limit = limit;
                    pace.start = pace.start.max(pace.beta * limit);
                }
            }
        } else if sent >= pace.probe_from
            && sent >= pace.grown_at
            && (pace.blind || now >= pace.grown_at + DOUBLING)
            && pace.rate(now) < MAX_RATE
        {
            pace.probed *= 2.0;
            pace.grown_at = now;
        }
        self.pace = Some(pace);
    }

    /// A request got a 429 at `now`, asking to wait `wait`.
    pub(crate) fn throttled(&mut self, request: impl Into<Sent>, now: Instant, wait: Duration) {
        let request = request.into();
        let sent = request.at;
        if let Some(assumed) = &mut self.assumed {
            if assumed.throttled(request) == Verdict::Holds {
                return;
            }
            self.assumed = None;
            self.refuted = true;
        }
        if self.lowered_at.is_some_and(|at| sent <= at) {
            return;
        }
        self.forget_before(now);
        let from = now.checked_add(wait).unwrap_or(now);
        if self.pace.is_none()
            && !self.refuted
            && let Some(assumed) = self.assume(now, wait, from)
        {
            self.assumed = Some(assumed);
            self.lowered_at = Some(now);
            return;
        }
        let was = self.pace.map(|p| p.rate(now));
        let seed = Seed {
            at: now,
            wait,
            cap: was.unwrap_or(f64::INFINITY),
        };
        let pace = match (self.estimate(now, wait), was) {
            // Nothing accepted lately: no idea of the limit. One request per
            // round trip, doubling with each answer.
            (None, _) => {
                let round_trip = now
                    .saturating_duration_since(sent)
                    .clamp(MIN_ROUND_TRIP, wait.max(MIN_ROUND_TRIP));
                let start = (1.0 / round_trip.as_secs_f64())
                    .min(was.unwrap_or(f64::INFINITY))
                    .max(MIN_RATE);
                Pace {
                    limit: start,
                    start,
                    from,
                    probe_from: from,
                    beta: 1.0,
                    probed: 1.0,
                    grown_at: from,
                    blind: true,
                    seed,
                }
            }
            (Some(estimate), was) => {
                let (limit, beta) = match (self.pace, was) {
                    (None, _) | (_, None) => (estimate, FIRST_BETA),
                    // A probe went past the limit: the plateau held, so
                    // the limit is at least the one it was held under.
                    (Some(p), Some(rate)) if !p.blind && sent >= p.probe_from => {
                        (estimate.max(p.limit).min(rate), PLATEAU)
                    }
                    // Refused at a pace it had accepted: the limit fell.
                    (Some(_), Some(rate)) => (estimate.min(rate), BETA),
                };
                self.dwell = match was {
                    None => DWELL_MIN,
                    Some(_) => (self.dwell * 2)
                        .min(DWELL_MAX)
                        .max(wait.saturating_mul(HOLD_PER_COST).min(HOLD_MAX)),
                };
                Pace::seeded(limit, beta, from, self.dwell, seed)
            }
        };
        self.pace = Some(pace);
        self.lowered_at = Some(now);
    }

    /// The pace now, `None` while unpaced.
    fn rate(&self, now: Instant) -> Option<f64> {
        self.pace.map(|p| p.rate(now))
    }

    /// Whether nothing holds a call: no window assumed, no pace.
    pub(crate) fn is_free(&self) -> bool {
        self.holds() == Holds::Nothing
    }

    pub(crate) fn holds(&self) -> Holds {
        match (&self.assumed, &self.pace) {
            (Some(assumed), _) => Holds::Window(assumed.rate()),
            (None, Some(_)) => Holds::Pace,
            (None, None) => Holds::Nothing,
        }
    }

    /// The time between two requests now, on average; `None` while free.
    pub(crate) fn interval(&self, now: Instant) -> Option<Duration> {
        match &self.assumed {
            Some(assumed) => Some(assumed.rate().interval()),
            None => self.rate(now).map(|r| Duration::from_secs_f64(1.0 / r)),
        }
    }

    /// Takes the next slot if it has come; else says when it comes.
    /// `Ok` when unpaced. A call `alone` (nobody else waiting) past
    /// [`RELEASE`] times the limit ends pacing.
    pub(crate) fn take_slot(&mut self, now: Instant, alone: bool) -> Result<Slot, Instant> {
        if let Some(assumed) = &mut self.assumed {
            return assumed.take(now);
        }
        let Some(pace) = self.pace else {
            return Ok(Slot::Within);
        };
        let rate = pace.rate(now);
        let interval = Duration::from_secs_f64(1.0 / rate);
        let next = self.last.map(|last| last + interval);
        match next {
            Some(next) if next > now => Err(next),
            _ if alone && rate >= RELEASE * pace.limit => {
                self.release();
                Ok(Slot::Within)
            }
            _ => {
                // A slot taken late (a timer fires after its instant) keeps
                // the schedule: lateness within an interval is made up by
                // the next slot, so the pace holds instead of drifting
                // below itself by every wake-up's delay.
                self.last = Some(match next {
                    Some(next) if now.saturating_duration_since(next) < interval => next,
                    _ => now,
                });
                Ok(Slot::Within)
            }
        }
    }

    fn release(&mut self) {
        self.pace = None;
        self.last = None;
        self.dwell = DWELL_MIN;
    }

    /// The most requests accepted over a recent span, per that span plus
    /// the wait the server asked for; `None` when none was accepted.
    fn estimate(&self, now: Instant, wait: Duration) -> Option<f64> {
        let (count, span) = self.busiest(now, wait)?;
        Some((count as f64 / span.as_secs_f64()).max(MIN_RATE))
    }

    /// The recent requests accepted at the highest rate, counted over the
    /// span from the first of them to the end of the wait asked for at
    /// `now`: the window a 429 at `now` shows.
    fn busiest(&self, now: Instant, wait: Duration) -> Option<(usize, Duration)> {
        let wait = wait.max(MIN_RETRY_AFTER);
        self.accepted
            .iter()
            .rev()
            .enumerate()
            .map(|(i, sent)| (i + 1, now.saturating_duration_since(*sent) + wait))
            .max_by(|(a, x), (b, y)| {
                let rate = |n: usize, span: &Duration| n as f64 / span.as_secs_f64();
                rate(*a, x).total_cmp(&rate(*b, y))
            })
    }

    /// The window a 429 at `now` asking for `wait` shows, the cooldown
    /// ending at `from`: the burst's slots held.
    ///
    /// Limits are stated in whole seconds (Conduit's in minutes), and a
    /// `Retry-After` in whole seconds rounds up: the span the 429 shows is
    /// the window's plus up to a second, and the whole seconds in it are the
    /// window's own. A wait given to the millisecond is taken as it is.
    fn assume(&self, now: Instant, wait: Duration, from: Instant) -> Option<Assumed> {
        let (count, shown) = self.busiest(now, wait)?;
        let whole = Duration::from_secs(shown.as_secs());
        let span = if whole.is_zero() || wait.subsec_nanos() != 0 {
            shown
        } else {
            whole
        };
        let mut held: Vec<Instant> = self
            .accepted
            .range(self.accepted.len() - count..)
            .copied()
            .collect();
        held.sort_unstable();
        Assumed::new(count, span, held, from)
    }

    fn forget_before(&mut self, now: Instant) {
        while self
            .accepted
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > LOOKBACK)
        {
            self.accepted.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// An adaptive state that paces after its first 429, as it does once
    /// an assumed window was refuted.
    fn pacing() -> Adaptive {
        Adaptive {
            refuted: true,
            ..Adaptive::default()
        }
    }

    /// Accepts a request sent at `t`, answered at once.
    fn accept(a: &mut Adaptive, t: Instant) {
        a.accepted(t, t);
    }

    /// 10 accepted within 10 ms, then a 429 asking for 1 s: a limit of
    /// about 10/s. Returns the state and when the 429 came.
    fn throttled_at_about_ten_a_second() -> (Adaptive, Instant) {
        let t0 = Instant::now();
        let mut a = pacing();
        for i in 0..10 {
            accept(&mut a, t0 + secs(i as f64 * 0.001));
        }
        let at = t0 + secs(0.01);
        a.throttled(at, at, Duration::from_secs(1));
        (a, at)
    }

    #[test]
    fn the_first_429_of_a_burst_assumes_the_window_it_shows() {
        // 120 accepted within 1.4 s, then Retry-After: 59.
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        for i in 0..120 {
            accept(&mut a, t0 + secs(i as f64 * 1.4 / 120.0));
        }
        let now = t0 + secs(1.4);
        a.throttled(now, now, Duration::from_secs(59));
        assert!(a.pace.is_none() && !a.is_free());
        // 120 in the whole seconds of the burst's time plus the wait.
        let rate = a.assumed.as_ref().unwrap().rate();
        assert_eq!((rate.count(), rate.per()), (120, Duration::from_secs(60)));
        assert_eq!(a.interval(now), Some(Duration::from_millis(500)));
        // Its first slot frees a minute after the burst's first request.
        assert_eq!(a.take_slot(t0 + secs(59.9), false), Err(t0 + secs(60.0)));
        assert_eq!(a.take_slot(t0 + secs(60.0), false), Ok(Slot::Within));
    }

    #[test]
    fn a_wait_given_in_fractions_of_a_second_is_not_rounded_down() {
        // 120 accepted within 1.4 s, then Retry-After: 58.9.
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        for i in 0..120 {
            accept(&mut a, t0 + secs(i as f64 * 1.4 / 120.0));
        }
        let now = t0 + secs(1.4);
        a.throttled(now, now, secs(58.9));
        let rate = a.assumed.as_ref().unwrap().rate();
        assert_eq!((rate.count(), rate.per()), (120, secs(60.3)));
    }

    #[test]
    fn a_429_the_window_did_not_foresee_falls_back_to_pacing_for_good() {
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        for i in 0..10 {
            accept(&mut a, t0 + secs(i as f64 * 0.001));
        }
        let at = t0 + secs(0.01);
        a.throttled(at, at, Duration::from_secs(1));
        let open = at + secs(1.0);
        assert_eq!(a.take_slot(open, false), Ok(Slot::Within));
        // Refused at the window's first slot: not a window, or not this one.
        a.throttled(open, open + secs(0.01), Duration::from_secs(1));
        assert!(a.assumed.is_none());
        // From the burst: 10 in the 1.02 s since it began plus the 1 s wait.
        let rate = a.rate(open).unwrap();
        assert!((rate - FIRST_BETA * 10.0 / 2.02).abs() < 0.01, "{rate}");
        // Released, a new burst and its 429: paced again, no window.
        a.release();
        let later = open + secs(100.0);
        for i in 0..10 {
            accept(&mut a, later + secs(i as f64 * 0.001));
        }
        a.throttled(
            later + secs(0.01),
            later + secs(0.01),
            Duration::from_secs(1),
        );
        assert!(a.assumed.is_none() && a.pace.is_some());
    }

    #[test]
    fn a_blind_429_becomes_a_window_once_the_burst_is_answered() {
        // The 429 is handled before the answers to the requests sent with
        // it.
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        let got = t0 + secs(0.01);
        a.throttled(t0, got, Duration::from_secs(1));
        assert!(a.pace.unwrap().blind);
        for _ in 0..10 {
            a.accepted(t0, got + secs(0.001));
        }
        assert!(a.pace.is_none());
        assert_eq!(a.assumed.as_ref().unwrap().rate().count(), 10);
    }

    #[test]
    fn unpaced_until_the_first_429() {
        let t0 = Instant::now();
        let mut a = pacing();
        for i in 0..1000 {
            accept(&mut a, t0 + secs(i as f64 * 0.001));
            assert_eq!(
                a.take_slot(t0 + secs(i as f64 * 0.001), false),
                Ok(Slot::Within)
            );
        }
        assert_eq!(a.rate(t0 + secs(1.0)), None);
    }

    #[test]
    fn a_burst_then_retry_after_seeds_the_rate_from_what_was_accepted() {
        // 120 accepted within a second, then Retry-After: 59 (a minute window).
        let t0 = Instant::now();
        let mut a = pacing();
        for i in 0..120 {
            accept(&mut a, t0 + secs(i as f64 / 120.0));
        }
        let now = t0 + secs(1.0);
        a.throttled(now, now, Duration::from_secs(59));
        let rate = a.rate(now).unwrap();
        assert!((rate - 0.9 * 2.0).abs() < 0.01, "{rate}");
        // Held at the start through the cooldown, at the plateau a ramp
        // after it ends, and held there through the dwell.
        let end = now + Duration::from_secs(59);
        assert!((a.rate(end).unwrap() - 1.8).abs() < 0.01);
        let plateau = PLATEAU * 2.0;
        assert!((a.rate(end + RAMP).unwrap() - plateau).abs() < 0.01);
        assert!((a.rate(end + RAMP + DWELL_MIN).unwrap() - plateau).abs() < 0.01);
    }

    #[test]
    fn an_idle_past_does_not_dilute_the_estimate() {
        let t0 = Instant::now();
        let mut a = pacing();
        // Sparse traffic for 100 s, then a burst of 40 and Retry-After: 2.
        for i in 0..10 {
            accept(&mut a, t0 + secs(i as f64 * 10.0));
        }
        let burst = t0 + secs(100.0);
        for i in 0..40 {
            accept(&mut a, burst + secs(i as f64 * 0.001));
        }
        let now = burst + secs(0.05);
        a.throttled(now, now, Duration::from_secs(2));
        let rate = a.rate(now).unwrap();
        assert!((rate - 0.9 * 40.0 / 2.05).abs() < 0.2, "{rate}");
    }

    #[test]
    fn later_429s_cut_by_beta_once_per_round_and_lengthen_the_dwell() {
        let t0 = Instant::now();
        let mut a = pacing();
        for i in 0..20 {
            accept(&mut a, t0 + secs(i as f64 * 0.01));
        }
        let first = t0 + secs(0.2);
        a.throttled(first, first, Duration::from_secs(1));
        let r1 = a.rate(first).unwrap();
        // Requests already in flight when the rate went down do not lower it
        // again.
        a.throttled(
            first - secs(0.01),
            first + secs(0.01),
            Duration::from_secs(1),
        );
        assert_eq!(a.rate(first).unwrap(), r1);
        // A request sent afterwards does: to β of the rate then, and the
        // next probe comes after a longer hold.
        let later = first + secs(1.5);
        let before = a.rate(later).unwrap();
        a.throttled(later, later, Duration::from_millis(200));
        let after = a.rate(later).unwrap();
        assert!(after <= BETA * before + 1e-9, "{before} -> {after}");
        assert_eq!(a.dwell, HOLD_PER_COST * Duration::from_millis(200));
    }

    #[test]
    fn the_hold_after_a_probes_429_is_twenty_times_what_it_cost() {
        // About 10/s, held, probing after the first dwell.
        let (mut a, at) = throttled_at_about_ten_a_second();
        let probe = at + secs(1.0) + RAMP + DWELL_MIN;
        a.accepted(probe, probe + secs(0.01));
        let probing = a.rate(probe).unwrap();
        // The probe meets a 429 asking for 3 s: a 60 s hold, not 2 s.
        let refused = probe + secs(0.1);
        a.throttled(refused, refused, Duration::from_secs(3));
        assert_eq!(a.dwell, Duration::from_secs(60));
        let resumed = refused + secs(3.0) + RAMP;
        let held = a.rate(resumed).unwrap();
        assert!(held < probing, "{held} vs {probing}");
        // Answers during the hold do not raise the pace; after it they do.
        let late = resumed + secs(59.0);
        a.accepted(late, late);
        assert_eq!(a.rate(late).unwrap(), held);
        let after = resumed + secs(60.0);
        a.accepted(after, after);
        assert!(a.rate(after).unwrap() > held);
    }

    #[test]
    fn pacing_spaces_slots_by_the_rate() {
        let (mut a, at) = throttled_at_about_ten_a_second();
        let start = at + Duration::from_secs(1);
        assert_eq!(a.take_slot(start, false), Ok(Slot::Within));
        let next = a.take_slot(start, false).unwrap_err();
        let rate = a.rate(start).unwrap();
        let gap = (next - start).as_secs_f64();
        assert!((gap - 1.0 / rate).abs() < 1e-6, "{gap} vs {}", 1.0 / rate);
    }

    #[test]
    fn probes_double_on_evidence_at_most_every_doubling_then_release_alone() {
        let (mut a, at) = throttled_at_about_ten_a_second();
        let limit = a.pace.unwrap().limit;
        let plateau = PLATEAU * limit;
        // Before the probe starts, answers do not raise the pace.
        let holding = at + secs(1.0) + RAMP;
        accept(&mut a, holding);
        assert!((a.rate(holding).unwrap() - plateau).abs() < 1e-9);
        // Probing: an answer to a request sent then doubles it once...
        let probe = holding + DWELL_MIN;
        a.accepted(probe, probe + secs(0.02));
        assert!((a.rate(probe).unwrap() - 2.0 * plateau).abs() < 1e-9);
        // ...and no more until DOUBLING has passed, on an answer to a
        // request sent since.
        a.accepted(probe + secs(0.01), probe + secs(0.1));
        assert!((a.rate(probe).unwrap() - 2.0 * plateau).abs() < 1e-9);
        let later = probe + secs(0.02) + DOUBLING;
        a.accepted(probe + secs(0.01), later);
        assert!(
            (a.rate(later).unwrap() - 2.0 * plateau).abs() < 1e-9,
            "sent before"
        );
        a.accepted(later - secs(0.01), later);
        assert!((a.rate(later).unwrap() - 4.0 * plateau).abs() < 1e-9);
        // Past RELEASE times the limit, a call with others queued keeps
        // pacing; a call alone ends it.
        let mut t = later;
        while a.rate(t).unwrap() < RELEASE * limit {
            t += DOUBLING;
            a.accepted(t, t);
        }
        assert!(a.take_slot(t, false).is_ok());
        assert!(a.rate(t).is_some());
        let next = t + secs(1.0);
        assert_eq!(a.take_slot(next, true), Ok(Slot::Within));
        assert_eq!(a.rate(next), None);
        assert_eq!(a.dwell, DWELL_MIN);
    }

    #[test]
    fn a_blind_429_starts_at_one_per_round_trip_and_doubles_per_answer() {
        // Nothing accepted; the 429 took 20 ms to come back.
        let t0 = Instant::now();
        let mut a = pacing();
        let got = t0 + secs(0.02);
        a.throttled(t0, got, Duration::from_secs(2));
        let end = got + Duration::from_secs(2);
        assert!((a.rate(end).unwrap() - 50.0).abs() < 1e-6);
        // Each answer to a request sent since the last doubling doubles it.
        a.accepted(end, end + secs(0.02));
        assert!((a.rate(end).unwrap() - 100.0).abs() < 1e-6);
        a.accepted(end + secs(0.01), end + secs(0.03));
        assert!((a.rate(end).unwrap() - 100.0).abs() < 1e-6, "sent before");
        a.accepted(end + secs(0.03), end + secs(0.05));
        assert!((a.rate(end).unwrap() - 200.0).abs() < 1e-6);
    }

    #[test]
    fn a_429_that_only_looked_blind_is_paced_from_what_was_accepted() {
        // The 429 is handled before the answers to the requests sent with
        // it: blind at first, then seeded once they come in.
        let t0 = Instant::now();
        let mut a = pacing();
        let got = t0 + secs(0.01);
        a.throttled(t0, got, Duration::from_secs(1));
        assert!(a.pace.unwrap().blind);
        for _ in 0..10 {
            a.accepted(t0, got + secs(0.001));
        }
        let pace = a.pace.unwrap();
        assert!(!pace.blind);
        let rate = a.rate(got).unwrap();
        assert!((rate - FIRST_BETA * 10.0 / 1.01).abs() < 0.1, "{rate}");
    }

    #[test]
    fn never_below_the_minimum_rate() {
        let t0 = Instant::now();
        let mut a = pacing();
        a.throttled(t0, t0, Duration::from_secs(3600));
        assert!(a.rate(t0).unwrap() >= MIN_RATE);
        for i in 1..50 {
            let t = t0 + secs(i as f64);
            a.throttled(t, t, Duration::from_secs(3600));
        }
        assert!(a.rate(t0 + secs(60.0)).unwrap() >= MIN_RATE);
    }
}
