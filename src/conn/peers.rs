//! Every connection of a shard, the once-per-turn flush list, and the encoding arena for
//! replies. [`Peers`] is the chat core's [`Outbox`]: frames are queued and marked for the
//! loop's flush, and a connection whose backlog passes its cap is cut off as a slow consumer.

use super::{CloseReason, Connection, Phase};
use crate::chat::Outbox;
use crate::net::buffer::QueueFull;
use crate::net::WireCount;
use crate::protocol::{self, ErrorCode, Frames, ServerMsg, WireFormat};
use bytes::{Bytes, BytesMut};
use slab::Slab;
use std::net::IpAddr;

/// How much arena to reserve at a time.
const ARENA_CHUNK: usize = 64 * 1024;

/// Counters the connection layer keeps (published by the loop).
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerCounters {
    /// Slow-consumer disconnects.
    pub slow_consumers: u64,
    /// Frames queued for delivery.
    pub frames_queued: u64,
    /// Frames decoded from clients.
    pub frames_in: u64,
    /// Frames refused or closed as malformed.
    pub protocol_errors: u64,
    /// Frames over the message rate limit.
    pub rate_limited: u64,
    /// Open connections speaking binary.
    pub open_binary: u64,
    /// Open connections speaking JSON.
    pub open_json: u64,
    /// Open connections speaking JSON over WebSocket.
    pub open_websocket: u64,
    /// Of those, the ones over TLS.
    pub open_websocket_tls: u64,
    /// HTTP requests answered (files, errors, upgrades).
    pub http_requests: u64,
}

/// All connections, the flush list, and the encoding arena for replies.
pub struct Peers {
    /// Connections by key; the key is the mio `Token`.
    pub conns: Slab<Connection>,
    /// Keys with output queued this loop turn, each once (see `Connection::dirty`).
    dirty: Vec<usize>,
    /// Per-connection outbound cap in bytes (queue plus TLS buffer).
    max_outbound: usize,
    /// Arena that encoded frames are split from; one allocation serves many frames.
    pub(super) arena: BytesMut,
    /// Bytes across all sockets of this shard.
    pub wire: WireCount,
    /// What happened so far.
    pub counters: PeerCounters,
}

impl Peers {
    /// An empty set with the given outbound cap.
    pub fn new(max_outbound: usize) -> Self {
        Peers {
            conns: Slab::with_capacity(1024),
            dirty: Vec::with_capacity(1024),
            max_outbound,
            arena: BytesMut::with_capacity(ARENA_CHUNK),
            wire: WireCount::default(),
            counters: PeerCounters::default(),
        }
    }

    /// Keeps room in the encoding arena: one allocation serves many frames.
    pub(super) fn reserve(&mut self) {
        if self.arena.capacity() - self.arena.len() < 1024 {
            self.arena.reserve(ARENA_CHUNK);
        }
    }

    /// Swaps this turn's flush list into `keys` (each key once; a key may be gone since, and
    /// each must be passed to [`Peers::flush`], which clears its mark). `keys` must be empty;
    /// its capacity is reused, so a turn's flush list costs no allocation.
    pub fn take_dirty(&mut self, keys: &mut Vec<usize>) {
        debug_assert!(keys.is_empty());
        std::mem::swap(&mut self.dirty, keys);
    }

    /// Writes what `key` has queued if its socket is writable, in one vectored write, and
    /// clears its flush mark. For a closing connection, returns [`Connection::linger`]'s verdict.
    #[inline]
    pub fn flush(&mut self, key: usize, now: std::time::Instant) -> Option<(bool, bool)> {
        let conn = self.conns.get_mut(key)?;
        conn.dirty = false;
        conn.write_out(&mut self.wire);
        conn.linger(now)
    }

    /// True when some connection has output to flush this turn.
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
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

    /// Writes what `key` has queued, if its socket is writable (tests; the loop uses
    /// [`Peers::flush`], which also clears the flush mark and judges lingering).
    #[cfg(test)]
    pub fn write_out(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.write_out(&mut self.wire);
        }
    }

    /// Records `key`'s wire format (once) and counts it in the open-by-format gauges.
    pub fn set_format(&mut self, key: usize, format: WireFormat) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        if conn.format.is_some() {
            return;
        }
        conn.format = Some(format);
        match format {
            WireFormat::Binary => self.counters.open_binary += 1,
            WireFormat::Json => self.counters.open_json += 1,
            WireFormat::WebSocket => {
                self.counters.open_websocket += 1;
                self.counters.open_websocket_tls += u64::from(conn.is_tls());
            }
        }
    }

    /// Removes `key`, uncounting it from the open-by-format gauges.
    pub fn remove(&mut self, key: usize) -> Option<Connection> {
        let conn = self.conns.try_remove(key)?;
        match conn.format {
            Some(WireFormat::Binary) => self.counters.open_binary -= 1,
            Some(WireFormat::Json) => self.counters.open_json -= 1,
            Some(WireFormat::WebSocket) => {
                self.counters.open_websocket -= 1;
                self.counters.open_websocket_tls -= u64::from(conn.is_tls());
            }
            None => {}
        }
        Some(conn)
    }

    /// Starts closing `key` for `reason` (without a last frame; a WebSocket going away for a
    /// shutdown gets its close frame, 1001) and marks it for the flush.
    pub fn start_closing(&mut self, key: usize, reason: CloseReason) {
        if reason == CloseReason::Shutdown {
            self.goodbye_for(key, reason, "the server is shutting down");
        }
        if let Some(conn) = self.conns.get_mut(key) {
            conn.start_closing(reason);
            self.mark_dirty(key);
        }
    }

    /// Queues a last ERROR_MSG and closes `key` once it is flushed.
    pub fn close_with(&mut self, key: usize, reason: CloseReason, code: ErrorCode, text: &str) {
        let Some(conn) = self.conns.get(key) else { return };
        if conn.is_closing() {
            return;
        }
        let frame = self.encode(conn.reply_format(), &ServerMsg::ErrorMsg { code, text: text.into() });
        self.conns[key].out.push_final(frame);
        self.goodbye_for(key, reason, text);
        self.conns[key].start_closing(reason);
        self.mark_dirty(key);
    }

    /// A frame refusing a connection before it is admitted (server full, too many from one
    /// address), in JSON: the only format a person at `nc` can read; binary clients see a
    /// non-ChatProto byte and report it.
    pub fn refusal(&mut self, why: &str) -> Bytes {
        self.encode(WireFormat::Json, &ServerMsg::ErrorMsg { code: ErrorCode::ServerFull, text: why.into() })
    }

    /// Cuts `key` off as a slow consumer: drops its backlog (keeping a partly written frame
    /// whole) and queues a last ERROR_MSG SLOW_CONSUMER.
    fn cut_off(&mut self, key: usize) {
        self.conns[key].out.drop_backlog();
        self.counters.slow_consumers += 1;
        let text = format!("you are reading too slowly: over {} bytes were waiting", self.max_outbound);
        let msg = ServerMsg::ErrorMsg { code: ErrorCode::SlowConsumer, text: (&*text).into() };
        let frame = self.encode(self.conns[key].reply_format(), &msg);
        self.conns[key].out.push_final(frame);
        self.goodbye_for(key, CloseReason::SlowConsumer, &text);
        self.conns[key].start_closing(CloseReason::SlowConsumer);
    }
}

impl Outbox for Peers {
    fn format(&self, key: usize) -> Option<WireFormat> {
        self.conns.get(key)?.format
    }

    fn reply_format(&self, key: usize) -> Option<WireFormat> {
        self.conns.get(key).map(Connection::reply_format)
    }

    fn encode(&mut self, format: WireFormat, msg: &ServerMsg<'_>) -> Bytes {
        self.reserve();
        format.encode_shared(msg, &mut self.arena)
    }

    fn encode_after_json(&mut self, format: WireFormat, msg: &ServerMsg<'_>, json: &Bytes) -> Bytes {
        self.reserve();
        match format {
            WireFormat::WebSocket => protocol::ws_from_json(json, &mut self.arena),
            _ => format.encode_shared(msg, &mut self.arena),
        }
    }

    fn encode_both(&mut self, msg: &ServerMsg<'_>) -> Frames {
        self.reserve();
        protocol::encode_both(msg, &mut self.arena)
    }

    /// Queues a shared frame for `key` and marks it for flushing (the write happens once per
    /// loop turn). When the frame would take the backlog past its cap, the socket is first
    /// offered what is queued, so only what the peer has really not taken counts; a connection
    /// still past its cap is cut off as a slow consumer.
    fn push(&mut self, key: usize, frame: Bytes) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        if conn.is_closing() {
            return;
        }
        let cap = self.max_outbound.saturating_sub(conn.transport.buffered());
        let Err(QueueFull(frame)) = conn.out.push(frame, cap) else {
            self.counters.frames_queued += 1;
            self.mark_dirty(key);
            return;
        };
        conn.write_out(&mut self.wire);
        if conn.is_closing() {
            self.mark_dirty(key);
            return;
        }
        let cap = self.max_outbound.saturating_sub(conn.transport.buffered());
        if conn.out.push(frame, cap).is_err() {
            self.cut_off(key);
        }
        self.counters.frames_queued += 1;
        self.mark_dirty(key);
    }

    fn close(&mut self, key: usize, code: ErrorCode, text: &str) {
        self.close_with(key, CloseReason::Kicked, code, text);
    }

    fn backlog(&self, key: usize) -> Option<usize> {
        self.conns.get(key).filter(|c| !c.is_closing()).map(Connection::queued)
    }

    fn peer_ip(&self, key: usize) -> Option<IpAddr> {
        self.conns.get(key).map(|c| c.peer.ip())
    }

    fn logged_in(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key).filter(|c| c.phase == Phase::Opening) {
            conn.phase = Phase::Chatting;
        }
    }
}
