//! The real `chat-server` binary as a child process, run as an admin would: in its own
//! directory, on port 0 (it logs the port it got), stderr kept in a log file. Killed (SIGKILL)
//! and reaped on drop if it is still running; only this child's PID is ever signalled.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The longest a child process may take to start, log a line or exit (a debug build on a
/// loaded machine starts slowly). A guard against hangs, not a performance bound.
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(20);

/// The log line that carries the bound address.
const LISTENING: &str = "listening on ";

/// A running `chat-server`.
pub struct ServerProcess {
    child: Child,
    /// Where the child's stderr goes.
    log: PathBuf,
}

impl ServerProcess {
    /// Starts the binary in `dir` with `args`.
    #[track_caller]
    pub fn start(dir: &Path, args: &[&str]) -> ServerProcess {
        ServerProcess::spawn(Self::command(dir, args), dir)
    }

    /// Starts the binary in `dir` with `args` and its open-files limit (soft and hard, so it
    /// cannot raise it back) lowered to `nofile` before exec.
    #[track_caller]
    pub fn start_with_fd_limit(dir: &Path, args: &[&str], nofile: u64) -> ServerProcess {
        let mut cmd = Self::command(dir, args);
        // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit { rlim_cur: nofile as libc::rlim_t, rlim_max: nofile as libc::rlim_t };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        ServerProcess::spawn(cmd, dir)
    }

    /// Starts the binary in `dir` with `args` and its stderr on `stderr` (say, a pipe the test
    /// breaks or stops reading); [`ServerProcess::log`] is then empty, and
    /// [`ServerProcess::wait_listening_socket`] finds the address.
    #[track_caller]
    pub fn start_with_stderr(dir: &Path, args: &[&str], stderr: Stdio) -> ServerProcess {
        let child = Self::command(dir, args).stderr(stderr).spawn().expect("start chat-server");
        ServerProcess { child, log: dir.join("no-log-file") }
    }

    /// The address of the child's listening TCP socket, read from /proc (bounded wait): for a
    /// child whose log cannot be read.
    #[track_caller]
    pub fn wait_listening_socket(&self) -> SocketAddr {
        let end = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(port) = listening_port(self.child.id()) {
                return SocketAddr::from(([127, 0, 0, 1], port));
            }
            assert!(Instant::now() < end, "the server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn command(dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-server"));
        cmd.current_dir(dir).args(args).env_remove("RUST_LOG").stdin(Stdio::null()).stdout(Stdio::null());
        cmd
    }

    #[track_caller]
    fn spawn(mut cmd: Command, dir: &Path) -> ServerProcess {
        let log = dir.join(format!("chat-server-{}.log", std::process::id()));
        let stderr = std::fs::File::create(&log).expect("create the server log");
        let child = cmd.stderr(stderr).spawn().expect("start chat-server");
        ServerProcess { child, log }
    }

    /// Waits (bounded) for a log line containing `needle` and returns it.
    #[track_caller]
    pub fn wait_for(&self, needle: &str) -> String {
        let end = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            assert!(Instant::now() < end, "no log line with {needle:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address from the "listening on ADDR" line (start the server with `--port 0`).
    #[track_caller]
    pub fn wait_listening(&self) -> SocketAddr {
        let line = self.wait_for(LISTENING);
        let rest = &line[line.find(LISTENING).expect("found") + LISTENING.len()..];
        let addr = rest.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':')).next().unwrap_or_default();
        addr.parse().unwrap_or_else(|e| panic!("no address in {line:?}: {e}"))
    }

    /// Sends `sig` to this child (its own PID only).
    #[track_caller]
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Waits (bounded) for the child to exit.
    #[track_caller]
    pub fn wait_exit(&mut self) -> ExitStatus {
        let end = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < end, "the server did not exit; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The child's process id (to read its /proc entries).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The port of a listening IPv4 TCP socket that process `pid` holds, from /proc: its socket
/// inodes, matched against the LISTEN rows (state 0A) of its network namespace's table.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    table.lines().skip(1).find_map(|row| {
        let f: Vec<&str> = row.split_whitespace().collect();
        let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
        if *state != "0A" || !inodes.iter().any(|i| i == inode) {
            return None;
        }
        u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
    })
}
