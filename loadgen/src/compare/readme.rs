//! The results folder's `README.md`.

use std::fmt::Write as _;

use super::options::CompareOptions;
use super::runs::ModeRuns;
use crate::machine::Machine;
use crate::report::Report;

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
    write_server(&mut o, opts);
    write_load_average(&mut o, m, sessions, loads);
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
    write_how_to_read(&mut o, opts);
    write_errors(&mut o, sessions, loads);
    o
}

/// Which server the runs used.
fn write_server(o: &mut String, opts: &CompareOptions) {
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
}

/// The range of load averages the runs saw, if any was read.
fn write_load_average(o: &mut String, m: &Machine, sessions: &[Report], loads: &[ModeRuns]) {
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
}

/// What the session and the load measure, and the files.
fn write_how_to_read(o: &mut String, opts: &CompareOptions) {
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
}

/// Every run's errors, by part and mode.
fn write_errors(o: &mut String, sessions: &[Report], loads: &[ModeRuns]) {
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
}
