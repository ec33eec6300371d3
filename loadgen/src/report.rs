//! The run's report: one struct that serialises to JSON for machines, and a readable summary
//! for people. Every derived figure (rates, bytes per message, CPU per message) is computed here
//! once, so the JSON, the summary and the `compare` tables agree.

use serde::Serialize;
use std::fmt::Write;

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
    pub echoes: u64,
    pub echoes_expected: u64,
    pub foreign: u64,
    pub history: u64,
    pub system: u64,
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
    pub bots: Bots,
    pub phases: Phases,
    pub messages: Messages,
    pub deliveries: Deliveries,
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

fn per(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

impl Report {
    /// Derives the report from the collected facts.
    pub fn build(f: RunFacts) -> Report {
        let sc = &f.scenario;
        let c = &f.stats.counters;
        let h = &f.stats.hists;
        let measured_s = sc.duration.as_secs_f64();
        let sent_measured = c.sent_room_measured + c.sent_private_measured;
        let delivered_measured =
            if f.ledger_enabled { f.audit_measured.delivered } else { c.delivered_measured.min(c.expected_measured) };

        let server = match (f.server_idle, f.server_ready, f.server_m0, f.server_m1, f.server_end) {
            (Some(idle), Some(ready), Some(m0), Some(m1), Some(end)) => {
                let cpu = m1.cpu_s - m0.cpu_s;
                Some(ServerCost {
                    cpu_s_measured: cpu,
                    cpu_cores_measured: per(cpu, measured_s),
                    cpu_s_total: end.cpu_s - idle.cpu_s,
                    cpu_us_per_message: per(cpu * 1e6, sent_measured as f64),
                    cpu_us_per_delivery: per(cpu * 1e6, delivered_measured as f64),
                    rss_idle_bytes: idle.rss_bytes,
                    rss_ready_bytes: ready.rss_bytes,
                    rss_per_connection_bytes: per(
                        ready.rss_bytes.saturating_sub(idle.rss_bytes) as f64,
                        f.ready_bots as f64,
                    ),
                    peak_rss_bytes: f.peak_server_rss.max(end.peak_rss_bytes),
                })
            }
            _ => None,
        };
        let loadgen = match (f.self_m0, f.self_m1, f.self_end) {
            (Some(a), Some(b), Some(e)) => LoadgenCost {
                cpu_s_measured: b.cpu_s - a.cpu_s,
                cpu_cores_measured: per(b.cpu_s - a.cpu_s, measured_s),
                peak_rss_bytes: e.peak_rss_bytes,
            },
            _ => LoadgenCost { cpu_s_measured: 0.0, cpu_cores_measured: 0.0, peak_rss_bytes: 0 },
        };

        let mut r = Report {
            mode: sc.mode_label(),
            scenario: sc.clone(),
            bots: Bots {
                requested: sc.bots as u64,
                connected: h.connect.len(),
                ready: f.ready_bots,
                connect_failures: c.connect_failures,
                login_failures: c.login_failures,
                disconnects: c.disconnects,
            },
            phases: Phases {
                connect_s: f.connect_secs,
                warmup_s: sc.warmup.as_secs_f64(),
                measured_s,
                drain_s: f.drain_secs,
            },
            messages: Messages {
                sent_measured,
                sent_room_measured: c.sent_room_measured,
                sent_private_measured: c.sent_private_measured,
                expected_measured: c.expected_measured,
                delivered_measured,
                sent_per_s: per(sent_measured as f64, measured_s),
                delivered_per_s: per(delivered_measured as f64, measured_s),
                sent_total: c.sent(),
                expected_total: c.expected,
                delivered_total: c.delivered(),
                acks: c.acks,
                acks_expected: c.sent_room,
                echoes: c.echoes,
                echoes_expected: c.sent_private,
                foreign: c.foreign,
                history: c.history,
                system: c.system,
                backlog_skips: c.backlog_skips,
                unsent: f.unsent,
                no_target: c.no_target,
                decode_errors: c.decode_errors,
                error_msgs: c.error_msgs.clone(),
            },
            deliveries: Deliveries {
                per_message_ledger: f.ledger_enabled,
                measured: f.audit_measured.clone(),
                warmup: f.audit_warmup.clone(),
            },
            latency: Latency {
                corrected: Percentiles::of(&h.corrected),
                uncorrected: Percentiles::of(&h.uncorrected),
                send_lag: Percentiles::of(&h.send_lag),
            },
            setup: Setup {
                connect: Percentiles::of(&h.connect),
                tls_handshake: Percentiles::of(&h.tls_handshake),
                login: Percentiles::of(&h.login),
                join: Percentiles::of(&h.join),
            },
            wire: Wire {
                written_total: c.bytes_written,
                read_total: c.bytes_read,
                written_measured: c.bytes_written_measured,
                read_measured: c.bytes_read_measured,
                written_per_s: per(c.bytes_written_measured as f64, measured_s),
                read_per_s: per(c.bytes_read_measured as f64, measured_s),
                written_per_message: per(c.bytes_written_measured as f64, sent_measured as f64),
                read_per_delivery: per(c.bytes_read_measured as f64, delivered_measured as f64),
                kbps: per((c.bytes_written_measured + c.bytes_read_measured) as f64 * 8.0 / 1000.0, measured_s),
            },
            server,
            loadgen,
            server_bytes: f.server_bytes.map(|(i, o)| ServerBytes { bytes_in: i, bytes_out: o }),
            loadavg_start: f.loadavg.0,
            loadavg_end: f.loadavg.1,
            errors: Vec::new(),
            warnings: Vec::new(),
            hists: f.stats.hists.clone(),
        };
        r.find_errors(&f);
        r
    }

    fn find_errors(&mut self, f: &RunFacts) {
        let m = &self.messages;
        let b = &self.bots;
        let mut e = Vec::new();
        let mut w = Vec::new();
        e.extend(f.thread_errors.iter().cloned());
        if b.ready < b.requested {
            e.push(format!("{} of {} bots did not join before sending started", b.requested - b.ready, b.requested));
        }
        if b.connect_failures > 0 {
            e.push(format!("{} connections failed", b.connect_failures));
        }
        if b.login_failures > 0 {
            e.push(format!("{} logins or joins failed", b.login_failures));
        }
        if b.disconnects > 0 {
            e.push(format!(
                "{} bots were disconnected during the run ({} of their scheduled sends never made)",
                b.disconnects, m.unsent
            ));
        }
        for (name, a) in [("measured", &self.deliveries.measured), ("warm-up", &self.deliveries.warmup)] {
            if a.lost > 0 {
                e.push(format!("{name}: {} deliveries lost ({} messages affected)", a.lost, a.messages_with_loss));
            }
            if a.duplicated > 0 {
                e.push(format!(
                    "{name}: {} duplicate deliveries ({} messages)",
                    a.duplicated, a.messages_with_duplicates
                ));
            }
            if a.phantom > 0 {
                e.push(format!("{name}: {} deliveries of messages never sent", a.phantom));
            }
        }
        if !self.deliveries.per_message_ledger {
            w.push("run too large for the per-message ledger: loss is checked on totals only".into());
            if m.delivered_measured < m.expected_measured {
                e.push(format!("{} deliveries missing (totals)", m.expected_measured - m.delivered_measured));
            }
        }
        if m.acks != m.acks_expected {
            e.push(format!("{} ROOM_MSG_ACKs for {} room messages", m.acks, m.acks_expected));
        }
        if m.echoes != m.echoes_expected {
            e.push(format!("{} private-message echoes for {} private messages", m.echoes, m.echoes_expected));
        }
        if m.backlog_skips > 0 {
            e.push(format!(
                "{} sends skipped: a bot's unsent output was over 1 MiB (server not reading?)",
                m.backlog_skips
            ));
        }
        if m.decode_errors > 0 {
            e.push(format!("{} undecodable frames from the server", m.decode_errors));
        }
        if m.no_target > 0 {
            e.push(format!("{} private messages had no target (fewer than 2 bots)", m.no_target));
        }
        for (code, n) in &m.error_msgs {
            e.push(format!("server sent {n} × {code}"));
        }
        if m.foreign > 0 {
            w.push(format!("{} chat messages were not from this run (other users on the server?)", m.foreign));
        }
        if let Some(sb) = &self.server_bytes {
            if sb.bytes_in != self.wire.written_total || sb.bytes_out != self.wire.read_total {
                e.push(format!(
                    "byte counts disagree: server read {} / wrote {}, bots wrote {} / read {}",
                    sb.bytes_in, sb.bytes_out, self.wire.written_total, self.wire.read_total
                ));
            }
        }
        if f.still_open < self.bots.ready.saturating_sub(self.bots.disconnects) {
            w.push(format!("{} ready bots were no longer connected at the end", self.bots.ready - f.still_open));
        }
        let lag = &self.latency.send_lag;
        if lag.count > 0 && lag.p99_us > 1_000.0 {
            w.push(format!(
                "the load generator issued sends late (send lag p99 {:.3} ms): it is short of CPU (shared cores?) or saturated; the corrected latency includes this delay",
                lag.p99_us / 1000.0
            ));
        }
        self.errors = e;
        self.warnings = w;
    }

    /// True when nothing went wrong.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let sc = &self.scenario;
        let m = &self.messages;
        let _ = writeln!(
            o,
            "loadgen {}: {} bots ({} ready) in {} rooms ({}), {:.1} msg/s total ({:.3}/bot), payload {} B, {:.0}% private, {} thread(s)",
            self.mode,
            self.bots.requested,
            self.bots.ready,
            sc.rooms,
            format!("{:?}", sc.spread).to_lowercase(),
            sc.total_rate(),
            sc.per_bot_rate(),
            sc.payload,
            sc.private_share * 100.0,
            sc.threads
        );
        let _ = writeln!(
            o,
            "  connect {:.1} s, warm-up {:.1} s, measured {:.1} s, drain {:.2} s",
            self.phases.connect_s, self.phases.warmup_s, self.phases.measured_s, self.phases.drain_s
        );
        let _ = writeln!(o, "\nMessages (measured window)");
        let _ = writeln!(
            o,
            "  sent       {:>12}  ({:.1}/s; room {}, private {})",
            n(m.sent_measured),
            m.sent_per_s,
            n(m.sent_room_measured),
            n(m.sent_private_measured)
        );
        let a = &self.deliveries.measured;
        let _ = writeln!(
            o,
            "  delivered  {:>12}  ({:.1}/s) of {} expected; lost {}, duplicated {}",
            n(m.delivered_measured),
            m.delivered_per_s,
            n(m.expected_measured),
            n(a.lost),
            n(a.duplicated)
        );
        let _ = writeln!(
            o,
            "  whole run: sent {}, delivered {}/{}, acks {}/{}, private echoes {}/{}",
            n(m.sent_total),
            n(m.delivered_total),
            n(m.expected_total),
            n(m.acks),
            n(m.acks_expected),
            n(m.echoes),
            n(m.echoes_expected)
        );
        let _ = writeln!(o, "\nLatency, send to delivery at each receiving bot (ms)");
        let _ = writeln!(
            o,
            "  {:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"
        );
        for (name, p) in [
            ("corrected (intended)", &self.latency.corrected),
            ("uncorrected (actual)", &self.latency.uncorrected),
            ("loadgen send lag", &self.latency.send_lag),
        ] {
            let _ = writeln!(o, "  {name:<22} {}", row(p));
        }
        let _ = writeln!(o, "\nSetup (ms)");
        for (name, p) in [
            ("connect", &self.setup.connect),
            ("tls handshake", &self.setup.tls_handshake),
            ("login", &self.setup.login),
            ("join", &self.setup.join),
        ] {
            if p.count > 0 {
                let _ = writeln!(o, "  {name:<22} {}  (n={})", row(p), p.count);
            }
        }
        let wr = &self.wire;
        let tls = if sc.tls.is_some() { ", TLS ciphertext" } else { "" };
        let _ = writeln!(o, "\nWire (bytes on the bots' sockets{tls})");
        let _ = writeln!(o, "  {:<22} {:>16} {:>16}", "", "to server", "from server");
        let _ = writeln!(o, "  {:<22} {:>16} {:>16}", "whole run", bytes(wr.written_total), bytes(wr.read_total));
        let _ = writeln!(
            o,
            "  {:<22} {:>16} {:>16}",
            "measured window",
            bytes(wr.written_measured),
            bytes(wr.read_measured)
        );
        let _ = writeln!(
            o,
            "  {:<22} {:>14}/s {:>14}/s",
            "per second",
            bytes(wr.written_per_s as u64),
            bytes(wr.read_per_s as u64)
        );
        let _ = writeln!(
            o,
            "  {:<22} {:>14.1} B {:>14.1} B   ({:.1} kbit/s both ways)",
            "per message / delivery", wr.written_per_message, wr.read_per_delivery, wr.kbps
        );
        if let Some(s) = &self.server {
            let _ = writeln!(o, "\nServer (pid {})", sc.server_pid.unwrap_or(0));
            let _ = writeln!(
                o,
                "  CPU {:.2} s in the measured window ({:.0}% of one core; {:.2} µs per message, {:.3} µs per delivery); {:.2} s in all",
                s.cpu_s_measured,
                s.cpu_cores_measured * 100.0,
                s.cpu_us_per_message,
                s.cpu_us_per_delivery,
                s.cpu_s_total
            );
            let _ = writeln!(
                o,
                "  RSS {} before, {} with {} bots ({:.1} KiB per connection), peak {}",
                bytes(s.rss_idle_bytes),
                bytes(s.rss_ready_bytes),
                self.bots.ready,
                s.rss_per_connection_bytes / 1024.0,
                bytes(s.peak_rss_bytes)
            );
        }
        let _ = writeln!(
            o,
            "\nLoadgen: {:.2} CPU s in the measured window ({:.0}% of one core), peak RSS {}",
            self.loadgen.cpu_s_measured,
            self.loadgen.cpu_cores_measured * 100.0,
            bytes(self.loadgen.peak_rss_bytes)
        );
        if let (Some(a), Some(b)) = (self.loadavg_start, self.loadavg_end) {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let _ = writeln!(o, "Machine: load average {a:.2} at the start, {b:.2} at the end ({cpus} CPUs)");
        }
        for w in &self.warnings {
            let _ = writeln!(o, "warning: {w}");
        }
        if self.errors.is_empty() {
            let _ = writeln!(o, "\nResult: OK — every expected message was delivered exactly once.");
        } else {
            let _ = writeln!(o, "\nResult: ERRORS");
            for e in &self.errors {
                let _ = writeln!(o, "  - {e}");
            }
        }
        o
    }
}

fn row(p: &Percentiles) -> String {
    let ms = |us: f64| format!("{:>9.3}", us / 1000.0);
    format!(
        "{} {} {} {} {} {} {}",
        ms(p.p50_us),
        ms(p.p90_us),
        ms(p.p99_us),
        ms(p.p99_9_us),
        ms(p.p99_99_us),
        ms(p.max_us),
        ms(p.mean_us)
    )
}

/// 1234567 → "1,234,567".
pub fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes with a binary unit.
pub fn bytes(v: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v as f64;
    let mut i = 0;
    while x >= 1024.0 && i < U.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v} B")
    } else {
        format!("{x:.1} {}", U[i])
    }
}
