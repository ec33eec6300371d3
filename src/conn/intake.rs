//! From bytes to messages: what a connection's bytes in the read arena become before the chat
//! core sees them. The first plaintext byte picks the wire format; a malformed frame is skipped
//! with an ERROR_MSG when the stream can resync and closes the connection when it cannot; a
//! frame over the message rate limit, good or bad, is refused (or, far over, closes the
//! connection). The loop
//! only asks [`Peers::next_msg`] for the next message.

use super::{CloseReason, Peers};
use crate::chat::Outbox;
use crate::conn::limits::{RateLimit, Verdict};
use crate::protocol::{ClientMsg, ErrorCode, Limits, WireFormat};
use std::time::Instant;

/// What intake needs to know, borrowed from the server's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Policy<'a> {
    /// Frame and field size limits.
    pub limits: &'a Limits,
    /// The message rate limit.
    pub rate: &'a RateLimit,
    /// The time of this loop turn.
    pub now: Instant,
    /// Largest HTTP request head, in bytes.
    pub max_http_head: usize,
    /// `GET /config.json` (the server's public settings, rendered once at start, and the
    /// cluster's live addresses) and the origins trusted for a WebSocket upgrade.
    pub site: &'a crate::config::site::Site,
}

/// A cursor over one connection's bytes in the read arena.
#[derive(Debug, Default)]
pub struct Cursor {
    /// Bytes of the arena already decoded (or skipped); consume them when done.
    pub used: usize,
}

impl Peers {
    /// The next message of connection `key` in `data` (the arena's bytes from `cursor.used`
    /// on), or `None` when no complete frame is left or the connection is closing. Refusals
    /// (bad frames, rate limit) are answered here and never reach the chat core.
    pub fn next_msg<'a>(
        &mut self,
        key: usize,
        data: &'a [u8],
        cursor: &mut Cursor,
        policy: Policy<'_>,
    ) -> Option<ClientMsg<'a>> {
        let format = self.detect(key, data)?;
        while cursor.used < data.len() && !self.conns.get(key)?.is_closing() {
            match format.decode_client(&data[cursor.used..], policy.limits) {
                Ok(Some((msg, used))) => {
                    cursor.used += used;
                    self.counters.frames_in += 1;
                    if self.admit(key, policy) {
                        return Some(msg);
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    self.counters.protocol_errors += 1;
                    let text = e.to_string();
                    match e.skip {
                        Some(n) => {
                            cursor.used += n;
                            // A bad frame costs a token like a good one: a flood of them is
                            // refused, then cut off, instead of drawing an answer each.
                            if self.admit(key, policy) {
                                self.send_error(key, e.code(), &text);
                            }
                        }
                        None => {
                            cursor.used = data.len();
                            self.close_with(key, CloseReason::Framing, e.code(), &text);
                        }
                    }
                }
            }
        }
        None
    }

    /// The connection's wire format, picked by its first plaintext byte; closes a connection
    /// whose first byte is neither format's.
    fn detect(&mut self, key: usize, data: &[u8]) -> Option<WireFormat> {
        if let Some(f) = self.conns.get(key)?.format() {
            return Some(f);
        }
        let &first = data.first()?;
        match WireFormat::detect(first) {
            Some(f) => {
                self.set_format(key, f);
                Some(f)
            }
            None => {
                let text =
                    format!("not ChatProto: the first byte 0x{first:02x} is neither 0x43 (binary) nor '{{' (JSON)");
                self.counters.protocol_errors += 1;
                self.close_with(key, CloseReason::Framing, ErrorCode::BadMagic, &text);
                None
            }
        }
    }

    /// Takes a token for one frame: true to hand it to the chat core; otherwise the client was
    /// told (or, far over the limit, cut off).
    pub(super) fn admit(&mut self, key: usize, policy: Policy<'_>) -> bool {
        let Some(conn) = self.conns.get_mut(key) else { return false };
        match conn.bucket.check(policy.rate, policy.now) {
            Verdict::Allow => true,
            Verdict::Refuse => {
                self.counters.rate_limited += 1;
                let text = "slow down: over the message rate limit; this message was dropped";
                self.send_error(key, ErrorCode::RateLimited, text);
                false
            }
            Verdict::Disconnect => {
                self.counters.rate_limited += 1;
                let text = "disconnected for flooding: far over the message rate limit";
                self.close_with(key, CloseReason::Flooding, ErrorCode::RateLimited, text);
                false
            }
        }
    }
}
