//! Goodput under a steady limit: the same calls from many tasks through
//! each client, the server enforcing [`LIMIT`] per [`WINDOW`] throughout.

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
    let mut runs = Map::new();
    for kind in Kind::ALL {
        eprintln!("conduit-bench: steady limit ({})", kind.name());
        let caller = Caller::new(kind, &server.url(), BUDGET, None)?;
        // The last run's window empties first.
        tokio::time::sleep(WINDOW).await;
        server.limit(Some((LIMIT, WINDOW)));
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
    out["server"] = json!(format!(
        "{LIMIT} per {} s sliding window ({}/s), Retry-After in whole seconds",
        WINDOW.as_secs(),
        limit_per_second()
    ));
    out["calls"] = json!(calls);
    out["tasks"] = json!(TASKS);
    out["budget_s"] = json!(BUDGET.as_secs());
    Ok(out)
}
