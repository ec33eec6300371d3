//! One bot: a connection's phase (connect → TLS → login → join → ready), its buffers, and what it
//! does with each server message.
//!
//! The hot path allocates nothing: frames are decoded in place from the bot's [`InBuf`] (strings
//! borrow from it), chat texts are stamped into a per-thread `String`, and outgoing frames are
//! encoded straight into the bot's outbound `BytesMut`.
//!
//! `receive` reacts to each server message; `away` is fail-over (reconnect to the next address,
//! log in again, resume the room).

mod away;
mod receive;

pub use away::Cause;

use bytes::BytesMut;
use chatproto::protocol::{ClientMsg, WireFormat, HEADER_LEN};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;

use crate::failover::Resume;
use crate::schedule::{pick_target, Kind};
use crate::shared::Shared;
use crate::stamp::Stamp;
use crate::stats::{record, ThreadStats};
use crate::transport::{InBuf, ReadOutcome, Transport, WireBytes};
use receive::{handle, Handled, Me};

/// Initial read buffer per bot; it grows up to one maximum frame when a frame needs it.
const INBUF_INITIAL: usize = 4 * 1024;
/// Least free space asked of the read buffer before each read.
const READ_CHUNK: usize = 2 * 1024;
/// A bot whose unsent output passes this skips sends (counted) instead of growing without bound.
pub const OUT_CAP: usize = 1024 * 1024;

/// Where a bot is in its life. Times are ns on the run clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not connected yet.
    Idle,
    /// connect() issued at `since`, waiting for the socket to become writable.
    Connecting { since: u64 },
    /// TCP up; TLS handshake running since `since`.
    Handshaking { since: u64 },
    /// LOGIN written at `since`, waiting for LOGIN_ACK.
    LoggingIn { since: u64 },
    /// JOIN_ROOM written at `since`, waiting for the answer.
    Joining { since: u64 },
    /// In its room; sends on schedule.
    Ready,
    /// Fail-over: its connection dropped; it reconnects at `at` (clock ns).
    Away { at: u64 },
    /// Finished (closed by us or by the server, or failed).
    Closed,
}

impl Phase {
    /// Between connect() and "joined".
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Phase::Connecting { .. } | Phase::Handshaking { .. } | Phase::LoggingIn { .. } | Phase::Joining { .. }
        )
    }
}

/// Per-thread scratch and recorders a bot works with.
pub struct Ctx<'a> {
    /// Run-wide state.
    pub shared: &'a Shared,
    /// This thread's recorders.
    pub stats: &'a mut ThreadStats,
    /// Corrected latencies since the last progress report.
    pub window: &'a mut Histogram<u64>,
    /// Bytes on this thread's sockets.
    pub wire: &'a mut WireBytes,
    /// Scratch for chat texts.
    pub text: &'a mut String,
    /// Scratch for target user names.
    pub name: &'a mut String,
    /// Set when the thread has stopped accepting new "ready" bots.
    pub frozen: bool,
    /// Bots that just became ready (thread-local count, for progress).
    pub became_ready: &'a mut u64,
}

/// What the event loop should do with a bot after handling it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// The bot closed (or failed); deregister and drop its socket.
    Close,
    /// The connection dropped and the bot fails over: its socket is gone, and the driver
    /// reconnects it at the time its [`Phase::Away`] says.
    Away,
}

/// One simulated chat user.
pub struct Bot {
    /// Bot id (0..bots), also its user name suffix.
    pub id: u32,
    /// Room index.
    pub room: u32,
    /// Lifecycle phase.
    pub phase: Phase,
    /// The socket, once connect() was issued.
    pub sock: Option<TcpStream>,
    /// Plain or TLS.
    transport: Transport,
    /// Received bytes not yet decoded.
    inbuf: InBuf,
    /// Encoded frames not yet written.
    out: BytesMut,
    /// Index of the next message in this bot's schedule.
    pub next_seq: u32,
    /// Messages in this bot's schedule.
    pub count: u32,
    /// True from sending a WebSocket upgrade until its `101` response head is read.
    upgrading: bool,
    /// Address in use, ids seen, fail-over progress.
    pub resume: Resume,
}

/// Longest `101 Switching Protocols` head a bot waits for.
const MAX_UPGRADE_HEAD: usize = 4096;

impl Bot {
    /// A bot that has not connected yet.
    pub fn new(id: u32, room: u32, count: u32) -> Self {
        Bot {
            id,
            room,
            phase: Phase::Idle,
            sock: None,
            transport: Transport::Plain,
            inbuf: InBuf::new(0, 0),
            out: BytesMut::new(),
            next_seq: 0,
            count,
            upgrading: false,
            resume: Resume::default(),
        }
    }

    /// Starts a non-blocking connect from `source` (if any) to `addr`.
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
        transport: Transport,
        now: u64,
    ) -> io::Result<()> {
        // Connecting from here on, so that a failed connect() counts as a connect failure.
        self.phase = Phase::Connecting { since: now };
        let sock = crate::net::connect_nonblocking(addr, source)?;
        self.sock = Some(sock);
        self.transport = transport;
        self.inbuf = InBuf::new(INBUF_INITIAL, HEADER_LEN + chatproto::protocol::Limits::default().max_frame + 1);
        self.out = BytesMut::with_capacity(256);
        self.phase = Phase::Connecting { since: now };
        self.resume.new_connection();
        Ok(())
    }

    /// Handles a readiness event.
    pub fn on_event(&mut self, readable: bool, writable: bool, ctx: &mut Ctx<'_>) -> Flow {
        if let Phase::Connecting { since } = self.phase {
            if !writable && !readable {
                return Flow::Continue;
            }
            match self.check_connected() {
                Ok(true) => {
                    let now = ctx.shared.clock.now_ns();
                    record(&mut ctx.stats.hists.connect, now - since);
                    if self.transport.is_handshaking() {
                        self.phase = Phase::Handshaking { since: now };
                    } else {
                        self.start_login(ctx, now);
                    }
                }
                Ok(false) => return Flow::Continue,
                Err(_) => return self.end(Cause::Dropped, ctx),
            }
        }
        if readable {
            let flow = self.read_all(ctx);
            if flow != Flow::Continue {
                return flow;
            }
        }
        self.after_io(ctx)
    }

    /// Flushes output and advances a TLS handshake; common tail of every event.
    fn after_io(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        if let Flow::Close = self.flush(ctx) {
            return self.end(Cause::Dropped, ctx);
        }
        if let Phase::Handshaking { since } = self.phase {
            if !self.transport.is_handshaking() {
                let now = ctx.shared.clock.now_ns();
                record(&mut ctx.stats.hists.tls_handshake, now - since);
                self.start_login(ctx, now);
                if let Flow::Close = self.flush(ctx) {
                    return self.end(Cause::Dropped, ctx);
                }
            }
        }
        Flow::Continue
    }

    fn check_connected(&mut self) -> io::Result<bool> {
        let Some(sock) = self.sock.as_ref() else { return Err(io::ErrorKind::NotConnected.into()) };
        if let Some(e) = sock.take_error()? {
            return Err(e);
        }
        match sock.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn start_login(&mut self, ctx: &mut Ctx<'_>, now: u64) {
        ctx.name.clear();
        let _ = write!(ctx.name, "{}{}", ctx.shared.scenario.name_prefix, self.id);
        // A bot in `general` resumes it with the LOGIN; the others with their JOIN_ROOM.
        let since = if self.room == 0 { self.resume.since() } else { None };
        self.resume.replaying = since.is_some();
        let msg = ClientMsg::Login { username: Cow::Borrowed(ctx.name.as_str()), credential: None, since };
        if ctx.shared.scenario.format == WireFormat::WebSocket {
            // The upgrade and the first frame go in one write: the server reads frames that
            // follow the request head, and one round trip fewer keeps connect storms short.
            let _ = write!(
                self.out,
                "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: bG9hZGdlbiBib3Qga2V5IQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                ctx.shared.scenario.addr_list()[self.resume.addr]
            );
            self.upgrading = true;
        }
        ctx.shared.scenario.format.encode_client(&msg, &mut self.out);
        self.phase = Phase::LoggingIn { since: now };
    }

    /// Writes what is queued. `Close` on a socket error.
    pub fn flush(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        let Some(sock) = self.sock.as_mut() else { return Flow::Continue };
        if matches!(self.phase, Phase::Connecting { .. } | Phase::Closed | Phase::Idle) {
            return Flow::Continue;
        }
        match self.transport.write(sock, ctx.wire, &mut self.out) {
            Ok(_) => Flow::Continue,
            Err(_) => Flow::Close,
        }
    }

    /// Reads until the socket would block, decoding and handling every whole frame. Anything but
    /// `Continue` means the connection is over (closed, or away for a fail-over).
    fn read_all(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        loop {
            let Some(sock) = self.sock.as_mut() else { return self.close() };
            let spare = self.inbuf.spare(READ_CHUNK);
            if spare.is_empty() {
                ctx.stats.counters.decode_errors += 1;
                return self.end(Cause::Broken, ctx);
            }
            let room = spare.len();
            let drained = match self.transport.read(sock, ctx.wire, spare) {
                Ok(ReadOutcome::Data(n)) => {
                    self.inbuf.commit(n);
                    // A short read from a plain socket emptied its receive buffer: with
                    // edge-triggered epoll, new data raises a new event, so the read that would
                    // only say WouldBlock can be skipped (tokio does the same). TLS keeps
                    // reading: rustls may hold more plaintext than one read returns.
                    n < room && matches!(self.transport, Transport::Plain)
                }
                Ok(ReadOutcome::WouldBlock) => return Flow::Continue,
                Ok(ReadOutcome::Closed) | Err(_) => {
                    // Handle what arrived before the close, then report it.
                    return match self.decode_all(ctx) {
                        Handled::Continue => self.end(Cause::Dropped, ctx),
                        Handled::Close => self.end(Cause::Broken, ctx),
                        Handled::NameBusy => self.end(Cause::NameBusy, ctx),
                    };
                }
            };
            match self.decode_all(ctx) {
                Handled::Continue => {}
                Handled::Close => return self.end(Cause::Broken, ctx),
                Handled::NameBusy => return self.end(Cause::NameBusy, ctx),
            }
            if drained {
                return Flow::Continue;
            }
        }
    }

    /// Counts an unexpected end of this bot according to how far it got.
    fn note_failure(&mut self, ctx: &mut Ctx<'_>) {
        let c = &mut ctx.stats.counters;
        match self.phase {
            Phase::Connecting { .. } | Phase::Handshaking { .. } => c.connect_failures += 1,
            Phase::LoggingIn { .. } | Phase::Joining { .. } => c.login_failures += 1,
            Phase::Ready => c.disconnects += 1,
            Phase::Idle | Phase::Closed | Phase::Away { .. } => {}
        }
        // Counted once: the bot is closed right after.
        self.phase = Phase::Closed;
    }

    fn decode_all(&mut self, ctx: &mut Ctx<'_>) -> Handled {
        let format = ctx.shared.scenario.format;
        let limits = chatproto::protocol::Limits::default();
        let now = ctx.shared.clock.now_ns();
        if self.upgrading {
            let data = self.inbuf.data();
            let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                if data.len() > MAX_UPGRADE_HEAD {
                    ctx.stats.counters.decode_errors += 1;
                    return Handled::Close;
                }
                return Handled::Continue;
            };
            if !data.starts_with(b"HTTP/1.1 101 ") {
                ctx.stats.counters.decode_errors += 1;
                return Handled::Close;
            }
            self.inbuf.consume(end + 4);
            self.upgrading = false;
        }
        let me = Me { id: self.id, room: self.room };
        loop {
            let used = match format.decode_server(self.inbuf.data(), &limits) {
                Ok(Some((msg, n))) => {
                    let handled = handle(&mut self.phase, me, &mut self.resume, &mut self.out, &msg, now, ctx);
                    if handled != Handled::Continue {
                        return handled;
                    }
                    n
                }
                Ok(None) => return Handled::Continue,
                Err(e) => match e.skip {
                    Some(n) => {
                        ctx.stats.counters.decode_errors += 1;
                        n
                    }
                    None => {
                        ctx.stats.counters.decode_errors += 1;
                        return Handled::Close;
                    }
                },
            };
            self.inbuf.consume(used);
        }
    }

    /// Sends every message whose intended time is at or before `now`. Returns the intended time
    /// of the next one, if any. `start` is the run's start on the clock.
    pub fn send_due(&mut self, now: u64, start: u64, ctx: &mut Ctx<'_>) -> Option<u64> {
        let sched = &ctx.shared.schedule;
        let members = ctx.shared.membership.get()?;
        while self.next_seq < self.count {
            let seq = self.next_seq;
            let intended = start + sched.offset_ns(self.id, seq);
            if intended > now {
                return Some(intended);
            }
            self.next_seq += 1;
            if self.phase != Phase::Ready {
                ctx.stats.counters.failover.skipped_away += u64::from(self.resume.away_since.is_some());
                continue;
            }
            let measured = sched.is_measured(intended - start);
            let c = &mut ctx.stats.counters;
            if self.out.len() > OUT_CAP {
                c.backlog_skips += 1;
                continue;
            }
            let actual = ctx.shared.clock.now_ns();
            let stamp = Stamp { bot: self.id, seq, intended_ns: intended, actual_ns: actual };
            stamp.write_text(ctx.shared.scenario.payload, ctx.text);
            let text = Cow::Borrowed(ctx.text.as_str());
            let expected = match sched.kind(self.id, seq) {
                Kind::Room => {
                    let msg = ClientMsg::RoomMsg { text };
                    ctx.shared.scenario.format.encode_client(&msg, &mut self.out);
                    c.sent_room += 1;
                    c.sent_room_measured += u64::from(measured);
                    self.resume.sent(seq);
                    u64::from(members.room_count[self.room as usize].saturating_sub(1))
                }
                Kind::Private { pick } => {
                    let Some(to) = pick_target(&members.ready, self.id, pick) else {
                        c.no_target += 1;
                        continue;
                    };
                    ctx.name.clear();
                    let _ = write!(ctx.name, "{}{}", ctx.shared.scenario.name_prefix, to);
                    let msg = ClientMsg::PrivateMsg { to: Cow::Borrowed(ctx.name.as_str()), text };
                    ctx.shared.scenario.format.encode_client(&msg, &mut self.out);
                    c.sent_private += 1;
                    c.sent_private_measured += u64::from(measured);
                    1
                }
            };
            ctx.shared.ledger.mark_sent(self.id, seq);
            c.expected += expected;
            if measured {
                c.expected_measured += expected;
                record(&mut ctx.stats.hists.send_lag, actual.saturating_sub(intended));
            }
        }
        None
    }

    /// Closes the connection (dropping the socket deregisters it from epoll).
    pub fn close(&mut self) -> Flow {
        self.phase = Phase::Closed;
        self.sock = None;
        self.transport = Transport::Plain;
        self.inbuf = InBuf::new(0, 0);
        self.out = BytesMut::new();
        Flow::Close
    }
}
