//! Per-connection I/O for the loop: read into the shared arena, hand frames to the hub, flush
//! each dirty connection once per turn, and close what must close.

use super::Server;
use crate::connection::{CloseReason, LINGER};
use crate::limits::Verdict;
use crate::protocol::{ErrorCode, WireFormat};
use crate::transport::Opening;
use mio::event::Event;
use std::io;

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
            conn.writable = true;
            if !conn.out.is_empty() || conn.transport.has_pending_output() {
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
        if conn.closing.is_some() {
            return;
        }
        if conn.format.is_none() && !conn.transport.is_tls() && !self.open(key) {
            return;
        }
        let conn = &mut self.peers.conns[key];
        self.arena.load(&mut conn.pending);
        let mut end = ReadEnd::Budget;
        for _ in 0..READ_BUDGET {
            end = self.fill(key);
            self.dispatch(key);
            if !matches!(end, ReadEnd::Budget) || self.peers.conns[key].closing.is_some() {
                break;
            }
        }
        let conn = &mut self.peers.conns[key];
        self.arena.stash(&mut conn.pending);
        if conn.transport.has_pending_output() {
            self.peers.mark_dirty(key);
        }
        match end {
            ReadEnd::Drained => {}
            ReadEnd::Budget => self.retry_reads.push(key),
            ReadEnd::Close(reason) => {
                self.peers.conns[key].closing.get_or_insert(reason);
                self.peers.mark_dirty(key);
            }
        }
    }

    /// Looks at a new connection's first byte: TLS, plaintext, or nothing yet.
    /// Returns false when there is nothing to read (yet, or any more).
    fn open(&mut self, key: usize) -> bool {
        let conn = &mut self.peers.conns[key];
        let opening = match conn.transport.peek_opening() {
            Ok(o) => o,
            Err(_) => Opening::Closed,
        };
        let tls_only = self.config.tls.tls_only;
        match (opening, &self.acceptor) {
            (Opening::Nothing, _) => false,
            (Opening::Closed, _) => {
                conn.closing = Some(CloseReason::PeerClosed);
                self.peers.mark_dirty(key);
                false
            }
            (Opening::Tls, Some(acceptor)) => {
                conn.transport.start_tls(acceptor);
                self.totals.tls_connections += 1;
                self.totals.open_tls += 1;
                true
            }
            (Opening::Tls, None) => {
                conn.closing = Some(CloseReason::Framing);
                self.peers.mark_dirty(key);
                false
            }
            (Opening::Plain(first), _) if tls_only => {
                // Answer in the client's own format when it is recognisably ChatProto.
                if let Some(f) = WireFormat::detect(first) {
                    self.set_format(key, f);
                }
                let text = "this server accepts TLS connections only";
                self.peers.close_with(key, CloseReason::Framing, ErrorCode::AuthFailed, text);
                false
            }
            (Opening::Plain(_), _) => true,
        }
    }

    /// Records the connection's wire format (once) and counts it in the open-by-protocol gauges.
    fn set_format(&mut self, key: usize, format: WireFormat) {
        self.peers.conns[key].format = Some(format);
        match format {
            WireFormat::Binary => self.totals.open_binary += 1,
            WireFormat::Json => self.totals.open_json += 1,
        }
    }

    /// Reads into the arena until it is full or the socket is drained.
    fn fill(&mut self, key: usize) -> ReadEnd {
        let conn = &mut self.peers.conns[key];
        while !self.arena.is_full() {
            match conn.transport.read(self.arena.spare(), &mut self.peers.wire) {
                Ok(0) => return ReadEnd::Close(CloseReason::PeerClosed),
                Ok(n) => {
                    self.arena.filled(n);
                    conn.last_rx = self.now;
                    conn.ping_sent = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::Drained,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    tracing::debug!(peer = %conn.peer, "TLS error: {e}");
                    return ReadEnd::Close(CloseReason::TlsError);
                }
                Err(e) => {
                    tracing::debug!(peer = %conn.peer, "read error: {e}");
                    return ReadEnd::Close(CloseReason::IoError);
                }
            }
        }
        ReadEnd::Budget
    }

    /// Decodes every complete frame in the arena and hands it to the hub.
    fn dispatch(&mut self, key: usize) {
        let Some(&first) = self.arena.data().first() else { return };
        let format = match self.peers.conns[key].format {
            Some(f) => f,
            None => match WireFormat::detect(first) {
                Some(f) => {
                    self.set_format(key, f);
                    f
                }
                None => {
                    let text =
                        format!("not ChatProto: the first byte 0x{first:02x} is neither 0x43 (binary) nor '{{' (JSON)");
                    self.totals.protocol_errors += 1;
                    self.peers.close_with(key, CloseReason::Framing, ErrorCode::BadMagic, &text);
                    return;
                }
            },
        };
        let data = self.arena.data();
        let mut off = 0;
        while off < data.len() {
            match format.decode_client(&data[off..], &self.config.limits) {
                Ok(Some((msg, used))) => {
                    off += used;
                    self.totals.frames_in += 1;
                    let conn = &mut self.peers.conns[key];
                    match conn.bucket.check(&self.config.rate_limit, self.now) {
                        Verdict::Allow => self.hub.handle(&mut self.peers, key, msg),
                        Verdict::Refuse => {
                            self.totals.rate_limited += 1;
                            let text = "slow down: over the message rate limit; this message was dropped";
                            self.peers.send_error(key, ErrorCode::RateLimited, text);
                        }
                        Verdict::Disconnect => {
                            self.totals.rate_limited += 1;
                            let text = "disconnected for flooding: far over the message rate limit";
                            self.peers.close_with(key, CloseReason::Flooding, ErrorCode::RateLimited, text);
                        }
                    }
                    if self.peers.conns[key].closing.is_some() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.totals.protocol_errors += 1;
                    let text = e.to_string();
                    match e.skip {
                        Some(n) => {
                            off += n;
                            self.peers.send_error(key, e.code(), &text);
                        }
                        None => {
                            off = data.len();
                            self.peers.close_with(key, CloseReason::Framing, e.code(), &text);
                        }
                    }
                }
            }
        }
        self.arena.consume(off);
    }

    /// Flushes every connection with output this turn, then closes those marked for closing;
    /// repeats while closing produced more output (presence notices) for others.
    pub(super) fn flush_and_close(&mut self) {
        while !self.peers.dirty.is_empty() {
            for key in std::mem::take(&mut self.peers.dirty) {
                self.flush(key);
            }
            for key in std::mem::take(&mut self.closing) {
                self.close(key);
            }
        }
    }

    /// Writes what the connection has queued, if the socket is writable.
    fn flush(&mut self, key: usize) {
        let Some(conn) = self.peers.conns.get_mut(key) else { return };
        conn.dirty = false;
        conn.write_out(&mut self.peers.wire);
        if conn.closing.is_some() {
            let drained = conn.out.is_empty() && !conn.transport.has_pending_output();
            let since = *conn.closing_since.get_or_insert(self.now);
            if drained || self.now.saturating_duration_since(since) >= LINGER {
                self.closing.push(key);
            } else if conn.session.is_some() {
                // Lingering only to deliver its last frames: it leaves its room (telling the
                // others) and frees its name now, not when the socket finally closes.
                self.hub.disconnect(&mut self.peers, key);
            }
        }
    }

    /// Removes a connection: leaves its room (telling the others), closes the socket.
    fn close(&mut self, key: usize) {
        if !self.peers.conns.contains(key) {
            return;
        }
        self.hub.disconnect(&mut self.peers, key);
        let mut conn = self.peers.conns.remove(key);
        let reason = conn.closing.unwrap_or(CloseReason::PeerClosed);
        if conn.counted {
            self.per_address.release(conn.peer.ip());
        }
        match conn.format {
            Some(WireFormat::Binary) => self.totals.open_binary -= 1,
            Some(WireFormat::Json) => self.totals.open_json -= 1,
            None => {}
        }
        if conn.transport.is_tls() {
            self.totals.open_tls -= 1;
        }
        tracing::debug!(peer = %conn.peer, ?reason, "closed");
        conn.transport.close(&mut self.peers.wire);
        let _ = self.poll.registry().deregister(&mut conn.transport.sock);
    }
}
