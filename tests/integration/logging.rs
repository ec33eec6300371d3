//! Logging can never kill or stall the server (issue 16, item 12): the real `chat-server`
//! binary with its stderr broken before it starts, broken while it runs (`2>&1 | tee log`,
//! then Ctrl-C), or never read. Each time it keeps serving, and a signal still stops it cleanly.

use crate::support::{Client, ServerMsg, ServerProcess, TempDir, WireFormat, PROCESS_DEADLINE};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

/// Debug logging: every connection logs lines, so the broken or stuck stderr is hit at once.
const ARGS: [&str; 12] = [
    "--bind",
    "127.0.0.1",
    "--port",
    "0",
    "--no-tls",
    "--shards",
    "1",
    "--history",
    "memory",
    "--log-level",
    "debug",
    "--no-files",
];

/// A pipe: (read end, write end). Close-on-exec, so the child holds only the write end it is
/// given as stderr: closing our read end then really breaks its stderr.
fn pipe() -> (File, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) fills both descriptors, which we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors from pipe(2), owned by nobody else.
    unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Two users chat through the server: it still serves.
fn chat_works(addr: SocketAddr) {
    let mut alice = Client::login_new(addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(addr, WireFormat::Json, "bob");
    alice.sync();
    bob.say("still here");
    let got = alice.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. }));
    assert!(matches!(got, ServerMsg::RoomMsg { ref text, .. } if text == "still here"));
}

/// Stops the server with `sig` and expects a clean exit.
fn stops_cleanly(mut server: ServerProcess, sig: i32) {
    server.signal(sig);
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}

#[test]
fn a_server_started_with_stderr_already_broken_serves_and_stops() {
    let dir = TempDir::new("log-broken-at-start");
    let (reader, writer) = pipe();
    drop(reader);
    let server = ServerProcess::start_with_stderr(dir.path(), &ARGS, Stdio::from(writer));
    let addr = server.wait_listening_socket();
    chat_works(addr);
    stops_cleanly(server, libc::SIGTERM);
}

#[test]
fn stderr_broken_while_running_does_not_stop_the_server_or_its_signals() {
    let dir = TempDir::new("log-broken-later");
    let (reader, writer) = pipe();
    let server = ServerProcess::start_with_stderr(dir.path(), &ARGS, Stdio::from(writer));
    let mut lines = BufReader::new(reader);
    let mut line = String::new();
    // Read the log like `tee` until the server listens, then go away like a Ctrl-C'd `tee`.
    while !line.contains("listening on") {
        line.clear();
        assert!(lines.read_line(&mut line).expect("read the log") > 0, "stderr closed before listening");
    }
    drop(lines);
    let addr = server.wait_listening_socket();
    chat_works(addr);
    stops_cleanly(server, libc::SIGINT);
}

#[test]
fn stderr_nobody_reads_costs_log_lines_not_service() {
    let dir = TempDir::new("log-stuck");
    let (reader, writer) = pipe();
    let server = ServerProcess::start_with_stderr(dir.path(), &ARGS, Stdio::from(writer));
    let addr = server.wait_listening_socket();
    // Each connection logs at least two debug lines (~100 bytes each): 1,000 of them are far
    // more than a pipe's 64 KiB buffer, which nobody drains.
    for _ in 0..1_000 {
        drop(std::net::TcpStream::connect_timeout(&addr, PROCESS_DEADLINE).expect("connect"));
    }
    chat_works(addr);
    stops_cleanly(server, libc::SIGTERM);
    drop(reader);
}
