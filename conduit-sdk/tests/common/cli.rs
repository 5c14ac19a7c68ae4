//! Running the `conduit` CLI (the `conduit-cli` crate) as a process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The path of `tools run tool_1`.
pub const TOOL_PATH: &str = "/v1/custom-tools/tool_1/run";

/// A documented 200 body of a successful run.
pub fn success_body() -> Value {
    json!({"data": {
        "success": true,
        "message": "Order ord_1 is shipped",
        "result": {"message": "Order ord_1 is shipped", "rawData": {"status": "shipped"}},
        "error": null,
        "logs": null,
        "run_time_ms": 842
    }})
}

/// A server answering every run of `tool_1` with `response`.
pub async fn server_answering(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOOL_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

/// The requests `server` received.
pub async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording is on")
}

/// Variables of the CLI that a test sets only on purpose.
const CONDUIT_VARS: [&str; 5] = [
    "CONDUIT_API_TOKEN",
    "CONDUIT_BASE_URL",
    "CONDUIT_MAX_RETRIES",
    "CONDUIT_WORKSPACE_ID",
    "CONDUIT_RATE_LIMIT",
];

/// The `conduit` binary of `conduit-cli`, built once per test run: cargo
/// builds another package's binaries for no test of this one.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // target/<profile>/deps/cli-xxxx -> target/<profile>
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in <target>/<profile>/deps");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build
            .args(["build", "--bin", "conduit", "-p", "conduit-cli"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let out = build.output().expect("cargo runs");
        assert!(
            out.status.success(),
            "building the CLI failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let binary = profile_dir.join(format!("conduit{}", std::env::consts::EXE_SUFFIX));
        assert!(binary.is_file(), "{} was not built", binary.display());
        binary
    })
}

/// What one run of the CLI did.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout as the one JSON document it should be.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    pub fn assert_hides(&self, token: &str) {
        assert!(
            !self.stdout.contains(token) && !self.stderr.contains(token),
            "the token was printed: {self:?}"
        );
    }
}

/// Runs the CLI with `args` and, of the `CONDUIT_*` variables, only `env`.
pub async fn conduit(args: &[&str], env: &[(&str, &str)]) -> Output {
    conduit_with_stdin(args, env, None).await
}

/// The CLI as a command with `args` and, of the `CONDUIT_*` variables, only
/// `env`; stdin, stdout and stderr are left to the caller.
pub async fn command(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let binary = tokio::task::spawn_blocking(binary).await.unwrap();
    let mut cmd = tokio::process::Command::new(binary);
    cmd.args(args).kill_on_drop(true);
    for var in CONDUIT_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// Like [`conduit`], with `stdin` as its standard input (none if `None`).
pub async fn conduit_with_stdin(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = command(args, env).await;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the CLI runs");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .expect("stdin is written");
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the CLI finishes within 60 s")
        .expect("the CLI runs");
    Output::from(out)
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Output {
            code: out.status.code().expect("the CLI exits, not killed"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
