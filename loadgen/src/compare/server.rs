//! The chat-server each mode runs against: a fresh child process on a loopback port (with a
//! self-signed certificate and an empty data folder), or the external one given with `--addr`.

use anyhow::{bail, Context};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::options::CompareOptions;
use crate::report::Report;
use crate::scenario::{Scenario, TlsOptions, TlsTrust, WireFormat};

/// Runs `f` against the right server for the mode, starting and stopping one if needed.
#[allow(clippy::too_many_arguments)]
pub(super) fn with_server(
    opts: &CompareOptions,
    bin: &Path,
    work: &Path,
    label: &str,
    format: WireFormat,
    tls: bool,
    s: &mut Scenario,
    f: impl FnOnce(&Scenario) -> anyhow::Result<Report>,
) -> anyhow::Result<Report> {
    s.format = format;
    if let Some((addr, pid, trust)) = &opts.external {
        s.addr = *addr;
        s.server_pid = *pid;
        s.tls =
            if tls { Some(trust.clone().context("TLS modes against --addr need --ca or --insecure")?) } else { None };
        return f(s);
    }
    let mut server = ServerProc::start(bin, work, label, opts.server_shards, &opts.server_args)?;
    s.addr = server.addr;
    s.server_pid = Some(server.pid);
    s.tls = tls.then(|| TlsOptions { trust: TlsTrust::Ca(server.cert.clone()), server_name: "localhost".into() });
    let r = f(s);
    let early_exit = server.exited();
    let log = server.log.clone();
    server.stop();
    let mut r = r?;
    if let Some(status) = early_exit {
        // A crash (exit 101 is a panic) or someone else's signal: either way, say so.
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(5).collect();
        r.errors.push(format!(
            "the server exited during the run ({status}); last log lines: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    Ok(r)
}

/// A chat-server child process on a loopback port.
struct ServerProc {
    child: Child,
    addr: SocketAddr,
    pid: u32,
    cert: PathBuf,
    /// Its stdout and stderr.
    log: PathBuf,
}

impl ServerProc {
    fn start(bin: &Path, work: &Path, label: &str, shards: usize, extra: &[String]) -> anyhow::Result<ServerProc> {
        let port = crate::net::free_port()?;
        let cert = work.join("server.crt");
        let key = work.join("server.key");
        // A fresh data folder per server: no history from an earlier run is replayed on join.
        let data = work.join(format!("data-{port}"));
        let log_path = work.join(format!("server-{}-{port}.log", label.replace('+', "-")));
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = Command::new(bin);
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--log-level", "warn"])
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--data-dir")
            .arg(&data)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if shards > 0 {
            cmd.args(["--shards", &shards.to_string()]);
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("{} exited at start ({status}); see {}", bin.display(), work.display());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("{} did not accept connections on {addr} within 15 s", bin.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid = child.id();
        Ok(ServerProc { child, addr, pid, cert, log: log_path })
    }

    /// `Some(status)` if the server is already gone.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then SIGKILL if it is still there after the server's grace period.
    fn stop(mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
