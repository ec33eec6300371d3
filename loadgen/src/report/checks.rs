//! Turning the report's figures into errors (something the run promised did not happen) and
//! warnings (worth knowing, not a failure). The order of the messages is the order they print.

use super::types::{Report, RunFacts};

/// The messages found so far.
#[derive(Default)]
struct Findings {
    /// Failures: any makes the run not OK.
    errors: Vec<String>,
    /// Things worth knowing that are not failures.
    warnings: Vec<String>,
}

impl Report {
    /// Fills `errors` and `warnings`.
    pub(super) fn find_errors(&mut self, f: &RunFacts) {
        let mut found = Findings::default();
        found.errors.extend(f.thread_errors.iter().cloned());
        self.check_bots(&mut found);
        self.check_failover(&mut found);
        self.check_ledger(&mut found);
        self.check_messages(&mut found);
        self.check_the_rest(f, &mut found);
        self.errors = found.errors;
        self.warnings = found.warnings;
    }

    /// Bots that did not join, failed or were disconnected.
    fn check_bots(&self, found: &mut Findings) {
        let (b, e) = (&self.bots, &mut found.errors);
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
                b.disconnects, self.messages.unsent
            ));
        }
    }

    /// Bots that did not get back after a drop; deliveries missing of unacknowledged messages.
    fn check_failover(&self, found: &mut Findings) {
        let Some(f) = &self.failover else { return };
        if f.gave_up > 0 {
            found.errors.push(format!("{} bots did not get back within --failover-timeout", f.gave_up));
        }
        if f.still_away > 0 {
            found.errors.push(format!("{} bots were still failing over at the end of the run", f.still_away));
        }
        let lost_unacked = self.deliveries.measured.lost_unacked + self.deliveries.warmup.lost_unacked;
        if lost_unacked > 0 {
            found.warnings.push(format!(
                "{lost_unacked} deliveries missing of {} room messages never acknowledged (their connection dropped; not resent)",
                f.unacked
            ));
        }
    }

    /// Lost, duplicated and phantom deliveries, from the ledger or, without it, the totals.
    fn check_ledger(&self, found: &mut Findings) {
        let e = &mut found.errors;
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
            let m = &self.messages;
            found.warnings.push("run too large for the per-message ledger: loss is checked on totals only".into());
            if m.delivered_measured < m.expected_measured {
                e.push(format!("{} deliveries missing (totals)", m.expected_measured - m.delivered_measured));
            }
        }
    }

    /// Missing acks and echoes, skipped sends, bad frames and the server's error messages.
    fn check_messages(&self, found: &mut Findings) {
        let (m, e) = (&self.messages, &mut found.errors);
        if m.acks != m.acks_expected {
            e.push(format!("{} ROOM_MSG_ACKs for {} room messages", m.acks, m.acks_expected));
        }
        if m.refused_room > 0 {
            found.warnings.push(format!(
                "{} room messages refused by the server (not acknowledged; what they miss is not counted as loss)",
                m.refused_room
            ));
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
    }

    /// Foreign messages, byte counts against the server's, bots gone by the end, late sends.
    fn check_the_rest(&self, f: &RunFacts, found: &mut Findings) {
        let (e, w) = (&mut found.errors, &mut found.warnings);
        if self.messages.foreign > 0 {
            w.push(format!(
                "{} chat messages were not from this run (other users on the server?)",
                self.messages.foreign
            ));
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
    }
}
