//! One event-loop thread: a mio `Poll` over this thread's bots, a timerfd for the schedule, a
//! waker for the coordinator.
//!
//! Each iteration: read the coordinator's phase; start connects that are due (paced, and capped
//! by the number of bots still setting up); send every message whose intended time has come (a
//! min-heap of each bot's next intended time); publish progress; arm the timer for the nearest
//! deadline; poll; handle readiness (edge-triggered: bots read until `WouldBlock`).
//!
//! The bots of a thread are fixed for the run (`bot % threads == thread`), so they live in a `Vec`
//! and the mio `Token` is the index; [`TIMER`] and [`WAKER`] use tokens past the end.

use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use crate::bot::{Bot, Ctx, Flow, Phase};
use crate::shared::{RunPhase, Shared};
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
    tighten_timer_slack();
    let sc = &shared.scenario;
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    // The coordinator may already be gone (it gave up); then there is nobody to wake us anyway.
    let _ = waker_tx.send((thread, waker));
    let mut timer = Timer::new()?;
    poll.registry().register(&mut SourceFd(&timer.raw_fd()), TIMER, Interest::READABLE)?;

    let mut bots: Vec<Bot> = (thread..sc.bots)
        .step_by(sc.threads as usize)
        .map(|id| Bot::new(id, shared.rooms[id as usize], shared.schedule.count(id)))
        .collect();
    let progress = &shared.progress[thread as usize];

    let mut stats = ThreadStats::default();
    let mut window: Histogram<u64> = new_hist();
    let mut wire = WireBytes::default();
    let mut text = String::with_capacity(sc.payload + 64);
    let mut name = String::with_capacity(32);
    let mut became_ready = 0u64;

    let pace_ns = if sc.connect_rate > 0.0 { (sc.threads as f64 * 1e9 / sc.connect_rate) as u64 } else { 0 };
    let mut next_connect = shared.clock.now_ns();
    let mut to_connect = 0usize;
    let mut pending = 0u32;
    let mut frozen = false;
    let mut started: Option<u64> = None;
    let mut heap: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::with_capacity(bots.len());
    let mut wire_at_start: Option<WireBytes> = None;
    let mut wire_at_end: Option<WireBytes> = None;
    let mut last_publish = 0u64;
    let mut events = Events::with_capacity(1024);

    macro_rules! ctx {
        () => {
            Ctx {
                shared: &shared,
                stats: &mut stats,
                window: &mut window,
                wire: &mut wire,
                text: &mut text,
                name: &mut name,
                frozen,
                became_ready: &mut became_ready,
            }
        };
    }

    loop {
        let now = shared.clock.now_ns();
        let phase = shared.phase();
        if phase == RunPhase::Stop {
            break;
        }
        if phase >= RunPhase::Freeze && !frozen {
            frozen = true;
            shared.freeze_acks.fetch_add(1, Relaxed);
        }
        if started.is_none() {
            if let (RunPhase::Run, Some(start)) = (phase, shared.start_ns()) {
                started = Some(start);
                for (i, bot) in bots.iter_mut().enumerate() {
                    match bot.phase {
                        Phase::Ready if shared.ready[bot.id as usize].load(Relaxed) => {
                            if bot.count > 0 {
                                heap.push(Reverse((start + shared.schedule.offset_ns(bot.id, 0), i as u32)));
                            }
                        }
                        // Not in the frozen membership: it must not receive or send.
                        Phase::Idle | Phase::Closed => {}
                        _ => {
                            bot.close();
                        }
                    }
                }
                pending = 0;
            }
        }

        // Connect more bots while setting up.
        if !frozen {
            while to_connect < bots.len() && pending < sc.max_pending && (pace_ns == 0 || now >= next_connect) {
                let bot = &mut bots[to_connect];
                let transport = match &shared.tls {
                    Some(t) => Transport::Tls(Box::new(t.session()?)),
                    None => Transport::Plain,
                };
                match bot.connect(sc.addr, sc.source_of(bot.id), transport, shared.clock.now_ns()) {
                    Ok(()) => {
                        // Connected above, so the socket is there.
                        if let Some(sock) = bot.sock.as_mut() {
                            poll.registry().register(
                                sock,
                                Token(to_connect),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                        }
                        pending += 1;
                    }
                    Err(_) => {
                        stats.counters.connect_failures += 1;
                        bot.close();
                    }
                }
                to_connect += 1;
                next_connect = next_connect.max(now.saturating_sub(pace_ns)) + pace_ns;
            }
        }

        // Send whatever is due.
        if let Some(start) = started {
            let now = shared.clock.now_ns();
            while let Some(&Reverse((t, i))) = heap.peek() {
                if t > now {
                    break;
                }
                heap.pop();
                let bot = &mut bots[i as usize];
                if bot.phase != Phase::Ready {
                    continue;
                }
                let next = bot.send_due(now, start, &mut ctx!());
                if bot.flush(&mut ctx!()) == Flow::Close {
                    stats.counters.disconnects += 1;
                    bot.close();
                    continue;
                }
                if let Some(next) = next {
                    heap.push(Reverse((next, i)));
                }
            }
            let since = now.saturating_sub(start);
            if wire_at_start.is_none() && since >= shared.schedule.warmup_ns() {
                wire_at_start = Some(wire);
            }
            if wire_at_end.is_none() && since >= shared.schedule.end_ns() {
                wire_at_end = Some(wire);
            }
        }

        // Progress for the coordinator.
        let c = &stats.counters;
        progress.connected.store(stats.hists.connect.len(), Relaxed);
        progress.ready.store(became_ready, Relaxed);
        progress.failed.store(c.connect_failures + c.login_failures, Relaxed);
        progress.sent_room.store(c.sent_room, Relaxed);
        progress.sent_private.store(c.sent_private, Relaxed);
        progress.expected.store(c.expected, Relaxed);
        progress.delivered.store(c.delivered(), Relaxed);
        progress.acks.store(c.acks, Relaxed);
        progress.echoes.store(c.echoes, Relaxed);
        progress.disconnects.store(c.disconnects, Relaxed);
        if now >= last_publish + PUBLISH_NS {
            last_publish = now;
            if !window.is_empty() {
                progress.add_window(&window);
                window.reset();
            }
        }

        // Sleep until the nearest deadline or an event.
        let mut deadline = last_publish + PUBLISH_NS;
        if let Some(&Reverse((t, _))) = heap.peek() {
            deadline = deadline.min(t);
        }
        if !frozen && pace_ns > 0 && to_connect < bots.len() && pending < sc.max_pending {
            deadline = deadline.min(next_connect);
        }
        if let Some(start) = started {
            if wire_at_start.is_none() {
                deadline = deadline.min(start + shared.schedule.warmup_ns());
            }
            if wire_at_end.is_none() {
                deadline = deadline.min(start + shared.schedule.end_ns());
            }
        }
        let now = shared.clock.now_ns();
        if deadline > now {
            timer.arm(deadline, Duration::from_nanos(deadline - now))?;
            match poll.poll(&mut events, Some(MAX_POLL)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        } else {
            // Already due: just collect what is ready without sleeping.
            poll.poll(&mut events, Some(Duration::ZERO))?;
        }

        for ev in events.iter() {
            match ev.token() {
                WAKER => {}
                TIMER => timer.drain(),
                Token(i) => {
                    let Some(bot) = bots.get_mut(i) else { continue };
                    if bot.phase == Phase::Closed || bot.phase == Phase::Idle {
                        continue;
                    }
                    let was_pending = bot.phase.is_pending();
                    let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                    let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
                    let flow = bot.on_event(readable, writable, &mut ctx!());
                    if flow == Flow::Close {
                        bot.close();
                    }
                    if was_pending && !bot.phase.is_pending() && started.is_none() {
                        pending = pending.saturating_sub(1);
                    }
                }
            }
        }
    }

    let c = &mut stats.counters;
    c.bytes_written = wire.written;
    c.bytes_read = wire.read;
    let (a, b) = (wire_at_start.unwrap_or_default(), wire_at_end.unwrap_or(wire));
    if wire_at_start.is_some() {
        c.bytes_written_measured = b.written - a.written;
        c.bytes_read_measured = b.read - a.read;
    }
    if !window.is_empty() {
        progress.add_window(&window);
    }
    Ok(ThreadOutput { stats, bots })
}
