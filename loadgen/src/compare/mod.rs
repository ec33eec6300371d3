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

//!
//! Here the orchestration; in `options.rs` what it is asked, in `runs.rs` the runs of a mode, in
//! `server.rs` the server per mode, in `tables.rs` and `readme.rs` the text written to the
//! folder. Those leaves import nothing from here.

mod options;
mod readme;
mod runs;
mod server;
mod tables;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use options::{CompareOptions, SessionShape};
pub use readme::readme;
pub use runs::{median, ModeRuns};
pub use tables::tables;

use crate::hgrm;
use crate::machine::{self, Machine};
use crate::plot;
use crate::report::Report;
use crate::runner::{self, Hooks};
use crate::scenario::{Rate, Scenario, WireFormat};
use server::with_server;

/// What `compare` produced.
pub struct Outcome {
    /// The results folder.
    pub dir: PathBuf,
    /// The Markdown tables.
    pub table: String,
    /// True when every run was clean.
    pub ok: bool,
}

/// The modes, in the seed's table order, then JSON over WebSocket (the browser's transport).
pub const MODES: [(WireFormat, bool); 6] = [
    (WireFormat::Json, false),
    (WireFormat::Json, true),
    (WireFormat::Binary, false),
    (WireFormat::Binary, true),
    (WireFormat::WebSocket, false),
    (WireFormat::WebSocket, true),
];

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
    let server_bin = server_bin(&opts)?;
    let sessions = run_sessions(&opts, &server_bin, &work)?;
    let loads = run_loads(&opts, &server_bin, &work)?;
    for m in &loads {
        let h = m.merged(|r| &r.hists.corrected);
        std::fs::write(dir.join(format!("{}.hgrm", m.mode.replace('+', "-"))), hgrm::render_ms(&h))?;
    }
    let ok = sessions.iter().chain(loads.iter().flat_map(|m| &m.runs)).all(Report::ok);
    if ok {
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
    write_plots(&dir, &opts, &loads)?;
    let readme = readme(&opts, &machine, &git, &date, &table, &sessions, &loads, ok);
    std::fs::write(dir.join("README.md"), readme)?;
    Ok(Outcome { dir, table, ok })
}

/// The chat-server binary to start: `--server-bin`, or the one next to this executable. An
/// error when it is needed (no `--addr`) and missing.
fn server_bin(opts: &CompareOptions) -> anyhow::Result<PathBuf> {
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
    Ok(server_bin)
}

/// The session part, one run per mode (none without a session shape).
fn run_sessions(opts: &CompareOptions, server_bin: &Path, work: &Path) -> anyhow::Result<Vec<Report>> {
    let mut sessions = Vec::new();
    if let Some(shape) = &opts.session {
        for (format, tls) in MODES {
            let label = mode_label(format, tls);
            eprintln!("== {label}: session ({} users, {} messages each)", shape.users, shape.messages_per_user);
            let s = session_scenario(&opts.scenario, shape);
            sessions.push(run_mode(opts, server_bin, work, (format, tls), s)?);
        }
    }
    Ok(sessions)
}

/// The load part: `--repeat` rounds over the six modes, so that a drift of the machine spreads
/// over all modes alike.
fn run_loads(opts: &CompareOptions, server_bin: &Path, work: &Path) -> anyhow::Result<Vec<ModeRuns>> {
    let mut loads: Vec<ModeRuns> =
        MODES.iter().map(|&(f, t)| ModeRuns { mode: mode_label(f, t), runs: Vec::new() }).collect();
    for round in 0..opts.repeat.max(1) {
        for (i, (format, tls)) in MODES.into_iter().enumerate() {
            let label = mode_label(format, tls);
            eprintln!("== {label}: load ({} bots), round {}/{}", opts.scenario.bots, round + 1, opts.repeat.max(1));
            loads[i].runs.push(run_mode(opts, server_bin, work, (format, tls), opts.scenario.clone())?);
        }
    }
    Ok(loads)
}

/// One run of `s` in mode `(format, tls)` against its server; prints the summary.
fn run_mode(
    opts: &CompareOptions,
    server_bin: &Path,
    work: &Path,
    (format, tls): (WireFormat, bool),
    mut s: Scenario,
) -> anyhow::Result<Report> {
    let label = mode_label(format, tls);
    let r =
        with_server(opts, server_bin, work, &label, format, tls, &mut s, |s| runner::run(s.clone(), Hooks::default()))?;
    eprint!("{}", r.summary());
    Ok(r)
}

/// `latency.png` (corrected) and `latency-uncorrected.png`, every mode's runs merged.
fn write_plots(dir: &Path, opts: &CompareOptions, loads: &[ModeRuns]) -> anyhow::Result<()> {
    let runs = if opts.repeat > 1 { format!(", {} runs merged", opts.repeat) } else { String::new() };
    let title = format!(
        "{} bots, {:.0} msg/s, {} B: delivery latency (corrected{runs})",
        opts.scenario.bots,
        opts.scenario.total_rate(),
        opts.scenario.payload
    );
    plot_merged(&dir.join("latency.png"), &title, loads, |r| &r.hists.corrected)?;
    let title = title.replace("(corrected", "(uncorrected");
    plot_merged(&dir.join("latency-uncorrected.png"), &title, loads, |r| &r.hists.uncorrected)
}

/// One latency spectrum with a curve per mode, of the histogram `which` picks.
fn plot_merged(
    path: &Path,
    title: &str,
    loads: &[ModeRuns],
    which: impl Fn(&Report) -> &Histogram<u64> + Copy,
) -> anyhow::Result<()> {
    let merged: Vec<(String, Histogram<u64>)> = loads.iter().map(|m| (m.mode.clone(), m.merged(which))).collect();
    let series: Vec<(String, &Histogram<u64>)> = merged.iter().map(|(l, h)| (l.clone(), h)).collect();
    plot::latency_spectrum(path, title, &series)
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
