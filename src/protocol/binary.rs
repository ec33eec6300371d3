//! ChatProto v1.0 binary codec: 9-byte `!HBBBL` header, length-prefixed UTF-8 fields.
//!
//! Decoding checks the header (magic, version, length against [`Limits::max_frame`]) as soon as
//! nine bytes are there, before any body is buffered, then parses the body in place: every string
//! in the returned message borrows from the input slice.
//!
//! The per-message code (which fields, in which order) is generated from the description in
//! `spec.rs`; this module says how each field *kind* is read and written.

use super::spec::for_each_message;
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

/// One whole frame at the front of a buffer.
struct Frame<'a> {
    header: Header,
    /// The body: `header.body_len` bytes.
    body: &'a [u8],
    /// Header plus body: how many bytes the frame uses.
    total: usize,
}

/// Splits one whole frame off the front of `buf`, or `Ok(None)` until it is all there.
fn frame<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<Frame<'a>>, DecodeError> {
    let Some(header) = parse_header(buf, limits)? else { return Ok(None) };
    let total = HEADER_LEN + header.body_len;
    if buf.len() < total {
        return Ok(None);
    }
    if header.flags & !KNOWN_FLAGS != 0 {
        return Err(DecodeError::skip(K::BadFlags(header.flags), total));
    }
    Ok(Some(Frame { header, body: &buf[HEADER_LEN..total], total }))
}

/// Decodes one frame with `body_of`, one direction's body reader; every body error skips the frame.
#[inline]
fn decode<'a, M>(
    buf: &'a [u8],
    limits: &Limits,
    body_of: impl FnOnce(&Header, &mut Reader<'a, '_>) -> Result<M, K>,
) -> Result<Option<(M, usize)>, DecodeError> {
    let Some(Frame { header, body, total }) = frame(buf, limits)? else { return Ok(None) };
    let mut r = Reader { buf: body, limits };
    let msg = body_of(&header, &mut r).and_then(|m| r.finish().map(|()| m));
    msg.map(|m| Some((m, total))).map_err(|k| DecodeError::skip(k, total))
}

/// Decodes one client→server message. See the module docs for the error contract.
pub fn decode_client<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(ClientMsg<'a>, usize)>, DecodeError> {
    decode(buf, limits, client_body)
}

/// Decodes one server→client message. See the module docs for the error contract.
pub fn decode_server<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(ServerMsg<'a>, usize)>, DecodeError> {
    decode(buf, limits, server_body)
}

/// The error for a code no variant of this direction has: unknown, or the other direction's.
#[cold]
fn unexpected(code: u8) -> K {
    match MsgType::from_code(code) {
        Some(t) => K::WrongDirection(t.json_name()),
        None => K::UnknownType(code.to_string()),
    }
}

/// Reads one field of kind `$kind` (a [`FieldKind`](super::spec::FieldKind) name).
macro_rules! bin_get {
    (Name, $r:ident, $h:ident, $f:ident) => {
        $r.name(stringify!($f))?
    };
    (NameOrEmpty, $r:ident, $h:ident, $f:ident) => {
        $r.name(stringify!($f))?
    };
    (OptName, $r:ident, $h:ident, $f:ident) => {
        if $r.buf.is_empty() {
            None
        } else {
            // An empty name followed by more fields is a placeholder for an absent one.
            Some($r.name(stringify!($f))?).filter(|n| !n.is_empty() || $r.buf.is_empty())
        }
    };
    (OptU64, $r:ident, $h:ident, $f:ident) => {
        if $r.buf.is_empty() {
            None
        } else {
            Some($r.u64()?)
        }
    };
    (Text, $r:ident, $h:ident, $f:ident) => {
        $r.text(stringify!($f))?
    };
    (U64, $r:ident, $h:ident, $f:ident) => {
        $r.u64()?
    };
    (Token, $r:ident, $h:ident, $f:ident) => {
        $r.u64()?
    };
    (Code, $r:ident, $h:ident, $f:ident) => {
        ErrorCode::from_u8($r.u8()?)
    };
    (SysKind, $r:ident, $h:ident, $f:ident) => {
        SystemKind::from_u8($r.u8()?)
    };
    (HistoryFlag, $r:ident, $h:ident, $f:ident) => {
        $h.flags & FLAG_HISTORY != 0
    };
    (Sha256, $r:ident, $h:ident, $f:ident) => {
        $r.sha256()?
    };
    (Data, $r:ident, $h:ident, $f:ident) => {
        $r.data()?
    };
    (Names, $r:ident, $h:ident, $f:ident) => {
        $r.names(stringify!($f))?
    };
    (RoomCounts, $r:ident, $h:ident, $f:ident) => {
        $r.room_counts(stringify!($f))?
    };
    (Files, $r:ident, $h:ident, $f:ident) => {
        $r.files()?
    };
}

/// Writes one field of kind `$kind`; `$start` is where the frame's header begins.
macro_rules! bin_put {
    (Name, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        put_name($out, $v)
    };
    (NameOrEmpty, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        put_name($out, $v)
    };
    (OptName, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        match $v {
            Some(s) => put_name($out, s),
            // Written as an empty name only if a later optional field is present.
            None => $pad = true,
        }
    };
    (OptU64, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        if let Some(n) = $v {
            if $pad {
                $out.put_u8(0);
            }
            $out.put_u64(*n)
        }
    };
    (Text, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        put_text($out, $v)
    };
    (U64, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        $out.put_u64(*$v)
    };
    (Token, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        $out.put_u64(*$v)
    };
    (Code, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        $out.put_u8(*$v as u8)
    };
    (SysKind, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        $out.put_u8(*$v as u8)
    };
    (HistoryFlag, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        if *$v {
            $out[$start + 4] |= FLAG_HISTORY
        }
    };
    (Sha256, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        $out.put_slice($v)
    };
    (Data, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        put_data($out, $v)
    };
    (Names, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        put_list($out, $v, |out, u| put_name(out, u))
    };
    (RoomCounts, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        put_list($out, $v, |out, (name, count)| {
            put_name(out, name);
            out.put_u32(*count);
        })
    };
    (Files, $out:ident, $start:ident, $pad:ident, $v:ident) => {
        put_list($out, $v, put_file)
    };
}

/// Generates the body decoders and the encoders from the description in `spec.rs`.
macro_rules! binary_codec {
    ($(
        $(#[$doc:meta])*
        $ty:ident = $code:literal, $json:literal {
            $(ClientMsg::$cv:ident { $($cf:ident: $ck:ident $(as $cj:ident)?),* $(,)? })?
            $(ServerMsg::$sv:ident { $($sf:ident: $sk:ident $(as $sj:ident)?),* $(,)? })?
        }
    )*) => {
        /// Reads a client message's body, fields in wire order.
        fn client_body<'a>(h: &Header, r: &mut Reader<'a, '_>) -> Result<ClientMsg<'a>, K> {
            Ok(match h.msg_type {
                $($($code => ClientMsg::$cv { $($cf: bin_get!($ck, r, h, $cf)),* },)?)*
                code => return Err(unexpected(code)),
            })
        }

        /// Reads a server message's body, fields in wire order.
        fn server_body<'a>(h: &Header, r: &mut Reader<'a, '_>) -> Result<ServerMsg<'a>, K> {
            Ok(match h.msg_type {
                $($($code => ServerMsg::$sv { $($sf: bin_get!($sk, r, h, $sf)),* },)?)*
                code => return Err(unexpected(code)),
            })
        }

        /// Appends the binary encoding of a client message.
        pub fn encode_client(msg: &ClientMsg<'_>, out: &mut BytesMut) {
            // One dispatch: each arm writes its header with a constant type code.
            let start = match msg {
                $($(ClientMsg::$cv { $($cf),* } => {
                    let start = begin(out, MsgType::$ty);
                    #[allow(unused_mut, unused_variables, unused_assignments)]
                    let mut pad = false;
                    $(bin_put!($ck, out, start, pad, $cf);)*
                    // Read once, so a message ending in an absent optional field warns nothing.
                    let _ = pad;
                    start
                })?)*
            };
            end(out, start);
        }

        /// Appends the binary encoding of a server message.
        pub fn encode_server(msg: &ServerMsg<'_>, out: &mut BytesMut) {
            // One dispatch: each arm writes its header with a constant type code.
            let start = match msg {
                $($(ServerMsg::$sv { $($sf),* } => {
                    let start = begin(out, MsgType::$ty);
                    #[allow(unused_mut, unused_variables, unused_assignments)]
                    let mut pad = false;
                    $(bin_put!($sk, out, start, pad, $sf);)*
                    // Read once, so a message ending in an absent optional field warns nothing.
                    let _ = pad;
                    start
                })?)*
            };
            end(out, start);
        }
    };
}

for_each_message!(binary_codec);

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
    /// A u16 count, then that many items. The capacity is bounded by the bytes left, so a bogus
    /// count reserves no more than the frame could hold.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, K>) -> Result<Vec<T>, K> {
        let n = self.u16()? as usize;
        let mut items = Vec::with_capacity(n.min(self.buf.len()));
        for _ in 0..n {
            items.push(item(self)?);
        }
        Ok(items)
    }
    /// A list of names (LIST_USERS).
    fn names(&mut self, field: &'static str) -> Result<Vec<Cow<'a, str>>, K> {
        self.list(|r| r.name(field))
    }
    /// A list of (room, member count) pairs (LIST_ROOMS).
    fn room_counts(&mut self, field: &'static str) -> Result<Vec<(Cow<'a, str>, u32)>, K> {
        self.list(|r| Ok((r.name(field)?, r.u32()?)))
    }
    /// A list of file entries (LIST_FILES).
    fn files(&mut self) -> Result<Vec<FileEntry<'a>>, K> {
        self.list(|r| Ok(FileEntry { id: r.u64()?, name: r.name("name")?, size: r.u64()?, from: r.name("from")? }))
    }
    fn finish(&self) -> Result<(), K> {
        if !self.buf.is_empty() {
            return Err(K::Malformed(format!("body: {} unexpected trailing bytes", self.buf.len())));
        }
        Ok(())
    }
}

/// Writes a header with no flags and a zero length: a flag field sets its bit as the body is
/// written, and [`end`] patches the length once it is known.
fn begin(out: &mut BytesMut, t: MsgType) -> usize {
    let start = out.len();
    out.put_u16(MAGIC);
    out.put_u8(VERSION);
    out.put_u8(t as u8);
    out.put_u8(0);
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

/// File data: a u32 length (the frame limit bounds it), then the bytes.
fn put_data(out: &mut BytesMut, data: &[u8]) {
    out.put_u32(data.len() as u32);
    out.put_slice(data);
}

/// A u16 count, then each item; lists longer than a u16 counts are cut (the server never sends
/// such lists, this only keeps the encoder total).
fn put_list<T>(out: &mut BytesMut, items: &[T], mut put: impl FnMut(&mut BytesMut, &T)) {
    let n = items.len().min(u16::MAX as usize);
    out.put_u16(n as u16);
    items[..n].iter().for_each(|item| put(out, item));
}

/// One LIST_FILES entry: id, name, size, uploader.
fn put_file(out: &mut BytesMut, f: &FileEntry<'_>) {
    out.put_u64(f.id);
    put_name(out, &f.name);
    out.put_u64(f.size);
    put_name(out, &f.from);
}
