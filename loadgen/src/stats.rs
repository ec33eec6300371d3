//! Per-thread measurements: HdrHistograms and counters, merged after the run (wrk2's model: one
//! recorder per event loop, no sharing on the hot path, one merge at the end).
//!
//! All histograms record nanoseconds, from 1 ns to one hour, at 3 significant digits.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Highest trackable value: one hour in ns. Larger values are clamped to it.
pub const MAX_NS: u64 = 3_600 * 1_000_000_000;

/// A fresh nanosecond histogram.
pub fn new_hist() -> Histogram<u64> {
    // Bounds are valid constants; this cannot fail.
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

/// Records `ns` (clamped into the trackable range).
pub fn record(h: &mut Histogram<u64>, ns: u64) {
    // With clamped input, `saturating_record` never fails.
    h.saturating_record(ns.clamp(1, MAX_NS));
}

/// The histograms one thread fills.
#[derive(Clone)]
pub struct Hists {
    /// Delivery latency from the *intended* send time (corrected for coordinated omission).
    pub corrected: Histogram<u64>,
    /// Delivery latency from the moment the bot actually issued the send (uncorrected).
    pub uncorrected: Histogram<u64>,
    /// How late sends were issued against the schedule (actual minus intended).
    pub send_lag: Histogram<u64>,
    /// TCP connect: connect() to established.
    pub connect: Histogram<u64>,
    /// TLS handshake: established to handshake done (TLS runs only).
    pub tls_handshake: Histogram<u64>,
    /// LOGIN written to LOGIN_ACK read.
    pub login: Histogram<u64>,
    /// JOIN_ROOM written to its answer read (bots outside `general` only).
    pub join: Histogram<u64>,
    /// Fail-over: connection dropped to back in the room (logged in and joined again).
    pub failover: Histogram<u64>,
}

impl Hists {
    /// Empty histograms.
    pub fn new() -> Self {
        Hists {
            corrected: new_hist(),
            uncorrected: new_hist(),
            send_lag: new_hist(),
            connect: new_hist(),
            tls_handshake: new_hist(),
            login: new_hist(),
            join: new_hist(),
            failover: new_hist(),
        }
    }

    /// Adds `other`'s counts into `self`.
    pub fn merge(&mut self, other: &Hists) {
        for (a, b) in self.fields_mut().into_iter().zip(other.fields()) {
            // Same bounds everywhere, so adding cannot fail.
            a.add(b).expect("histograms with equal bounds");
        }
    }

    fn fields(&self) -> [&Histogram<u64>; 8] {
        [
            &self.corrected,
            &self.uncorrected,
            &self.send_lag,
            &self.connect,
            &self.tls_handshake,
            &self.login,
            &self.join,
            &self.failover,
        ]
    }

    fn fields_mut(&mut self) -> [&mut Histogram<u64>; 8] {
        [
            &mut self.corrected,
            &mut self.uncorrected,
            &mut self.send_lag,
            &mut self.connect,
            &mut self.tls_handshake,
            &mut self.login,
            &mut self.join,
            &mut self.failover,
        ]
    }
}

impl std::fmt::Debug for Hists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hists")
            .field("corrected", &self.corrected.len())
            .field("uncorrected", &self.uncorrected.len())
            .field("connect", &self.connect.len())
            .finish_non_exhaustive()
    }
}

impl Default for Hists {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters one thread keeps. All of them add up across threads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Room messages sent (warm-up included).
    pub sent_room: u64,
    /// Private messages sent (warm-up included).
    pub sent_private: u64,
    /// Room messages sent in the measured window.
    pub sent_room_measured: u64,
    /// Private messages sent in the measured window.
    pub sent_private_measured: u64,
    /// Deliveries expected for everything sent (receivers per message, summed).
    pub expected: u64,
    /// Deliveries expected for the measured window.
    pub expected_measured: u64,
    /// Room messages received by a bot other than the sender (warm-up included).
    pub delivered_room: u64,
    /// Private messages received by their target (warm-up included).
    pub delivered_private: u64,
    /// Deliveries received of measured-window messages.
    pub delivered_measured: u64,
    /// Private messages echoed back to their sender.
    pub echoes: u64,
    /// ROOM_MSG_ACKs received.
    pub acks: u64,
    /// Room messages the server refused (ERROR_MSG `INTERNAL`, e.g. a cluster's log could not
    /// take them): answered, not acknowledged; written off in the ledger like unacked sends.
    pub refused_room: u64,
    /// Chat messages without our stamp, or with one the ledger does not know.
    pub foreign: u64,
    /// Replayed history messages (ignored).
    pub history: u64,
    /// SYSTEM_MSG notices (ignored).
    pub system: u64,
    /// PRESENCE notices (coalesced joins and leaves; ignored but counted).
    pub presence: u64,
    /// Bots that failed to connect (refused, reset, timed out).
    pub connect_failures: u64,
    /// LOGIN_REJECTs and JOIN failures.
    pub login_failures: u64,
    /// Bots whose connection ended before the run did.
    pub disconnects: u64,
    /// Sends skipped because the bot's own outbound backlog was over its cap.
    pub backlog_skips: u64,
    /// Private messages not sent because no other bot had joined.
    pub no_target: u64,
    /// Undecodable frames from the server.
    pub decode_errors: u64,
    /// ERROR_MSG codes received, by name.
    pub error_msgs: BTreeMap<String, u64>,
    /// Bytes written to sockets (ciphertext with TLS), whole run.
    pub bytes_written: u64,
    /// Bytes read from sockets (ciphertext with TLS), whole run.
    pub bytes_read: u64,
    /// Bytes written during the measured window.
    pub bytes_written_measured: u64,
    /// Bytes read during the measured window.
    pub bytes_read_measured: u64,
    /// What fail-over did (all zero without `--failover`).
    pub failover: FailoverCounters,
}

/// Fail-over counters: drops, returns, retries and what the resumes replayed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailoverCounters {
    /// Bots whose connection dropped during the run and that started failing over (once per
    /// drop: a bot that drops twice counts twice).
    pub dropped: u64,
    /// Of those, how many were back in their room before the stop.
    pub back: u64,
    /// Of those, how many gave up (`--failover-timeout` passed).
    pub gave_up: u64,
    /// Logins refused while the dead node's names expire (USERNAME_TAKEN, or INTERNAL "cannot
    /// confirm the name"), each retried after a back-off.
    pub name_retries: u64,
    /// Messages of the bot's room replayed on resume and counted as deliveries.
    pub replayed: u64,
    /// Replayed messages dropped because the bot already had them (same id).
    pub replay_dropped: u64,
    /// Live messages dropped because the bot already had them (same id).
    pub live_dropped: u64,
    /// REPLAY_ENDs received.
    pub replay_ends: u64,
    /// REPLAY_ENDs with the gap flag.
    pub replay_gaps: u64,
    /// Room messages sent on a connection that dropped before their ROOM_MSG_ACK: not resent,
    /// marked in the ledger so that their missing deliveries are not counted as server loss.
    pub unacked: u64,
    /// Scheduled sends not made because the bot was away (reconnecting).
    pub skipped_away: u64,
}

impl FailoverCounters {
    fn merge(&mut self, o: &FailoverCounters) {
        let FailoverCounters {
            dropped,
            back,
            gave_up,
            name_retries,
            replayed,
            replay_dropped,
            live_dropped,
            replay_ends,
            replay_gaps,
            unacked,
            skipped_away,
        } = o;
        self.dropped += dropped;
        self.back += back;
        self.gave_up += gave_up;
        self.name_retries += name_retries;
        self.replayed += replayed;
        self.replay_dropped += replay_dropped;
        self.live_dropped += live_dropped;
        self.replay_ends += replay_ends;
        self.replay_gaps += replay_gaps;
        self.unacked += unacked;
        self.skipped_away += skipped_away;
    }
}

impl Counters {
    /// Adds `o` into `self`.
    pub fn merge(&mut self, o: &Counters) {
        let Counters {
            sent_room,
            sent_private,
            sent_room_measured,
            sent_private_measured,
            expected,
            expected_measured,
            delivered_room,
            delivered_private,
            delivered_measured,
            echoes,
            acks,
            refused_room,
            foreign,
            history,
            system,
            presence,
            connect_failures,
            login_failures,
            disconnects,
            backlog_skips,
            no_target,
            decode_errors,
            error_msgs,
            bytes_written,
            bytes_read,
            bytes_written_measured,
            bytes_read_measured,
            failover,
        } = o;
        self.sent_room += sent_room;
        self.sent_private += sent_private;
        self.sent_room_measured += sent_room_measured;
        self.sent_private_measured += sent_private_measured;
        self.expected += expected;
        self.expected_measured += expected_measured;
        self.delivered_room += delivered_room;
        self.delivered_private += delivered_private;
        self.delivered_measured += delivered_measured;
        self.echoes += echoes;
        self.acks += acks;
        self.refused_room += refused_room;
        self.foreign += foreign;
        self.history += history;
        self.system += system;
        self.presence += presence;
        self.connect_failures += connect_failures;
        self.login_failures += login_failures;
        self.disconnects += disconnects;
        self.backlog_skips += backlog_skips;
        self.no_target += no_target;
        self.decode_errors += decode_errors;
        for (k, v) in error_msgs {
            *self.error_msgs.entry(k.clone()).or_default() += v;
        }
        self.bytes_written += bytes_written;
        self.bytes_read += bytes_read;
        self.bytes_written_measured += bytes_written_measured;
        self.bytes_read_measured += bytes_read_measured;
        self.failover.merge(failover);
    }

    /// Messages sent, warm-up included.
    pub fn sent(&self) -> u64 {
        self.sent_room + self.sent_private
    }

    /// Deliveries received, warm-up included.
    pub fn delivered(&self) -> u64 {
        self.delivered_room + self.delivered_private
    }
}

/// Everything one thread hands back.
#[derive(Clone, Default)]
pub struct ThreadStats {
    /// Histograms.
    pub hists: Hists,
    /// Counters.
    pub counters: Counters,
}

impl ThreadStats {
    /// Adds `o` into `self`.
    pub fn merge(&mut self, o: &ThreadStats) {
        self.hists.merge(&o.hists);
        self.counters.merge(&o.counters);
    }
}

/// Percentiles of one histogram, in microseconds (fractional), for reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Number of values recorded.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Smallest value.
    pub min_us: f64,
    /// 50th percentile.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p99_9_us: f64,
    /// 99.99th percentile.
    pub p99_99_us: f64,
    /// Largest value.
    pub max_us: f64,
}

impl Percentiles {
    /// Summarises `h` (ns) in µs. All zero for an empty histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        let q = |p: f64| us(h.highest_equivalent(h.value_at_quantile(p)));
        Percentiles {
            count: h.len(),
            mean_us: h.mean() / 1_000.0,
            min_us: us(h.min()),
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p99_9_us: q(0.999),
            p99_99_us: q(0.9999),
            max_us: us(h.highest_equivalent(h.max())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_keeps_extremes() {
        let mut a = Hists::new();
        let mut b = Hists::new();
        for v in 1..=1000u64 {
            record(&mut a.corrected, v * 1_000);
        }
        for v in 1001..=2000u64 {
            record(&mut b.corrected, v * 1_000);
        }
        record(&mut b.login, 5);
        a.merge(&b);
        assert_eq!(a.corrected.len(), 2000);
        assert_eq!(a.login.len(), 1);
        let p = Percentiles::of(&a.corrected);
        assert!((p.p50_us - 1000.0).abs() <= 1.0, "{p:?}");
        assert!((p.max_us - 2000.0).abs() <= 2.0, "{p:?}");
        assert_eq!(p.min_us, 1.0);
    }
}
