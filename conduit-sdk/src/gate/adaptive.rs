//! The adaptive rate: none until a partition's first 429, then a CUBIC curve
//! as in the AWS SDKs' adaptive retry mode, with two changes that use what
//! Conduit tells us and that mode ignores:
//!
//! - After a 429 the curve starts from an estimate of the rate the server
//!   accepted: the most requests accepted over any recent span, divided by
//!   that span plus the `Retry-After`. A burst of 120 that earns
//!   `Retry-After: 59` gives 2/s at once, where a measured send rate would
//!   say hundreds and take many 429s to come down.
//! - The curve's clock starts when the cooldown ends, so a long
//!   `Retry-After` is not mistaken for time spent probing.
//!
//! Pure logic on explicit instants; the gate supplies the time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back accepted requests count for the estimate.
const LOOKBACK: Duration = Duration::from_secs(120);
/// Accepted requests remembered, at most.
const MAX_SAMPLES: usize = 4096;
/// The share of the estimate paced at after the first 429.
const FIRST_BETA: f64 = 0.9;
/// The share of the rate kept after a later 429 (CUBIC's β).
const BETA: f64 = 0.7;
/// Where the curve levels off after a later 429, as a share of the rate
/// that met it: a 429 costs a whole `Retry-After` of silence, so the
/// curve should dwell just under the limit rather than probe past it.
const PLATEAU: f64 = 0.95;
/// How fast the curve grows back, relative to the rate (per s³): back at
/// the limit about 5 s after a 429, 20 % past it 5 s later.
const GROWTH: f64 = 0.002;
/// Pacing stops once the curve passes this multiple of the last limit
/// found without another 429: the partition is unpaced again.
const RELEASE: f64 = 2.0;
/// The slowest pace, requests per second (3 a minute).
pub(crate) const MIN_RATE: f64 = 0.05;
/// The shortest `Retry-After` used in the estimate.
const MIN_RETRY_AFTER: Duration = Duration::from_millis(100);

/// The adaptive state of one partition.
#[derive(Debug, Default)]
pub(crate) struct Adaptive {
    /// Send times of accepted requests, oldest first.
    accepted: VecDeque<Instant>,
    curve: Option<Curve>,
    /// When the rate last went down: 429s to requests sent before it were
    /// caused by the old rate and do not lower it again.
    lowered_at: Option<Instant>,
    /// When the last paced request went: the next goes one interval at the
    /// current rate later, so a rate that grew shortens the gap at once.
    last: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Curve {
    /// The rate at which the server last refused.
    limit: f64,
    /// Time from `from` until the curve is back at `limit`.
    k: f64,
    from: Instant,
    /// What the limit was found from, to refine it as answers to requests
    /// sent before the 429 keep coming in.
    seed: Seed,
}

#[derive(Debug, Clone, Copy)]
struct Seed {
    /// When the 429 came.
    at: Instant,
    /// The wait it asked for.
    wait: Duration,
    /// The paced rate then (infinite when unpaced): the limit is below it.
    cap: f64,
    /// The share of the limit the curve starts from.
    beta: f64,
}

impl Curve {
    fn new(limit: f64, from: Instant, seed: Seed) -> Self {
        let limit = limit.max(MIN_RATE);
        let start = (seed.beta * limit).max(MIN_RATE).min(limit);
        let k = ((1.0 - start / limit) / GROWTH).cbrt();
        Self {
            limit,
            k,
            from,
            seed,
        }
    }

    fn rate(&self, now: Instant) -> f64 {
        let t = now.saturating_duration_since(self.from).as_secs_f64();
        self.limit * (1.0 + GROWTH * (t - self.k).powi(3))
    }
}

impl Adaptive {
    /// A request sent at `sent` got an answer other than 429.
    pub(crate) fn accepted(&mut self, sent: Instant) {
        if self.accepted.len() == MAX_SAMPLES {
            self.accepted.pop_front();
        }
        self.accepted.push_back(sent);
        // An answer to a request sent before the last 429 came after it:
        // the server accepted more than the estimate knew.
        if let Some(curve) = self.curve
            && sent <= curve.seed.at
        {
            let limit = self
                .estimate(curve.seed.at, curve.seed.wait)
                .min(curve.seed.cap);
            if limit > curve.limit {
                self.curve = Some(Curve::new(limit, curve.from, curve.seed));
            }
        }
    }

    /// A request sent at `sent` got a 429 at `now`, asking to wait `wait`.
    pub(crate) fn throttled(&mut self, sent: Instant, now: Instant, wait: Duration) {
        if self.lowered_at.is_some_and(|at| sent <= at) {
            return;
        }
        self.forget_before(now);
        let estimate = self.estimate(now, wait);
        let (cap, beta) = match self.rate(now) {
            None => (f64::INFINITY, FIRST_BETA),
            Some(rate) => (rate, BETA),
        };
        let seed = Seed {
            at: now,
            wait,
            cap,
            beta,
        };
        let limit = if cap.is_finite() {
            estimate.clamp(PLATEAU * cap, cap)
        } else {
            estimate
        };
        self.curve = Some(Curve::new(limit, now + wait, seed));
        self.lowered_at = Some(now);
    }

    /// The rate to pace at now, `None` while unpaced. The curve grows to
    /// at most [`RELEASE`] times the last limit found.
    pub(crate) fn rate(&self, now: Instant) -> Option<f64> {
        let curve = self.curve?;
        Some(curve.rate(now).min(RELEASE * curve.limit).max(MIN_RATE))
    }

    /// Takes the next slot if it has come; else says when it comes.
    /// `Ok` when unpaced. At the top of the curve, a call that is `alone`
    /// (nobody queued, no wait) ends pacing: calls come slower than twice
    /// the last limit, and none has met a 429.
    pub(crate) fn take_slot(&mut self, now: Instant, alone: bool) -> Result<(), Instant> {
        let Some(curve) = self.curve else {
            return Ok(());
        };
        let rate = curve.rate(now);
        let next = self
            .last
            .map(|last| last + Duration::from_secs_f64(1.0 / rate.min(RELEASE * curve.limit)));
        match next {
            Some(next) if next > now => Err(next),
            _ if alone && rate >= RELEASE * curve.limit => {
                self.curve = None;
                self.last = None;
                Ok(())
            }
            _ => {
                self.last = Some(now);
                Ok(())
            }
        }
    }

    /// The most requests accepted over a recent span, per that span plus
    /// the wait the server asked for; at least one per wait.
    fn estimate(&self, now: Instant, wait: Duration) -> f64 {
        let wait = wait.max(MIN_RETRY_AFTER).as_secs_f64();
        self.accepted
            .iter()
            .rev()
            .enumerate()
            .map(|(i, sent)| {
                (i + 1) as f64 / (now.saturating_duration_since(*sent).as_secs_f64() + wait)
            })
            .fold(1.0 / wait, f64::max)
            .max(MIN_RATE)
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

    #[test]
    fn unpaced_until_the_first_429() {
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        for i in 0..1000 {
            a.accepted(t0 + secs(i as f64 * 0.001));
            assert_eq!(a.take_slot(t0 + secs(i as f64 * 0.001), false), Ok(()));
        }
        assert_eq!(a.rate(t0 + secs(1.0)), None);
    }

    #[test]
    fn a_burst_then_retry_after_seeds_the_rate_from_what_was_accepted() {
        // 120 accepted within a second, then Retry-After: 59 (a minute window).
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        for i in 0..120 {
            a.accepted(t0 + secs(i as f64 / 120.0));
        }
        let now = t0 + secs(1.0);
        a.throttled(now, now, Duration::from_secs(59));
        let rate = a.rate(now).unwrap();
        assert!((rate - 0.9 * 2.0).abs() < 0.01, "{rate}");
        // Held at the start rate through the cooldown, back at 2/s a while
        // after it ends, then probing above.
        let end = now + Duration::from_secs(59);
        assert!((a.rate(end).unwrap() - 1.8).abs() < 0.01);
        let back = a.curve.unwrap().k;
        assert!((a.rate(end + secs(back)).unwrap() - 2.0).abs() < 0.01);
        assert!(a.rate(end + secs(back + 2.0)).unwrap() > 2.0);
    }

    #[test]
    fn an_idle_past_does_not_dilute_the_estimate() {
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        // Sparse traffic for 100 s, then a burst of 40 and Retry-After: 2.
        for i in 0..10 {
            a.accepted(t0 + secs(i as f64 * 10.0));
        }
        let burst = t0 + secs(100.0);
        for i in 0..40 {
            a.accepted(burst + secs(i as f64 * 0.001));
        }
        let now = burst + secs(0.05);
        a.throttled(now, now, Duration::from_secs(2));
        let rate = a.rate(now).unwrap();
        assert!((rate - 0.9 * 40.0 / 2.05).abs() < 0.2, "{rate}");
    }

    #[test]
    fn later_429s_cut_by_beta_once_per_round() {
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        for i in 0..20 {
            a.accepted(t0 + secs(i as f64 * 0.01));
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
        // A request sent afterwards does: to β of the rate then.
        let later = first + secs(1.5);
        let before = a.rate(later).unwrap();
        a.throttled(later, later, Duration::from_millis(200));
        let after = a.rate(later).unwrap();
        assert!(after <= BETA * before + 1e-9, "{before} -> {after}");
    }

    #[test]
    fn pacing_spaces_slots_by_the_rate_and_a_lone_call_at_the_top_ends_it() {
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        for i in 0..10 {
            a.accepted(t0 + secs(i as f64 * 0.001));
        }
        a.throttled(t0, t0, Duration::from_secs(1));
        let start = t0 + Duration::from_secs(1);
        assert_eq!(a.take_slot(start, true), Ok(()));
        let next = a.take_slot(start, true).unwrap_err();
        let rate = a.rate(start).unwrap();
        let gap = (next - start).as_secs_f64();
        assert!((gap - 1.0 / rate).abs() < 1e-6, "{gap} vs {}", 1.0 / rate);
        // Long after, the curve is capped at twice the limit; a queued call
        // keeps pacing on, a call alone ends it.
        let late = start + Duration::from_secs(600);
        assert!((a.rate(late).unwrap() - 2.0 * 10.0).abs() < 0.5);
        assert_eq!(a.take_slot(late, false), Ok(()));
        assert!(a.rate(late).is_some());
        let later = late + Duration::from_secs(1);
        assert_eq!(a.take_slot(later, true), Ok(()));
        assert_eq!(a.rate(later), None);
    }

    #[test]
    fn never_below_the_minimum_rate() {
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        a.throttled(t0, t0, Duration::from_secs(3600));
        assert!(a.rate(t0).unwrap() >= MIN_RATE);
        for i in 1..50 {
            let t = t0 + secs(i as f64);
            a.throttled(t, t, Duration::from_secs(3600));
        }
        assert!(a.rate(t0 + secs(60.0)).unwrap() >= MIN_RATE);
    }
}
