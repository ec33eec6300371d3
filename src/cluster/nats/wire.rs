//! What crosses the bus: subject names and the compact envelopes around already-encoded frames.
//!
//! Room names and user names may hold characters NATS gives meaning to (`.`, `*`, `>`,
//! spaces) or that a KV key may not hold (anything outside `[-/_=.a-zA-Z0-9]`), so both travel
//! hex-encoded in subjects and keys.
//!
//! An envelope is `kind` (one byte), then length-prefixed fields (`u32` big-endian length, then
//! the bytes): the frames of a presence or file notice, a private message or an alert in the
//! three wire formats travel as they were encoded on the sending node, so a receiving node copies
//! them into its members' queues unchanged.
//!
//! Room messages are different: their id is the log's sequence, known only once the log has
//! stored them, so they travel as a compact [`LogEntry`] and each node encodes the frames once
//! per format when the log hands the message back (see `cluster/nats/log.rs`).

use crate::protocol::Frames;
use crate::services::history::AckTo;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The KV bucket holding the cluster's user names (and the nodes' id slots).
pub const NAMES_BUCKET: &str = "chat_names";
/// The KV bucket holding each node's rooms and their local members (key: the node's name).
pub const DIRS_BUCKET: &str = "chat_rooms";

/// Envelope kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A presence or file notice to a room. (1, once a room message, is unused: those go through
    /// the log as a [`LogEntry`].)
    Notice = 2,
    /// A private message to a user on the addressed node.
    Direct = 3,
    /// An admin alert to every logged-in user.
    All = 4,
    /// An admin kick of a user on the addressed node (a ban in milliseconds).
    Kick = 5,
    /// An admin ban (milliseconds; 0: lifted) of a case-folded name, to every node.
    Ban = 6,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            2 => Kind::Notice,
            3 => Kind::Direct,
            4 => Kind::All,
            5 => Kind::Kick,
            6 => Kind::Ban,
            _ => return None,
        })
    }
}

/// A decoded envelope.
#[derive(Debug)]
pub struct Envelope {
    /// What it is.
    pub kind: Kind,
    /// The addressed user's case-folded name (Direct, Kick), else empty.
    pub user: Bytes,
    /// The frames (Chat, Notice, Direct, All).
    pub frames: Option<Frames>,
    /// The ban in milliseconds (Kick).
    pub ban_ms: u64,
}

/// Lower-case hex of `s`, for subjects and KV keys.
pub fn hex(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The bytes `hex` encoded, if `h` is hex.
pub fn unhex(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len()).step_by(2).map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok()).collect()
}

/// Subject of a room's messages.
pub fn room_subject(room: &str) -> String {
    format!("chat.room.{}", hex(room))
}

/// Subject a room's messages are appended to the log on.
pub fn log_subject(room: &str) -> String {
    format!("{LOG_PREFIX}.{}", hex(room))
}

/// Subject the log republishes a room's stored messages on, in log order, with their sequence.
pub fn live_subject(room: &str) -> String {
    format!("{LIVE_PREFIX}.{}", hex(room))
}

/// Every room's log subject is under this prefix.
pub const LOG_PREFIX: &str = "chat.log";
/// Every room's republished subject is under this prefix.
pub const LIVE_PREFIX: &str = "chat.live";

/// Subject of one node's private messages and kicks.
pub fn node_subject(node: &str) -> String {
    format!("chat.node.{node}")
}

/// Subject of admin alerts to every node.
pub const ALL_SUBJECT: &str = "chat.all";

/// KV value of a name claim: the holding node and the name as its user wrote it.
pub fn claim_value(node: &str, name: &str) -> Bytes {
    Bytes::from(format!("{node}\n{name}"))
}

/// The node and display name of a claim value.
pub fn parse_claim(value: &[u8]) -> Option<(&str, &str)> {
    std::str::from_utf8(value).ok()?.split_once('\n')
}

fn put_field(buf: &mut BytesMut, field: &[u8]) {
    buf.put_u32(field.len() as u32);
    buf.put_slice(field);
}

/// Encodes an envelope.
pub fn encode(kind: Kind, user: &str, frames: Option<&Frames>, ban_ms: u64) -> Bytes {
    let size = frames.map_or(0, |f| f.binary.len() + f.json.len() + f.ws.len());
    let mut buf = BytesMut::with_capacity(1 + 4 * 4 + 8 + user.len() + size);
    buf.put_u8(kind as u8);
    put_field(&mut buf, user.as_bytes());
    if let Some(f) = frames {
        put_field(&mut buf, &f.binary);
        put_field(&mut buf, &f.json);
        put_field(&mut buf, &f.ws);
    }
    if matches!(kind, Kind::Kick | Kind::Ban) {
        buf.put_u64(ban_ms);
    }
    buf.freeze()
}

fn take_field(buf: &mut Bytes) -> Option<Bytes> {
    if buf.remaining() < 4 {
        return None;
    }
    let len = buf.get_u32() as usize;
    (buf.remaining() >= len).then(|| buf.split_to(len))
}

/// Decodes an envelope (slices of `payload`, no copy); `None` if malformed.
pub fn decode(mut payload: Bytes) -> Option<Envelope> {
    if payload.is_empty() {
        return None;
    }
    let kind = Kind::from_u8(payload.get_u8())?;
    let user = take_field(&mut payload)?;
    let (frames, ban_ms) = match kind {
        Kind::Kick | Kind::Ban => (None, (payload.remaining() >= 8).then(|| payload.get_u64())?),
        _ => {
            let binary = take_field(&mut payload)?;
            let json = take_field(&mut payload)?;
            let ws = take_field(&mut payload)?;
            (Some(Frames { binary, json, ws }), 0)
        }
    };
    Some(Envelope { kind, user, frames, ban_ms })
}

/// A room message as the log stores it (the room is its subject).
#[derive(Debug)]
pub struct LogEntry {
    /// The node whose user sent it.
    pub node: Bytes,
    /// The sender on that node (left out of its fan-out there).
    pub sender: AckTo,
    /// Milliseconds since the Unix epoch, stamped by the sending node.
    pub ts_ms: u64,
    /// The sender's name (UTF-8, checked by [`decode_entry`]).
    pub from: Bytes,
    /// The text (UTF-8, checked by [`decode_entry`]).
    pub text: Bytes,
}

impl LogEntry {
    /// The sender's name.
    pub fn from(&self) -> &str {
        std::str::from_utf8(&self.from).unwrap_or_default()
    }

    /// The text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap_or_default()
    }
}

/// Version byte of [`LogEntry`]'s encoding.
const ENTRY_V1: u8 = 1;

/// Encodes a log entry: version, node, sender (shard `u32`, key and session `u64`), time, name,
/// text.
pub fn encode_entry(node: &str, sender: AckTo, ts_ms: u64, from: &str, text: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(1 + 3 * 4 + 4 + 8 * 3 + node.len() + from.len() + text.len());
    buf.put_u8(ENTRY_V1);
    put_field(&mut buf, node.as_bytes());
    buf.put_u32(sender.shard as u32);
    buf.put_u64(sender.key as u64);
    buf.put_u64(sender.session);
    buf.put_u64(ts_ms);
    put_field(&mut buf, from.as_bytes());
    put_field(&mut buf, text.as_bytes());
    buf.freeze()
}

/// Decodes a log entry (slices of `payload`); `None` if malformed or not UTF-8.
pub fn decode_entry(mut payload: Bytes) -> Option<LogEntry> {
    if payload.is_empty() || payload.get_u8() != ENTRY_V1 {
        return None;
    }
    let node = take_field(&mut payload)?;
    if payload.remaining() < 4 + 8 * 3 {
        return None;
    }
    let shard = payload.get_u32() as usize;
    let key = usize::try_from(payload.get_u64()).ok()?;
    let session = payload.get_u64();
    let ts_ms = payload.get_u64();
    let from = take_field(&mut payload)?;
    let text = take_field(&mut payload)?;
    std::str::from_utf8(&from).ok()?;
    std::str::from_utf8(&text).ok()?;
    Some(LogEntry { node, sender: AckTo { shard, key, session }, ts_ms, from, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_bad_ones_are_refused() {
        let f = Frames { binary: Bytes::from_static(b"b"), json: Bytes::from_static(b"{}\n"), ws: Bytes::new() };
        let e = decode(encode(Kind::Direct, "bob", Some(&f), 0)).expect("decodes");
        assert_eq!((e.kind, &e.user[..]), (Kind::Direct, &b"bob"[..]));
        let g = e.frames.expect("frames");
        assert_eq!((&g.binary[..], &g.json[..], g.ws.len()), (&b"b"[..], &b"{}\n"[..], 0));
        let k = decode(encode(Kind::Kick, "bob", None, 9000)).expect("decodes");
        assert_eq!(k.ban_ms, 9000);
        let b = decode(encode(Kind::Ban, "bob", None, 0)).expect("decodes");
        assert_eq!((b.kind, b.ban_ms, b.frames.is_none()), (Kind::Ban, 0, true));
        let full = encode(Kind::Notice, "", Some(&f), 0);
        for cut in 0..full.len() {
            assert!(decode(full.slice(..cut)).is_none(), "a cut at {cut} decoded");
        }
        assert!(decode(Bytes::from_static(&[9, 0, 0, 0, 0])).is_none());
    }

    #[test]
    fn log_entries_round_trip_and_bad_ones_are_refused() {
        let sender = AckTo { shard: 1, key: 7, session: 42 };
        let full = encode_entry("n1", sender, 1234, "Ålice", "hi there");
        let e = decode_entry(full.clone()).expect("decodes");
        assert_eq!(
            (&e.node[..], e.sender, e.ts_ms, e.from(), e.text()),
            (&b"n1"[..], sender, 1234, "Ålice", "hi there")
        );
        for cut in 0..full.len() {
            assert!(decode_entry(full.slice(..cut)).is_none(), "a cut at {cut} decoded");
        }
        let mut bad = full.to_vec();
        let at = bad.len() - 1;
        bad[at] = 0xff; // the text is no longer UTF-8
        assert!(decode_entry(Bytes::from(bad)).is_none());
        assert!(decode_entry(Bytes::from_static(&[2])).is_none(), "an unknown version");
        assert_eq!(live_subject("a.b"), "chat.live.612e62");
        assert_eq!(log_subject("a.b"), "chat.log.612e62");
    }

    #[test]
    fn names_travel_as_hex() {
        assert_eq!(hex("a.b*"), "612e622a");
        assert_eq!(unhex(&hex("Ünïcode > x")).as_deref(), Some("Ünïcode > x".as_bytes()));
        assert!(unhex("6").is_none() && unhex("zz").is_none());
        assert_eq!(parse_claim(b"n1\nAlice"), Some(("n1", "Alice")));
    }
}
