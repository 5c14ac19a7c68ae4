//! The comparison point: the same request written by hand with reqwest.

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
