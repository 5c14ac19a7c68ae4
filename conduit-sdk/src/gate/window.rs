//! An explicit rate as a window's allowance: at most `count` requests in
//! any span of `per`, the way Conduit states its limit (120 a minute).
//!
//! A job smaller than the allowance goes at once, and a larger one takes
//! each slot as it frees: all that a server counting in a sliding window
//! of that size accepts, and nothing a server counting in fixed windows or
//! in a token bucket of that size would refuse, since both allow at least
//! as much.
//!
//! The server counts a request when it arrives, somewhere between when it
//! was sent and when its answer came back. So a slot is held from when the
//! request was let through and, once answered, until a span after the
//! answer: otherwise a request that arrived late would let the one sent a
//! span after it arrive too early, and meet a 429. Answers are not matched
//! to their requests: each answer ends the oldest slot still waiting for
//! one, which gives the window the same times as matching them would.
//!
//! A 429 says the server sees more than this window does: another client
//! uses the limit too, or it is lower than the rate given. For a span after
//! the cooldown, slots then go one [`Rate::interval`] apart instead of at
//! once, so that clients sharing a limit unknowingly take turns rather
//! than bursting into each other's 429s.

use std::collections::VecDeque;
use std::time::Instant;

use super::Rate;

#[derive(Debug)]
pub(super) struct Window {
    rate: Rate,
    /// When the requests not answered yet were let through, oldest first.
    sent: VecDeque<Instant>,
    /// When the answers came, oldest first.
    answered: VecDeque<Instant>,
    /// Until when slots go one interval apart, after a 429.
    spread_until: Option<Instant>,
    /// When the last slot was taken.
    last: Option<Instant>,
}

impl Window {
    pub(super) fn new(rate: Rate) -> Self {
        Self {
            rate,
            sent: VecDeque::new(),
            answered: VecDeque::new(),
            spread_until: None,
            last: None,
        }
    }

    /// A window already holding a slot answered at each of `held` (oldest
    /// first): the requests of a burst it is assumed from.
    pub(super) fn holding(rate: Rate, held: impl IntoIterator<Item = Instant>) -> Self {
        let mut window = Self::new(rate);
        window.answered.extend(held);
        window
    }

    pub(super) fn rate(&self) -> Rate {
        self.rate
    }

    /// The allowance is one more than thought: one more slot, answered at
    /// `at`, is held.
    pub(super) fn grow(&mut self, at: Instant) {
        if let Some(rate) = Rate::new(self.rate.count().saturating_add(1), self.rate.per()) {
            self.rate = rate;
            self.answered.push_back(at);
        }
    }

    /// Lets a request through at `now` if the window has room, else says
    /// when it will.
    pub(super) fn take(&mut self, now: Instant) -> Result<(), Instant> {
        if let Some(last) = self
            .last
            .filter(|_| self.spread_until.is_some_and(|u| now < u))
        {
            let next = last + self.rate.interval();
            if now < next {
                return Err(next);
            }
        }
        let count = usize::try_from(self.rate.count()).unwrap_or(usize::MAX);
        if self.sent.len() + self.answered.len() >= count {
            let (oldest, queue) = match (self.sent.front(), self.answered.front()) {
                (Some(s), Some(a)) if a < s => (*a, &mut self.answered),
                (Some(s), _) => (*s, &mut self.sent),
                (None, Some(a)) => (*a, &mut self.answered),
                // Never: the window holds `count` (at least one) slots.
                (None, None) => (now, &mut self.sent),
            };
            let free = oldest + self.rate.per();
            if now < free {
                return Err(free);
            }
            queue.pop_front();
        }
        self.sent.push_back(now);
        self.last = Some(now);
        Ok(())
    }

    /// A 429 came, and the partition cools down until `until`: slots go
    /// one interval apart for a span after that.
    pub(super) fn throttled(&mut self, until: Instant) {
        let spread = until + self.rate.per();
        self.spread_until = Some(self.spread_until.map_or(spread, |u| u.max(spread)));
    }

    /// Whether no slot holds the window at `now`: forgetting it loses
    /// nothing.
    pub(super) fn is_idle(&self, now: Instant) -> bool {
        let newest = self
            .sent
            .back()
            .into_iter()
            .chain(self.answered.back())
            .max();
        newest.is_none_or(|t| *t + self.rate.per() <= now)
    }

    /// Requests let through since `since` (all, for `None`) and not
    /// answered yet.
    pub(super) fn unanswered_since(&self, since: Option<Instant>) -> usize {
        let since = since.map_or(0, |t| self.sent.partition_point(|s| *s < t));
        self.sent.len() - since
    }

    /// An answer (a 429 or not) came at `now`.
    pub(super) fn answered(&mut self, now: Instant) {
        if self.sent.pop_front().is_some() {
            self.answered.push_back(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn window(count: u32, per: Duration) -> Window {
        Window::new(Rate::new(count, per).unwrap())
    }

    #[test]
    fn the_allowance_goes_at_once_then_each_slot_a_span_after_it_was_taken() {
        let t0 = Instant::now();
        let mut w = window(3, Duration::from_secs(1));
        for i in 0..3 {
            assert_eq!(w.take(t0 + i * 10 * MS), Ok(()), "request {i}");
        }
        assert_eq!(w.take(t0 + 500 * MS), Err(t0 + 1000 * MS));
        assert_eq!(w.take(t0 + 1000 * MS), Ok(()));
        // The next slot is the second request's, a span after it.
        assert_eq!(w.take(t0 + 1000 * MS), Err(t0 + 1010 * MS));
        assert_eq!(w.take(t0 + 1020 * MS), Ok(()));
        assert_eq!(w.take(t0 + 1020 * MS), Ok(()));
        assert_eq!(w.take(t0 + 1020 * MS), Err(t0 + 2000 * MS));
    }

    #[test]
    fn an_answered_slot_frees_a_span_after_its_answer() {
        let t0 = Instant::now();
        let mut w = window(2, Duration::from_secs(1));
        w.take(t0).unwrap();
        w.take(t0 + 10 * MS).unwrap();
        // The first answer comes at 80 ms: the server may have counted a
        // request as late as that.
        w.answered(t0 + 80 * MS);
        // The slot still waiting for its answer (taken at 10 ms) is the
        // oldest now.
        assert_eq!(w.take(t0 + 500 * MS), Err(t0 + 1010 * MS));
        assert_eq!(w.take(t0 + 1010 * MS), Ok(()));
        assert_eq!(w.take(t0 + 1010 * MS), Err(t0 + 1080 * MS));
        assert_eq!(w.take(t0 + 1080 * MS), Ok(()));
        // Two answers end the two slots held; more change nothing.
        for _ in 0..5 {
            w.answered(t0 + 1500 * MS);
        }
        assert_eq!(w.take(t0 + 1600 * MS), Err(t0 + 2500 * MS));
    }

    #[test]
    fn after_a_429_slots_go_one_interval_apart_for_a_span() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = window(4, s(4));
        w.take(t0).unwrap();
        w.answered(t0);
        // Cooled down until 1 s: until 5 s, one a second at most.
        w.throttled(t0 + s(1));
        assert_eq!(w.take(t0 + s(1)), Ok(()));
        assert_eq!(w.take(t0 + s(1)), Err(t0 + s(2)));
        assert_eq!(w.take(t0 + s(2)), Ok(()));
        assert_eq!(w.take(t0 + s(3)), Ok(()));
        // The window is full until the first slot frees at 4 s.
        assert_eq!(w.take(t0 + s(3) + 500 * MS), Err(t0 + s(4)));
        assert_eq!(w.take(t0 + s(4)), Ok(()));
        // Past 5 s, the allowance goes at once again.
        assert_eq!(w.take(t0 + s(6)), Ok(()));
        assert_eq!(w.take(t0 + s(6)), Ok(()));
        assert_eq!(w.take(t0 + s(6)), Err(t0 + s(7)));
    }

    #[test]
    fn a_window_is_idle_once_its_last_slot_has_freed() {
        let t0 = Instant::now();
        let mut w = window(2, Duration::from_secs(600));
        assert!(w.is_idle(t0));
        w.take(t0).unwrap();
        w.answered(t0 + MS);
        w.take(t0 + 2 * MS).unwrap();
        assert!(!w.is_idle(t0 + Duration::from_secs(300)));
        assert!(w.is_idle(t0 + Duration::from_secs(600) + 2 * MS));
    }

    #[test]
    fn nothing_is_banked_over_idle_time() {
        let t0 = Instant::now();
        let mut w = window(2, Duration::from_secs(1));
        let later = t0 + Duration::from_secs(60);
        w.take(t0).unwrap();
        w.answered(t0);
        w.take(later).unwrap();
        w.take(later).unwrap();
        assert_eq!(w.take(later), Err(later + Duration::from_secs(1)));
    }
}
