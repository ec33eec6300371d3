//! The chat core's only view of connections: where replies and fan-out frames go.
//!
//! The server implements it over its connections ([`crate::conn::Peers`]): frames are queued
//! and written once per loop turn; a unit test implements it with a recording vector. The chat
//! rules never see a socket, a buffer or a transport.

use crate::protocol::{ErrorCode, Frames, ServerMsg, WireFormat};
use bytes::Bytes;
use std::net::IpAddr;

/// Where the chat core's output goes, keyed by connection.
pub trait Outbox {
    /// The wire format connection `key` speaks; `None` if it is gone or has not said yet.
    fn format(&self, key: usize) -> Option<WireFormat>;

    /// Encodes `msg` once in `format` into a frame every recipient can share (a refcount, not
    /// a copy, per recipient).
    fn encode(&mut self, format: WireFormat, msg: &ServerMsg<'_>) -> Bytes;

    /// Queues a shared frame for `key`. The outbox owns the queue's bound and the policy for a
    /// reader that falls behind; a frame for a connection that is gone or closing is dropped.
    fn push(&mut self, key: usize, frame: Bytes);

    /// Closes `key` (an administrator's kick) once a last ERROR_MSG `code`/`text` is written.
    fn close(&mut self, key: usize, code: ErrorCode, text: &str);

    /// Bytes queued for `key` and not yet written; `None` if it is gone or closing.
    fn backlog(&self, key: usize) -> Option<usize>;

    /// The address `key` connected from (login throttling).
    fn peer_ip(&self, key: usize) -> Option<IpAddr>;

    /// `key` logged in: from now on it is a chatting connection (idle pings instead of the
    /// login deadline).
    fn logged_in(&mut self, key: usize);

    /// The format replies to `key` use: its own, or JSON (a person at `nc` can read it) if it
    /// has not said; `None` if it is gone.
    fn reply_format(&self, key: usize) -> Option<WireFormat>;

    /// Encodes `msg` in `key`'s format and queues it.
    fn send(&mut self, key: usize, msg: &ServerMsg<'_>) {
        if let Some(format) = self.reply_format(key) {
            let frame = self.encode(format, msg);
            self.push(key, frame);
        }
    }

    /// Queues an ERROR_MSG for `key`.
    fn send_error(&mut self, key: usize, code: ErrorCode, text: &str) {
        self.send(key, &ServerMsg::ErrorMsg { code, text: text.into() });
    }

    /// Encodes `msg` in `format` when its JSON line `json` is already encoded: a format that
    /// only wraps the JSON copies it instead of encoding again (the server overrides this).
    fn encode_after_json(&mut self, format: WireFormat, msg: &ServerMsg<'_>, _json: &Bytes) -> Bytes {
        self.encode(format, msg)
    }

    /// Encodes `msg` once per format, for recipients whose format the sender does not know
    /// (other shards, everyone).
    fn encode_both(&mut self, msg: &ServerMsg<'_>) -> Frames {
        Frames::from_fn(|format| self.encode(format, msg))
    }
}
