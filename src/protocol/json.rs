//! JSON-lines codec: one object per `\n`-terminated line, same message set as the binary format.
//!
//! Decoding finds the newline within [`Limits::max_frame`] bytes (a longer line is fatal: the
//! stream cannot be resynchronised without buffering it), then parses the line into a flat struct
//! of borrowed fields. Strings without escapes borrow from the read buffer; only a string with
//! escapes is copied. Unknown fields are ignored so newer clients work with older servers.

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
    Ok(Some((fields, t, used)))
}

/// Decodes one client→server message from the front of `buf`.
pub fn decode_client<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(ClientMsg<'a>, usize)>, DecodeError> {
    let Some((f, t, used)) = parse(buf, limits)? else { return Ok(None) };
    let msg = client_from_fields(f, t);
    msg.map(|m| Some((m, used))).map_err(|k| DecodeError::skip(k, used))
}

fn client_from_fields(f: Fields<'_>, t: MsgType) -> Result<ClientMsg<'_>, K> {
    Ok(match t {
        MsgType::Login => ClientMsg::Login { username: req(s(f.username), "username")?, credential: s(f.credential) },
        MsgType::RoomMsg => ClientMsg::RoomMsg { text: req(s(f.text), "text")? },
        MsgType::PrivateMsg => ClientMsg::PrivateMsg { to: req(s(f.to), "to")?, text: req(s(f.text), "text")? },
        MsgType::JoinRoom => ClientMsg::JoinRoom { room: req(s(f.room), "room")? },
        MsgType::ListUsers => ClientMsg::ListUsers,
        MsgType::ListRooms => ClientMsg::ListRooms,
        MsgType::Ping => ClientMsg::Ping { token: f.token.unwrap_or(0) },
        MsgType::Pong => ClientMsg::Pong { token: f.token.unwrap_or(0) },
        MsgType::Time => ClientMsg::Time,
        MsgType::Admin => ClientMsg::Admin { command: req(s(f.text), "text")? },
        MsgType::Register => ClientMsg::Register {
            username: req(s(f.username), "username")?,
            password: req(s(f.credential), "credential")?,
        },
        MsgType::FileOffer => ClientMsg::FileOffer {
            name: req(s(f.name), "name")?,
            size: req(f.size, "size")?,
            sha256: sha256_field(f.sha256)?,
        },
        MsgType::FileChunk => {
            ClientMsg::FileChunk { id: req(f.id, "id")?, offset: req(f.offset, "offset")?, data: data_field(f.data)? }
        }
        MsgType::FileDone => ClientMsg::FileDone { id: req(f.id, "id")?, sha256: sha256_field(f.sha256)? },
        MsgType::ListFiles => ClientMsg::ListFiles,
        MsgType::FileGet => ClientMsg::FileGet { id: req(f.id, "id")? },
        other => return Err(K::WrongDirection(other.json_name())),
    })
}

/// Decodes one server→client message from the front of `buf`.
pub fn decode_server<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(ServerMsg<'a>, usize)>, DecodeError> {
    let Some((f, t, used)) = parse(buf, limits)? else { return Ok(None) };
    let msg = server_from_fields(f, t);
    msg.map(|m| Some((m, used))).map_err(|k| DecodeError::skip(k, used))
}

fn server_from_fields(f: Fields<'_>, t: MsgType) -> Result<ServerMsg<'_>, K> {
    let code = |c: Option<u8>| ErrorCode::from_u8(c.unwrap_or(ErrorCode::Internal as u8));
    Ok(match t {
        MsgType::LoginAck => {
            ServerMsg::LoginAck { username: req(s(f.username), "username")?, room: req(s(f.room), "room")? }
        }
        MsgType::LoginReject => ServerMsg::LoginReject { code: code(f.code), reason: req(s(f.reason), "reason")? },
        MsgType::RoomMsg => ServerMsg::RoomMsg {
            id: req(f.id, "id")?,
            ts_ms: req(f.ts, "ts")?,
            room: req(s(f.room), "room")?,
            from: req(s(f.from), "from")?,
            text: req(s(f.text), "text")?,
            history: f.history.unwrap_or(false),
        },
        MsgType::PrivateMsgDelivery => ServerMsg::PrivateMsgDelivery {
            ts_ms: req(f.ts, "ts")?,
            from: req(s(f.from), "from")?,
            to: req(s(f.to), "to")?,
            text: req(s(f.text), "text")?,
        },
        MsgType::JoinRoom => ServerMsg::JoinRoom { room: req(s(f.room), "room")? },
        MsgType::ListUsers => ServerMsg::ListUsers {
            room: req(s(f.room), "room")?,
            users: req(f.users, "users")?.into_iter().map(|b| b.0).collect(),
        },
        MsgType::ListRooms => {
            ServerMsg::ListRooms { rooms: req(f.rooms, "rooms")?.into_iter().map(|r| (r.name, r.users)).collect() }
        }
        MsgType::SystemMsg => ServerMsg::SystemMsg {
            kind: SystemKind::from_json_name(f.kind.as_ref().map_or("info", |k| &*k.0)),
            room: s(f.room).unwrap_or_default(),
            user: s(f.user).unwrap_or_default(),
            text: req(s(f.text), "text")?,
        },
        MsgType::ErrorMsg => ServerMsg::ErrorMsg { code: code(f.code), text: req(s(f.text), "text")? },
        MsgType::RoomMsgAck => ServerMsg::RoomMsgAck { id: req(f.id, "id")?, ts_ms: req(f.ts, "ts")? },
        MsgType::Ping => ServerMsg::Ping { token: f.token.unwrap_or(0) },
        MsgType::Pong => ServerMsg::Pong { token: f.token.unwrap_or(0) },
        MsgType::Time => ServerMsg::Time { ts_ms: req(f.ts, "ts")? },
        MsgType::Admin => ServerMsg::Admin { text: req(s(f.text), "text")? },
        MsgType::FileAccept => ServerMsg::FileAccept { id: req(f.id, "id")? },
        MsgType::FileChunk => {
            ServerMsg::FileChunk { id: req(f.id, "id")?, offset: req(f.offset, "offset")?, data: data_field(f.data)? }
        }
        MsgType::FileDone => ServerMsg::FileDone { id: req(f.id, "id")?, sha256: sha256_field(f.sha256)? },
        MsgType::FileAvailable => ServerMsg::FileAvailable {
            id: req(f.id, "id")?,
            name: req(s(f.name), "name")?,
            size: req(f.size, "size")?,
            from: req(s(f.from), "from")?,
            room: req(s(f.room), "room")?,
        },
        MsgType::ListFiles => ServerMsg::ListFiles {
            room: req(s(f.room), "room")?,
            files: req(f.files, "files")?
                .into_iter()
                .map(|e| FileEntry { id: e.id, name: e.name, size: e.size, from: e.from })
                .collect(),
        },
        other => return Err(K::WrongDirection(other.json_name())),
    })
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

fn chunk(o: &mut Out<'_>, id: u64, offset: u64, data: &[u8]) {
    (o.id, o.offset) = (Some(id), Some(offset));
    o.data = Some(base64::engine::general_purpose::STANDARD.encode(data));
}

/// Appends the JSON line of a client message.
pub fn encode_client(msg: &ClientMsg<'_>, out: &mut BytesMut) {
    let mut o = Out { ty: msg.msg_type().json_name(), ..Out::default() };
    match msg {
        ClientMsg::Login { username, credential } => {
            o.username = Some(username);
            o.credential = credential.as_deref();
        }
        ClientMsg::RoomMsg { text } => o.text = Some(text),
        ClientMsg::PrivateMsg { to, text } => {
            o.to = Some(to);
            o.text = Some(text);
        }
        ClientMsg::JoinRoom { room } => o.room = Some(room),
        ClientMsg::ListUsers | ClientMsg::ListRooms | ClientMsg::Time => {}
        ClientMsg::Ping { token } | ClientMsg::Pong { token } => o.token = Some(*token),
        ClientMsg::Admin { command } => o.text = Some(command),
        ClientMsg::Register { username, password } => {
            o.username = Some(username);
            o.credential = Some(password);
        }
        ClientMsg::FileOffer { name, size, sha256 } => {
            (o.name, o.size, o.sha256) = (Some(&**name), Some(*size), Some(sha256_hex(sha256)));
        }
        ClientMsg::FileChunk { id, offset, data } => chunk(&mut o, *id, *offset, data),
        ClientMsg::FileDone { id, sha256 } => (o.id, o.sha256) = (Some(*id), Some(sha256_hex(sha256))),
        ClientMsg::ListFiles => {}
        ClientMsg::FileGet { id } => o.id = Some(*id),
    }
    write(out, &o);
}

/// Appends the JSON line of a server message.
pub fn encode_server(msg: &ServerMsg<'_>, out: &mut BytesMut) {
    let mut o = Out { ty: msg.msg_type().json_name(), ..Out::default() };
    match msg {
        ServerMsg::LoginAck { username, room } => {
            o.username = Some(username);
            o.room = Some(room);
        }
        ServerMsg::LoginReject { code, reason } => {
            o.code = Some(*code as u8);
            o.reason = Some(reason);
        }
        ServerMsg::RoomMsg { id, ts_ms, room, from, text, history } => {
            (o.id, o.ts, o.room, o.from, o.text) =
                (Some(*id), Some(*ts_ms), Some(&**room), Some(&**from), Some(&**text));
            o.history = *history;
        }
        ServerMsg::PrivateMsgDelivery { ts_ms, from, to, text } => {
            (o.ts, o.from, o.to, o.text) = (Some(*ts_ms), Some(&**from), Some(&**to), Some(&**text));
        }
        ServerMsg::JoinRoom { room } => o.room = Some(room),
        ServerMsg::ListUsers { room, users } => {
            o.room = Some(room);
            o.users = Some(users);
        }
        ServerMsg::ListRooms { rooms } => {
            o.rooms = Some(rooms.iter().map(|(n, c)| RoomEntry { name: Cow::Borrowed(n), users: *c }).collect());
        }
        ServerMsg::SystemMsg { kind, room, user, text } => {
            o.kind = Some(kind.json_name());
            (o.room, o.user, o.text) = (Some(&**room), Some(&**user), Some(&**text));
        }
        ServerMsg::ErrorMsg { code, text } => {
            o.code = Some(*code as u8);
            o.text = Some(text);
        }
        ServerMsg::RoomMsgAck { id, ts_ms } => (o.id, o.ts) = (Some(*id), Some(*ts_ms)),
        ServerMsg::Ping { token } | ServerMsg::Pong { token } => o.token = Some(*token),
        ServerMsg::Time { ts_ms } => o.ts = Some(*ts_ms),
        ServerMsg::Admin { text } => o.text = Some(text),
        ServerMsg::FileAccept { id } => o.id = Some(*id),
        ServerMsg::FileChunk { id, offset, data } => chunk(&mut o, *id, *offset, data),
        ServerMsg::FileDone { id, sha256 } => (o.id, o.sha256) = (Some(*id), Some(sha256_hex(sha256))),
        ServerMsg::FileAvailable { id, name, size, from, room } => {
            (o.id, o.name, o.size, o.from, o.room) =
                (Some(*id), Some(&**name), Some(*size), Some(&**from), Some(&**room));
        }
        ServerMsg::ListFiles { room, files } => {
            o.room = Some(room);
            o.files = Some(
                files
                    .iter()
                    .map(|f| FileJson {
                        id: f.id,
                        name: Cow::Borrowed(&f.name),
                        size: f.size,
                        from: Cow::Borrowed(&f.from),
                    })
                    .collect(),
            );
        }
    }
    write(out, &o);
}
