//! Many calls from many tasks through one client against the limiting
//! server, and what came of them: the machinery every limit scenario
//! ([`goodput`](crate::goodput), [`recovery`](crate::recovery),
//! [`fleet`](crate::fleet)) shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conduit_sdk::{Rate, RateLimiter, RetryPolicy};
use serde_json::{Map, Value, json};

use crate::baseline::{self, PARAMETER, TOKEN, TOOL_ID};
use crate::server::{Seen, Server};
use crate::stats::round;

/// The server's limit in every limit scenario: this many requests in any
/// [`WINDOW`] (20/s). Conduit's is 120 a minute; a window of seconds keeps
/// each run to seconds.
pub const LIMIT: usize = 40;
/// The server's sliding window.
pub const WINDOW: Duration = Duration::from_secs(2);

/// The limit in requests per second.
pub fn limit_per_second() -> f64 {
    LIMIT as f64 / WINDOW.as_secs_f64()
}

/// The explicit rate an application sets: the server's limit, as the
/// server states it (Conduit's `120/min`).
pub fn explicit_rate() -> Rate {
    let limit = u32::try_from(LIMIT).expect("a small limit");
    Rate::new(limit, WINDOW).expect("a limit above zero")
}

/// How long a run may go on before it is reported as not ended, so that a
/// client that holds calls forever cannot hang the bench.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// The clients the limit scenarios compare, by their report names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The SDK's default client (adaptive gate).
    Adaptive,
    /// The SDK with [`explicit_rate`].
    Explicit,
    /// reqwest-middleware + reqwest-retry ([`baseline::peer`]).
    Peer,
    /// reqwest waiting out each `Retry-After` ([`baseline::run_tool_naive`]).
    Naive,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 4] = [Kind::Explicit, Kind::Adaptive, Kind::Peer, Kind::Naive];

    /// The name in the report and the JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Adaptive => "adaptive",
            Kind::Explicit => "explicit",
            Kind::Peer => "peer",
            Kind::Naive => "naive",
        }
    }

    /// The kind named `name`.
    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A client under test.
#[derive(Clone)]
pub enum Caller {
    /// The SDK.
    Sdk(conduit_sdk::Client),
    /// The peer, and the server's URL.
    Peer(reqwest_middleware::ClientWithMiddleware, Arc<str>),
    /// Naive reqwest, the server's URL and its waiting budget.
    Naive(reqwest::Client, Arc<str>, Duration),
}

/// How a call ended.
enum Outcome {
    Ok,
    RateLimited,
    Other,
}

impl Caller {
    /// A `kind` client for `base`, each waiting at most `budget` a call
    /// (the SDK's `max_wait`; the peer's and naive's retries), with
    /// `store` as the SDK's rate store, if any.
    pub fn new(
        kind: Kind,
        base: &str,
        budget: Duration,
        store: Option<&str>,
    ) -> Result<Self, String> {
        let sdk = |limiter: RateLimiter| {
            let mut builder = conduit_sdk::Client::builder()
                .token(TOKEN)
                .base_url(base)
                .retry_policy(RetryPolicy::default().with_max_wait(budget))
                .rate_limiter(limiter);
            if let Some(store) = store {
                builder = builder.rate_store(store);
            }
            builder
                .build()
                .map(Caller::Sdk)
                .map_err(|e| format!("SDK client: {e}"))
        };
        match kind {
            Kind::Adaptive => sdk(RateLimiter::adaptive()),
            Kind::Explicit => sdk(RateLimiter::fixed(explicit_rate())),
            Kind::Peer => baseline::peer(budget)
                .map(|c| Caller::Peer(c, base.into()))
                .map_err(|e| format!("peer client: {e}")),
            Kind::Naive => baseline::with_timeouts()
                .map(|c| Caller::Naive(c, base.into(), budget))
                .map_err(|e| format!("naive client: {e}")),
        }
    }

    async fn call(&self) -> Outcome {
        let rate_limited = |status: Option<u16>| match status {
            Some(429) => Outcome::RateLimited,
            _ => Outcome::Other,
        };
        match self {
            Caller::Sdk(client) => {
                let call = client
                    .custom_tools()
                    .run(TOOL_ID)
                    .parameter(PARAMETER.0, PARAMETER.1);
                match call.send().await {
                    Ok(_) => Outcome::Ok,
                    Err(e) if e.is_rate_limited() => Outcome::RateLimited,
                    Err(_) => Outcome::Other,
                }
            }
            Caller::Peer(client, base) => match baseline::run_tool_peer(client, base).await {
                Ok(_) => Outcome::Ok,
                Err(e) => rate_limited(e.status().map(|s| s.as_u16())),
            },
            Caller::Naive(client, base, budget) => {
                match baseline::run_tool_naive(client, base, *budget).await {
                    Ok(_) => Outcome::Ok,
                    Err(status) => rate_limited(status),
                }
            }
        }
    }
}

/// How the calls of one run ended.
#[derive(Debug, Default)]
pub struct Tally {
    ok: AtomicUsize,
    rate_limited: AtomicUsize,
    other: AtomicUsize,
    longest_call_ns: AtomicU64,
}

impl Tally {
    /// Calls that succeeded.
    pub fn succeeded(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    /// Calls that ended as rate limited.
    pub fn rate_limited(&self) -> usize {
        self.rate_limited.load(Ordering::SeqCst)
    }

    /// Calls that ended, however.
    pub fn ended(&self) -> usize {
        self.succeeded() + self.rate_limited() + self.other.load(Ordering::SeqCst)
    }

    /// The longest call.
    pub fn longest(&self) -> Duration {
        Duration::from_nanos(self.longest_call_ns.load(Ordering::SeqCst))
    }
}

/// `calls` calls through `caller`, pulled by `tasks` tasks from one
/// counter; `None` for the time if [`SCENARIO_TIMEOUT`] came first.
pub async fn pull(caller: &Caller, tasks: usize, calls: usize) -> (Arc<Tally>, Option<Duration>) {
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (caller, next, tally) = (caller.clone(), next.clone(), tally.clone());
        set.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < calls {
                let began = Instant::now();
                let counter = match caller.call().await {
                    Outcome::Ok => &tally.ok,
                    Outcome::RateLimited => &tally.rate_limited,
                    Outcome::Other => &tally.other,
                };
                let took = u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX);
                tally.longest_call_ns.fetch_max(took, Ordering::SeqCst);
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let all_ended = async { while set.join_next().await.is_some() {} };
    let elapsed = tokio::time::timeout(SCENARIO_TIMEOUT, all_ended)
        .await
        .ok()
        .map(|()| start.elapsed());
    set.abort_all();
    (tally, elapsed)
}

/// One run against the bench's server.
pub struct Run {
    /// When the first call started.
    pub start: Instant,
    /// Until every call ended; `None` if [`SCENARIO_TIMEOUT`] came first.
    pub elapsed: Option<Duration>,
    /// How the calls ended.
    pub tally: Arc<Tally>,
    /// The requests the server answered, by arrival.
    pub seen: Vec<Seen>,
    /// When the server's rule started counting (its first request).
    pub rule_since: Option<Instant>,
    /// The calls made.
    pub calls: usize,
}

/// [`pull`] against `server`, whose rule is already set, recording what
/// reached it.
pub async fn drive(server: &Server, caller: &Caller, tasks: usize, calls: usize) -> Run {
    server.set_recording(true);
    let start = Instant::now();
    let (tally, elapsed) = pull(caller, tasks, calls).await;
    let (answered, _) = server.counts();
    let mut seen = server
        .recorded_at_least(usize::try_from(answered).unwrap_or(usize::MAX))
        .await;
    server.set_recording(false);
    seen.sort_by_key(|s| s.arrived);
    Run {
        start,
        elapsed,
        tally,
        seen,
        rule_since: server.rule_since(),
        calls,
    }
}

/// `part` of `whole`, 0 when there is no whole.
pub fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round(part as f64 / whole as f64)
    }
}

impl Run {
    /// Requests answered 429.
    pub fn throttled(&self) -> usize {
        self.seen.iter().filter(|s| s.status == 429).count()
    }

    /// The share of 429s among the requests that arrived a [`WINDOW`] or
    /// more after the rule's first request: what pacing let through once
    /// the server's first window, which no client can know in advance, was
    /// over.
    pub fn throttled_share_after_first_window(&self) -> f64 {
        let Some(since) = self.rule_since else {
            return 0.0;
        };
        let later: Vec<&Seen> = self
            .seen
            .iter()
            .filter(|s| s.arrived >= since + WINDOW)
            .collect();
        share(
            later.iter().filter(|s| s.status == 429).count(),
            later.len(),
        )
    }

    /// One line of progress: how the calls ended.
    pub fn progress(&self) {
        let elapsed = self
            .elapsed
            .map_or("not ended".into(), |d| format!("{:.2} s", d.as_secs_f64()));
        eprintln!(
            "  {} of {} calls succeeded, {} requests ({} 429), {elapsed}",
            self.tally.succeeded(),
            self.calls,
            self.seen.len(),
            self.throttled()
        );
    }

    /// What every scenario reports of a run: calls succeeded, requests
    /// sent, 429 share, time to finish, calls succeeded per second over
    /// `limit` (requests per second), if the server had one.
    pub fn figures(&self, limit: Option<f64>) -> Map<String, Value> {
        let t = &self.tally;
        let elapsed = self.elapsed.map(|d| d.as_secs_f64());
        let mut m = Map::new();
        m.insert("calls".into(), json!(self.calls));
        m.insert("ended".into(), json!(self.elapsed.is_some()));
        m.insert("calls_ended".into(), json!(t.ended()));
        m.insert("succeeded".into(), json!(t.succeeded()));
        m.insert("rate_limited".into(), json!(t.rate_limited()));
        m.insert(
            "failed_share".into(),
            json!(share(self.calls - t.succeeded(), self.calls)),
        );
        m.insert("requests".into(), json!(self.seen.len()));
        m.insert("throttled".into(), json!(self.throttled()));
        m.insert(
            "throttled_share".into(),
            json!(share(self.throttled(), self.seen.len())),
        );
        m.insert("elapsed_s".into(), json!(elapsed.map(round)));
        m.insert(
            "longest_call_s".into(),
            json!(round(t.longest().as_secs_f64())),
        );
        if let (Some(limit), Some(elapsed)) = (limit, elapsed) {
            let goodput = t.succeeded() as f64 / elapsed / limit;
            m.insert("goodput_vs_limit".into(), json!(round(goodput)));
        }
        m
    }
}

/// The SDK over `other` in one scenario's figures: calls succeeded
/// (above 1 is ahead), requests sent and time to finish (below 1 is
/// ahead); `null` where either side is missing.
pub fn ratios(sdk: &Value, other: &Value) -> Value {
    let ratio = |key: &str| {
        let (a, b) = (sdk[key].as_f64(), other[key].as_f64());
        match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => json!(round(a / b)),
            // Neither side got any: level.
            (Some(0.0), Some(_)) => json!(1.0),
            _ => Value::Null,
        }
    };
    json!({
        "succeeded": ratio("succeeded"),
        "requests": ratio("requests"),
        "time": ratio("elapsed_s"),
    })
}

/// The runs of `kinds` in one scenario, keyed by name, with the SDK's
/// default client over the peer and naive reqwest as ratios.
pub fn compared(runs: Map<String, Value>) -> Value {
    let sdk = runs.get(Kind::Adaptive.name()).cloned().unwrap_or_default();
    let vs = |k: Kind| runs.get(k.name()).map_or(Value::Null, |o| ratios(&sdk, o));
    json!({ "vs_peer": vs(Kind::Peer), "vs_naive": vs(Kind::Naive), "runs": runs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(at: Instant, status: u16) -> Seen {
        Seen {
            arrived: at,
            answered: at,
            status,
            method: "POST".into(),
            path: "/".into(),
            authorization: None,
            content_type: None,
            body: Vec::new(),
        }
    }

    #[test]
    fn only_requests_after_the_first_window_count_for_the_later_share() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let run = Run {
            start: t0,
            elapsed: Some(Duration::from_secs(5)),
            tally: Arc::default(),
            seen: vec![
                seen(at(0), 200),
                seen(at(10), 429),
                seen(at(1_999), 429),
                seen(at(2_000), 429),
                seen(at(2_500), 200),
                seen(at(3_000), 200),
                seen(at(4_000), 200),
            ],
            rule_since: Some(t0),
            calls: 4,
        };
        assert_eq!(run.throttled(), 3);
        // One 429 of the four requests from 2 s on.
        assert_eq!(run.throttled_share_after_first_window(), 0.25);
        let figures = run.figures(Some(20.0));
        assert_eq!(figures["requests"], 7);
        assert_eq!(figures["throttled_share"], 0.429);
        assert_eq!(figures["failed_share"], 1.0);
        assert_eq!(figures["goodput_vs_limit"], 0.0);
    }

    #[test]
    fn ratios_put_the_sdk_over_the_other_client() {
        let sdk = json!({ "succeeded": 200, "requests": 210, "elapsed_s": 10.0 });
        let peer = json!({ "succeeded": 160, "requests": 420, "elapsed_s": 20.0 });
        assert_eq!(
            ratios(&sdk, &peer),
            json!({ "succeeded": 1.25, "requests": 0.5, "time": 0.5 })
        );
        let cut_off = json!({ "succeeded": 0, "requests": 10, "elapsed_s": null });
        assert_eq!(ratios(&sdk, &cut_off)["time"], Value::Null);
        assert_eq!(ratios(&sdk, &cut_off)["succeeded"], Value::Null);
        let none = json!({ "succeeded": 0, "requests": 10, "elapsed_s": 9.0 });
        assert_eq!(ratios(&none, &none)["succeeded"], 1.0);
    }

    #[test]
    fn the_explicit_rate_is_the_limit() {
        let rate = explicit_rate();
        assert_eq!((rate.count() as usize, rate.per()), (LIMIT, WINDOW));
        for kind in Kind::ALL {
            assert_eq!(Kind::named(kind.name()), Some(kind));
        }
    }
}
