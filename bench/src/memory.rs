//! Resident memory: its growth over a long run of calls, and what each
//! distinct workspace a client talks to keeps (the gate holds a partition
//! per workspace until it has been idle for two minutes).

use serde_json::{Value, json};

use crate::Config;
use crate::overhead::{Clients, Which};

/// `VmRSS` of this process, in KiB.
pub fn rss_kb() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/self/status".into())
}

/// Both readings, each on a fresh SDK client.
pub async fn memory(base: &str, config: &Config) -> Result<Value, String> {
    let warm = config.rss_calls / 10;
    let clients = Clients::new(base)?;
    for _ in 0..warm {
        clients.run(Which::Sdk).await?;
    }
    let first = rss_kb()?;
    for _ in 0..config.rss_calls {
        clients.run(Which::Sdk).await?;
    }
    let last = rss_kb()?;

    let sdk = Clients::new(base)?.sdk;
    let list = |workspace: String| {
        let sdk = sdk.clone();
        async move {
            sdk.agents()
                .list()
                .workspace_id(workspace)
                .send()
                .await
                .map(drop)
                .map_err(|e| format!("SDK list call: {e}"))
        }
    };
    for _ in 0..warm {
        list("ws_warm".into()).await?;
    }
    let before = rss_kb()?;
    for i in 0..config.workspaces {
        list(format!("ws_bench_{i}")).await?;
    }
    let after = rss_kb()?;
    let per_workspace = (after as f64 - before as f64) * 1024.0 / config.workspaces as f64;
    Ok(json!({
        "warm_calls": warm,
        "calls": config.rss_calls,
        "after_warm_kb": first,
        "after_calls_kb": last,
        "growth_kb": last as i64 - first as i64,
        "workspaces": config.workspaces,
        "workspaces_growth_kb": after as i64 - before as i64,
        "per_workspace_bytes": per_workspace.round(),
    }))
}
