//! Frames: decoding what the server sent, matching it, describing it in failure messages, and
//! hand-made binary frames for inputs the encoder would never produce.

use super::{Limits, Msg, ServerMsg, SystemKind, WireFormat};

/// Limits for decoding what the server sends: generous, a LIST_USERS of a big room is large.
pub(super) const CLIENT_LIMITS: Limits = Limits { max_frame: 16 * 1024 * 1024, max_text: 1024 * 1024 };

/// Decodes every whole server frame in `bytes`, in `format`.
pub fn decode_all(format: WireFormat, bytes: &[u8]) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut off = 0;
    while let Ok(Some((m, used))) = format.decode_server(&bytes[off..], &CLIENT_LIMITS) {
        out.push(m.into_owned());
        off += used;
    }
    out
}

/// A short description of `frames` for failure messages: the count, the first and last few,
/// each cut to a readable length.
pub fn summary(frames: &[Msg]) -> String {
    let show = |m: &Msg| {
        let s = format!("{m:?}");
        match s.char_indices().nth(160) {
            Some((i, _)) => format!("{}…", &s[..i]),
            None => s,
        }
    };
    let n = frames.len();
    let mut parts: Vec<String> = frames.iter().take(3).map(show).collect();
    if n > 6 {
        parts.push(format!("… {} more …", n - 6));
    }
    parts.extend(frames.iter().skip(3.max(n.saturating_sub(3))).map(show));
    format!("{n} frames [{}]", parts.join(", "))
}

/// True for a ROOM_MSG with exactly `text`.
pub fn is_room_msg(m: &Msg, text: &str) -> bool {
    matches!(m, ServerMsg::RoomMsg { text: t, .. } if t == text)
}

/// True for a presence notice of `kind` about `user`.
pub fn is_notice(m: &Msg, kind: SystemKind, user: &str) -> bool {
    matches!(m, ServerMsg::SystemMsg { kind: k, user: u, .. } if *k == kind && u == user)
}

/// Only the room messages of `frames`, as (from, text).
pub fn room_msgs(frames: &[Msg]) -> Vec<(String, String)> {
    frames
        .iter()
        .filter_map(|m| match m {
            ServerMsg::RoomMsg { from, text, .. } => Some((from.to_string(), text.to_string())),
            _ => None,
        })
        .collect()
}

/// `n` pseudo-random bytes from `seed` (xorshift; reproducible, no extra crates).
pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Hand-made binary frames, for inputs the encoder would never produce.
pub mod raw {
    /// The protocol's magic, "CP".
    pub const MAGIC: u16 = 0x4350;
    /// Type code of LOGIN.
    pub const LOGIN: u8 = 1;
    /// Type code of ROOM_MSG.
    pub const ROOM_MSG: u8 = 4;

    /// A binary frame with an explicit header.
    pub fn frame_with(magic: u16, version: u8, msg_type: u8, flags: u8, body: &[u8]) -> Vec<u8> {
        header(magic, version, msg_type, flags, body.len() as u32, body)
    }

    /// A well-formed header around `body`.
    pub fn frame(msg_type: u8, flags: u8, body: &[u8]) -> Vec<u8> {
        frame_with(MAGIC, 1, msg_type, flags, body)
    }

    /// A well-formed header whose length field claims `len` bytes, followed by `body`.
    pub fn frame_claiming(msg_type: u8, len: u32, body: &[u8]) -> Vec<u8> {
        header(MAGIC, 1, msg_type, 0, len, body)
    }

    fn header(magic: u16, version: u8, msg_type: u8, flags: u8, len: u32, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(9 + body.len());
        f.extend_from_slice(&magic.to_be_bytes());
        f.push(version);
        f.push(msg_type);
        f.push(flags);
        f.extend_from_slice(&len.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    /// A u16-length-prefixed field with the given raw bytes.
    pub fn text16(bytes: &[u8]) -> Vec<u8> {
        let mut v = (bytes.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(bytes);
        v
    }

    /// A u8-length-prefixed field.
    pub fn name8(bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![bytes.len() as u8];
        v.extend_from_slice(bytes);
        v
    }
}
