//! JSON-lines codec: one object per `\n`-terminated line, same message set as the binary format.
//!
//! Decoding finds the newline within [`Limits::max_frame`] bytes (a longer line is fatal: the
//! stream cannot be resynchronised without buffering it), then parses the line into a flat struct
//! of borrowed fields. Strings without escapes borrow from the read buffer; only a string with
//! escapes is copied. Unknown fields are ignored so newer clients work with older servers.
//!
//! The per-message code is generated from the description in `spec.rs`; this module holds the
//! JSON vocabulary ([`Fields`] to read, [`Out`] to write, one member per key, in the fixed order
//! keys are written) and says how each field *kind* maps to a JSON value.

use super::spec::for_each_message;
use super::{
    ClientMsg, DecodeError, DecodeErrorKind as K, ErrorCode, FileEntry, Limits, MsgType, ServerMsg, SystemKind,
};
use base64::Engine as _;
use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Finds the next complete line. Returns the line (without `\n`, trailing `\r` trimmed) and the
/// bytes it used. Blank lines are skipped and count toward the length of the line they precede,
/// complete or not, so a flood of newlines is bounded and the verdict never depends on how TCP
/// split the bytes.
fn next_line<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(&'a [u8], usize)>, DecodeError> {
    let mut start = 0;
    loop {
        let rest = &buf[start..];
        let window = &rest[..rest.len().min(limits.max_frame + 1)];
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = trim_ascii(&rest[..i]);
                let used = start + i + 1;
                if line.is_empty() {
                    start = used;
                    continue;
                }
                if start + i > limits.max_frame {
                    return Err(DecodeError::fatal(K::FrameTooLarge { len: start + i, max: limits.max_frame }));
                }
                return Ok(Some((line, used)));
            }
            None if window.len() > limits.max_frame || buf.len() > limits.max_frame => {
                return Err(DecodeError::fatal(K::FrameTooLarge { len: buf.len(), max: limits.max_frame }));
            }
            None => return Ok(None),
        }
    }
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !first.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !last.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    s
}

/// Every field any message may carry; which ones are required depends on `type`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Fields<'a> {
    #[serde(borrow, rename = "type")]
    ty: Option<B<'a>>,
    #[serde(borrow)]
    username: Option<B<'a>>,
    #[serde(borrow)]
    credential: Option<B<'a>>,
    #[serde(borrow)]
    text: Option<B<'a>>,
    #[serde(borrow)]
    to: Option<B<'a>>,
    #[serde(borrow)]
    from: Option<B<'a>>,
    #[serde(borrow)]
    room: Option<B<'a>>,
    #[serde(borrow)]
    user: Option<B<'a>>,
    #[serde(borrow)]
    reason: Option<B<'a>>,
    #[serde(borrow)]
    kind: Option<B<'a>>,
    #[serde(borrow)]
    users: Option<Vec<B<'a>>>,
    #[serde(borrow)]
    rooms: Option<Vec<RoomEntry<'a>>>,
    #[serde(borrow)]
    name: Option<B<'a>>,
    #[serde(borrow)]
    sha256: Option<B<'a>>,
    #[serde(borrow)]
    data: Option<B<'a>>,
    #[serde(borrow)]
    files: Option<Vec<FileJson<'a>>>,
    size: Option<u64>,
    offset: Option<u64>,
    id: Option<u64>,
    ts: Option<u64>,
    token: Option<u64>,
    code: Option<u8>,
    history: Option<bool>,
}

/// A string that borrows from the input when it has no escapes. serde borrows a bare
/// `Cow<str>` marked `#[serde(borrow)]`, but not one inside `Option` or `Vec` (serde#2016),
/// so fields wrap it in this newtype.
#[derive(Deserialize)]
#[serde(transparent)]
struct B<'a>(#[serde(borrow)] Cow<'a, str>);

/// The string of an optional field.
fn s<'a>(v: Option<B<'a>>) -> Option<Cow<'a, str>> {
    v.map(|b| b.0)
}

#[derive(Deserialize, Serialize)]
struct RoomEntry<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    users: u32,
}

/// One entry of a LIST_FILES answer.
#[derive(Deserialize, Serialize)]
struct FileJson<'a> {
    id: u64,
    #[serde(borrow)]
    name: Cow<'a, str>,
    size: u64,
    #[serde(borrow)]
    from: Cow<'a, str>,
}

/// A SHA-256 digest as 64 hex digits.
fn sha256_field(v: Option<B<'_>>) -> Result<[u8; 32], K> {
    let hex = req(v, "sha256")?.0;
    let bytes = hex.as_bytes();
    let bad = || K::Malformed("field `sha256`: expected 64 hex digits".into());
    if bytes.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// File data as standard base64 (with padding).
fn data_field(v: Option<B<'_>>) -> Result<Cow<'static, [u8]>, K> {
    let b64 = req(v, "data")?.0;
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map(Cow::Owned)
        .map_err(|e| K::Malformed(format!("field `data`: bad base64: {e}")))
}

/// Lower-case hex of a digest, for the JSON `sha256` field.
pub fn sha256_hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn req<T>(v: Option<T>, field: &'static str) -> Result<T, K> {
    v.ok_or(K::MissingField(field))
}

/// Parses one line into its fields and type; errors are recoverable (the line is skipped).
fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(Fields<'a>, MsgType, usize)>, DecodeError> {
    let Some((line, used)) = next_line(buf, limits)? else { return Ok(None) };
    parse_line(line, used, limits).map(Some)
}

/// Parses one whole JSON object (`line`, without its newline); `used` is reported in errors.
fn parse_line<'a>(line: &'a [u8], used: usize, limits: &Limits) -> Result<(Fields<'a>, MsgType, usize), DecodeError> {
    let fields: Fields<'a> = serde_json::from_slice(line).map_err(|e| {
        let kind = if e.to_string().contains("invalid unicode") || std::str::from_utf8(line).is_err() {
            K::BadUtf8("line")
        } else {
            K::Malformed(format!("JSON: {e}"))
        };
        DecodeError::skip(kind, used)
    })?;
    let ty = req(fields.ty.as_ref().map(|t| &*t.0), "type").map_err(|k| DecodeError::skip(k, used))?;
    let t = MsgType::from_json_name(ty).ok_or_else(|| DecodeError::skip(K::UnknownType(ty.to_string()), used))?;
    for (name, text) in [("text", &fields.text), ("reason", &fields.reason)] {
        if let Some(s) = text {
            if s.0.len() > limits.max_text {
                let k = K::FieldTooLong { field: name, len: s.0.len(), max: limits.max_text };
                return Err(DecodeError::skip(k, used));
            }
        }
    }
    Ok((fields, t, used))
}

/// Decodes one client→server message from the front of `buf`.
pub fn decode_client<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(ClientMsg<'a>, usize)>, DecodeError> {
    let Some((f, t, used)) = parse(buf, limits)? else { return Ok(None) };
    let msg = client_from_fields(f, t);
    msg.map(|m| Some((m, used))).map_err(|k| DecodeError::skip(k, used))
}

/// Decodes one server→client message from the front of `buf`.
pub fn decode_server<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(ServerMsg<'a>, usize)>, DecodeError> {
    let Some((f, t, used)) = parse(buf, limits)? else { return Ok(None) };
    let msg = server_from_fields(f, t);
    msg.map(|m| Some((m, used))).map_err(|k| DecodeError::skip(k, used))
}

/// Decodes one server→client message that is exactly `payload` (a WebSocket text message, no
/// newline); `used` is the length of the frame it came in.
pub fn decode_server_payload<'a>(
    payload: &'a [u8],
    used: usize,
    limits: &Limits,
) -> Result<(ServerMsg<'a>, usize), DecodeError> {
    if payload.len() > limits.max_frame {
        return Err(DecodeError::fatal(K::FrameTooLarge { len: payload.len(), max: limits.max_frame }));
    }
    let (f, t, used) = parse_line(payload, used, limits)?;
    server_from_fields(f, t).map(|m| (m, used)).map_err(|k| DecodeError::skip(k, used))
}

/// The encoder's view of a message: only the fields that type carries, in a fixed order.
#[derive(Serialize, Default)]
struct Out<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<&'a [Cow<'a, str>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<Vec<RoomEntry<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<FileJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    history: bool,
}

fn write(out: &mut BytesMut, o: &Out<'_>) {
    let mut w = out.writer();
    // Serializing plain strings and integers into memory cannot fail.
    let _ = serde_json::to_writer(&mut w, o);
    w.into_inner().put_u8(b'\n');
}

/// Reads the field `$v` (an `Option` of [`Fields`]) as kind `$kind`; `$key` names it in errors.
macro_rules! json_value {
    (Name, $v:expr, $key:ident) => {
        req(s($v), stringify!($key))?
    };
    (Text, $v:expr, $key:ident) => {
        req(s($v), stringify!($key))?
    };
    (OptName, $v:expr, $key:ident) => {
        s($v)
    };
    (NameOrEmpty, $v:expr, $key:ident) => {
        s($v).unwrap_or_default()
    };
    (U64, $v:expr, $key:ident) => {
        req($v, stringify!($key))?
    };
    (Token, $v:expr, $key:ident) => {
        $v.unwrap_or(0)
    };
    (Code, $v:expr, $key:ident) => {
        ErrorCode::from_u8($v.unwrap_or(ErrorCode::Internal as u8))
    };
    (SysKind, $v:expr, $key:ident) => {
        SystemKind::from_json_name($v.as_ref().map_or("info", |k| &*k.0))
    };
    (HistoryFlag, $v:expr, $key:ident) => {
        $v.unwrap_or(false)
    };
    (Sha256, $v:expr, $key:ident) => {
        sha256_field($v)?
    };
    (Data, $v:expr, $key:ident) => {
        data_field($v)?
    };
    (Names, $v:expr, $key:ident) => {
        req($v, stringify!($key))?.into_iter().map(|b| b.0).collect()
    };
    (RoomCounts, $v:expr, $key:ident) => {
        req($v, stringify!($key))?.into_iter().map(|r| (r.name, r.users)).collect()
    };
    (Files, $v:expr, $key:ident) => {
        req($v, stringify!($key))?
            .into_iter()
            .map(|e| FileEntry { id: e.id, name: e.name, size: e.size, from: e.from })
            .collect()
    };
}

/// Reads field `$field` (JSON key `$key` when given) of kind `$kind` from the fields `$f`.
macro_rules! json_get {
    ($kind:ident, $f:ident, $field:ident as $key:ident) => {
        json_value!($kind, $f.$key, $key)
    };
    ($kind:ident, $f:ident, $field:ident) => {
        json_value!($kind, $f.$field, $field)
    };
}

/// The [`Out`] value of the field `$v` of kind `$kind`.
macro_rules! json_out {
    (OptName, $v:ident) => {
        $v.as_deref()
    };
    (U64, $v:ident) => {
        Some(*$v)
    };
    (Token, $v:ident) => {
        Some(*$v)
    };
    (Code, $v:ident) => {
        Some(*$v as u8)
    };
    (SysKind, $v:ident) => {
        Some($v.json_name())
    };
    (HistoryFlag, $v:ident) => {
        *$v
    };
    (Sha256, $v:ident) => {
        Some(sha256_hex($v))
    };
    (Data, $v:ident) => {
        Some(base64::engine::general_purpose::STANDARD.encode($v))
    };
    (Names, $v:ident) => {
        Some(&$v[..])
    };
    (RoomCounts, $v:ident) => {
        Some($v.iter().map(|(n, c)| RoomEntry { name: Cow::Borrowed(n), users: *c }).collect())
    };
    (Files, $v:ident) => {
        Some(
            $v.iter()
                .map(|f| FileJson {
                    id: f.id,
                    name: Cow::Borrowed(&f.name),
                    size: f.size,
                    from: Cow::Borrowed(&f.from),
                })
                .collect(),
        )
    };
    // Strings: Name, NameOrEmpty, Text.
    ($kind:ident, $v:ident) => {
        Some(&**$v)
    };
}

/// Sets the [`Out`] field for `$field` (JSON key `$key` when given) of kind `$kind`.
macro_rules! json_put {
    ($kind:ident, $o:ident, $field:ident as $key:ident) => {
        $o.$key = json_out!($kind, $field)
    };
    ($kind:ident, $o:ident, $field:ident) => {
        $o.$field = json_out!($kind, $field)
    };
}

/// Generates the decoders (from [`Fields`]) and the encoders (into [`Out`]) from the description
/// in `spec.rs`.
macro_rules! json_codec {
    ($(
        $(#[$doc:meta])*
        $ty:ident = $code:literal, $json:literal {
            $(ClientMsg::$cv:ident { $($cf:ident: $ck:ident $(as $cj:ident)?),* $(,)? })?
            $(ServerMsg::$sv:ident { $($sf:ident: $sk:ident $(as $sj:ident)?),* $(,)? })?
        }
    )*) => {
        fn client_from_fields(f: Fields<'_>, t: MsgType) -> Result<ClientMsg<'_>, K> {
            Ok(match t {
                $($(MsgType::$ty => ClientMsg::$cv { $($cf: json_get!($ck, f, $cf $(as $cj)?)),* },)?)*
                other => return Err(K::WrongDirection(other.json_name())),
            })
        }

        fn server_from_fields(f: Fields<'_>, t: MsgType) -> Result<ServerMsg<'_>, K> {
            Ok(match t {
                $($(MsgType::$ty => ServerMsg::$sv { $($sf: json_get!($sk, f, $sf $(as $sj)?)),* },)?)*
                other => return Err(K::WrongDirection(other.json_name())),
            })
        }

        /// Appends the JSON line of a client message.
        pub fn encode_client(msg: &ClientMsg<'_>, out: &mut BytesMut) {
            let mut o = Out { ty: msg.msg_type().json_name(), ..Out::default() };
            match msg {
                $($(ClientMsg::$cv { $($cf),* } => { $(json_put!($ck, o, $cf $(as $cj)?);)* })?)*
            }
            write(out, &o);
        }

        /// Appends the JSON line of a server message.
        pub fn encode_server(msg: &ServerMsg<'_>, out: &mut BytesMut) {
            let mut o = Out { ty: msg.msg_type().json_name(), ..Out::default() };
            match msg {
                $($(ServerMsg::$sv { $($sf),* } => { $(json_put!($sk, o, $sf $(as $sj)?);)* })?)*
            }
            write(out, &o);
        }
    };
}

for_each_message!(json_codec);
