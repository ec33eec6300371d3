//! RFC 6455 WebSocket frames, sans-IO: the frame header, masking, close codes, and the in-place
//! unwrapping of a client's masked frames into the newline-ended lines the JSON decoder reads.
//!
//! ```text
//!  0               1               2               3
//!  +-+-+-+-+-------+-+-------------+-------------------------------+
//!  |F|R|R|R| opcode|M| payload len |    extended payload length    |
//!  |I|S|S|S|  (4)  |A|     (7)     |            (16/64)            |
//!  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//!  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//!  |  masking key (4, client frames only)  |   payload ...         |
//! ```
//!
//! Server frames are never masked, so a server frame is the same bytes for every recipient and
//! is encoded once per message ([`crate::protocol::WireFormat::WebSocket`]). Client frames are
//! always masked; [`Unframer`] unmasks them in place in the read buffer and moves each message's
//! payload down over the frame headers, ending it with `\n`, so the JSON decoder reads a
//! WebSocket connection exactly like a JSON-lines one.

use bytes::{BufMut, BytesMut};
use std::ops::Range;

/// Continuation of a fragmented message.
pub const OP_CONTINUATION: u8 = 0x0;
/// A text (UTF-8) message.
pub const OP_TEXT: u8 = 0x1;
/// A binary message.
pub const OP_BINARY: u8 = 0x2;
/// The close handshake.
pub const OP_CLOSE: u8 = 0x8;
/// Ping (the peer answers pong with the same payload).
pub const OP_PING: u8 = 0x9;
/// Pong.
pub const OP_PONG: u8 = 0xA;

/// Longest frame header: 2 bytes, a 64-bit length, a masking key.
pub const MAX_HEADER: usize = 14;
/// Longest control frame payload.
pub const MAX_CONTROL: usize = 125;

/// Close status codes this implementation sends (RFC 6455 §7.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    /// The purpose of the connection was fulfilled.
    Normal = 1000,
    /// The server is going away (shutdown).
    GoingAway = 1001,
    /// The peer broke the framing rules.
    Protocol = 1002,
    /// A message type this endpoint does not accept (binary).
    Unsupported = 1003,
    /// A text message that is not UTF-8.
    BadData = 1007,
    /// A policy was broken (rate limit, slow reader, deadline, kick).
    Policy = 1008,
    /// A frame or message over the size limit.
    TooBig = 1009,
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Last frame of its message.
    pub fin: bool,
    /// The opcode (low 4 bits of the first byte).
    pub opcode: u8,
    /// The masking key, when the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
    /// Header length in bytes (2 to 14).
    pub header_len: usize,
}

/// Why a frame was refused: the close code to send and a short reason.
pub type Refusal = (CloseCode, &'static str);

/// Parses a frame header from the front of `buf`: `Ok(None)` when more bytes are needed.
/// Refuses reserved bits, unknown opcodes, bad control frames and oversized 64-bit lengths.
pub fn parse_header(buf: &[u8]) -> Result<Option<Header>, Refusal> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    if b0 & 0x70 != 0 {
        return Err((CloseCode::Protocol, "reserved bits set (no extension was negotiated)"));
    }
    let opcode = b0 & 0x0F;
    let fin = b0 & 0x80 != 0;
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
        OP_CLOSE | OP_PING | OP_PONG if !fin => return Err((CloseCode::Protocol, "fragmented control frame")),
        OP_CLOSE | OP_PING | OP_PONG => {}
        _ => return Err((CloseCode::Protocol, "unknown opcode")),
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7F {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let len = u64::from_be_bytes(buf[2..10].try_into().unwrap_or_default());
            if len >> 63 != 0 {
                return Err((CloseCode::Protocol, "payload length with the top bit set"));
            }
            (len, 10)
        }
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    if opcode >= OP_CLOSE && len > MAX_CONTROL as u64 {
        return Err((CloseCode::Protocol, "control frame over 125 bytes"));
    }
    let mask = if masked {
        let Some(k) = buf.get(at..at + 4) else { return Ok(None) };
        at += 4;
        Some([k[0], k[1], k[2], k[3]])
    } else {
        None
    };
    Ok(Some(Header { fin, opcode, mask, len, header_len: at }))
}

/// Appends a frame header for a payload of `len` bytes, masked with `mask` if given.
pub fn write_header(out: &mut BytesMut, fin: bool, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    let b0 = if fin { 0x80 } else { 0 } | (opcode & 0x0F);
    let m = if mask.is_some() { 0x80 } else { 0 };
    out.put_u8(b0);
    match len {
        0..=125 => out.put_u8(m | len as u8),
        126..=0xFFFF => {
            out.put_u8(m | 126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(m | 127);
            out.put_u64(len as u64);
        }
    }
    if let Some(k) = mask {
        out.put_slice(&k);
    }
}

/// XORs `data` with the masking key, `data[0]` being payload byte `offset`.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let k = u32::from_ne_bytes(rotate(key, offset));
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ k;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    let key = rotate(key, offset);
    for (b, m) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= m;
    }
}

/// The key as seen from payload byte `offset`.
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let mut k = key;
    k.rotate_left(offset % 4);
    k
}

/// Appends a whole frame: header (masked with `mask` if given) and payload.
pub fn write_frame(out: &mut BytesMut, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    write_header(out, true, opcode, payload.len(), mask);
    let start = out.len();
    out.put_slice(payload);
    if let Some(k) = mask {
        apply_mask(&mut out[start..], k, 0);
    }
}

/// Appends a close frame with `code` and `reason` (cut to fit a control frame), unmasked.
pub fn write_close(out: &mut BytesMut, code: u16, reason: &str) {
    let mut cut = reason.len().min(MAX_CONTROL - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    write_header(out, true, OP_CLOSE, 2 + cut, None);
    out.put_u16(code);
    out.put_slice(&reason.as_bytes()[..cut]);
}

/// True for a close code a peer may send (RFC 6455 §7.4: 1000–1003, 1007–1014, 3000–4999).
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A connection's inbound message state between reads.
///
/// Invariant: the first `assembled` bytes of the connection's carried-over input are the
/// unwrapped payload of the message in progress (fragments already received); the raw frames
/// follow them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inbound {
    /// Unwrapped bytes of the message in progress at the front of the input.
    assembled: usize,
    /// The opcode of the message in progress (text or binary), `None` between messages.
    message: Option<u8>,
}

/// A control frame or refusal met while unwrapping; ranges index the buffer being unwrapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A ping with this payload (answer with a pong carrying it).
    Ping(Range<usize>),
    /// The peer's close, with its code (if any) and reason.
    Close(Option<u16>, Range<usize>),
    /// The input broke the rules: close with this code.
    Refuse(Refusal),
}

/// Unwraps masked client frames in place; see the module comment. Call [`Unframer::next`] until
/// it returns `None` (or an event that ends the connection), then [`Unframer::finish`].
#[derive(Debug)]
pub struct Unframer {
    /// Read position: the next raw frame.
    r: usize,
    /// Write position: the end of the unwrapped output (`w <= r`).
    w: usize,
    /// End of the last complete message in the output (`ready <= w`).
    ready: usize,
    /// Largest message (all its fragments together), in bytes.
    max: usize,
}

impl Unframer {
    /// Starts unwrapping a buffer that begins with `state`'s assembled bytes.
    pub fn new(state: &Inbound, max_message: usize) -> Self {
        Unframer { r: state.assembled, w: state.assembled, ready: 0, max: max_message }
    }

    /// Unwraps data frames up to the next control frame or refusal. `None`: no complete frame
    /// is left. Text payloads have any raw `\n` turned into a space (JSON whitespace), so one
    /// text message is always exactly one line.
    pub fn next(&mut self, state: &mut Inbound, buf: &mut [u8]) -> Option<Event> {
        loop {
            let h = match parse_header(&buf[self.r..]) {
                Ok(Some(h)) => h,
                Ok(None) => return None,
                Err(refusal) => return Some(Event::Refuse(refusal)),
            };
            let Some(key) = h.mask else {
                return Some(Event::Refuse((CloseCode::Protocol, "client frames must be masked")));
            };
            let in_message = self.w - self.ready;
            if h.opcode < OP_CLOSE && in_message as u64 + h.len > self.max as u64 {
                return Some(Event::Refuse((CloseCode::TooBig, "message over the size limit")));
            }
            let start = self.r + h.header_len;
            let end = start + h.len as usize;
            if end > buf.len() {
                return None;
            }
            apply_mask(&mut buf[start..end], key, 0);
            self.r = end;
            match (h.opcode, state.message) {
                (OP_PING, _) => return Some(Event::Ping(start..end)),
                (OP_PONG, _) => continue,
                (OP_CLOSE, _) => return Some(close_event(&buf[start..end], start)),
                (OP_CONTINUATION, None) => {
                    return Some(Event::Refuse((CloseCode::Protocol, "continuation frame outside a message")))
                }
                (OP_TEXT | OP_BINARY, Some(_)) => {
                    return Some(Event::Refuse((CloseCode::Protocol, "new message before the last one ended")))
                }
                _ => {}
            }
            let opcode = state.message.unwrap_or(h.opcode);
            if opcode == OP_TEXT {
                buf[start..end].iter_mut().filter(|b| **b == b'\n').for_each(|b| *b = b' ');
            }
            buf.copy_within(start..end, self.w);
            self.w += end - start;
            state.message = Some(opcode);
            if h.fin {
                if let Some(refusal) = self.end_message(state, buf) {
                    return Some(Event::Refuse(refusal));
                }
            }
        }
    }

    /// The message in progress got its last fragment: check it and end its line.
    fn end_message(&mut self, state: &mut Inbound, buf: &mut [u8]) -> Option<Refusal> {
        let opcode = state.message.take();
        if opcode == Some(OP_BINARY) {
            return Some((CloseCode::Unsupported, "binary messages are not accepted; send JSON text"));
        }
        if std::str::from_utf8(&buf[self.ready..self.w]).is_err() {
            return Some((CloseCode::BadData, "text message is not valid UTF-8"));
        }
        // `w < r` here: every frame consumed at least a 6-byte header and mask.
        buf[self.w] = b'\n';
        self.w += 1;
        self.ready = self.w;
        None
    }

    /// Moves the raw bytes not yet unwrapped down behind the output and records the message in
    /// progress. Returns `(ready, len)`: the first `ready` bytes are complete lines; the buffer
    /// now holds `len` bytes.
    pub fn finish(self, state: &mut Inbound, buf: &mut [u8]) -> (usize, usize) {
        buf.copy_within(self.r.., self.w);
        state.assembled = self.w - self.ready;
        (self.ready, self.w + (buf.len() - self.r))
    }
}

/// Reads a close frame's payload (at `start` in the buffer): its code and reason, checked.
fn close_event(payload: &[u8], start: usize) -> Event {
    match payload {
        [] => Event::Close(None, start..start),
        [_] => Event::Refuse((CloseCode::Protocol, "close frame with a 1-byte payload")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !valid_close_code(code) {
                Event::Refuse((CloseCode::Protocol, "invalid close code"))
            } else if std::str::from_utf8(reason).is_err() {
                Event::Refuse((CloseCode::BadData, "close reason is not valid UTF-8"))
            } else {
                Event::Close(Some(code), start + 2..start + payload.len())
            }
        }
    }
}

/// Appends a server text frame holding JSON encoded by `encode` (which appends a line ending
/// in `\n`; the newline is dropped). The header is written in front without a second encode.
pub fn text_frame(out: &mut BytesMut, encode: impl FnOnce(&mut BytesMut)) {
    // Room for the common 4-byte header (payloads of 126..=65535 bytes); shifted otherwise.
    let start = out.len();
    out.put_slice(&[0; 4]);
    encode(out);
    if out.last() == Some(&b'\n') {
        out.truncate(out.len() - 1);
    }
    let len = out.len() - start - 4;
    let mut fixed = [0u8; 10];
    let hlen = header_into(&mut fixed, len);
    match hlen {
        4 => out[start..start + 4].copy_from_slice(&fixed[..4]),
        2 => {
            out.copy_within(start + 4.., start + 2);
            out.truncate(out.len() - 2);
            out[start..start + 2].copy_from_slice(&fixed[..2]);
        }
        _ => {
            let old = out.len();
            out.put_slice(&[0; 6]);
            out.copy_within(start + 4..old, start + 10);
            out[start..start + 10].copy_from_slice(&fixed);
        }
    }
}

/// Writes an unmasked, final text frame header for `len` bytes into `buf`; returns its length.
fn header_into(buf: &mut [u8; 10], len: usize) -> usize {
    buf[0] = 0x80 | OP_TEXT;
    match len {
        0..=125 => {
            buf[1] = len as u8;
            2
        }
        126..=0xFFFF => {
            buf[1] = 126;
            buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            buf[1] = 127;
            buf[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    }
}

/// A server frame's payload at the front of `buf`: `Ok(None)` until it is whole; `Err` when
/// the frame is not a valid unmasked frame. Returns the header and the payload's range.
pub fn server_frame(buf: &[u8]) -> Result<Option<(Header, Range<usize>)>, Refusal> {
    let Some(h) = parse_header(buf)? else { return Ok(None) };
    if h.mask.is_some() {
        return Err((CloseCode::Protocol, "server frames must not be masked"));
    }
    let end = h.header_len as u64 + h.len;
    if (buf.len() as u64) < end {
        return Ok(None);
    }
    Ok(Some((h, h.header_len..end as usize)))
}

#[cfg(test)]
#[path = "ws_tests.rs"]
mod tests;
