//! A real `nats-server -js` as a child process on a free loopback port, for the cluster tests.
//! Killed (SIGKILL, its own PID only) and reaped on drop.
//!
//! Without `nats-server` on the PATH the cluster tests print a skip notice and pass, unless
//! `CHATPROTO_REQUIRE_NATS=1` (set by `.ci/run`), which makes a missing server a failure.

use super::process::PROCESS_DEADLINE;
use super::{ServerProcess, TempDir};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nats-server.
pub struct NatsServer {
    child: Child,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    /// The binary.
    bin: PathBuf,
    /// Its log and JetStream store.
    dir: TempDir,
    /// Arguments beyond the port and store (a cluster's names and routes).
    extra: Vec<String>,
}

/// Where `nats-server` is, if installed.
fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/bin".into()])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

impl NatsServer {
    /// Starts one, or returns `None` (with a notice) when nats-server is not installed and not
    /// required.
    #[track_caller]
    pub fn start(test: &str) -> Option<NatsServer> {
        let Some(bin) = find() else {
            let required = std::env::var("CHATPROTO_REQUIRE_NATS").is_ok_and(|v| v == "1");
            assert!(!required, "nats-server is not installed and CHATPROTO_REQUIRE_NATS=1");
            eprintln!("SKIPPED {test}: nats-server is not installed (apt-get install nats-server)");
            return None;
        };
        // A free port: bind port 0, note the number, let go of it for nats-server.
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let dir = TempDir::new("nats");
        let child = spawn(&bin, port, &dir, &[]);
        Some(NatsServer { child, port, bin, dir, extra: Vec::new() })
    }

    /// Kills it (SIGKILL, its own PID) and starts it again on the same port; with `wipe`, its
    /// JetStream store is deleted first (a NATS that comes back empty).
    #[track_caller]
    pub fn restart(&mut self, wipe: bool) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if wipe {
            std::fs::remove_dir_all(self.dir.path().join("js")).expect("wipe the store");
        }
        self.child = spawn(&self.bin, self.port, &self.dir, &self.extra);
    }

    /// Its URL for `--cluster`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL, its own PID only) for good.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }
}

/// nats-servers joined in one JetStream cluster (routes on free loopback ports), each started
/// like [`NatsServer`]; ready once every one knows the cluster's metadata leader.
pub struct NatsCluster {
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    #[track_caller]
    pub fn start(test: &str, n: usize) -> Option<NatsCluster> {
        let first = NatsServer::start(test)?;
        let bin = first.bin.clone();
        drop(first);
        let free = || TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let routes: Vec<u16> = (0..n).map(|_| free()).collect();
        let all = routes.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
        let servers: Vec<NatsServer> = (0..n)
            .map(|i| {
                let (port, dir) = (free(), TempDir::new("nats"));
                let route = format!("nats://127.0.0.1:{}", routes[i]);
                let extra: Vec<String> = [
                    "--server_name",
                    &format!("s{i}"),
                    "--cluster_name",
                    "chat",
                    "--cluster",
                    &route,
                    "--routes",
                    &all,
                ]
                .iter()
                .map(|a| a.to_string())
                .collect();
                let child = spawn(&bin, port, &dir, &extra);
                NatsServer { child, port, bin: bin.clone(), dir, extra }
            })
            .collect();
        let end = Instant::now() + PROCESS_DEADLINE;
        while !servers.iter().all(|s| s.log().contains("metadata leader")) {
            assert!(Instant::now() < end, "the NATS cluster never elected a leader");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(NatsCluster { servers })
    }

    /// Every server's URL for `--cluster`, starting with server `first`.
    pub fn urls(&self, first: usize) -> String {
        let n = self.servers.len();
        (0..n).map(|i| self.servers[(first + i) % n].url()).collect::<Vec<_>>().join(",")
    }
}

/// Starts nats-server with JetStream on `port`, its store in `dir`, and waits until it listens.
#[track_caller]
fn spawn(bin: &Path, port: u16, dir: &TempDir, extra: &[String]) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.path().join("nats.log")).expect("log");
    let child = Command::new(bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path().join("js"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start nats-server");
    let end = Instant::now() + PROCESS_DEADLINE;
    while TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_err() {
        assert!(Instant::now() < end, "nats-server never listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Claim lifetime given to the nodes (the smallest allowed), so a dead node's names expire soon.
pub const TTL_S: u64 = 2;

/// A cluster node: the `chat-server` binary with `--cluster` (2 shards, history in memory,
/// `--cluster-name-ttl` [`TTL_S`]).
pub struct Node {
    /// The server process (killed on drop).
    pub process: ServerProcess,
    /// Its chat port.
    pub addr: SocketAddr,
    _dir: TempDir,
}

pub fn node(nats: &NatsServer, name: &str) -> Node {
    node_with(nats, name, &[])
}

pub fn node_with(nats: &NatsServer, name: &str, extra: &[&str]) -> Node {
    node_at(&nats.url(), name, extra)
}

pub fn node_at(url: &str, name: &str, extra: &[&str]) -> Node {
    let dir = TempDir::new(name);
    let ttl = TTL_S.to_string();
    let args = [
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--no-tls",
        "--shards",
        "2",
        "--history",
        "memory",
        "--cluster",
        url,
        "--node",
        name,
        "--cluster-name-ttl",
        &ttl,
    ];
    let args: Vec<&str> = args.iter().chain(extra).copied().collect();
    let process = ServerProcess::start(dir.path(), &args);
    let addr = process.wait_listening();
    process.wait_for("cluster: joined through NATS");
    Node { process, addr, _dir: dir }
}
