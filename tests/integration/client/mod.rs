//! The `chat-client` binary against real servers: piped (as scripts use it), and on a real
//! terminal (tmux), where what matters is the screen.
//!
//! - [`piped`]: plain lines with timestamps and no escape codes, the server list, reconnecting
//!   without repeats.
//! - [`failover`]: `--server a,b` on a two-node cluster whose first node is killed.
//! - [`screen`]: a half-typed line survives incoming messages; colours, and none under `NO_COLOR`.
//!
//! [`ChatClient`] runs the binary with piped standard input and output; every wait is bounded
//! by [`PROCESS_DEADLINE`] and the child is killed (by its PID) on drop.

mod failover;
mod piped;
mod screen;

use crate::support::PROCESS_DEADLINE;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The client binary under test.
pub const CLIENT_BIN: &str = env!("CARGO_BIN_EXE_chat-client");

/// `chat-client` as a child process with piped stdin and stdout (stderr joins stdout).
pub struct ChatClient {
    child: Child,
    /// `None` once closed (end of input).
    stdin: Option<ChildStdin>,
    /// Everything the client printed so far, collected by a reader thread.
    out: Arc<Mutex<String>>,
}

impl ChatClient {
    /// Starts `chat-client ARGS` with `NO_COLOR` unset (output is a pipe: no colour anyway).
    #[track_caller]
    pub fn start(args: &[&str]) -> ChatClient {
        let mut child = Command::new(CLIENT_BIN)
            .args(args)
            .env_remove("NO_COLOR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat-client");
        let out = Arc::new(Mutex::new(String::new()));
        for mut pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let out = out.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock().expect("output").push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let stdin = child.stdin.take();
        ChatClient { child, stdin, out }
    }

    /// Types one line.
    #[track_caller]
    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(format!("{line}\n").as_bytes()).and_then(|()| stdin.flush()).expect("write to chat-client");
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.out.lock().expect("output").clone()
    }

    /// Waits (bounded) until the output contains `needle` `times` times; returns the output.
    #[track_caller]
    pub fn wait_for_n(&self, needle: &str, times: usize) -> String {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            let out = self.output();
            if out.matches(needle).count() >= times {
                return out;
            }
            assert!(Instant::now() < deadline, "chat-client never printed {needle:?} x{times}; output:\n{out}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until the output contains `needle`; returns the output.
    #[track_caller]
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_for_n(needle, 1)
    }

    /// Waits (bounded) for the client to exit by itself; returns its status and output.
    #[track_caller]
    pub fn wait_exit(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads drain what is left in the pipes.
                thread::sleep(Duration::from_millis(50));
                return (status, self.output());
            }
            assert!(Instant::now() < deadline, "chat-client did not exit; output:\n{}", self.output());
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ends its input (Ctrl-D), then waits for it to exit.
    #[track_caller]
    pub fn finish(&mut self) -> (ExitStatus, String) {
        self.stdin = None;
        self.wait_exit()
    }
}

impl Drop for ChatClient {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The lines of `out` that end with `tail`.
pub fn lines_ending<'a>(out: &'a str, tail: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.ends_with(tail)).collect()
}

/// True when `line` starts with a local `HH:MM ` timestamp.
pub fn stamped(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 6
        && b[..2].iter().all(u8::is_ascii_digit)
        && b[2] == b':'
        && b[3..5].iter().all(u8::is_ascii_digit)
        && b[5] == b' '
}
