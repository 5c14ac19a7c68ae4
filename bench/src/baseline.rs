//! The request every client sends, and the clients the SDK is set beside:
//! the floor (the request by hand with reqwest, the SDK's timeouts), the
//! peer (reqwest-middleware + reqwest-retry, what an application would use
//! instead of the SDK) and naive reqwest that waits out each `Retry-After`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// The tool id every request names.
pub const TOOL_ID: &str = "kg77c0dy0mgdpzmqz6tesry8w184002s";
/// The bearer token every request carries.
pub const TOKEN: &str = "bench-token";
/// The one parameter every request sends.
pub const PARAMETER: (&str, &str) = ("order_id", "ord_12345");

/// `{"data": {...}}`, the run endpoint's 200 body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunResponse {
    /// The run.
    pub data: RunData,
}

/// One custom tool run, as the API reports it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunData {
    /// Whether the tool's code completed.
    pub success: bool,
    /// The tool's message.
    pub message: Option<String>,
    /// What the tool returned.
    pub result: Value,
    /// Why it failed.
    pub error: Option<String>,
    /// What it printed.
    pub logs: Option<String>,
    /// How long it ran.
    pub run_time_ms: f64,
}

fn url(base: &str) -> String {
    format!("{base}/v1/custom-tools/{TOOL_ID}/run")
}

fn body() -> Value {
    json!({ "parameters": { PARAMETER.0: PARAMETER.1 } })
}

/// The run by hand: `POST {base}/v1/custom-tools/{id}/run` with bearer
/// auth, decoding the 200 body.
pub async fn run_tool(client: &reqwest::Client, base: &str) -> reqwest::Result<RunData> {
    let response = client
        .post(url(base))
        .bearer_auth(TOKEN)
        .json(&body())
        .send()
        .await?
        .error_for_status()?;
    Ok(response.json::<RunResponse>().await?.data)
}

/// The same run through the peer.
pub async fn run_tool_peer(
    client: &reqwest_middleware::ClientWithMiddleware,
    base: &str,
) -> Result<RunData, reqwest_middleware::Error> {
    let response = client
        .post(url(base))
        .bearer_auth(TOKEN)
        .json(&body())
        .send()
        .await?
        .error_for_status()?;
    Ok(response.json::<RunResponse>().await?.data)
}

/// How a naive call ended: the run, or the last status and whether it
/// was a 429.
pub type NaiveResult = Result<RunData, Option<u16>>;

/// The same run, by hand, retried after each 429's `Retry-After` (1 s when
/// it has none) for as long as the waits fit in `budget`: what an
/// application writes that knows only that 429 means "wait and retry".
pub async fn run_tool_naive(client: &reqwest::Client, base: &str, budget: Duration) -> NaiveResult {
    let mut waited = Duration::ZERO;
    loop {
        let response = client
            .post(url(base))
            .bearer_auth(TOKEN)
            .json(&body())
            .send()
            .await
            .map_err(|e| e.status().map(|s| s.as_u16()))?;
        let status = response.status();
        if status.as_u16() == 429 {
            let wait = retry_after(response.headers()).unwrap_or(Duration::from_secs(1));
            if waited + wait > budget {
                return Err(Some(429));
            }
            waited += wait;
            tokio::time::sleep(wait).await;
            continue;
        }
        if !status.is_success() {
            return Err(Some(status.as_u16()));
        }
        return response
            .json::<RunResponse>()
            .await
            .map(|r| r.data)
            .map_err(|_| None);
    }
}

/// A `Retry-After` in whole seconds, the form the bench's server sends.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// A reqwest client with the SDK's default timeouts (60 s per request,
/// 10 s to connect): the floor, and the client under the peer and naive.
pub fn with_timeouts() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(10))
        .build()
}

/// The peer: [`with_timeouts`] behind reqwest-retry, which retries 429s
/// and other transient failures with exponential backoff (from 1 s, full
/// jitter) while the retries fit in `budget`, the SDK's `max_wait`.
/// reqwest-retry does not read `Retry-After`.
pub fn peer(budget: Duration) -> reqwest::Result<reqwest_middleware::ClientWithMiddleware> {
    let policy = reqwest_retry::policies::ExponentialBackoff::builder()
        .build_with_total_retry_duration(budget);
    Ok(reqwest_middleware::ClientBuilder::new(with_timeouts()?)
        .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(
            policy,
        ))
        .build())
}
