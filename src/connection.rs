//! One client's state ([`Connection`]) and the collection of all of them ([`Peers`]), which owns
//! the enqueue policy: frames are queued, the connection is marked for the loop's once-per-turn
//! flush, and a connection whose backlog passes its cap is cut off as a slow consumer.

use crate::buffer::{OutQueue, Pending, QueueFull};
use crate::limits::TokenBucket;
use crate::protocol::{ErrorCode, ServerMsg, WireFormat};
use crate::room::Membership;
use crate::transport::{Transport, WireCount};
use bytes::{Bytes, BytesMut};
use slab::Slab;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Longest time a closing connection waits for its last frames to be written.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a connection is being closed. Logged, and counted by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed its side (EOF or close_notify).
    PeerClosed,
    /// A socket error (reset, broken pipe).
    IoError,
    /// The byte stream lost its framing (bad header, oversized frame, not ChatProto).
    Framing,
    /// The TLS handshake or a record failed.
    TlsError,
    /// The outbound backlog passed its cap.
    SlowConsumer,
    /// Far over the message rate limit.
    Flooding,
    /// A login, handshake or idle deadline passed.
    Timeout,
    /// The server is at its connection limit.
    ServerFull,
    /// The server is shutting down.
    Shutdown,
}

/// A logged-in user's session.
#[derive(Debug)]
pub struct Session {
    /// The user name as given at login (shared with the user index).
    pub name: Arc<str>,
    /// The room the user is in, and the position in its member list.
    pub membership: Membership,
}

/// One client connection.
pub struct Connection {
    /// The socket and, when negotiated, TLS.
    pub transport: Transport,
    /// The peer's address (for logs and per-address limits).
    pub peer: SocketAddr,
    /// Binary or JSON; `None` until the first plaintext byte arrives.
    pub format: Option<WireFormat>,
    /// The partial inbound frame kept between reads.
    pub pending: Pending,
    /// Frames waiting to be written.
    pub out: OutQueue,
    /// Set at login; `None` before.
    pub session: Option<Session>,
    /// User-space copy of the edge-triggered writable readiness: false after a write hit
    /// `WouldBlock`, true again on the next writable event.
    pub writable: bool,
    /// True while the connection's key is in [`Peers::dirty`]; keeps the flush list unique.
    pub dirty: bool,
    /// Set when the connection must close once its final frames are flushed.
    pub closing: Option<CloseReason>,
    /// When a closing connection first had output it could not write: it lingers (reads
    /// ignored, nothing new queued) until that output is written or [`LINGER`] passes, so a
    /// last ERROR_MSG such as SLOW_CONSUMER reaches a peer that resumes reading.
    pub closing_since: Option<Instant>,
    /// When the connection was accepted (login and handshake deadlines).
    pub opened: Instant,
    /// When the last bytes arrived from the client (idle ping and timeout).
    pub last_rx: Instant,
    /// True after an idle PING was sent and nothing has arrived since.
    pub ping_sent: bool,
    /// The message rate limiter.
    pub bucket: TokenBucket,
    /// True when this connection is counted in the per-address table (release on close).
    pub counted: bool,
}

impl Connection {
    /// A fresh connection over `transport`.
    pub fn new(transport: Transport, peer: SocketAddr, now: Instant, bucket: TokenBucket) -> Self {
        Connection {
            transport,
            peer,
            format: None,
            pending: Pending::default(),
            out: OutQueue::default(),
            session: None,
            writable: true,
            dirty: false,
            closing: None,
            closing_since: None,
            opened: now,
            last_rx: now,
            ping_sent: false,
            bucket,
            counted: false,
        }
    }

    /// Writes what is queued if the socket is writable (edge-triggered readiness is tracked in
    /// `writable`). A write error drops the backlog and marks the connection to close.
    pub fn write_out(&mut self, wire: &mut WireCount) {
        if !self.writable {
            return;
        }
        if let Err(e) = self.transport.flush(&mut self.out, wire) {
            if e.kind() != std::io::ErrorKind::WouldBlock {
                tracing::debug!(peer = %self.peer, "write error: {e}");
                self.out.clear();
                self.closing.get_or_insert(CloseReason::IoError);
            }
        }
        if !self.out.is_empty() || self.transport.has_pending_output() {
            // The socket took less than we had: wait for the next writable edge.
            self.writable = false;
        }
    }

    /// The user name, once logged in.
    pub fn name(&self) -> Option<&str> {
        self.session.as_ref().map(|s| &*s.name)
    }

    /// The format replies use: the client's own, or JSON (human-readable) if it sent nothing
    /// recognisable.
    pub fn reply_format(&self) -> WireFormat {
        self.format.unwrap_or(WireFormat::Json)
    }
}

/// All connections, the flush list, and the encoding arena for replies.
pub struct Peers {
    /// Connections by key; the key is the mio `Token`.
    pub conns: Slab<Connection>,
    /// Keys with output queued this loop turn, each once (see [`Connection::dirty`]).
    pub dirty: Vec<usize>,
    /// Per-connection outbound cap in bytes (queue plus TLS buffer).
    pub max_outbound: usize,
    /// Arena that encoded frames are split from; one allocation serves many frames.
    arena: BytesMut,
    /// Slow-consumer disconnects so far.
    pub slow_consumers: u64,
    /// Frames queued for delivery so far.
    pub frames_queued: u64,
    /// Bytes across all sockets of this shard.
    pub wire: WireCount,
}

/// How much arena to reserve at a time.
const ARENA_CHUNK: usize = 64 * 1024;

impl Peers {
    /// An empty set with the given outbound cap.
    pub fn new(max_outbound: usize) -> Self {
        Peers {
            conns: Slab::with_capacity(1024),
            dirty: Vec::with_capacity(1024),
            max_outbound,
            arena: BytesMut::with_capacity(ARENA_CHUNK),
            slow_consumers: 0,
            frames_queued: 0,
            wire: WireCount::default(),
        }
    }

    /// Encodes `msg` once in `format` into a shareable frame.
    pub fn encode(&mut self, format: WireFormat, msg: &ServerMsg<'_>) -> Bytes {
        if self.arena.capacity() - self.arena.len() < 1024 {
            self.arena.reserve(ARENA_CHUNK);
        }
        format.encode_server(msg, &mut self.arena);
        self.arena.split().freeze()
    }

    /// Queues a shared frame for `key` and marks it for flushing (the write happens once per
    /// loop turn). When the frame would take the backlog past its cap, the socket is first
    /// offered what is queued, so only what the peer has really not taken counts; a connection
    /// still past its cap is cut off: its backlog is dropped, an ERROR_MSG SLOW_CONSUMER is
    /// queued, and it closes.
    pub fn push(&mut self, key: usize, frame: Bytes) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        if conn.closing.is_some() {
            return;
        }
        let cap = self.max_outbound.saturating_sub(conn.transport.buffered());
        let Err(QueueFull(frame)) = conn.out.push(frame, cap) else {
            self.frames_queued += 1;
            self.mark_dirty(key);
            return;
        };
        conn.write_out(&mut self.wire);
        if conn.closing.is_some() {
            self.mark_dirty(key);
            return;
        }
        let cap = self.max_outbound.saturating_sub(conn.transport.buffered());
        if conn.out.push(frame, cap).is_err() {
            conn.out.drop_backlog();
            conn.closing = Some(CloseReason::SlowConsumer);
            self.slow_consumers += 1;
            let text = format!("you are reading too slowly: over {} bytes were waiting", self.max_outbound);
            let msg = ServerMsg::ErrorMsg { code: ErrorCode::SlowConsumer, text: text.into() };
            let frame = self.encode(self.conns[key].reply_format(), &msg);
            self.conns[key].out.push_final(frame);
        }
        self.frames_queued += 1;
        self.mark_dirty(key);
    }

    /// Encodes `msg` in `key`'s format and queues it.
    pub fn send(&mut self, key: usize, msg: &ServerMsg<'_>) {
        let Some(conn) = self.conns.get(key) else { return };
        let frame = self.encode(conn.reply_format(), msg);
        self.push(key, frame);
    }

    /// Queues an ERROR_MSG for `key`.
    pub fn send_error(&mut self, key: usize, code: ErrorCode, text: &str) {
        self.send(key, &ServerMsg::ErrorMsg { code, text: text.into() });
    }

    /// Queues a last ERROR_MSG and closes `key` once it is flushed.
    pub fn close_with(&mut self, key: usize, reason: CloseReason, code: ErrorCode, text: &str) {
        let Some(conn) = self.conns.get(key) else { return };
        if conn.closing.is_some() {
            return;
        }
        let frame = self.encode(conn.reply_format(), &ServerMsg::ErrorMsg { code, text: text.into() });
        let conn = &mut self.conns[key];
        conn.out.push_final(frame);
        conn.closing = Some(reason);
        self.mark_dirty(key);
    }

    /// Puts `key` on the flush list (once per turn).
    pub fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
    }
}
