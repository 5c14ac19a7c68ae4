//! What the numbers were measured on.

use std::process::Command;

use crate::children;

/// What the numbers were measured on.
pub(super) struct Machine {
    /// `nproc`.
    pub(super) nproc: String,
    /// The CPU model, from `/proc/cpuinfo`.
    pub(super) cpu: String,
    /// `rustc -V`.
    pub(super) rustc: String,
    /// The kernel release.
    pub(super) kernel: String,
    /// Total memory, in GiB.
    pub(super) memory: String,
    /// When the numbers were taken, in UTC.
    pub(super) date: String,
    /// Load averages before the command ran.
    pub(super) load_before: String,
    /// Load averages after it ran.
    pub(super) load_after: String,
}

impl Machine {
    /// Reads the machine's description; the load averages are taken by the caller.
    pub(super) fn probe(load_before: String, load_after: String) -> Self {
        let command = |program: &str, args: &[&str]| {
            children::output(Command::new(program).args(args))
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
pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
