//! Deriving the report's figures from the collected facts: every rate, per-message figure and
//! CPU cost is computed here once.

use super::types::{
    AddrBots, Bots, Deliveries, FailoverReport, Latency, LoadgenCost, Messages, Phases, Report, RunFacts, ServerBytes,
    ServerCost, Setup, Wire,
};
use crate::scenario::Scenario;
use crate::stats::{Counters, Hists, Percentiles};

/// `a / b`, or 0 when there is nothing to divide by.
fn per(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// The three figures most rates divide by.
#[derive(Clone, Copy, Debug)]
struct Window {
    /// Length of the measured window, seconds.
    secs: f64,
    /// Messages sent in it.
    sent: u64,
    /// Deliveries of its messages (from the ledger when it is on).
    delivered: u64,
}

impl Window {
    fn of(f: &RunFacts) -> Self {
        let c = &f.stats.counters;
        let delivered =
            if f.ledger_enabled { f.audit_measured.delivered } else { c.delivered_measured.min(c.expected_measured) };
        Window {
            secs: f.scenario.duration.as_secs_f64(),
            sent: c.sent_room_measured + c.sent_private_measured,
            delivered,
        }
    }
}

impl Report {
    /// Derives the report from the collected facts.
    pub fn build(f: RunFacts) -> Report {
        let sc = &f.scenario;
        let c = &f.stats.counters;
        let h = &f.stats.hists;
        let win = Window::of(&f);
        let mut r = Report {
            mode: sc.mode_label(),
            scenario: sc.clone(),
            addresses: addresses(sc),
            bots: bots(&f),
            phases: Phases {
                connect_s: f.connect_secs,
                warmup_s: sc.warmup.as_secs_f64(),
                measured_s: win.secs,
                drain_s: f.drain_secs,
            },
            messages: messages(c, &f, win),
            deliveries: Deliveries {
                per_message_ledger: f.ledger_enabled,
                measured: f.audit_measured.clone(),
                warmup: f.audit_warmup.clone(),
            },
            failover: sc.failover.map(|_| failover(c, h)),
            latency: Latency {
                corrected: Percentiles::of(&h.corrected),
                uncorrected: Percentiles::of(&h.uncorrected),
                send_lag: Percentiles::of(&h.send_lag),
            },
            setup: setup(h),
            wire: wire(c, win),
            server: server_cost(&f, win),
            loadgen: loadgen_cost(&f, win),
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
}

/// Bots (and publishers) placed on each address, when there are several.
fn addresses(sc: &Scenario) -> Vec<AddrBots> {
    let list = sc.addr_list();
    if list.len() < 2 {
        return Vec::new();
    }
    let mut out: Vec<AddrBots> = list.iter().map(|&addr| AddrBots { addr, bots: 0, publishers: 0 }).collect();
    for (b, home) in sc.homes().into_iter().enumerate() {
        let a = &mut out[home];
        a.bots += 1;
        a.publishers += u64::from((b as u32) < sc.publishers());
    }
    out
}

fn failover(c: &Counters, h: &Hists) -> FailoverReport {
    let f = &c.failover;
    let secs = |ns: u64| ns as f64 / 1e9;
    let back = &h.failover;
    FailoverReport {
        dropped: f.dropped,
        back: f.back,
        gave_up: f.gave_up,
        still_away: f.dropped.saturating_sub(f.back + f.gave_up),
        back_max_s: if back.is_empty() { 0.0 } else { secs(back.highest_equivalent(back.max())) },
        back_p50_s: if back.is_empty() { 0.0 } else { secs(back.highest_equivalent(back.value_at_quantile(0.5))) },
        name_retries: f.name_retries,
        replayed: f.replayed,
        replay_dropped: f.replay_dropped,
        live_dropped: f.live_dropped,
        replay_ends: f.replay_ends,
        replay_gaps: f.replay_gaps,
        unacked: f.unacked,
        skipped_away: f.skipped_away,
    }
}

fn bots(f: &RunFacts) -> Bots {
    let c = &f.stats.counters;
    Bots {
        requested: f.scenario.bots as u64,
        connected: f.stats.hists.connect.len(),
        ready: f.ready_bots,
        connect_failures: c.connect_failures,
        login_failures: c.login_failures,
        disconnects: c.disconnects,
    }
}

fn messages(c: &Counters, f: &RunFacts, win: Window) -> Messages {
    Messages {
        sent_measured: win.sent,
        sent_room_measured: c.sent_room_measured,
        sent_private_measured: c.sent_private_measured,
        expected_measured: c.expected_measured,
        delivered_measured: win.delivered,
        sent_per_s: per(win.sent as f64, win.secs),
        delivered_per_s: per(win.delivered as f64, win.secs),
        sent_total: c.sent(),
        expected_total: c.expected,
        delivered_total: c.delivered(),
        acks: c.acks,
        refused_room: c.refused_room,
        // Acks of messages whose connection dropped first (fail-over) cannot come.
        acks_expected: c.sent_room - (c.failover.unacked + c.refused_room).min(c.sent_room),
        echoes: c.echoes,
        echoes_expected: c.sent_private,
        foreign: c.foreign,
        history: c.history,
        system: c.system,
        presence: c.presence,
        backlog_skips: c.backlog_skips,
        unsent: f.unsent,
        no_target: c.no_target,
        decode_errors: c.decode_errors,
        error_msgs: c.error_msgs.clone(),
    }
}

fn setup(h: &Hists) -> Setup {
    Setup {
        connect: Percentiles::of(&h.connect),
        tls_handshake: Percentiles::of(&h.tls_handshake),
        login: Percentiles::of(&h.login),
        join: Percentiles::of(&h.join),
    }
}

fn wire(c: &Counters, win: Window) -> Wire {
    Wire {
        written_total: c.bytes_written,
        read_total: c.bytes_read,
        written_measured: c.bytes_written_measured,
        read_measured: c.bytes_read_measured,
        written_per_s: per(c.bytes_written_measured as f64, win.secs),
        read_per_s: per(c.bytes_read_measured as f64, win.secs),
        written_per_message: per(c.bytes_written_measured as f64, win.sent as f64),
        read_per_delivery: per(c.bytes_read_measured as f64, win.delivered as f64),
        kbps: per((c.bytes_written_measured + c.bytes_read_measured) as f64 * 8.0 / 1000.0, win.secs),
    }
}

/// The server's cost, when every /proc reading of it succeeded.
fn server_cost(f: &RunFacts, win: Window) -> Option<ServerCost> {
    let (Some(idle), Some(ready), Some(m0), Some(m1), Some(end)) =
        (f.server_idle, f.server_ready, f.server_m0, f.server_m1, f.server_end)
    else {
        return None;
    };
    let cpu = m1.cpu_s - m0.cpu_s;
    Some(ServerCost {
        cpu_s_measured: cpu,
        cpu_cores_measured: per(cpu, win.secs),
        cpu_s_total: end.cpu_s - idle.cpu_s,
        cpu_us_per_message: per(cpu * 1e6, win.sent as f64),
        cpu_us_per_delivery: per(cpu * 1e6, win.delivered as f64),
        rss_idle_bytes: idle.rss_bytes,
        rss_ready_bytes: ready.rss_bytes,
        rss_per_connection_bytes: per(ready.rss_bytes.saturating_sub(idle.rss_bytes) as f64, f.ready_bots as f64),
        peak_rss_bytes: f.peak_server_rss.max(end.peak_rss_bytes),
    })
}

/// This process's cost; zeros when a reading failed.
fn loadgen_cost(f: &RunFacts, win: Window) -> LoadgenCost {
    match (f.self_m0, f.self_m1, f.self_end) {
        (Some(a), Some(b), Some(e)) => LoadgenCost {
            cpu_s_measured: b.cpu_s - a.cpu_s,
            cpu_cores_measured: per(b.cpu_s - a.cpu_s, win.secs),
            peak_rss_bytes: e.peak_rss_bytes,
        },
        _ => LoadgenCost { cpu_s_measured: 0.0, cpu_cores_measured: 0.0, peak_rss_bytes: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_is_zero_when_there_is_nothing_to_divide_by() {
        assert_eq!(per(3.0, 2.0), 1.5);
        assert_eq!(per(3.0, 0.0), 0.0);
        assert_eq!(per(0.0, 0.0), 0.0);
    }
}
