//! The gate's rules on Tokio's paused clock: exact, and no real waiting.

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use tokio::time::Instant as TokioInstant;

use super::*;
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
        p.accepted(now());
    }
    assert!(release_times(&p, 50).await.iter().all(Duration::is_zero));
}

#[tokio::test(start_paused = true)]
async fn a_cooldown_holds_every_call_until_retry_after_then_spreads_them() {
    let p = partition(&RateLimiter::adaptive(), "workspace:a");
    // 10 accepted in a burst, then a 429 asking for 10 s.
    for _ in 0..10 {
        p.accepted(now());
    }
    p.throttled(now(), Duration::from_secs(10)).await;
    let times = release_times(&p, 20).await;
    let deadline = Duration::from_secs(10);
    assert!(times[0] >= deadline, "undercut Retry-After: {times:?}");
    // Jitter after the deadline, at most one pacing interval (≤ 1 s).
    assert!(times[0] <= deadline + MAX_JITTER + TICK, "{times:?}");
    // Paced near what the server accepted (10 per 10 s = 1/s, less 10 %),
    // then faster as the rate probes up, never as one burst: at most twice
    // the rate found.
    let gap = times[1] - times[0];
    assert!(
        gap >= Duration::from_secs(1) && gap <= Duration::from_secs_f64(1.0 / 0.9) + TICK,
        "{times:?}"
    );
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(499),
            "a burst: {times:?}"
        );
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
    assert_eq!(b.wait(&TokioTime, MAX_WAIT).await, Ok(Duration::ZERO));
    // The same key is the same partition, from any client of the limiter.
    let a2 = partition(&limiter, "workspace:a");
    assert!(Arc::ptr_eq(&a, &a2));
    let other = partition(&RateLimiter::adaptive(), "workspace:a");
    assert_eq!(other.wait(&TokioTime, MAX_WAIT).await, Ok(Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn an_explicit_rate_paces_evenly_from_the_first_call() {
    let p = partition(
        &RateLimiter::fixed(Rate::per_second(10).unwrap()),
        "token:x",
    );
    let times = release_times(&p, 30).await;
    assert_eq!(times[0], Duration::ZERO);
    for (i, t) in times.iter().enumerate() {
        let expected = Duration::from_millis(100 * i as u64);
        let off = t.abs_diff(expected);
        assert!(
            off <= Duration::from_millis(1),
            "call {i} at {t:?}: {times:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_explicit_rate_also_honours_cooldowns() {
    let p = partition(
        &RateLimiter::fixed(Rate::per_second(10).unwrap()),
        "token:x",
    );
    p.throttled(now(), Duration::from_secs(3)).await;
    let times = release_times(&p, 5).await;
    assert!(times[0] >= Duration::from_secs(3), "{times:?}");
    assert!(
        times[0] <= Duration::from_millis(3100) + TICK,
        "jitter ≤ one interval: {times:?}"
    );
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(99), "{times:?}");
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
    assert_eq!(refused.retry_after, Duration::from_secs(110));
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

/// A server enforcing `limit` requests per sliding `window`, answering the
/// rest with a `Retry-After` of whole seconds, as HTTP servers send it.
struct SlidingWindow {
    limit: usize,
    window: Duration,
    log: VecDeque<Instant>,
}

impl SlidingWindow {
    fn hit(&mut self, at: Instant) -> Result<(), Duration> {
        while self
            .log
            .front()
            .is_some_and(|t| at.duration_since(*t) >= self.window)
        {
            self.log.pop_front();
        }
        if self.log.len() < self.limit {
            self.log.push_back(at);
            return Ok(());
        }
        let free = *self.log.front().unwrap() + self.window - at;
        Err(Duration::from_secs(
            free.as_secs() + u64::from(free.subsec_nanos() > 0),
        ))
    }
}

/// What a simulated run did.
#[derive(Debug)]
struct Run {
    succeeded: usize,
    requests: usize,
    throttled: usize,
    elapsed: Duration,
}

/// `calls` calls over `tasks` tasks with `max_retries`, through a gate in
/// `limiter`'s mode, against a sliding window server 5-15 ms away each way:
/// the middleware's loop, without HTTP.
async fn simulate(
    limiter: RateLimiter,
    tasks: usize,
    calls: usize,
    limit: usize,
    window: Duration,
    max_retries: u32,
) -> Run {
    let clock: Arc<dyn Clock> = Arc::new(TokioTime);
    let p = limiter.partition("workspace:sim", &clock);
    let server = Arc::new(Mutex::new(SlidingWindow {
        limit,
        window,
        log: VecDeque::new(),
    }));
    let next = Arc::new(AtomicUsize::new(0));
    let counts = Arc::new(Mutex::new((0usize, 0usize, 0usize)));
    let start = TokioInstant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let (p, server, next, counts) =
                (p.clone(), server.clone(), next.clone(), counts.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    for _attempt in 0..=max_retries {
                        if let Some(p) = &p {
                            p.wait(&TokioTime, MAX_WAIT).await.unwrap();
                        }
                        let sent = now();
                        tokio::time::sleep(latency()).await;
                        let answer = server.lock().unwrap().hit(now());
                        tokio::time::sleep(latency()).await;
                        {
                            let mut c = counts.lock().unwrap();
                            c.1 += 1;
                            match answer {
                                Ok(()) => c.0 += 1,
                                Err(_) => c.2 += 1,
                            }
                        }
                        match (answer, &p) {
                            (Ok(()), Some(p)) => p.accepted(sent),
                            (Ok(()), None) => {}
                            (Err(retry_after), Some(p)) => {
                                p.throttled(sent, retry_after).await;
                                continue;
                            }
                            // Without a gate each call waits alone.
                            (Err(retry_after), None) => {
                                tokio::time::sleep(retry_after).await;
                                continue;
                            }
                        }
                        break;
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let (succeeded, requests, throttled) = *counts.lock().unwrap();
    Run {
        succeeded,
        requests,
        throttled,
        elapsed: start.elapsed(),
    }
}

fn latency() -> Duration {
    Duration::from_micros(fastrand::u64(5_000..15_000))
}

#[tokio::test(start_paused = true)]
async fn under_sustained_overload_the_adaptive_gate_turns_429s_into_waiting() {
    // 400 calls over 50 tasks against 40 per 2 s (20/s), 2 retries each.
    let window = Duration::from_secs(2);
    let run = simulate(RateLimiter::adaptive(), 50, 400, 40, window, 2).await;
    let rate = run.succeeded as f64 / run.elapsed.as_secs_f64();
    eprintln!("adaptive: {run:?}, {rate:.1}/s");
    assert_eq!(run.succeeded, 400, "{run:?}");
    // Until the first 429 comes back nothing is paced, so each task's
    // request in flight then can meet one; after that, a few probes.
    assert!(run.throttled <= 50 + 15, "{run:?}");
    assert!(
        run.throttled as f64 / run.requests as f64 <= 0.15,
        "{run:?}"
    );
    assert!(rate >= 0.75 * 20.0, "{rate:.1}/s: {run:?}");

    // Without the gate each call retries alone, in waves.
    let off = simulate(RateLimiter::disabled(), 50, 400, 40, window, 2).await;
    eprintln!("disabled: {off:?}");
    assert!(off.throttled > 3 * run.throttled, "{off:?}");
}

#[tokio::test(start_paused = true)]
async fn an_explicit_rate_under_the_limit_meets_no_429() {
    let run = simulate(
        RateLimiter::fixed(Rate::per_second(19).unwrap()),
        50,
        200,
        40,
        Duration::from_secs(2),
        2,
    )
    .await;
    let rate = run.succeeded as f64 / run.elapsed.as_secs_f64();
    eprintln!("fixed: {run:?}, {rate:.1}/s");
    assert_eq!((run.succeeded, run.throttled), (200, 0), "{run:?}");
    assert!(rate >= 0.95 * 19.0, "{rate:.1}/s");
}
