//! The gate's rules on Tokio's paused clock: exact, and no real waiting.

use std::time::Instant;

use tokio::time::Instant as TokioInstant;

use super::*;
use crate::learned::Refused;
use crate::time::TokioTime;

const MAX_WAIT: Duration = Duration::from_secs(60);

fn partition(limiter: &RateLimiter, key: &str) -> Arc<Partition> {
    let clock: Arc<dyn Clock> = Arc::new(TokioTime);
    limiter.partition(key, &clock).expect("an enabled limiter")
}

/// Tokio's timer wakes on whole milliseconds, rounding up: an upper bound
/// on a paused clock allows this much more.
const TICK: Duration = Duration::from_millis(1);

fn now() -> Instant {
    TokioTime.now()
}

/// Starts `n` calls through `p` at once; returns when each got through,
/// in the order they did.
async fn release_times(p: &Arc<Partition>, n: usize) -> Vec<Duration> {
    let start = TokioInstant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                p.wait(&TokioTime, MAX_WAIT).await.unwrap();
                start.elapsed()
            })
        })
        .collect();
    let mut times = Vec::new();
    for t in tasks {
        times.push(t.await.unwrap());
    }
    times.sort();
    times
}

#[tokio::test(start_paused = true)]
async fn unengaged_partitions_let_calls_through_at_once() {
    let p = partition(&RateLimiter::adaptive(), "workspace:a");
    for _ in 0..100 {
        p.accepted(now()).await;
    }
    assert!(release_times(&p, 50).await.iter().all(Duration::is_zero));
}

#[tokio::test(start_paused = true)]
async fn a_cooldown_holds_every_call_until_retry_after_then_spreads_them() {
    let p = partition(&RateLimiter::adaptive(), "workspace:a");
    // 10 accepted in a burst, then a 429 asking for 10 s.
    for _ in 0..10 {
        p.accepted(now()).await;
    }
    p.throttled(now(), Duration::from_secs(10)).await;
    let times = release_times(&p, 20).await;
    let deadline = Duration::from_secs(10);
    assert!(times[0] >= deadline, "undercut Retry-After: {times:?}");
    // Jitter after the deadline, at most one pacing interval (≤ 1 s).
    assert!(times[0] <= deadline + MAX_JITTER + TICK, "{times:?}");
    // The burst shows a window of 10 per 10 s. With no answers to confirm
    // it, its slow start lets one go an interval (1 s), and the window
    // then frees each slot 10 s after it was taken: never a burst.
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_secs(1) && gap <= Duration::from_secs(1) + TICK,
            "{times:?}"
        );
    }
}

/// A burst of 10 accepted, then a 429 asking for 10 s: a window of 10 per
/// 10 s.
async fn burst_of_ten_then_a_429_for_ten_seconds(p: &Partition) {
    for _ in 0..10 {
        p.accepted(now()).await;
    }
    p.throttled(now(), Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_probes_429_holds_calls_for_its_retry_after_and_not_a_jitter_longer() {
    let limiter = RateLimiter::adaptive();
    for i in 0..20 {
        let p = partition(&limiter, &format!("workspace:{i}"));
        burst_of_ten_then_a_429_for_ten_seconds(&p).await;
        tokio::time::advance(Duration::from_secs(10)).await;
        // A probe of that window is refused for 2 s: the window holds the
        // calls from then on, so they need no jitter of up to an interval
        // (1 s) to spread them.
        let probe = Sent {
            at: now(),
            probe: true,
        };
        p.throttled(probe, Duration::from_secs(2)).await;
        let start = TokioInstant::now();
        p.wait(&TokioTime, MAX_WAIT).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(2), "partition {i}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_window_a_burst_shows_opens_when_its_cooldown_ends_with_no_jitter() {
    let limiter = RateLimiter::adaptive();
    for i in 0..20 {
        let p = partition(&limiter, &format!("workspace:{i}"));
        // The window's slow start spreads the calls the cooldown held, so
        // the first goes as it ends rather than up to an interval (1 s)
        // later.
        burst_of_ten_then_a_429_for_ten_seconds(&p).await;
        let start = TokioInstant::now();
        p.wait(&TokioTime, MAX_WAIT).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(10), "partition {i}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_later_longer_429_extends_the_cooldown_for_calls_already_waiting() {
    let p = partition(&RateLimiter::adaptive(), "workspace:a");
    p.throttled(now(), Duration::from_secs(2)).await;
    let waiter = {
        let p = p.clone();
        tokio::spawn(async move {
            let start = TokioInstant::now();
            p.wait(&TokioTime, MAX_WAIT).await.unwrap();
            start.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    p.throttled(now(), Duration::from_secs(5)).await; // now until t = 6 s
    let waited = waiter.await.unwrap();
    assert!(waited >= Duration::from_secs(6), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn partitions_are_independent() {
    let limiter = RateLimiter::adaptive();
    let a = partition(&limiter, "workspace:a");
    let b = partition(&limiter, "workspace:b");
    a.throttled(now(), Duration::from_secs(30)).await;
    assert_eq!(b.wait(&TokioTime, MAX_WAIT).await, Ok(Passed::default()));
    // The same key is the same partition, from any client of the limiter.
    let a2 = partition(&limiter, "workspace:a");
    assert!(Arc::ptr_eq(&a, &a2));
    let other = partition(&RateLimiter::adaptive(), "workspace:a");
    assert_eq!(
        other.wait(&TokioTime, MAX_WAIT).await,
        Ok(Passed::default())
    );
}

#[tokio::test(start_paused = true)]
async fn an_explicit_rate_lets_its_allowance_go_at_once_then_a_span_after_each() {
    let p = partition(
        &RateLimiter::fixed(Rate::new(10, Duration::from_secs(1)).unwrap()),
        "token:x",
    );
    let times = release_times(&p, 30).await;
    // Ten at once, ten a second later, ten a second after that: never
    // more than ten in any second.
    for (i, t) in times.iter().enumerate() {
        let span = Duration::from_secs(i as u64 / 10);
        assert!(
            *t >= span && *t <= span + TICK,
            "call {i} at {t:?}: {times:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_explicit_rate_holds_an_answered_slot_a_span_past_its_answer() {
    let p = partition(
        &RateLimiter::fixed(Rate::new(2, Duration::from_secs(1)).unwrap()),
        "token:x",
    );
    let start = TokioInstant::now();
    p.wait(&TokioTime, MAX_WAIT).await.unwrap();
    p.wait(&TokioTime, MAX_WAIT).await.unwrap();
    // Answered after 200 ms (a 429 or not): the server may have counted
    // them as late as that, so their slots free at 1.2 s, not 1 s.
    tokio::time::advance(Duration::from_millis(200)).await;
    p.accepted(start.into_std()).await;
    p.throttled(start.into_std(), Duration::ZERO).await;
    p.wait(&TokioTime, MAX_WAIT).await.unwrap();
    let third = start.elapsed();
    assert!(
        third >= Duration::from_millis(1200) && third <= Duration::from_millis(1200) + TICK,
        "{third:?}"
    );
    // Nothing is banked over idle time: after a minute, two at once and
    // the third a span later.
    tokio::time::advance(Duration::from_secs(60)).await;
    let times = release_times(&p, 3).await;
    assert_eq!(&times[..2], &[Duration::ZERO; 2]);
    assert!(times[2] >= Duration::from_secs(1), "{times:?}");
}

#[tokio::test(start_paused = true)]
async fn an_explicit_rate_also_honours_cooldowns_then_spreads_its_slots_for_a_span() {
    let p = partition(
        &RateLimiter::fixed(Rate::new(10, Duration::from_secs(1)).unwrap()),
        "token:x",
    );
    p.throttled(now(), Duration::from_secs(3)).await;
    let times = release_times(&p, 15).await;
    assert!(times[0] >= Duration::from_secs(3), "{times:?}");
    assert!(
        times[0] <= Duration::from_millis(3100) + TICK,
        "jitter ≤ one interval: {times:?}"
    );
    // Someone else may be using the limit: for a span after the cooldown,
    // one slot per interval (100 ms), not the allowance at once.
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(100), "{times:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaves_the_queue_at_once() {
    let p = partition(&RateLimiter::fixed(Rate::per_second(1).unwrap()), "token:x");
    p.wait(&TokioTime, MAX_WAIT).await.unwrap(); // takes the slot at t = 0
    let start = TokioInstant::now();
    // The head of the queue gives up after 100 ms; the call behind it
    // then takes the slot at t = 1 s, not the one after.
    let head = {
        let p = p.clone();
        tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(100), p.wait(&TokioTime, MAX_WAIT)).await
        })
    };
    tokio::task::yield_now().await;
    let next = {
        let p = p.clone();
        tokio::spawn(async move {
            p.wait(&TokioTime, MAX_WAIT).await.unwrap();
            start.elapsed()
        })
    };
    assert!(head.await.unwrap().is_err(), "the head timed out");
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100),
        "it left at once"
    );
    assert_eq!(next.await.unwrap(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_cooldown_beyond_max_wait_refuses_at_once_with_what_is_left() {
    let p = partition(&RateLimiter::adaptive(), "workspace:a");
    p.throttled(now(), Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let start = TokioInstant::now();
    let refused = p.wait(&TokioTime, MAX_WAIT).await.unwrap_err();
    assert_eq!(refused, Refused::Cooldown(Duration::from_secs(110)));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn stats_count_429s_and_waits() {
    let limiter = RateLimiter::adaptive();
    let p = partition(&limiter, "workspace:a");
    p.throttled(now(), Duration::from_secs(2)).await;
    p.wait(&TokioTime, MAX_WAIT).await.unwrap();
    let stats = limiter.stats();
    assert_eq!(stats.throttled, 1);
    assert_eq!(stats.waits, 1);
    assert!(stats.waited >= Duration::from_secs(2), "{stats:?}");
}

#[tokio::test]
async fn idle_partitions_are_dropped_but_held_and_cooling_ones_are_kept() {
    let limiter = RateLimiter::adaptive();
    let time = crate::time::ManualTime::new();
    let clock: Arc<dyn Clock> = Arc::new(time.clone());
    let held = limiter.partition("workspace:held", &clock).unwrap();
    let cooling = limiter.partition("workspace:cooling", &clock).unwrap();
    let many = |from: usize| {
        for i in from..from + 100_000 {
            limiter
                .partition(&format!("workspace:{i}"), &clock)
                .unwrap();
        }
    };
    many(0);
    assert_eq!(limiter.partition_count(), 100_002, "none idle yet");
    // Its last 429 came 119 s after its last lookup: its cooldown outlasts
    // the idle time.
    time.advance(IDLE - Duration::from_secs(1));
    cooling.throttled(time.now(), MAX_COOLDOWN).await;
    drop(cooling);
    time.advance(Duration::from_secs(2));
    many(100_000);
    let count = limiter.partition_count();
    assert!(count <= 100_002, "the first 100 000 were dropped: {count}");
    let cooling = limiter.partition("workspace:cooling", &clock).unwrap();
    let refused = cooling
        .wait(&time, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(refused, Refused::Cooldown(_)), "{refused:?}");
    let same = limiter.partition("workspace:held", &clock).unwrap();
    assert!(Arc::ptr_eq(&held, &same), "a partition in use is kept");
}

#[tokio::test]
async fn a_partition_whose_window_still_holds_a_slot_is_kept() {
    let limiter = RateLimiter::fixed(Rate::new(1, Duration::from_secs(3_600)).unwrap());
    let time = crate::time::ManualTime::new();
    let clock: Arc<dyn Clock> = Arc::new(time.clone());
    let hourly = limiter.partition("workspace:hourly", &clock).unwrap();
    hourly.wait(&time, MAX_WAIT).await.unwrap();
    drop(hourly);
    drop(limiter.partition("workspace:unused", &clock));
    time.advance(IDLE + Duration::from_secs(1));
    for i in 0..2 * SWEEP_FROM {
        limiter
            .partition(&format!("workspace:{i}"), &clock)
            .unwrap();
    }
    // The sweep dropped the unused one and kept the one holding a slot.
    assert_eq!(limiter.partition_count(), 2 * SWEEP_FROM + 1);
    // Its one slot an hour is still taken: the next call may not go.
    let hourly = limiter.partition("workspace:hourly", &clock).unwrap();
    let refused = hourly.wait(&time, MAX_WAIT).await.unwrap_err();
    assert!(matches!(refused, Refused::Turn { .. }), "{refused:?}");
}

#[tokio::test(start_paused = true)]
async fn a_queued_call_leaves_when_its_budget_runs_out_and_the_head_waits_on() {
    let p = partition(&RateLimiter::adaptive(), "workspace:a");
    p.throttled(now(), Duration::from_secs(10)).await;
    let start = TokioInstant::now();
    let head = {
        let p = p.clone();
        tokio::spawn(async move { (p.wait(&TokioTime, MAX_WAIT).await, start.elapsed()) })
    };
    tokio::task::yield_now().await;
    // Queued behind the head, with 2 s to spare: out at 2 s, not 10.
    let behind = p.wait(&TokioTime, Duration::from_secs(2)).await;
    assert_eq!(
        behind,
        Err(Refused::Turn {
            waited: Duration::from_secs(2)
        })
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let (head, took) = head.await.unwrap();
    assert!(
        head.is_ok() && took >= Duration::from_secs(10),
        "{head:?} {took:?}"
    );
}
