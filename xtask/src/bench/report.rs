//! The report: the results table, `BENCHMARKS.md`'s text and the `--json`
//! headline, rendered from what `conduit-bench` and the cold builds measured.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::cold_build::{COLD_BUILD_ROUNDS, ColdBuild, median};
use super::machine::Machine;

/// The headline numbers, exactly the keys `--json` promises.
pub(super) fn headline(m: &Value, cold: Option<&ColdBuild>) -> Value {
    let codegen = |ops: u64| {
        m["codegen"]
            .as_array()
            .and_then(|sizes| sizes.iter().find(|s| s["operations"] == ops))
            .map_or(Value::Null, |s| s["median_ms"].clone())
    };
    json!({
        "latency_ratio": m["latency"]["ratio"],
        "throughput_ratio": m["throughput"]["ratio"],
        "latency_vs_peer": m["latency"]["vs_peer"],
        "throughput_vs_peer": m["throughput"]["vs_peer"],
        "latency_vs_floor": m["latency"]["vs_floor"],
        "throughput_vs_floor": m["throughput"]["vs_floor"],
        "allocs_per_call": {
            "sdk": m["allocs"]["per_call"]["sdk"],
            "peer": m["allocs"]["per_call"]["peer"],
            "floor": m["allocs"]["per_call"]["floor"],
        },
        "retry_after_error_ms": m["retry_after"]["median_ms"],
        "codegen_ms_10": codegen(10),
        "codegen_ms_100": codegen(100),
        "codegen_ms_500": codegen(500),
        "rss_growth_kb": m["rss"]["growth_kb"],
        "cold_build_ratio": cold.map_or(Value::Null, |c| json!(round3(c.ratio()))),
        "pacing_efficiency": m["limits"]["explicit"]["efficiency"],
        "throttled_share": m["limits"]["explicit"]["throttled_share"],
        "adaptive_efficiency": m["limits"]["adaptive"]["efficiency"],
        "adaptive_throttled_share": m["limits"]["adaptive"]["throttled_share"],
        "fleet_throttled_share": m["fleet"]["with_redis"]["throttled_share"],
        "fleet_throttled_share_without_redis": m["fleet"]["without_redis"]["throttled_share"],
        "storm_recovery_s": m["recovery"]["storm_recovery_s"],
        "storm_ideal_s": m["recovery"]["storm_ideal_s"],
        "storm_vs_ideal": m["recovery"]["storm_vs_ideal"],
        "lift_recovery_s": m["recovery"]["lift_recovery_s"],
        "lift_ideal_s": m["recovery"]["lift_ideal_s"],
        "lift_vs_ideal": m["recovery"]["lift_vs_ideal"],
        "all_429_bounded_s": m["recovery"]["all_429_bounded_s"],
        "all_429_bound_s": m["recovery"]["all_429_bound_s"],
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

/// "median (p10–p90, min–max)" of a summary object.
fn spread(s: &Value, decimals: usize, unit: &str) -> String {
    format!(
        "{}{unit} (p10 {}, p90 {}; min {}, max {})",
        fmt(num(&s["median"]), decimals),
        fmt(num(&s["p10"]), decimals),
        fmt(num(&s["p90"]), decimals),
        fmt(num(&s["min"]), decimals),
        fmt(num(&s["max"]), decimals),
    )
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "n/a",
    }
}

/// The codegen scaling exponent between the smallest and largest spec:
/// 1.0 is linear.
fn codegen_exponent(m: &Value) -> Option<f64> {
    let sizes = m["codegen"].as_array()?;
    let (first, last) = (sizes.first()?, sizes.last()?);
    let (n0, n1) = (num(&first["operations"]), num(&last["operations"]));
    let (t0, t1) = (num(&first["median_ms"]), num(&last["median_ms"]));
    let e = (t1 / t0).ln() / (n1 / n0).ln();
    e.is_finite().then_some(e)
}

/// A throughput row: the SDK over `other` within each round (the result),
/// then the ratio of the medians and each client's figures.
fn throughput_row(
    t: &mut String,
    tp: &Value,
    (key, result): (&str, f64),
    other: &str,
    goal: &str,
    met: Option<bool>,
) {
    let _ = writeln!(
        t,
        "| `{key}` | {} | {goal} | {} | SDK over {other} within each round: requests/s {}, client CPU {}; ratio of medians {}: SDK {}, {other} {}; client CPU per request: SDK {} µs, {other} {} µs |",
        fmt(result, 3),
        verdict(met),
        spread(&tp[format!("{other}_round_pair_ratio")], 3, ""),
        spread(&tp[format!("{other}_round_pair_cpu_ratio")], 3, ""),
        fmt(num(&tp[format!("unpaired_vs_{other}")]), 3),
        spread(&tp["sdk_rps"], 0, " req/s"),
        spread(&tp[format!("{other}_rps")], 0, " req/s"),
        fmt(num(&tp["sdk_client_cpu_us"]["median"]), 1),
        fmt(num(&tp[format!("{other}_client_cpu_us")]["median"]), 1),
    );
}

/// The results table (also printed without `--json`).
pub(super) fn table(
    m: &Value,
    cold: Option<&Result<ColdBuild, String>>,
    summary: &Value,
) -> String {
    let mut t = String::new();
    t.push_str("| metric | result | goal | met | median and spread |\n");
    t.push_str("| --- | --- | --- | --- | --- |\n");
    let lat = &m["latency"];
    let latency_ratio = num(&summary["latency_ratio"]);
    let _ = writeln!(
        t,
        "| `latency_ratio` | {} | ≤ 1.05 | {} | SDK {}; baseline {}; {} alternated calls each |",
        fmt(latency_ratio, 3),
        verdict(latency_ratio.is_finite().then_some(latency_ratio <= 1.05)),
        spread(&lat["sdk_us"], 1, " µs"),
        spread(&lat["baseline_us"], 1, " µs"),
        fmt(num(&lat["pairs"]), 0),
    );
    let tp = &m["throughput"];
    let throughput_ratio = num(&summary["throughput_ratio"]);
    throughput_row(
        &mut t,
        tp,
        ("throughput_ratio", throughput_ratio),
        "baseline",
        "≥ 0.95",
        throughput_ratio
            .is_finite()
            .then_some(throughput_ratio >= 0.95),
    );
    for (key, other, goal, met) in [
        (
            "latency_vs_peer",
            "peer",
            "≤ 1.00",
            limit_met(summary, "latency_vs_peer", |x| x <= 1.0),
        ),
        (
            "latency_vs_floor",
            "floor",
            "≤ 1.05",
            limit_met(summary, "latency_vs_floor", |x| x <= 1.05),
        ),
    ] {
        let _ = writeln!(
            t,
            "| `{key}` | {} | {goal} | {} | SDK {}; {other} {} |",
            fmt(num(&summary[key]), 3),
            verdict(met),
            spread(&lat["sdk_us"], 1, " µs"),
            spread(&lat[format!("{other}_us")], 1, " µs"),
        );
    }
    for (key, other, goal, met) in [
        (
            "throughput_vs_peer",
            "peer",
            "≥ 1.00",
            limit_met(summary, "throughput_vs_peer", |x| x >= 1.0),
        ),
        (
            "throughput_vs_floor",
            "floor",
            "≥ 0.95",
            limit_met(summary, "throughput_vs_floor", |x| x >= 0.95),
        ),
    ] {
        throughput_row(&mut t, tp, (key, num(&summary[key])), other, goal, met);
    }
    let allocs = &summary["allocs_per_call"];
    let _ = writeln!(
        t,
        "| `allocs_per_call` | SDK {} | (reported) | n/a | peer {}, floor {}; {} sequential calls each, counted by the bench's global allocator, the server's thread excluded |",
        fmt(num(&allocs["sdk"]), 1),
        fmt(num(&allocs["peer"]), 1),
        fmt(num(&allocs["floor"]), 1),
        fmt(num(&m["allocs"]["calls"]), 0),
    );
    let retry = &m["retry_after"];
    let late = num(&summary["retry_after_error_ms"]);
    let _ = writeln!(
        t,
        "| `retry_after_error_ms` | {} | 0 ≤ x ≤ 50 | {} | {}; runs: {} ms |",
        fmt(late, 2),
        verdict(late.is_finite().then_some((0.0..=50.0).contains(&late))),
        spread(&retry["summary_ms"], 2, " ms"),
        retry["late_ms"]
            .as_array()
            .map(|v| v
                .iter()
                .map(|x| fmt(num(x), 2))
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
    );
    let exponent = codegen_exponent(m);
    for size in m["codegen"].as_array().into_iter().flatten() {
        let ops = num(&size["operations"]);
        let ms = num(&size["median_ms"]);
        let (goal, met) = if ops >= 500.0 {
            (
                "< 10,000 ms, near linear",
                Some(ms < 10_000.0 && exponent.is_some_and(|e| e <= 1.25)),
            )
        } else {
            ("near linear", None)
        };
        let _ = writeln!(
            t,
            "| `codegen_ms_{}` | {} | {goal} | {} | {}; {} run(s); {} ms per operation; {} generated lines |",
            ops,
            fmt(ms, 1),
            verdict(met),
            spread(&size["ms"], 1, " ms"),
            size["runs"],
            fmt(ms / ops, 2),
            fmt(num(&size["generated_lines"]), 0),
        );
    }
    let rss = &m["rss"];
    let growth = num(&summary["rss_growth_kb"]);
    let _ = writeln!(
        t,
        "| `rss_growth_kb` | {} | < 1,024 | {} | VmRSS {} kB after the first {} calls, {} kB after {} (one reading each) |",
        fmt(growth, 0),
        verdict(growth.is_finite().then_some(growth < 1024.0)),
        fmt(num(&rss["after_first_kb"]), 0),
        fmt(num(&rss["first_calls"]), 0),
        fmt(num(&rss["after_total_kb"]), 0),
        fmt(num(&rss["total_calls"]), 0),
    );
    match cold {
        None => {
            t.push_str("| `cold_build_ratio` | null | ≤ 1.2 | n/a | skipped with `--quick` |\n")
        }
        Some(Err(e)) => {
            let first = e.lines().next().unwrap_or_default();
            let _ = writeln!(
                t,
                "| `cold_build_ratio` | null | ≤ 1.2 | n/a | failed: {first} |"
            );
        }
        Some(Ok(c)) => {
            let ratio = c.ratio();
            let list = |v: &[f64]| v.iter().map(|s| fmt(*s, 1)).collect::<Vec<_>>().join(", ");
            let _ = writeln!(
                t,
                "| `cold_build_ratio` | {} | ≤ 1.2 | {} | SDK app {} s (runs: {}); reqwest app {} s (runs: {}); medians |",
                fmt(ratio, 3),
                verdict(Some(ratio <= 1.2)),
                fmt(median(&c.sdk_s), 1),
                list(&c.sdk_s),
                fmt(median(&c.reqwest_s), 1),
                list(&c.reqwest_s),
            );
        }
    }
    let limits = &m["limits"];
    for (key, run, goal, met) in [
        (
            "pacing_efficiency",
            "explicit",
            "≥ 0.95",
            limit_met(summary, "pacing_efficiency", |x| x >= 0.95),
        ),
        (
            "throttled_share",
            "explicit",
            "≤ 0.02",
            limit_met(summary, "throttled_share", |x| x <= 0.02),
        ),
        (
            "adaptive_efficiency",
            "adaptive",
            "≥ 0.7",
            limit_met(summary, "adaptive_efficiency", |x| x >= 0.7),
        ),
        (
            "adaptive_throttled_share",
            "adaptive",
            "≤ 0.15",
            limit_met(summary, "adaptive_throttled_share", |x| x <= 0.15),
        ),
    ] {
        let r = &limits[run];
        let _ = writeln!(
            t,
            "| `{key}` | {} | {goal} | {} | {} mode: {} of {} calls succeeded, {} req/s, {} requests of which {} were 429, {} s |",
            fmt(num(&summary[key]), 3),
            verdict(met),
            run,
            r["succeeded"],
            r["calls"],
            fmt(num(&r["calls_per_s"]), 1),
            r["requests"],
            r["throttled"],
            fmt(num(&r["elapsed_s"]), 1),
        );
    }
    let fleet = &m["fleet"];
    let shared = num(&summary["fleet_throttled_share"]);
    let _ = writeln!(
        t,
        "| `fleet_throttled_share` | {} | ≤ 0.03 | {} | {} processes each at {}/s, sharing Redis: {} requests of which {} were 429, {} s; without Redis: {} of {} ({}), {} s |",
        fmt(shared, 3),
        verdict(shared.is_finite().then_some(shared <= 0.03)),
        fleet["processes"],
        fleet["rate_per_process_per_s"],
        fleet["with_redis"]["requests"],
        fleet["with_redis"]["throttled"],
        fmt(num(&fleet["with_redis"]["elapsed_s"]), 1),
        fleet["without_redis"]["throttled"],
        fleet["without_redis"]["requests"],
        fmt(num(&fleet["without_redis"]["throttled_share"]), 3),
        fmt(num(&fleet["without_redis"]["elapsed_s"]), 1),
    );
    recovery_rows(&mut t, &m["recovery"]);
    if let Some(e) = exponent {
        let _ = writeln!(
            t,
            "\nCode generation scales as n^{:.2} between the smallest and largest spec (1.00 is linear; \"near linear\" is read as ≤ 1.25).",
            e
        );
    }
    t
}

/// "12.3 s", or why there is no time: the scenario was cut off.
fn ended_in(run: &Value, key: &str) -> String {
    match run["ended"].as_bool() {
        Some(true) => format!("{} s", fmt(num(&run[key]), 2)),
        Some(false) => format!(
            "not ended in {} s ({} of {} calls ended)",
            fmt(num(&run["gave_up_after_s"]), 0),
            run["calls_ended"],
            run["calls"],
        ),
        None => "n/a".into(),
    }
}

/// How the calls of a recovery run ended, and what reached the server.
fn outcomes(run: &Value) -> String {
    format!(
        "{} of {} calls succeeded, {} rate limited, {} failed otherwise; {} requests of which {} were 429; longest call {} s",
        run["succeeded"],
        run["calls"],
        run["rate_limited"],
        run["failed_otherwise"],
        run["requests"],
        run["throttled"],
        fmt(num(&run["longest_call_s"]), 2),
    )
}

/// The recovery keys in the results table: the SDK's runs, beside their
/// ideal or bound. No goal is set for them yet, so no verdict.
fn recovery_rows(t: &mut String, r: &Value) {
    let storm = &r["storm"]["runs"]["sdk"];
    let _ = writeln!(
        t,
        "| `storm_recovery_s` | {} | ideal `storm_ideal_s` {} s | n/a | ÷ ideal (`storm_vs_ideal`) {}; {}; {} sent inside the cooldown the first 429 announced ({} in flight) |",
        ended_in(storm, "recovery_s"),
        fmt(num(&storm["ideal_s"]), 2),
        fmt(num(&storm["vs_ideal"]), 3),
        outcomes(storm),
        storm["sent_inside_cooldown"],
        storm["in_flight_at_first_429"],
    );
    let lift = &r["lift"]["runs"]["sdk"];
    let _ = writeln!(
        t,
        "| `lift_recovery_s` | {} | ideal `lift_ideal_s` {} s | n/a | ÷ ideal (`lift_vs_ideal`) {}; {}; requests per second after the lift: {} |",
        ended_in(lift, "recovery_s"),
        fmt(num(&lift["ideal_s"]), 2),
        fmt(num(&lift["vs_ideal"]), 3),
        outcomes(lift),
        per_second(lift),
    );
    let all = &r["all_429"]["sdk"];
    let _ = writeln!(
        t,
        "| `all_429_bounded_s` | {} | bound `all_429_bound_s` {} s | n/a | every call rate limited: {}; {} |",
        ended_in(all, "bounded_s"),
        fmt(num(&all["bound_s"]), 0),
        verdict(all["all_rate_limited"].as_bool()),
        outcomes(all),
    );
}

/// The requests per 1 s bucket after the lift, "12, 20, 31".
fn per_second(run: &Value) -> String {
    run["requests_per_second_after_lift"]
        .as_array()
        .map_or("n/a".into(), |v| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
}

/// The recovery scenarios, every client's run: BENCHMARKS.md's table.
fn recovery_table(m: &Value) -> String {
    let r = &m["recovery"];
    let mut t = String::new();
    t.push_str("| scenario | client | until every call ended | ideal or bound | ÷ ideal | succeeded / rate limited / other | requests (429s) | sent inside an announced cooldown | longest call |\n");
    t.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    let row = |t: &mut String,
               scenario: &str,
               client: &str,
               run: &Value,
               key: &str,
               ideal: String,
               cooldown: String| {
        let _ = writeln!(
            t,
            "| {scenario} | {client} | {} | {ideal} | {} | {} / {} / {} | {} ({}) | {cooldown} | {} s |",
            ended_in(run, key),
            fmt(num(&run["vs_ideal"]), 3),
            run["succeeded"],
            run["rate_limited"],
            run["failed_otherwise"],
            run["requests"],
            run["throttled"],
            fmt(num(&run["longest_call_s"]), 2),
        );
    };
    let runs = |scenario: &str| r[scenario]["runs"].as_object().cloned().unwrap_or_default();
    for (client, run) in runs("storm") {
        let cooldown = format!(
            "{} ({} in flight)",
            run["sent_inside_cooldown"], run["in_flight_at_first_429"]
        );
        let ideal = format!("{} s", fmt(num(&run["ideal_s"]), 2));
        row(
            &mut t,
            "storm then open",
            &client,
            &run,
            "recovery_s",
            ideal,
            cooldown,
        );
    }
    for (client, run) in runs("lift") {
        let ideal = format!("{} s", fmt(num(&run["ideal_s"]), 2));
        row(
            &mut t,
            "limit lifted",
            &client,
            &run,
            "recovery_s",
            ideal,
            "n/a".into(),
        );
    }
    let all = &r["all_429"]["sdk"];
    let bound = format!("≤ {} s (`max_wait`)", fmt(num(&all["bound_s"]), 0));
    row(
        &mut t,
        "always 429",
        "sdk",
        all,
        "bounded_s",
        bound,
        "n/a".into(),
    );
    t.push('\n');
    for (client, run) in runs("lift") {
        let _ = writeln!(
            t,
            "Limit lifted, {client}: requests per second after the lift, in 1 s buckets: {}.",
            per_second(&run)
        );
    }
    t
}

/// A string of the measurement, "n/a" if it is missing.
fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("n/a")
}

/// Whether the headline `key` meets `goal`, if it was measured.
fn limit_met(summary: &Value, key: &str, goal: impl Fn(f64) -> bool) -> Option<bool> {
    let x = num(&summary[key]);
    x.is_finite().then(|| goal(x))
}

/// The gate's three modes under the same overload, for README's table.
fn limits_table(m: &Value) -> String {
    let l = &m["limits"];
    let mut t = String::new();
    t.push_str("| gate mode | calls succeeded | 429s / requests | 429 share | 429s after the first second | calls/s | time |\n");
    t.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
    for (name, run) in [
        ("adaptive (default)", "adaptive"),
        ("explicit rate, 5 % under the limit", "explicit"),
        ("disabled (each call retries alone)", "disabled"),
    ] {
        let r = &l[run];
        let _ = writeln!(
            t,
            "| {name} | {} of {} | {} / {} | {} | {} | {} | {} s |",
            r["succeeded"],
            r["calls"],
            r["throttled"],
            r["requests"],
            fmt(num(&r["throttled_share"]), 3),
            r["throttled_after_first_second"],
            fmt(num(&r["calls_per_s"]), 1),
            fmt(num(&r["elapsed_s"]), 1),
        );
    }
    t
}

/// The text of BENCHMARKS.md, which only a full run writes.
pub(super) fn render(
    m: &Value,
    cold: Option<&Result<ColdBuild, String>>,
    summary: &Value,
    machine: &Machine,
    timing: &Timing,
) -> String {
    let lat = &m["latency"];
    let tp = &m["throughput"];
    let mut r = String::new();
    let _ = write!(
        r,
        "# Benchmarks

Written by `cargo xtask bench` (full run, {date}); rerun it to refresh
this file. The machine is a shared VM, so absolute numbers move with its load
(sequential loopback latencies here have measured about 4x lower while other
builds kept the cores busy than on an idle machine, whose cores are slower to
wake): read the SDK/baseline ratios, measured interleaved so that both sides
see the same conditions, and rerun before drawing conclusions.

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

## Results

{table}
`cargo xtask bench --json` prints these as one JSON object on the last line
of stdout:

```json
{summary}
```

## How it was measured

All HTTP measurements run in one release-built process (`bench/`,
`cargo run --release -p conduit-bench`) against an in-process HTTP/1.1
keep-alive server on 127.0.0.1 (`test-server/`, the workspace's loopback
HTTP/1.1 server, answering through `bench/src/server.rs`: a minimal Tokio
server on its own thread and current-thread runtime that reads the head and
`Content-Length` body and answers a fixed 200 JSON body, the spec's example
run). The clients run as tasks on a multi-threaded Tokio runtime (one worker
per core). Both sides send the same request, checked by a unit
test: `POST /v1/custom-tools/{{id}}/run`, `Authorization: Bearer …`, body
`{{\"parameters\":{{\"order_id\":\"ord_12345\"}}}}`, and decode the same body.

- **SDK**: one `conduit_sdk::Client` with its defaults (2 retries, 60 s
  per-attempt timeout, the real Tokio sleeper), reused for every call:
  `client.custom_tools().run(id).parameter(\"order_id\", \"ord_12345\").send()`.
- **Baseline**: one `reqwest::Client::new()` (same reqwest 0.13 build and
  features), reused: `.post(url).bearer_auth(token).json(&json!(..)).send()`,
  `error_for_status()`, `.json::<RunResponse>()` into a small serde struct
  of `{{\"data\":{{success, message, result, error, logs, run_time_ms}}}}`
  (`bench/src/baseline.rs`).
- **Floor**: the same hand-written call on a reqwest client with the SDK's
  default timeouts (60 s per request, 10 s to connect): what a careful
  application ships.
- **Peer**: the stack a Rust developer picks instead of this SDK:
  reqwest-middleware 0.5 with reqwest-retry 0.9's `RetryTransientMiddleware`
  (exponential backoff, 2 retries, as the SDK's default) on the floor's
  client, the same request and decoding.
- **`latency_ratio`**, **`latency_vs_peer`**, **`latency_vs_floor`**:
  {warmup} untimed rounds, then {pairs} sequential calls of each of SDK,
  peer, floor and baseline, in a repeated order of twelve in which every
  client follows every other client once (a call costs more after one
  through another client's pool, and a fixed order moved medians by more
  than 10 %), each call timed with `Instant`; median SDK ÷ median of the
  other.
- **`allocs_per_call`**: allocations counted by the bench binary's global
  allocator over sequential calls of each client (the loopback server's
  thread excluded): the steadiest figure on a shared machine.
- **`throughput_ratio`**, **`throughput_vs_peer`**, **`throughput_vs_floor`**: {concurrency} tasks share one client and pull
  from a counter until {requests} requests are done; requests/s of the
  round. One untimed round per client opens the pools' connections, then
  {rounds} timed rounds each, in an order rotated each round. The result
  is the median over the rounds of the SDK's requests/s over the other
  client's in the same round (the two ran back to back, in the same
  conditions). The ratio of the two medians is shown beside it: it does
  not pair the rounds, and moves with the machine's quiet and busy
  periods by more than the differences measured (in one run it put the
  floor, which does more per request, 12 % ahead of the baseline). The client CPU per
  request (all threads but the server's, from `/proc/self/task/*/schedstat`)
  is reported too: it moves less with the machine's load than requests/s.
  At 64 in flight on {nproc} cores the clients, the server and the kernel
  share the CPUs, so requests/s falls roughly as client CPU per request rises.
- **`retry_after_error_ms`**: the server answers the next request with 429
  and `Retry-After: 1`, then 200. Lateness = when the retry's first bytes were
  read by the server − (when the 429 had been written + 1 s); median of
  {retry_runs} runs, each a fresh SDK call with the default sleeper.
- **`codegen_ms_N`**: `conduit_codegen::generate(&doc)` (normalise, parse
  into `openapiv3`, validate, progenitor, summary, prettyplease) on the
  vendored spec loaded with `Source::load`, its one operation cloned N times
  as `POST /v1/bench{{i}}/{{id}}/run` (`benchOp{{i}}`), with the same inline error
  bodies, path parameter and request body; wall time, median of the runs in
  the table. These are release-build timings; `conduit-api-gen`'s build
  script runs the same code at cargo's build-script default of opt-level 0,
  which is a few times slower.
- **`rss_growth_kb`**: a fresh SDK client makes {rss_total} sequential calls;
  `VmRSS` from `/proc/self/status` after the first {rss_first} is subtracted
  from the reading after all of them (same process as the server, whose
  memory does not grow per request).
- **`cold_build_ratio`** (full mode only): two apps that make the same call,
  one through conduit-sdk (path dependency on this workspace's
  `conduit-sdk`), one with reqwest (`default-features = false`,
  `[\"json\", \"rustls\"]`) + serde + serde_json + tokio, each in a fresh
  directory under the system temp dir with its own `target/`
  (`CARGO_TARGET_DIR` unset for the child), seeded with this workspace's
  `Cargo.lock`. `cargo fetch` first, then `cargo build --offline` (debug)
  timed from scratch, {cold_rounds} times each, alternated, deleting
  `target/` before each; median ÷ median. conduit-sdk depends on
  `conduit-api-gen` without its `codegen` feature, so the SDK app compiles
  the checked-in generated client and does not build or run progenitor.

## Rate limits under overload

{limits_setup}

{limits_table}
- **`pacing_efficiency`**: with the explicit rate ({explicit_rate}/s, 5 %
  under the server's limit), calls/s ÷ that rate; **`throttled_share`**: 429s
  ÷ requests in that run.
- **`adaptive_efficiency`**: with the default adaptive gate, calls/s ÷ the
  server's limit; **`adaptive_throttled_share`**: 429s ÷ requests. Nothing is
  paced before the first 429 comes back, so every request in flight then
  (up to one per task) can meet one: with 50 tasks that alone is up to 50
  of the run's requests, and how many depends on how the first
  milliseconds are scheduled. The table's \"429s after the first second\"
  counts only those to requests that reached the server more than a
  second after the first 429's: the gate holds every call for at least
  that long once it has seen one, so these are the ones its pacing let
  through.
- Each run: {limits_calls} calls from {limits_tasks} tasks sharing one client
  with the default retry policy (2 retries), the server enforcing a fresh
  window; a call counts as succeeded when it returned `Ok`.
- **`fleet_throttled_share`**: two processes of `conduit-bench` (nothing
  shared in memory), each making 100 calls over 10 tasks with an explicit
  rate of 19/s (just under the server's 20/s), one workspace; 429s ÷
  requests with the gate's state in a private redis-server
  (`bench/src/fleet.rs`), and the same without Redis for contrast.

## Recovery after 429s

{recovery_table}
Each scenario starts a fresh loopback server (`bench/src/server.rs`) and
clients of its own (`bench/src/recovery.rs`); the SDK's client has its
defaults (adaptive gate, default retry policy) unless said otherwise, and
the peer is the reqwest-middleware + reqwest-retry stack above. A scenario
still running after {recovery_timeout} s is cut off and reported as not
ended. Times count from the first call.

- **Storm then open** (`storm_recovery_s`): {storm_calls} calls from
  {storm_tasks} tasks; {storm_server}. **`storm_ideal_s`** is when the first
  429 was answered + its `Retry-After`: the earliest a client keeping the
  server's word can finish. \"Sent inside an announced cooldown\" counts
  the requests that reached the server before then beyond one per task
  (those in flight when the first 429 was answered, as the server cannot
  see when a request was sent): it should be 0.
- **Limit lifted** (`lift_recovery_s`): {lift_calls} calls from {lift_tasks}
  tasks; {lift_server}. **`lift_ideal_s`** is the lift, counted from the
  first request: the calls that fit before it are done by then and the
  rest can go at once after it. The requests per second after the lift
  show how fast the client climbs back.
- **Always 429** (`all_429_bounded_s`): {all_calls} calls from {all_tasks}
  tasks through an SDK client with
  `RetryPolicy::default().with_max_wait(Duration::from_secs({all_max_wait}))`;
  {all_server}.
  **`all_429_bound_s`** is that `max_wait`, the documented bound on one
  call's waits, after which it ends as rate limited; every call must end so.

Reproduce: `cargo xtask bench` (full, writes this file) or
`cargo xtask bench --quick --json` (prints its numbers and never writes this
file, which keeps the last full run; under 3 minutes once `conduit-bench` is
built; the first release build of its dependencies takes several minutes on
2 cores).
",
        date = machine.date,
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
        table = table(m, cold, summary),
        summary = summary,
        warmup = fmt(num(&lat["warmup_pairs"]), 0),
        pairs = fmt(num(&lat["pairs"]), 0),
        concurrency = tp["concurrency"],
        requests = fmt(num(&tp["requests_per_round"]), 0),
        rounds = tp["rounds"],
        retry_runs = m["retry_after"]["runs"],
        rss_total = fmt(num(&m["rss"]["total_calls"]), 0),
        rss_first = fmt(num(&m["rss"]["first_calls"]), 0),
        cold_rounds = COLD_BUILD_ROUNDS,
        limits_setup = m["limits"]["server_limit"]
            .as_str()
            .map_or(String::new(), |s| format!("Server: {s}.")),
        limits_table = limits_table(m),
        explicit_rate = m["limits"]["explicit_rate_per_s"],
        limits_calls = m["limits"]["calls"],
        limits_tasks = m["limits"]["tasks"],
        recovery_table = recovery_table(m),
        recovery_timeout = fmt(num(&m["recovery"]["timeout_s"]), 0),
        storm_calls = m["recovery"]["storm"]["calls"],
        storm_tasks = m["recovery"]["storm"]["tasks"],
        storm_server = text(&m["recovery"]["storm"]["server"]),
        lift_calls = m["recovery"]["lift"]["calls"],
        lift_tasks = m["recovery"]["lift"]["tasks"],
        lift_server = text(&m["recovery"]["lift"]["server"]),
        all_calls = m["recovery"]["all_429"]["calls"],
        all_tasks = m["recovery"]["all_429"]["tasks"],
        all_max_wait = fmt(num(&m["recovery"]["all_429"]["max_wait_s"]), 0),
        all_server = text(&m["recovery"]["all_429"]["server"]),
    );
    r
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

    #[test]
    fn numbers_are_grouped_and_rounded() {
        assert_eq!(fmt(1234567.891, 1), "1,234,567.9");
        assert_eq!(fmt(999.0, 0), "999");
        assert_eq!(fmt(-1234.5, 2), "-1,234.50");
        assert_eq!(fmt(f64::NAN, 1), "n/a");
    }

    #[test]
    fn throughput_rows_lead_with_the_per_round_ratio_and_show_the_ratio_of_medians() {
        let ratios = |median: f64| json!({ "median": median, "p10": 0.9, "p90": 1.1, "min": 0.8, "max": 1.2 });
        let measured = json!({
            "throughput": {
                "vs_peer": 0.97,
                "vs_floor": 0.91,
                "unpaired_vs_peer": 0.9,
                "unpaired_vs_floor": 0.8,
                "peer_round_pair_ratio": ratios(0.97),
                "peer_round_pair_cpu_ratio": ratios(1.04),
                "floor_round_pair_ratio": ratios(0.91),
                "floor_round_pair_cpu_ratio": ratios(1.12),
            },
        });
        let summary = headline(&measured, None);
        assert_eq!(summary["throughput_vs_peer"], 0.97);
        let t = table(&measured, None, &summary);
        let row = |key: &str| table_row(&t, key);
        let peer = row("throughput_vs_peer");
        assert!(
            peer.starts_with("| `throughput_vs_peer` | 0.970 | ≥ 1.00 | **no** |"),
            "{peer}"
        );
        assert!(
            peer.contains("SDK over peer within each round: requests/s 0.970 (p10 0.900"),
            "{peer}"
        );
        assert!(peer.contains("client CPU 1.040 (p10"), "{peer}");
        assert!(peer.contains("ratio of medians 0.900"), "{peer}");
        let floor = row("throughput_vs_floor");
        assert!(
            floor.starts_with("| `throughput_vs_floor` | 0.910 | ≥ 0.95 | **no** |"),
            "{floor}"
        );
        assert!(floor.contains("client CPU 1.120"), "{floor}");
        assert!(floor.contains("ratio of medians 0.800"), "{floor}");
    }

    /// Recovery figures as conduit-bench prints them: a storm the SDK did
    /// not get through in time, a lift it did.
    fn recovery() -> Value {
        let run = |ended: bool, ideal: f64| {
            json!({
                "ended": ended, "calls": 60, "calls_ended": if ended { 60 } else { 53 },
                "succeeded": 53, "rate_limited": 0, "failed_otherwise": 0,
                "requests": 73, "throttled": 20, "longest_call_s": 26.624,
                "gave_up_after_s": 60.0, "recovery_s": if ended { json!(4.5) } else { Value::Null },
                "ideal_s": ideal, "vs_ideal": if ended { json!(1.5) } else { Value::Null },
                "in_flight_at_first_429": 20, "sent_inside_cooldown": 3,
                "requests_per_second_after_lift": [10, 9, 14],
            })
        };
        json!({
            "storm_recovery_s": null, "storm_ideal_s": 2.002, "storm_vs_ideal": null,
            "lift_recovery_s": 4.5, "lift_ideal_s": 3.0, "lift_vs_ideal": 1.5,
            "all_429_bounded_s": 8.25, "all_429_bound_s": 10.0, "timeout_s": 60.0,
            "storm": { "runs": { "sdk": run(false, 2.002), "peer": run(true, 2.0) } },
            "lift": { "runs": { "sdk": run(true, 3.0) } },
            "all_429": { "sdk": {
                "ended": true, "calls": 200, "calls_ended": 200, "succeeded": 0,
                "rate_limited": 200, "failed_otherwise": 0, "requests": 600,
                "throttled": 600, "longest_call_s": 2.1, "bounded_s": 8.25,
                "bound_s": 10.0, "all_rate_limited": true,
            } },
        })
    }

    #[test]
    fn recovery_rows_show_each_time_beside_its_ideal_or_why_there_is_none() {
        let measured = json!({ "recovery": recovery() });
        let summary = headline(&measured, None);
        assert_eq!(summary["lift_vs_ideal"], 1.5);
        assert_eq!(summary["storm_recovery_s"], Value::Null);
        let t = table(&measured, None, &summary);
        let row = |key: &str| table_row(&t, key);
        let storm = row("storm_recovery_s");
        assert!(
            storm.starts_with("| `storm_recovery_s` | not ended in 60 s (53 of 60 calls ended) | ideal `storm_ideal_s` 2.00 s |"),
            "{storm}"
        );
        assert!(storm.contains("3 sent inside the cooldown"), "{storm}");
        let lift = row("lift_recovery_s");
        assert!(
            lift.starts_with("| `lift_recovery_s` | 4.50 s | ideal `lift_ideal_s` 3.00 s |"),
            "{lift}"
        );
        assert!(lift.contains("after the lift: 10, 9, 14 |"), "{lift}");
        let all = row("all_429_bounded_s");
        assert!(
            all.starts_with("| `all_429_bounded_s` | 8.25 s | bound `all_429_bound_s` 10 s |"),
            "{all}"
        );
        assert!(all.contains("every call rate limited: yes"), "{all}");

        let full = recovery_table(&measured);
        assert!(
            full.contains("| storm then open | peer | 4.50 s | 2.00 s | 1.500 |"),
            "{full}"
        );
        assert!(
            full.contains("| always 429 | sdk | 8.25 s | ≤ 10 s (`max_wait`) |"),
            "{full}"
        );
        assert!(
            full.contains(
                "Limit lifted, sdk: requests per second after the lift, in 1 s buckets: 10, 9, 14."
            ),
            "{full}"
        );
    }

    #[test]
    fn the_headline_has_exactly_the_promised_keys() {
        let measured = json!({
            "latency": { "ratio": 1.01 },
            "throughput": { "ratio": 0.9 },
            "retry_after": { "median_ms": 1.5 },
            "rss": { "growth_kb": 0 },
            "codegen": [
                { "operations": 10, "median_ms": 10.0 },
                { "operations": 100, "median_ms": 100.0 },
                { "operations": 500, "median_ms": 500.0 },
            ],
            "limits": {
                "explicit": { "efficiency": 0.98, "throttled_share": 0.0 },
                "adaptive": { "efficiency": 0.86, "throttled_share": 0.2 },
            },
        });
        let quick = headline(&measured, None);
        assert_eq!(quick["adaptive_throttled_share"], 0.2);
        assert_eq!(quick["pacing_efficiency"], 0.98);
        let keys: Vec<&str> = quick
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "latency_ratio",
                "throughput_ratio",
                "latency_vs_peer",
                "throughput_vs_peer",
                "latency_vs_floor",
                "throughput_vs_floor",
                "allocs_per_call",
                "retry_after_error_ms",
                "codegen_ms_10",
                "codegen_ms_100",
                "codegen_ms_500",
                "rss_growth_kb",
                "cold_build_ratio",
                "pacing_efficiency",
                "throttled_share",
                "adaptive_efficiency",
                "adaptive_throttled_share",
                "fleet_throttled_share",
                "fleet_throttled_share_without_redis",
                "storm_recovery_s",
                "storm_ideal_s",
                "storm_vs_ideal",
                "lift_recovery_s",
                "lift_ideal_s",
                "lift_vs_ideal",
                "all_429_bounded_s",
                "all_429_bound_s",
            ]
        );
        assert_eq!(quick["cold_build_ratio"], Value::Null);
        assert_eq!(quick["codegen_ms_100"], 100.0);
        let cold = ColdBuild {
            sdk_s: vec![30.0, 32.0],
            reqwest_s: vec![20.0, 20.0],
        };
        assert_eq!(headline(&measured, Some(&cold))["cold_build_ratio"], 1.55);
        assert_eq!(codegen_exponent(&measured).map(round3), Some(1.0));
    }
}
