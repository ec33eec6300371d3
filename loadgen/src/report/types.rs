//! The report's data: what the coordinator collected ([`RunFacts`]) and the sections of the
//! [`Report`] that serialise to JSON. Derivation, checks and text live beside it.

use serde::Serialize;

use crate::ledger::Audit;
use crate::procstat::Sample;
use crate::scenario::Scenario;
use crate::stats::{Hists, Percentiles, ThreadStats};

/// Everything the coordinator collected, before derivation.
pub struct RunFacts {
    pub scenario: Scenario,
    pub stats: ThreadStats,
    pub ready_bots: u64,
    pub still_open: u64,
    pub unsent: u64,
    pub connect_secs: f64,
    pub drain_secs: f64,
    pub audit_measured: Audit,
    pub audit_warmup: Audit,
    pub ledger_enabled: bool,
    pub server_idle: Option<Sample>,
    pub server_ready: Option<Sample>,
    pub server_m0: Option<Sample>,
    pub server_m1: Option<Sample>,
    pub server_end: Option<Sample>,
    pub peak_server_rss: u64,
    pub self_m0: Option<Sample>,
    pub self_m1: Option<Sample>,
    pub self_end: Option<Sample>,
    pub server_bytes: Option<(u64, u64)>,
    pub thread_errors: Vec<String>,
    pub loadavg: (Option<f64>, Option<f64>),
}

/// How many bots got how far.
#[derive(Clone, Debug, Serialize)]
pub struct Bots {
    pub requested: u64,
    pub connected: u64,
    /// Joined their room before sending started: these are the bots that count.
    pub ready: u64,
    pub connect_failures: u64,
    pub login_failures: u64,
    /// Ready bots whose connection ended before the run did.
    pub disconnects: u64,
}

/// One server address and how many bots started on it.
#[derive(Clone, Debug, Serialize)]
pub struct AddrBots {
    pub addr: std::net::SocketAddr,
    pub bots: u64,
    /// Of those, bots that send (the others only listen).
    pub publishers: u64,
}

/// What fail-over did (`--failover`). Losses and duplicates are in [`Deliveries`].
#[derive(Clone, Debug, Serialize)]
pub struct FailoverReport {
    /// Connection drops that started a fail-over (a bot that drops twice counts twice).
    pub dropped: u64,
    /// Of those, how many were back in their room (logged in, joined) before the stop.
    pub back: u64,
    /// Of those, how many gave up after `--failover-timeout`.
    pub gave_up: u64,
    /// Neither back nor given up at the stop.
    pub still_away: u64,
    /// Time from the drop to back in the room, seconds: largest and median.
    pub back_max_s: f64,
    pub back_p50_s: f64,
    /// Logins refused while the dead node's names expired, each retried after a back-off.
    pub name_retries: u64,
    /// Messages replayed on resume and counted as deliveries.
    pub replayed: u64,
    /// Replayed and live messages dropped as already received (same id): never delivered twice.
    pub replay_dropped: u64,
    pub live_dropped: u64,
    /// REPLAY_ENDs, and those saying the server could not replay everything (gap).
    pub replay_ends: u64,
    pub replay_gaps: u64,
    /// Room messages whose connection dropped before their ROOM_MSG_ACK (not resent).
    pub unacked: u64,
    /// Scheduled sends not made while their bot was away.
    pub skipped_away: u64,
}

/// Durations of the run's phases, in seconds.
#[derive(Clone, Debug, Serialize)]
pub struct Phases {
    pub connect_s: f64,
    pub warmup_s: f64,
    pub measured_s: f64,
    pub drain_s: f64,
}

/// Message counts. `*_measured` cover messages whose intended send time is in the measured
/// window; the others include warm-up.
#[derive(Clone, Debug, Serialize)]
pub struct Messages {
    pub sent_measured: u64,
    pub sent_room_measured: u64,
    pub sent_private_measured: u64,
    pub expected_measured: u64,
    pub delivered_measured: u64,
    pub sent_per_s: f64,
    pub delivered_per_s: f64,
    pub sent_total: u64,
    pub expected_total: u64,
    pub delivered_total: u64,
    pub acks: u64,
    pub acks_expected: u64,
    /// Room messages the server refused (ERROR_MSG `INTERNAL`): answered, not acknowledged.
    #[serde(default)]
    pub refused_room: u64,
    pub echoes: u64,
    pub echoes_expected: u64,
    pub foreign: u64,
    pub history: u64,
    pub system: u64,
    /// PRESENCE notices received by all bots (coalesced joins and leaves).
    pub presence: u64,
    pub backlog_skips: u64,
    /// Scheduled sends never made because the bot's connection had ended.
    pub unsent: u64,
    pub no_target: u64,
    pub decode_errors: u64,
    pub error_msgs: std::collections::BTreeMap<String, u64>,
}

/// The per-message ledger's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Deliveries {
    /// False when the run was too big for per-message counters (totals only).
    pub per_message_ledger: bool,
    pub measured: Audit,
    pub warmup: Audit,
}

/// Delivery latency.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// From the intended send time (no coordinated omission).
    pub corrected: Percentiles,
    /// From the moment the bot issued the send.
    pub uncorrected: Percentiles,
    /// How late the loadgen issued sends against the schedule (its own delay).
    pub send_lag: Percentiles,
}

/// Connection setup times.
#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    pub connect: Percentiles,
    pub tls_handshake: Percentiles,
    pub login: Percentiles,
    pub join: Percentiles,
}

/// Bytes on the wire, as the bots' sockets saw them (ciphertext with TLS). "written" goes to
/// the server, "read" comes from it.
#[derive(Clone, Debug, Serialize)]
pub struct Wire {
    pub written_total: u64,
    pub read_total: u64,
    pub written_measured: u64,
    pub read_measured: u64,
    pub written_per_s: f64,
    pub read_per_s: f64,
    /// Measured bytes written per message sent.
    pub written_per_message: f64,
    /// Measured bytes read per delivery (acks and echoes included in the bytes).
    pub read_per_delivery: f64,
    /// Both directions, measured, in kilobits per second.
    pub kbps: f64,
}

/// What the server process cost (from /proc).
#[derive(Clone, Debug, Serialize)]
pub struct ServerCost {
    /// CPU seconds (user + system) during the measured window.
    pub cpu_s_measured: f64,
    /// Cores busy on average during the measured window.
    pub cpu_cores_measured: f64,
    /// CPU seconds from before the first connect to the end.
    pub cpu_s_total: f64,
    /// CPU µs per message sent, measured window.
    pub cpu_us_per_message: f64,
    /// CPU µs per delivery, measured window.
    pub cpu_us_per_delivery: f64,
    pub rss_idle_bytes: u64,
    pub rss_ready_bytes: u64,
    /// (RSS with all bots joined − RSS before) / ready bots.
    pub rss_per_connection_bytes: f64,
    /// Largest resident set seen (VmHWM and samples).
    pub peak_rss_bytes: u64,
}

/// What the load generator itself cost.
#[derive(Clone, Debug, Serialize)]
pub struct LoadgenCost {
    pub cpu_s_measured: f64,
    pub cpu_cores_measured: f64,
    pub peak_rss_bytes: u64,
}

/// Bytes the server counted on its sockets, when it could be asked (in-process servers).
#[derive(Clone, Debug, Serialize)]
pub struct ServerBytes {
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `binary`, `json`, `binary+tls` or `json+tls`.
    pub mode: String,
    pub scenario: Scenario,
    /// Server addresses with the bots placed on each (only when there are several).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<AddrBots>,
    pub bots: Bots,
    pub phases: Phases,
    pub messages: Messages,
    pub deliveries: Deliveries,
    /// Fail-over figures, with `--failover`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverReport>,
    pub latency: Latency,
    pub setup: Setup,
    pub wire: Wire,
    pub server: Option<ServerCost>,
    pub loadgen: LoadgenCost,
    pub server_bytes: Option<ServerBytes>,
    /// The machine's 1-minute load average at the start and at the end of the run (a busy,
    /// shared machine makes latency noisy: compare with the number of CPUs).
    pub loadavg_start: Option<f64>,
    pub loadavg_end: Option<f64>,
    /// Everything that went wrong. Empty means: every expected message arrived exactly once.
    pub errors: Vec<String>,
    /// Things worth knowing that are not failures.
    pub warnings: Vec<String>,
    /// Raw histograms, for `.hgrm` files and plots.
    #[serde(skip)]
    pub hists: Hists,
}

impl Report {
    /// True when nothing went wrong.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}
