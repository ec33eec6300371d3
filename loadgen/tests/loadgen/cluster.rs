//! Runs over a real cluster: `nats-server -js` and `chat-server --cluster` nodes as child
//! processes on free loopback ports. Bots spread over two nodes get everything; with
//! `--failover`, bots whose node is SIGKILLed (by its PID) come back on the other node, resume
//! their rooms, and every acknowledged message reaches every member exactly once.
//!
//! Without `nats-server` (or the `chat-server` binary beside the test, which `cargo test
//! --workspace` builds) these print a skip notice and pass, unless `CHATPROTO_REQUIRE_NATS=1`.

use loadgen::report::Report;
use loadgen::scenario::{Failover, Rate, Scenario};
use loadgen::Hooks;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest a child may take to listen or to log that it joined the cluster (debug build,
/// loaded machine).
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Claim lifetime given to the nodes (the smallest allowed), so a dead node's names expire soon.
const TTL_S: &str = "2";
/// Messages a node replays per room: more than a room gets while a killed node's bots are away,
/// so that a resume has no gap.
const HISTORY_LEN: &str = "1000";

/// A child process, SIGKILLed (its own PID) and reaped on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The tools a cluster test needs, or `None` with a notice (a failure when required).
fn tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let nats = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/bin".into()])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file());
    // target/debug/deps/loadgen-HASH → target/debug/chat-server
    let exe = std::env::current_exe().expect("test executable");
    let server = exe.parent().and_then(Path::parent).map(|d| d.join("chat-server")).filter(|p| p.is_file());
    let required = std::env::var("CHATPROTO_REQUIRE_NATS").is_ok_and(|v| v == "1");
    match (nats, server) {
        (Some(n), Some(s)) => Some((n, s)),
        (n, s) => {
            let missing = if n.is_none() { "nats-server is not installed" } else { "no chat-server binary" };
            assert!(!required, "{missing} and CHATPROTO_REQUIRE_NATS=1 (s: {s:?})");
            eprintln!("SKIPPED {test}: {missing} (apt-get install nats-server; cargo build --bin chat-server)");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

fn spawn(bin: &Path, args: &[&str], log: PathBuf) -> Proc {
    let out = std::fs::File::create(&log).expect("log file");
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .spawn()
        .expect("start a child");
    Proc { child, log }
}

/// Waits (bounded) until `addr` accepts connections and, if given, `needle` is in the log.
fn wait_ready(p: &mut Proc, addr: SocketAddr, needle: Option<&str>) {
    let end = Instant::now() + START_DEADLINE;
    loop {
        let listening = TcpStream::connect(addr).is_ok();
        if listening && needle.is_none_or(|n| p.log().contains(n)) {
            return;
        }
        assert!(p.child.try_wait().expect("try_wait").is_none(), "child exited; log:\n{}", p.log());
        assert!(Instant::now() < end, "not ready on {addr}; log:\n{}", p.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nats-server with JetStream plus `nodes` chat-server nodes; returns them and the nodes' addresses.
fn cluster(test: &str, nodes: &[&str]) -> Option<(Proc, Vec<Proc>, Vec<SocketAddr>)> {
    let (nats_bin, server_bin) = tools(test)?;
    let dir = super::temp_dir(test);
    let port = free_port().to_string();
    let js = dir.join("js");
    let js = js.to_str().expect("utf-8 temp path");
    let mut nats = spawn(&nats_bin, &["-js", "-a", "127.0.0.1", "-p", &port, "-sd", js], dir.join("nats.log"));
    wait_ready(&mut nats, format!("127.0.0.1:{port}").parse().unwrap(), None);
    let url = format!("nats://127.0.0.1:{port}");
    let (mut procs, mut addrs) = (Vec::new(), Vec::new());
    for name in nodes {
        let p = free_port().to_string();
        let data = dir.join(format!("data-{name}"));
        let args = [
            "--bind",
            "127.0.0.1",
            "--port",
            &p,
            "--no-tls",
            "--shards",
            "2",
            "--history",
            "memory",
            "--msg-rate",
            "0",
            "--history-len",
            HISTORY_LEN,
            "--cluster",
            &url,
            "--node",
            name,
            "--cluster-name-ttl",
            TTL_S,
            "--data-dir",
            data.to_str().expect("utf-8 temp path"),
        ];
        let mut node = spawn(&server_bin, &args, dir.join(format!("node-{name}.log")));
        let addr: SocketAddr = format!("127.0.0.1:{p}").parse().unwrap();
        wait_ready(&mut node, addr, Some("cluster: joined through NATS"));
        procs.push(node);
        addrs.push(addr);
    }
    Some((nats, procs, addrs))
}

fn cluster_scenario(addrs: &[SocketAddr]) -> Scenario {
    let mut s = Scenario::new(addrs[0]);
    s.addrs = addrs.to_vec();
    s.bots = 20;
    s.rooms = 4;
    s.rate = Rate::PerBot(4.0);
    s.payload = 80;
    s.warmup = Duration::from_millis(500);
    s.duration = Duration::from_millis(1500);
    s.drain = Duration::from_secs(10);
    s.threads = 2;
    s
}

/// Every delivery is accounted for: delivered + lost + lost of unacknowledged == expected, and
/// no message reached a bot twice.
fn assert_consistent(r: &Report) {
    for a in [&r.deliveries.measured, &r.deliveries.warmup] {
        assert_eq!(a.delivered + a.lost + a.lost_unacked, a.expected, "{a:?}\n{}", r.summary());
        assert_eq!((a.duplicated, a.phantom), (0, 0), "{a:?}\n{}", r.summary());
    }
    let audited = r.deliveries.measured.delivered + r.deliveries.warmup.delivered;
    assert_eq!(r.messages.delivered_total, audited, "counters and ledger agree\n{}", r.summary());
    assert_eq!(r.messages.acks, r.messages.acks_expected, "{}", r.summary());
}

#[test]
fn a_run_over_two_nodes_spreads_bots_over_both_and_delivers_everything() {
    let Some((_nats, _nodes, addrs)) = cluster("two_nodes", &["a", "b"]) else { return };
    let mut s = cluster_scenario(&addrs);
    s.private_share = 0.2;
    let r = loadgen::run(s, Hooks::default()).expect("run");
    assert!(r.ok(), "errors: {:#?}\n{}", r.errors, r.summary());
    let placed: Vec<(SocketAddr, u64)> = r.addresses.iter().map(|a| (a.addr, a.bots)).collect();
    assert_eq!(placed, vec![(addrs[0], 10), (addrs[1], 10)]);
    assert_eq!(r.bots.ready, 20);
    assert!(r.messages.sent_measured > 0 && r.messages.delivered_measured == r.messages.expected_measured);
    assert_consistent(&r);
}

#[test]
fn a_node_killed_under_load_with_failover_brings_every_bot_back() {
    let Some((_nats, mut nodes, addrs)) = cluster("node_kill", &["a", "b"]) else { return };
    let mut s = cluster_scenario(&addrs);
    // No private messages: a PM to a bot that is away has no replay, so it would be lost by design.
    s.private_share = 0.0;
    s.duration = Duration::from_secs(6);
    s.drain = Duration::from_secs(5);
    s.failover = Some(Failover { timeout: Duration::from_secs(25), dedupe_ids: 1024 });
    let (tx, rx) = mpsc::channel::<()>();
    let hooks = Hooks {
        run_started: Some(Box::new(move || {
            let _ = tx.send(());
        })),
        ..Hooks::default()
    };
    let run = std::thread::spawn(move || loadgen::run(s, hooks).expect("run"));
    rx.recv_timeout(START_DEADLINE * 2).expect("sending started");
    // One second into the run (past the warm-up): SIGKILL node b, by its PID.
    std::thread::sleep(Duration::from_secs(1));
    let b_bots = 10; // round-robin room by room: half the bots on node b
    nodes[1].kill();
    let r = run.join().expect("loadgen thread");
    let f = r.failover.as_ref().expect("fail-over section");
    assert_eq!(r.addresses.iter().map(|a| a.bots).collect::<Vec<_>>(), [20 - b_bots, b_bots]);
    assert_eq!(f.dropped, b_bots, "every bot of the killed node dropped\n{}", r.summary());
    assert_eq!((f.back, f.gave_up, f.still_away), (b_bots, 0, 0), "every bot came back\n{}", r.summary());
    assert!(f.back_max_s > 0.0 && f.back_p50_s <= f.back_max_s);
    assert!(f.replay_ends >= b_bots, "each resumed with since: {}", r.summary());
    assert_consistent(&r);
    // Every acknowledged message is in the cluster's log (the JetStream stream), so the resumes
    // replay whatever the bots missed while away: nothing acknowledged is lost.
    assert_eq!(f.replay_gaps, 0, "{}", r.summary());
    assert_eq!(r.deliveries.measured.lost + r.deliveries.warmup.lost, 0, "{}", r.summary());
    eprintln!(
        "node kill: lost {} (acked), {} of unacked; back max {:.2} s",
        r.deliveries.measured.lost + r.deliveries.warmup.lost,
        r.deliveries.measured.lost_unacked + r.deliveries.warmup.lost_unacked,
        f.back_max_s
    );
}
