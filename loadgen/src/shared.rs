//! Run-wide state that the coordinator (`runner`), the event-loop threads (`driver`) and the
//! bots (`bot`) exchange: the run's phase, the frozen membership, per-thread progress counters
//! and the schedule.
//!
//! A leaf under those three: it imports none of them, so they form a chain
//! (runner → driver → bot → shared) instead of a circle.

use hdrhistogram::Histogram;
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Acquire, Ordering::Relaxed, Ordering::SeqCst,
};
use std::sync::{Mutex, OnceLock};

use crate::ledger::Ledger;
use crate::scenario::Scenario;
use crate::schedule::Schedule;
use crate::stats::new_hist;
use crate::timer::Clock;
use crate::tls::TlsClient;

/// Where the run is; threads read it every loop iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum RunPhase {
    /// Bots connect, log in and join.
    Connect = 0,
    /// No more bots may become ready; threads acknowledge.
    Freeze = 1,
    /// Sending on schedule from the start time.
    Run = 2,
    /// Threads return.
    Stop = 3,
}

/// The bots that count, fixed at the freeze.
#[derive(Debug, Default)]
pub struct Membership {
    /// Ids of the bots that joined their room, ascending.
    pub ready: Vec<u32>,
    /// Ready bots per room.
    pub room_count: Vec<u32>,
}

impl Membership {
    /// The bots whose `ready` flag is set, with `rooms[bot]` their room among `n_rooms`.
    pub fn from_flags(ready: &[AtomicBool], rooms: &[u32], n_rooms: u32) -> Self {
        let mut membership = Membership { ready: Vec::new(), room_count: vec![0; n_rooms as usize] };
        for (id, r) in ready.iter().enumerate() {
            if r.load(SeqCst) {
                membership.ready.push(id as u32);
                membership.room_count[rooms[id] as usize] += 1;
            }
        }
        membership
    }
}

/// One thread's live counters, read by the progress line. Padded to its own cache lines.
///
/// Each counter is the thread's own running total (written by that thread only, `Relaxed`), so the
/// coordinator's sums are a snapshot, never a source of truth for the report.
#[repr(align(128))]
pub struct Progress {
    /// Bots whose TCP connect completed.
    pub connected: AtomicU64,
    /// Bots that joined their room before the freeze.
    pub ready: AtomicU64,
    /// Connect, login and join failures.
    pub failed: AtomicU64,
    /// Ready bots whose connection ended.
    pub disconnects: AtomicU64,
    /// Room messages sent.
    pub sent_room: AtomicU64,
    /// Private messages sent.
    pub sent_private: AtomicU64,
    /// Deliveries expected for what was sent.
    pub expected: AtomicU64,
    /// Deliveries received.
    pub delivered: AtomicU64,
    /// ROOM_MSG_ACKs received.
    pub acks: AtomicU64,
    /// Private-message echoes received.
    pub echoes: AtomicU64,
    /// Set (Release) by the thread once it has sent its last message and published the counters
    /// that count it: from then on `sent_*` and `expected` are final. Until every thread has set
    /// it, other threads' deliveries of a message whose send is not yet published could make up
    /// for deliveries still missing, and end the drain early.
    pub sends_done: AtomicBool,
    /// Corrected latencies since the coordinator last looked.
    pub window: Mutex<Histogram<u64>>,
}

impl Default for Progress {
    fn default() -> Self {
        let z = || AtomicU64::new(0);
        Progress {
            connected: z(),
            ready: z(),
            failed: z(),
            disconnects: z(),
            sent_room: z(),
            sent_private: z(),
            expected: z(),
            delivered: z(),
            acks: z(),
            echoes: z(),
            sends_done: AtomicBool::new(false),
            window: Mutex::new(new_hist()),
        }
    }
}

impl Progress {
    /// Adds `window` into the shared latency window (the lock is only contended by the printer).
    pub fn add_window(&self, window: &Histogram<u64>) {
        if let Ok(mut w) = self.window.lock() {
            // Same bounds on both sides: cannot fail.
            let _ = w.add(window);
        }
    }
}

/// Run-wide state shared by the coordinator and every thread.
pub struct Shared {
    /// The run's clock (one monotonic base for stamps and arrivals).
    pub clock: Clock,
    /// The knobs.
    pub scenario: Scenario,
    /// Intended send times.
    pub schedule: Schedule,
    /// Room of every bot.
    pub rooms: Vec<u32>,
    /// Per-message delivery counters.
    pub ledger: Ledger,
    /// Bots that joined before the freeze.
    pub ready: Vec<AtomicBool>,
    /// Set once at the freeze.
    pub membership: OnceLock<Membership>,
    /// Per-thread progress.
    pub progress: Vec<Progress>,
    /// Threads that saw the freeze.
    pub freeze_acks: AtomicU32,
    /// TLS client configuration, if TLS is on.
    pub tls: Option<TlsClient>,
    /// A [`RunPhase`] as its `u8`; only [`Shared::set_phase`] writes it, so it moves forward.
    phase: AtomicU8,
    /// Start of sending on the clock; `u64::MAX` until set.
    start: AtomicU64,
}

impl Shared {
    /// The state for a run of `scenario` (already validated), in [`RunPhase::Connect`], with the
    /// clock starting now.
    pub fn new(scenario: Scenario, tls: Option<TlsClient>) -> Self {
        // Only publishers (bots `0..publishers`) are in the schedule; listeners send nothing.
        let schedule = Schedule::new(
            scenario.publishers(),
            scenario.per_bot_rate(),
            scenario.warmup.as_nanos() as u64,
            scenario.duration.as_nanos() as u64,
            scenario.private_share,
        );
        let rooms = scenario.room_assignment();
        let ledger = Ledger::new(&schedule, scenario.bots);
        let threads = scenario.threads;
        Shared {
            clock: Clock::new(),
            ready: (0..scenario.bots).map(|_| AtomicBool::new(false)).collect(),
            membership: OnceLock::new(),
            progress: (0..threads).map(|_| Progress::default()).collect(),
            freeze_acks: AtomicU32::new(0),
            tls,
            phase: AtomicU8::new(RunPhase::Connect as u8),
            start: AtomicU64::new(u64::MAX),
            scenario,
            schedule,
            rooms,
            ledger,
        }
    }

    /// Current phase.
    pub fn phase(&self) -> RunPhase {
        match self.phase.load(SeqCst) {
            0 => RunPhase::Connect,
            1 => RunPhase::Freeze,
            2 => RunPhase::Run,
            _ => RunPhase::Stop,
        }
    }

    /// Start of sending, once known.
    pub fn start_ns(&self) -> Option<u64> {
        match self.start.load(SeqCst) {
            u64::MAX => None,
            s => Some(s),
        }
    }

    /// Moves the run to `p` (the coordinator's job).
    pub(crate) fn set_phase(&self, p: RunPhase) {
        self.phase.store(p as u8, SeqCst);
    }

    /// Fixes the start of sending (the coordinator's job, once, before [`RunPhase::Run`]).
    pub(crate) fn set_start(&self, start_ns: u64) {
        self.start.store(start_ns, SeqCst);
    }

    /// `f` of every thread's progress, summed.
    pub fn sum(&self, f: impl Fn(&Progress) -> &AtomicU64) -> u64 {
        self.progress.iter().map(|p| f(p).load(Relaxed)).sum()
    }

    /// True when every thread has sent its last message and every expected delivery,
    /// ROOM_MSG_ACK and private-message echo has arrived.
    pub fn all_delivered(&self) -> bool {
        self.progress.iter().all(|p| p.sends_done.load(Acquire))
            && self.sum(|p| &p.delivered) >= self.sum(|p| &p.expected)
            && self.sum(|p| &p.acks) >= self.sum(|p| &p.sent_room)
            && self.sum(|p| &p.echoes) >= self.sum(|p| &p.sent_private)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(threads: u32) -> Shared {
        let mut sc = Scenario::new("127.0.0.1:9".parse().unwrap());
        sc.bots = 6;
        sc.rooms = 3;
        sc.threads = threads;
        Shared::new(sc, None)
    }

    #[test]
    fn membership_counts_only_flagged_bots_per_room() {
        let flags: Vec<AtomicBool> = [true, false, true, true, false, true].map(AtomicBool::new).into();
        let m = Membership::from_flags(&flags, &[0, 1, 2, 0, 1, 2], 3);
        assert_eq!(m.ready, vec![0, 2, 3, 5]);
        assert_eq!(m.room_count, vec![2, 0, 2]);
    }

    #[test]
    fn phase_and_start_move_as_the_coordinator_sets_them() {
        let s = shared(1);
        assert_eq!((s.phase(), s.start_ns()), (RunPhase::Connect, None));
        s.set_start(42);
        s.set_phase(RunPhase::Run);
        assert_eq!((s.phase(), s.start_ns()), (RunPhase::Run, Some(42)));
        assert!(RunPhase::Freeze < RunPhase::Run && RunPhase::Run < RunPhase::Stop);
    }

    #[test]
    fn all_delivered_needs_deliveries_acks_and_echoes_over_all_threads() {
        let s = shared(2);
        assert!(!s.all_delivered(), "no thread has finished sending");
        s.progress[0].sends_done.store(true, SeqCst);
        assert!(!s.all_delivered(), "thread 1 may still have unpublished sends");
        s.progress[1].sends_done.store(true, SeqCst);
        assert!(s.all_delivered(), "nothing sent, nothing missing");
        s.progress[0].expected.store(10, Relaxed);
        s.progress[1].sent_room.store(3, Relaxed);
        s.progress[1].sent_private.store(1, Relaxed);
        s.progress[0].delivered.store(6, Relaxed);
        s.progress[1].delivered.store(4, Relaxed);
        s.progress[0].acks.store(3, Relaxed);
        assert!(!s.all_delivered(), "the echo is missing");
        s.progress[1].echoes.store(1, Relaxed);
        assert_eq!(s.sum(|p| &p.delivered), 10);
        assert!(s.all_delivered());
        s.progress[0].acks.store(2, Relaxed);
        assert!(!s.all_delivered(), "an ack is missing");
    }
}
