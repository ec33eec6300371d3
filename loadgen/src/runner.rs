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
use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::bot::Bot;
use crate::driver::{self, ThreadOutput};
use crate::ledger::Audit;
use crate::printer::Printer;
use crate::procstat::{self, Sample};
use crate::report::{Report, RunFacts};
use crate::scenario::Scenario;
use crate::schedule::Kind;
use crate::shared::{Membership, RunPhase, Shared};
use crate::stats::ThreadStats;
use crate::tls::TlsClient;

/// Optional callbacks for in-process servers (tests).
#[derive(Default)]
pub struct Hooks {
    /// Reads the server's `(bytes_in, bytes_out)` after the drain, before the bots disconnect.
    #[allow(clippy::type_complexity)]
    pub server_bytes: Option<Box<dyn Fn() -> (u64, u64) + Send + Sync>>,
    /// Called once when sending starts (the membership is fixed): a test that kills a node
    /// under load starts counting from here.
    pub run_started: Option<Box<dyn Fn() + Send + Sync>>,
}

/// Runs `scenario` to the end and reports. Errors only when the run could not happen at all;
/// a run with losses returns a report whose `errors` say so.
pub fn run(scenario: Scenario, hooks: Hooks) -> anyhow::Result<Report> {
    scenario.validate()?;
    let tls = match &scenario.tls {
        Some(o) => Some(TlsClient::new(o)?),
        None => None,
    };
    let mut co = Coordinator::start(Arc::new(Shared::new(scenario, tls)))?;
    let connect_secs = co.connect_phase();
    let ready_bots = co.freeze();
    co.run_phase(&hooks);
    let drain_secs = co.drain();
    co.finish(&hooks, PhaseFacts { connect_secs, ready_bots, drain_secs })
}

/// An event-loop thread, which returns what it measured.
type ThreadHandle = JoinHandle<io::Result<ThreadOutput>>;

/// /proc readings taken at the run's milestones. A server reading is `None` without a server
/// pid or when /proc could not be read; so is a reading of this process on failure.
#[derive(Default)]
struct Readings {
    /// The machine's load average before the threads started.
    load_start: Option<f64>,
    /// Server before the first connect.
    server_idle: Option<Sample>,
    /// Server with the membership fixed (for memory per connection).
    server_ready: Option<Sample>,
    /// Server at the start of the measured window.
    server_m0: Option<Sample>,
    /// Server at the end of the measured window.
    server_m1: Option<Sample>,
    /// Server after the threads stopped.
    server_end: Option<Sample>,
    /// Largest server RSS (or VmHWM) seen in any sample so far.
    peak_server_rss: u64,
    /// This process at the start of the measured window.
    self_m0: Option<Sample>,
    /// This process at the end of the measured window.
    self_m1: Option<Sample>,
    /// This process after the threads stopped.
    self_end: Option<Sample>,
}

/// What the phases measured, handed to [`Coordinator::finish`].
struct PhaseFacts {
    /// Seconds from the first connect to the freeze.
    connect_secs: f64,
    /// Bots in the frozen membership.
    ready_bots: u64,
    /// Seconds from the end of the schedule to the stop.
    drain_secs: f64,
}

/// The coordinator's state through the phases of one run.
struct Coordinator {
    /// Run-wide state, shared with the threads.
    shared: Arc<Shared>,
    /// The event-loop threads; empty once joined.
    handles: Vec<ThreadHandle>,
    /// One per thread that started (fewer if a thread failed before handing its waker over).
    wakers: Vec<Arc<Waker>>,
    /// The progress line.
    printer: Printer,
    /// The server process to read in /proc, if any.
    pid: Option<u32>,
    /// /proc readings so far.
    readings: Readings,
}

impl Coordinator {
    /// Reads the idle server, then starts the threads and waits (up to 10 s) for their wakers.
    fn start(shared: Arc<Shared>) -> anyhow::Result<Self> {
        let pid = shared.scenario.server_pid;
        let mut readings = Readings { load_start: procstat::loadavg(), ..Readings::default() };
        readings.server_idle = pid.and_then(|p| procstat::sample(Some(p)).ok());
        readings.peak_server_rss = readings.server_idle.map_or(0, |s| s.rss_bytes);
        let (handles, wakers) = spawn_threads(&shared)?;
        let printer = Printer::new(shared.scenario.progress, shared.clock);
        Ok(Coordinator { shared, handles, wakers, printer, pid, readings })
    }

    fn server_sample(&self) -> Option<Sample> {
        self.pid.and_then(|p| procstat::sample(Some(p)).ok())
    }

    fn sample_peak(&mut self) {
        if let Some(s) = self.server_sample() {
            let peak = &mut self.readings.peak_server_rss;
            *peak = (*peak).max(s.rss_bytes).max(s.peak_rss_bytes);
        }
    }

    fn wake_all(&self) {
        self.wakers.iter().for_each(|w| drop(w.wake()));
    }

    fn all_finished(&self) -> bool {
        self.handles.iter().all(|h| h.is_finished())
    }

    /// Waits until every bot joined or failed, the connect timeout passed, or every thread
    /// ended. Returns the seconds it took.
    fn connect_phase(&mut self) -> f64 {
        let (sc, clock) = (&self.shared.scenario, self.shared.clock);
        let connect_started = clock.now_ns();
        let connect_deadline = connect_started + sc.connect_timeout.as_nanos() as u64;
        loop {
            thread::sleep(Duration::from_millis(20));
            let (ready, failed) = (self.shared.sum(|p| &p.ready), self.shared.sum(|p| &p.failed));
            self.printer.tick(&self.shared, "connect");
            self.sample_peak();
            if ready + failed >= self.shared.scenario.bots as u64 || clock.now_ns() >= connect_deadline {
                break;
            }
            if self.all_finished() {
                break;
            }
        }
        (clock.now_ns() - connect_started) as f64 / 1e9
    }

    /// Freezes the threads (waiting up to 5 s for their acks) and fixes the membership.
    /// Returns the number of bots in it.
    fn freeze(&mut self) -> u64 {
        let shared = &self.shared;
        shared.set_phase(RunPhase::Freeze);
        self.wake_all();
        let freeze_deadline = shared.clock.now_ns() + 5_000_000_000;
        while shared.freeze_acks.load(SeqCst) < shared.scenario.threads && shared.clock.now_ns() < freeze_deadline {
            if self.handles.iter().any(|h| h.is_finished()) {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        let membership = Membership::from_flags(&shared.ready, &shared.rooms, shared.scenario.rooms);
        let ready_bots = membership.ready.len() as u64;
        // Set exactly once, here.
        let _ = shared.membership.set(membership);
        self.readings.server_ready = self.server_sample();
        ready_bots
    }

    /// Starts sending 20 ms from now and waits for the schedule's end, reading /proc at the
    /// measured window's edges.
    fn run_phase(&mut self, hooks: &Hooks) {
        let clock = self.shared.clock;
        let start = clock.now_ns() + 20_000_000;
        self.shared.set_start(start);
        self.shared.set_phase(RunPhase::Run);
        self.wake_all();
        if let Some(f) = &hooks.run_started {
            f();
        }
        let measure_start = start + self.shared.schedule.warmup_ns();
        let measure_end = start + self.shared.schedule.end_ns();
        let mut m0_taken = false;
        loop {
            let now = clock.now_ns();
            if !m0_taken && now >= measure_start {
                m0_taken = true;
                self.readings.server_m0 = self.server_sample();
                self.readings.self_m0 = procstat::sample(None).ok();
            }
            if now >= measure_end {
                break;
            }
            let next = if m0_taken { measure_end } else { measure_start.min(measure_end) };
            thread::sleep(Duration::from_nanos((next - now).min(100_000_000)));
            self.printer.tick(&self.shared, "run");
            self.sample_peak();
            if self.all_finished() {
                break;
            }
        }
        self.readings.server_m1 = self.server_sample();
        self.readings.self_m1 = procstat::sample(None).ok();
    }

    /// Waits for outstanding deliveries, up to `--drain`. Returns the seconds it took.
    fn drain(&mut self) -> f64 {
        let clock = self.shared.clock;
        let drain_started = clock.now_ns();
        let drain_deadline = drain_started + self.shared.scenario.drain.as_nanos() as u64;
        loop {
            if self.shared.all_delivered() || clock.now_ns() >= drain_deadline || self.all_finished() {
                break;
            }
            thread::sleep(Duration::from_millis(5));
            self.printer.tick(&self.shared, "drain");
        }
        let drain_secs = (clock.now_ns() - drain_started) as f64 / 1e9;
        self.printer.tick_force(&self.shared, "done");
        drain_secs
    }

    /// Stops the threads and collects what they hand back, and their errors.
    fn stop(&mut self) -> (Vec<ThreadOutput>, Vec<String>) {
        self.shared.set_phase(RunPhase::Stop);
        self.wake_all();
        let mut outputs: Vec<ThreadOutput> = Vec::new();
        let mut thread_errors = Vec::new();
        for (t, h) in std::mem::take(&mut self.handles).into_iter().enumerate() {
            match h.join() {
                Ok(Ok(o)) => outputs.push(o),
                Ok(Err(e)) => thread_errors.push(format!("thread {t}: {e}")),
                Err(_) => thread_errors.push(format!("thread {t} panicked")),
            }
        }
        (outputs, thread_errors)
    }

    /// Stops the threads, reads the server's counters and /proc while the bots are still
    /// connected, then closes them, audits the ledger and builds the report.
    fn finish(mut self, hooks: &Hooks, phases: PhaseFacts) -> anyhow::Result<Report> {
        let (outputs, thread_errors) = self.stop();
        let server_bytes = hooks.server_bytes.as_ref().map(|f| f());
        self.readings.server_end = self.server_sample();
        self.sample_peak();
        self.readings.self_end = procstat::sample(None).ok();
        let tally = Tally::of(&outputs, &self.shared.ready);
        // Close every connection only now, after the server's counters were read.
        drop(outputs);
        if tally.stats.counters.sent() == 0 && phases.ready_bots == 0 {
            if let Some(e) = thread_errors.first() {
                bail!("the run failed: {e}");
            }
        }
        let (audit_measured, audit_warmup) = audit(&self.shared)?;
        let (shared, r) = (&self.shared, self.readings);
        Ok(Report::build(RunFacts {
            scenario: shared.scenario.clone(),
            stats: tally.stats,
            ready_bots: phases.ready_bots,
            still_open: tally.still_open,
            unsent: tally.unsent,
            connect_secs: phases.connect_secs,
            drain_secs: phases.drain_secs,
            audit_measured,
            audit_warmup,
            ledger_enabled: shared.ledger.enabled(),
            server_idle: r.server_idle,
            server_ready: r.server_ready,
            server_m0: r.server_m0,
            server_m1: r.server_m1,
            server_end: r.server_end,
            peak_server_rss: r.peak_server_rss,
            self_m0: r.self_m0,
            self_m1: r.self_m1,
            self_end: r.self_end,
            server_bytes,
            thread_errors,
            loadavg: (r.load_start, procstat::loadavg()),
        }))
    }
}

/// Starts one event-loop thread per `scenario.threads` and collects the wakers they hand back
/// (waiting up to 10 s for each).
fn spawn_threads(shared: &Arc<Shared>) -> anyhow::Result<(Vec<ThreadHandle>, Vec<Arc<Waker>>)> {
    let threads = shared.scenario.threads;
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
    Ok((handles, wakers))
}

/// The threads' outputs added up, before their bots are dropped.
struct Tally {
    /// Every thread's histograms and counters, merged.
    stats: ThreadStats,
    /// Bots whose socket was still open at the stop.
    still_open: u64,
    /// Scheduled sends of counted bots that never happened (their connection ended first).
    unsent: u64,
}

impl Tally {
    fn of(outputs: &[ThreadOutput], ready: &[AtomicBool]) -> Self {
        let mut stats = ThreadStats::default();
        for o in outputs {
            stats.merge(&o.stats);
        }
        let bots = || outputs.iter().flat_map(|o| o.bots.iter());
        Tally { stats, still_open: bots().filter(|b| b.sock.is_some()).count() as u64, unsent: unsent(bots(), ready) }
    }
}

/// Scheduled sends that bots in the membership (`ready`) never made.
fn unsent<'a>(bots: impl Iterator<Item = &'a Bot>, ready: &[AtomicBool]) -> u64 {
    bots.filter(|b| ready[b.id as usize].load(Relaxed)).map(|b| u64::from(b.count - b.next_seq.min(b.count))).sum()
}

/// The ledger's verdict for the measured window and the warm-up: each message should have
/// reached its room's other members in the frozen membership, or its one private target.
fn audit(shared: &Shared) -> anyhow::Result<(Audit, Audit)> {
    let members = shared.membership.get().context("membership")?;
    Ok(shared.ledger.audit(
        |bot, seq| match shared.schedule.kind(bot, seq) {
            Kind::Room => members.room_count[shared.rooms[bot as usize] as usize].saturating_sub(1) as u64,
            Kind::Private { .. } => 1,
        },
        |bot, seq| shared.schedule.is_measured(shared.schedule.offset_ns(bot, seq)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsent_counts_the_missed_sends_of_member_bots_only() {
        let ready: Vec<AtomicBool> = [true, false, true].map(AtomicBool::new).into();
        let mut bots = [Bot::new(0, 0, 5), Bot::new(1, 0, 5), Bot::new(2, 0, 5)];
        bots[0].next_seq = 2;
        bots[2].next_seq = 5;
        assert_eq!(unsent(bots.iter(), &ready), 3, "bot 1 is no member; bot 2 sent everything");
        bots[2].next_seq = 7;
        assert_eq!(unsent(bots.iter(), &ready), 3, "never negative");
    }
}
