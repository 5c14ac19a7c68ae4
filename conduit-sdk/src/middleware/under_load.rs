//! The request path under load, on Tokio's paused clock: the real retry
//! loop and gate against a simulated server 5-15 ms away each way, many
//! calls at once. Exact and quick: no real waiting.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

use super::*;
use crate::time::TokioTime;

/// What the simulated server does with a request arriving `at` after the
/// run started.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// 429 `Retry-After: retry_after` to everything until `until`, then 200.
    Storm { until: f64, retry_after: u64 },
    /// `limit` per sliding `window` seconds, 429 with the whole seconds until
    /// a slot frees; from `open_at` on, everything is accepted.
    Window {
        limit: usize,
        window: f64,
        open_at: Option<f64>,
    },
    /// 429 `Retry-After: retry_after` to everything.
    Always { retry_after: u64 },
    /// A token bucket of `burst` filling at `rate` a second, 429 with the
    /// whole seconds until a token is there.
    Bucket { rate: f64, burst: f64 },
}

/// One thing the simulated network saw, in the client's time.
#[derive(Debug, Clone, Copy)]
enum Event {
    Sent(Instant),
    /// A 429 reached the client at this time, asking for this many seconds.
    Throttled(Instant, u64),
}

struct Server {
    limit: Limit,
    start: Instant,
    accepted: VecDeque<Instant>,
    /// The bucket's tokens, and when they were counted.
    tokens: (f64, Instant),
    events: Vec<Event>,
    requests: usize,
}

impl Server {
    fn new(limit: Limit) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            limit,
            start: TokioTime.now(),
            accepted: VecDeque::new(),
            tokens: match limit {
                Limit::Bucket { burst, .. } => (burst, TokioTime.now()),
                _ => (0.0, TokioTime.now()),
            },
            events: Vec::new(),
            requests: 0,
        }))
    }

    /// `Ok` to accept a request arriving `now`, else its `Retry-After`.
    fn answer(&mut self, now: Instant) -> Result<(), u64> {
        self.requests += 1;
        let t = now.duration_since(self.start).as_secs_f64();
        match self.limit {
            Limit::Storm { until, retry_after } if t < until => Err(retry_after),
            Limit::Storm { .. } => Ok(()),
            Limit::Always { retry_after } => Err(retry_after),
            Limit::Bucket { rate, burst } => {
                let (tokens, at) = self.tokens;
                let tokens = (tokens + now.duration_since(at).as_secs_f64() * rate).min(burst);
                if tokens >= 1.0 {
                    self.tokens = (tokens - 1.0, now);
                    return Ok(());
                }
                self.tokens = (tokens, now);
                Err(((1.0 - tokens) / rate).ceil() as u64)
            }
            Limit::Window { open_at, .. } if open_at.is_some_and(|o| t >= o) => Ok(()),
            Limit::Window { limit, window, .. } => {
                let window = Duration::from_secs_f64(window);
                while self
                    .accepted
                    .front()
                    .is_some_and(|a| now.duration_since(*a) >= window)
                {
                    self.accepted.pop_front();
                }
                if self.accepted.len() < limit {
                    self.accepted.push_back(now);
                    return Ok(());
                }
                let free = self.accepted[0] + window - now;
                Err(free.as_secs() + u64::from(free.subsec_nanos() > 0))
            }
        }
    }
}

fn latency() -> Duration {
    Duration::from_micros(fastrand::u64(5_000..15_000))
}

/// One request through the simulated network.
async fn send(
    server: Arc<Mutex<Server>>,
    request: reqwest::Request,
) -> reqwest::Result<reqwest::Response> {
    server
        .lock()
        .unwrap()
        .events
        .push(Event::Sent(TokioTime.now()));
    tokio::time::sleep(latency()).await;
    let answer = server.lock().unwrap().answer(TokioTime.now());
    tokio::time::sleep(latency()).await;
    let mut response = http::Response::new(reqwest::Body::from("{}"));
    if let Err(retry_after) = answer {
        *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, retry_after.into());
        let mut server = server.lock().unwrap();
        server
            .events
            .push(Event::Throttled(TokioTime.now(), retry_after));
    }
    drop(request);
    Ok(reqwest::Response::from(response))
}

/// The pipeline of a client with `limiter` and `retry`, on Tokio's clock.
fn pipeline(limiter: RateLimiter, retry: RetryPolicy) -> Arc<Pipeline> {
    let clock: Arc<dyn Clock> = Arc::new(TokioTime);
    Arc::new(Pipeline {
        authorization: HeaderValue::from_static("Bearer t"),
        user_agent: HeaderValue::from_static("test"),
        retry,
        sleeper: Arc::new(TokioTime),
        partition: limiter.partition("workspace:sim", &clock),
        token_partition: None,
        clock,
        limiter,
        max_response_bytes: 1024,
        read_stall_timeout: Duration::from_secs(10),
        attempt_timeout: None,
        headers: Ok(HeaderMap::new()),
    })
}

/// How one call ended.
#[derive(Debug, Clone)]
struct Ended {
    ok: bool,
    /// Ended by the gate without sending its last request.
    refused: bool,
    attempts: u32,
    /// From the call's start.
    took: Duration,
}

/// What a run did.
#[derive(Debug)]
struct Run {
    calls: Vec<Ended>,
    requests: usize,
    events: Vec<Event>,
    elapsed: Duration,
}

impl Run {
    fn succeeded(&self) -> usize {
        self.calls.iter().filter(|c| c.ok).count()
    }

    fn throttled(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Throttled(..)))
            .count()
    }

    /// When the first 429 reached the client, from the run's start.
    fn first_429(&self, start: Instant) -> Option<Duration> {
        self.events.iter().find_map(|e| match e {
            Event::Throttled(at, _) => Some(*at - start),
            Event::Sent(_) => None,
        })
    }
}

/// `calls` calls from `tasks` tasks through one pipeline against `limit`.
async fn run(pipeline: Arc<Pipeline>, limit: Limit, tasks: usize, calls: usize) -> (Run, Instant) {
    let server = Server::new(limit);
    let start = TokioTime.now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let (pipeline, server, next) = (pipeline.clone(), server.clone(), next.clone());
            tokio::spawn(async move {
                let mut ended = Vec::new();
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < calls {
                    let began = TokioTime.now();
                    let request = reqwest::Request::new(
                        reqwest::Method::POST,
                        "http://sim.invalid/v1/x".parse().unwrap(),
                    );
                    let server = server.clone();
                    let mut learned = Learned::default();
                    let response = pipeline
                        .send_with_retries(
                            move |r| send(server.clone(), r),
                            request,
                            Scope::Workspace(None),
                            &mut learned,
                        )
                        .await
                        .unwrap();
                    ended.push(Ended {
                        ok: response.status().is_success(),
                        refused: learned.refused.is_some(),
                        attempts: learned.attempts,
                        took: TokioTime.now() - began,
                    });
                }
                ended
            })
        })
        .collect();
    let mut ended = Vec::new();
    for w in workers {
        ended.extend(w.await.unwrap());
    }
    let server = server.lock().unwrap();
    let run = Run {
        elapsed: TokioTime.now() - start,
        calls: ended,
        requests: server.requests,
        events: server.events.clone(),
    };
    (run, start)
}

/// Requests sent inside a cooldown a 429 had already announced to the
/// client: (sent at, 429 received at, its Retry-After), from the start.
fn inside_cooldowns(run: &Run, start: Instant) -> Vec<(Duration, Duration, u64)> {
    let mut announced: Vec<(Instant, u64)> = Vec::new();
    let mut inside = Vec::new();
    for event in &run.events {
        match *event {
            Event::Throttled(at, secs) => announced.push((at, secs)),
            Event::Sent(at) => {
                for &(got, secs) in &announced {
                    if at < got + Duration::from_secs(secs) {
                        inside.push((at - start, got - start, secs));
                    }
                }
            }
        }
    }
    inside
}

#[tokio::test(start_paused = true)]
async fn a_storm_is_waited_out_whole_and_left_at_full_speed() {
    // 60 calls from 20 tasks; 429 `Retry-After: 2` to everything for the
    // first 0.5 s, then 200.
    for seed in 0..4 {
        fastrand::seed(seed);
        let p = pipeline(RateLimiter::adaptive(), RetryPolicy::default());
        let storm = Limit::Storm {
            until: 0.5,
            retry_after: 2,
        };
        let (run, start) = run(p, storm, 20, 60).await;
        if std::env::var("SIM_DEBUG").is_ok() {
            for e in &run.events {
                match e {
                    Event::Sent(t) => eprintln!("sent {:?}", *t - start),
                    Event::Throttled(t, s) => eprintln!("429 {:?} ra {s}", *t - start),
                }
            }
        }
        assert_eq!(inside_cooldowns(&run, start), vec![], "seed {seed}");
        assert_eq!(run.succeeded(), 60, "seed {seed}: {:?}", run.calls);
        // The earliest a client keeping the server's word can finish.
        let ideal = run.first_429(start).unwrap() + Duration::from_secs(2);
        eprintln!(
            "storm seed {seed}: {:?}, ideal {ideal:?}, {} requests",
            run.elapsed, run.requests
        );
        assert!(
            run.elapsed <= 2 * ideal,
            "seed {seed}: {:?} against an ideal of {ideal:?}",
            run.elapsed
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_lifted_limit_is_found_within_seconds() {
    // 200 calls from 20 tasks; 10 per second for the first 3 s, then
    // everything: 30 calls fit before the lift, the rest could go at once.
    // And 40 per 2 s for 4 s (the bench's), where a round of probes starts
    // a second before the window's next slot.
    for (limit, window, open_at) in [(10, 1.0, 3.0), (40, 2.0, 4.0)] {
        for seed in 0..4 {
            fastrand::seed(seed);
            let p = pipeline(RateLimiter::adaptive(), RetryPolicy::default());
            let lift = Limit::Window {
                limit,
                window,
                open_at: Some(open_at),
            };
            let (run, start) = run(p, lift, 20, 200).await;
            assert_eq!(inside_cooldowns(&run, start), vec![], "seed {seed}");
            assert_eq!(run.succeeded(), 200, "seed {seed}");
            let ideal = Duration::from_secs_f64(open_at);
            eprintln!(
                "lift {limit} per {window} s, seed {seed}: {:?}, {} requests, {} 429s",
                run.elapsed,
                run.requests,
                run.throttled()
            );
            assert!(
                run.elapsed <= 2 * ideal,
                "{limit} per {window} s, seed {seed}: {:?} against an ideal of {ideal:?} \
                 ({} requests, {} 429s)",
                run.elapsed,
                run.requests,
                run.throttled()
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn against_a_server_that_always_says_429_every_call_ends_within_max_wait() {
    let max_wait = Duration::from_secs(60);
    let p = pipeline(
        RateLimiter::adaptive(),
        RetryPolicy::default().with_max_wait(max_wait),
    );
    let (run, start) = run(p, Limit::Always { retry_after: 1 }, 50, 200).await;
    assert_eq!(inside_cooldowns(&run, start), vec![]);
    assert_eq!(run.calls.len(), 200);
    assert_eq!(run.succeeded(), 0);
    // Each call ends after its retries or its waits, whichever comes first:
    // its own attempts take at most 30 ms each on top.
    let slack = Duration::from_millis(30) * 3;
    for call in &run.calls {
        assert!(call.took <= max_wait + slack, "{call:?}");
        assert!(call.attempts <= 3, "{call:?}");
    }
    // Most never reach the server again: the gate turns them back.
    let refused = run.calls.iter().filter(|c| c.refused).count();
    eprintln!(
        "always 429: {:?}, {} requests, {refused} refused",
        run.elapsed, run.requests
    );
    assert!(refused > 100, "{refused} refused of 200");
}

#[tokio::test(start_paused = true)]
async fn sustained_load_under_default_settings_loses_no_call() {
    // 60 tasks x 2 calls against 30 per 5 s: the gate makes them wait their
    // turn, and a 429 met while the others progress costs no retry.
    for seed in 0..6 {
        fastrand::seed(seed);
        let p = pipeline(RateLimiter::adaptive(), RetryPolicy::default());
        let window = Limit::Window {
            limit: 30,
            window: 5.0,
            open_at: None,
        };
        let (run, start) = run(p, window, 60, 120).await;
        assert_eq!(inside_cooldowns(&run, start), vec![], "seed {seed}");
        let lost: Vec<_> = run.calls.iter().filter(|c| !c.ok).collect();
        if std::env::var("SIM_DEBUG").is_ok() {
            for e in &run.events {
                match e {
                    Event::Sent(t) => eprintln!("sent {:.1}", (*t - start).as_secs_f64()),
                    Event::Throttled(t, s) => {
                        eprintln!("429 {:.1} ra {s}", (*t - start).as_secs_f64())
                    }
                }
            }
        }
        eprintln!(
            "sustained seed {seed}: {:?}, {} requests, {} 429s",
            run.elapsed,
            run.requests,
            run.throttled()
        );
        assert!(lost.is_empty(), "seed {seed}: {lost:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn under_sustained_overload_the_adaptive_gate_turns_429s_into_waiting() {
    // 400 calls over 50 tasks against 40 per 2 s (20/s), 2 retries each.
    fastrand::seed(7);
    let window = Limit::Window {
        limit: 40,
        window: 2.0,
        open_at: None,
    };
    let p = pipeline(RateLimiter::adaptive(), RetryPolicy::default());
    let (gated, start) = run(p, window, 50, 400).await;
    assert_eq!(inside_cooldowns(&gated, start), vec![]);
    assert_eq!(gated.succeeded(), 400);
    // Until the first 429 comes back nothing is paced, so each task's
    // request in flight then can meet one; after that, a few probes.
    eprintln!(
        "overload: {:?}, {} requests, {} 429s",
        gated.elapsed,
        gated.requests,
        gated.throttled()
    );
    if std::env::var("SIM_DEBUG").is_ok() {
        let mut per: std::collections::BTreeMap<u64, (usize, usize)> = Default::default();
        for e in &gated.events {
            match e {
                Event::Sent(t) => per.entry((*t - start).as_secs()).or_default().0 += 1,
                Event::Throttled(t, _) => per.entry((*t - start).as_secs()).or_default().1 += 1,
            }
        }
        eprintln!("{per:?}");
    }
    assert!(
        gated.throttled() <= 50 + 15,
        "{} of {}",
        gated.throttled(),
        gated.requests
    );

    // Without the gate each call retries alone, in waves, and some fail.
    let p = pipeline(RateLimiter::disabled(), RetryPolicy::default());
    let (off, _) = run(p, window, 50, 400).await;
    assert!(
        off.throttled() > 3 * gated.throttled(),
        "{} vs {}",
        off.throttled(),
        gated.throttled()
    );
}

/// 400 calls from 50 tasks against 40 per 2 s.
const WINDOW: Limit = Limit::Window {
    limit: 40,
    window: 2.0,
    open_at: None,
};

#[tokio::test(start_paused = true)]
async fn the_default_client_ends_within_a_few_percent_of_what_a_window_allows() {
    // The first 40 at once, then nine more windows: no client can end
    // before 18 s. Pacing evenly at the limit found ends a window later.
    let ideal = Duration::from_secs(18);
    for seed in 0..4 {
        fastrand::seed(seed);
        let p = pipeline(RateLimiter::adaptive(), RetryPolicy::default());
        let (run, start) = run(p, WINDOW, 50, 400).await;
        assert_eq!(inside_cooldowns(&run, start), vec![], "seed {seed}");
        assert_eq!(run.succeeded(), 400, "seed {seed}");
        // After the first window: a probe or two a window.
        let later = run
            .events
            .iter()
            .filter(
                |e| matches!(e, Event::Throttled(at, _) if *at - start > Duration::from_secs(2)),
            )
            .count();
        eprintln!(
            "window seed {seed}: {:?}, {} requests, {} 429s, {later} after the first window",
            run.elapsed,
            run.requests,
            run.throttled()
        );
        // Pacing evenly at the limit would end at 20 s at best; a probe
        // whose 429 outlasts the window, or a span read longer than the
        // server's, costs more than this on every window.
        assert!(
            run.elapsed <= ideal + ideal * 3 / 100,
            "seed {seed}: {:?} against {ideal:?}",
            run.elapsed
        );
        // A refused probe a window at most.
        assert!(
            later <= 9,
            "seed {seed}: {later} 429s after the first window"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn against_a_token_bucket_the_window_is_refuted_at_once_and_pacing_takes_over() {
    // 200 calls from 20 tasks; a bucket of 20 filling at 10 a second. The
    // burst's 429 shows a window of 20 per 1-2 s that the bucket does not
    // keep: the slow start meets a 429 when the window first frees.
    let bucket = Limit::Bucket {
        rate: 10.0,
        burst: 20.0,
    };
    let ideal = Duration::from_secs(18);
    for seed in 0..4 {
        fastrand::seed(seed);
        let p = pipeline(RateLimiter::adaptive(), RetryPolicy::default());
        let (run, start) = run(p, bucket, 20, 200).await;
        assert_eq!(inside_cooldowns(&run, start), vec![], "seed {seed}");
        assert_eq!(run.succeeded(), 200, "seed {seed}");
        eprintln!(
            "bucket seed {seed}: {:?}, {} requests, {} 429s",
            run.elapsed,
            run.requests,
            run.throttled()
        );
        assert!(
            run.elapsed <= ideal + ideal / 10,
            "seed {seed}: {:?} against {ideal:?}",
            run.elapsed
        );
        // The burst's 429s (one a task), then a few from the slow start
        // and the pace settling.
        assert!(
            run.throttled() <= 20 + 15,
            "seed {seed}: {} 429s",
            run.throttled()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_explicit_rate_under_the_limit_meets_no_429() {
    fastrand::seed(3);
    let window = Limit::Window {
        limit: 40,
        window: 2.0,
        open_at: None,
    };
    let p = pipeline(
        RateLimiter::fixed(crate::Rate::per_second(19).unwrap()),
        RetryPolicy::default(),
    );
    let (run, _) = run(p, window, 50, 200).await;
    assert_eq!((run.succeeded(), run.throttled()), (200, 0));
}

#[tokio::test(start_paused = true)]
async fn a_probes_429_does_not_count_against_the_calls_retries() {
    // 20 calls from 3 tasks against 2 per 2 s, default retries: each window
    // is probed, and the call the gate chose as its probe meets the 429
    // with nobody else in flight. Counted as a retry, that fails a call a
    // run (18 of 20 succeeded); it is the gate's trial, not the call's.
    for seed in 0..8 {
        fastrand::seed(seed);
        let p = pipeline(RateLimiter::adaptive(), RetryPolicy::default());
        let window = Limit::Window {
            limit: 2,
            window: 2.0,
            open_at: None,
        };
        let (run, start) = run(p, window, 3, 20).await;
        assert_eq!(inside_cooldowns(&run, start), vec![], "seed {seed}");
        assert_eq!(run.succeeded(), 20, "seed {seed}: {:?}", run.calls);
        assert!(run.throttled() > 1, "seed {seed}: no probe was refused");
    }
}
