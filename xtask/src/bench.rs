//! `cargo xtask bench [--quick] [--json]`: runs the `conduit-bench` binary in
//! release, times cold builds of a tiny app against the SDK and against bare
//! reqwest (full mode only), writes `BENCHMARKS.md` and, with `--json`,
//! prints one JSON object with the headline numbers as the last stdout line.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::{cargo, root};

/// The report file, at the workspace root.
const REPORT: &str = "BENCHMARKS.md";

/// Cold builds per app in full mode, alternated (reqwest app, SDK app, ...).
const COLD_BUILD_ROUNDS: usize = 2;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut quick = false;
    let mut json_out = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--json" => json_out = true,
            other => {
                return Err(format!(
                    "`cargo xtask bench` takes --quick and --json (got {other})"
                ));
            }
        }
    }
    let root = root();
    let started = Instant::now();
    let load_before = load_average();

    eprintln!("== build conduit-bench (release)");
    let build_started = Instant::now();
    let status = cargo()
        .args(["build", "--release", "-p", "conduit-bench"])
        .current_dir(&root)
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("building conduit-bench failed ({status})"));
    }
    let build_s = build_started.elapsed().as_secs_f64();

    eprintln!(
        "== run conduit-bench{}",
        if quick { " --quick" } else { "" }
    );
    let run_started = Instant::now();
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "--release", "-p", "conduit-bench", "--"]);
    if quick {
        cmd.arg("--quick");
    }
    let output = cmd
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo run -p conduit-bench: {e}"))?;
    if !output.status.success() {
        return Err(format!("conduit-bench failed ({})", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let measured: Value = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or("conduit-bench printed nothing")
        .and_then(|l| serde_json::from_str(l).map_err(|_| "conduit-bench's last line is not JSON"))
        .map_err(|e| format!("{e}; its output was:\n{stdout}"))?;
    let run_s = run_started.elapsed().as_secs_f64();

    let cold = if quick {
        None
    } else {
        eprintln!("== cold builds (fresh directories and target dirs, --offline)");
        Some(cold_builds(&root))
    };
    let load_after = load_average();

    let summary = headline(&measured, cold.as_ref().and_then(|c| c.as_ref().ok()));
    let machine = Machine::probe(load_before, load_after);
    let timing = Timing {
        build_s,
        run_s,
        total_s: started.elapsed().as_secs_f64(),
    };
    let report = render(&measured, cold.as_ref(), &summary, &machine, &timing, quick);
    let path = root.join(REPORT);
    std::fs::write(&path, report).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());

    if !json_out {
        println!("{}", table(&measured, cold.as_ref(), &summary));
    }
    if json_out {
        println!("{summary}");
    }
    match cold {
        Some(Err(e)) => Err(format!(
            "the cold build comparison failed (reported as null): {e}"
        )),
        _ => Ok(()),
    }
}

/// The headline numbers, exactly the keys `--json` promises.
fn headline(m: &Value, cold: Option<&ColdBuild>) -> Value {
    let codegen = |ops: u64| {
        m["codegen"]
            .as_array()
            .and_then(|sizes| sizes.iter().find(|s| s["operations"] == ops))
            .map_or(Value::Null, |s| s["median_ms"].clone())
    };
    json!({
        "latency_ratio": m["latency"]["ratio"],
        "throughput_ratio": m["throughput"]["ratio"],
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
    })
}

/// Cold build times of the two tiny apps, in seconds.
struct ColdBuild {
    sdk_s: Vec<f64>,
    reqwest_s: Vec<f64>,
}

impl ColdBuild {
    fn ratio(&self) -> f64 {
        median(&self.sdk_s) / median(&self.reqwest_s)
    }
}

const SDK_APP_MAIN: &str = r#"//! Runs one custom tool through conduit-sdk.

#[tokio::main]
async fn main() {
    let client = conduit_sdk::Client::builder()
        .token(std::env::var("CONDUIT_API_TOKEN").unwrap_or_else(|_| "token".into()))
        .base_url("http://127.0.0.1:4010")
        .build()
        .expect("client");
    match client
        .custom_tools()
        .run("kg77c0dy0mgdpzmqz6tesry8w184002s")
        .parameter("order_id", "ord_12345")
        .send()
        .await
    {
        Ok(run) => println!("{:?}", run.message()),
        Err(e) => eprintln!("{e}"),
    }
}
"#;

const REQWEST_APP_MAIN: &str = r#"//! Runs one custom tool with reqwest.

#[derive(Debug, serde::Deserialize)]
struct RunResponse {
    data: RunData,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct RunData {
    success: bool,
    message: Option<String>,
    result: serde_json::Value,
    error: Option<String>,
    logs: Option<String>,
    run_time_ms: f64,
}

async fn run() -> reqwest::Result<RunData> {
    let token = std::env::var("CONDUIT_API_TOKEN").unwrap_or_else(|_| "token".into());
    let response = reqwest::Client::new()
        .post("http://127.0.0.1:4010/v1/custom-tools/kg77c0dy0mgdpzmqz6tesry8w184002s/run")
        .bearer_auth(token)
        .json(&serde_json::json!({ "parameters": { "order_id": "ord_12345" } }))
        .send()
        .await?
        .error_for_status()?;
    Ok(response.json::<RunResponse>().await?.data)
}

#[tokio::main]
async fn main() {
    match run().await {
        Ok(run) => println!("{:?}", run.message),
        Err(e) => eprintln!("{e}"),
    }
}
"#;

/// The two apps: (name, Cargo.toml, src/main.rs).
fn apps(root: &Path) -> [(&'static str, String, &'static str); 2] {
    let package = |name: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             # Not part of any enclosing workspace.\n[workspace]\n\n[dependencies]\n"
        )
    };
    let tokio = "tokio = { version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }\n";
    let sdk = format!(
        "{}conduit-sdk = {{ path = {:?} }}\n{tokio}",
        package("cold-sdk-app"),
        root.join("conduit-sdk").display().to_string(),
    );
    // The workspace's reqwest features (see the root Cargo.toml).
    let reqwest = format!(
        "{}reqwest = {{ version = \"0.13\", default-features = false, features = [\"json\", \"rustls\"] }}\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\n{tokio}",
        package("cold-reqwest-app"),
    );
    [
        ("reqwest", reqwest, REQWEST_APP_MAIN),
        ("sdk", sdk, SDK_APP_MAIN),
    ]
}

/// A cargo command for a scratch app: its own target dir, whatever the
/// environment says.
fn app_cargo(dir: &Path) -> Command {
    let mut cmd = cargo();
    cmd.current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    cmd
}

fn cold_builds(root: &Path) -> Result<ColdBuild, String> {
    let scratch = std::env::temp_dir().join(format!("conduit-bench-cold-{}", std::process::id()));
    let result = cold_builds_in(root, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn cold_builds_in(root: &Path, scratch: &Path) -> Result<ColdBuild, String> {
    let io = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    let mut dirs: Vec<(&str, PathBuf)> = Vec::new();
    for (name, manifest, main) in apps(root) {
        let dir = scratch.join(name);
        std::fs::create_dir_all(dir.join("src")).map_err(|e| io(&dir, e))?;
        std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| io(&dir, e))?;
        std::fs::write(dir.join("src/main.rs"), main).map_err(|e| io(&dir, e))?;
        // Start from the workspace's lock file, so both apps build the same
        // versions of shared crates as the workspace (unused entries are
        // dropped by cargo).
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).map_err(|e| io(&dir, e))?;
        let fetch = app_cargo(&dir)
            .arg("fetch")
            .output()
            .map_err(|e| format!("cargo fetch: {e}"))?;
        if !fetch.status.success() {
            return Err(format!(
                "cargo fetch for the {name} app failed:\n{}",
                tail(&fetch.stderr, 20)
            ));
        }
        dirs.push((name, dir));
    }
    let mut cold = ColdBuild {
        sdk_s: Vec::new(),
        reqwest_s: Vec::new(),
    };
    for round in 1..=COLD_BUILD_ROUNDS {
        for (name, dir) in &dirs {
            let _ = std::fs::remove_dir_all(dir.join("target"));
            let started = Instant::now();
            let build = app_cargo(dir)
                .args(["build", "--offline"])
                .output()
                .map_err(|e| format!("cargo build: {e}"))?;
            let seconds = started.elapsed().as_secs_f64();
            if !build.status.success() {
                return Err(format!(
                    "cargo build --offline of the {name} app failed:\n{}",
                    tail(&build.stderr, 30)
                ));
            }
            eprintln!("  round {round}: {name} app built in {seconds:.1} s");
            if *name == "sdk" {
                cold.sdk_s.push(seconds);
            } else {
                cold.reqwest_s.push(seconds);
            }
        }
    }
    Ok(cold)
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What the numbers were measured on.
struct Machine {
    nproc: String,
    cpu: String,
    rustc: String,
    kernel: String,
    memory: String,
    date: String,
    load_before: String,
    load_after: String,
}

impl Machine {
    fn probe(load_before: String, load_after: String) -> Self {
        let command = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, v)| v.trim().to_owned());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let kb: f64 = m
                    .lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                Some(format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            })
            .unwrap_or_else(|| "unknown".into());
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        Self {
            nproc: command("nproc", &[]).unwrap_or_else(|| {
                std::thread::available_parallelism().map_or("unknown".into(), |n| n.to_string())
            }),
            cpu,
            rustc: command(&rustc, &["-V"]).unwrap_or_else(|| "unknown".into()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |k| format!("Linux {}", k.trim())),
            memory,
            date: command("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
                .unwrap_or_else(|| "unknown".into()),
            load_before,
            load_after,
        }
    }
}

/// The 1-, 5- and 15-minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

struct Timing {
    build_s: f64,
    run_s: f64,
    total_s: f64,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn round3(x: f64) -> f64 {
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

/// The results table (also printed without `--json`).
fn table(m: &Value, cold: Option<&Result<ColdBuild, String>>, summary: &Value) -> String {
    let mut t = String::new();
    t.push_str("| metric | result | goal | met | median and spread |\n");
    t.push_str("| --- | --- | --- | --- | --- |\n");
    let lat = &m["latency"];
    let latency_ratio = num(&summary["latency_ratio"]);
    let _ = writeln!(
        t,
        "| `latency_ratio` | {} | ≤ 1.05 | {} | SDK {}; baseline {}; {} alternated pairs |",
        fmt(latency_ratio, 3),
        verdict(latency_ratio.is_finite().then_some(latency_ratio <= 1.05)),
        spread(&lat["sdk_us"], 1, " µs"),
        spread(&lat["baseline_us"], 1, " µs"),
        fmt(num(&lat["pairs"]), 0),
    );
    let tp = &m["throughput"];
    let throughput_ratio = num(&summary["throughput_ratio"]);
    let _ = writeln!(
        t,
        "| `throughput_ratio` | {} | ≥ 0.95 | {} | SDK {}; baseline {}; {} rounds each of {} requests, {} in flight; client CPU per request: SDK {} µs, baseline {} µs (ratio {}) |",
        fmt(throughput_ratio, 3),
        verdict(
            throughput_ratio
                .is_finite()
                .then_some(throughput_ratio >= 0.95)
        ),
        spread(&tp["sdk_rps"], 0, " req/s"),
        spread(&tp["baseline_rps"], 0, " req/s"),
        tp["rounds"],
        fmt(num(&tp["requests_per_round"]), 0),
        tp["concurrency"],
        fmt(num(&tp["sdk_client_cpu_us"]["median"]), 1),
        fmt(num(&tp["baseline_client_cpu_us"]["median"]), 1),
        fmt(num(&tp["client_cpu_ratio"]), 3),
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
    if let Some(e) = exponent {
        let _ = writeln!(
            t,
            "\nCode generation scales as n^{:.2} between the smallest and largest spec (1.00 is linear; \"near linear\" is read as ≤ 1.25).",
            e
        );
    }
    t
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
    t.push_str("| gate mode | calls succeeded | 429s / requests | 429 share | calls/s | time |\n");
    t.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for (name, run) in [
        ("adaptive (default)", "adaptive"),
        ("explicit rate, 5 % under the limit", "explicit"),
        ("disabled (each call retries alone)", "disabled"),
    ] {
        let r = &l[run];
        let _ = writeln!(
            t,
            "| {name} | {} of {} | {} / {} | {} | {} | {} s |",
            r["succeeded"],
            r["calls"],
            r["throttled"],
            r["requests"],
            fmt(num(&r["throttled_share"]), 3),
            fmt(num(&r["calls_per_s"]), 1),
            fmt(num(&r["elapsed_s"]), 1),
        );
    }
    t
}

fn breakdown_table(m: &Value) -> String {
    let mut t = String::new();
    t.push_str("| layer | latency median | latency ÷ paired baseline | req/s median (64 in flight) | req/s ÷ baseline | client CPU per request | CPU ÷ baseline |\n");
    t.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
    for row in m["breakdown"]["layers"].as_array().into_iter().flatten() {
        let _ = writeln!(
            t,
            "| {} | {} µs | {} | {} | {} | {} µs | {} |",
            row["layer"].as_str().unwrap_or_default(),
            fmt(num(&row["latency_us"]["median"]), 1),
            fmt(num(&row["latency_ratio"]), 3),
            fmt(num(&row["rps"]["median"]), 0),
            fmt(num(&row["throughput_ratio"]), 3),
            fmt(num(&row["client_cpu_us"]["median"]), 2),
            fmt(num(&row["client_cpu_ratio"]), 3),
        );
    }
    t
}

fn render(
    m: &Value,
    cold: Option<&Result<ColdBuild, String>>,
    summary: &Value,
    machine: &Machine,
    timing: &Timing,
    quick: bool,
) -> String {
    let mode = if quick {
        "quick run, `--quick`"
    } else {
        "full run"
    };
    let lat = &m["latency"];
    let tp = &m["throughput"];
    let bd = &m["breakdown"];
    let mut r = String::new();
    let _ = write!(
        r,
        "# Benchmarks

Written by `cargo xtask bench` ({mode}, {date}); rerun it to refresh
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
- **`latency_ratio`**: {warmup} untimed pairs, then {pairs} sequential
  pairs alternated SDK, baseline, SDK, baseline…, each call timed with
  `Instant`; median SDK ÷ median baseline.
- **`throughput_ratio`**: {concurrency} tasks share one client and pull
  from a counter until {requests} requests are done; requests/s of the
  round. One untimed round per client opens the pools' connections, then
  {rounds} timed rounds each, alternated; median ÷ median. The client CPU per
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
  of the run's requests.
- Each run: {limits_calls} calls from {limits_tasks} tasks sharing one client
  with the default retry policy (2 retries), the server enforcing a fresh
  window; a call counts as succeeded when it returned `Ok`.

## Where the SDK's overhead goes

Diagnostic, not a goal: the same request through each layer the SDK adds
(`bench/src/breakdown.rs`). Latency: each layer alternated with the baseline
for {bd_seq} pairs per round, {bd_rounds} rounds, ratio to the baseline calls
it was paired with (on this shared machine these latency ratios move by up to
±10 % from run to run; the CPU column is the steadier one).
Throughput: one burst of {bd_req} requests per layer per round, in rotation.

{breakdown}
Reproduce: `cargo xtask bench` (full, writes this file) or
`cargo xtask bench --quick --json` (under 3 minutes once `conduit-bench` is
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
        bd_seq = fmt(num(&bd["sequential_per_round"]), 0),
        bd_rounds = bd["rounds"],
        bd_req = fmt(num(&bd["requests_per_burst"]), 0),
        breakdown = breakdown_table(m),
        limits_setup = m["limits"]["server_limit"]
            .as_str()
            .map_or(String::new(), |s| format!("Server: {s}.")),
        limits_table = limits_table(m),
        explicit_rate = m["limits"]["explicit_rate_per_s"],
        limits_calls = m["limits"]["calls"],
        limits_tasks = m["limits"]["tasks"],
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_rounded() {
        assert_eq!(fmt(1234567.891, 1), "1,234,567.9");
        assert_eq!(fmt(999.0, 0), "999");
        assert_eq!(fmt(-1234.5, 2), "-1,234.50");
        assert_eq!(fmt(f64::NAN, 1), "n/a");
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
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
