//! HTTP and WebSocket on a connection: what happens to its bytes in the read arena before the
//! JSON decoder sees them. A first byte that starts an HTTP method makes the connection an HTTP
//! one: a request head is answered (an embedded file or a short error, then close) or upgraded
//! to a WebSocket. A WebSocket connection's frames are unmasked and unwrapped in place into
//! JSON lines ([`crate::protocol::ws::Unframer`]); control frames are answered here. The chat
//! core never learns that a connection is a WebSocket: its format is
//! [`WireFormat::WebSocket`], whose frames it shares like any other.

use super::intake::Policy;
use super::{CloseReason, Peers};
use crate::chat::Outbox;
use crate::net::http::{self, Answer};
use crate::protocol::ws::{self, CloseCode, Event, Inbound, Unframer};
use crate::protocol::WireFormat;
use bytes::Bytes;

/// How a connection's bytes are framed below its wire format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Framing {
    /// The wire format frames itself (binary frames, JSON lines), or nothing arrived yet.
    #[default]
    Stream,
    /// An HTTP request head is arriving.
    Http,
    /// WebSocket frames carrying JSON text messages; the state of the message in progress.
    WebSocket(Inbound),
}

/// What [`Peers::unwrap`] left in the buffer: the first `ready` bytes are for the decoder; the
/// buffer now holds `len` bytes (the rest is carried over).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unwrapped {
    /// Bytes the wire-format decoder may read.
    pub ready: usize,
    /// Bytes left in the buffer.
    pub len: usize,
}

/// True for a first byte that starts an HTTP method this port answers (GET, HEAD, and POST,
/// PUT, PATCH, DELETE, OPTIONS, which get 405). `C` (CONNECT) is ChatProto binary's magic.
pub fn is_http_start(first: u8) -> bool {
    matches!(first, b'G' | b'H' | b'P' | b'D' | b'O')
}

/// The WebSocket close code for a connection closed for `reason`.
fn close_code(reason: CloseReason) -> CloseCode {
    match reason {
        CloseReason::Framing => CloseCode::Protocol,
        CloseReason::Shutdown => CloseCode::GoingAway,
        CloseReason::PeerClosed | CloseReason::IoError | CloseReason::TlsError | CloseReason::Answered => {
            CloseCode::Normal
        }
        CloseReason::SlowConsumer | CloseReason::Flooding | CloseReason::Timeout | CloseReason::Kicked => {
            CloseCode::Policy
        }
    }
}

impl Peers {
    /// Unwraps `key`'s bytes for its decoder: passes a stream format's bytes through, answers
    /// an HTTP request, or unmasks and unwraps WebSocket frames into JSON lines in place.
    pub fn unwrap(&mut self, key: usize, buf: &mut [u8], policy: Policy<'_>) -> Unwrapped {
        let len = buf.len();
        let Some(conn) = self.conns.get_mut(key) else { return Unwrapped { ready: 0, len } };
        if conn.format.is_none() && conn.framing == Framing::Stream && buf.first().is_some_and(|&b| is_http_start(b)) {
            conn.framing = Framing::Http;
        }
        match conn.framing {
            Framing::Stream => Unwrapped { ready: len, len },
            Framing::Http => self.http(key, buf, policy),
            Framing::WebSocket(state) => self.unframe(key, state, buf, policy),
        }
    }

    /// An HTTP request head: wait for the rest, answer it and close, or upgrade.
    fn http(&mut self, key: usize, buf: &mut [u8], policy: Policy<'_>) -> Unwrapped {
        let len = buf.len();
        match http::answer(buf, policy.max_http_head, &|origin| policy.site.trusts_origin(origin)) {
            Answer::Incomplete => Unwrapped { ready: 0, len },
            Answer::Reply { status, head, body } => self.reply(key, status, head, Bytes::from_static(body)),
            Answer::Site { head_only } => {
                let site = policy.site.body();
                let head = http::site_head(site.len());
                self.reply(key, 200, head, if head_only { Bytes::new() } else { site })
            }
            Answer::Upgrade { response, used } => {
                self.counters.http_requests += 1;
                self.set_format(key, WireFormat::WebSocket);
                let conn = &mut self.conns[key];
                conn.out.push_final(Bytes::from(response));
                conn.framing = Framing::WebSocket(Inbound::default());
                self.mark_dirty(key);
                buf.copy_within(used.., 0);
                self.unframe(key, Inbound::default(), &mut buf[..len - used], policy)
            }
        }
    }

    /// Queues an HTTP answer and closes once it is written.
    fn reply(&mut self, key: usize, status: u16, head: Vec<u8>, body: Bytes) -> Unwrapped {
        self.counters.http_requests += 1;
        let conn = &mut self.conns[key];
        tracing::debug!(peer = %conn.peer, status, "HTTP");
        conn.out.push_final(Bytes::from(head));
        conn.out.push_final(body);
        conn.start_closing(CloseReason::Answered);
        self.mark_dirty(key);
        Unwrapped { ready: 0, len: 0 }
    }

    /// Unmasks and unwraps WebSocket frames in place; answers pings and the close handshake;
    /// refuses what breaks the rules with a close code.
    fn unframe(&mut self, key: usize, mut state: Inbound, buf: &mut [u8], policy: Policy<'_>) -> Unwrapped {
        let mut unframer = Unframer::new(&state, policy.limits.max_frame);
        while let Some(event) = unframer.next(&mut state, buf) {
            match event {
                Event::Ping(payload) => {
                    // A ping costs a token like a message: a flood of them is refused, then cut off.
                    if self.admit(key, policy) {
                        self.reserve();
                        ws::write_frame(&mut self.arena, ws::OP_PONG, &buf[payload], None);
                        let frame = self.arena.split().freeze();
                        self.push(key, frame);
                    }
                }
                Event::Close(code, _) => {
                    // Echo the peer's code (RFC 6455 §5.5.1), then close once it is written.
                    self.goodbye(key, code.unwrap_or(CloseCode::Normal as u16), "");
                    self.start_closing(key, CloseReason::PeerClosed);
                }
                Event::Refuse((code, why)) => {
                    self.counters.protocol_errors += 1;
                    self.goodbye(key, code as u16, why);
                    self.start_closing(key, CloseReason::Framing);
                }
            }
            if self.conns.get(key).is_none_or(|c| c.is_closing()) {
                break;
            }
        }
        let (ready, len) = unframer.finish(&mut state, buf);
        if let Some(conn) = self.conns.get_mut(key) {
            conn.framing = Framing::WebSocket(state);
        }
        Unwrapped { ready, len }
    }

    /// Answers a plaintext HTTP request on a TLS-only server with a `400` saying to use
    /// `https://`, and closes `key` once it is written.
    pub fn refuse_plain_http(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        self.counters.http_requests += 1;
        conn.out.push_final(Bytes::from(http::tls_required()));
        conn.start_closing(CloseReason::Answered);
        self.mark_dirty(key);
    }

    /// Queues a WebSocket close frame for `key` (if it is a WebSocket that is not closing yet).
    pub(super) fn goodbye(&mut self, key: usize, code: u16, why: &str) {
        let Some(conn) = self.conns.get(key) else { return };
        if !matches!(conn.framing, Framing::WebSocket(_)) || conn.is_closing() {
            return;
        }
        self.reserve();
        ws::write_close(&mut self.arena, code, why);
        let frame = self.arena.split().freeze();
        self.conns[key].out.push_final(frame);
        self.mark_dirty(key);
    }

    /// Queues the close frame that goes with closing `key` for `reason` (WebSocket only).
    pub(super) fn goodbye_for(&mut self, key: usize, reason: CloseReason, why: &str) {
        self.goodbye(key, close_code(reason) as u16, why);
    }
}
