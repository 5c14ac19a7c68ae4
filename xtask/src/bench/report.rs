//! The report: the results table, `BENCHMARKS.md`'s text and the `--json`
//! headline, rendered from what `conduit-bench` and the cold builds measured.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::cold_build::{COLD_BUILD_ROUNDS, ColdBuild, median};
use super::machine::Machine;

/// The scenarios the SDK is compared in, as (headline name, where in the
/// measurement its runs and ratios are).
const COMPARED: [(&str, &[&str]); 7] = [
    ("steady", &["steady"]),
    ("bucket", &["bucket"]),
    ("storm", &["recovery", "storm"]),
    ("lift", &["recovery", "lift"]),
    ("all_429", &["recovery", "all_429"]),
    ("fleet_2", &["fleet", "processes", "2"]),
    ("fleet_4", &["fleet", "processes", "4"]),
];

fn at<'a>(m: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(m, |v, key| &v[*key])
}

/// The headline numbers, exactly the keys `--json` promises.
pub(super) fn headline(m: &Value, cold: Option<&ColdBuild>) -> Value {
    let steady = |client: &str, key: &str| m["steady"]["runs"][client][key].clone();
    let recovery =
        |scenario: &str, key: &str| m["recovery"][scenario]["runs"]["adaptive"][key].clone();
    let fleet = |name: &str| m["fleet"]["processes"]["4"]["runs"][name]["throttled_share"].clone();
    let vs = |other: &str| -> Value {
        let ratios: Map<String, Value> = COMPARED
            .iter()
            .map(|(name, path)| ((*name).to_owned(), at(m, path)[other].clone()))
            .collect();
        Value::Object(ratios)
    };
    let o = &m["overhead"];
    json!({
        "goodput_vs_limit_explicit": steady("explicit", "goodput_vs_limit"),
        "goodput_vs_limit_adaptive": steady("adaptive", "goodput_vs_limit"),
        "goodput_vs_limit_peer": steady("peer", "goodput_vs_limit"),
        "goodput_vs_limit_naive": steady("naive", "goodput_vs_limit"),
        "throttled_share_explicit": steady("explicit", "throttled_share"),
        "throttled_share_adaptive": steady("adaptive", "throttled_share_after_first_window"),
        "failed_share_peer": steady("peer", "failed_share"),
        "failed_share_naive": steady("naive", "failed_share"),
        "storm_recovery_s": recovery("storm", "elapsed_s"),
        "storm_ideal_s": recovery("storm", "ideal_s"),
        "lift_recovery_s": recovery("lift", "elapsed_s"),
        "lift_ideal_s": recovery("lift", "ideal_s"),
        "all_429_bounded_s": recovery("all_429", "elapsed_s"),
        "all_429_bound_s": m["recovery"]["all_429"]["bound_s"],
        "fleet_throttled_share": fleet("sdk_redis"),
        "fleet_throttled_share_without_redis": fleet("sdk_alone"),
        "sdk_vs_peer": vs("vs_peer"),
        "sdk_vs_naive": vs("vs_naive"),
        "latency_vs_floor": o["latency_vs_floor"],
        "cpu_vs_floor": o["cpu_vs_floor"],
        "latency_vs_peer": o["latency_vs_peer"],
        "cpu_vs_peer": o["cpu_vs_peer"],
        "allocs_per_call": o["allocs_per_call"],
        "codegen_ms_spec": m["codegen"]["spec"]["median_ms"],
        "codegen_ms_500": m["codegen"]["synthetic_500"]["median_ms"],
        "cold_build_ratio": cold.map_or(Value::Null, |c| json!(round3(c.ratio()))),
        "rss_growth_kb": m["memory"]["growth_kb"],
        "rss_per_workspace_bytes": m["memory"]["per_workspace_bytes"],
    })
}

/// How long the command took, in seconds.
pub(super) struct Timing {
    /// Building conduit-bench.
    pub(super) build_s: f64,
    /// Running it.
    pub(super) run_s: f64,
    /// The whole command.
    pub(super) total_s: f64,
}

/// `x` to three decimals, as the report gives ratios.
pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// `x` with `decimals`, thousands separated by commas.
fn fmt(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let text = format!("{:.*}", decimals, x.abs());
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), ""), |(i, f)| (i, f));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if x < 0.0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "n/a",
    }
}

/// Whether `x` meets `goal`, if it was measured.
fn met(x: &Value, goal: impl Fn(f64) -> bool) -> Option<bool> {
    let x = num(x);
    x.is_finite().then(|| goal(x))
}

/// Whether the SDK was ahead in one scenario's ratios: no fewer calls
/// succeeded, no more requests, no more time.
fn ahead(r: &Value) -> Option<bool> {
    let (s, q, t) = (num(&r["succeeded"]), num(&r["requests"]), num(&r["time"]));
    (s.is_finite() && q.is_finite() && t.is_finite()).then_some(s >= 1.0 && q <= 1.0 && t <= 1.0)
}

/// One results row.
fn row(t: &mut String, key: &str, result: String, goal: &str, met: Option<bool>, detail: &str) {
    let _ = writeln!(
        t,
        "| `{key}` | {result} | {goal} | {} | {detail} |",
        verdict(met)
    );
}

/// The results table (also printed without `--json`): every headline key,
/// its goal and whether it was met.
pub(super) fn table(m: &Value, cold: Option<&Result<ColdBuild, String>>, h: &Value) -> String {
    let mut t = String::new();
    t.push_str("| key | result | goal | met | what |\n");
    t.push_str("| --- | --- | --- | --- | --- |\n");
    let r3 = |key: &str| fmt(num(&h[key]), 3);
    for (key, goal, test, what) in [
        (
            "goodput_vs_limit_explicit",
            "≥ 0.97",
            Some(0.97),
            "SDK, explicit rate",
        ),
        (
            "goodput_vs_limit_adaptive",
            "≥ 0.90",
            Some(0.90),
            "SDK, adaptive (default)",
        ),
        (
            "goodput_vs_limit_peer",
            "(beside)",
            None,
            "reqwest-middleware + reqwest-retry",
        ),
        (
            "goodput_vs_limit_naive",
            "(beside)",
            None,
            "reqwest, waiting out Retry-After",
        ),
    ] {
        let ok = test.and_then(|g| met(&h[key], |x| x >= g));
        row(
            &mut t,
            key,
            r3(key),
            goal,
            ok,
            &format!("{what}: calls succeeded per second ÷ the server's limit, steady scenario"),
        );
    }
    for (key, goal, test, what) in [
        (
            "throttled_share_explicit",
            "≤ 0.01",
            Some(0.01),
            "429s ÷ requests, SDK with the explicit rate",
        ),
        (
            "throttled_share_adaptive",
            "≤ 0.05",
            Some(0.05),
            "429s ÷ requests arriving after the server's first window, SDK adaptive",
        ),
        (
            "failed_share_peer",
            "(beside)",
            None,
            "calls not succeeded ÷ calls, the peer",
        ),
        (
            "failed_share_naive",
            "(beside)",
            None,
            "calls not succeeded ÷ calls, naive reqwest",
        ),
    ] {
        let ok = test.and_then(|g| met(&h[key], |x| x <= g));
        row(&mut t, key, r3(key), goal, ok, what);
    }
    for (key, ideal, what) in [
        ("storm_recovery_s", "storm_ideal_s", "storm then open"),
        ("lift_recovery_s", "lift_ideal_s", "limit lifted"),
    ] {
        let i = num(&h[ideal]);
        let ok = met(&h[key], |x| x <= 2.0 * i);
        let goal = format!("≤ 2 × `{ideal}` {} s", fmt(i, 2));
        row(
            &mut t,
            key,
            format!("{} s", fmt(num(&h[key]), 2)),
            &goal,
            ok,
            &format!("{what}: until every call of the SDK's default client ended"),
        );
    }
    let bound = num(&h["all_429_bound_s"]);
    row(
        &mut t,
        "all_429_bounded_s",
        format!("{} s", fmt(num(&h["all_429_bounded_s"]), 2)),
        &format!("≤ `all_429_bound_s` {} s + 1 s", fmt(bound, 0)),
        met(&h["all_429_bounded_s"], |x| x <= bound + 1.0),
        "always 429: until every call ended (`max_wait` bounds each call's waits; its attempts take milliseconds)",
    );
    row(
        &mut t,
        "fleet_throttled_share",
        r3("fleet_throttled_share"),
        "≤ 0.03",
        met(&h["fleet_throttled_share"], |x| x <= 0.03),
        "four processes, explicit rate, sharing Redis: 429s ÷ requests",
    );
    row(
        &mut t,
        "fleet_throttled_share_without_redis",
        r3("fleet_throttled_share_without_redis"),
        "(beside)",
        None,
        "the same four, each alone",
    );
    for (key, other) in [
        ("sdk_vs_peer", "the peer"),
        ("sdk_vs_naive", "naive reqwest"),
    ] {
        for (scenario, _) in COMPARED {
            let r = &h[key][scenario];
            let result = format!(
                "{} / {} / {}",
                fmt(num(&r["succeeded"]), 2),
                fmt(num(&r["requests"]), 2),
                fmt(num(&r["time"]), 2)
            );
            let what =
                format!("{scenario}: the SDK over {other}, calls succeeded / requests / time");
            row(
                &mut t,
                &format!("{key}.{scenario}"),
                result,
                "≥ 1 / ≤ 1 / ≤ 1",
                ahead(r),
                &what,
            );
        }
    }
    let o = &m["overhead"];
    for (key, summary, goal) in [
        ("latency_vs_floor", "latency", Some(1.10)),
        ("cpu_vs_floor", "cpu", Some(1.10)),
        ("latency_vs_peer", "latency", None),
        ("cpu_vs_peer", "cpu", None),
    ] {
        let other = if key.ends_with("floor") {
            "floor"
        } else {
            "peer"
        };
        let s = &o[summary];
        let unit = if summary == "latency" {
            "sequential latency"
        } else {
            "client CPU per request at 64 in flight"
        };
        let what = format!(
            "{unit}, medians: SDK {} µs, {other} {} µs",
            fmt(num(&s["sdk_us"]["median"]), 1),
            fmt(num(&s[format!("{other}_us")]["median"]), 1)
        );
        let ok = goal.and_then(|g| met(&h[key], |x| x <= g));
        let goal = goal.map_or("(beside)".to_owned(), |g| format!("≤ {g:.2}"));
        row(&mut t, key, r3(key), &goal, ok, &what);
    }
    let allocs = &h["allocs_per_call"];
    row(
        &mut t,
        "allocs_per_call",
        format!("SDK {}", fmt(num(&allocs["sdk"]), 1)),
        "(reported)",
        None,
        &format!(
            "peer {}, floor {}",
            fmt(num(&allocs["peer"]), 1),
            fmt(num(&allocs["floor"]), 1)
        ),
    );
    let spec = &m["codegen"]["spec"];
    row(
        &mut t,
        "codegen_ms_spec",
        fmt(num(&h["codegen_ms_spec"]), 0),
        "(reported)",
        None,
        &format!(
            "the vendored spec, {} operations, {} generated lines",
            spec["operations"],
            fmt(num(&spec["generated_lines"]), 0)
        ),
    );
    row(
        &mut t,
        "codegen_ms_500",
        fmt(num(&h["codegen_ms_500"]), 0),
        "< 10,000",
        met(&h["codegen_ms_500"], |x| x < 10_000.0),
        &format!(
            "500 synthetic operations, {} generated lines",
            fmt(num(&m["codegen"]["synthetic_500"]["generated_lines"]), 0)
        ),
    );
    match cold {
        None => row(
            &mut t,
            "cold_build_ratio",
            "null".into(),
            "≤ 1.2",
            None,
            "skipped with `--quick`",
        ),
        Some(Err(e)) => {
            let first = e.lines().next().unwrap_or_default();
            row(
                &mut t,
                "cold_build_ratio",
                "null".into(),
                "≤ 1.2",
                None,
                &format!("failed: {first}"),
            );
        }
        Some(Ok(c)) => {
            let ratio = c.ratio();
            let what = format!(
                "debug build of a fresh app: SDK {} s, reqwest {} s (medians of {COLD_BUILD_ROUNDS})",
                fmt(median(&c.sdk_s), 1),
                fmt(median(&c.reqwest_s), 1)
            );
            row(
                &mut t,
                "cold_build_ratio",
                fmt(ratio, 3),
                "≤ 1.2",
                Some(ratio <= 1.2),
                &what,
            );
        }
    }
    let mem = &m["memory"];
    row(
        &mut t,
        "rss_growth_kb",
        fmt(num(&h["rss_growth_kb"]), 0),
        "< 1,024",
        met(&h["rss_growth_kb"], |x| x < 1024.0),
        &format!(
            "VmRSS growth over {} sequential calls after {} warm ones",
            fmt(num(&mem["calls"]), 0),
            fmt(num(&mem["warm_calls"]), 0)
        ),
    );
    row(
        &mut t,
        "rss_per_workspace_bytes",
        fmt(num(&h["rss_per_workspace_bytes"]), 0),
        "(reported)",
        None,
        &format!(
            "VmRSS growth ÷ {} distinct workspaces called once each",
            fmt(num(&mem["workspaces"]), 0)
        ),
    );
    t
}

/// "12.34 s", or why there is no time: the run was cut off.
fn ended_in(run: &Value) -> String {
    match run["ended"].as_bool() {
        Some(true) => format!("{} s", fmt(num(&run["elapsed_s"]), 2)),
        Some(false) => format!(
            "not ended ({} of {} calls)",
            run["calls_ended"], run["calls"]
        ),
        None => "n/a".into(),
    }
}

/// Every client's run in every scenario.
fn runs_table(m: &Value) -> String {
    let mut t = String::new();
    t.push_str("| scenario | client | calls succeeded | requests | 429 share | time to finish | goodput ÷ limit | time ÷ ideal |\n");
    t.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (scenario, path) in COMPARED {
        let Some(runs) = at(m, path)["runs"].as_object() else {
            continue;
        };
        for (client, run) in runs {
            if let Some(why) = run["skipped"].as_str() {
                let _ = writeln!(t, "| {scenario} | {client} | skipped: {why} | | | | | |");
                continue;
            }
            let _ = writeln!(
                t,
                "| {scenario} | {client} | {} of {} | {} | {} | {} | {} | {} |",
                run["succeeded"],
                run["calls"],
                run["requests"],
                fmt(num(&run["throttled_share"]), 3),
                ended_in(run),
                fmt(num(&run["goodput_vs_limit"]), 3),
                fmt(num(&run["vs_ideal"]), 2),
            );
        }
    }
    t
}

/// The goals not met, by key, for the summary.
fn missed(table: &str) -> Vec<String> {
    table
        .lines()
        .filter(|l| l.contains("| **no** |"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect()
}

/// The text of BENCHMARKS.md, which only a full run writes.
pub(super) fn render(
    m: &Value,
    cold: Option<&Result<ColdBuild, String>>,
    h: &Value,
    machine: &Machine,
    timing: &Timing,
) -> String {
    let table = table(m, cold, h);
    let goals = table
        .lines()
        .filter(|l| l.contains("| yes |") || l.contains("| **no** |"))
        .count();
    let missed = missed(&table);
    let missed = if missed.is_empty() {
        "every goal was met".to_owned()
    } else {
        format!(
            "{} of {goals} goals were met; not met: `{}`",
            goals - missed.len(),
            missed.join("`, `")
        )
    };
    let steady = &m["steady"];
    let o = &m["overhead"];
    let mut r = String::new();
    let _ = write!(
        r,
        "# Benchmarks

The report of one full run of `cargo xtask bench` ({date}); rerun it to
refresh this file. What a user feels is how fast a job of many calls
finishes under Conduit's rate limit, and whether it fails: that is measured
first, the SDK beside the clients an application would use instead. The
overhead per call is a budget, not a race. The machine is a shared VM:
read the ratios, each measured side by side in the run.

## What it means

{missed}. The ratio rows put the SDK's default client (in the fleets, the
SDK with Redis) over the other client in the same scenario: above 1 in
calls succeeded, below 1 in requests and time, is ahead.

## Results

{table}
`cargo xtask bench --json` prints these keys as one JSON object:

```json
{h}
```

## Every run

{runs}
## How it was measured

One release-built process (`bench/`) against an in-process HTTP/1.1
keep-alive server on 127.0.0.1 (`bench/src/server.rs` on `test-server/`)
that answers the spec's example run, and can enforce a sliding-window limit,
answering the rest 429 with `Retry-After` in whole seconds. Conduit allows
120 requests a minute; the server allows {limit}, so that each run takes
seconds, not minutes.

- **Clients** (`bench/src/scenario.rs`): the SDK's default client (adaptive
  gate); the SDK with the server's limit as its explicit rate ({limit}:
  at most that many requests in any window);
  the peer, reqwest-middleware 0.5 + reqwest-retry 0.9 retrying 429s and
  other transient errors with exponential backoff within the same budget
  as the SDK's `max_wait` ({budget} s; it does not read `Retry-After`); and
  naive reqwest, which sleeps each 429's `Retry-After` and retries within
  that budget. All run `POST /v1/custom-tools/{{id}}/run`.
- **Steady** (`goodput_vs_limit_*`, `throttled_share_*`,
  `failed_share_*`): {steady_calls} calls from {steady_tasks} tasks sharing
  one client, against a fresh window; goodput is calls succeeded ÷ the time
  until the last ended ÷ the limit. The adaptive client learns the limit
  from its first 429s, so its 429 share counts only requests arriving after
  the server's first window.
- **Token bucket**: as steady, against {bucket_server}: the same
  rate, counted otherwise. The adaptive client reads its first 429 as a
  window, and must find out that it is not one.
- **Storm then open**: {storm_calls} calls from {storm_tasks} tasks;
  {storm_server}. The ideal is the first 429's answer + its `Retry-After`.
- **Limit lifted**: {lift_calls} calls from {lift_tasks} tasks; {lift_server}.
  The ideal is the lift: the rest could all go at once after it.
- **Always 429**: {all_calls} calls, one per task, each client with a
  budget of {all_bound} s; {all_server}.
- **Fleets**: two and four processes of `conduit-bench`, {fleet_calls} calls
  each from {fleet_tasks} tasks, one limit: the SDK with the explicit rate
  sharing the gate through a private redis-server, the same each alone, the
  peer and naive reqwest.
- **Overhead**: the SDK with its defaults, the peer, and the floor (the same
  request by hand on reqwest with the SDK's timeouts). Latency: {lat_calls}
  sequential calls each, in an order where every client follows every other
  equally often; median ÷ median. Client CPU: {cpu_rounds} rounds of
  {cpu_requests} requests at 64 in flight per client, all threads but the
  server's (`/proc/self/task/*/schedstat`); the median of each round's SDK
  ÷ other. Allocations: counted by the bench's global allocator over
  {alloc_calls} sequential calls, the server's thread excluded.
- **Code generation**: `conduit_codegen::generate` on the vendored spec and
  on one with its run operation cloned 500 times; release build, medians.
- **Cold build**: a tiny app calling one tool, through the SDK and through
  reqwest + serde + tokio, each built (debug, `--offline`) from an empty
  `target/` in a fresh directory, {cold_rounds} times alternated.
- **Memory**: `VmRSS` before and after {rss_calls} sequential SDK calls;
  and before and after one list call each for {workspaces} distinct
  workspaces (the gate keeps a partition per workspace until it has been
  idle for two minutes).

## Machine

| | |
| --- | --- |
| `nproc` | {nproc} |
| CPU (`/proc/cpuinfo`) | {cpu} |
| rustc | {rustc} |
| kernel | {kernel} |
| memory | {memory} |
| load average (1, 5, 15 min) before / after | {load_before} / {load_after} |
| time | building conduit-bench {build:.0} s, measuring {run:.0} s, whole command {total:.0} s |

Reproduce: `cargo xtask bench` (writes this file) or `cargo xtask bench
--quick` (smaller runs, no cold builds; prints and never writes this file).
",
        date = machine.date,
        table = table,
        h = h,
        runs = runs_table(m),
        limit = text(&steady["server"]),
        budget = steady["budget_s"],
        steady_calls = steady["calls"],
        steady_tasks = steady["tasks"],
        bucket_server = text(&m["bucket"]["server"]),
        storm_calls = m["recovery"]["storm"]["calls"],
        storm_tasks = m["recovery"]["storm"]["tasks"],
        storm_server = text(&m["recovery"]["storm"]["server"]),
        lift_calls = m["recovery"]["lift"]["calls"],
        lift_tasks = m["recovery"]["lift"]["tasks"],
        lift_server = text(&m["recovery"]["lift"]["server"]),
        all_calls = m["recovery"]["all_429"]["calls"],
        all_bound = m["recovery"]["all_429"]["bound_s"],
        all_server = text(&m["recovery"]["all_429"]["server"]),
        fleet_calls = m["fleet"]["calls_per_process"],
        fleet_tasks = m["fleet"]["tasks_per_process"],
        lat_calls = fmt(num(&o["latency"]["calls"]), 0),
        cpu_rounds = o["cpu"]["rounds"],
        cpu_requests = fmt(num(&o["cpu"]["requests_per_round"]), 0),
        alloc_calls = fmt(num(&o["alloc_calls"]), 0),
        cold_rounds = COLD_BUILD_ROUNDS,
        rss_calls = fmt(num(&m["memory"]["calls"]), 0),
        workspaces = fmt(num(&m["memory"]["workspaces"]), 0),
        nproc = machine.nproc,
        cpu = machine.cpu,
        rustc = machine.rustc,
        kernel = machine.kernel,
        memory = machine.memory,
        load_before = machine.load_before,
        load_after = machine.load_after,
        build = timing.build_s,
        run = timing.run_s,
        total = timing.total_s,
    );
    r
}

/// A string of the measurement, "n/a" if it is missing.
fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("n/a")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The results table's row for `key`.
    fn table_row(table: &str, key: &str) -> String {
        table
            .lines()
            .find(|l| l.starts_with(&format!("| `{key}`")))
            .unwrap_or_else(|| panic!("no row for {key}"))
            .to_owned()
    }

    /// A measurement as conduit-bench prints it, in part.
    fn measured() -> Value {
        let run = |goodput: f64, share: f64, succeeded: u64, requests: u64, s: f64| {
            json!({
                "goodput_vs_limit": goodput, "throttled_share": share,
                "throttled_share_after_first_window": share / 2.0,
                "failed_share": 0.1, "succeeded": succeeded, "requests": requests,
                "elapsed_s": s, "ended": true, "calls": 200,
            })
        };
        let ratios = json!({ "succeeded": 1.2, "requests": 0.5, "time": 1.1 });
        json!({
            "steady": {
                "runs": {
                    "explicit": run(0.98, 0.0, 200, 200, 10.2),
                    "adaptive": run(0.93, 0.08, 200, 230, 10.8),
                    "peer": run(0.7, 0.5, 180, 400, 12.9),
                    "naive": run(0.8, 0.4, 190, 350, 11.9),
                },
                "vs_peer": ratios,
            },
            "recovery": {
                "storm": { "runs": { "adaptive": { "elapsed_s": 2.5, "ideal_s": 2.0, "ended": true } } },
                "lift": { "runs": { "adaptive": { "elapsed_s": 9.0, "ideal_s": 4.0, "ended": true } } },
                "all_429": { "runs": { "adaptive": { "elapsed_s": 10.4 } }, "bound_s": 10 },
            },
            "overhead": { "latency_vs_floor": 1.06, "cpu_vs_floor": 1.12 },
            "codegen": { "spec": { "median_ms": 400.0 }, "synthetic_500": { "median_ms": 2300.0 } },
        })
    }

    #[test]
    fn numbers_are_grouped_and_rounded() {
        assert_eq!(fmt(1234567.891, 1), "1,234,567.9");
        assert_eq!(fmt(999.0, 0), "999");
        assert_eq!(fmt(-1234.5, 2), "-1,234.50");
        assert_eq!(fmt(f64::NAN, 1), "n/a");
    }

    #[test]
    fn each_goal_is_judged_against_its_own_figure() {
        let m = measured();
        let h = headline(&m, None);
        assert_eq!(h["goodput_vs_limit_explicit"], 0.98);
        assert_eq!(h["throttled_share_adaptive"], 0.04);
        assert_eq!(h["failed_share_peer"], 0.1);
        assert_eq!(h["sdk_vs_peer"]["steady"]["requests"], 0.5);
        let t = table(&m, None, &h);
        let row = |key: &str| table_row(&t, key);
        assert!(row("goodput_vs_limit_explicit").contains("| 0.980 | ≥ 0.97 | yes |"));
        assert!(row("goodput_vs_limit_adaptive").contains("| 0.930 | ≥ 0.90 | yes |"));
        assert!(row("goodput_vs_limit_peer").contains("| (beside) | n/a |"));
        assert!(row("throttled_share_adaptive").contains("| 0.040 | ≤ 0.05 | yes |"));
        assert!(
            row("storm_recovery_s").contains("| 2.50 s | ≤ 2 × `storm_ideal_s` 2.00 s | yes |")
        );
        assert!(row("lift_recovery_s").contains("| **no** |"));
        assert!(
            row("all_429_bounded_s").contains("| 10.40 s | ≤ `all_429_bound_s` 10 s + 1 s | yes |")
        );
        // Ahead in calls and requests, behind in time: not ahead.
        assert!(
            row("sdk_vs_peer.steady").contains("| 1.20 / 0.50 / 1.10 | ≥ 1 / ≤ 1 / ≤ 1 | **no** |")
        );
        assert!(row("latency_vs_floor").contains("| 1.060 | ≤ 1.10 | yes |"));
        assert!(row("cpu_vs_floor").contains("| 1.120 | ≤ 1.10 | **no** |"));
        assert!(row("codegen_ms_500").contains("| 2,300 | < 10,000 | yes |"));
        assert_eq!(
            missed(&t),
            ["lift_recovery_s", "sdk_vs_peer.steady", "cpu_vs_floor"]
        );
    }

    #[test]
    fn every_run_is_listed_under_its_scenario() {
        let t = runs_table(&measured());
        assert!(
            t.contains("| steady | peer | 180 of 200 | 400 | 0.500 | 12.90 s | 0.700 | n/a |"),
            "{t}"
        );
        assert!(t.contains("| storm | adaptive |"), "{t}");
    }

    #[test]
    fn the_headline_has_exactly_the_promised_keys() {
        let h = headline(&measured(), None);
        let keys: Vec<&str> = h.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "goodput_vs_limit_explicit",
                "goodput_vs_limit_adaptive",
                "goodput_vs_limit_peer",
                "goodput_vs_limit_naive",
                "throttled_share_explicit",
                "throttled_share_adaptive",
                "failed_share_peer",
                "failed_share_naive",
                "storm_recovery_s",
                "storm_ideal_s",
                "lift_recovery_s",
                "lift_ideal_s",
                "all_429_bounded_s",
                "all_429_bound_s",
                "fleet_throttled_share",
                "fleet_throttled_share_without_redis",
                "sdk_vs_peer",
                "sdk_vs_naive",
                "latency_vs_floor",
                "cpu_vs_floor",
                "latency_vs_peer",
                "cpu_vs_peer",
                "allocs_per_call",
                "codegen_ms_spec",
                "codegen_ms_500",
                "cold_build_ratio",
                "rss_growth_kb",
                "rss_per_workspace_bytes",
            ]
        );
        assert_eq!(h["cold_build_ratio"], Value::Null);
        let cold = ColdBuild {
            sdk_s: vec![30.0, 32.0],
            reqwest_s: vec![20.0, 20.0],
        };
        assert_eq!(headline(&measured(), Some(&cold))["cold_build_ratio"], 1.55);
    }
}
