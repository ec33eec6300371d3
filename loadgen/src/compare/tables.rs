//! The Markdown tables: the session (the seed's shape) and the load, each mode against JSON.

use std::fmt::Write as _;

use super::options::SessionShape;
use super::runs::ModeRuns;
use crate::report::{bytes, n, Report, ServerCost};

/// `x` against `base` as a signed percentage ("baseline" when equal, "-" without a base).
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
        session_table(&mut t, sessions, shape);
    }
    if let Some(first) = loads.first().and_then(|m| m.runs.first()) {
        load_table(&mut t, first, loads);
    }
    t
}

/// Bytes and bandwidth of the whole session, per mode.
fn session_table(t: &mut String, sessions: &[Report], shape: &SessionShape) {
    let base =
        sessions.iter().find(|r| r.mode == "json").map_or(0.0, |r| (r.wire.written_total + r.wire.read_total) as f64);
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

/// Measured-window bytes (both ways) of one run.
fn wire(r: &Report) -> f64 {
    (r.wire.written_measured + r.wire.read_measured) as f64
}

/// Bytes, latency and server cost of the load, medians per mode; `first` names the scenario.
fn load_table(t: &mut String, first: &Report, loads: &[ModeRuns]) {
    let sc = &first.scenario;
    let repeats = loads.iter().map(|m| m.runs.len()).max().unwrap_or(0);
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
        load_row(t, m, repeats, base);
    }
}

/// One mode's row of the load table.
fn load_row(t: &mut String, m: &ModeRuns, repeats: usize, base: f64) {
    let ms = |f: fn(&Report) -> f64| m.median(f) / 1e3;
    let p99 = ms(|r| r.latency.corrected.p99_us);
    let p99 = if repeats > 1 {
        let (lo, hi) = m.range(|r| r.latency.corrected.p99_us);
        format!("{p99:.3} ms ({:.3}–{:.3})", lo / 1e3, hi / 1e3)
    } else {
        format!("{p99:.3} ms")
    };
    let (cpu, cpu_d, rss) = server_cells(m);
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

/// Server CPU, CPU per delivery and peak RSS (medians), or dashes unless every run read them.
fn server_cells(m: &ModeRuns) -> (String, String, String) {
    if !m.runs.iter().all(|r| r.server.is_some()) {
        return ("-".into(), "-".into(), "-".into());
    }
    let server = |f: fn(&ServerCost) -> f64| m.median(|r| r.server.as_ref().map_or(0.0, f));
    (
        format!("{:.0}%", server(|s| s.cpu_cores_measured) * 100.0),
        format!("{:.2}", server(|s| s.cpu_us_per_delivery)),
        bytes(server(|s| s.peak_rss_bytes as f64) as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vs_is_a_signed_percentage_of_the_base() {
        assert_eq!(vs(0.0, 5.0), "-");
        assert_eq!(vs(200.0, 200.05), "baseline");
        assert_eq!(vs(200.0, 150.0), "-25.0%");
        assert_eq!(vs(200.0, 300.0), "+50.0%");
    }
}
