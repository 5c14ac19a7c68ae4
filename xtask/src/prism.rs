//! The pinned Prism mock server (`tools/prism`), installed with npm on demand.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conduit_codegen::VENDORED_SPEC;

use crate::children::Running;
use crate::{artefact, root, run_step};

/// A running Prism, stopped with the processes it started when dropped.
pub struct Prism {
    child: Running,
    /// Base URL to send requests to.
    pub url: String,
}

/// The Prism binary, installing the pinned version first if needed.
pub fn ensure_installed() -> Result<PathBuf, String> {
    let dir = root().join("tools/prism");
    let bin = dir.join("node_modules/.bin/prism");
    if !bin.exists() {
        run_step(
            "install the pinned Prism (npm ci)",
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir),
        )?;
    }
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("npm ci ran but {} is missing", bin.display()))
    }
}

/// Starts Prism on the vendored spec at 127.0.0.1:`port` (0 picks a free
/// port) and waits until it accepts connections.
pub fn start(port: u16, quiet: bool) -> Result<Prism, String> {
    let bin = ensure_installed()?;
    let port = if port == 0 { free_port()? } else { port };
    let log = artefact::target_dir()?.join("prism.log");
    let (out, err) = if quiet {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let file2 = file.try_clone().map_err(|e| e.to_string())?;
        (Stdio::from(file), Stdio::from(file2))
    } else {
        (Stdio::inherit(), Stdio::inherit())
    };
    let child = Running::spawn(
        Command::new(bin)
            .args(["mock", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(root().join(VENDORED_SPEC))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err),
    )
    .map_err(|e| format!("cannot start Prism: {e}"))?;
    let mut prism = Prism {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(prism);
        }
        if let Ok(Some(status)) = prism.child.try_wait() {
            return Err(format!(
                "Prism exited early ({status}); see {}",
                log.display()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("Prism did not listen on {addr} within 90 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// `cargo xtask mock [--port N]`: serve until interrupted (Ctrl-C, SIGTERM
/// or SIGHUP), which stops Prism too.
pub fn mock(port: u16) -> Result<(), String> {
    let mut prism = start(port, false)?;
    println!(
        "Prism is serving {VENDORED_SPEC} at {}; Ctrl-C stops it",
        prism.url
    );
    let status = prism.child.wait().map_err(|e| e.to_string())?;
    Err(format!("Prism exited ({status})"))
}
