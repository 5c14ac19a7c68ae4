//! The window assumed from the first 429 of an unpaced burst.
//!
//! A server that counts in windows (Conduit states its limit as 120 a
//! minute) accepts a burst of its whole allowance, then refuses until the
//! window frees. Pacing evenly at the rate that burst shows ends a long job
//! about one window later than sending each window's allowance as it frees.
//! So [`Adaptive`](super::adaptive::Adaptive) reads the first 429 of a burst
//! as a window: as many requests as were accepted, in the whole seconds of
//! the time they took plus the `Retry-After`. That window is then kept as
//! an explicit rate's is ([`Window`]), with two checks:
//!
//! - **Slow start.** When the window first frees, one request goes, then
//!   two more for each accepted answer (doubling each round trip), until
//!   half the allowance has been accepted. A server that does not count in
//!   windows (a token bucket, say) refuses some of the last round instead
//!   of a burst. Answers that do not come (errors, cancelled calls) stall
//!   nothing: a request still goes every [`Rate::interval`].
//! - **Probe.** When the window is full and its requests have been
//!   answered (so that none can be overtaken), one request more goes, at
//!   most one round a span, a whole number of seconds before the next
//!   slot frees ([`probe_time`]). A 429 to it costs no more than its round
//!   trip: the window was full, and its `Retry-After`, in whole seconds,
//!   ends when the slot frees. An accepted answer may only mean that the
//!   server freed a slot before this window did (it holds each a little
//!   longer, to be safe), so the round goes on: a second probe once the
//!   first is accepted, then two more per accepted answer, until a 429, the
//!   window's next slot or a quarter of a span before it ends the round. Half an allowance accepted beyond the
//!   window in one round says the limit is higher (lifted, or misjudged)
//!   and ends the assumption: calls go freely until the next 429.
//!
//! Any other 429 refutes the window; the caller falls back to pacing.

use std::time::{Duration, Instant};

use super::window::Window;
use super::{Rate, Sent, Slot};

#[derive(Debug)]
pub(super) struct Assumed {
    window: Window,
    /// When the burst's cooldown ends: requests sent before are the burst's.
    from: Instant,
    /// Until the window is confirmed: the slow start.
    trial: Option<Trial>,
    /// The last round of probes.
    probe: Option<Probe>,
}

#[derive(Debug, Default)]
struct Trial {
    /// Requests let through since the window first freed.
    taken: u32,
    /// Accepted answers to them.
    accepted: u32,
    /// When the last one went.
    last: Option<Instant>,
}

/// A round of probes.
#[derive(Debug, Clone, Copy)]
struct Probe {
    /// When the round started.
    at: Instant,
    /// When the window's next slot was taken, if one was: the round ends.
    until: Option<Instant>,
    sent: u32,
    accepted: u32,
    /// 429s to probes.
    refused: u32,
}

impl Probe {
    fn new(at: Instant) -> Self {
        Self {
            at,
            until: None,
            sent: 0,
            accepted: 0,
            refused: 0,
        }
    }
}

/// What an answer or a 429 says of the window.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Holds,
    /// The limit is higher: stop assuming it.
    Lifted,
    /// A 429 the window did not foresee: it is wrong.
    Refuted,
}

impl Assumed {
    /// A window of `count` requests over `span`, holding the burst's slots
    /// (`held`, oldest first), whose cooldown ends at `from`.
    pub(super) fn new(
        count: usize,
        span: Duration,
        held: impl IntoIterator<Item = Instant>,
        from: Instant,
    ) -> Option<Self> {
        let rate = Rate::new(u32::try_from(count).ok()?, span)?;
        Some(Self {
            window: Window::holding(rate, held),
            from,
            trial: Some(Trial::default()),
            probe: None,
        })
    }

    pub(super) fn rate(&self) -> Rate {
        self.window.rate()
    }

    /// Lets a request through at `now`, or says when to ask again.
    pub(super) fn take(&mut self, now: Instant) -> Result<Slot, Instant> {
        let interval = self.window.rate().interval();
        if let Some(trial) = &self.trial
            && let Some(next) = trial.last.map(|l| l + interval)
            && trial.taken > 2 * trial.accepted
            && now < next
        {
            // Waiting for answers, an interval at most.
            return Err(next);
        }
        match self.window.take(now) {
            Ok(()) => {
                if let Some(trial) = &mut self.trial {
                    trial.taken += 1;
                    trial.last = Some(now);
                }
                if let Some(probe) = &mut self.probe {
                    probe.until.get_or_insert(now);
                }
                Ok(Slot::Within)
            }
            Err(free) if self.trial.is_none() => match self.probe_at(now, free) {
                Some(at) if at <= now => {
                    let span = self.window.rate().per();
                    let probe = match &mut self.probe {
                        Some(p) if now < p.at + span => p,
                        _ => self.probe.insert(Probe::new(now)),
                    };
                    probe.sent += 1;
                    Ok(Slot::Probe)
                }
                Some(at) => Err(at),
                None => Err(free),
            },
            Err(free) => Err(free),
        }
    }

    /// When a probe may go, at `now` or later, the window being full until
    /// `free`; `None` if none may before the slot frees.
    ///
    /// A round a span, each probe on the evidence of the ones before. Not
    /// while the window's slots are freeing one after another (the server
    /// frees them a little sooner, and would accept probes that say
    /// nothing), nor while the window's requests of the last span are
    /// unanswered (a probe may reach the server first, and take the slot
    /// of one of them). A round's first probe goes whole seconds before the
    /// slot frees ([`probe_time`]).
    fn probe_at(&self, now: Instant, free: Instant) -> Option<Instant> {
        let span = self.window.rate().per();
        if self.window.unanswered_since(now.checked_sub(span)) > 0 {
            return None;
        }
        let from = match self.probe {
            Some(p) if now < p.at + span => {
                if p.refused == 0 && p.until.is_none() && p.sent < p.accepted + p.accepted.max(1) {
                    // On the evidence of the round's first, which went a
                    // second or half a span before the slot: a quarter of
                    // a span still keeps clear of the slot.
                    return (free >= now + span / 4).then_some(now);
                }
                p.at + span
            }
            _ => now,
        };
        probe_time(from, free, span)
    }

    /// A request `sent` was answered, not with a 429, at `now`.
    pub(super) fn accepted(&mut self, sent: Sent, now: Instant) -> Verdict {
        if sent.at < self.from {
            // A late answer to the burst, before anything went since: the
            // allowance is one more.
            if self.trial.as_ref().is_some_and(|t| t.taken == 0) {
                self.window.grow(now);
            }
            return Verdict::Holds;
        }
        if sent.probe {
            let half = self.window.rate().count().div_ceil(2);
            if let Some(probe) = &mut self.probe {
                probe.accepted += 1;
                if probe.accepted >= half {
                    return Verdict::Lifted;
                }
            }
            return Verdict::Holds;
        }
        self.window.answered(now);
        if let Some(trial) = &mut self.trial {
            trial.accepted += 1;
            if 2 * trial.accepted >= self.window.rate().count() {
                self.trial = None;
            }
        }
        Verdict::Holds
    }

    /// A request got a 429.
    pub(super) fn throttled(&mut self, sent: Sent) -> Verdict {
        if sent.at < self.from {
            return Verdict::Holds;
        }
        if !sent.probe {
            return Verdict::Refuted;
        }
        if let Some(probe) = &mut self.probe {
            probe.refused += 1;
        }
        Verdict::Holds
    }
}

/// How late past a whole second before the slot a probe may still go: how
/// much longer than the window its 429 may hold calls.
const PROBE_LATE: Duration = Duration::from_millis(10);

/// When a probe may go, from `from`, the window of `span` being full until
/// `free`: the soonest a whole number of seconds (one at least) before
/// `free`, or up to [`PROBE_LATE`] past one. With no whole second in reach
/// (in a window under two seconds), at once if `free` is half a span away
/// or more. `None` if neither.
///
/// A server's `Retry-After` counts whole seconds, rounded up, from when the
/// request arrived. So the 429 to a request sent a whole number of seconds
/// before a slot frees asks to wait about until the slot frees; sent at
/// any other time, it asks to wait up to a second longer, and that second
/// holds every call behind it. Both keep probes clear of the slots freeing
/// one after another, which the server frees a little sooner and would
/// let probes take.
fn probe_time(from: Instant, free: Instant, span: Duration) -> Option<Instant> {
    let ahead = free.checked_duration_since(from)?;
    let before = Duration::from_secs((ahead + PROBE_LATE).as_secs());
    if !before.is_zero() {
        return Some(free.checked_sub(before).map_or(from, |at| at.max(from)));
    }
    (ahead >= span / 2).then_some(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const SECOND: Duration = Duration::from_secs(1);

    fn within(at: Instant) -> Sent {
        at.into()
    }

    fn probe(at: Instant) -> Sent {
        Sent { at, probe: true }
    }

    /// 4 accepted at 0-3 ms, the 429 at 10 ms asking for 1 s: 4 per 1.01 s
    /// (the burst's age plus the wait), free from 1.01 s.
    fn four_a_second(t0: Instant) -> Assumed {
        let held = (0..4).map(|i| t0 + i * MS);
        Assumed::new(4, 1010 * MS, held, t0 + 1010 * MS).unwrap()
    }

    /// [`four_a_second`], confirmed, its window filled at `open` (when the
    /// burst's slots have freed) and answered a millisecond later.
    fn full(t0: Instant) -> (Assumed, Instant) {
        let mut a = four_a_second(t0);
        a.trial = None;
        let open = t0 + 1013 * MS;
        for _ in 0..4 {
            assert_eq!(a.take(open), Ok(Slot::Within));
        }
        for _ in 0..4 {
            assert_eq!(a.accepted(within(open), open + MS), Verdict::Holds);
        }
        (a, open)
    }

    #[test]
    fn the_burst_holds_the_window_until_its_slots_free() {
        let t0 = Instant::now();
        let mut a = four_a_second(t0);
        assert_eq!(a.take(t0 + 500 * MS), Err(t0 + 1010 * MS));
        assert_eq!(a.take(t0 + 1010 * MS), Ok(Slot::Within));
    }

    #[test]
    fn late_answers_to_the_burst_grow_the_allowance_until_the_window_opens() {
        let t0 = Instant::now();
        let mut a = four_a_second(t0);
        assert_eq!(a.accepted(within(t0), t0 + 20 * MS), Verdict::Holds);
        assert_eq!(a.rate().count(), 5);
        a.take(t0 + 1010 * MS).unwrap();
        assert_eq!(a.accepted(within(t0), t0 + 1020 * MS), Verdict::Holds);
        assert_eq!(a.rate().count(), 5, "too late: the window has opened");
        // The burst's own 429s say nothing new.
        assert_eq!(a.throttled(within(t0 + 5 * MS)), Verdict::Holds);
    }

    #[test]
    fn slow_start_lets_two_more_go_per_accepted_answer() {
        let t0 = Instant::now();
        let mut a = Assumed::new(8, 1010 * MS, [t0], t0 + 1010 * MS).unwrap();
        let open = t0 + 1010 * MS;
        let interval = a.rate().interval();
        assert_eq!(a.take(open), Ok(Slot::Within));
        // The next waits for an answer, or an interval at most.
        assert_eq!(a.take(open), Err(open + interval));
        a.accepted(within(open), open + MS);
        assert_eq!(a.take(open + MS), Ok(Slot::Within));
        assert_eq!(a.take(open + MS), Ok(Slot::Within));
        assert!(a.take(open + MS).is_err());
        // Answers stalled: one an interval.
        assert_eq!(a.take(open + MS + interval), Ok(Slot::Within));
        // Three more accepted: half of 8, so the window is confirmed and
        // takes over.
        for _ in 0..3 {
            a.accepted(within(open + MS), open + 3 * MS);
        }
        assert!(a.trial.is_none());
        let t = open + MS + interval;
        for _ in 0..3 {
            assert_eq!(a.take(t), Ok(Slot::Within));
        }
    }

    #[test]
    fn a_429_in_the_slow_start_refutes_the_window() {
        let t0 = Instant::now();
        let mut a = four_a_second(t0);
        let open = t0 + 1010 * MS;
        a.take(open).unwrap();
        assert_eq!(a.throttled(within(open)), Verdict::Refuted);
    }

    #[test]
    fn a_full_window_probes_once_its_requests_are_answered_a_whole_second_before_its_next_slot() {
        let t0 = Instant::now();
        let mut a = four_a_second(t0);
        a.trial = None;
        // Slots freeing one after another: no probe between them.
        let open = t0 + 1010 * MS;
        assert_eq!(a.take(open), Ok(Slot::Within));
        assert_eq!(a.take(open), Err(open + MS));
        for i in 1..4 {
            assert_eq!(a.take(open + i * MS), Ok(Slot::Within));
        }
        // Full for a span, but its requests are out: a probe might reach
        // the server before them.
        assert_eq!(a.take(open + 4 * MS), Err(open + 1010 * MS));
        // Answered: one probe, a second before the first slot frees, then
        // nothing until it does.
        for i in 0..4 {
            a.accepted(within(open + i * MS), open + 5 * MS);
        }
        let free = open + 1015 * MS;
        assert_eq!(a.take(open + 6 * MS), Err(free - SECOND));
        assert_eq!(a.take(free - SECOND), Ok(Slot::Probe));
        assert_eq!(a.take(free - SECOND + MS), Err(free));
    }

    #[test]
    fn a_probe_goes_whole_seconds_before_the_slot_so_that_its_429_ends_with_it() {
        let from = Instant::now();
        let minute = 60 * SECOND;
        // Retry-After: 42 from 0.3 s on ends when the slot frees.
        let free = from + 42_300 * MS;
        assert_eq!(probe_time(from, free, minute), Some(free - 42 * SECOND));
        // A little late for 42 s: at once, held 8 ms past the slot.
        assert_eq!(probe_time(from, from + 41_992 * MS, minute), Some(from));
        // Later: at 41 s.
        let free = from + 41_985 * MS;
        assert_eq!(probe_time(from, free, minute), Some(free - 41 * SECOND));
        // Under a second to go, in a minute's window: none.
        assert_eq!(probe_time(from, from + 900 * MS, minute), None);
        // A window of a second has no whole second in reach: at once if the
        // slot is half a span away.
        assert_eq!(probe_time(from, from + 900 * MS, SECOND), Some(from));
        assert_eq!(probe_time(from, from + 400 * MS, SECOND), None);
        assert_eq!(probe_time(from + SECOND, from, SECOND), None);
    }

    #[test]
    fn a_probes_429_holds_the_window_and_ends_the_round() {
        let t0 = Instant::now();
        let (mut a, open) = full(t0);
        let free = open + 1011 * MS;
        let t = free - SECOND;
        assert_eq!(a.take(open + 2 * MS), Err(t));
        assert_eq!(a.take(t), Ok(Slot::Probe));
        assert_eq!(a.throttled(probe(t)), Verdict::Holds);
        // No more probes this span.
        assert_eq!(a.take(open + 500 * MS), Err(free));
        // A 429 to a request of the window refutes it.
        assert_eq!(a.take(free), Ok(Slot::Within));
        assert_eq!(a.throttled(within(free)), Verdict::Refuted);
    }

    #[test]
    fn a_round_that_began_a_second_before_the_slot_of_a_two_second_window_goes_on() {
        let t0 = Instant::now();
        let mut a = Assumed::new(4, 2 * SECOND, [t0; 4], t0 + 2 * SECOND).unwrap();
        a.trial = None;
        let open = t0 + 2 * SECOND;
        for _ in 0..4 {
            assert_eq!(a.take(open), Ok(Slot::Within));
        }
        for _ in 0..4 {
            a.accepted(within(open), open + 10 * MS);
        }
        // Asked 20 ms after the answers, the slot frees in 1.98 s: the
        // round starts a second before it, half a span away.
        let free = open + 2010 * MS;
        assert_eq!(a.take(open + 30 * MS), Err(free - SECOND));
        let t = free - SECOND;
        assert_eq!(a.take(t), Ok(Slot::Probe));
        assert_eq!(a.accepted(probe(t), t + MS), Verdict::Holds);
        assert_eq!(a.take(t + MS), Ok(Slot::Probe));
        assert_eq!(a.take(t + MS), Err(free));
        assert_eq!(a.accepted(probe(t + MS), t + 2 * MS), Verdict::Lifted);
    }

    #[test]
    fn probes_go_on_while_accepted_and_half_an_allowance_more_lifts_the_window() {
        let t0 = Instant::now();
        let (mut a, open) = full(t0);
        let t = open + 11 * MS;
        assert_eq!(a.take(t), Ok(Slot::Probe));
        // One probe at a time until the first is accepted.
        assert!(a.take(t).is_err());
        assert_eq!(a.accepted(probe(t), t + MS), Verdict::Holds);
        assert_eq!(a.take(t + MS), Ok(Slot::Probe));
        // Two accepted beyond a window of four: the limit is higher.
        assert_eq!(a.accepted(probe(t + MS), t + 2 * MS), Verdict::Lifted);
    }
}
