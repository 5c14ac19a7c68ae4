//! The processes xtask starts, stopped whenever xtask stops.
//!
//! Each child leads a process group of its own, so that stopping it stops
//! what it started in turn (Prism is a node process tree; `cargo test`
//! runs test binaries). A group is stopped when its [`Running`] is dropped
//! (on return, on error, on a panic) and, on Unix, when SIGINT, SIGTERM or
//! SIGHUP reaches xtask: without that, `cargo xtask mock` ended by SIGTERM
//! left Prism listening.

use std::io;
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};

/// A child leading its own process group; dropping it stops the group.
pub struct Running {
    child: Child,
    /// Whether the child has been waited for (its group is then no longer
    /// ours to signal).
    reaped: bool,
}

/// Runs `cmd` to its end, like [`Command::status`].
pub fn status(cmd: &mut Command) -> io::Result<ExitStatus> {
    Running::spawn(cmd)?.wait()
}

/// Runs `cmd` to its end, capturing stdout and stderr, like
/// [`Command::output`].
pub fn output(cmd: &mut Command) -> io::Result<Output> {
    stdout_of(cmd.stderr(Stdio::piped()))
}

/// Runs `cmd` to its end, capturing stdout; stderr goes where `cmd` sends
/// it (inherited unless set).
pub fn stdout_of(cmd: &mut Command) -> io::Result<Output> {
    let mut running = Running::spawn(cmd.stdin(Stdio::null()).stdout(Stdio::piped()))?;
    let stdout = running.child.stdout.take();
    let stderr = running.child.stderr.take();
    // Both pipes at once: a child filling one while the other is read
    // would block forever.
    let err_reader = std::thread::spawn(move || read_all(stderr));
    let stdout = read_all(stdout)?;
    let stderr = err_reader
        .join()
        .map_err(|_| io::Error::other("reading stderr panicked"))??;
    let status = running.wait()?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

fn read_all(pipe: Option<impl io::Read>) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

impl Running {
    /// Starts `cmd` in a process group of its own.
    pub fn spawn(cmd: &mut Command) -> io::Result<Self> {
        let child = group::spawn(cmd)?;
        Ok(Self {
            child,
            reaped: false,
        })
    }

    /// The child's stdin, if it was piped.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// Waits for the child to exit.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        group::exited(&self.child)?;
        self.reaped = true;
        self.child.wait()
    }

    /// The child's exit status if it has exited, without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if !group::has_exited(&mut self.child) {
            return Ok(None);
        }
        self.wait().map(Some)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            group::stop(&mut self.child);
            let _ = self.child.wait();
        }
    }
}

#[cfg(unix)]
mod group {
    use std::io;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};
    use std::sync::{Mutex, MutexGuard};
    use std::time::{Duration, Instant};

    use rustix::process::{
        Pid, Signal, WaitId, WaitIdOptions, WaitOptions, kill_process_group,
        test_kill_process_group, waitid, waitpid,
    };
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

    /// The groups started and not yet waited for. The signal handler holds
    /// the lock from the signal to the exit, so no group starts unseen and
    /// xtask does not exit while its groups are being stopped.
    static GROUPS: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

    /// How long a group has between SIGTERM and SIGKILL.
    const GRACE: Duration = Duration::from_secs(3);

    fn groups() -> MutexGuard<'static, Vec<Pid>> {
        GROUPS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn spawn(cmd: &mut Command) -> io::Result<Child> {
        let mut groups = groups();
        let child = cmd.process_group(0).spawn()?;
        groups.push(Pid::from_child(&child));
        Ok(child)
    }

    /// Blocks until `child` has exited, then forgets its group; the child
    /// is left for the caller to reap (until then its id is not reused).
    pub(super) fn exited(child: &Child) -> io::Result<()> {
        let pid = Pid::from_child(child);
        waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        )?;
        groups().retain(|p| *p != pid);
        Ok(())
    }

    /// Whether the (unreaped) leader `child` has exited.
    pub(super) fn has_exited(child: &mut Child) -> bool {
        leader_exited(Pid::from_child(child))
    }

    fn leader_exited(pid: Pid) -> bool {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG;
        // An error: reaped already, by the signal handler.
        !matches!(waitid(WaitId::Pid(pid), options), Ok(None))
    }

    /// SIGTERM to the group, SIGKILL to what is left of it once its leader
    /// has exited or [`GRACE`] has passed. The leader is left unreaped, so
    /// the group's id cannot have been reused.
    fn terminate(pid: Pid) {
        let _ = kill_process_group(pid, Signal::TERM);
        let deadline = Instant::now() + GRACE;
        settle_one(pid, deadline);
    }

    /// Waits until `pid`, already sent SIGTERM, has exited or `deadline`
    /// has passed, then SIGKILLs what is left of its group.
    fn settle_one(pid: Pid, deadline: Instant) {
        while !leader_exited(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = kill_process_group(pid, Signal::KILL);
    }

    pub(super) fn stop(child: &mut Child) {
        let pid = Pid::from_child(child);
        let mut groups = groups();
        terminate(pid);
        groups.retain(|p| *p != pid);
    }

    /// On SIGINT, SIGTERM or SIGHUP: stops every group and exits with
    /// 128 + the signal's number, as a shell reports a process it ended.
    pub fn stop_on_signals() -> Result<(), String> {
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .map_err(|e| format!("cannot handle signals: {e}"))?;
        std::thread::spawn(move || {
            let Some(signal) = signals.forever().next() else {
                return;
            };
            let groups = groups();
            // All at once, then each waited for in turn.
            for &pid in groups.iter() {
                let _ = kill_process_group(pid, Signal::TERM);
            }
            let deadline = Instant::now() + GRACE;
            for &pid in groups.iter() {
                settle_one(pid, deadline);
            }
            for &pid in groups.iter() {
                // Reaped, the leader no longer holds the group: it is gone
                // once its last member has died of the SIGKILL.
                let _ = waitpid(Some(pid), WaitOptions::empty());
                let deadline = Instant::now() + Duration::from_secs(1);
                while test_kill_process_group(pid).is_ok() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            eprintln!("xtask: stopped by signal {signal}; its children are stopped too");
            std::process::exit(128 + signal);
        });
        Ok(())
    }

    /// Returns at once, unless a signal is being handled: then it blocks
    /// until the handler exits the process, so that xtask does not end
    /// (its main thread returning, a child having died of the signal)
    /// before every group has been stopped.
    pub fn settle() {
        drop(groups());
    }
}

#[cfg(not(unix))]
mod group {
    use std::io;
    use std::process::{Child, Command};

    pub(super) fn spawn(cmd: &mut Command) -> io::Result<Child> {
        cmd.spawn()
    }

    pub(super) fn exited(_: &Child) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn has_exited(child: &mut Child) -> bool {
        // std keeps the status for the `wait` that follows.
        !matches!(child.try_wait(), Ok(None))
    }

    pub(super) fn stop(child: &mut Child) {
        let _ = child.kill();
    }

    /// Signals are left to the system's defaults here.
    pub fn stop_on_signals() -> Result<(), String> {
        Ok(())
    }

    /// Nothing to wait for without a signal handler.
    pub fn settle() {}
}

pub use group::{settle, stop_on_signals};
