//! Recovery after 429s, each scenario against a fresh server: how soon
//! calls finish once a storm of 429s ends (`storm`) and once a rate limit
//! is lifted (`lift`), beside the earliest a client keeping the server's
//! word could, and how long a server that refuses everything can hold the
//! calls (`all_429`), beside the retry policy's bound. The SDK runs with
//! its default client (adaptive gate, default retry policy, `max_wait`
//! lowered for `all_429`); the peer (reqwest-middleware + reqwest-retry)
//! runs the first two for comparison.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conduit_sdk::RetryPolicy;
use serde_json::{Value, json};

use crate::baseline;
use crate::measure::{PARAMETER, TOKEN, TOOL_ID};
use crate::server::{Seen, Server};
use crate::stats::round;

/// Calls in the storm scenario.
pub const STORM_CALLS: usize = 60;
/// Tasks sharing the client in the storm scenario.
pub const STORM_TASKS: usize = 20;
/// How long the storm lasts, from the first request.
pub const STORM_LASTS: Duration = Duration::from_millis(500);
/// The `Retry-After` of the storm's 429s, in seconds.
pub const STORM_RETRY_AFTER: u64 = 2;

/// Calls in the lifted-limit scenario.
pub const LIFT_CALLS: usize = 200;
/// Tasks sharing the client in the lifted-limit scenario.
pub const LIFT_TASKS: usize = 20;
/// The limit before it is lifted: this many requests in any [`LIFT_WINDOW`].
pub const LIFT_LIMIT: usize = 10;
/// The sliding window of the limit before it is lifted.
pub const LIFT_WINDOW: Duration = Duration::from_secs(1);
/// How long the limit holds, from the first request.
pub const LIFT_AFTER: Duration = Duration::from_secs(3);

/// Calls in the always-429 scenario.
pub const ALL_429_CALLS: usize = 200;
/// Tasks sharing the client in the always-429 scenario.
pub const ALL_429_TASKS: usize = 50;
/// The `Retry-After` of the always-429 server, in seconds.
pub const ALL_429_RETRY_AFTER: u64 = 1;
/// The client's `max_wait` in the always-429 scenario: the documented
/// bound on how long one call waits in all.
pub const ALL_429_MAX_WAIT: Duration = Duration::from_secs(10);

/// How long a scenario may run before it is reported as not ended, so
/// that a gate that holds calls forever cannot hang the bench.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// A client under test.
#[derive(Clone)]
enum Caller {
    Sdk(conduit_sdk::Client),
    Peer(reqwest_middleware::ClientWithMiddleware, Arc<str>),
}

/// How a call ended.
enum Outcome {
    Ok,
    RateLimited,
    Other,
}

impl Caller {
    fn sdk(base: &str, policy: RetryPolicy) -> Result<Self, String> {
        conduit_sdk::Client::builder()
            .token(TOKEN)
            .base_url(base)
            .retry_policy(policy)
            .build()
            .map(Self::Sdk)
            .map_err(|e| format!("SDK client: {e}"))
    }

    fn peer(base: &str) -> Result<Self, String> {
        let client = baseline::peer().map_err(|e| format!("peer client: {e}"))?;
        Ok(Self::Peer(client, base.into()))
    }

    async fn call(&self) -> Outcome {
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
            Caller::Peer(client, base) => {
                let (key, value) = PARAMETER;
                match baseline::run_tool_peer(client, base, TOKEN, TOOL_ID, key, value).await {
                    Ok(_) => Outcome::Ok,
                    Err(e) if e.status().is_some_and(|s| s.as_u16() == 429) => Outcome::RateLimited,
                    Err(_) => Outcome::Other,
                }
            }
        }
    }
}

/// What the calls of one run did.
#[derive(Debug, Default)]
struct Tally {
    ok: AtomicUsize,
    rate_limited: AtomicUsize,
    other: AtomicUsize,
    longest_call_ns: AtomicU64,
}

impl Tally {
    fn ended(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
            + self.rate_limited.load(Ordering::SeqCst)
            + self.other.load(Ordering::SeqCst)
    }
}

/// One run of a scenario.
struct Run {
    start: Instant,
    /// Until every call ended; `None` if [`SCENARIO_TIMEOUT`] came first.
    elapsed: Option<Duration>,
    tally: Arc<Tally>,
    /// The requests the server answered, oldest first.
    seen: Vec<Seen>,
    /// When the server's rule started counting (its first request).
    rule_since: Option<Instant>,
}

impl Run {
    fn throttled(&self) -> usize {
        self.seen.iter().filter(|s| s.status == 429).count()
    }

    /// The figures every scenario reports.
    fn common(&self, calls: usize) -> serde_json::Map<String, Value> {
        let t = &self.tally;
        let longest = Duration::from_nanos(t.longest_call_ns.load(Ordering::SeqCst));
        let mut m = serde_json::Map::new();
        m.insert("ended".into(), json!(self.elapsed.is_some()));
        m.insert("calls".into(), json!(calls));
        m.insert("calls_ended".into(), json!(t.ended()));
        m.insert("succeeded".into(), json!(t.ok.load(Ordering::SeqCst)));
        let limited = t.rate_limited.load(Ordering::SeqCst);
        m.insert("rate_limited".into(), json!(limited));
        m.insert(
            "failed_otherwise".into(),
            json!(t.other.load(Ordering::SeqCst)),
        );
        m.insert("requests".into(), json!(self.seen.len()));
        m.insert("throttled".into(), json!(self.throttled()));
        m.insert("longest_call_s".into(), json!(secs(longest)));
        if self.elapsed.is_none() {
            m.insert("gave_up_after_s".into(), json!(secs(SCENARIO_TIMEOUT)));
        }
        m
    }
}

fn secs(d: Duration) -> f64 {
    round(d.as_secs_f64())
}

/// `b - a` in seconds, negative when `b` is earlier.
fn between(a: Instant, b: Instant) -> f64 {
    if b >= a {
        b.duration_since(a).as_secs_f64()
    } else {
        -a.duration_since(b).as_secs_f64()
    }
}

/// `calls` calls through `caller`, pulled by `tasks` tasks from one
/// counter, against `server` (whose rule is already set), cut off after
/// [`SCENARIO_TIMEOUT`].
async fn drive(server: &Server, caller: &Caller, tasks: usize, calls: usize) -> Run {
    server.set_recording(true);
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
    let (answered, _) = server.counts();
    let seen = server
        .recorded_at_least(usize::try_from(answered).unwrap_or(usize::MAX))
        .await;
    server.set_recording(false);
    let mut seen = seen;
    seen.sort_by_key(|s| s.arrived);
    Run {
        start,
        elapsed,
        tally,
        seen,
        rule_since: server.rule_since(),
    }
}

fn caller(name: &str, base: &str) -> Result<Caller, String> {
    match name {
        "peer" => Caller::peer(base),
        _ => Caller::sdk(base, RetryPolicy::default()),
    }
}

/// Storm then open: [`STORM_CALLS`] calls from [`STORM_TASKS`] tasks; the
/// server answers 429 with `Retry-After: 2` to everything for
/// [`STORM_LASTS`] from its first request, then 200.
async fn storm(name: &str) -> Result<Value, String> {
    let server = Server::start().map_err(|e| format!("server: {e}"))?;
    let caller = caller(name, &server.url())?;
    server.refuse_all(STORM_RETRY_AFTER, Some(STORM_LASTS));
    let run = drive(&server, &caller, STORM_TASKS, STORM_CALLS).await;
    let mut m = run.common(STORM_CALLS);
    let cooldown = Duration::from_secs(STORM_RETRY_AFTER);
    // The first 429 to reach a client: the earliest it could have learnt
    // of the cooldown, which runs from then.
    let first = run
        .seen
        .iter()
        .filter(|s| s.status == 429)
        .map(|s| s.answered)
        .min();
    let ideal = first.map(|at| between(run.start, at + cooldown));
    let recovery = run.elapsed.map(|d| d.as_secs_f64());
    m.insert("recovery_s".into(), json!(recovery.map(round)));
    m.insert("ideal_s".into(), json!(ideal.map(round)));
    let ratio = recovery.zip(ideal).map(|(r, i)| round(r / i));
    m.insert("vs_ideal".into(), json!(ratio));
    if let Some(first) = first {
        let until = first + cooldown;
        let before = run.seen.iter().filter(|s| s.arrived < until).count();
        let (in_flight, inside) = inside_cooldown(before, STORM_TASKS);
        m.insert(
            "first_429_answered_s".into(),
            json!(round(between(run.start, first))),
        );
        m.insert("requests_before_cooldown_end".into(), json!(before));
        m.insert("in_flight_at_first_429".into(), json!(in_flight));
        m.insert("sent_inside_cooldown".into(), json!(inside));
    }
    Ok(Value::Object(m))
}

/// Of `before` requests that reached the server before the first 429's
/// answer + its `Retry-After`, with `tasks` tasks calling: (those in flight
/// when that 429 was answered, those sent inside the cooldown it
/// announced). The server sees when a request arrives, not when it was
/// sent, so "in flight" is counted as at most one request per task: no
/// task had an answer before the first 429, and every request beyond them
/// in that time followed a 429 announcing a cooldown at least as long.
fn inside_cooldown(before: usize, tasks: usize) -> (usize, usize) {
    let in_flight = before.min(tasks);
    (in_flight, before - in_flight)
}

/// Limit lifted: [`LIFT_CALLS`] calls from [`LIFT_TASKS`] tasks; the
/// server allows [`LIFT_LIMIT`] requests per [`LIFT_WINDOW`] for
/// [`LIFT_AFTER`] from its first request, then accepts everything.
async fn lift(name: &str) -> Result<Value, String> {
    let server = Server::start().map_err(|e| format!("server: {e}"))?;
    let caller = caller(name, &server.url())?;
    server.limit_for(LIFT_LIMIT, LIFT_WINDOW, LIFT_AFTER);
    let run = drive(&server, &caller, LIFT_TASKS, LIFT_CALLS).await;
    let mut m = run.common(LIFT_CALLS);
    // The calls that fit before the lift are done by then, and the rest
    // can all go at once after it: the lift is the ideal end.
    let lifted = run.rule_since.map(|since| since + LIFT_AFTER);
    let ideal = lifted.map(|at| between(run.start, at));
    let recovery = run.elapsed.map(|d| d.as_secs_f64());
    m.insert("recovery_s".into(), json!(recovery.map(round)));
    m.insert("ideal_s".into(), json!(ideal.map(round)));
    let ratio = recovery.zip(ideal).map(|(r, i)| round(r / i));
    m.insert("vs_ideal".into(), json!(ratio));
    if let Some(lifted) = lifted {
        let before = run.seen.iter().filter(|s| s.arrived < lifted);
        let accepted = before.clone().filter(|s| s.status != 429).count();
        m.insert("requests_before_lift".into(), json!(before.count()));
        m.insert("accepted_before_lift".into(), json!(accepted));
        m.insert(
            "requests_per_second_after_lift".into(),
            json!(per_second_after(&run.seen, lifted)),
        );
    }
    Ok(Value::Object(m))
}

/// The requests of `seen` that arrived at or after `from`, counted in
/// 1 s buckets from it, up to the last one.
fn per_second_after(seen: &[Seen], from: Instant) -> Vec<usize> {
    let mut buckets = Vec::new();
    for s in seen.iter().filter(|s| s.arrived >= from) {
        let i = usize::try_from(s.arrived.duration_since(from).as_secs()).unwrap_or(usize::MAX);
        if i >= buckets.len() {
            // A request past any bound the bench sets is not counted.
            if i > 3_600 {
                continue;
            }
            buckets.resize(i + 1, 0);
        }
        buckets[i] += 1;
    }
    buckets
}

/// Always 429: [`ALL_429_CALLS`] calls from [`ALL_429_TASKS`] tasks through
/// the SDK with `max_wait` [`ALL_429_MAX_WAIT`], against a server that
/// answers 429 with `Retry-After: 1` to everything.
async fn all_429() -> Result<Value, String> {
    let server = Server::start().map_err(|e| format!("server: {e}"))?;
    let policy = RetryPolicy::default().with_max_wait(ALL_429_MAX_WAIT);
    let caller = Caller::sdk(&server.url(), policy)?;
    server.refuse_all(ALL_429_RETRY_AFTER, None);
    let run = drive(&server, &caller, ALL_429_TASKS, ALL_429_CALLS).await;
    let mut m = run.common(ALL_429_CALLS);
    m.insert(
        "bounded_s".into(),
        json!(run.elapsed.map(|d| round(d.as_secs_f64()))),
    );
    m.insert("bound_s".into(), json!(secs(ALL_429_MAX_WAIT)));
    let limited = run.tally.rate_limited.load(Ordering::SeqCst);
    m.insert(
        "all_rate_limited".into(),
        json!(run.elapsed.is_some() && limited == ALL_429_CALLS),
    );
    Ok(Value::Object(m))
}

/// The three scenarios; the SDK's figures also at the top under the keys
/// the report shows (`storm_recovery_s`, …).
pub async fn recovery() -> Result<Value, String> {
    let mut storms = serde_json::Map::new();
    let mut lifts = serde_json::Map::new();
    for name in ["sdk", "peer"] {
        eprintln!("conduit-bench: recovery: storm then open ({name})");
        storms.insert(name.into(), storm(name).await?);
        eprintln!("conduit-bench: recovery: limit lifted ({name})");
        lifts.insert(name.into(), lift(name).await?);
    }
    eprintln!("conduit-bench: recovery: always 429 (sdk)");
    let all = all_429().await?;
    let sdk = |runs: &serde_json::Map<String, Value>, key: &str| {
        runs.get("sdk").map_or(Value::Null, |r| r[key].clone())
    };
    Ok(json!({
        "storm_recovery_s": sdk(&storms, "recovery_s"),
        "storm_ideal_s": sdk(&storms, "ideal_s"),
        "storm_vs_ideal": sdk(&storms, "vs_ideal"),
        "lift_recovery_s": sdk(&lifts, "recovery_s"),
        "lift_ideal_s": sdk(&lifts, "ideal_s"),
        "lift_vs_ideal": sdk(&lifts, "vs_ideal"),
        "all_429_bounded_s": all["bounded_s"],
        "all_429_bound_s": all["bound_s"],
        "timeout_s": secs(SCENARIO_TIMEOUT),
        "storm": {
            "server": format!("429 with Retry-After: {STORM_RETRY_AFTER} to every request for {} s from the first, then 200", STORM_LASTS.as_secs_f64()),
            "calls": STORM_CALLS,
            "tasks": STORM_TASKS,
            "runs": storms,
        },
        "lift": {
            "server": format!("{LIFT_LIMIT} per {} s sliding window, Retry-After in whole seconds, for {} s from the first request, then 200", LIFT_WINDOW.as_secs(), LIFT_AFTER.as_secs()),
            "calls": LIFT_CALLS,
            "tasks": LIFT_TASKS,
            "runs": lifts,
        },
        "all_429": {
            "server": format!("429 with Retry-After: {ALL_429_RETRY_AFTER} to every request"),
            "calls": ALL_429_CALLS,
            "tasks": ALL_429_TASKS,
            "max_wait_s": secs(ALL_429_MAX_WAIT),
            "sdk": all,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_after_a_moment_are_counted_by_the_second() {
        let t0 = Instant::now();
        let seen = |ms: u64| Seen {
            arrived: t0 + Duration::from_millis(ms),
            answered: t0 + Duration::from_millis(ms),
            status: 200,
            method: "POST".into(),
            path: "/".into(),
            authorization: None,
            content_type: None,
            body: Vec::new(),
        };
        let all: Vec<Seen> = [500, 1_000, 1_999, 2_000, 4_100].map(seen).into();
        let from = t0 + Duration::from_secs(1);
        assert_eq!(per_second_after(&all, from), [2, 1, 0, 1]);
        assert!(per_second_after(&all[..1], from).is_empty());
    }

    #[test]
    fn requests_beyond_one_per_task_before_the_cooldown_ends_broke_it() {
        assert_eq!(inside_cooldown(20, 20), (20, 0));
        assert_eq!(inside_cooldown(3, 20), (3, 0));
        assert_eq!(inside_cooldown(90, 20), (20, 70));
    }
}
