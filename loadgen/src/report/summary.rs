//! The human summary: a few aligned blocks (messages, latency, setup, wire, costs) and the
//! verdict, one function per block.

use std::fmt::Write;

use super::numbers::{bytes, n, row};
use super::types::Report;

impl Report {
    /// The human summary.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        self.write_header(&mut o);
        self.write_messages(&mut o);
        self.write_failover(&mut o);
        self.write_latency(&mut o);
        self.write_wire(&mut o);
        self.write_costs(&mut o);
        self.write_verdict(&mut o);
        o
    }

    /// The scenario in one line, and the phases' durations.
    fn write_header(&self, o: &mut String) {
        let sc = &self.scenario;
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
        for a in &self.addresses {
            let _ = writeln!(o, "  server {}: {} bots ({} publishing)", a.addr, n(a.bots), n(a.publishers));
        }
    }

    /// Drops, returns and what the resumes replayed (with `--failover`).
    fn write_failover(&self, o: &mut String) {
        let Some(f) = &self.failover else { return };
        let (m, w) = (&self.deliveries.measured, &self.deliveries.warmup);
        let _ = writeln!(o, "\nFail-over");
        let _ = writeln!(
            o,
            "  dropped {}, back {} (max {:.2} s, p50 {:.2} s), gave up {}, still away {}; name retries {}",
            n(f.dropped),
            n(f.back),
            f.back_max_s,
            f.back_p50_s,
            n(f.gave_up),
            n(f.still_away),
            n(f.name_retries)
        );
        let _ = writeln!(
            o,
            "  replayed {} ({} replay ends, {} with a gap); dropped as seen: {} replayed, {} live",
            n(f.replayed),
            n(f.replay_ends),
            n(f.replay_gaps),
            n(f.replay_dropped),
            n(f.live_dropped)
        );
        let _ = writeln!(
            o,
            "  whole run: lost {}, duplicated {}; unacknowledged sends {} (missing deliveries {}); sends skipped while away {}",
            n(m.lost + w.lost),
            n(m.duplicated + w.duplicated),
            n(f.unacked),
            n(m.lost_unacked + w.lost_unacked),
            n(f.skipped_away)
        );
    }

    fn write_messages(&self, o: &mut String) {
        let m = &self.messages;
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
    }

    /// Delivery latency, then the connection setup times that were measured.
    fn write_latency(&self, o: &mut String) {
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
    }

    fn write_wire(&self, o: &mut String) {
        let wr = &self.wire;
        let tls = if self.scenario.tls.is_some() { ", TLS ciphertext" } else { "" };
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
    }

    /// The server's and the load generator's CPU and memory, and the machine's load.
    fn write_costs(&self, o: &mut String) {
        if let Some(s) = &self.server {
            let _ = writeln!(o, "\nServer (pid {})", self.scenario.server_pid.unwrap_or(0));
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
    }

    /// Warnings, then OK or the list of errors.
    fn write_verdict(&self, o: &mut String) {
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
    }
}
