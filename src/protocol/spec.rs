//! The message description: one entry per message type, read by both codecs.
//!
//! Every message type is described once, in [`for_each_message!`]: its wire code, its JSON
//! `"type"` name, and for each direction it travels in, the `ClientMsg` / `ServerMsg` variant and
//! that variant's fields in wire order, each with a [`FieldKind`] (how the field is written in
//! both formats) and, where it differs from the Rust field name, its JSON key (`ts_ms: U64 as ts`).
//!
//! The description is an "X-macro": a macro that hands the list to another macro. Each consumer
//! generates its own code from it at compile time, so the hot path stays hand-written-fast (no
//! interpretation, no allocation) while nothing repeats the list:
//!
//! - this module: [`MsgType`], its lookups, and the [`MESSAGES`] table (for tools, docs and tests);
//! - `message.rs`: `msg_type()` and `into_owned()` of `ClientMsg` / `ServerMsg`;
//! - `binary.rs` and `json.rs`: the encoders and decoders, one `match` arm per variant.
//!
//! Adding a message type is one entry here plus its variant(s) in `message.rs`. A field kind that
//! does not exist yet also needs one arm in each codec's kind macro (`bin_get!`/`bin_put!`,
//! `json_get!`/`json_put!`, `own_field!`) and, for a new JSON key, a field of `json::Fields` and
//! `json::Out`.

/// Which way a message type travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Only clients send it.
    ClientToServer,
    /// Only the server sends it.
    ServerToClient,
    /// Both send it (each direction has its own field list).
    Both,
}

/// How one field is written in each format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// Binary: u8 length + UTF-8 (a name). JSON: a required string.
    Name,
    /// Binary: a trailing `Name`, present when body bytes remain. JSON: an optional string.
    OptName,
    /// Binary: a `Name`. JSON: a string, `""` when absent.
    NameOrEmpty,
    /// Binary: u16 length + UTF-8, at most `max_text` bytes. JSON: a required string.
    Text,
    /// Binary: u64 big-endian. JSON: a required number.
    U64,
    /// Binary: u64 big-endian. JSON: a number, 0 when absent (ping tokens).
    Token,
    /// Binary: a trailing u64 big-endian, present when body bytes remain. JSON: an optional
    /// number. An absent `OptName` before a present `OptU64` is written as an empty name.
    OptU64,
    /// Binary: one byte, an [`ErrorCode`](super::ErrorCode). JSON: a number, `Internal` when absent.
    Code,
    /// Binary: one byte, a [`SystemKind`](super::SystemKind). JSON: its name, `"info"` when absent.
    SysKind,
    /// Binary: bit 0 of the header flags, not a body field. JSON: `true`, omitted when false.
    /// (ROOM_MSG `history`, REPLAY_END `gap`, HISTORY_END `more`.)
    HistoryFlag,
    /// Binary: 32 raw bytes. JSON: 64 lower-case hex digits.
    Sha256,
    /// Binary: u32 length + raw bytes. JSON: standard base64 with padding.
    Data,
    /// Binary: u16 count + that many `Name`s. JSON: an array of strings.
    Names,
    /// Binary: u16 count + (`Name`, u32) pairs. JSON: an array of `{"name","users"}` objects.
    RoomCounts,
    /// Binary: u16 count + (u64 id, `Name` name, u64 size, `Name` from). JSON: an array of
    /// `{"id","name","size","from"}` objects.
    Files,
}

/// One field of a message, in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// The Rust field name (also the name binary decode errors report).
    pub name: &'static str,
    /// The JSON key.
    pub json: &'static str,
    /// How it is written.
    pub kind: FieldKind,
}

/// The description of one message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MsgSpec {
    /// The type.
    pub ty: MsgType,
    /// The binary type code.
    pub code: u8,
    /// The JSON `"type"` value.
    pub json: &'static str,
    /// The fields of the client→server form, if clients send it.
    pub client: Option<&'static [FieldSpec]>,
    /// The fields of the server→client form, if the server sends it.
    pub server: Option<&'static [FieldSpec]>,
}

impl MsgSpec {
    /// Which way this type travels, from which forms it has.
    pub const fn direction(&self) -> Direction {
        match (self.client.is_some(), self.server.is_some()) {
            (true, true) => Direction::Both,
            (true, false) => Direction::ClientToServer,
            // Every entry has at least one form (checked by the tests).
            (false, _) => Direction::ServerToClient,
        }
    }
}

/// Hands the description of every message type to the macro `$then`.
///
/// Per type: `Type = code, "json_name" { ClientMsg::Variant { field: Kind, .. } ServerMsg::Variant
/// { .. } }`, either form optional, fields in binary wire order; `field: Kind as key` when the JSON
/// key differs from the field name. JSON objects list their keys in the fixed order of
/// `json::Out`, not in this order.
macro_rules! for_each_message {
    ($then:ident) => {
        $then! {
            /// Log in as `username`, with a credential where the server wants one.
            Login = 0x01, "login" {
                ClientMsg::Login { username: Name, credential: OptName, since: OptU64 }
            }
            /// Logged in: the name and the room the session starts in.
            LoginAck = 0x02, "login_ack" {
                ServerMsg::LoginAck { username: Name, room: Name }
            }
            /// The login failed; the connection stays open for another try.
            LoginReject = 0x03, "login_reject" {
                ServerMsg::LoginReject { code: Code, reason: Text, retry_ms: OptU64 }
            }
            /// A chat message: text from a client, the stamped message from the server.
            RoomMsg = 0x04, "room_msg" {
                ClientMsg::RoomMsg { text: Text }
                ServerMsg::RoomMsg {
                    id: U64, ts_ms: U64 as ts, room: Name, from: Name, text: Text, history: HistoryFlag
                }
            }
            /// A private message to one user.
            PrivateMsg = 0x05, "private_msg" {
                ClientMsg::PrivateMsg { to: Name, text: Text }
            }
            /// A private message delivered to its target (and echoed to its sender).
            PrivateMsgDelivery = 0x06, "private_msg_delivery" {
                ServerMsg::PrivateMsgDelivery { ts_ms: U64 as ts, from: Name, to: Name, text: Text }
            }
            /// Switch rooms (client), or the switch is done (server).
            JoinRoom = 0x07, "join_room" {
                ClientMsg::JoinRoom { room: Name, since: OptU64 }
                ServerMsg::JoinRoom { room: Name }
            }
            /// Who is in my room, a page at a time: `after` is the previous reply's `next`.
            ListUsers = 0x08, "list_users" {
                ClientMsg::ListUsers { after: OptName }
                ServerMsg::ListUsers { room: Name, users: Names, next: OptName }
            }
            /// Every room with its member count, a page at a time (see LIST_USERS).
            ListRooms = 0x09, "list_rooms" {
                ClientMsg::ListRooms { after: OptName }
                ServerMsg::ListRooms { rooms: RoomCounts, next: OptName }
            }
            /// A notice: presence in a room, or an alert for everyone.
            SystemMsg = 0x0a, "system_msg" {
                ServerMsg::SystemMsg { kind: SysKind, room: NameOrEmpty, user: NameOrEmpty, text: Text }
            }
            /// A request failed, or the connection is about to close.
            ErrorMsg = 0x0b, "error_msg" {
                ServerMsg::ErrorMsg { code: Code, text: Text }
            }
            /// The sender's room message was accepted.
            RoomMsgAck = 0x0c, "room_msg_ack" {
                ServerMsg::RoomMsgAck { id: U64, ts_ms: U64 as ts }
            }
            /// Extension: keepalive request, either direction.
            Ping = 0x20, "ping" {
                ClientMsg::Ping { token: Token }
                ServerMsg::Ping { token: Token }
            }
            /// Extension: keepalive answer, echoes the ping's token.
            Pong = 0x21, "pong" {
                ClientMsg::Pong { token: Token }
                ServerMsg::Pong { token: Token }
            }
            /// Extension: the server's clock (request from a client, answer from the server).
            Time = 0x22, "time" {
                ClientMsg::Time {}
                ServerMsg::Time { ts_ms: U64 as ts }
            }
            /// Extension: an admin console command (client) or its answer (server).
            Admin = 0x23, "admin" {
                ClientMsg::Admin { command: Text as text }
                ServerMsg::Admin { text: Text }
            }
            /// Extension: create an account and log in with it (`--auth accounts`).
            Register = 0x24, "register" {
                ClientMsg::Register { username: Name, password: Name as credential }
            }
            /// Extension: offer a file upload to the sender's room.
            FileOffer = 0x25, "file_offer" {
                ClientMsg::FileOffer { name: Name, size: U64, sha256: Sha256 }
            }
            /// Extension: the server accepts a FILE_OFFER; chunks go to the id it gives.
            FileAccept = 0x26, "file_accept" {
                ServerMsg::FileAccept { id: U64 }
            }
            /// Extension: a piece of a file, either direction (upload or download).
            FileChunk = 0x27, "file_chunk" {
                ClientMsg::FileChunk { id: U64, offset: U64, data: Data }
                ServerMsg::FileChunk { id: U64, offset: U64, data: Data }
            }
            /// Extension: the end of a file's chunks, with its SHA-256, either direction.
            FileDone = 0x28, "file_done" {
                ClientMsg::FileDone { id: U64, sha256: Sha256 }
                ServerMsg::FileDone { id: U64, sha256: Sha256 }
            }
            /// Extension: a file is available in a room (sent to the room once stored).
            FileAvailable = 0x29, "file_available" {
                ServerMsg::FileAvailable { id: U64, name: Name, size: U64, from: Name, room: Name }
            }
            /// Extension: list the files of my room (client) or the list (server), a page at a
            /// time (see LIST_USERS).
            ListFiles = 0x2a, "list_files" {
                ClientMsg::ListFiles { after: OptName }
                ServerMsg::ListFiles { room: Name, files: Files, next: OptName }
            }
            /// Extension: download a file by id.
            FileGet = 0x2b, "file_get" {
                ClientMsg::FileGet { id: U64 }
            }
            /// Extension: the end of a "since id N" replay (JOIN_ROOM or LOGIN with `since`):
            /// `last` is the newest id replayed (or N), `gap` says the history no longer held
            /// every message after N, `lost` how many it lost where known (0: unknown or none).
            ReplayEnd = 0x30, "replay_end" {
                ServerMsg::ReplayEnd { room: Name, last: U64, lost: U64, gap: HistoryFlag }
            }
            /// Extension: scroll-back: up to a page of the current room's messages older than
            /// `before` (0: the newest), answered oldest first, flagged history, then HISTORY_END.
            History = 0x31, "history" {
                ClientMsg::History { before: U64 }
            }
            /// Extension: the end of a scroll-back page; `more` says older messages exist.
            HistoryEnd = 0x32, "history_end" {
                ServerMsg::HistoryEnd { room: Name, before: U64, count: U64, more: HistoryFlag }
            }
            /// Extension: a room's joins and leaves of one coalescing interval, in one notice
            /// (names up to a cap, the rest counted).
            Presence = 0x38, "presence" {
                ServerMsg::Presence { room: Name, joined: Names, joined_more: U64, left: Names, left_more: U64 }
            }
        }
    };
}
pub(crate) use for_each_message;

/// The JSON key of a field: its own name, or the `as` key.
macro_rules! json_key {
    ($f:ident) => {
        stringify!($f)
    };
    ($f:ident $j:ident) => {
        stringify!($j)
    };
}

/// `None`, or `Some` of the field list of one form.
macro_rules! form {
    () => {
        None
    };
    ($v:ident [$($f:ident $k:ident $($j:ident)?),*]) => {
        Some(&[$(FieldSpec { name: stringify!($f), json: json_key!($f $($j)?), kind: FieldKind::$k }),*])
    };
}

/// Generates [`MsgType`] and [`MESSAGES`] from the description.
macro_rules! message_types {
    ($(
        $(#[$doc:meta])*
        $ty:ident = $code:literal, $json:literal {
            $(ClientMsg::$cv:ident { $($cf:ident: $ck:ident $(as $cj:ident)?),* $(,)? })?
            $(ServerMsg::$sv:ident { $($sf:ident: $sk:ident $(as $sj:ident)?),* $(,)? })?
        }
    )*) => {
        /// Message type codes, in the order ChatProto v1.0 defines them. Codes from 0x20 are
        /// extensions. Generated from [`for_each_message!`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum MsgType {
            $($(#[$doc])* $ty = $code,)*
        }

        impl MsgType {
            /// Every defined type, in description order.
            pub const ALL: [MsgType; MESSAGES.len()] = [$(MsgType::$ty),*];

            /// The JSON `"type"` value: the lower-case name.
            pub const fn json_name(self) -> &'static str {
                match self {
                    $(MsgType::$ty => $json,)*
                }
            }

            /// The type for a JSON `"type"` value (compares strings, allocates nothing).
            pub fn from_json_name(name: &str) -> Option<MsgType> {
                match name {
                    $($json => Some(MsgType::$ty),)*
                    _ => None,
                }
            }
        }

        /// The description of every message type, in description order.
        pub const MESSAGES: &[MsgSpec] = &[$(MsgSpec {
            ty: MsgType::$ty,
            code: $code,
            json: $json,
            client: form!($($cv [$($cf $ck $($cj)?),*])?),
            server: form!($($sv [$($sf $sk $($sj)?),*])?),
        }),*];
    };
}

for_each_message!(message_types);

/// `INDEX[code]` is the position of `code` in [`MESSAGES`], or `NO_TYPE`.
const NO_TYPE: u8 = u8::MAX;

/// Built at compile time; a duplicate code fails the build.
const INDEX: [u8; 256] = {
    assert!(MESSAGES.len() < NO_TYPE as usize);
    let mut index = [NO_TYPE; 256];
    let mut i = 0;
    while i < MESSAGES.len() {
        let code = MESSAGES[i].code as usize;
        assert!(index[code] == NO_TYPE, "two message types share a code");
        index[code] = i as u8;
        i += 1;
    }
    index
};

impl MsgType {
    /// The type for a wire code, if defined: one array index.
    #[inline]
    pub fn from_code(code: u8) -> Option<MsgType> {
        MESSAGES.get(INDEX[code as usize] as usize).map(|s| s.ty)
    }

    /// The description of this type.
    pub fn spec(self) -> &'static MsgSpec {
        // INDEX holds a valid position for the code of every MsgType: both come from the same list.
        &MESSAGES[INDEX[self as u8 as usize] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_names_and_variants_are_unique() {
        let codes: HashSet<u8> = MESSAGES.iter().map(|s| s.code).collect();
        let names: HashSet<&str> = MESSAGES.iter().map(|s| s.json).collect();
        assert_eq!(codes.len(), MESSAGES.len());
        assert_eq!(names.len(), MESSAGES.len());
        assert_eq!(MsgType::ALL.len(), MESSAGES.len());
        for s in MESSAGES {
            assert_eq!(s.ty as u8, s.code, "{:?}: the enum's discriminant is the wire code", s.ty);
            assert!(s.client.is_some() || s.server.is_some(), "{:?} travels in no direction", s.ty);
            for form in [s.client, s.server].into_iter().flatten() {
                let fields: HashSet<&str> = form.iter().map(|f| f.name).collect();
                let keys: HashSet<&str> = form.iter().map(|f| f.json).collect();
                assert_eq!(fields.len(), form.len(), "{:?}: duplicate field", s.ty);
                assert_eq!(keys.len(), form.len(), "{:?}: duplicate JSON key", s.ty);
                assert!(!keys.contains("type"), "{:?}: `type` is the message's own key", s.ty);
            }
        }
    }

    #[test]
    fn every_code_and_name_round_trips_through_the_table() {
        for code in 0..=u8::MAX {
            let by_scan = MESSAGES.iter().find(|s| s.code == code).map(|s| s.ty);
            assert_eq!(MsgType::from_code(code), by_scan, "code {code:#04x}");
        }
        for (i, t) in MsgType::ALL.into_iter().enumerate() {
            assert_eq!(t.spec(), &MESSAGES[i]);
            assert_eq!(MsgType::from_code(t as u8), Some(t));
            assert_eq!(t.json_name(), t.spec().json);
            assert_eq!(MsgType::from_json_name(t.json_name()), Some(t));
            assert_eq!(MsgType::from_json_name(&t.json_name().to_uppercase()), None);
        }
        assert_eq!(MsgType::from_json_name(""), None);
    }

    #[test]
    fn directions_follow_the_forms() {
        assert_eq!(MsgType::Login.spec().direction(), Direction::ClientToServer);
        assert_eq!(MsgType::LoginAck.spec().direction(), Direction::ServerToClient);
        assert_eq!(MsgType::RoomMsg.spec().direction(), Direction::Both);
        let count = |d| MESSAGES.iter().filter(|s| s.direction() == d).count();
        assert_eq!(
            (count(Direction::ClientToServer), count(Direction::ServerToClient), count(Direction::Both)),
            (6, 11, 11)
        );
    }

    /// The JSON decoder applies `max_text` by key, before it knows the type: every text field
    /// must use one of the keys it checks.
    #[test]
    fn every_text_field_has_a_json_key_the_text_limit_covers() {
        let forms = MESSAGES.iter().flat_map(|s| [s.client, s.server]).flatten();
        for f in forms.flatten().filter(|f| f.kind == FieldKind::Text) {
            assert!(["text", "reason"].contains(&f.json), "text field `{}` has JSON key `{}`", f.name, f.json);
        }
    }

    /// Only the last field of a form can be optional in binary (present when bytes remain), and
    /// the header flag bit is used by server ROOM_MSG (history), REPLAY_END (gap) and HISTORY_END (more).
    #[test]
    fn optional_and_flag_fields_sit_where_the_binary_format_allows() {
        for s in MESSAGES {
            for form in [s.client, s.server].into_iter().flatten() {
                for (i, f) in form.iter().enumerate() {
                    if matches!(f.kind, FieldKind::OptName | FieldKind::OptU64) {
                        let rest = &form[i + 1..];
                        let all_optional =
                            rest.iter().all(|g| matches!(g.kind, FieldKind::OptU64 | FieldKind::HistoryFlag));
                        assert!(all_optional, "{:?}: optional field `{}` is followed by a required one", s.ty, f.name);
                    }
                }
            }
        }
        let flagged: Vec<MsgType> = MESSAGES
            .iter()
            .filter(|s| {
                s.server
                    .into_iter()
                    .flatten()
                    .chain(s.client.into_iter().flatten())
                    .any(|f| f.kind == FieldKind::HistoryFlag)
            })
            .map(|s| s.ty)
            .collect();
        assert_eq!(flagged, [MsgType::RoomMsg, MsgType::ReplayEnd, MsgType::HistoryEnd]);
    }
}
