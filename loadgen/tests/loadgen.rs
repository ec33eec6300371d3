//! The load generator's tests, in one binary: the schedule, histogram merging, the `.hgrm`
//! writer against a hand-derived file, the delivery ledger, and short real runs against an
//! in-process server on loopback (plain binary, JSON, TLS) that check every expected message
//! arrived exactly once and that the bytes the bots counted are the bytes the server counted.
//!
//! No assertion depends on absolute timings.

use chatproto::server::{spawn, RunningServer};
use chatproto::ServerConfig;
use loadgen::ledger::Ledger;
use loadgen::report::Report;
use loadgen::scenario::{Rate, Scenario, TlsOptions, TlsTrust, WireFormat};
use loadgen::schedule::{pick_target, Kind, Schedule};
use loadgen::stats::{new_hist, record, Hists};
use loadgen::{hgrm, Hooks};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

const MS: u64 = 1_000_000;

#[path = "loadgen/cluster.rs"]
mod cluster;

// ---------------------------------------------------------------------------------------------
// Schedule

#[test]
fn schedule_intended_times_are_staggered_and_periodic() {
    // 4 bots at 10 msg/s each: every bot every 100 ms, bots 25 ms apart.
    let s = Schedule::new(4, 10.0, 0, 1_000 * MS, 0.0);
    assert_eq!(s.offset_ns(0, 0), 0);
    assert_eq!(s.offset_ns(1, 0), 25 * MS);
    assert_eq!(s.offset_ns(3, 0), 75 * MS);
    assert_eq!(s.offset_ns(2, 7), 750 * MS);
    for b in 0..4 {
        assert_eq!(s.count(b), 10, "bot {b}");
    }
    // All sends together: one every 25 ms, no gaps, no bunching (the total rate is smooth).
    let mut all: Vec<u64> = (0..4).flat_map(|b| (0..s.count(b)).map(move |k| s.offset_ns(b, k))).collect();
    all.sort_unstable();
    assert_eq!(all.len(), 40);
    for (i, t) in all.iter().enumerate() {
        assert_eq!(*t, i as u64 * 25 * MS);
    }
}

#[test]
fn schedule_counts_warmup_and_window() {
    // 3 bots at 2 msg/s: interval 500 ms, phases 0, 166.67, 333.33 ms; 1 s warm-up + 2 s.
    let s = Schedule::new(3, 2.0, 1_000 * MS, 2_000 * MS, 0.0);
    assert_eq!(s.end_ns(), 3_000 * MS);
    for b in 0..3 {
        assert_eq!(s.count(b), 6, "bot {b}");
        // Last send strictly before the end, the next one at or after it.
        assert!(s.offset_ns(b, 5) < s.end_ns());
        assert!(s.offset_ns(b, 6) >= s.end_ns());
    }
    assert_eq!(s.total(), 18);
    assert!(!s.is_measured(999 * MS));
    assert!(s.is_measured(1_000 * MS));
    assert!(s.is_measured(2_999 * MS));
    assert!(!s.is_measured(3_000 * MS));
    let measured =
        (0..3).flat_map(|b| (0..6).map(move |k| (b, k))).filter(|&(b, k)| s.is_measured(s.offset_ns(b, k))).count();
    assert_eq!(measured, 12);
    // Total rate from a per-bot rate that does not divide evenly stays exact over the window.
    let s = Schedule::new(7, 0.3, 0, 100_000 * MS, 0.0);
    assert_eq!(s.total(), 210);
}

#[test]
fn schedule_kinds_are_deterministic_and_near_the_share() {
    let s = Schedule::new(1000, 1.0, 0, 10_000 * MS, 0.25);
    let kinds: Vec<Kind> = (0..1000).flat_map(|b| (0..10).map(move |k| (b, k))).map(|(b, k)| s.kind(b, k)).collect();
    let again: Vec<Kind> = (0..1000).flat_map(|b| (0..10).map(move |k| (b, k))).map(|(b, k)| s.kind(b, k)).collect();
    assert_eq!(kinds, again);
    let private = kinds.iter().filter(|k| matches!(k, Kind::Private { .. })).count();
    // 10,000 draws at 25%: far inside ±3 percentage points.
    assert!((2200..=2800).contains(&private), "{private}");
    // One bot alone never sends private messages.
    let lonely = Schedule::new(1, 1.0, 0, 10_000 * MS, 1.0);
    assert!((0..10).all(|k| lonely.kind(0, k) == Kind::Room));
}

#[test]
fn private_targets_are_ready_bots_other_than_the_sender() {
    let ready = [2u32, 3, 5, 8, 13];
    for from in [2u32, 5, 13, 4] {
        let mut seen = HashSet::new();
        for pick in 0..1000u64 {
            let t = pick_target(&ready, from, pick.wrapping_mul(0x9E37_79B9_7F4A_7C15)).unwrap();
            assert_ne!(t, from);
            assert!(ready.contains(&t));
            seen.insert(t);
        }
        let others = ready.iter().filter(|&&r| r != from).count();
        assert_eq!(seen.len(), others, "every other ready bot is reachable from {from}");
    }
    assert_eq!(pick_target(&[7], 7, 3), None);
    assert_eq!(pick_target(&[], 7, 3), None);
}

// ---------------------------------------------------------------------------------------------
// Histograms and the .hgrm writer

#[test]
fn merged_thread_histograms_equal_one_histogram_of_everything() {
    let mut threads = [Hists::new(), Hists::new(), Hists::new()];
    let mut single = new_hist();
    let mut x: u64 = 12345;
    for i in 0..30_000u64 {
        // A deterministic spread from 1 µs to ~1 s.
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let v = 1_000 + (x >> 34) % 1_000_000_000;
        record(&mut threads[(i % 3) as usize].corrected, v);
        record(&mut single, v);
    }
    record(&mut threads[2].login, 42);
    let mut merged = Hists::new();
    for t in &threads {
        merged.merge(t);
    }
    assert_eq!(merged.corrected.len(), 30_000);
    assert_eq!(merged.corrected, single);
    assert_eq!(merged.login.len(), 1);
    for q in [0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
        assert_eq!(merged.corrected.value_at_quantile(q), single.value_at_quantile(q));
    }
    assert_eq!(merged.corrected.max(), single.max());
    assert_eq!(merged.corrected.min(), single.min());
}

/// Four values, 1, 2, 3 and 4 ms, in the nanosecond histogram (1 ns .. 1 h, 3 digits). The
/// expected file was worked out by hand from HdrHistogram's Java `outputPercentileDistribution`:
///
/// - each value is reported as the highest value equivalent to it: 1 ms sits in the bucket of
///   512-ns units, so 999,936..1,000,447 → 1.000 ms; 2 ms → 2,000,895 ns (2.001); 3 ms →
///   3,000,319 (3.000); 4 ms → 4,001,791 (4.002);
/// - percentile levels start at 0 and rise by 100/(5·2^(h+1)) where h = ⌊log2(100/(100−level))⌋:
///   steps of 10 up to 50, of 5 up to 75, then 2.5; at each value every level the running count
///   (25%, 50%, 75%, 100%) has reached is reported; after the first report at the last value the
///   walk jumps to 100%;
/// - mean and standard deviation use the middle of each value's range: (1,000,192 + 2,000,384 +
///   2,999,296 + 4,000,768) / 4 = 2.500 ms, σ = 1.118 ms;
/// - 3.6e12 ns needs 32 buckets of 2,048 sub-buckets.
#[test]
fn hgrm_writer_matches_a_hand_derived_file() {
    let mut h = new_hist();
    for ms in 1..=4u64 {
        record(&mut h, ms * MS);
    }
    let expected = include_str!("data/four-values.hgrm");
    assert_eq!(hgrm::render_ms(&h), expected);
}

#[test]
fn hgrm_writer_on_a_larger_histogram_is_consistent() {
    let mut h = new_hist();
    for us in 1..=10_000u64 {
        record(&mut h, us * 1_000);
    }
    let text = hgrm::render_ms(&h);
    let rows: Vec<Vec<&str>> =
        text.lines().skip(2).take_while(|l| !l.starts_with('#')).map(|l| l.split_whitespace().collect()).collect();
    assert!(rows.len() > 50);
    let mut last = (0.0f64, 0.0f64, 0u64);
    for r in &rows {
        let (v, p, c): (f64, f64, u64) = (r[0].parse().unwrap(), r[1].parse().unwrap(), r[2].parse().unwrap());
        assert!(v >= last.0 && p >= last.1 && c >= last.2, "monotone: {r:?}");
        // Each row's count is the number of values at or below its value (1 µs apart, 3 digits).
        let exact = (v * 1000.0).round() as u64;
        assert!(c.abs_diff(exact.min(10_000)) <= exact / 500 + 1, "{r:?}");
        last = (v, p, c);
    }
    let final_row = rows.last().unwrap();
    assert_eq!(final_row.len(), 3, "the 100% row has no 1/(1-p) column");
    assert_eq!(final_row[1], "1.000000000000");
    assert_eq!(final_row[2], "10000");
    assert!(text.contains("Total count    =        10000]"));
    // The empty histogram still has a header and footer.
    let empty = hgrm::render_ms(&new_hist());
    assert!(empty.starts_with("       Value     Percentile"));
    assert!(empty.contains("Total count    =            0]"));
}

// ---------------------------------------------------------------------------------------------
// Ledger

#[test]
fn ledger_finds_every_loss_and_duplicate() {
    let s = Schedule::new(3, 1.0, 2_000 * MS, 3_000 * MS, 0.0);
    let l = Ledger::new(&s, 3);
    assert!(l.enabled());
    // Every bot sends all 5 messages; each should reach the other 2 bots.
    for b in 0..3 {
        for k in 0..5 {
            l.mark_sent(b, k);
        }
    }
    for b in 0..3 {
        for k in 0..5 {
            let copies = match (b, k) {
                (0, 3) => 1, // one receiver missed it (measured)
                (1, 4) => 3, // one receiver got it twice (measured)
                (2, 0) => 0, // nobody got it (warm-up)
                _ => 2,
            };
            for _ in 0..copies {
                assert!(l.deliver(b, k));
            }
        }
    }
    assert!(!l.deliver(7, 0), "unknown sender");
    assert!(!l.deliver(0, 99), "unknown sequence number");
    let (m, w) = l.audit(|_, _| 2, |b, k| s.is_measured(s.offset_ns(b, k)));
    assert_eq!((m.sent, w.sent), (9, 6));
    assert_eq!((m.expected, m.delivered, m.lost, m.duplicated), (18, 17, 1, 1));
    assert_eq!((m.messages_with_loss, m.messages_with_duplicates), (1, 1));
    assert_eq!((w.expected, w.delivered, w.lost, w.duplicated), (12, 10, 2, 0));
}

// ---------------------------------------------------------------------------------------------
// Real runs against an in-process server

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("loadgen-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn small_scenario(server: &RunningServer) -> Scenario {
    let mut s = Scenario::new(server.addr);
    s.bots = 50;
    s.rooms = 4;
    s.rate = Rate::PerBot(4.0);
    s.private_share = 0.2;
    s.payload = 80;
    s.warmup = Duration::from_millis(500);
    s.duration = Duration::from_millis(1500);
    s.drain = Duration::from_secs(10);
    s.threads = 2;
    s
}

fn run_against(server: &RunningServer, s: Scenario) -> Report {
    let handle = server.handle.clone();
    let hooks = Hooks {
        server_bytes: Some(Box::new(move || {
            let st = handle.stats();
            (st.bytes_in, st.bytes_out)
        })),
        ..Hooks::default()
    };
    loadgen::run(s, hooks).expect("run")
}

fn assert_clean(r: &Report) {
    assert!(r.ok(), "errors: {:#?}\n{}", r.errors, r.summary());
    assert_eq!(r.bots.ready, r.bots.requested);
    let m = &r.messages;
    assert!(m.sent_measured > 0);
    assert!(m.expected_measured > 0);
    assert_eq!(m.delivered_measured, m.expected_measured);
    assert_eq!(m.delivered_total, m.expected_total);
    assert_eq!(m.acks, m.acks_expected);
    assert_eq!(m.echoes, m.echoes_expected);
    assert_eq!(r.deliveries.measured.lost + r.deliveries.measured.duplicated, 0);
    assert_eq!(r.deliveries.warmup.lost + r.deliveries.warmup.duplicated, 0);
    // One latency sample per measured delivery, corrected never below uncorrected.
    assert_eq!(r.latency.corrected.count, m.delivered_measured);
    assert!(r.latency.corrected.max_us >= r.latency.uncorrected.max_us);
    // The server saw exactly the bytes the bots' sockets moved.
    let sb = r.server_bytes.as_ref().expect("server bytes");
    assert_eq!(sb.bytes_in, r.wire.written_total, "bytes bots wrote vs server read");
    assert_eq!(sb.bytes_out, r.wire.read_total, "bytes server wrote vs bots read");
    assert!(r.wire.written_measured > 0 && r.wire.read_measured > 0);
}

#[test]
fn real_run_binary_delivers_everything_and_bytes_match_the_server() {
    let server = spawn(ServerConfig::loopback()).unwrap();
    let s = small_scenario(&server);
    let r = run_against(&server, s);
    assert_clean(&r);
    assert_eq!(r.mode, "binary");
    // Deliveries per room message = room members − 1; the ledger and the counters agree.
    let rooms = 4u64;
    let per_room = 50 / rooms; // 50 bots over 4 rooms, round robin: 13, 13, 12, 12
    assert!(r.messages.expected_total >= r.messages.sent_total - r.messages.echoes_expected);
    assert!(r.messages.expected_total <= r.messages.sent_total * per_room);
    server.stop().unwrap();
}

#[test]
fn real_run_json_with_skewed_rooms() {
    let server = spawn(ServerConfig::loopback()).unwrap();
    let mut s = small_scenario(&server);
    s.format = WireFormat::Json;
    s.spread = loadgen::Spread::Skewed;
    s.rooms = 6;
    s.bots = 40;
    let r = run_against(&server, s);
    assert_clean(&r);
    assert_eq!(r.mode, "json");
    server.stop().unwrap();
}

#[test]
fn real_run_over_websocket_delivers_everything_and_bytes_match_the_server() {
    let server = spawn(ServerConfig::loopback()).unwrap();
    let mut s = small_scenario(&server);
    s.format = WireFormat::WebSocket;
    s.bots = 30;
    let r = run_against(&server, s);
    assert_clean(&r);
    assert_eq!(r.mode, "websocket");
    assert_eq!(server.handle.stats().http_requests, 30, "one upgrade per bot");
    server.stop().unwrap();
}

#[test]
fn real_run_over_tls_counts_ciphertext() {
    let dir = temp_dir("tls");
    let mut cfg = ServerConfig::loopback();
    cfg.tls.enabled = true;
    cfg.tls.cert = dir.join("server.crt");
    cfg.tls.key = dir.join("server.key");
    let server = spawn(cfg).unwrap();
    let mut s = small_scenario(&server);
    s.bots = 20;
    s.tls = Some(TlsOptions { trust: TlsTrust::Ca(dir.join("server.crt")), server_name: "localhost".into() });
    let r = run_against(&server, s);
    assert_clean(&r);
    assert_eq!(r.mode, "binary+tls");
    assert_eq!(r.setup.tls_handshake.count, 20);
    server.stop().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Output formats: the report's summary and JSON, and compare's tables, byte for byte

/// Facts of a made-up run: `trouble` turns on every error and warning the report knows.
fn golden_facts(trouble: bool) -> loadgen::report::RunFacts {
    use loadgen::ledger::Audit;
    use loadgen::procstat::Sample;
    let mut sc = Scenario::new("127.0.0.1:7878".parse().unwrap());
    sc.bots = 40;
    sc.rooms = 3;
    sc.server_pid = Some(4242);
    let mut stats = loadgen::stats::ThreadStats::default();
    for (i, v) in [1_200_000u64, 1_900_000, 2_500_000, 8_000_000, 31_000_000].iter().enumerate() {
        record(&mut stats.hists.corrected, *v);
        record(&mut stats.hists.uncorrected, v - 100_000);
        record(&mut stats.hists.send_lag, 20_000 * (i as u64 + 1) * if trouble { 200 } else { 1 });
        record(&mut stats.hists.connect, 90_000 + i as u64);
        record(&mut stats.hists.login, 300_000 + i as u64);
    }
    let c = &mut stats.counters;
    (c.sent_room, c.sent_private, c.sent_room_measured, c.sent_private_measured) = (900, 100, 700, 80);
    (c.expected, c.expected_measured, c.delivered_room, c.delivered_private) = (9_100, 7_080, 9_000, 100);
    (c.delivered_measured, c.echoes, c.acks) = (7_080, 100, 900);
    (c.bytes_written, c.bytes_read, c.bytes_written_measured, c.bytes_read_measured) =
        (123_456, 7_654_321, 98_765, 6_543_210);
    let audit = |sent, expected| Audit { sent, expected, delivered: expected, ..Audit::default() };
    let (mut audit_measured, mut audit_warmup) = (audit(780, 7_080), audit(220, 2_020));
    if trouble {
        (c.connect_failures, c.login_failures, c.disconnects, c.backlog_skips) = (2, 1, 3, 4);
        (c.no_target, c.decode_errors, c.foreign, c.acks, c.echoes) = (5, 6, 7, 899, 98);
        c.error_msgs.insert("RateLimited".into(), 9);
        (audit_measured.lost, audit_measured.messages_with_loss) = (11, 2);
        (audit_warmup.duplicated, audit_warmup.messages_with_duplicates, audit_warmup.phantom) = (3, 1, 1);
    }
    let s = |cpu_s, rss| Some(Sample { cpu_s, rss_bytes: rss, peak_rss_bytes: rss + 4096 });
    loadgen::report::RunFacts {
        scenario: sc,
        stats,
        ready_bots: if trouble { 34 } else { 40 },
        still_open: if trouble { 20 } else { 40 },
        unsent: if trouble { 17 } else { 0 },
        connect_secs: 0.75,
        drain_secs: 0.125,
        audit_measured,
        audit_warmup,
        ledger_enabled: !trouble,
        server_idle: s(0.5, 10 << 20),
        server_ready: s(0.75, 14 << 20),
        server_m0: s(1.0, 15 << 20),
        server_m1: if trouble { None } else { s(4.5, 16 << 20) },
        server_end: s(5.0, 16 << 20),
        peak_server_rss: 17 << 20,
        self_m0: s(0.25, 5 << 20),
        self_m1: s(2.25, 6 << 20),
        self_end: if trouble { None } else { s(2.5, 6 << 20) },
        server_bytes: Some(if trouble { (1, 2) } else { (123_456, 7_654_321) }),
        thread_errors: if trouble { vec!["thread 1: boom".into()] } else { Vec::new() },
        // The summary prints the CPU count next to the load average: left out to stay portable.
        loadavg: (None, None),
    }
}

/// Compares `actual` with `tests/golden/<name>`; `LOADGEN_BLESS=1` writes the file instead.
fn assert_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("LOADGEN_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(actual == expected, "{name} changed:\n--- expected\n{expected}\n--- actual\n{actual}");
}

#[test]
fn report_summary_json_and_compare_tables_are_unchanged() {
    use loadgen::compare::{readme, tables, CompareOptions, ModeRuns, SessionShape};
    let clean = Report::build(golden_facts(false));
    let troubled = Report::build(golden_facts(true));
    assert!(clean.ok(), "{:?}", clean.errors);
    assert!(!troubled.ok());
    assert_golden("clean-summary.txt", &clean.summary());
    assert_golden("troubled-summary.txt", &troubled.summary());
    assert_golden("clean.json", &serde_json::to_string_pretty(&clean).unwrap());
    assert_golden("troubled.json", &serde_json::to_string_pretty(&troubled).unwrap());
    let mut json = clean.clone();
    json.mode = "json".into();
    let shape = SessionShape { users: 5, nominal_secs: 180.0, messages_per_user: 30, replay_secs: 6.0, payload: 60 };
    let loads = vec![
        ModeRuns { mode: "json".into(), runs: vec![json.clone(), json.clone()] },
        ModeRuns { mode: "binary".into(), runs: vec![clean.clone(), troubled.clone()] },
    ];
    let table = tables(&[json.clone(), clean.clone()], &loads, Some(&shape));
    assert_golden("tables.md", &table);

    let machine = loadgen::machine::Machine {
        cpu_model: "Test CPU @ 1.00GHz".into(),
        cpus: 4,
        kernel: "6.1.0".into(),
        memory_bytes: 8 << 30,
    };
    let mut opts = CompareOptions {
        scenario: clean.scenario.clone(),
        external: None,
        server_bin: None,
        server_shards: 2,
        server_args: vec!["--max-connections".into(), "9000".into()],
        out: PathBuf::from("results"),
        session: Some(shape),
        repeat: 2,
        command_line: "loadgen compare --bots 40".into(),
    };
    let mut json_loaded = json.clone();
    (json_loaded.loadavg_start, json_loaded.loadavg_end) = (Some(0.5), Some(1.25));
    let sessions = [json_loaded, clean.clone()];
    let text = readme(&opts, &machine, "abc1234", "2026-01-02", &table, &sessions, &loads, false);
    assert_golden("readme-started.md", &text);
    opts.external = Some(("127.0.0.1:7878".parse().unwrap(), None, None));
    (opts.session, opts.server_shards) = (None, 0);
    let text = readme(&opts, &machine, "abc1234", "2026-01-02", &table, &[], &loads[..1], true);
    assert_golden("readme-external.md", &text);
}
