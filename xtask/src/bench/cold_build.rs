//! The cold build comparison: a tiny app against the SDK and the same app
//! against bare reqwest, each built from scratch.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{cargo, children};

/// Cold builds per app in full mode, alternated (reqwest app, SDK app, ...).
pub(super) const COLD_BUILD_ROUNDS: usize = 2;

/// Cold build times of the two tiny apps, in seconds.
pub(super) struct ColdBuild {
    /// The SDK app's builds.
    pub(super) sdk_s: Vec<f64>,
    /// The reqwest app's builds.
    pub(super) reqwest_s: Vec<f64>,
}

impl ColdBuild {
    /// Median SDK app build time ÷ median reqwest app build time.
    pub(super) fn ratio(&self) -> f64 {
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

/// Times cold builds of both apps in a scratch directory, removed afterwards.
pub(super) fn cold_builds(root: &Path) -> Result<ColdBuild, String> {
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
        let fetch = children::output(app_cargo(&dir).arg("fetch"))
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
            let build = children::output(app_cargo(dir).args(["build", "--offline"]))
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

/// The median, NaN when there are no values.
pub(super) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
