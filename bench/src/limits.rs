//! Rate limits under overload: 200 calls from 50 tasks sharing one SDK
//! client, against the server enforcing a sliding window limit, once per
//! mode of the rate-limit gate.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conduit_sdk::{Client, Rate, RateLimiter};
use serde_json::{Value, json};

use crate::measure::{PARAMETER, TOKEN, TOOL_ID};
use crate::server::Server;

/// Calls per run.
pub const CALLS: usize = 200;
/// Tasks sharing the client.
pub const TASKS: usize = 50;
/// The server's limit: this many requests in any [`WINDOW`] (20/s).
pub const LIMIT: usize = 40;
/// The server's sliding window.
pub const WINDOW: Duration = Duration::from_secs(2);
/// The explicit rate, 5 % under the server's limit.
pub const EXPLICIT_PER_SECOND: u32 = 19;

/// What one run did.
#[derive(Debug)]
struct Run {
    succeeded: usize,
    requests: u64,
    throttled: u64,
    /// See [`throttled_after_first_second`].
    throttled_later: usize,
    elapsed: Duration,
}

impl Run {
    fn json(&self, rate: f64) -> Value {
        let per_second = self.succeeded as f64 / self.elapsed.as_secs_f64();
        let share = if self.requests == 0 {
            0.0
        } else {
            self.throttled as f64 / self.requests as f64
        };
        json!({
            "calls": CALLS,
            "succeeded": self.succeeded,
            "requests": self.requests,
            "throttled": self.throttled,
            "throttled_after_first_second": self.throttled_later,
            "elapsed_s": round3(self.elapsed.as_secs_f64()),
            "calls_per_s": round3(per_second),
            "efficiency": round3(per_second / rate),
            "throttled_share": round3(share),
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The three modes under the same overload.
pub async fn limits(base: &str, server: &Server) -> Result<Value, String> {
    let limit_per_second = LIMIT as f64 / WINDOW.as_secs_f64();
    let explicit = Rate::per_second(EXPLICIT_PER_SECOND).ok_or("a zero rate")?;
    let fixed = run(base, server, RateLimiter::fixed(explicit)).await?;
    let adaptive = run(base, server, RateLimiter::adaptive()).await?;
    let disabled = run(base, server, RateLimiter::disabled()).await?;
    Ok(json!({
        "server_limit": format!("{LIMIT} per {} s sliding window ({limit_per_second}/s), Retry-After in whole seconds", WINDOW.as_secs()),
        "calls": CALLS,
        "tasks": TASKS,
        "explicit_rate_per_s": EXPLICIT_PER_SECOND,
        "explicit": fixed.json(f64::from(EXPLICIT_PER_SECOND)),
        "adaptive": adaptive.json(limit_per_second),
        "disabled": disabled.json(limit_per_second),
    }))
}

/// [`CALLS`] calls over [`TASKS`] tasks through one client with `limiter`
/// (default retry policy), the server limiting.
async fn run(base: &str, server: &Server, limiter: RateLimiter) -> Result<Run, String> {
    // A fresh window, after the last run's has emptied.
    tokio::time::sleep(WINDOW).await;
    server.limit(Some((LIMIT, WINDOW)));
    let client = Client::builder()
        .token(TOKEN)
        .base_url(base)
        .rate_limiter(limiter)
        .build()
        .map_err(|e| format!("SDK client: {e}"))?;
    server.set_recording(true);
    let start = Instant::now();
    let succeeded = pull_calls(&client, TASKS, CALLS).await?;
    let elapsed = start.elapsed();
    let (requests, throttled) = server.counts();
    server.limit(None);
    let seen = server
        .recorded_at_least(usize::try_from(requests).unwrap_or(usize::MAX))
        .await;
    server.set_recording(false);
    let answers: Vec<(Instant, u16)> = seen.iter().map(|s| (s.arrived, s.status)).collect();
    Ok(Run {
        succeeded,
        requests,
        throttled,
        throttled_later: throttled_after_first_second(&answers),
        elapsed,
    })
}

/// The 429s to requests that arrived more than a second after the first
/// 429's request, of `answers` (arrival, status). `Retry-After` is at
/// least a second, and the gate holds every call until it has passed once
/// it has seen a 429: these 429s come from pacing, the others from
/// requests sent before the first 429 was answered, which no gate can hold
/// without knowing the limit in advance.
fn throttled_after_first_second(answers: &[(Instant, u16)]) -> usize {
    let throttled = answers.iter().filter(|(_, status)| *status == 429);
    let Some(&(first, _)) = throttled.clone().min_by_key(|(at, _)| *at) else {
        return 0;
    };
    let later = first + Duration::from_secs(1);
    throttled.filter(|(at, _)| *at > later).count()
}

/// `calls` runs of the tool through `client`, pulled by `tasks` tasks from
/// one counter; how many succeeded.
pub async fn pull_calls(client: &Client, tasks: usize, calls: usize) -> Result<usize, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..tasks)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let mut succeeded = 0;
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    let call = client
                        .custom_tools()
                        .run(TOOL_ID)
                        .parameter(PARAMETER.0, PARAMETER.1);
                    succeeded += usize::from(call.send().await.is_ok());
                }
                succeeded
            })
        })
        .collect();
    let mut succeeded = 0;
    for t in tasks {
        succeeded += t.await.map_err(|e| format!("task: {e}"))?;
    }
    Ok(succeeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_429s_more_than_a_second_after_the_first_count_as_later() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let answers = [
            (at(0), 200),
            (at(4), 429),
            (at(2), 429),
            (at(6), 429),
            (at(1_002), 429),
            (at(1_003), 429),
            (at(1_500), 200),
            (at(9_000), 429),
        ];
        // The earliest 429's request arrived at 2 ms, though listed after
        // one at 4 ms: 1,002 ms is on the mark, 1,003 ms past it.
        assert_eq!(throttled_after_first_second(&answers), 2);
        assert_eq!(throttled_after_first_second(&answers[..1]), 0);
        assert_eq!(throttled_after_first_second(&[]), 0);
    }
}
