//! A `redis-server` on a free loopback port, for the tests of the shared
//! rate-limit gate (Debian package `redis-server`; `.ci/run` installs it).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::children::Running;

/// A running redis-server, stopped when dropped.
pub struct Redis {
    child: Running,
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    /// The binary, for tests that start their own.
    pub binary: PathBuf,
}

/// The `redis-server` binary on PATH, or why there is none.
pub fn binary() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "redis-server is not installed: the shared rate-limit tests need it \
             (apt-get install redis-server; .ci/run does this)"
                .to_owned()
        })
}

/// Starts redis-server on a free loopback port, without persistence, and
/// waits until it accepts connections.
pub fn start() -> Result<Redis, String> {
    let binary = binary()?;
    let port = TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let child = Running::spawn(
        Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let mut redis = Redis {
        child,
        url: format!("redis://127.0.0.1:{port}"),
        binary,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(redis);
        }
        if let Ok(Some(status)) = redis.child.try_wait() {
            return Err(format!("redis-server exited at start ({status})"));
        }
        if Instant::now() > deadline {
            return Err(format!("redis-server did not listen on {addr} within 20 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
