//! ChatProto v1.0: the message model and its two wire formats.
//!
//! This module is sans-IO: it never sees a socket. Decoders take a byte slice (the connection's read
//! buffer) and return a *borrowed* message plus the number of bytes it used, or "need more bytes"
//! as a value (`Ok(None)`), or a [`DecodeError`] that says whether the stream can carry on.
//! Encoders append to a `BytesMut`, so a caller can encode once and `split().freeze()` the result
//! into a `Bytes` that every recipient shares.
//!
//! ```text
//!  binary frame (network byte order, struct "!HBBBL")
//!  0        2    3    4    5                   9
//!  +--------+----+----+----+-------------------+---------------------+
//!  | 0x4350 | 01 |type|flag| body length (u32) | body (length bytes) |
//!  +--------+----+----+----+-------------------+---------------------+
//!  body fields: name8 = u8 len + UTF-8, text16 = u16 len + UTF-8, integers big-endian
//!
//!  JSON frame: one object per line, e.g.  {"type":"room_msg","text":"hi"}\n
//! ```
//!
//! The first byte of a connection tells the formats apart: `0x43` ('C') is binary, `{` is JSON
//! (see [`WireFormat::detect`]). `docs/PROTOCOL.md` is the byte-exact specification.
//!
//! - `spec`: the one description of every message type (code, JSON name, direction, fields),
//!   from which [`MsgType`], the [`MESSAGES`] table and both codecs are generated;
//! - `message`: the message enums ([`ClientMsg`], [`ServerMsg`]) and their code types;
//! - [`binary`], [`json`]: how each field kind is read and written in each format;
//! - [`validate`]: user and room naming rules;
//! - [`ws`]: RFC 6455 frames: headers, masking, close codes, client frames unwrapped in place into
//!   JSON lines, server text frames ([`WireFormat::WebSocket`]).

pub mod binary;
pub mod json;
mod message;
mod spec;
pub mod validate;
pub mod ws;

pub use message::{Blob, ClientMsg, ErrorCode, FileEntry, ServerMsg, SystemKind};
pub use spec::{Direction, FieldKind, FieldSpec, MsgSpec, MsgType, MESSAGES};

use bytes::{Bytes, BytesMut};
use std::borrow::Cow;

/// Protocol number, "CP".
pub const MAGIC: u16 = 0x4350;
/// The only protocol version this implementation speaks.
pub const VERSION: u8 = 1;
/// Size of the fixed binary header.
pub const HEADER_LEN: usize = 9;
/// Flags bit 0 on a server `ROOM_MSG`: the message is replayed history, not live.
pub const FLAG_HISTORY: u8 = 0x01;
/// Flag bits this version defines; any other bit set is an error.
pub const KNOWN_FLAGS: u8 = FLAG_HISTORY;

/// A string field as decoded: borrowed from the read buffer, owned only when JSON escapes forced it.
pub type Str<'a> = Cow<'a, str>;

/// Size limits the decoders enforce before they buffer or copy anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest binary body or JSON line (without its `\n`) accepted, in bytes.
    pub max_frame: usize,
    /// Largest chat text, in bytes of UTF-8.
    pub max_text: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame: 64 * 1024, max_text: 8 * 1024 }
    }
}

/// The encodings of the same message set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// ChatProto v1.0 binary frames.
    Binary,
    /// Newline-delimited JSON objects.
    Json,
    /// The JSON objects, one per WebSocket text frame ([`ws`]). Server frames are unmasked, so
    /// one encoding serves every WebSocket recipient. A server decodes this format from lines:
    /// the connection layer unwraps (and unmasks) client frames into lines first.
    WebSocket,
}

impl WireFormat {
    /// Picks the format from a connection's first (plaintext) byte: `'C'` (0x43) binary, `'{'`
    /// JSON. JSON clients may send leading whitespace (a person typing into `nc`), so ASCII
    /// whitespace also means JSON. Anything else is not ChatProto.
    pub fn detect(first: u8) -> Option<WireFormat> {
        match first {
            0x43 => Some(WireFormat::Binary),
            b'{' | b' ' | b'\t' | b'\r' | b'\n' => Some(WireFormat::Json),
            _ => None,
        }
    }

    /// Decodes one client message from the front of `buf` (for [`WireFormat::WebSocket`],
    /// from the lines [`ws::Unframer`] left).
    pub fn decode_client<'a>(
        self,
        buf: &'a [u8],
        limits: &Limits,
    ) -> Result<Option<(ClientMsg<'a>, usize)>, DecodeError> {
        match self {
            WireFormat::Binary => binary::decode_client(buf, limits),
            WireFormat::Json | WireFormat::WebSocket => json::decode_client(buf, limits),
        }
    }

    /// Decodes one server message from the front of `buf`.
    pub fn decode_server<'a>(
        self,
        buf: &'a [u8],
        limits: &Limits,
    ) -> Result<Option<(ServerMsg<'a>, usize)>, DecodeError> {
        match self {
            WireFormat::Binary => binary::decode_server(buf, limits),
            WireFormat::Json => json::decode_server(buf, limits),
            WireFormat::WebSocket => decode_ws_server(buf, limits),
        }
    }

    /// Appends the encoding of a client message to `out`. A WebSocket client frame is masked
    /// with the key `0` (valid for a server; a browser picks random keys to protect proxies).
    pub fn encode_client(self, msg: &ClientMsg<'_>, out: &mut BytesMut) {
        match self {
            WireFormat::Binary => binary::encode_client(msg, out),
            WireFormat::Json => json::encode_client(msg, out),
            WireFormat::WebSocket => {
                let start = out.len();
                ws::text_frame(out, |o| json::encode_client(msg, o));
                // Insert the zero masking key after the header and set the mask bit.
                let at = start + ws::parse_header(&out[start..]).ok().flatten().map_or(2, |h| h.header_len);
                let old = out.len();
                out.extend_from_slice(&[0; 4]);
                out.copy_within(at..old, at + 4);
                out[at..at + 4].fill(0);
                out[start + 1] |= 0x80;
            }
        }
    }

    /// Appends the encoding of a server message to `out`.
    pub fn encode_server(self, msg: &ServerMsg<'_>, out: &mut BytesMut) {
        match self {
            WireFormat::Binary => binary::encode_server(msg, out),
            WireFormat::Json => json::encode_server(msg, out),
            WireFormat::WebSocket => ws::text_frame(out, |o| json::encode_server(msg, o)),
        }
    }

    /// Lower-case name, as used in logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            WireFormat::Binary => "binary",
            WireFormat::Json => "json",
            WireFormat::WebSocket => "websocket",
        }
    }

    /// Every format, in [`WireFormat::index`] order.
    pub const ALL: [WireFormat; 3] = [WireFormat::Binary, WireFormat::Json, WireFormat::WebSocket];

    /// A small index per format (0, 1, 2), for per-format slots.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A server message in a WebSocket text frame at the front of `buf` (a client's view).
fn decode_ws_server<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(ServerMsg<'a>, usize)>, DecodeError> {
    let malformed = |why: &str| DecodeError::fatal(DecodeErrorKind::Malformed(format!("WebSocket frame: {why}")));
    let Some((h, payload)) = ws::server_frame(buf).map_err(|(_, why)| malformed(why))? else { return Ok(None) };
    if h.opcode != ws::OP_TEXT || !h.fin {
        return Err(DecodeError::skip(DecodeErrorKind::Malformed("not a whole text frame".into()), payload.end));
    }
    json::decode_server_payload(&buf[payload.clone()], payload.end, limits).map(Some)
}

impl WireFormat {
    /// Encodes a server message into `arena` and splits it off as a `Bytes` every recipient can
    /// share. The caller owns the arena's growth policy (reserve before encoding).
    pub fn encode_shared(self, msg: &ServerMsg<'_>, arena: &mut BytesMut) -> Bytes {
        self.encode_server(msg, arena);
        arena.split().freeze()
    }
}

/// One server message encoded in every format, for a fan-out to peers of any format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frames {
    /// The binary frame.
    pub binary: Bytes,
    /// The JSON line, with its `\n`.
    pub json: Bytes,
    /// The WebSocket text frame holding the JSON (without the `\n`).
    pub ws: Bytes,
}

impl Frames {
    /// Frames built by `encode` for each format.
    pub fn from_fn(mut encode: impl FnMut(WireFormat) -> Bytes) -> Frames {
        let [binary, json, ws] = WireFormat::ALL.map(&mut encode);
        Frames { binary, json, ws }
    }

    /// The frames as per-format slots, in [`WireFormat::index`] order.
    pub fn into_slots(self) -> [Option<Bytes>; 3] {
        [Some(self.binary), Some(self.json), Some(self.ws)]
    }

    /// The frame for peers speaking `format`.
    pub fn get(&self, format: WireFormat) -> &Bytes {
        match format {
            WireFormat::Binary => &self.binary,
            WireFormat::Json => &self.json,
            WireFormat::WebSocket => &self.ws,
        }
    }
}

/// Encodes `msg` once per format into `arena` (see [`WireFormat::encode_shared`]). The
/// WebSocket frame is built from the JSON line (one copy, not a second encode).
pub fn encode_both(msg: &ServerMsg<'_>, arena: &mut BytesMut) -> Frames {
    let binary = WireFormat::Binary.encode_shared(msg, arena);
    let json = WireFormat::Json.encode_shared(msg, arena);
    let ws = ws_from_json(&json, arena);
    Frames { binary, json, ws }
}

/// The WebSocket text frame carrying an already encoded JSON line (another shard's frames).
pub fn ws_from_json(json: &[u8], arena: &mut BytesMut) -> Bytes {
    ws::text_frame(arena, |o| o.extend_from_slice(json));
    arena.split().freeze()
}

/// Why a frame could not be decoded, and whether the stream is still in sync.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct DecodeError {
    /// What was wrong.
    pub kind: DecodeErrorKind,
    /// `Some(n)`: the bad frame was `n` bytes long and the next frame starts after it, so the
    /// connection can carry on. `None`: framing is lost and the connection must be closed.
    pub skip: Option<usize>,
}

impl DecodeError {
    pub(crate) fn fatal(kind: DecodeErrorKind) -> Self {
        DecodeError { kind, skip: None }
    }
    pub(crate) fn skip(kind: DecodeErrorKind, n: usize) -> Self {
        DecodeError { kind, skip: Some(n) }
    }
    /// True when the connection cannot continue after this error.
    pub fn is_fatal(&self) -> bool {
        self.skip.is_none()
    }
    /// The wire error code that reports this error to the peer.
    pub fn code(&self) -> ErrorCode {
        self.kind.code()
    }
}

/// The precise decoding failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    #[error("bad magic 0x{0:04x}: not a ChatProto frame (expected 0x4350)")]
    BadMagic(u16),
    #[error("unsupported protocol version {0} (this server speaks version 1)")]
    BadVersion(u8),
    #[error("unknown message type {0}")]
    UnknownType(String),
    #[error("reserved flag bits set: 0x{0:02x}")]
    BadFlags(u8),
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { len: usize, max: usize },
    #[error("malformed {0}")]
    Malformed(String),
    #[error("field `{0}` is not valid UTF-8")]
    BadUtf8(&'static str),
    #[error("field `{field}` is {len} bytes, over its {max}-byte limit")]
    FieldTooLong { field: &'static str, len: usize, max: usize },
    #[error("field `{0}` is missing")]
    MissingField(&'static str),
    #[error("this message type is not valid in this direction: {0}")]
    WrongDirection(&'static str),
}

impl DecodeErrorKind {
    /// The wire error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeErrorKind::BadMagic(_) => ErrorCode::BadMagic,
            DecodeErrorKind::BadVersion(_) => ErrorCode::BadVersion,
            DecodeErrorKind::UnknownType(_) | DecodeErrorKind::WrongDirection(_) => ErrorCode::UnknownType,
            DecodeErrorKind::BadFlags(_) => ErrorCode::BadFlags,
            DecodeErrorKind::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            DecodeErrorKind::Malformed(_) | DecodeErrorKind::MissingField(_) => ErrorCode::Malformed,
            DecodeErrorKind::BadUtf8(_) => ErrorCode::BadUtf8,
            DecodeErrorKind::FieldTooLong { .. } => ErrorCode::FieldTooLong,
        }
    }
}

#[cfg(test)]
mod tests;
