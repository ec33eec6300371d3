//! Operations tests: the metrics endpoint scraped over real sockets, and the `chat-server` binary
//! run as an admin would (config file, signals, exit codes). A module of the integration binary
//! (`cargo test --test integration ops::`); everything listens on 127.0.0.1 with OS-chosen ports.
//!
//! Map of the suite:
//! - `metrics_*`: a [`MetricsEndpoint`] driven by a small mio loop on a thread, scraped with a
//!   std `TcpStream`: status, content type, metric lines, 404/405/400/431, a request sent byte by
//!   byte, a large response to a slow reader, and the bound on concurrent connections.
//! - `binary_*`: the real binary: SIGTERM/SIGINT shut it down gracefully (clients get a
//!   SYSTEM_MSG, exit 0); a config file is applied under the command line; a bad config file
//!   names the key and exits non-zero.
//!
//! Every wait is bounded by [`PROCESS_DEADLINE`]; no assertion is about timing.

use crate::support::{
    metrics, raw_connect, Client, Extra, MetricsEndpoint, ServerMsg, ServerProcess, StatsSnapshot, TempDir, WireFormat,
    MAX_REQUEST, MAX_SCRAPES, PROCESS_DEADLINE,
};
use mio::{Events, Poll, Token, Waker};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Metrics endpoint
// ---------------------------------------------------------------------------------------------

/// A metrics endpoint served by its own mio loop on a thread, as the server's shard 0 does.
struct EndpointLoop {
    addr: SocketAddr,
    renders: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl EndpointLoop {
    fn start(body: impl Fn() -> String + Send + 'static) -> EndpointLoop {
        let poll = Poll::new().unwrap();
        let mut ep = MetricsEndpoint::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        ep.register(poll.registry()).unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(1)).unwrap());
        let (renders, open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, o, s) = (Arc::clone(&renders), Arc::clone(&open), Arc::clone(&stop));
        let addr = ep.local_addr();
        let thread = std::thread::spawn(move || {
            let mut poll = poll;
            let mut events = Events::with_capacity(64);
            while !s.load(Ordering::SeqCst) {
                poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
                for event in events.iter() {
                    if ep.owns(event.token()) {
                        ep.ready(poll.registry(), event, &mut || {
                            r.fetch_add(1, Ordering::SeqCst);
                            body()
                        });
                    }
                }
                o.store(ep.open_connections(), Ordering::SeqCst);
            }
        });
        EndpointLoop { addr, renders, open, stop, waker, thread: Some(thread) }
    }

    fn renders(&self) -> usize {
        self.renders.load(Ordering::SeqCst)
    }

    /// Waits until the endpoint has `n` connections open.
    fn wait_open(&self, n: usize) {
        let end = Instant::now() + PROCESS_DEADLINE;
        while self.open.load(Ordering::SeqCst) != n {
            assert!(Instant::now() < end, "endpoint never had {n} connections open");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for EndpointLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP response, split.
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads until the server closes and splits the response.
fn read_response(mut s: TcpStream) -> Response {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head end in {raw:?}"));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("status in {head:?}"));
    Response { status, head: head.to_string(), body: body.to_string() }
}

fn request(addr: SocketAddr, req: &[u8]) -> Response {
    let mut s = raw_connect(addr);
    s.write_all(req).unwrap();
    read_response(s)
}

fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
}

/// Known counters, rendered the way the server does.
fn sample_metrics() -> String {
    let shard = StatsSnapshot {
        connections_open: 3,
        logins: 7,
        open_binary: 1,
        open_json: 2,
        open_tls: 1,
        deliveries: 1234,
        ..StatsSnapshot::default()
    };
    metrics::render(
        &shard,
        &[shard],
        &Extra { uptime_seconds: 1.5, history_write_latency_seconds: None, cluster: None },
    )
}

#[test]
fn metrics_scrape_returns_prometheus_text() {
    let ep = EndpointLoop::start(sample_metrics);
    for _ in 0..3 {
        let r = get(ep.addr, "/metrics");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("Content-Type"), Some("text/plain; version=0.0.4; charset=utf-8"));
        assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string().as_str()));
        for line in [
            "# TYPE chatproto_logins_total counter",
            "chatproto_logins_total 7",
            "chatproto_connections_open 3",
            "chatproto_connections{protocol=\"binary\"} 1",
            "chatproto_connections{protocol=\"json\"} 2",
            "chatproto_connections_tls 1",
            "chatproto_fanout_deliveries_total 1234",
            "chatproto_shard_connections_open{shard=\"0\"} 3",
            "chatproto_uptime_seconds 1.5",
        ] {
            assert!(r.body.lines().any(|l| l == line), "missing {line:?} in:\n{}", r.body);
        }
    }
    assert_eq!(ep.renders(), 3);
    let r = request(ep.addr, b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert_eq!((r.status, r.body.as_str()), (200, ""));
}

#[test]
fn metrics_other_paths_methods_and_garbage() {
    let ep = EndpointLoop::start(sample_metrics);
    let r = get(ep.addr, "/");
    assert_eq!(r.status, 404, "{r:?}");
    let r = get(ep.addr, "/metricsx");
    assert_eq!(r.status, 404, "{r:?}");
    let r = request(ep.addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    let r = request(ep.addr, b"hello there\r\n\r\n");
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(ep.renders(), 0, "nothing rendered for requests that get no metrics");
    // A head that never ends within the limit.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Filler: ".to_vec();
    big.resize(MAX_REQUEST + 100, b'a');
    let r = request(ep.addr, &big);
    assert_eq!(r.status, 431, "{r:?}");
    // The endpoint is still fine.
    assert_eq!(get(ep.addr, "/metrics").status, 200);
}

#[test]
fn metrics_request_byte_by_byte_and_early_hangups() {
    let ep = EndpointLoop::start(sample_metrics);
    // A client that gives up half-way does not disturb anything.
    let mut quitter = raw_connect(ep.addr);
    quitter.write_all(b"GET /met").unwrap();
    drop(quitter);
    let mut s = raw_connect(ep.addr);
    s.set_nodelay(true).unwrap();
    for b in b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n" {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = read_response(s);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("chatproto_logins_total 7"));
    ep.wait_open(0);
}

#[test]
fn metrics_large_response_to_a_slow_reader() {
    // Far more than the socket buffers hold, so the endpoint must keep unsent bytes and resume
    // on writable.
    const LEN: usize = 8 * 1024 * 1024;
    let ep = EndpointLoop::start(|| {
        let mut s = String::with_capacity(LEN);
        let mut i = 0u64;
        while s.len() < LEN {
            s.push_str(&format!("chatproto_filler{{i=\"{i}\"}} {i}\n"));
            i += 1;
        }
        s
    });
    let mut s = raw_connect(ep.addr);
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let r = read_response(s);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string().as_str()));
    assert!(r.body.len() >= LEN);
    let last = r.body.lines().last().unwrap();
    let n: u64 = last.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(r.body.lines().count() as u64, n + 1, "every line arrived, in order");
}

#[test]
fn metrics_connections_are_bounded() {
    let ep = EndpointLoop::start(sample_metrics);
    let idle: Vec<TcpStream> = (0..MAX_SCRAPES).map(|_| raw_connect(ep.addr)).collect();
    ep.wait_open(MAX_SCRAPES);
    // One more is closed without an answer (the idle ones are not old enough to be reclaimed).
    let mut extra = raw_connect(ep.addr);
    let _ = extra.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
    let mut got = Vec::new();
    let _ = extra.read_to_end(&mut got); // EOF or reset, both mean "refused"
    assert!(got.is_empty(), "an over-limit connection got {:?}", String::from_utf8_lossy(&got));
    // Once the idle clients leave, scrapes work again.
    drop(idle);
    ep.wait_open(0);
    assert_eq!(get(ep.addr, "/metrics").status, 200);
}

// ---------------------------------------------------------------------------------------------
// The chat-server binary
// ---------------------------------------------------------------------------------------------

/// Starts the binary with `args` in `dir`, and the port it listens on.
fn start(dir: &TempDir, args: &[&str]) -> (ServerProcess, u16) {
    let server = ServerProcess::start(dir.path(), args);
    let port = server.wait_listening().port();
    (server, port)
}

fn login(port: u16, name: &str) -> Client {
    Client::login_new(SocketAddr::from(([127, 0, 0, 1], port)), WireFormat::Json, name)
}

/// Reads until the shutdown notice; true if it came.
fn got_shutdown_notice(c: &mut Client) -> bool {
    let end = Instant::now() + PROCESS_DEADLINE;
    loop {
        match c.recv_by(end) {
            Ok(ServerMsg::SystemMsg { text, .. }) if text.contains("shutting down") => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

#[test]
fn binary_sigterm_shuts_down_gracefully() {
    let dir = TempDir::new("sigterm");
    let args = ["--bind", "127.0.0.1", "--port", "0", "--no-tls", "--shards", "1", "--log-level", "debug"];
    let (mut server, port) = start(&dir, &args);
    let mut alice = login(port, "alice");
    server.wait_for("accepted");
    server.signal(libc::SIGTERM);
    assert!(got_shutdown_notice(&mut alice), "no SYSTEM_MSG before close; log:\n{}", server.log());
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    let log = server.log();
    assert!(log.contains("SIGTERM") && log.contains("shutting down") && log.contains("stopped"), "{log}");
}

#[test]
fn binary_config_file_is_applied_under_the_command_line() {
    let dir = TempDir::new("config");
    let path = dir.path().join("chat.toml");
    // log_level = "warn" would hide the "listening" line; the command line's "info" wins.
    std::fs::write(&path, "bind = \"127.0.0.1\"\nport = 0\nno_tls = true\nshards = 1\nlog_level = \"warn\"\n").unwrap();
    let (mut server, port) = start(&dir, &["--config", path.to_str().unwrap(), "--log-level", "info"]);
    let mut bob = login(port, "bob");
    server.signal(libc::SIGINT);
    assert!(got_shutdown_notice(&mut bob));
    assert_eq!(server.wait_exit().code(), Some(0), "log:\n{}", server.log());
    assert!(server.log().contains("SIGINT"));
}

#[test]
fn binary_serves_metrics() {
    let dir = TempDir::new("metrics");
    let args = ["--bind", "127.0.0.1", "--port", "0", "--no-tls", "--shards", "2", "--metrics", "127.0.0.1:0"];
    let (mut server, port) = start(&dir, &args);
    let line = server.wait_for("metrics at http://");
    let url = line.split("http://").nth(1).unwrap();
    let metrics: SocketAddr = url.split('/').next().unwrap().parse().unwrap();
    let mut alice = login(port, "alice");
    let _bob = login(port, "bob");
    alice.say("hello");
    // Counters are published once per loop turn: wait until the scrape shows the exchange.
    let end = Instant::now() + PROCESS_DEADLINE;
    let body = loop {
        let r = get(metrics, "/metrics");
        assert_eq!(r.status, 200, "{r:?}");
        if r.body.lines().any(|l| l == "chatproto_logins_total 2")
            && r.body.lines().any(|l| l == "chatproto_room_messages_total 1")
        {
            break r.body;
        }
        assert!(Instant::now() < end, "counters never showed the exchange:\n{}", r.body);
        std::thread::sleep(Duration::from_millis(50));
    };
    for line in ["chatproto_shards 2", "chatproto_connections_open 2", "chatproto_connections{protocol=\"json\"} 2"] {
        assert!(body.lines().any(|l| l == line), "missing {line:?} in:\n{body}");
    }
    assert_eq!(get(metrics, "/").status, 404);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit().code(), Some(0), "log:\n{}", server.log());
}

#[test]
fn binary_bad_config_names_the_key_and_fails() {
    let dir = TempDir::new("bad");
    let cases = [
        ("unknown.toml", "port = 5555\nmax_conections = 10\n", "max_conections"),
        ("type.toml", "no_tls = true\nport = \"five\"\n", "key `port`"),
        ("range.toml", "msg_burst = 0\n", "`msg_burst`"),
        ("syntax.toml", "port = = 1\n", "line 1"),
    ];
    for (name, text, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--config", path.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: started anyway: {stderr}");
        assert_eq!(out.status.code(), Some(78), "{name}: {stderr}");
        assert!(stderr.contains(needle) && stderr.contains(name), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
    }
    let out =
        Command::new(env!("CARGO_BIN_EXE_chat-server")).args(["--config", "/nonexistent/x.toml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.toml"));
    let out = Command::new(env!("CARGO_BIN_EXE_chat-server")).args(["--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
}
