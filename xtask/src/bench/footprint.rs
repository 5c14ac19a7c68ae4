//! `cargo xtask bench --footprint`: the code each client runs per call,
//! counted by callgrind: consecutive runs of one build agree within about
//! 5 lines of code, where the wall clock moves by a point from batch to
//! batch.
//!
//! On these machines a call's latency follows how much distinct code it
//! runs more than how many instructions: between calls the kernel, the
//! server and other guests evict the client's code from the L1 cache, so
//! every 64-byte line of code a call runs is fetched again. The wall clock
//! cannot resolve a change of a few dozen lines; this count can.
//!
//! Each client runs under callgrind (`conduit-bench --calls-only`) with
//! [`SHORT`] and with [`LONG`] calls after the same warm-up; the
//! difference between the two runs is the calls' own work, with startup
//! cancelled:
//! - instructions per call: the difference of the totals;
//! - code lines per call: the 64-byte lines of code the extra calls ran,
//!   each counted by the share of calls that ran it (at most once per
//!   call, however often a loop ran it). The runtime's scheduling and
//!   wake-up paths are left out of this count: which of them run depends
//!   on how valgrind interleaves the threads, and they are the same code
//!   for every client.
//!
//! A process now and then takes other paths throughout (a hash seed, which
//! thread a connection's task settled on), so each client is measured
//! [`PAIRS`] times and the median reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::report::round3;
use crate::children;

/// The calls of the shorter and the longer run.
const SHORT: u64 = 300;
const LONG: u64 = 1_300;

/// How many pairs of runs each client's median is taken over.
const PAIRS: usize = 3;

/// Functions of the runtime's scheduling and wake-up paths, by name.
const SCHEDULING: &[&str] = &[
    "tokio::runtime::scheduler",
    "tokio::runtime::park",
    "tokio::runtime::driver",
    "tokio::runtime::io",
    "tokio::runtime::time",
    "tokio::runtime::task::harness",
    "tokio::runtime::task::raw",
    "tokio::runtime::task::state",
    "tokio::runtime::task::waker",
    "tokio::loom",
    "Idle::",
    "parking",
    "Parker",
    "notify",
    "wake",
    "futex",
    "epoll",
    "std::sys::sync",
];

/// The clients compared, in the order printed.
const CLIENTS: [&str; 3] = ["floor", "peer", "sdk"];

/// Runs the comparison with the built `bench` binary; its figures as JSON.
pub(super) fn footprint(bench: &Path) -> Result<Value, String> {
    check_valgrind()?;
    let dir = std::env::temp_dir().join(format!("conduit-footprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let measured = CLIENTS
        .iter()
        .map(|&client| {
            let pairs = (0..PAIRS)
                .map(|_| {
                    let short = profile(bench, &dir, client, SHORT)?;
                    let long = profile(bench, &dir, client, LONG)?;
                    Ok(PerCall::between(&short, &long, LONG - SHORT))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok((client, PerCall::median(&pairs)))
        })
        .collect::<Result<Vec<_>, String>>();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report(&measured?))
}

/// What one call runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PerCall {
    pub(super) instructions: f64,
    pub(super) code_lines: f64,
}

impl PerCall {
    /// The work of `calls` calls: what `long` ran more than `short`.
    pub(super) fn between(short: &Profile, long: &Profile, calls: u64) -> Self {
        // The most any instruction of each line ran in the extra calls.
        let mut lines: HashMap<(usize, u64), u64> = HashMap::new();
        for (&(object, address), &n) in &long.counts {
            let before = short.counts.get(&(object, address)).copied().unwrap_or(0);
            let line = lines.entry((object, address / 64)).or_default();
            *line = (*line).max(n.saturating_sub(before));
        }
        Self {
            instructions: long.total.saturating_sub(short.total) as f64 / calls as f64,
            code_lines: lines
                .values()
                .map(|&n| (n as f64 / calls as f64).min(1.0))
                .sum(),
        }
    }

    /// Each figure's median over `runs` (not empty).
    fn median(runs: &[PerCall]) -> PerCall {
        let of = |f: fn(&PerCall) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        PerCall {
            instructions: of(|m| m.instructions),
            code_lines: of(|m| m.code_lines),
        }
    }
}

/// One callgrind run: its total instructions, and how often each
/// instruction outside [`SCHEDULING`] ran, by object and address.
#[derive(Debug, Default)]
pub(super) struct Profile {
    total: u64,
    counts: HashMap<(usize, u64), u64>,
}

impl Profile {
    /// Reads callgrind's output, written with `--dump-instr=yes
    /// --compress-pos=no --compress-strings=no`.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let mut profile = Profile::default();
        let mut objects: Vec<&str> = Vec::new();
        let mut object = 0;
        let mut counted = true;
        let mut after_call = false;
        for line in text.lines() {
            if std::mem::take(&mut after_call) {
                // The inclusive cost of the call above: not this function's.
                continue;
            }
            if let Some(name) = line.strip_prefix("ob=") {
                object = objects.iter().position(|o| *o == name).unwrap_or_else(|| {
                    objects.push(name);
                    objects.len() - 1
                });
            } else if let Some(name) = line.strip_prefix("fn=") {
                counted = !SCHEDULING.iter().any(|s| name.contains(s));
            } else if line.starts_with("calls=") {
                after_call = true;
            } else if let Some(total) = line.strip_prefix("summary:") {
                profile.total = total
                    .trim()
                    .parse()
                    .map_err(|_| format!("callgrind summary {total:?} is not a number"))?;
            } else if let Some(rest) = line.strip_prefix("0x") {
                let mut fields = rest.split_whitespace();
                let (Some(address), Some(count)) = (fields.next(), fields.next()) else {
                    return Err(format!("callgrind cost line {line:?} has no count"));
                };
                let address = u64::from_str_radix(address, 16)
                    .map_err(|_| format!("callgrind cost line {line:?}: bad address"))?;
                let count: u64 = count
                    .parse()
                    .map_err(|_| format!("callgrind cost line {line:?}: bad count"))?;
                if counted {
                    *profile.counts.entry((object, address)).or_default() += count;
                }
            }
        }
        if profile.total == 0 {
            return Err("callgrind's output has no summary line".to_owned());
        }
        Ok(profile)
    }
}

fn check_valgrind() -> Result<(), String> {
    match children::output(Command::new("valgrind").arg("--version")) {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err(
            "--footprint runs the clients under valgrind's callgrind, and valgrind is \
                  not installed (apt-get install valgrind)"
                .to_owned(),
        ),
    }
}

/// `client`'s `calls` calls under callgrind.
fn profile(bench: &Path, dir: &Path, client: &str, calls: u64) -> Result<Profile, String> {
    eprintln!("== callgrind: {client}, {calls} calls");
    let out: PathBuf = dir.join(format!("{client}-{calls}.callgrind"));
    let output = children::output(
        Command::new("valgrind")
            .args([
                "--tool=callgrind",
                "--dump-instr=yes",
                "--dump-line=no",
                "--compress-pos=no",
                "--compress-strings=no",
            ])
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(bench)
            .args(["--calls-only", &calls.to_string()])
            .env("CONDUIT_BENCH_ONLY", client),
    )
    .map_err(|e| format!("valgrind: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "conduit-bench under callgrind failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    Profile::parse(&text)
}

/// The figures and the SDK's ratios to the peer and the floor.
fn report(measured: &[(&str, PerCall)]) -> Value {
    let of = |name: &str| measured.iter().find(|(c, _)| *c == name).map(|(_, m)| *m);
    let ratio = |a: f64, b: f64| round3(a / b);
    let clients: serde_json::Map<String, Value> = measured
        .iter()
        .map(|(client, m)| {
            let figures = json!({
                "instructions_per_call": m.instructions.round() as u64,
                "code_lines_per_call": m.code_lines.round() as u64,
            });
            ((*client).to_owned(), figures)
        })
        .collect();
    let mut value = json!({ "calls": LONG - SHORT, "clients": clients });
    if let (Some(sdk), Some(peer), Some(floor)) = (of("sdk"), of("peer"), of("floor")) {
        value["code_lines_vs_peer"] = json!(ratio(sdk.code_lines, peer.code_lines));
        value["code_lines_vs_floor"] = json!(ratio(sdk.code_lines, floor.code_lines));
        value["instructions_vs_peer"] = json!(ratio(sdk.instructions, peer.instructions));
        value["instructions_vs_floor"] = json!(ratio(sdk.instructions, floor.instructions));
    }
    value
}

/// The figures as a table.
pub(super) fn table(value: &Value) -> String {
    let mut out = format!(
        "Code run per call (callgrind; {} calls, startup cancelled)\n\n\
         | client | code lines (64 B) per call | instructions per call |\n\
         | --- | ---: | ---: |\n",
        value["calls"]
    );
    for client in CLIENTS {
        let c = &value["clients"][client];
        out += &format!(
            "| {client} | {} | {} |\n",
            c["code_lines_per_call"], c["instructions_per_call"]
        );
    }
    out += &format!(
        "\nSDK over the peer: code lines {}, instructions {}; over the floor: {}, {}\n",
        value["code_lines_vs_peer"],
        value["instructions_vs_peer"],
        value["code_lines_vs_floor"],
        value["instructions_vs_floor"]
    );
    out
}

/// BENCHMARKS.md's section on the code run per call: the table, or why
/// this run has none.
pub(super) fn section(measured: &Result<Value, String>) -> String {
    let body = match measured {
        Ok(value) => table(value),
        Err(e) => format!("Not measured in this run: {e}\n"),
    };
    format!(
        "## Code run per call\n\n\
         Diagnostic, not a goal, and the steadiest figure here: consecutive \
         runs of one build agree within about 5 lines, though a client has read \
         up to about 35 lines apart between runs hours apart. Each client runs \
         {SHORT} and then \
         {LONG} calls under valgrind's callgrind (`cargo xtask bench --footprint`), \
         {PAIRS} times, the median reported; the difference is the calls' own \
         work. A code line is 64 bytes of code, counted by the share of calls \
         that run it (the runtime's scheduling paths left out, as they vary \
         with how valgrind interleaves threads). On this machine a \
         call's latency follows these lines more than its instructions: the \
         client's code does not stay in the L1 cache from one call to the \
         next (bench/PROFILING.md, tenth pass).\n\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A callgrind file with instructions in `main` (one line of code at
    /// 0x1000-0x103f, another at 0x1040) and a scheduler function.
    fn callgrind(main_count: u64, total: u64) -> String {
        format!(
            "version: 1\npositions: instr\nevents: Ir\nsummary: {total}\n\n\
             ob=/bin/app\nfl=???\nfn=main\n\
             0x1000 {main_count}\n0x1008 {main_count}\n0x1040 {main_count}\n\
             0x1080 1\n\
             cfn=helper\ncalls={main_count} 0x2000\n0x1010 {big}\n\
             fn=tokio::runtime::scheduler::multi_thread::worker::run\n0x3000 {main_count}\n\
             ob=/lib/libc.so\nfn=memcpy\n0x1000 {main_count}\n",
            big = main_count * 1000
        )
    }

    #[test]
    fn a_profile_counts_each_instruction_once_by_object_and_leaves_out_scheduling() {
        let p = Profile::parse(&callgrind(7, 5_000)).unwrap();
        assert_eq!(p.total, 5_000);
        // The call's inclusive cost (0x1010) is not an instruction of main.
        assert_eq!(p.counts.get(&(0, 0x1010)), None);
        assert_eq!(p.counts.get(&(0, 0x1000)), Some(&7));
        // The same address in another object is another instruction.
        assert_eq!(p.counts.get(&(1, 0x1000)), Some(&7));
        assert_eq!(
            p.counts.get(&(0, 0x3000)),
            None,
            "scheduler code is left out"
        );
    }

    #[test]
    fn per_call_figures_are_the_difference_between_two_runs() {
        let short = Profile::parse(&callgrind(100, 1_000_000)).unwrap();
        let long = Profile::parse(&callgrind(1_100, 1_600_000)).unwrap();
        let m = PerCall::between(&short, &long, 1_000);
        assert_eq!(m.instructions, 600.0);
        // 0x1000 and 0x1008 share a line; 0x1040 is the next; libc's is a
        // third; 0x1080 ran once in each run, not in the calls.
        assert_eq!(m.code_lines, 3.0);
        // Lines run on 40 % of the extra calls count 0.4 each.
        let some = Profile::parse(&callgrind(500, 1_600_000)).unwrap();
        assert!((PerCall::between(&short, &some, 1_000).code_lines - 1.2).abs() < 1e-9);
        // A loop's line counts once per call, however often it ran.
        let looped = Profile::parse(&callgrind(5_100, 1_600_000)).unwrap();
        assert_eq!(PerCall::between(&short, &looped, 1_000).code_lines, 3.0);
    }

    #[test]
    fn the_median_is_taken_figure_by_figure() {
        let m = |instructions, code_lines| PerCall {
            instructions,
            code_lines,
        };
        let runs = [m(3.0, 100.0), m(1.0, 330.0), m(2.0, 101.0)];
        assert_eq!(PerCall::median(&runs), m(2.0, 101.0));
    }

    #[test]
    fn the_report_section_shows_the_table_or_why_there_is_none() {
        let m = |code_lines| PerCall {
            instructions: 1.0,
            code_lines,
        };
        let v = report(&[("floor", m(1.0)), ("peer", m(2.0)), ("sdk", m(3.0))]);
        let with = section(&Ok(v));
        assert!(with.starts_with("## Code run per call"), "{with}");
        assert!(with.contains("| sdk | 3 | 1 |"), "{with}");
        let without = section(&Err("valgrind is not installed".into()));
        assert!(
            without.contains("Not measured in this run: valgrind is not installed"),
            "{without}"
        );
    }

    #[test]
    fn broken_output_is_an_error_not_zero() {
        assert!(
            Profile::parse("events: Ir\n0x1000 3\n").is_err(),
            "no summary"
        );
        assert!(Profile::parse("summary: 9\nob=a\nfn=f\n0x1000\n").is_err());
        assert!(Profile::parse("summary: 9\nob=a\nfn=f\n0xzz 3\n").is_err());
    }

    #[test]
    fn the_report_gives_the_sdk_against_the_peer_and_the_floor() {
        let m = |instructions, code_lines| PerCall {
            instructions,
            code_lines,
        };
        let v = report(&[
            ("floor", m(100_000.0, 2_000.0)),
            ("peer", m(110_000.0, 2_500.0)),
            ("sdk", m(105_000.0, 3_000.4)),
        ]);
        assert_eq!(v["code_lines_vs_peer"], 1.2);
        assert_eq!(v["code_lines_vs_floor"], 1.5);
        assert_eq!(v["instructions_vs_peer"], 0.955);
        assert_eq!(v["clients"]["sdk"]["code_lines_per_call"], 3_000);
        let t = table(&v);
        assert!(t.contains("| sdk | 3000 | 105000 |"), "{t}");
    }
}
