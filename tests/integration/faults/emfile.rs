//! EMFILE: the server runs out of file descriptors. It runs as a child process (the test process
//! shares its fd table with in-process servers, so lowering the limit here would hit everything)
//! with RLIMIT_NOFILE lowered to [`FD_LIMIT`] before exec. Past the limit, new connections wait in
//! the kernel's backlog while accept backs off; the pair keeps chatting; once connections close,
//! the waiting ones are accepted and served.

use super::pair::Pair;
use crate::support::{Client, ClientMsg, ServerMsg, ServerProcess, TempDir, WireFormat, DEADLINE};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The child's open-files limit (soft and hard, so the server cannot raise it back).
const FD_LIMIT: u64 = 80;
/// Connections opened past the pair: more than the limit allows.
const EXTRA: usize = 100;

/// Starts the server in `dir` with its descriptors limited to [`FD_LIMIT`]; waits until it listens.
fn start_server(dir: &TempDir) -> (ServerProcess, SocketAddr) {
    let args = ["--no-tls", "--bind", "127.0.0.1", "--port", "0", "--shards", "1", "--log-level", "info"];
    let server = ServerProcess::start_with_fd_limit(dir.path(), &args, FD_LIMIT);
    let addr = server.wait_listening();
    (server, addr)
}

/// A connection that sent its LOGIN, and whether the LOGIN_ACK came back.
struct Waiting {
    conn: Client,
    acked: bool,
}

/// Reads whatever each not-yet-acknowledged connection has, for up to `wait` in all.
fn collect_acks(conns: &mut [Waiting], wait: Duration) {
    let deadline = Instant::now() + wait;
    loop {
        for w in conns.iter_mut().filter(|w| !w.acked) {
            match w.conn.poll(Duration::from_millis(1)) {
                Ok(frames) => w.acked |= frames.iter().any(|m| matches!(m, ServerMsg::LoginAck { .. })),
                Err(e) => panic!("{}: {e}", w.conn.name),
            }
        }
        if conns.iter().all(|w| w.acked) || Instant::now() >= deadline {
            return;
        }
    }
}

#[test]
fn out_of_file_descriptors_the_server_backs_off_and_recovers() {
    let dir = TempDir::new("emfile");
    let (server, addr) = start_server(&dir);
    let pair = Pair::start(addr);

    // More connections than the server has descriptors for; each sends its LOGIN at once (the
    // kernel completes the handshake and buffers it, accepted or not).
    let mut conns: Vec<Waiting> = (0..EXTRA)
        .map(|i| {
            let mut conn = Client::connect(addr, WireFormat::Binary);
            let name = format!("extra-{i}");
            conn.send(&ClientMsg::Login { username: name.as_str().into(), credential: None, since: None });
            conn.name = name;
            Waiting { conn, acked: false }
        })
        .collect();
    // Wait until the server has taken all it can: a steady count, well under EXTRA.
    let mut acked = 0;
    let deadline = Instant::now() + DEADLINE;
    loop {
        collect_acks(&mut conns, Duration::from_millis(300));
        let now = conns.iter().filter(|w| w.acked).count();
        if (now == acked && now > 0) || Instant::now() >= deadline {
            acked = now;
            break;
        }
        acked = now;
    }
    eprintln!("emfile: {acked} of {EXTRA} extra connections served at the limit of {FD_LIMIT} fds");
    assert!(acked > 0 && acked < EXTRA, "some, not all, served at the limit: {acked}");
    assert!(server.log().contains("out of file descriptors"), "the server logged the back-off; log:\n{}", server.log());
    // The pair is served while the server is out of descriptors.
    pair.still_chatting();

    // Free descriptors: close the served extras; the waiting ones are accepted and served.
    let mut kept = Vec::new();
    for w in conns {
        if w.acked {
            w.conn.close();
        } else {
            kept.push(w);
        }
    }
    collect_acks(&mut kept, DEADLINE);
    let missing: Vec<&str> = kept.iter().filter(|w| !w.acked).map(|w| w.conn.name.as_str()).collect();
    assert!(missing.is_empty(), "never served after descriptors were freed: {missing:?}");
    // And a brand-new client is served too.
    let mut late = Client::login_new(addr, WireFormat::Json, "late");
    late.sync();
    pair.finish();
    let log = server.log();
    let backoffs = log.lines().filter(|l| l.contains("out of file descriptors")).count();
    eprintln!("emfile: the server logged {backoffs} back-off warnings");
    drop(server);
}
