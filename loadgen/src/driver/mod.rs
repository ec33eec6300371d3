//! One event-loop thread: a mio `Poll` over this thread's bots, a timerfd for the schedule, a
//! waker for the coordinator.
//!
//! Each iteration: read the coordinator's phase; start connects that are due (paced, and capped
//! by the number of bots still setting up); send every message whose intended time has come (a
//! min-heap of each bot's next intended time); publish progress; arm the timer for the nearest
//! deadline; poll; handle readiness (edge-triggered: bots read until `WouldBlock`). With
//! `--failover`, bots whose connection dropped wait in a second min-heap until their retry.
//!
//! The bots of a thread are fixed for the run (`bot % threads == thread`), so they live in a `Vec`
//! and the mio `Token` is the index; [`TIMER`] and [`WAKER`] use tokens past the end.

mod connects;
mod wire_window;

use hdrhistogram::Histogram;
use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

pub use connects::ConnectPacer;
pub use wire_window::WireWindow;

use crate::bot::{Bot, Cause, Ctx, Flow, Phase};
use crate::failover::Resume;
use crate::shared::{Progress, RunPhase, Shared};
use crate::stats::{new_hist, ThreadStats};
use crate::timer::{tighten_timer_slack, Timer};
use crate::transport::{Transport, WireBytes};

/// Token of the schedule timer.
pub const TIMER: Token = Token(usize::MAX - 1);
/// Token of the coordinator's waker.
pub const WAKER: Token = Token(usize::MAX - 2);

/// How often a thread hands its latency window to the progress line.
const PUBLISH_NS: u64 = 250_000_000;
/// Upper bound on one poll, so that a lost wake-up can only delay, never hang.
const MAX_POLL: Duration = Duration::from_millis(200);

/// What a thread hands back: its measurements, and its bots with their sockets still open (the
/// coordinator reads the server's counters before closing them).
pub struct ThreadOutput {
    /// Histograms and counters.
    pub stats: ThreadStats,
    /// The bots; dropping them closes their connections.
    pub bots: Vec<Bot>,
}

/// Runs thread `thread` until the coordinator says stop.
pub fn run(thread: u32, shared: Arc<Shared>, waker_tx: Sender<(u32, Arc<Waker>)>) -> io::Result<ThreadOutput> {
    Driver::new(thread, shared, waker_tx)?.run()
}

/// What the thread's bots write into while they handle events: this thread's recorders and
/// scratch buffers, lent to one bot at a time as a [`Ctx`]. Nothing here is shared with other
/// threads until the run ends (wrk2's model), so the hot path takes no lock.
struct Recorders {
    /// Histograms and counters for the report.
    stats: ThreadStats,
    /// Corrected latencies since the last hand-over to the progress line.
    window: Histogram<u64>,
    /// Bytes on this thread's sockets, whole run so far.
    wire: WireBytes,
    /// Scratch for chat texts, sized once for the payload: no allocation per message.
    text: String,
    /// Scratch for user names.
    name: String,
    /// Bots that became ready before the freeze.
    became_ready: u64,
}

impl Recorders {
    fn new(payload: usize) -> Self {
        Recorders {
            stats: ThreadStats::default(),
            window: new_hist(),
            wire: WireBytes::default(),
            text: String::with_capacity(payload + 64),
            name: String::with_capacity(32),
            became_ready: 0,
        }
    }

    /// Lends the recorders to a bot; `frozen` tells it whether it may still join the membership.
    fn ctx<'a>(&'a mut self, shared: &'a Shared, frozen: bool) -> Ctx<'a> {
        Ctx {
            shared,
            stats: &mut self.stats,
            window: &mut self.window,
            wire: &mut self.wire,
            text: &mut self.text,
            name: &mut self.name,
            frozen,
            became_ready: &mut self.became_ready,
        }
    }
}

/// One event-loop thread's state between iterations.
pub struct Driver {
    /// This thread's index: its bots are those with `id % threads == thread`.
    thread: u32,
    /// Run-wide state, read every iteration.
    shared: Arc<Shared>,
    /// The readiness source; bot `i` is registered as `Token(i)`.
    poll: Poll,
    /// Reused event buffer (no allocation per poll).
    events: Events,
    /// Wakes the poll at the nearest deadline with nanosecond resolution.
    timer: Timer,
    /// The thread's bots, fixed for the run; the index is the mio token.
    bots: Vec<Bot>,
    /// Measurements and scratch the bots write into.
    rec: Recorders,
    /// Which bot connects next, and when.
    connects: ConnectPacer,
    /// Set once this thread saw the freeze (and acknowledged it): no bot joins the membership
    /// after, and no more connects start.
    frozen: bool,
    /// Start of sending on the clock, once this thread saw [`RunPhase::Run`]; `due` is filled then.
    started: Option<u64>,
    /// `(next intended send time, bot index)` of every ready bot with sends left, earliest first.
    /// Pacing comes from these intended times, never from when the last send happened (open loop).
    due: BinaryHeap<Reverse<(u64, u32)>>,
    /// `(retry time, bot index)` of every bot failing over ([`Phase::Away`]), earliest first.
    retries: BinaryHeap<Reverse<(u64, u32)>>,
    /// Byte counters at the measured window's edges.
    wire_window: WireWindow,
    /// When the latency window was last handed to the progress line.
    last_publish: u64,
}

impl Driver {
    /// Sets up thread `thread`: poll, timer, its bots (none connected yet), and hands the
    /// coordinator a waker over `waker_tx`.
    pub fn new(thread: u32, shared: Arc<Shared>, waker_tx: Sender<(u32, Arc<Waker>)>) -> io::Result<Self> {
        tighten_timer_slack();
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        // The coordinator may already be gone (it gave up); then there is nobody to wake us anyway.
        let _ = waker_tx.send((thread, waker));
        let timer = Timer::new()?;
        poll.registry().register(&mut SourceFd(&timer.raw_fd()), TIMER, Interest::READABLE)?;
        let sc = &shared.scenario;
        let dedupe = sc.failover.map_or(0, |f| f.dedupe_ids);
        let homes = sc.homes();
        let bots: Vec<Bot> = (thread..sc.bots)
            .step_by(sc.threads as usize)
            .map(|id| {
                let mut bot = Bot::new(id, shared.rooms[id as usize], shared.schedule.count(id));
                bot.resume = Resume::new(homes[id as usize], dedupe);
                bot
            })
            .collect();
        let pace_ns = if sc.connect_rate > 0.0 { (sc.threads as f64 * 1e9 / sc.connect_rate) as u64 } else { 0 };
        let connects = ConnectPacer::new(pace_ns, shared.clock.now_ns(), sc.max_pending, bots.len());
        Ok(Driver {
            thread,
            rec: Recorders::new(sc.payload),
            connects,
            frozen: false,
            started: None,
            due: BinaryHeap::with_capacity(bots.len()),
            retries: BinaryHeap::new(),
            wire_window: WireWindow::default(),
            last_publish: 0,
            events: Events::with_capacity(1024),
            poll,
            timer,
            bots,
            shared,
        })
    }

    /// Loops until the coordinator says stop, then hands back the measurements and the bots.
    pub fn run(mut self) -> io::Result<ThreadOutput> {
        loop {
            let now = self.shared.clock.now_ns();
            let phase = self.shared.phase();
            if phase == RunPhase::Stop {
                break;
            }
            self.follow_phase(phase);
            if !self.frozen {
                self.connect_due(now)?;
            }
            self.retry_due(now)?;
            if let Some(start) = self.started {
                self.send_due(start);
            }
            self.publish(now);
            if self.wait()? {
                self.handle_events();
            }
        }
        Ok(self.finish())
    }

    fn progress(&self) -> &Progress {
        &self.shared.progress[self.thread as usize]
    }

    /// Acknowledges the freeze once, and at the start of sending queues every ready bot.
    fn follow_phase(&mut self, phase: RunPhase) {
        if phase >= RunPhase::Freeze && !self.frozen {
            self.frozen = true;
            self.shared.freeze_acks.fetch_add(1, Relaxed);
        }
        if self.started.is_none() {
            if let (RunPhase::Run, Some(start)) = (phase, self.shared.start_ns()) {
                self.start_sending(start);
            }
        }
    }

    /// Queues the first send of every bot in the frozen membership and closes the bots that were
    /// still setting up: a bot outside the membership must not receive or send.
    fn start_sending(&mut self, start: u64) {
        self.started = Some(start);
        let shared = &self.shared;
        for (i, bot) in self.bots.iter_mut().enumerate() {
            match bot.phase {
                Phase::Ready | Phase::Away { .. } if shared.ready[bot.id as usize].load(Relaxed) => {
                    if bot.count > 0 {
                        self.due.push(Reverse((start + shared.schedule.offset_ns(bot.id, 0), i as u32)));
                    }
                }
                Phase::Idle | Phase::Closed => {}
                _ => {
                    bot.close();
                }
            }
        }
        self.connects.forget_pending();
    }

    /// Starts every connect the pacer allows at `now`.
    fn connect_due(&mut self, now: u64) -> io::Result<()> {
        while let Some(i) = self.connects.due(now) {
            let connecting = self.connect(i)?;
            self.connects.advance(now, connecting);
        }
        Ok(())
    }

    /// Reconnects every failing-over bot whose retry time has come.
    fn retry_due(&mut self, now: u64) -> io::Result<()> {
        while let Some(&Reverse((at, i))) = self.retries.peek() {
            if at > now {
                break;
            }
            self.retries.pop();
            if matches!(self.bots[i as usize].phase, Phase::Away { .. }) {
                self.connect(i as usize)?;
            }
        }
        Ok(())
    }

    /// Starts bot `i`'s connect to its current address and registers its socket. True when the
    /// connect started; a failure is counted (or, failing over, queues the next retry).
    fn connect(&mut self, i: usize) -> io::Result<bool> {
        let shared = &self.shared;
        let sc = &shared.scenario;
        let bot = &mut self.bots[i];
        let transport = match &shared.tls {
            Some(t) => Transport::Tls(Box::new(t.session()?)),
            None => Transport::Plain,
        };
        let addr = sc.addr_list()[bot.resume.addr];
        match bot.connect(addr, sc.source_of(bot.id), transport, shared.clock.now_ns()) {
            Ok(()) => {
                // Connected above, so the socket is there.
                if let Some(sock) = bot.sock.as_mut() {
                    self.poll.registry().register(sock, Token(i), Interest::READABLE | Interest::WRITABLE)?;
                }
                Ok(true)
            }
            Err(_) => {
                let flow = bot.end(Cause::Dropped, &mut self.rec.ctx(shared, self.frozen));
                self.queue_retry(i, flow);
                Ok(false)
            }
        }
    }

    /// Queues bot `i`'s retry when `flow` says it went away.
    fn queue_retry(&mut self, i: usize, flow: Flow) {
        if let (Flow::Away, Phase::Away { at }) = (flow, self.bots[i].phase) {
            self.retries.push(Reverse((at, i as u32)));
        }
    }

    /// Sends whatever is due, each bot's messages in one flush, and snapshots the byte counters
    /// at the measured window's edges.
    fn send_due(&mut self, start: u64) {
        let now = self.shared.clock.now_ns();
        while let Some(&Reverse((t, i))) = self.due.peek() {
            if t > now {
                break;
            }
            self.due.pop();
            let bot = &mut self.bots[i as usize];
            // A bot failing over stays scheduled: its sends while away are skipped (counted).
            if bot.phase != Phase::Ready && bot.resume.away_since.is_none() {
                continue;
            }
            let next = bot.send_due(now, start, &mut self.rec.ctx(&self.shared, self.frozen));
            if bot.flush(&mut self.rec.ctx(&self.shared, self.frozen)) == Flow::Close {
                let flow = bot.end(Cause::Dropped, &mut self.rec.ctx(&self.shared, self.frozen));
                self.queue_retry(i as usize, flow);
                if flow == Flow::Close {
                    continue;
                }
            }
            if let Some(next) = next {
                self.due.push(Reverse((next, i)));
            }
        }
        let schedule = &self.shared.schedule;
        self.wire_window.observe(now.saturating_sub(start), self.rec.wire, schedule.warmup_ns(), schedule.end_ns());
    }

    /// Publishes the live counters, and every [`PUBLISH_NS`] the latency window.
    fn publish(&mut self, now: u64) {
        let (progress, stats) = (&self.shared.progress[self.thread as usize], &self.rec.stats);
        let c = &stats.counters;
        progress.connected.store(stats.hists.connect.len(), Relaxed);
        progress.ready.store(self.rec.became_ready, Relaxed);
        progress.failed.store(c.connect_failures + c.login_failures, Relaxed);
        progress.sent_room.store(c.sent_room, Relaxed);
        progress.sent_private.store(c.sent_private, Relaxed);
        progress.expected.store(c.expected, Relaxed);
        progress.delivered.store(c.delivered(), Relaxed);
        // Acks that can no longer come (their connection dropped, or the server refused the
        // message) are written off.
        progress.acks.store(c.acks + c.failover.unacked + c.refused_room, Relaxed);
        progress.echoes.store(c.echoes, Relaxed);
        progress.disconnects.store(c.disconnects, Relaxed);
        if self.started.is_some() && self.due.is_empty() {
            // Every bot's last message is sent and counted above (Release: those stores first).
            progress.sends_done.store(true, Release);
        }
        if now >= self.last_publish + PUBLISH_NS {
            self.last_publish = now;
            if !self.rec.window.is_empty() {
                progress.add_window(&self.rec.window);
                self.rec.window.reset();
            }
        }
    }

    /// The nearest moment the loop must wake up for: a send, a paced connect, a window edge or
    /// the next publication.
    fn deadline(&self) -> u64 {
        let mut deadline = self.last_publish + PUBLISH_NS;
        if let Some(&Reverse((t, _))) = self.due.peek() {
            deadline = deadline.min(t);
        }
        if let Some(t) = self.connects.deadline().filter(|_| !self.frozen) {
            deadline = deadline.min(t);
        }
        if let Some(&Reverse((t, _))) = self.retries.peek() {
            deadline = deadline.min(t);
        }
        if let Some(start) = self.started {
            let schedule = &self.shared.schedule;
            if let Some(t) = self.wire_window.next_edge(start, schedule.warmup_ns(), schedule.end_ns()) {
                deadline = deadline.min(t);
            }
        }
        deadline
    }

    /// Sleeps until the nearest deadline or an event. `false` when a signal interrupted the
    /// poll (the iteration starts over).
    fn wait(&mut self) -> io::Result<bool> {
        let deadline = self.deadline();
        let now = self.shared.clock.now_ns();
        if deadline > now {
            self.timer.arm(deadline, Duration::from_nanos(deadline - now))?;
            match self.poll.poll(&mut self.events, Some(MAX_POLL)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
                Err(e) => return Err(e),
            }
        } else {
            // Already due: just collect what is ready without sleeping.
            self.poll.poll(&mut self.events, Some(Duration::ZERO))?;
        }
        Ok(true)
    }

    /// Hands each readiness event to its bot (or drains the timer).
    fn handle_events(&mut self) {
        for ev in self.events.iter() {
            match ev.token() {
                WAKER => {}
                TIMER => self.timer.drain(),
                Token(i) => {
                    let Some(bot) = self.bots.get_mut(i) else { continue };
                    let (settled, flow) = on_bot_event(bot, ev, &mut self.rec.ctx(&self.shared, self.frozen));
                    if settled && self.started.is_none() {
                        self.connects.settled();
                    }
                    if let (Flow::Away, Phase::Away { at }) = (flow, bot.phase) {
                        self.retries.push(Reverse((at, i as u32)));
                    }
                }
            }
        }
    }

    /// Final byte counts and the last latency window; the bots go back with their sockets open.
    fn finish(mut self) -> ThreadOutput {
        self.wire_window.finish(self.rec.wire, &mut self.rec.stats.counters);
        if !self.rec.window.is_empty() {
            self.progress().add_window(&self.rec.window);
        }
        ThreadOutput { stats: self.rec.stats, bots: self.bots }
    }
}

/// Lets `bot` handle one readiness event, closing it when it is done. Returns whether the bot
/// left set-up (became ready or failed) with this event, and how it came out of it.
fn on_bot_event(bot: &mut Bot, ev: &Event, ctx: &mut Ctx<'_>) -> (bool, Flow) {
    if matches!(bot.phase, Phase::Closed | Phase::Idle | Phase::Away { .. }) {
        return (false, Flow::Continue);
    }
    let was_pending = bot.phase.is_pending();
    let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
    let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
    let flow = bot.on_event(readable, writable, ctx);
    if flow == Flow::Close {
        bot.close();
    }
    (was_pending && !bot.phase.is_pending(), flow)
}
