//! `cargo xtask mock` stops Prism when it is stopped itself. Ignored by
//! plain `cargo test`: it needs node and npm (Prism is installed on first
//! use); `cargo xtask test` runs it with `--ignored`.

#![cfg(unix)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// `xtask mock` in a process group of its own, SIGKILLed with that group
/// when dropped: should a regression leave Prism behind in it, the test
/// fails without leaving a server running (or a pipe open).
struct Xtask(Child);

impl Drop for Xtask {
    fn drop(&mut self) {
        let _ = kill_process_group(Pid::from_child(&self.0), Signal::KILL);
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Starts `xtask mock` on a free port, waits until Prism answers, sends
/// `signal` to xtask alone (not to its process group, as `kill PID` or a
/// supervisor does) and checks that nothing listens on the port once
/// xtask has exited.
fn mock_stops_prism_on(signal: Signal) {
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = tempfile::tempfile().unwrap();
    let mut xtask = Xtask(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["mock", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    // Generous: the first run installs Prism with npm.
    let deadline = Instant::now() + Duration::from_secs(300);
    while !listening(addr) {
        if let Some(status) = xtask.0.try_wait().unwrap() {
            panic!("xtask mock exited before Prism listened: {status}");
        }
        assert!(Instant::now() < deadline, "Prism never listened on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    kill_process(Pid::from_child(&xtask.0), signal).unwrap();
    let status = xtask.0.wait().unwrap();
    assert!(!status.success(), "xtask mock reported success: {status}");
    // xtask exits only after Prism's whole process group has gone, so the
    // port is closed by now, not eventually.
    assert!(
        !listening(addr),
        "Prism still listens on {addr} after xtask mock exited ({status})"
    );
}

#[test]
#[ignore = "needs node and npm; cargo xtask test runs it"]
fn sigterm_to_xtask_mock_stops_prism() {
    mock_stops_prism_on(Signal::TERM);
}

#[test]
#[ignore = "needs node and npm; cargo xtask test runs it"]
fn ctrl_c_to_xtask_mock_stops_prism() {
    // A terminal's Ctrl-C reaches the whole foreground group; Prism runs in
    // a group of its own, so xtask must pass it on.
    mock_stops_prism_on(Signal::INT);
}
