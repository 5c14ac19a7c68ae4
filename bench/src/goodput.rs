//! Goodput under a steady limit: the same calls from many tasks through
//! each client, the server enforcing [`LIMIT`] per [`WINDOW`] throughout
//! (`steady`), or a token bucket of the same rate (`bucket`).

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::scenario::{Caller, Kind, LIMIT, WINDOW, compared, drive, limit_per_second};
use crate::server::Server;

/// Tasks sharing each client.
pub const TASKS: usize = 50;
/// How long a call may wait in all: the SDK's default `max_wait`, and the
/// budget the peer's and naive retries get.
pub const BUDGET: Duration = Duration::from_secs(60);

/// Every client through `calls` calls against a fresh window.
pub async fn steady(server: &Server, calls: usize) -> Result<Value, String> {
    let limit = || server.limit(Some((LIMIT, WINDOW)));
    let mut out = each_client(server, calls, "steady limit", limit).await?;
    out["server"] = json!(format!(
        "{LIMIT} per {} s sliding window ({}/s), Retry-After in whole seconds",
        WINDOW.as_secs(),
        limit_per_second()
    ));
    Ok(out)
}

/// Every client through `calls` calls against a full token bucket of
/// [`LIMIT`] filling at the limit's rate: a server that does not count in
/// windows, which the adaptive client must not take for one.
pub async fn bucket(server: &Server, calls: usize) -> Result<Value, String> {
    let bucket = || server.bucket(limit_per_second(), LIMIT);
    let mut out = each_client(server, calls, "token bucket", bucket).await?;
    out["server"] = json!(format!(
        "a token bucket of {LIMIT} filling at {}/s, Retry-After in whole seconds",
        limit_per_second()
    ));
    Ok(out)
}

/// Each client's run of `calls` calls, the server's rule set by `rule`
/// before each and lifted after.
async fn each_client(
    server: &Server,
    calls: usize,
    what: &str,
    rule: impl Fn(),
) -> Result<Value, String> {
    let mut runs = Map::new();
    for kind in Kind::ALL {
        eprintln!("conduit-bench: {what} ({})", kind.name());
        let caller = Caller::new(kind, &server.url(), BUDGET, None)?;
        // The last run's limit is spent first.
        tokio::time::sleep(WINDOW).await;
        rule();
        let run = drive(server, &caller, TASKS, calls).await;
        server.limit(None);
        run.progress();
        let mut m = run.figures(Some(limit_per_second()));
        m.insert(
            "throttled_share_after_first_window".into(),
            json!(run.throttled_share_after_first_window()),
        );
        runs.insert(kind.name().into(), Value::Object(m));
    }
    let mut out = compared(runs);
    out["calls"] = json!(calls);
    out["tasks"] = json!(TASKS);
    out["budget_s"] = json!(BUDGET.as_secs());
    Ok(out)
}
