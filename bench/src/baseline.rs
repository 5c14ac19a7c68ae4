//! The comparison points: the same request written by hand with reqwest
//! (the floor, and plain `Client::new()`), and with the stack a Rust
//! developer would pick instead of this SDK: reqwest-middleware with
//! reqwest-retry (the peer).

use serde::Deserialize;
use serde_json::{Value, json};

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

/// `POST {base}/v1/custom-tools/{tool_id}/run` with bearer auth and
/// `{"parameters": {key: value}}`, decoding the 200 body.
pub async fn run_tool(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    tool_id: &str,
    key: &str,
    value: &str,
) -> reqwest::Result<RunData> {
    let response = client
        .post(format!("{base}/v1/custom-tools/{tool_id}/run"))
        .bearer_auth(token)
        .json(&json!({ "parameters": { key: value } }))
        .send()
        .await?
        .error_for_status()?;
    Ok(response.json::<RunResponse>().await?.data)
}

/// The same request through reqwest-middleware (with reqwest-retry's
/// transient-error retries): what an application would write without the
/// SDK.
pub async fn run_tool_peer(
    client: &reqwest_middleware::ClientWithMiddleware,
    base: &str,
    token: &str,
    tool_id: &str,
    key: &str,
    value: &str,
) -> Result<RunData, reqwest_middleware::Error> {
    let response = client
        .post(format!("{base}/v1/custom-tools/{tool_id}/run"))
        .bearer_auth(token)
        .json(&json!({ "parameters": { key: value } }))
        .send()
        .await?
        .error_for_status()?;
    Ok(response.json::<RunResponse>().await?.data)
}

/// A reqwest client with the SDK's default timeouts (60 s per request,
/// 10 s to connect): what a careful application ships.
pub fn with_timeouts() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
}

/// The peer: [`with_timeouts`] behind reqwest-retry's exponential backoff
/// for transient errors (2 retries, as the SDK's default).
pub fn peer() -> reqwest::Result<reqwest_middleware::ClientWithMiddleware> {
    let policy = reqwest_retry::policies::ExponentialBackoff::builder().build_with_max_retries(2);
    Ok(reqwest_middleware::ClientBuilder::new(with_timeouts()?)
        .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(
            policy,
        ))
        .build())
}
