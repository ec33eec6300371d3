//! In-process servers on `127.0.0.1:0`, their configs and counters, the open-files limit, and
//! temporary directories.

use super::{raise_fd_limit, spawn, RunningServer, ServerConfig, StatsSnapshot, DEADLINE};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Spawns a plaintext loopback server on an OS-chosen port.
pub fn server() -> RunningServer {
    server_with(ServerConfig::loopback())
}

/// Spawns a server with `cfg`.
#[track_caller]
pub fn server_with(cfg: ServerConfig) -> RunningServer {
    spawn(cfg).unwrap_or_else(|e| panic!("spawn server: {e}"))
}

/// A plaintext loopback config without the message rate limit (for floods and big batches).
pub fn unlimited_config() -> ServerConfig {
    let mut cfg = ServerConfig::loopback();
    cfg.rate_limit.rate = 0.0;
    cfg
}

/// A loopback config with TLS on, generating a self-signed certificate into `dir`.
pub fn tls_config(dir: &TempDir) -> ServerConfig {
    let mut cfg = ServerConfig::loopback();
    cfg.tls.enabled = true;
    cfg.tls.cert = dir.cert();
    cfg.tls.key = dir.path().join("server.key");
    cfg
}

/// Waits (bounded) until `cond` holds for the server's counters; panics with the last snapshot.
#[track_caller]
pub fn wait_for_stats(
    server: &RunningServer,
    what: &str,
    mut cond: impl FnMut(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let s = server.handle.stats();
        if cond(&s) {
            return s;
        }
        if Instant::now() >= deadline {
            panic!("stats never showed {what}: {s:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Skips (returns false with a note) when fewer than `need` descriptors are available.
pub fn have_fds(need: u64) -> bool {
    let have = raise_fd_limit();
    if have < need {
        eprintln!("skipped: needs {need} file descriptors, the hard limit is {have}");
        return false;
    }
    true
}

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `chatproto-it-<pid>-<n>-<tag>`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chatproto-it-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The server certificate path used by [`tls_config`].
    pub fn cert(&self) -> PathBuf {
        self.0.join("server.crt")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
