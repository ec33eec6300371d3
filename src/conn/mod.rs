//! A client connection and the table of all of them.
//!
//! - [`Connection`]: one client's transport, buffers, [`Phase`] and limits (private fields; the
//!   loop asks, it does not poke).
//! - [`peers`]: [`Peers`], every connection of a shard by key; implements the chat core's
//!   [`Outbox`](crate::chat::Outbox) and owns the enqueue policy (bounded queues, slow consumers).
//! - [`intake`]: from the read arena to decoded messages: format detection, the skip-or-close
//!   policy for bad frames, and the message rate limit, each with the text the client is sent.
//! - [`limits`]: the token bucket and the per-address connection count.
//! - [`web`]: HTTP requests and WebSocket frames, unwrapped before the JSON decoder.

pub mod intake;
pub mod limits;
pub mod peers;
#[cfg(test)]
mod tests;
pub mod web;

pub use peers::Peers;

use crate::net::buffer::{OutQueue, Pending};
use crate::net::transport::{Outcome, Transport};
use crate::net::WireCount;
use crate::protocol::WireFormat;
use limits::TokenBucket;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Longest time a closing connection waits for its last frames to be written.
pub const LINGER: Duration = Duration::from_secs(2);

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
    /// An administrator kicked the user.
    Kicked,
    /// The server is shutting down.
    Shutdown,
    /// An HTTP request was answered (a file or an error): one request per connection.
    Answered,
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, not logged in: the login (and TLS handshake) deadlines apply.
    Opening,
    /// Logged in: idle pings and the idle timeout apply.
    Chatting,
    /// Closing for `reason`: nothing more is read or queued; what is queued is flushed.
    /// `since`: when it first had output it could not write; it lingers at most [`LINGER`]
    /// so that a last ERROR_MSG reaches a peer that resumes reading.
    Closing { reason: CloseReason, since: Option<Instant> },
}

/// One client connection.
pub struct Connection {
    /// The socket and, when negotiated, TLS.
    transport: Transport,
    /// The peer's address (for logs and per-address limits).
    peer: SocketAddr,
    /// Binary, JSON or JSON over WebSocket; `None` until the first plaintext byte arrives
    /// (and, for HTTP, until the upgrade). Set once.
    format: Option<WireFormat>,
    /// How bytes are framed below the format: the format's own framing, an HTTP request
    /// head, or WebSocket frames (with the state of a fragmented message).
    framing: web::Framing,
    /// Where the connection is in its life.
    phase: Phase,
    /// The partial inbound frame kept between reads.
    pending: Pending,
    /// Frames waiting to be written.
    out: OutQueue,
    /// User-space copy of the edge-triggered writable readiness: false after a write hit
    /// `WouldBlock`, true again on the next writable event.
    writable: bool,
    /// True while the connection's key is in the flush list; keeps that list unique.
    dirty: bool,
    /// When the connection was accepted (login and handshake deadlines).
    opened: Instant,
    /// When the last bytes arrived from the client (idle ping and timeout).
    last_rx: Instant,
    /// True after an idle PING was sent and nothing has arrived since.
    ping_sent: bool,
    /// The message rate limiter.
    bucket: TokenBucket,
    /// True when this connection is counted in the per-address table (release on close).
    counted: bool,
}

impl Connection {
    /// A fresh connection over `transport`; `counted` in the per-address table or not.
    pub fn new(transport: Transport, peer: SocketAddr, now: Instant, bucket: TokenBucket, counted: bool) -> Self {
        Connection {
            transport,
            peer,
            format: None,
            framing: web::Framing::Stream,
            phase: Phase::Opening,
            pending: Pending::default(),
            out: OutQueue::default(),
            writable: true,
            dirty: false,
            opened: now,
            last_rx: now,
            ping_sent: false,
            bucket,
            counted,
        }
    }

    /// The byte stream (socket registration, reads, TLS start, close).
    pub fn transport(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// True once TLS was started on this connection.
    pub fn is_tls(&self) -> bool {
        self.transport.is_tls()
    }

    /// True while a TLS handshake is in progress.
    pub fn is_handshaking(&self) -> bool {
        self.transport.is_handshaking()
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// True while no plaintext byte has been seen: the first one (peeked) chooses TLS or not.
    /// An HTTP connection has seen its first byte though its format waits for the upgrade.
    pub fn awaits_first_byte(&self) -> bool {
        self.format.is_none() && self.framing == web::Framing::Stream && !self.is_tls()
    }

    /// The wire format, once known.
    pub fn format(&self) -> Option<WireFormat> {
        self.format
    }

    /// The format replies use: the client's own, or JSON (human-readable) if it sent nothing
    /// recognisable.
    pub fn reply_format(&self) -> WireFormat {
        self.format.unwrap_or(WireFormat::Json)
    }

    /// Where the connection is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True once closing started.
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing { .. })
    }

    /// Why it is closing, if it is.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.phase {
            Phase::Closing { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Starts closing for `reason` (the first reason wins).
    pub fn start_closing(&mut self, reason: CloseReason) {
        if !self.is_closing() {
            self.phase = Phase::Closing { reason, since: None };
        }
    }

    /// True when counted in the per-address table.
    pub fn counted(&self) -> bool {
        self.counted
    }

    /// When it was accepted.
    pub fn opened(&self) -> Instant {
        self.opened
    }

    /// How long the client has been quiet at `now`, and whether an idle PING is out.
    pub fn quiet(&self, now: Instant) -> (Duration, bool) {
        (now.saturating_duration_since(self.last_rx), self.ping_sent)
    }

    /// Records an idle PING sent.
    pub fn pinged(&mut self) {
        self.ping_sent = true;
    }

    /// Records bytes from the client at `now`.
    pub fn received(&mut self, now: Instant) {
        self.last_rx = now;
        self.ping_sent = false;
    }

    /// The carry-over of a partial inbound frame.
    pub fn pending(&mut self) -> &mut Pending {
        &mut self.pending
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.queued()
    }

    /// True when output waits: in our queue or below it (TLS records).
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || self.transport.has_pending_output()
    }

    /// The socket reported writable.
    pub fn set_writable(&mut self) {
        self.writable = true;
    }

    /// Writes what is queued if the socket is writable (edge-triggered readiness is tracked in
    /// `writable`). A write error drops the backlog and marks the connection to close.
    #[inline]
    pub fn write_out(&mut self, wire: &mut WireCount) {
        if !self.writable {
            return;
        }
        match self.transport.flush(&mut self.out, wire) {
            Outcome::Reset(e) | Outcome::Fatal(e) => {
                tracing::debug!(peer = %self.peer, "write error: {e}");
                self.out.clear();
                self.start_closing(CloseReason::IoError);
            }
            Outcome::Progress(_) | Outcome::WouldBlock | Outcome::Fin => {}
        }
        if self.has_output() {
            // The socket took less than we had: wait for the next writable edge.
            self.writable = false;
        }
    }

    /// For a closing connection after a flush: whether it can be closed now (all written, or
    /// [`LINGER`] has passed since it first could not write), and whether it just started
    /// lingering. `None` when it is not closing.
    pub fn linger(&mut self, now: Instant) -> Option<(bool, bool)> {
        let Phase::Closing { reason, since } = self.phase else { return None };
        let started = since.unwrap_or(now);
        self.phase = Phase::Closing { reason, since: Some(started) };
        let done = !self.has_output() || now.saturating_duration_since(started) >= LINGER;
        Some((done, since.is_none()))
    }

    /// True when a closing connection has waited [`LINGER`] for its last frames.
    pub fn lingered_out(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::Closing { since: Some(t), .. } if now.saturating_duration_since(t) >= LINGER)
    }
}
