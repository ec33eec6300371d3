//! `loadgen`: thin CLI over the `loadgen` library. `loadgen run` drives one scenario against a
//! server; `loadgen compare` runs it over binary, JSON, binary+TLS and JSON+TLS and writes a
//! results folder. See `loadgen/README.md`.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use loadgen::compare::{self, CompareOptions};
use loadgen::scenario::{
    parse_addrs, parse_sources, Failover, Placement, Rate, Scenario, Spread, TlsOptions, TlsTrust, WireFormat,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "loadgen", version, about = "Open-loop load generator for chatproto servers")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario against a server and report latency, deliveries, bytes and server cost.
    Run(RunArgs),
    /// Run the same scenario over binary, JSON, binary+TLS and JSON+TLS; write results/<date>-compare/.
    Compare(CompareArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Protocol {
    Binary,
    Json,
    /// JSON over WebSocket (`ws://host:port/ws`; with --tls, `wss://`).
    #[value(alias = "websocket")]
    Ws,
}

/// Knobs shared by `run` and `compare`.
#[derive(Args, Clone)]
struct ScenarioArgs {
    /// Number of bots (connections).
    #[arg(short = 'n', long, default_value_t = 100)]
    bots: u32,
    /// Number of rooms (room 0 is `general`).
    #[arg(long, default_value_t = 5)]
    rooms: u32,
    /// How bots spread over rooms.
    #[arg(long, value_enum, default_value_t = Spread::Even)]
    spread: Spread,
    /// Messages per second per bot.
    #[arg(long, default_value_t = 1.0, conflicts_with = "rate")]
    rate_per_bot: f64,
    /// Messages per second over all bots (instead of --rate-per-bot).
    #[arg(long)]
    rate: Option<f64>,
    /// Chat text length in bytes (at least the ~20-byte stamp).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Share of private messages, 0..1.
    #[arg(long, default_value_t = 0.1)]
    private_share: f64,
    /// Measured seconds (after warm-up).
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds: sent and checked, not timed.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds to wait for outstanding deliveries after the last send.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// New connections per second (0: as fast as --max-pending allows).
    #[arg(long, default_value_t = 0.0)]
    connect_rate: f64,
    /// Most bots per thread setting up (connect..join) at once.
    #[arg(long, default_value_t = 256)]
    max_pending: u32,
    /// Seconds to wait for all bots to join before starting anyway.
    #[arg(long, default_value_t = 60.0)]
    connect_timeout: f64,
    /// Event-loop threads (default: number of CPUs).
    #[arg(short, long)]
    threads: Option<u32>,
    /// Local source addresses, round-robin: 127.0.0.1-127.0.0.8 or a comma list.
    #[arg(long)]
    source: Option<String>,
    /// User names are <prefix><bot number>.
    #[arg(long, default_value = "b")]
    name_prefix: String,
    /// TLS server name (SNI and certificate check).
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// PEM file of the CA (or self-signed certificate) to trust for TLS.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Accept any server certificate (handshake signatures are still checked).
    #[arg(long)]
    insecure: bool,
    /// No progress line.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Server address, or a comma list of them (nodes of a cluster): bots are placed over them
    /// by --placement.
    #[arg(short, long, default_value = "127.0.0.1:5555")]
    addr: String,
    /// With several addresses: `spread` deals the bots out round-robin room by room (every room on
    /// every node); `split` puts the publishers on the first address and the other bots on the
    /// rest (cross-node latency).
    #[arg(long, value_enum, default_value_t = Placement::Spread)]
    placement: Placement,
    /// Only bots 0..N send; the others only listen (default: every bot sends).
    #[arg(long, value_name = "N")]
    publishers: Option<u32>,
    /// A bot whose connection drops moves to the next address, logs in again under its name and
    /// resumes its room (`since` the last id it saw); the report counts drops, returns and losses.
    #[arg(long)]
    failover: bool,
    /// With --failover: seconds a bot keeps retrying after its connection dropped (reconnects,
    /// logins refused until the dead node's names expire), then gives up.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    failover_timeout: f64,
    /// With --failover: room message ids each bot remembers to drop replayed messages it already
    /// had (at least the server's --history-len).
    #[arg(long, default_value_t = 256, value_name = "N")]
    dedupe_ids: usize,
    /// Wire format (`--transport` is the same option): binary, json, or ws (JSON over WebSocket).
    #[arg(long, alias = "transport", value_enum, default_value_t = Protocol::Binary)]
    protocol: Protocol,
    /// Use TLS (with --ca or --insecure).
    #[arg(long)]
    tls: bool,
    /// Server process id: report its CPU and memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Write the full report as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the corrected latency distribution in HdrHistogram .hgrm format (ms).
    #[arg(long, value_name = "FILE")]
    hgrm: Option<PathBuf>,
    /// Also write a results folder DIR/<date>-<N>bots-<mode>/ (README with command, git revision
    /// and machine; report.json; .hgrm files; latency.png).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    #[command(flatten)]
    scenario: ScenarioArgs,
}

#[derive(Args)]
struct CompareArgs {
    /// Use this running server instead of starting one per mode (it must offer TLS on the same
    /// port for the TLS modes; give --ca or --insecure).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// With --addr: the server's pid, for CPU and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// chat-server binary to start (default: next to this executable).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Folder that receives <date>-compare/.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Users in the seed-shaped chat session.
    #[arg(long, default_value_t = 5)]
    session_users: u32,
    /// Nominal length of that session, seconds (used for its bandwidth column).
    #[arg(long, default_value_t = 180.0)]
    session_secs: f64,
    /// Messages each session user sends over the session.
    #[arg(long, default_value_t = 36)]
    session_messages: u32,
    /// Wall-clock seconds the session is replayed in (bytes do not depend on pacing).
    #[arg(long, default_value_t = 12.0)]
    session_replay_secs: f64,
    /// Chat text length in the session.
    #[arg(long, default_value_t = 40)]
    session_payload: usize,
    /// Skip the session part.
    #[arg(long)]
    no_session: bool,
    /// Load runs per mode (the tables show medians; the plots merge all runs).
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Shards for servers this command starts (0: the server's default, one per core).
    #[arg(long, default_value_t = 0)]
    server_shards: usize,
    /// Extra argument for the servers this command starts (repeatable), e.g. --server-arg=--history=memory.
    #[arg(long, allow_hyphen_values = true)]
    server_arg: Vec<String>,
    #[command(flatten)]
    scenario: ScenarioArgs,
}

fn secs(s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("bad number of seconds: {s}"))
}

fn build_scenario(a: &ScenarioArgs, addr: SocketAddr) -> anyhow::Result<Scenario> {
    let mut s = Scenario::new(addr);
    s.bots = a.bots;
    s.rooms = a.rooms;
    s.spread = a.spread;
    s.rate = match a.rate {
        Some(r) => Rate::Total(r),
        None => Rate::PerBot(a.rate_per_bot),
    };
    s.payload = a.payload;
    s.private_share = a.private_share;
    s.duration = secs(a.duration)?;
    s.warmup = secs(a.warmup)?;
    s.drain = secs(a.drain)?;
    s.connect_rate = a.connect_rate;
    s.max_pending = a.max_pending.max(1);
    s.connect_timeout = secs(a.connect_timeout)?;
    s.threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    if let Some(src) = &a.source {
        s.sources = parse_sources(src)?;
    }
    s.name_prefix = a.name_prefix.clone();
    s.progress = !a.quiet;
    s.validate()?;
    Ok(s)
}

fn tls_options(a: &ScenarioArgs) -> anyhow::Result<TlsOptions> {
    let trust = match (&a.ca, a.insecure) {
        (Some(ca), false) => TlsTrust::Ca(ca.clone()),
        (None, true) => TlsTrust::Insecure,
        (Some(_), true) => bail!("give either --ca or --insecure, not both"),
        (None, false) => bail!("TLS needs --ca FILE (the server's CA or self-signed certificate) or --insecure"),
    };
    Ok(TlsOptions { trust, server_name: a.server_name.clone() })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Thousands of bots need thousands of descriptors.
    chatproto::net::raise_fd_limit();
    let r = match cli.cmd {
        Cmd::Run(a) => cmd_run(a),
        Cmd::Compare(a) => cmd_compare(a),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn cmd_run(a: RunArgs) -> anyhow::Result<bool> {
    let addrs = parse_addrs(&a.addr)?;
    let mut s = build_scenario(&a.scenario, addrs[0])?;
    if addrs.len() > 1 {
        s.addrs = addrs;
    }
    s.placement = a.placement;
    s.publishers = a.publishers;
    if a.failover {
        s.failover = Some(Failover { timeout: secs(a.failover_timeout)?, dedupe_ids: a.dedupe_ids });
    }
    s.validate()?;
    s.format = match a.protocol {
        Protocol::Binary => WireFormat::Binary,
        Protocol::Json => WireFormat::Json,
        Protocol::Ws => WireFormat::WebSocket,
    };
    if a.tls {
        s.tls = Some(tls_options(&a.scenario)?);
    }
    s.server_pid = a.server_pid;
    let report = loadgen::run(s, loadgen::Hooks::default())?;
    print!("{}", report.summary());
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.hgrm {
        std::fs::write(p, loadgen::hgrm::render_ms(&report.hists.corrected))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(dir) = &a.record {
        let cmd = std::env::args().collect::<Vec<_>>().join(" ");
        let out = loadgen::record::write_run(dir, &report, &cmd)?;
        println!("wrote {}", out.display());
    }
    Ok(report.ok())
}

fn cmd_compare(a: CompareArgs) -> anyhow::Result<bool> {
    let placeholder: SocketAddr = a.addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let scenario = build_scenario(&a.scenario, placeholder)?;
    let trust = if a.addr.is_some() { Some(tls_options(&a.scenario)?) } else { None };
    let opts = CompareOptions {
        scenario,
        external: a.addr.map(|addr| (addr, a.server_pid, trust.clone())),
        server_bin: a.server_bin,
        server_shards: a.server_shards,
        server_args: a.server_arg,
        out: a.out,
        session: (!a.no_session).then_some(compare::SessionShape {
            users: a.session_users,
            nominal_secs: a.session_secs,
            messages_per_user: a.session_messages,
            replay_secs: a.session_replay_secs,
            payload: a.session_payload,
        }),
        repeat: a.repeat.max(1),
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let outcome = compare::run(opts)?;
    println!("{}", outcome.table);
    println!("wrote {}", outcome.dir.display());
    Ok(outcome.ok)
}
