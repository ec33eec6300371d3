//! Per-connection I/O for the loop: read into the shared arena, hand each message the
//! connection layer decodes to the chat core, flush each dirty connection once per turn, and
//! close what must close. Nothing here parses bytes or writes protocol text.

use super::Server;
use crate::conn::intake::{Cursor, Policy};
use crate::conn::web::is_http_start;
use crate::conn::CloseReason;
use crate::net::transport::{Opening, Outcome};
use crate::protocol::{ErrorCode, WireFormat};
use mio::event::Event;

/// Arena fills per connection per turn before yielding to the others (fairness under floods).
const READ_BUDGET: usize = 8;

/// How a read pass ended.
enum ReadEnd {
    /// The socket is drained (`WouldBlock`).
    Drained,
    /// The budget ran out with data possibly left: read again next turn.
    Budget,
    /// End of stream or error: close after flushing.
    Close(CloseReason),
}

impl Server {
    /// Handles readiness for connection `key`. Spurious and stale events are harmless.
    pub(super) fn conn_ready(&mut self, key: usize, event: &Event) {
        let Some(conn) = self.peers.conns.get_mut(key) else { return };
        if event.is_writable() {
            conn.set_writable();
            if conn.has_output() {
                self.peers.mark_dirty(key);
            }
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read_ready(key);
        }
    }

    /// Reads everything available (within the budget) and dispatches complete frames.
    pub(super) fn read_ready(&mut self, key: usize) {
        let Some(conn) = self.peers.conns.get_mut(key) else { return };
        if conn.is_closing() {
            return;
        }
        if conn.awaits_first_byte() && !self.open(key) {
            return;
        }
        let conn = &mut self.peers.conns[key];
        self.arena.load(conn.pending());
        let mut end = ReadEnd::Budget;
        for _ in 0..READ_BUDGET {
            end = self.fill(key);
            self.dispatch(key);
            if !matches!(end, ReadEnd::Budget) || self.peers.conns[key].is_closing() {
                break;
            }
        }
        let conn = &mut self.peers.conns[key];
        self.arena.stash(conn.pending());
        if conn.has_output() {
            self.peers.mark_dirty(key);
        }
        match end {
            ReadEnd::Drained => {}
            ReadEnd::Budget => self.retry_reads.push(key),
            ReadEnd::Close(reason) => self.peers.start_closing(key, reason),
        }
    }

    /// Looks at a new connection's first byte: TLS, plaintext, or nothing yet.
    /// Returns false when there is nothing to read (yet, or any more).
    fn open(&mut self, key: usize) -> bool {
        let conn = &mut self.peers.conns[key];
        let opening = match conn.transport().peek_opening() {
            Ok(o) => o,
            Err(_) => Opening::Closed,
        };
        let tls_only = self.config.tls.tls_only;
        match (opening, &self.acceptor) {
            (Opening::Nothing, _) => false,
            (Opening::Closed, _) => {
                self.peers.start_closing(key, CloseReason::PeerClosed);
                false
            }
            (Opening::Tls, Some(acceptor)) => {
                conn.transport().start_tls(acceptor);
                self.totals.tls_connections += 1;
                self.totals.open_tls += 1;
                true
            }
            (Opening::Tls, None) => {
                self.peers.start_closing(key, CloseReason::Framing);
                false
            }
            (Opening::Plain(first), _) if tls_only && is_http_start(first) => {
                self.peers.refuse_plain_http(key);
                false
            }
            (Opening::Plain(first), _) if tls_only => {
                // Answer in the client's own format when it is recognisably ChatProto.
                if let Some(f) = WireFormat::detect(first) {
                    self.peers.set_format(key, f);
                }
                let text = "this server accepts TLS connections only";
                self.peers.close_with(key, CloseReason::Framing, ErrorCode::AuthFailed, text);
                false
            }
            (Opening::Plain(_), _) => true,
        }
    }

    /// Reads into the arena until it is full or the socket is drained.
    fn fill(&mut self, key: usize) -> ReadEnd {
        let conn = &mut self.peers.conns[key];
        while !self.arena.is_full() {
            match conn.transport().read(self.arena.spare(), &mut self.peers.wire) {
                Outcome::Progress(n) => {
                    self.arena.filled(n);
                    conn.received(self.now);
                }
                Outcome::WouldBlock => return ReadEnd::Drained,
                Outcome::Fin => return ReadEnd::Close(CloseReason::PeerClosed),
                Outcome::Fatal(e) => {
                    tracing::debug!(peer = %conn.peer(), "TLS error: {e}");
                    return ReadEnd::Close(CloseReason::TlsError);
                }
                Outcome::Reset(e) => {
                    tracing::debug!(peer = %conn.peer(), "read error: {e}");
                    return ReadEnd::Close(CloseReason::IoError);
                }
            }
        }
        ReadEnd::Budget
    }

    /// Hands every complete message in the arena to the chat core; the connection layer
    /// unwraps (HTTP, WebSocket) and decodes them and answers what it refuses.
    fn dispatch(&mut self, key: usize) {
        let policy = Policy {
            limits: &self.config.limits,
            rate: &self.config.rate_limit,
            now: self.now,
            max_http_head: self.config.max_http_head,
            site: &self.site,
        };
        let unwrapped = self.peers.unwrap(key, self.arena.data_mut(), policy);
        self.arena.truncate(unwrapped.len);
        let data = &self.arena.data()[..unwrapped.ready];
        let mut cursor = Cursor::default();
        while let Some(msg) = self.peers.next_msg(key, data, &mut cursor, policy) {
            self.hub.handle(&mut self.peers, key, msg);
        }
        self.arena.consume(cursor.used);
    }

    /// Flushes every connection with output this turn (a closing one that is done, or has
    /// lingered long enough, goes on the close list; one that starts lingering leaves its room
    /// now), then closes those; repeats while closing produced more output (presence notices)
    /// for others.
    pub(super) fn flush_and_close(&mut self) {
        let mut keys = std::mem::take(&mut self.flushing);
        while self.peers.has_dirty() {
            self.peers.take_dirty(&mut keys);
            for key in keys.drain(..) {
                match self.peers.flush(key, self.now) {
                    Some((true, _)) => self.closing.push(key),
                    Some((false, true)) => self.leaving.push(key),
                    _ => {}
                }
            }
            for key in std::mem::take(&mut self.leaving) {
                // Lingering only to deliver its last frames: it leaves its room (telling the
                // others) and frees its name now, not when the socket finally closes.
                self.hub.disconnect(&mut self.peers, key);
            }
            for key in std::mem::take(&mut self.closing) {
                self.close(key);
            }
        }
        self.flushing = keys;
    }

    /// Removes a connection: leaves its room (telling the others), closes the socket.
    fn close(&mut self, key: usize) {
        if !self.peers.conns.contains(key) {
            return;
        }
        self.hub.disconnect(&mut self.peers, key);
        let Some(mut conn) = self.peers.remove(key) else { return };
        let reason = conn.close_reason().unwrap_or(CloseReason::PeerClosed);
        if conn.counted() {
            self.per_address.release(conn.peer().ip());
        }
        if conn.is_tls() {
            self.totals.open_tls -= 1;
        }
        tracing::debug!(peer = %conn.peer(), ?reason, "closed");
        let transport = conn.transport();
        transport.close(&mut self.peers.wire);
        let _ = self.poll.registry().deregister(&mut transport.sock);
    }
}
