//! Server counters, published by the event loop once per turn and readable from any thread.
//!
//! The loop keeps plain integers and stores them into these atomics at the end of each turn, so
//! the hot path never touches an atomic per message.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Shared counters (totals since start unless noted).
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections accepted.
    pub connections_total: AtomicU64,
    /// TLS connections accepted (handshake started).
    pub tls_connections: AtomicU64,
    /// Successful logins.
    pub logins: AtomicU64,
    /// Bytes read from sockets (ciphertext under TLS).
    pub bytes_in: AtomicU64,
    /// Bytes written to sockets (ciphertext under TLS).
    pub bytes_out: AtomicU64,
    /// Frames decoded from clients.
    pub frames_in: AtomicU64,
    /// Frames queued to clients.
    pub frames_out: AtomicU64,
    /// Room messages accepted.
    pub room_msgs: AtomicU64,
    /// Room-message deliveries (one per recipient).
    pub deliveries: AtomicU64,
    /// Private messages delivered.
    pub private_msgs: AtomicU64,
    /// Connections cut off for reading too slowly.
    pub slow_consumer_disconnects: AtomicU64,
    /// Bad frames answered with ERROR_MSG.
    pub protocol_errors: AtomicU64,
    /// Accepts refused or postponed because of fd exhaustion or the connection limits.
    pub accept_refusals: AtomicU64,
    /// Frames refused by the rate limit.
    pub rate_limited: AtomicU64,
    /// Open connections speaking binary (format known).
    pub open_binary: AtomicU64,
    /// Open connections speaking JSON (format known).
    pub open_json: AtomicU64,
    /// Open connections speaking JSON over WebSocket.
    pub open_websocket: AtomicU64,
    /// Of those, the ones over TLS (`wss://`).
    pub open_websocket_tls: AtomicU64,
    /// HTTP requests answered (web app files, errors, WebSocket upgrades).
    pub http_requests: AtomicU64,
    /// Open TLS connections.
    pub open_tls: AtomicU64,
    /// Bytes waiting in outbound queues now.
    pub queued_bytes: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub connections_open: u64,
    pub connections_total: u64,
    pub tls_connections: u64,
    pub logins: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub room_msgs: u64,
    pub deliveries: u64,
    pub private_msgs: u64,
    pub slow_consumer_disconnects: u64,
    pub protocol_errors: u64,
    pub accept_refusals: u64,
    pub rate_limited: u64,
    pub open_binary: u64,
    pub open_json: u64,
    pub open_websocket: u64,
    pub open_websocket_tls: u64,
    pub http_requests: u64,
    pub open_tls: u64,
    pub queued_bytes: u64,
}

impl StatsSnapshot {
    /// Field-wise sum, for totals over shards.
    pub fn add(&mut self, o: &StatsSnapshot) {
        macro_rules! sum { ($($f:ident),*) => { $( self.$f += o.$f; )* } }
        sum!(
            connections_open,
            connections_total,
            tls_connections,
            logins,
            bytes_in,
            bytes_out,
            frames_in,
            frames_out,
            room_msgs,
            deliveries,
            private_msgs,
            slow_consumer_disconnects,
            protocol_errors,
            accept_refusals,
            rate_limited,
            open_binary,
            open_json,
            open_websocket,
            open_websocket_tls,
            http_requests,
            open_tls,
            queued_bytes
        );
    }
}

impl Stats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections_open: self.connections_open.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            tls_connections: self.tls_connections.load(Relaxed),
            logins: self.logins.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            frames_in: self.frames_in.load(Relaxed),
            frames_out: self.frames_out.load(Relaxed),
            room_msgs: self.room_msgs.load(Relaxed),
            deliveries: self.deliveries.load(Relaxed),
            private_msgs: self.private_msgs.load(Relaxed),
            slow_consumer_disconnects: self.slow_consumer_disconnects.load(Relaxed),
            protocol_errors: self.protocol_errors.load(Relaxed),
            accept_refusals: self.accept_refusals.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
            open_binary: self.open_binary.load(Relaxed),
            open_json: self.open_json.load(Relaxed),
            open_websocket: self.open_websocket.load(Relaxed),
            open_websocket_tls: self.open_websocket_tls.load(Relaxed),
            http_requests: self.http_requests.load(Relaxed),
            open_tls: self.open_tls.load(Relaxed),
            queued_bytes: self.queued_bytes.load(Relaxed),
        }
    }

    /// Stores a loop's totals.
    pub fn publish(&self, s: &StatsSnapshot) {
        self.connections_open.store(s.connections_open, Relaxed);
        self.connections_total.store(s.connections_total, Relaxed);
        self.tls_connections.store(s.tls_connections, Relaxed);
        self.logins.store(s.logins, Relaxed);
        self.bytes_in.store(s.bytes_in, Relaxed);
        self.bytes_out.store(s.bytes_out, Relaxed);
        self.frames_in.store(s.frames_in, Relaxed);
        self.frames_out.store(s.frames_out, Relaxed);
        self.room_msgs.store(s.room_msgs, Relaxed);
        self.deliveries.store(s.deliveries, Relaxed);
        self.private_msgs.store(s.private_msgs, Relaxed);
        self.slow_consumer_disconnects.store(s.slow_consumer_disconnects, Relaxed);
        self.protocol_errors.store(s.protocol_errors, Relaxed);
        self.accept_refusals.store(s.accept_refusals, Relaxed);
        self.rate_limited.store(s.rate_limited, Relaxed);
        self.open_binary.store(s.open_binary, Relaxed);
        self.open_json.store(s.open_json, Relaxed);
        self.open_websocket.store(s.open_websocket, Relaxed);
        self.open_websocket_tls.store(s.open_websocket_tls, Relaxed);
        self.http_requests.store(s.http_requests, Relaxed);
        self.open_tls.store(s.open_tls, Relaxed);
        self.queued_bytes.store(s.queued_bytes, Relaxed);
    }
}
