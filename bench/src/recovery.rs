//! Recovery after 429s, each client against a fresh server: how soon the
//! calls finish once a storm of 429s ends (`storm`) and once a limit is
//! lifted (`lift`), beside the earliest a client keeping the server's word
//! could, and how long a server that refuses everything holds them
//! (`all_429`), beside the documented bound.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::goodput::BUDGET;
use crate::scenario::{Caller, Kind, LIMIT, Run, WINDOW, compared, drive, limit_per_second};
use crate::server::Server;
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
/// How long the limit holds, from the first request.
pub const LIFT_AFTER: Duration = Duration::from_secs(4);

/// Calls in the always-429 scenario, one per task: all start at once.
pub const ALL_429_CALLS: usize = 50;
/// The `Retry-After` of the always-429 server, in seconds.
pub const ALL_429_RETRY_AFTER: u64 = 1;
/// Each client's budget in the always-429 scenario: the SDK's `max_wait`,
/// the documented bound on one call's waits.
pub const ALL_429_MAX_WAIT: Duration = Duration::from_secs(10);

/// `b - a` in seconds, negative when `b` is earlier.
fn between(a: Instant, b: Instant) -> f64 {
    if b >= a {
        b.duration_since(a).as_secs_f64()
    } else {
        -a.duration_since(b).as_secs_f64()
    }
}

/// A run's figures with its time to finish beside `ideal`.
fn beside_ideal(run: &Run, ideal: Option<Instant>) -> Map<String, Value> {
    let mut m = run.figures(None);
    let ideal = ideal.map(|at| between(run.start, at));
    let elapsed = run.elapsed.map(|d| d.as_secs_f64());
    m.insert("ideal_s".into(), json!(ideal.map(round)));
    let ratio = elapsed.zip(ideal).map(|(e, i)| round(e / i));
    m.insert("vs_ideal".into(), json!(ratio));
    m
}

/// Storm then open: every request answered 429 `Retry-After: 2` for
/// [`STORM_LASTS`] from the first, then 200.
async fn storm(kind: Kind) -> Result<Value, String> {
    let server = Server::start().map_err(|e| format!("server: {e}"))?;
    let caller = Caller::new(kind, &server.url(), BUDGET, None)?;
    server.refuse_all(STORM_RETRY_AFTER, Some(STORM_LASTS));
    let run = drive(&server, &caller, STORM_TASKS, STORM_CALLS).await;
    run.progress();
    // The first 429 to reach a client: the cooldown it announced runs
    // from then, and no client keeping its word can finish sooner.
    let first = run
        .seen
        .iter()
        .filter(|s| s.status == 429)
        .map(|s| s.answered)
        .min();
    let cooldown_end = first.map(|at| at + Duration::from_secs(STORM_RETRY_AFTER));
    let mut m = beside_ideal(&run, cooldown_end);
    if let Some(end) = cooldown_end {
        let before = run.seen.iter().filter(|s| s.arrived < end).count();
        m.insert(
            "sent_inside_cooldown".into(),
            json!(inside_cooldown(before, STORM_TASKS)),
        );
    }
    Ok(Value::Object(m))
}

/// Of `before` requests that reached the server before the first 429's
/// cooldown ended, with `tasks` tasks calling, those sent inside it: all
/// but one per task, which may have been in flight when the 429 was
/// answered (the server sees arrivals, not sends).
fn inside_cooldown(before: usize, tasks: usize) -> usize {
    before - before.min(tasks)
}

/// Limit lifted: the steady limit for [`LIFT_AFTER`] from the first
/// request, then none. The calls that fit are done by the lift and the
/// rest can all go at once after it: the lift is the ideal end.
async fn lift(kind: Kind) -> Result<Value, String> {
    let server = Server::start().map_err(|e| format!("server: {e}"))?;
    let caller = Caller::new(kind, &server.url(), BUDGET, None)?;
    server.limit_for(LIMIT, WINDOW, LIFT_AFTER);
    let run = drive(&server, &caller, LIFT_TASKS, LIFT_CALLS).await;
    run.progress();
    let lifted = run.rule_since.map(|since| since + LIFT_AFTER);
    Ok(Value::Object(beside_ideal(&run, lifted)))
}

/// Always 429: one call per task, every request answered 429
/// `Retry-After: 1`, every client with [`ALL_429_MAX_WAIT`] to spend.
async fn all_429(kind: Kind) -> Result<Value, String> {
    let server = Server::start().map_err(|e| format!("server: {e}"))?;
    let caller = Caller::new(kind, &server.url(), ALL_429_MAX_WAIT, None)?;
    server.refuse_all(ALL_429_RETRY_AFTER, None);
    let run = drive(&server, &caller, ALL_429_CALLS, ALL_429_CALLS).await;
    run.progress();
    let mut m = run.figures(None);
    m.insert(
        "all_rate_limited".into(),
        json!(run.elapsed.is_some() && run.tally.rate_limited() == ALL_429_CALLS),
    );
    Ok(Value::Object(m))
}

/// The three scenarios, every client in each.
pub async fn recovery() -> Result<Value, String> {
    let (mut storms, mut lifts, mut all) = (Map::new(), Map::new(), Map::new());
    for kind in Kind::ALL {
        let name = kind.name();
        eprintln!("conduit-bench: storm then open ({name})");
        storms.insert(name.into(), storm(kind).await?);
        eprintln!("conduit-bench: limit lifted ({name})");
        lifts.insert(name.into(), lift(kind).await?);
        eprintln!("conduit-bench: always 429 ({name})");
        all.insert(name.into(), all_429(kind).await?);
    }
    let mut storm = compared(storms);
    storm["server"] = json!(format!(
        "429 with Retry-After: {STORM_RETRY_AFTER} to every request for {} s from the first, then 200",
        STORM_LASTS.as_secs_f64()
    ));
    storm["calls"] = json!(STORM_CALLS);
    storm["tasks"] = json!(STORM_TASKS);
    let mut lift = compared(lifts);
    lift["server"] = json!(format!(
        "{LIMIT} per {} s sliding window ({}/s) for {} s from the first request, then no limit",
        WINDOW.as_secs(),
        limit_per_second(),
        LIFT_AFTER.as_secs()
    ));
    lift["calls"] = json!(LIFT_CALLS);
    lift["tasks"] = json!(LIFT_TASKS);
    let mut all_429 = compared(all);
    all_429["server"] = json!(format!(
        "429 with Retry-After: {ALL_429_RETRY_AFTER} to every request"
    ));
    all_429["calls"] = json!(ALL_429_CALLS);
    all_429["tasks"] = json!(ALL_429_CALLS);
    all_429["bound_s"] = json!(ALL_429_MAX_WAIT.as_secs());
    Ok(json!({ "storm": storm, "lift": lift, "all_429": all_429 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_beyond_one_per_task_before_the_cooldown_ends_broke_it() {
        assert_eq!(inside_cooldown(20, 20), 0);
        assert_eq!(inside_cooldown(3, 20), 0);
        assert_eq!(inside_cooldown(90, 20), 70);
    }
}
