//! The coordinator: starts the event-loop threads, walks the run through its phases, prints
//! progress, samples the server's /proc, and turns everything into a [`Report`].
//!
//! ```text
//!  Connect ──(all bots joined, or --connect-timeout)──▶ Freeze ──(threads acked)──▶ Run
//!     bots connect, log in, join            membership fixed           sending from `start`:
//!                                                                      warm-up, measured window,
//!  Stop ◀──(all deliveries in, or --drain)── drain ◀──(schedule end)── then no new sends
//! ```
//!
//! Freezing first means the set of bots that count (and so the number of receivers of every
//! message) is fixed before the first message is sent: a bot that joins late is closed instead.

use anyhow::{bail, Context};
use mio::Waker;
use std::io::Write;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use crate::driver::{self, ThreadOutput};
use crate::procstat::{self, Sample};
use crate::report::{Report, RunFacts};
use crate::scenario::Scenario;
use crate::schedule::Kind;
use crate::shared::{Membership, RunPhase, Shared};
use crate::stats::{new_hist, Percentiles, ThreadStats};
use crate::timer::Clock;
use crate::tls::TlsClient;

/// Optional callbacks for in-process servers (tests).
#[derive(Default)]
pub struct Hooks {
    /// Reads the server's `(bytes_in, bytes_out)` after the drain, before the bots disconnect.
    #[allow(clippy::type_complexity)]
    pub server_bytes: Option<Box<dyn Fn() -> (u64, u64) + Send + Sync>>,
}

/// Runs `scenario` to the end and reports. Errors only when the run could not happen at all;
/// a run with losses returns a report whose `errors` say so.
pub fn run(scenario: Scenario, hooks: Hooks) -> anyhow::Result<Report> {
    scenario.validate()?;
    let tls = match &scenario.tls {
        Some(o) => Some(TlsClient::new(o)?),
        None => None,
    };
    let threads = scenario.threads;
    let shared = Arc::new(Shared::new(scenario, tls));
    let sc = &shared.scenario;
    let load_start = procstat::loadavg();
    let pid = sc.server_pid;
    let server_idle = pid.and_then(|p| procstat::sample(Some(p)).ok());
    let mut peak_server_rss = server_idle.map_or(0, |s| s.rss_bytes);
    let clock = shared.clock;

    let (wtx, wrx) = mpsc::channel();
    let mut handles = Vec::new();
    for t in 0..threads {
        let (sh, tx) = (shared.clone(), wtx.clone());
        let h = thread::Builder::new()
            .name(format!("loadgen-{t}"))
            .spawn(move || driver::run(t, sh, tx))
            .context("spawning an event-loop thread")?;
        handles.push(h);
    }
    drop(wtx);
    let mut wakers: Vec<Arc<Waker>> = Vec::new();
    while wakers.len() < threads as usize {
        match wrx.recv_timeout(Duration::from_secs(10)) {
            Ok((_, w)) => wakers.push(w),
            Err(_) => break,
        }
    }
    let wake_all = |w: &[Arc<Waker>]| w.iter().for_each(|w| drop(w.wake()));
    let mut printer = Printer::new(sc.progress, clock);

    // Connect.
    let connect_started = clock.now_ns();
    let connect_deadline = connect_started + sc.connect_timeout.as_nanos() as u64;
    loop {
        thread::sleep(Duration::from_millis(20));
        let (ready, failed) = (shared.sum(|p| &p.ready), shared.sum(|p| &p.failed));
        printer.tick(&shared, "connect");
        sample_peak(pid, &mut peak_server_rss);
        if ready + failed >= sc.bots as u64 || clock.now_ns() >= connect_deadline {
            break;
        }
        if handles.iter().all(|h| h.is_finished()) {
            break;
        }
    }
    let connect_secs = (clock.now_ns() - connect_started) as f64 / 1e9;

    // Freeze and fix the membership.
    shared.set_phase(RunPhase::Freeze);
    wake_all(&wakers);
    let freeze_deadline = clock.now_ns() + 5_000_000_000;
    while shared.freeze_acks.load(SeqCst) < threads && clock.now_ns() < freeze_deadline {
        if handles.iter().any(|h| h.is_finished()) {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    let membership = Membership::from_flags(&shared.ready, &shared.rooms, sc.rooms);
    let ready_bots = membership.ready.len() as u64;
    // Set exactly once, here.
    let _ = shared.membership.set(membership);
    let server_ready = pid.and_then(|p| procstat::sample(Some(p)).ok());

    // Run.
    let start = clock.now_ns() + 20_000_000;
    shared.set_start(start);
    shared.set_phase(RunPhase::Run);
    wake_all(&wakers);
    let measure_start = start + shared.schedule.warmup_ns();
    let measure_end = start + shared.schedule.end_ns();
    let mut server_m0: Option<Sample> = None;
    let mut self_m0: Option<Sample> = None;
    let mut m0_taken = false;
    loop {
        let now = clock.now_ns();
        if !m0_taken && now >= measure_start {
            m0_taken = true;
            server_m0 = pid.and_then(|p| procstat::sample(Some(p)).ok());
            self_m0 = procstat::sample(None).ok();
        }
        if now >= measure_end {
            break;
        }
        let next = if m0_taken { measure_end } else { measure_start.min(measure_end) };
        thread::sleep(Duration::from_nanos((next - now).min(100_000_000)));
        printer.tick(&shared, "run");
        sample_peak(pid, &mut peak_server_rss);
        if handles.iter().all(|h| h.is_finished()) {
            break;
        }
    }
    let server_m1 = pid.and_then(|p| procstat::sample(Some(p)).ok());
    let self_m1 = procstat::sample(None).ok();

    // Drain.
    let drain_started = clock.now_ns();
    let drain_deadline = drain_started + sc.drain.as_nanos() as u64;
    loop {
        if shared.all_delivered() || clock.now_ns() >= drain_deadline || handles.iter().all(|h| h.is_finished()) {
            break;
        }
        thread::sleep(Duration::from_millis(5));
        printer.tick(&shared, "drain");
    }
    let drain_secs = (clock.now_ns() - drain_started) as f64 / 1e9;
    printer.tick_force(&shared, "done");

    shared.set_phase(RunPhase::Stop);
    wake_all(&wakers);
    let mut outputs: Vec<ThreadOutput> = Vec::new();
    let mut thread_errors = Vec::new();
    for (t, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(o)) => outputs.push(o),
            Ok(Err(e)) => thread_errors.push(format!("thread {t}: {e}")),
            Err(_) => thread_errors.push(format!("thread {t} panicked")),
        }
    }
    let server_bytes = hooks.server_bytes.as_ref().map(|f| f());
    let server_end = pid.and_then(|p| procstat::sample(Some(p)).ok());
    sample_peak(pid, &mut peak_server_rss);
    let self_end = procstat::sample(None).ok();
    let mut total = ThreadStats::default();
    for o in &outputs {
        total.merge(&o.stats);
    }
    // Close every connection only now, after the server's counters were read.
    let still_open = outputs.iter().flat_map(|o| o.bots.iter()).filter(|b| b.sock.is_some()).count();
    // Scheduled sends of counted bots that never happened (their connection ended first).
    let unsent: u64 = outputs
        .iter()
        .flat_map(|o| o.bots.iter())
        .filter(|b| shared.ready[b.id as usize].load(Relaxed))
        .map(|b| u64::from(b.count - b.next_seq.min(b.count)))
        .sum();
    drop(outputs);
    if total.counters.sent() == 0 && ready_bots == 0 {
        if let Some(e) = thread_errors.first() {
            bail!("the run failed: {e}");
        }
    }

    let members = shared.membership.get().context("membership")?;
    let (audit_measured, audit_warmup) = shared.ledger.audit(
        |bot, seq| match shared.schedule.kind(bot, seq) {
            Kind::Room => members.room_count[shared.rooms[bot as usize] as usize].saturating_sub(1) as u64,
            Kind::Private { .. } => 1,
        },
        |bot, seq| shared.schedule.is_measured(shared.schedule.offset_ns(bot, seq)),
    );

    Ok(Report::build(RunFacts {
        scenario: sc.clone(),
        stats: total,
        ready_bots,
        still_open: still_open as u64,
        unsent,
        connect_secs,
        drain_secs,
        audit_measured,
        audit_warmup,
        ledger_enabled: shared.ledger.enabled(),
        server_idle,
        server_ready,
        server_m0,
        server_m1,
        server_end,
        peak_server_rss,
        self_m0,
        self_m1,
        self_end,
        server_bytes,
        thread_errors,
        loadavg: (load_start, procstat::loadavg()),
    }))
}

fn sample_peak(pid: Option<u32>, peak: &mut u64) {
    if let Some(s) = pid.and_then(|p| procstat::sample(Some(p)).ok()) {
        *peak = (*peak).max(s.rss_bytes).max(s.peak_rss_bytes);
    }
}

/// The once-a-second progress line on stderr.
struct Printer {
    on: bool,
    clock: Clock,
    last: u64,
    last_sent: u64,
    last_delivered: u64,
}

impl Printer {
    fn new(on: bool, clock: Clock) -> Self {
        Printer { on, clock, last: clock.now_ns(), last_sent: 0, last_delivered: 0 }
    }

    fn tick(&mut self, s: &Shared, what: &str) {
        if self.on && self.clock.now_ns() >= self.last + 1_000_000_000 {
            self.tick_force(s, what);
        }
    }

    fn tick_force(&mut self, s: &Shared, what: &str) {
        if !self.on {
            return;
        }
        let now = self.clock.now_ns();
        let dt = (now - self.last).max(1) as f64 / 1e9;
        self.last = now;
        let sent = s.sum(|p| &p.sent_room) + s.sum(|p| &p.sent_private);
        let delivered = s.sum(|p| &p.delivered);
        let mut win = new_hist();
        for p in &s.progress {
            if let Ok(mut w) = p.window.lock() {
                let _ = win.add(&*w);
                w.reset();
            }
        }
        let p99 =
            if win.is_empty() { "-".to_string() } else { format!("{:.3} ms", Percentiles::of(&win).p99_us / 1000.0) };
        let line = format!(
            "[{:>7.1}s {what:>7}] connected {}/{} ready {} failed {} | sent {} ({:.0}/s) delivered {}/{} ({:.0}/s) | p99 {p99} | disconnects {}\n",
            now as f64 / 1e9,
            s.sum(|p| &p.connected),
            s.scenario.bots,
            s.sum(|p| &p.ready),
            s.sum(|p| &p.failed),
            sent,
            (sent - self.last_sent.min(sent)) as f64 / dt,
            delivered,
            s.sum(|p| &p.expected),
            (delivered - self.last_delivered.min(delivered)) as f64 / dt,
            s.sum(|p| &p.disconnects),
        );
        self.last_sent = sent;
        self.last_delivered = delivered;
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}
