//! The message set: error codes and the two directions' message enums.
//!
//! The enums are written out here, with their documentation; `msg_type()` and `into_owned()` are
//! generated from the description in `spec.rs`, like the codecs.

use super::spec::{for_each_message, MsgType};
use super::Str;

/// Error codes carried by `ERROR_MSG` and `LOGIN_REJECT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame did not start with 0x4350.
    BadMagic = 1,
    /// The version byte was not 1.
    BadVersion = 2,
    /// Unknown type code (or a type not valid from a client).
    UnknownType = 3,
    /// Reserved flag bits were set.
    BadFlags = 4,
    /// The frame or JSON line was longer than the server's limit.
    FrameTooLarge = 5,
    /// The body did not match the type's layout, or JSON was not valid.
    Malformed = 6,
    /// A text field was not valid UTF-8.
    BadUtf8 = 7,
    /// A field was longer than its limit.
    FieldTooLong = 8,
    /// Only LOGIN is accepted before login.
    NotLoggedIn = 9,
    /// LOGIN was sent twice.
    AlreadyLoggedIn = 10,
    /// A user name breaks the naming rules.
    InvalidUsername = 11,
    /// The user name is in use by someone online.
    UsernameTaken = 12,
    /// The private message's target is not online.
    UnknownUser = 13,
    /// A room name breaks the naming rules.
    InvalidRoom = 14,
    /// An empty message text.
    EmptyText = 15,
    /// The client sends faster than its rate limit.
    RateLimited = 16,
    /// The client reads slower than the room produces; it is being disconnected.
    SlowConsumer = 17,
    /// The server (or this client's address) is at its connection limit.
    ServerFull = 18,
    /// Authentication failed.
    AuthFailed = 19,
    /// A deadline passed (login, handshake, idle).
    Timeout = 20,
    /// The server is shutting down.
    ShuttingDown = 21,
    /// The request needs a privilege this session lacks (admin commands).
    Forbidden = 22,
    /// A file transfer was refused: over the size cap or the disk quota, a bad chunk, a wrong
    /// SHA-256, an unknown file id.
    FileRefused = 23,
    /// An administrator banned this name for a while (kick with a ban): do not reconnect
    /// automatically; LOGIN_REJECT's `retry_ms` says how long the ban still lasts.
    Banned = 24,
    /// Anything else.
    Internal = 255,
}

impl ErrorCode {
    const ALL: [ErrorCode; 25] = [
        ErrorCode::BadMagic,
        ErrorCode::BadVersion,
        ErrorCode::UnknownType,
        ErrorCode::BadFlags,
        ErrorCode::FrameTooLarge,
        ErrorCode::Malformed,
        ErrorCode::BadUtf8,
        ErrorCode::FieldTooLong,
        ErrorCode::NotLoggedIn,
        ErrorCode::AlreadyLoggedIn,
        ErrorCode::InvalidUsername,
        ErrorCode::UsernameTaken,
        ErrorCode::UnknownUser,
        ErrorCode::InvalidRoom,
        ErrorCode::EmptyText,
        ErrorCode::RateLimited,
        ErrorCode::SlowConsumer,
        ErrorCode::ServerFull,
        ErrorCode::AuthFailed,
        ErrorCode::Timeout,
        ErrorCode::ShuttingDown,
        ErrorCode::Forbidden,
        ErrorCode::FileRefused,
        ErrorCode::Banned,
        ErrorCode::Internal,
    ];

    /// The code for a wire byte; unknown bytes read as [`ErrorCode::Internal`] so that a newer
    /// server's codes never break an older client.
    pub fn from_u8(code: u8) -> ErrorCode {
        ErrorCode::ALL.iter().copied().find(|c| *c as u8 == code).unwrap_or(ErrorCode::Internal)
    }
}

/// What a `SYSTEM_MSG` reports. Presence notices carry the user they are about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum SystemKind {
    /// Plain information from the server.
    Info = 0,
    /// `user` joined `room`.
    Join = 1,
    /// `user` left `room` for another room.
    Leave = 2,
    /// `user` disconnected from `room`.
    Disconnect = 3,
    /// An alert broadcast by an administrator.
    Alert = 4,
}

impl SystemKind {
    /// The kind for a wire byte; unknown bytes read as `Info`.
    pub fn from_u8(b: u8) -> SystemKind {
        match b {
            1 => SystemKind::Join,
            2 => SystemKind::Leave,
            3 => SystemKind::Disconnect,
            4 => SystemKind::Alert,
            _ => SystemKind::Info,
        }
    }
    /// JSON name of the kind.
    pub fn json_name(self) -> &'static str {
        match self {
            SystemKind::Info => "info",
            SystemKind::Join => "join",
            SystemKind::Leave => "leave",
            SystemKind::Disconnect => "disconnect",
            SystemKind::Alert => "alert",
        }
    }
    /// Kind for a JSON name; unknown names read as `Info`.
    pub fn from_json_name(s: &str) -> SystemKind {
        match s {
            "join" => SystemKind::Join,
            "leave" => SystemKind::Leave,
            "disconnect" => SystemKind::Disconnect,
            "alert" => SystemKind::Alert,
            _ => SystemKind::Info,
        }
    }
}

/// Messages a client sends to the server. String fields borrow from the decoder's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMsg<'a> {
    /// LOGIN: the user name, and a credential (passkey or password) where the server wants one.
    /// `since`: resume the room the session lands in after message id N (only newer messages
    /// are replayed, then REPLAY_END).
    Login { username: Str<'a>, credential: Option<Str<'a>>, since: Option<u64> },
    /// ROOM_MSG: text for the sender's current room. The server stamps sender, room, id and time.
    RoomMsg { text: Str<'a> },
    /// PRIVATE_MSG: text for one user, wherever they are.
    PrivateMsg { to: Str<'a>, text: Str<'a> },
    /// JOIN_ROOM: switch to `room`, creating it if new. `since`: replay only messages newer
    /// than id N, then REPLAY_END.
    JoinRoom { room: Str<'a>, since: Option<u64> },
    /// LIST_USERS: who is in my room; the page after the cursor `after` (a reply's `next`), or
    /// the first page.
    ListUsers { after: Option<Str<'a>> },
    /// LIST_ROOMS: every room with its member count; paged like LIST_USERS.
    ListRooms { after: Option<Str<'a>> },
    /// PING: the server answers PONG with the same token.
    Ping { token: u64 },
    /// PONG: answer to a server PING.
    Pong { token: u64 },
    /// TIME: asks for the server's clock.
    Time,
    /// ADMIN: one admin console command line, e.g. `alert lunch is served` (admins only).
    Admin { command: Str<'a> },
    /// REGISTER: create an account `username` with `password` and log in with it.
    Register { username: Str<'a>, password: Str<'a> },
    /// FILE_OFFER: upload a file of `size` bytes whose SHA-256 is `sha256` to my room. `name` is
    /// only a label: the server stores the file under an id it generates.
    FileOffer { name: Str<'a>, size: u64, sha256: [u8; 32] },
    /// FILE_CHUNK: bytes `offset..offset + data.len()` of upload `id`, in order.
    FileChunk { id: u64, offset: u64, data: Blob<'a> },
    /// FILE_DONE: every chunk of upload `id` was sent; `sha256` repeats the offer's.
    FileDone { id: u64, sha256: [u8; 32] },
    /// LIST_FILES: the files of my room; paged like LIST_USERS.
    ListFiles { after: Option<Str<'a>> },
    /// FILE_GET: download file `id` (of my room).
    FileGet { id: u64 },
    /// HISTORY: scroll-back, up to a page of my room's messages older than id `before`
    /// (0: the newest).
    History { before: u64 },
}

/// Raw bytes of a file chunk: borrowed from the read buffer (binary) or decoded (JSON base64).
pub type Blob<'a> = std::borrow::Cow<'a, [u8]>;

/// One file of a room, as LIST_FILES lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry<'a> {
    /// The server's id of the file.
    pub id: u64,
    /// The uploader's file name, sanitized (a label, never a path).
    pub name: Str<'a>,
    /// Size in bytes.
    pub size: u64,
    /// Who uploaded it.
    pub from: Str<'a>,
}

/// Messages the server sends to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMsg<'a> {
    /// LOGIN_ACK: logged in as `username`, now in `room`.
    LoginAck { username: Str<'a>, room: Str<'a> },
    /// LOGIN_REJECT: why the login failed; the connection stays open for another try.
    /// `retry_ms`: how long the refusal lasts, where the server knows (a ban, a throttle).
    LoginReject { code: ErrorCode, reason: Str<'a>, retry_ms: Option<u64> },
    /// ROOM_MSG: a message in `room` from `from`, with the server's id and time (ms since the
    /// Unix epoch). `history` marks a replay sent on joining, not a live message.
    RoomMsg { id: u64, ts_ms: u64, room: Str<'a>, from: Str<'a>, text: Str<'a>, history: bool },
    /// PRIVATE_MSG_DELIVERY: a private message; sent to the target and echoed to the sender.
    PrivateMsgDelivery { ts_ms: u64, from: Str<'a>, to: Str<'a>, text: Str<'a> },
    /// JOIN_ROOM: the switch to `room` is done.
    JoinRoom { room: Str<'a> },
    /// LIST_USERS: the members of `room`, one page; `next` (an opaque cursor) when more follow:
    /// send it back as the request's `after` for the next page.
    ListUsers { room: Str<'a>, users: Vec<Str<'a>>, next: Option<Str<'a>> },
    /// LIST_ROOMS: rooms and their member counts, one page; `next` as in LIST_USERS.
    ListRooms { rooms: Vec<(Str<'a>, u32)>, next: Option<Str<'a>> },
    /// SYSTEM_MSG: a notice for a room (presence) or for everyone (alerts).
    SystemMsg { kind: SystemKind, room: Str<'a>, user: Str<'a>, text: Str<'a> },
    /// ERROR_MSG: a request failed, or the connection is about to be closed.
    ErrorMsg { code: ErrorCode, text: Str<'a> },
    /// ROOM_MSG_ACK: your room message was accepted as message `id` at `ts_ms`.
    RoomMsgAck { id: u64, ts_ms: u64 },
    /// PING from the server; answer with PONG.
    Ping { token: u64 },
    /// PONG answering a client PING.
    Pong { token: u64 },
    /// TIME: the server's clock, ms since the Unix epoch.
    Time { ts_ms: u64 },
    /// ADMIN: the answer to an admin command, as text (one or more lines).
    Admin { text: Str<'a> },
    /// FILE_ACCEPT: the offer is accepted; send its chunks to upload `id` (the file's future id).
    FileAccept { id: u64 },
    /// FILE_CHUNK: bytes `offset..offset + data.len()` of file `id`, in order (a download).
    FileChunk { id: u64, offset: u64, data: Blob<'a> },
    /// FILE_DONE: the last chunk of file `id` was sent; `sha256` is the stored file's hash.
    FileDone { id: u64, sha256: [u8; 32] },
    /// FILE_AVAILABLE: `from` shared file `id` (`name`, `size` bytes) in `room`.
    FileAvailable { id: u64, name: Str<'a>, size: u64, from: Str<'a>, room: Str<'a> },
    /// LIST_FILES: the files of `room`, one page; `next` as in LIST_USERS.
    ListFiles { room: Str<'a>, files: Vec<FileEntry<'a>>, next: Option<Str<'a>> },
    /// REPLAY_END: a "since id N" replay of `room` is over; `last` is the newest id sent (or
    /// N), `gap` true when history no longer held every newer message, `lost` how many were
    /// lost where known (0: none or unknown).
    ReplayEnd { room: Str<'a>, last: u64, lost: u64, gap: bool },
    /// HISTORY_END: a scroll-back page of `count` messages of `room` older than `before` was
    /// sent; `more` says older ones exist.
    HistoryEnd { room: Str<'a>, before: u64, count: u64, more: bool },
    /// PRESENCE: who joined and left `room` in one coalescing interval. `joined` and `left`
    /// list names up to a cap, in order; `joined_more` and `left_more` count the rest.
    Presence { room: Str<'a>, joined: Vec<Str<'a>>, joined_more: u64, left: Vec<Str<'a>>, left_more: u64 },
}

/// A field of a borrowed message, as its owned copy.
macro_rules! own_field {
    (Name, $v:ident) => {
        Str::Owned($v.into_owned())
    };
    (NameOrEmpty, $v:ident) => {
        Str::Owned($v.into_owned())
    };
    (Text, $v:ident) => {
        Str::Owned($v.into_owned())
    };
    (OptName, $v:ident) => {
        $v.map(|s| Str::Owned(s.into_owned()))
    };
    (Data, $v:ident) => {
        Blob::Owned($v.into_owned())
    };
    (Names, $v:ident) => {
        $v.into_iter().map(|s| Str::Owned(s.into_owned())).collect()
    };
    (RoomCounts, $v:ident) => {
        $v.into_iter().map(|(r, n)| (Str::Owned(r.into_owned()), n)).collect()
    };
    (Files, $v:ident) => {
        $v.into_iter()
            .map(|f| FileEntry {
                id: f.id,
                name: Str::Owned(f.name.into_owned()),
                size: f.size,
                from: Str::Owned(f.from.into_owned()),
            })
            .collect()
    };
    // Plain values: U64, OptU64, Token, Code, SysKind, HistoryFlag, Sha256.
    ($kind:ident, $v:ident) => {
        $v
    };
}

/// Generates `msg_type()` and `into_owned()` for one direction's enum from the description.
macro_rules! message_impls {
    ($(
        $(#[$doc:meta])*
        $ty:ident = $code:literal, $json:literal {
            $(ClientMsg::$cv:ident { $($cf:ident: $ck:ident $(as $cj:ident)?),* $(,)? })?
            $(ServerMsg::$sv:ident { $($sf:ident: $sk:ident $(as $sj:ident)?),* $(,)? })?
        }
    )*) => {
        impl ClientMsg<'_> {
            /// The message's type code.
            pub fn msg_type(&self) -> MsgType {
                match self {
                    $($(ClientMsg::$cv { .. } => MsgType::$ty,)?)*
                }
            }

            /// A copy that owns its strings, for keeping a message past its read buffer.
            pub fn into_owned(self) -> ClientMsg<'static> {
                match self {
                    $($(ClientMsg::$cv { $($cf),* } => ClientMsg::$cv { $($cf: own_field!($ck, $cf)),* },)?)*
                }
            }
        }

        impl ServerMsg<'_> {
            /// The message's type code.
            pub fn msg_type(&self) -> MsgType {
                match self {
                    $($(ServerMsg::$sv { .. } => MsgType::$ty,)?)*
                }
            }

            /// A copy that owns its strings, for keeping a message past its read buffer.
            pub fn into_owned(self) -> ServerMsg<'static> {
                match self {
                    $($(ServerMsg::$sv { $($sf),* } => ServerMsg::$sv { $($sf: own_field!($sk, $sf)),* },)?)*
                }
            }
        }
    };
}

for_each_message!(message_impls);
