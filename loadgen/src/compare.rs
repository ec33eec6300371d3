//! `loadgen compare`: one scenario over binary, JSON, binary+TLS and JSON+TLS, written to
//! `results/<date>-compare/`.
//!
//! For each mode it starts a fresh `chat-server` (from the loadgen executable's own directory,
//! loopback, a free port, a self-signed certificate in a temp folder) or uses the one given with
//! `--addr`, then runs two things:
//!
//! 1. the **session**: the seed's shape, a few users chatting in one room for a few minutes,
//!    replayed faster (the bytes of a session depend on what is said, not on how fast), and
//! 2. the **load**: the scenario from the command line, with the server's CPU and memory.
//!
//! The folder gets `README.md` (command, git revision, machine, tables), `compare.json` (every
//! report), `table.md`, one `.hgrm` per mode, and `latency.png` / `latency-uncorrected.png`.

use anyhow::{bail, Context};
use serde::Serialize;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::hgrm;
use crate::machine::{self, Machine};
use crate::plot;
use crate::report::{n, Report};
use crate::runner::{self, Hooks};
use crate::scenario::{Rate, Scenario, TlsOptions, TlsTrust, WireFormat};

/// The seed-shaped chat session.
#[derive(Clone, Debug, Serialize)]
pub struct SessionShape {
    /// Users in the one room.
    pub users: u32,
    /// Nominal session length, seconds (for the bandwidth figure).
    pub nominal_secs: f64,
    /// Messages each user sends.
    pub messages_per_user: u32,
    /// Wall-clock seconds the session is replayed in.
    pub replay_secs: f64,
    /// Chat text length.
    pub payload: usize,
}

/// What `compare` needs.
pub struct CompareOptions {
    /// The load scenario (format and TLS are set per mode).
    pub scenario: Scenario,
    /// Use this server (address, pid, TLS trust) instead of starting one per mode.
    pub external: Option<(SocketAddr, Option<u32>, Option<TlsOptions>)>,
    /// chat-server binary; default: next to the current executable.
    pub server_bin: Option<PathBuf>,
    /// `--shards` for started servers (0: server default).
    pub server_shards: usize,
    /// Extra arguments for started servers.
    pub server_args: Vec<String>,
    /// Parent folder of `<date>-compare/`.
    pub out: PathBuf,
    /// The session part, if wanted.
    pub session: Option<SessionShape>,
    /// Load runs per mode (rounds over all four modes); the tables show medians.
    pub repeat: u32,
    /// The command line, for the README.
    pub command_line: String,
}

/// All load runs of one mode.
pub struct ModeRuns {
    /// `binary`, `json`, `binary+tls`, `json+tls`.
    pub mode: String,
    /// One report per repeat.
    pub runs: Vec<Report>,
}

impl ModeRuns {
    /// Median over the runs of `f`.
    pub fn median(&self, f: impl Fn(&Report) -> f64) -> f64 {
        median(self.runs.iter().map(f).collect())
    }

    /// Min and max over the runs of `f`.
    pub fn range(&self, f: impl Fn(&Report) -> f64) -> (f64, f64) {
        let v: Vec<f64> = self.runs.iter().map(f).collect();
        (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    }

    /// All runs' histograms added together (`which` picks one).
    pub fn merged(&self, which: impl Fn(&Report) -> &hdrhistogram::Histogram<u64>) -> hdrhistogram::Histogram<u64> {
        let mut h = crate::stats::new_hist();
        for r in &self.runs {
            // Same bounds everywhere: cannot fail.
            let _ = h.add(which(r));
        }
        h
    }
}

/// Median of `v` (mean of the middle two for an even count; 0 when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// What `compare` produced.
pub struct Outcome {
    /// The results folder.
    pub dir: PathBuf,
    /// The Markdown tables.
    pub table: String,
    /// True when every run was clean.
    pub ok: bool,
}

/// The four modes, in the seed's table order.
pub const MODES: [(WireFormat, bool); 4] =
    [(WireFormat::Json, false), (WireFormat::Json, true), (WireFormat::Binary, false), (WireFormat::Binary, true)];

#[derive(Serialize)]
struct CompareJson<'a> {
    date: String,
    git_revision: String,
    machine: &'a Machine,
    command: &'a str,
    session_shape: &'a Option<SessionShape>,
    session: Vec<&'a Report>,
    repeat: u32,
    load: Vec<LoadJson<'a>>,
}

#[derive(Serialize)]
struct LoadJson<'a> {
    mode: &'a str,
    runs: Vec<&'a Report>,
}

/// Runs the comparison and writes the folder.
pub fn run(opts: CompareOptions) -> anyhow::Result<Outcome> {
    let date = machine::today();
    let dir = unique_dir(&opts.out, &format!("{date}-compare"))?;
    let machine = Machine::describe();
    let git = machine::git_revision();
    let work = std::env::temp_dir().join(format!("loadgen-compare-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let server_bin = match &opts.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.parent().context("executable directory")?.join("chat-server"),
    };
    if opts.external.is_none() && !server_bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --workspace) or pass --server-bin / --addr",
            server_bin.display()
        );
    }

    let mut sessions = Vec::new();
    if let Some(shape) = &opts.session {
        for (format, tls) in MODES {
            let label = mode_label(format, tls);
            eprintln!("== {label}: session ({} users, {} messages each)", shape.users, shape.messages_per_user);
            let mut s = session_scenario(&opts.scenario, shape);
            let r = with_server(&opts, &server_bin, &work, &label, format, tls, &mut s, |s| {
                runner::run(s.clone(), Hooks::default())
            })?;
            eprint!("{}", r.summary());
            sessions.push(r);
        }
    }
    let mut loads: Vec<ModeRuns> =
        MODES.iter().map(|&(f, t)| ModeRuns { mode: mode_label(f, t), runs: Vec::new() }).collect();
    for round in 0..opts.repeat.max(1) {
        for (i, (format, tls)) in MODES.into_iter().enumerate() {
            let label = mode_label(format, tls);
            eprintln!("== {label}: load ({} bots), round {}/{}", opts.scenario.bots, round + 1, opts.repeat.max(1));
            let mut s = opts.scenario.clone();
            let r = with_server(&opts, &server_bin, &work, &label, format, tls, &mut s, |s| {
                runner::run(s.clone(), Hooks::default())
            })?;
            eprint!("{}", r.summary());
            loads[i].runs.push(r);
        }
    }
    for m in &loads {
        let h = m.merged(|r| &r.hists.corrected);
        std::fs::write(dir.join(format!("{}.hgrm", m.mode.replace('+', "-"))), hgrm::render_ms(&h))?;
    }
    if sessions.iter().chain(loads.iter().flat_map(|m| &m.runs)).all(Report::ok) {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("some runs had errors: server logs kept in {}", work.display());
    }

    let table = tables(&sessions, &loads, opts.session.as_ref());
    std::fs::write(dir.join("table.md"), &table)?;
    let json = CompareJson {
        date: date.clone(),
        git_revision: git.clone(),
        machine: &machine,
        command: &opts.command_line,
        session_shape: &opts.session,
        session: sessions.iter().collect(),
        repeat: opts.repeat.max(1),
        load: loads.iter().map(|m| LoadJson { mode: &m.mode, runs: m.runs.iter().collect() }).collect(),
    };
    std::fs::write(dir.join("compare.json"), serde_json::to_string_pretty(&json)?)?;
    let runs = if opts.repeat > 1 { format!(", {} runs merged", opts.repeat) } else { String::new() };
    let title = format!(
        "{} bots, {:.0} msg/s, {} B: delivery latency (corrected{runs})",
        opts.scenario.bots,
        opts.scenario.total_rate(),
        opts.scenario.payload
    );
    let merged: Vec<(String, hdrhistogram::Histogram<u64>)> =
        loads.iter().map(|m| (m.mode.clone(), m.merged(|r| &r.hists.corrected))).collect();
    let series: Vec<(String, &hdrhistogram::Histogram<u64>)> = merged.iter().map(|(l, h)| (l.clone(), h)).collect();
    plot::latency_spectrum(&dir.join("latency.png"), &title, &series)?;
    let merged: Vec<(String, hdrhistogram::Histogram<u64>)> =
        loads.iter().map(|m| (m.mode.clone(), m.merged(|r| &r.hists.uncorrected))).collect();
    let series: Vec<(String, &hdrhistogram::Histogram<u64>)> = merged.iter().map(|(l, h)| (l.clone(), h)).collect();
    plot::latency_spectrum(
        &dir.join("latency-uncorrected.png"),
        &title.replace("(corrected", "(uncorrected"),
        &series,
    )?;

    let ok = sessions.iter().chain(loads.iter().flat_map(|m| &m.runs)).all(Report::ok);
    let readme = readme(&opts, &machine, &git, &date, &table, &sessions, &loads, ok);
    std::fs::write(dir.join("README.md"), readme)?;
    Ok(Outcome { dir, table, ok })
}

fn mode_label(format: WireFormat, tls: bool) -> String {
    if tls {
        format!("{}+tls", format.name())
    } else {
        format.name().to_string()
    }
}

/// The session scenario: `users` bots in `general`, each sending `messages_per_user` messages.
fn session_scenario(base: &Scenario, shape: &SessionShape) -> Scenario {
    let mut s = base.clone();
    s.bots = shape.users;
    s.rooms = 1;
    s.rate = Rate::PerBot(shape.messages_per_user as f64 / shape.replay_secs);
    s.duration = Duration::from_secs_f64(shape.replay_secs);
    s.warmup = Duration::ZERO;
    s.payload = shape.payload;
    s.threads = 1;
    s.connect_rate = 0.0;
    s
}

/// Runs `f` against the right server for the mode, starting and stopping one if needed.
#[allow(clippy::too_many_arguments)]
fn with_server(
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

fn unique_dir(parent: &Path, name: &str) -> anyhow::Result<PathBuf> {
    for i in 1..1000 {
        let d = if i == 1 { parent.join(name) } else { parent.join(format!("{name}-{i}")) };
        if !d.exists() {
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            return Ok(d);
        }
    }
    bail!("no free folder name for {name} in {}", parent.display())
}

fn vs(base: f64, x: f64) -> String {
    if base <= 0.0 {
        return "-".into();
    }
    let d = (x / base - 1.0) * 100.0;
    if d.abs() < 0.05 {
        "baseline".into()
    } else {
        format!("{d:+.1}%")
    }
}

/// The Markdown tables: the session (seed's shape) and the load.
pub fn tables(sessions: &[Report], loads: &[ModeRuns], shape: Option<&SessionShape>) -> String {
    let mut t = String::new();
    if let Some(shape) = shape {
        let base = sessions
            .iter()
            .find(|r| r.mode == "json")
            .map_or(0.0, |r| (r.wire.written_total + r.wire.read_total) as f64);
        let _ = writeln!(
            t,
            "### Chat session: {} users, {} messages each, {:.0} s nominal (both directions, all users)\n",
            shape.users, shape.messages_per_user, shape.nominal_secs
        );
        let _ = writeln!(t, "| Mode | Bytes on the wire | Bandwidth | vs JSON | Messages sent | Deliveries |");
        let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|");
        for r in sessions {
            let bytes = (r.wire.written_total + r.wire.read_total) as f64;
            let _ = writeln!(
                t,
                "| {} | {} B | {:.2} Kbps | {} | {} | {}/{} |",
                r.mode,
                n(bytes as u64),
                bytes * 8.0 / shape.nominal_secs / 1000.0,
                vs(base, bytes),
                n(r.messages.sent_total),
                n(r.messages.delivered_total),
                n(r.messages.expected_total)
            );
        }
        t.push('\n');
    }
    if let Some(first) = loads.first().and_then(|m| m.runs.first()) {
        let sc = &first.scenario;
        let repeats = loads.iter().map(|m| m.runs.len()).max().unwrap_or(0);
        let wire = |r: &Report| (r.wire.written_measured + r.wire.read_measured) as f64;
        let base = loads.iter().find(|m| m.mode == "json").map_or(0.0, |m| m.median(wire));
        let _ = writeln!(
            t,
            "### Load: {} bots, {} rooms, {:.0} msg/s, {} B text, {:.0}% private, {:.0} s measured{}\n",
            sc.bots,
            sc.rooms,
            sc.total_rate(),
            sc.payload,
            sc.private_share * 100.0,
            sc.duration.as_secs_f64(),
            if repeats > 1 { format!(" — medians of {repeats} runs per mode") } else { String::new() }
        );
        let _ = writeln!(
            t,
            "| Mode | B/msg sent | B/delivery | Wire (both ways) | vs JSON | p50 | p99{} | p99.9 | max | uncorr. p99 | Server CPU | CPU µs/delivery | Server peak RSS | Delivered (all runs) |",
            if repeats > 1 { " (range)" } else { "" }
        );
        let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for m in loads {
            let ms = |f: fn(&Report) -> f64| m.median(f) / 1e3;
            let p99 = ms(|r| r.latency.corrected.p99_us);
            let p99 = if repeats > 1 {
                let (lo, hi) = m.range(|r| r.latency.corrected.p99_us);
                format!("{p99:.3} ms ({:.3}–{:.3})", lo / 1e3, hi / 1e3)
            } else {
                format!("{p99:.3} ms")
            };
            let has_server = m.runs.iter().all(|r| r.server.is_some());
            let server = |f: fn(&crate::report::ServerCost) -> f64| m.median(|r| r.server.as_ref().map_or(0.0, f));
            let (cpu, cpu_d, rss) = if has_server {
                (
                    format!("{:.0}%", server(|s| s.cpu_cores_measured) * 100.0),
                    format!("{:.2}", server(|s| s.cpu_us_per_delivery)),
                    crate::report::bytes(server(|s| s.peak_rss_bytes as f64) as u64),
                )
            } else {
                ("-".into(), "-".into(), "-".into())
            };
            let delivered: u64 = m.runs.iter().map(|r| r.messages.delivered_measured).sum();
            let expected: u64 = m.runs.iter().map(|r| r.messages.expected_measured).sum();
            let clean = m.runs.iter().all(Report::ok);
            let _ = writeln!(
                t,
                "| {} | {:.1} | {:.1} | {:.0} kbit/s | {} | {:.3} ms | {} | {:.3} ms | {:.3} ms | {:.3} ms | {} | {} | {} | {}/{}{} |",
                m.mode,
                m.median(|r| r.wire.written_per_message),
                m.median(|r| r.wire.read_per_delivery),
                m.median(|r| r.wire.kbps),
                vs(base, m.median(wire)),
                ms(|r| r.latency.corrected.p50_us),
                p99,
                ms(|r| r.latency.corrected.p99_9_us),
                ms(|r| r.latency.corrected.max_us),
                ms(|r| r.latency.uncorrected.p99_us),
                cpu,
                cpu_d,
                rss,
                n(delivered),
                n(expected),
                if clean { "" } else { " ⚠" }
            );
        }
    }
    t
}

/// The folder's `README.md`: where and how the runs were made, the tables, how to read them, and
/// every run's errors. `ok` says whether every run was clean.
#[allow(clippy::too_many_arguments)]
pub fn readme(
    opts: &CompareOptions,
    m: &Machine,
    git: &str,
    date: &str,
    table: &str,
    sessions: &[Report],
    loads: &[ModeRuns],
    ok: bool,
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# JSON vs binary vs TLS — {date}\n");
    let _ = writeln!(o, "- **Machine:** {}", m.label());
    let _ = writeln!(o, "- **Git revision:** `{git}`");
    let _ = writeln!(o, "- **Command:** `{}`", opts.command_line);
    match &opts.external {
        Some((addr, _, _)) => {
            let _ = writeln!(o, "- **Server:** the one already running at {addr}");
        }
        None => {
            let _ = writeln!(
                o,
                "- **Server:** a fresh `chat-server --bind 127.0.0.1 --port <free> --cert <tmp> --key <tmp> --data-dir <tmp, empty>{}{}` per mode and part (all other settings default), on the same machine",
                if opts.server_shards > 0 { format!(" --shards {}", opts.server_shards) } else { String::new() },
                opts.server_args.iter().map(|a| format!(" {a}")).collect::<String>()
            );
        }
    }
    let loads_seen: Vec<f64> = sessions
        .iter()
        .chain(loads.iter().flat_map(|m| m.runs.iter()))
        .flat_map(|r| [r.loadavg_start, r.loadavg_end])
        .flatten()
        .collect();
    if !loads_seen.is_empty() {
        let lo = loads_seen.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = loads_seen.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(
            o,
            "- **Machine load average (1 min) during the runs:** {lo:.2} to {hi:.2} on {} CPUs (other work on the machine \
             included)",
            m.cpus
        );
    }
    let _ = writeln!(
        o,
        "- **Result:** {}\n",
        if ok {
            "every expected message delivered exactly once in every run"
        } else {
            "ERRORS — see below and compare.json"
        }
    );
    let _ = writeln!(
        o,
        "The load generator and the server share this machine's cores over loopback; on a small, shared machine the \
         latency and CPU figures are noisy (rerun and compare medians before drawing conclusions). Byte counts are exact \
         and repeatable: they are what the bots' sockets wrote and read (TLS: ciphertext, handshakes included in the \
         session totals).\n"
    );
    o.push_str(table);
    let _ = writeln!(o, "\n![latency spectrum](latency.png)\n");
    let _ = writeln!(
        o,
        "Uncorrected (from the moment each send was issued): [latency-uncorrected.png](latency-uncorrected.png)\n"
    );
    let _ = writeln!(o, "## How to read this\n");
    let _ = writeln!(
        o,
        "- *Session*: the seed's measurement shape (a few users chatting in one room; the seed captured 5 users for about \
         3 minutes). Bytes include connecting, login and every message in both directions for all users. It is replayed \
         in {} s of wall time; bytes do not depend on pacing because every message is its own write (TCP_NODELAY, one TLS \
         record per write). Bandwidth = bytes × 8 / nominal session length.",
        opts.session.as_ref().map_or(0.0, |s| s.replay_secs)
    );
    let _ = writeln!(
        o,
        "- *Load*: open-loop at a fixed rate; latency is measured at every receiving bot from the message's intended send \
         time (corrected for coordinated omission), uncorrected from the moment the send was issued. Bytes are for the \
         measured window only. Server CPU is user+system time of the server process during the measured window \
         (100% = one core); peak RSS is VmHWM."
    );
    let _ = writeln!(o, "- Files: `compare.json` (every report in full), `table.md`, `*.hgrm` (corrected latency, ms, HdrHistogram format).\n");
    let errs: Vec<String> = sessions
        .iter()
        .map(|r| ("session", r))
        .chain(loads.iter().flat_map(|m| m.runs.iter()).map(|r| ("load", r)))
        .flat_map(|(part, r)| r.errors.iter().map(move |e| format!("- {part} {}: {e}", r.mode)))
        .collect();
    if !errs.is_empty() {
        let _ = writeln!(o, "## Errors\n");
        for e in errs {
            let _ = writeln!(o, "{e}");
        }
    }
    o
}
