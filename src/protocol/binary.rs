//! ChatProto v1.0 binary codec: 9-byte `!HBBBL` header, length-prefixed UTF-8 fields.
//!
//! Decoding checks the header (magic, version, length against [`Limits::max_frame`]) as soon as
//! nine bytes are there, before any body is buffered, then parses the body in place: every string
//! in the returned message borrows from the input slice.

use super::{
    ClientMsg, DecodeError, DecodeErrorKind as K, ErrorCode, FileEntry, Limits, MsgType, ServerMsg, SystemKind,
    FLAG_HISTORY, HEADER_LEN, KNOWN_FLAGS, MAGIC, VERSION,
};
use bytes::{BufMut, BytesMut};
use std::borrow::Cow;

/// Longest name field the format can carry (u8 length).
pub const MAX_NAME_BYTES: usize = u8::MAX as usize;

/// A parsed, validated header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Raw type code.
    pub msg_type: u8,
    /// Flags byte.
    pub flags: u8,
    /// Body length in bytes.
    pub body_len: usize,
}

/// Reads and checks the header at the front of `buf`. `Ok(None)` until nine bytes are there.
/// Errors are fatal: after a bad header the stream has no framing left to trust.
pub fn parse_header(buf: &[u8], limits: &Limits) -> Result<Option<Header>, DecodeError> {
    if buf.len() < HEADER_LEN {
        // A wrong magic is visible from the first two bytes: say so without waiting.
        if buf.len() >= 2 {
            check_magic(u16::from_be_bytes([buf[0], buf[1]]))?;
        }
        return Ok(None);
    }
    check_magic(u16::from_be_bytes([buf[0], buf[1]]))?;
    if buf[2] != VERSION {
        return Err(DecodeError::fatal(K::BadVersion(buf[2])));
    }
    let body_len = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) as usize;
    if body_len > limits.max_frame {
        return Err(DecodeError::fatal(K::FrameTooLarge { len: body_len, max: limits.max_frame }));
    }
    Ok(Some(Header { msg_type: buf[3], flags: buf[4], body_len }))
}

fn check_magic(magic: u16) -> Result<(), DecodeError> {
    if magic != MAGIC {
        return Err(DecodeError::fatal(K::BadMagic(magic)));
    }
    Ok(())
}

/// Splits one whole frame off the front of `buf`: header, body, and total length.
fn frame<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(Header, &'a [u8], usize)>, DecodeError> {
    let Some(h) = parse_header(buf, limits)? else { return Ok(None) };
    let total = HEADER_LEN + h.body_len;
    if buf.len() < total {
        return Ok(None);
    }
    if h.flags & !KNOWN_FLAGS != 0 {
        return Err(DecodeError::skip(K::BadFlags(h.flags), total));
    }
    Ok(Some((h, &buf[HEADER_LEN..total], total)))
}

/// Decodes one client→server message. See the module docs for the error contract.
pub fn decode_client<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(ClientMsg<'a>, usize)>, DecodeError> {
    let Some((h, body, total)) = frame(buf, limits)? else { return Ok(None) };
    let mut r = Reader { buf: body, limits };
    let msg = (|| {
        let t = MsgType::from_code(h.msg_type).ok_or(K::UnknownType(h.msg_type.to_string()))?;
        let msg = match t {
            MsgType::Login => {
                let username = r.name("username")?;
                let credential = if r.buf.is_empty() { None } else { Some(r.name("credential")?) };
                ClientMsg::Login { username, credential }
            }
            MsgType::RoomMsg => ClientMsg::RoomMsg { text: r.text("text")? },
            MsgType::PrivateMsg => ClientMsg::PrivateMsg { to: r.name("to")?, text: r.text("text")? },
            MsgType::JoinRoom => ClientMsg::JoinRoom { room: r.name("room")? },
            MsgType::ListUsers => ClientMsg::ListUsers,
            MsgType::ListRooms => ClientMsg::ListRooms,
            MsgType::Ping => ClientMsg::Ping { token: r.u64()? },
            MsgType::Pong => ClientMsg::Pong { token: r.u64()? },
            MsgType::Time => ClientMsg::Time,
            MsgType::Admin => ClientMsg::Admin { command: r.text("command")? },
            MsgType::Register => ClientMsg::Register { username: r.name("username")?, password: r.name("password")? },
            MsgType::FileOffer => ClientMsg::FileOffer { name: r.name("name")?, size: r.u64()?, sha256: r.sha256()? },
            MsgType::FileChunk => ClientMsg::FileChunk { id: r.u64()?, offset: r.u64()?, data: r.data()? },
            MsgType::FileDone => ClientMsg::FileDone { id: r.u64()?, sha256: r.sha256()? },
            MsgType::ListFiles => ClientMsg::ListFiles,
            MsgType::FileGet => ClientMsg::FileGet { id: r.u64()? },
            other => return Err(K::WrongDirection(other.json_name())),
        };
        r.finish()?;
        Ok(msg)
    })();
    msg.map(|m| Some((m, total))).map_err(|k| DecodeError::skip(k, total))
}

/// Decodes one server→client message. See the module docs for the error contract.
pub fn decode_server<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(ServerMsg<'a>, usize)>, DecodeError> {
    let Some((h, body, total)) = frame(buf, limits)? else { return Ok(None) };
    let mut r = Reader { buf: body, limits };
    let msg = (|| {
        let t = MsgType::from_code(h.msg_type).ok_or(K::UnknownType(h.msg_type.to_string()))?;
        let msg = match t {
            MsgType::LoginAck => ServerMsg::LoginAck { username: r.name("username")?, room: r.name("room")? },
            MsgType::LoginReject => {
                ServerMsg::LoginReject { code: ErrorCode::from_u8(r.u8()?), reason: r.text("reason")? }
            }
            MsgType::RoomMsg => ServerMsg::RoomMsg {
                id: r.u64()?,
                ts_ms: r.u64()?,
                room: r.name("room")?,
                from: r.name("from")?,
                text: r.text("text")?,
                history: h.flags & FLAG_HISTORY != 0,
            },
            MsgType::PrivateMsgDelivery => ServerMsg::PrivateMsgDelivery {
                ts_ms: r.u64()?,
                from: r.name("from")?,
                to: r.name("to")?,
                text: r.text("text")?,
            },
            MsgType::JoinRoom => ServerMsg::JoinRoom { room: r.name("room")? },
            MsgType::ListUsers => {
                let room = r.name("room")?;
                let n = r.u16()? as usize;
                let mut users = Vec::with_capacity(n.min(r.buf.len()));
                for _ in 0..n {
                    users.push(r.name("users")?);
                }
                ServerMsg::ListUsers { room, users }
            }
            MsgType::ListRooms => {
                let n = r.u16()? as usize;
                let mut rooms = Vec::with_capacity(n.min(r.buf.len()));
                for _ in 0..n {
                    rooms.push((r.name("rooms")?, r.u32()?));
                }
                ServerMsg::ListRooms { rooms }
            }
            MsgType::SystemMsg => ServerMsg::SystemMsg {
                kind: SystemKind::from_u8(r.u8()?),
                room: r.name("room")?,
                user: r.name("user")?,
                text: r.text("text")?,
            },
            MsgType::ErrorMsg => ServerMsg::ErrorMsg { code: ErrorCode::from_u8(r.u8()?), text: r.text("text")? },
            MsgType::RoomMsgAck => ServerMsg::RoomMsgAck { id: r.u64()?, ts_ms: r.u64()? },
            MsgType::Ping => ServerMsg::Ping { token: r.u64()? },
            MsgType::Pong => ServerMsg::Pong { token: r.u64()? },
            MsgType::Time => ServerMsg::Time { ts_ms: r.u64()? },
            MsgType::Admin => ServerMsg::Admin { text: r.text("text")? },
            MsgType::FileAccept => ServerMsg::FileAccept { id: r.u64()? },
            MsgType::FileChunk => ServerMsg::FileChunk { id: r.u64()?, offset: r.u64()?, data: r.data()? },
            MsgType::FileDone => ServerMsg::FileDone { id: r.u64()?, sha256: r.sha256()? },
            MsgType::FileAvailable => ServerMsg::FileAvailable {
                id: r.u64()?,
                name: r.name("name")?,
                size: r.u64()?,
                from: r.name("from")?,
                room: r.name("room")?,
            },
            MsgType::ListFiles => {
                let room = r.name("room")?;
                let n = r.u16()? as usize;
                let mut files = Vec::with_capacity(n.min(r.buf.len()));
                for _ in 0..n {
                    files.push(FileEntry {
                        id: r.u64()?,
                        name: r.name("name")?,
                        size: r.u64()?,
                        from: r.name("from")?,
                    });
                }
                ServerMsg::ListFiles { room, files }
            }
            other => return Err(K::WrongDirection(other.json_name())),
        };
        r.finish()?;
        Ok(msg)
    })();
    msg.map(|m| Some((m, total))).map_err(|k| DecodeError::skip(k, total))
}

/// Cursor over a frame body. Every read checks the remaining length first.
struct Reader<'a, 'l> {
    /// The unread rest of the body.
    buf: &'a [u8],
    limits: &'l Limits,
}

impl<'a> Reader<'a, '_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], K> {
        if self.buf.len() < n {
            return Err(K::Malformed(format!("body: `{what}` runs past the end of the frame")));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, K> {
        Ok(self.take(1, "u8")?[0])
    }
    fn u16(&mut self) -> Result<u16, K> {
        let b = self.take(2, "u16")?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, K> {
        let b = self.take(4, "u32")?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, K> {
        let b = self.take(8, "u64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn utf8(bytes: &'a [u8], field: &'static str) -> Result<Cow<'a, str>, K> {
        std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|_| K::BadUtf8(field))
    }
    /// A u8-length-prefixed UTF-8 name.
    fn name(&mut self, field: &'static str) -> Result<Cow<'a, str>, K> {
        let n = self.u8()? as usize;
        Self::utf8(self.take(n, field)?, field)
    }
    /// A u16-length-prefixed UTF-8 text, at most `max_text` bytes.
    fn text(&mut self, field: &'static str) -> Result<Cow<'a, str>, K> {
        let n = self.u16()? as usize;
        if n > self.limits.max_text {
            return Err(K::FieldTooLong { field, len: n, max: self.limits.max_text });
        }
        Self::utf8(self.take(n, field)?, field)
    }
    /// A SHA-256 digest: 32 raw bytes.
    fn sha256(&mut self) -> Result<[u8; 32], K> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32, "sha256")?);
        Ok(a)
    }
    /// A u32-length-prefixed run of raw bytes (file data), bounded by the frame itself.
    fn data(&mut self) -> Result<Cow<'a, [u8]>, K> {
        let n = self.u32()? as usize;
        Ok(Cow::Borrowed(self.take(n, "data")?))
    }
    fn finish(&self) -> Result<(), K> {
        if !self.buf.is_empty() {
            return Err(K::Malformed(format!("body: {} unexpected trailing bytes", self.buf.len())));
        }
        Ok(())
    }
}

/// Writes a header whose length is patched by [`end`] once the body is written.
fn begin(out: &mut BytesMut, t: MsgType, flags: u8) -> usize {
    let start = out.len();
    out.put_u16(MAGIC);
    out.put_u8(VERSION);
    out.put_u8(t as u8);
    out.put_u8(flags);
    out.put_u32(0);
    start
}

fn end(out: &mut BytesMut, start: usize) {
    let body = (out.len() - start - HEADER_LEN) as u32;
    out[start + 5..start + 9].copy_from_slice(&body.to_be_bytes());
}

/// Names longer than the u8 prefix allows are cut at a char boundary; the server never produces
/// such names, this only keeps the encoder total.
fn put_name(out: &mut BytesMut, s: &str) {
    let s = truncate(s, MAX_NAME_BYTES);
    out.put_u8(s.len() as u8);
    out.put_slice(s.as_bytes());
}

fn put_text(out: &mut BytesMut, s: &str) {
    let s = truncate(s, u16::MAX as usize);
    out.put_u16(s.len() as u16);
    out.put_slice(s.as_bytes());
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A file chunk's body: id, offset, then the data with a u32 length (the frame limit bounds it).
fn put_chunk(out: &mut BytesMut, id: u64, offset: u64, data: &[u8]) {
    out.put_u64(id);
    out.put_u64(offset);
    out.put_u32(data.len() as u32);
    out.put_slice(data);
}

/// Appends the binary encoding of a client message.
pub fn encode_client(msg: &ClientMsg<'_>, out: &mut BytesMut) {
    let start = begin(out, msg.msg_type(), 0);
    match msg {
        ClientMsg::Login { username, credential } => {
            put_name(out, username);
            if let Some(c) = credential {
                put_name(out, c);
            }
        }
        ClientMsg::RoomMsg { text } => put_text(out, text),
        ClientMsg::PrivateMsg { to, text } => {
            put_name(out, to);
            put_text(out, text);
        }
        ClientMsg::JoinRoom { room } => put_name(out, room),
        ClientMsg::ListUsers | ClientMsg::ListRooms | ClientMsg::Time => {}
        ClientMsg::Ping { token } | ClientMsg::Pong { token } => out.put_u64(*token),
        ClientMsg::Admin { command } => put_text(out, command),
        ClientMsg::Register { username, password } => {
            put_name(out, username);
            put_name(out, password);
        }
        ClientMsg::FileOffer { name, size, sha256 } => {
            put_name(out, name);
            out.put_u64(*size);
            out.put_slice(sha256);
        }
        ClientMsg::FileChunk { id, offset, data } => put_chunk(out, *id, *offset, data),
        ClientMsg::FileDone { id, sha256 } => {
            out.put_u64(*id);
            out.put_slice(sha256);
        }
        ClientMsg::ListFiles => {}
        ClientMsg::FileGet { id } => out.put_u64(*id),
    }
    end(out, start);
}

/// Appends the binary encoding of a server message.
pub fn encode_server(msg: &ServerMsg<'_>, out: &mut BytesMut) {
    let flags = match msg {
        ServerMsg::RoomMsg { history: true, .. } => FLAG_HISTORY,
        _ => 0,
    };
    let start = begin(out, msg.msg_type(), flags);
    match msg {
        ServerMsg::LoginAck { username, room } => {
            put_name(out, username);
            put_name(out, room);
        }
        ServerMsg::LoginReject { code, reason: text } | ServerMsg::ErrorMsg { code, text } => {
            out.put_u8(*code as u8);
            put_text(out, text);
        }
        ServerMsg::RoomMsg { id, ts_ms, room, from, text, .. } => {
            out.put_u64(*id);
            out.put_u64(*ts_ms);
            put_name(out, room);
            put_name(out, from);
            put_text(out, text);
        }
        ServerMsg::PrivateMsgDelivery { ts_ms, from, to, text } => {
            out.put_u64(*ts_ms);
            put_name(out, from);
            put_name(out, to);
            put_text(out, text);
        }
        ServerMsg::JoinRoom { room } => put_name(out, room),
        ServerMsg::ListUsers { room, users } => {
            put_name(out, room);
            let n = users.len().min(u16::MAX as usize);
            out.put_u16(n as u16);
            users[..n].iter().for_each(|u| put_name(out, u));
        }
        ServerMsg::ListRooms { rooms } => {
            let n = rooms.len().min(u16::MAX as usize);
            out.put_u16(n as u16);
            for (name, count) in &rooms[..n] {
                put_name(out, name);
                out.put_u32(*count);
            }
        }
        ServerMsg::SystemMsg { kind, room, user, text } => {
            out.put_u8(*kind as u8);
            put_name(out, room);
            put_name(out, user);
            put_text(out, text);
        }
        ServerMsg::RoomMsgAck { id, ts_ms } => {
            out.put_u64(*id);
            out.put_u64(*ts_ms);
        }
        ServerMsg::Ping { token } | ServerMsg::Pong { token } => out.put_u64(*token),
        ServerMsg::Time { ts_ms } => out.put_u64(*ts_ms),
        ServerMsg::Admin { text } => put_text(out, text),
        ServerMsg::FileAccept { id } => out.put_u64(*id),
        ServerMsg::FileChunk { id, offset, data } => put_chunk(out, *id, *offset, data),
        ServerMsg::FileDone { id, sha256 } => {
            out.put_u64(*id);
            out.put_slice(sha256);
        }
        ServerMsg::FileAvailable { id, name, size, from, room } => {
            out.put_u64(*id);
            put_name(out, name);
            out.put_u64(*size);
            put_name(out, from);
            put_name(out, room);
        }
        ServerMsg::ListFiles { room, files } => {
            put_name(out, room);
            let n = files.len().min(u16::MAX as usize);
            out.put_u16(n as u16);
            for f in &files[..n] {
                out.put_u64(f.id);
                put_name(out, &f.name);
                out.put_u64(f.size);
                put_name(out, &f.from);
            }
        }
    }
    end(out, start);
}
