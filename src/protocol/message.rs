//! The message set: type codes, error codes, and the two directions' message enums.

use super::Str;

/// Message type codes, in the order ChatProto v1.0 defines them. Codes from 0x20 are extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MsgType {
    Login = 1,
    LoginAck = 2,
    LoginReject = 3,
    RoomMsg = 4,
    PrivateMsg = 5,
    PrivateMsgDelivery = 6,
    JoinRoom = 7,
    ListUsers = 8,
    ListRooms = 9,
    SystemMsg = 10,
    ErrorMsg = 11,
    RoomMsgAck = 12,
    /// Extension: keepalive request, either direction.
    Ping = 0x20,
    /// Extension: keepalive answer, echoes the ping's token.
    Pong = 0x21,
    /// Extension: the server's clock (request from a client, answer from the server).
    Time = 0x22,
    /// Extension: an admin console command (client) or its answer (server).
    Admin = 0x23,
    /// Extension: create an account and log in with it (`--auth accounts`).
    Register = 0x24,
    /// Extension: offer a file upload to the sender's room (`name`, `size`, `sha256`).
    FileOffer = 0x25,
    /// Extension: the server accepts a FILE_OFFER; chunks go to the id it gives.
    FileAccept = 0x26,
    /// Extension: a piece of a file, either direction (upload or download).
    FileChunk = 0x27,
    /// Extension: the end of a file's chunks, with its SHA-256, either direction.
    FileDone = 0x28,
    /// Extension: a file is available in a room (sent to the room once stored).
    FileAvailable = 0x29,
    /// Extension: list the files of my room (client) or the list (server).
    ListFiles = 0x2a,
    /// Extension: download a file by id.
    FileGet = 0x2b,
}

impl MsgType {
    /// Every defined type, for tests and tables.
    pub const ALL: [MsgType; 24] = [
        MsgType::Login,
        MsgType::LoginAck,
        MsgType::LoginReject,
        MsgType::RoomMsg,
        MsgType::PrivateMsg,
        MsgType::PrivateMsgDelivery,
        MsgType::JoinRoom,
        MsgType::ListUsers,
        MsgType::ListRooms,
        MsgType::SystemMsg,
        MsgType::ErrorMsg,
        MsgType::RoomMsgAck,
        MsgType::Ping,
        MsgType::Pong,
        MsgType::Time,
        MsgType::Admin,
        MsgType::Register,
        MsgType::FileOffer,
        MsgType::FileAccept,
        MsgType::FileChunk,
        MsgType::FileDone,
        MsgType::FileAvailable,
        MsgType::ListFiles,
        MsgType::FileGet,
    ];

    /// The type for a wire code, if defined.
    pub fn from_code(code: u8) -> Option<MsgType> {
        MsgType::ALL.iter().copied().find(|t| *t as u8 == code)
    }

    /// The JSON `"type"` value: the lower-case name.
    pub fn json_name(self) -> &'static str {
        match self {
            MsgType::Login => "login",
            MsgType::LoginAck => "login_ack",
            MsgType::LoginReject => "login_reject",
            MsgType::RoomMsg => "room_msg",
            MsgType::PrivateMsg => "private_msg",
            MsgType::PrivateMsgDelivery => "private_msg_delivery",
            MsgType::JoinRoom => "join_room",
            MsgType::ListUsers => "list_users",
            MsgType::ListRooms => "list_rooms",
            MsgType::SystemMsg => "system_msg",
            MsgType::ErrorMsg => "error_msg",
            MsgType::RoomMsgAck => "room_msg_ack",
            MsgType::Ping => "ping",
            MsgType::Pong => "pong",
            MsgType::Time => "time",
            MsgType::Admin => "admin",
            MsgType::Register => "register",
            MsgType::FileOffer => "file_offer",
            MsgType::FileAccept => "file_accept",
            MsgType::FileChunk => "file_chunk",
            MsgType::FileDone => "file_done",
            MsgType::FileAvailable => "file_available",
            MsgType::ListFiles => "list_files",
            MsgType::FileGet => "file_get",
        }
    }

    /// The type for a JSON `"type"` value.
    pub fn from_json_name(name: &str) -> Option<MsgType> {
        MsgType::ALL.iter().copied().find(|t| t.json_name() == name)
    }
}

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
    /// Anything else.
    Internal = 255,
}

impl ErrorCode {
    const ALL: [ErrorCode; 24] = [
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
    Login { username: Str<'a>, credential: Option<Str<'a>> },
    /// ROOM_MSG: text for the sender's current room. The server stamps sender, room, id and time.
    RoomMsg { text: Str<'a> },
    /// PRIVATE_MSG: text for one user, wherever they are.
    PrivateMsg { to: Str<'a>, text: Str<'a> },
    /// JOIN_ROOM: switch to `room`, creating it if new.
    JoinRoom { room: Str<'a> },
    /// LIST_USERS: who is in my room.
    ListUsers,
    /// LIST_ROOMS: every room with its member count.
    ListRooms,
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
    /// LIST_FILES: the files of my room.
    ListFiles,
    /// FILE_GET: download file `id` (of my room).
    FileGet { id: u64 },
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

impl ClientMsg<'_> {
    /// The message's type code.
    pub fn msg_type(&self) -> MsgType {
        match self {
            ClientMsg::Login { .. } => MsgType::Login,
            ClientMsg::RoomMsg { .. } => MsgType::RoomMsg,
            ClientMsg::PrivateMsg { .. } => MsgType::PrivateMsg,
            ClientMsg::JoinRoom { .. } => MsgType::JoinRoom,
            ClientMsg::ListUsers => MsgType::ListUsers,
            ClientMsg::ListRooms => MsgType::ListRooms,
            ClientMsg::Ping { .. } => MsgType::Ping,
            ClientMsg::Pong { .. } => MsgType::Pong,
            ClientMsg::Time => MsgType::Time,
            ClientMsg::Admin { .. } => MsgType::Admin,
            ClientMsg::Register { .. } => MsgType::Register,
            ClientMsg::FileOffer { .. } => MsgType::FileOffer,
            ClientMsg::FileChunk { .. } => MsgType::FileChunk,
            ClientMsg::FileDone { .. } => MsgType::FileDone,
            ClientMsg::ListFiles => MsgType::ListFiles,
            ClientMsg::FileGet { .. } => MsgType::FileGet,
        }
    }
}

/// Messages the server sends to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMsg<'a> {
    /// LOGIN_ACK: logged in as `username`, now in `room`.
    LoginAck { username: Str<'a>, room: Str<'a> },
    /// LOGIN_REJECT: why the login failed; the connection stays open for another try.
    LoginReject { code: ErrorCode, reason: Str<'a> },
    /// ROOM_MSG: a message in `room` from `from`, with the server's id and time (ms since the
    /// Unix epoch). `history` marks a replay sent on joining, not a live message.
    RoomMsg { id: u64, ts_ms: u64, room: Str<'a>, from: Str<'a>, text: Str<'a>, history: bool },
    /// PRIVATE_MSG_DELIVERY: a private message; sent to the target and echoed to the sender.
    PrivateMsgDelivery { ts_ms: u64, from: Str<'a>, to: Str<'a>, text: Str<'a> },
    /// JOIN_ROOM: the switch to `room` is done.
    JoinRoom { room: Str<'a> },
    /// LIST_USERS: the members of `room`.
    ListUsers { room: Str<'a>, users: Vec<Str<'a>> },
    /// LIST_ROOMS: every room and its member count.
    ListRooms { rooms: Vec<(Str<'a>, u32)> },
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
    /// LIST_FILES: the files of `room`.
    ListFiles { room: Str<'a>, files: Vec<FileEntry<'a>> },
}

impl ServerMsg<'_> {
    /// The message's type code.
    pub fn msg_type(&self) -> MsgType {
        match self {
            ServerMsg::LoginAck { .. } => MsgType::LoginAck,
            ServerMsg::LoginReject { .. } => MsgType::LoginReject,
            ServerMsg::RoomMsg { .. } => MsgType::RoomMsg,
            ServerMsg::PrivateMsgDelivery { .. } => MsgType::PrivateMsgDelivery,
            ServerMsg::JoinRoom { .. } => MsgType::JoinRoom,
            ServerMsg::ListUsers { .. } => MsgType::ListUsers,
            ServerMsg::ListRooms { .. } => MsgType::ListRooms,
            ServerMsg::SystemMsg { .. } => MsgType::SystemMsg,
            ServerMsg::ErrorMsg { .. } => MsgType::ErrorMsg,
            ServerMsg::RoomMsgAck { .. } => MsgType::RoomMsgAck,
            ServerMsg::Ping { .. } => MsgType::Ping,
            ServerMsg::Pong { .. } => MsgType::Pong,
            ServerMsg::Time { .. } => MsgType::Time,
            ServerMsg::Admin { .. } => MsgType::Admin,
            ServerMsg::FileAccept { .. } => MsgType::FileAccept,
            ServerMsg::FileChunk { .. } => MsgType::FileChunk,
            ServerMsg::FileDone { .. } => MsgType::FileDone,
            ServerMsg::FileAvailable { .. } => MsgType::FileAvailable,
            ServerMsg::ListFiles { .. } => MsgType::ListFiles,
        }
    }
}

fn own(s: &Str<'_>) -> Str<'static> {
    Str::Owned(s.to_string())
}

impl ClientMsg<'_> {
    /// A copy that owns its strings, for keeping a message past its read buffer.
    pub fn into_owned(self) -> ClientMsg<'static> {
        match self {
            ClientMsg::Login { username, credential } => {
                ClientMsg::Login { username: own(&username), credential: credential.as_ref().map(own) }
            }
            ClientMsg::RoomMsg { text } => ClientMsg::RoomMsg { text: own(&text) },
            ClientMsg::PrivateMsg { to, text } => ClientMsg::PrivateMsg { to: own(&to), text: own(&text) },
            ClientMsg::JoinRoom { room } => ClientMsg::JoinRoom { room: own(&room) },
            ClientMsg::ListUsers => ClientMsg::ListUsers,
            ClientMsg::ListRooms => ClientMsg::ListRooms,
            ClientMsg::Ping { token } => ClientMsg::Ping { token },
            ClientMsg::Pong { token } => ClientMsg::Pong { token },
            ClientMsg::Time => ClientMsg::Time,
            ClientMsg::Admin { command } => ClientMsg::Admin { command: own(&command) },
            ClientMsg::Register { username, password } => {
                ClientMsg::Register { username: own(&username), password: own(&password) }
            }
            ClientMsg::FileOffer { name, size, sha256 } => ClientMsg::FileOffer { name: own(&name), size, sha256 },
            ClientMsg::FileChunk { id, offset, data } => {
                ClientMsg::FileChunk { id, offset, data: Blob::Owned(data.into_owned()) }
            }
            ClientMsg::FileDone { id, sha256 } => ClientMsg::FileDone { id, sha256 },
            ClientMsg::ListFiles => ClientMsg::ListFiles,
            ClientMsg::FileGet { id } => ClientMsg::FileGet { id },
        }
    }
}

impl ServerMsg<'_> {
    /// A copy that owns its strings, for keeping a message past its read buffer.
    pub fn into_owned(self) -> ServerMsg<'static> {
        match self {
            ServerMsg::LoginAck { username, room } => {
                ServerMsg::LoginAck { username: own(&username), room: own(&room) }
            }
            ServerMsg::LoginReject { code, reason } => ServerMsg::LoginReject { code, reason: own(&reason) },
            ServerMsg::RoomMsg { id, ts_ms, room, from, text, history } => {
                ServerMsg::RoomMsg { id, ts_ms, room: own(&room), from: own(&from), text: own(&text), history }
            }
            ServerMsg::PrivateMsgDelivery { ts_ms, from, to, text } => {
                ServerMsg::PrivateMsgDelivery { ts_ms, from: own(&from), to: own(&to), text: own(&text) }
            }
            ServerMsg::JoinRoom { room } => ServerMsg::JoinRoom { room: own(&room) },
            ServerMsg::ListUsers { room, users } => {
                ServerMsg::ListUsers { room: own(&room), users: users.iter().map(own).collect() }
            }
            ServerMsg::ListRooms { rooms } => {
                ServerMsg::ListRooms { rooms: rooms.iter().map(|(r, n)| (own(r), *n)).collect() }
            }
            ServerMsg::SystemMsg { kind, room, user, text } => {
                ServerMsg::SystemMsg { kind, room: own(&room), user: own(&user), text: own(&text) }
            }
            ServerMsg::ErrorMsg { code, text } => ServerMsg::ErrorMsg { code, text: own(&text) },
            ServerMsg::RoomMsgAck { id, ts_ms } => ServerMsg::RoomMsgAck { id, ts_ms },
            ServerMsg::Ping { token } => ServerMsg::Ping { token },
            ServerMsg::Pong { token } => ServerMsg::Pong { token },
            ServerMsg::Time { ts_ms } => ServerMsg::Time { ts_ms },
            ServerMsg::Admin { text } => ServerMsg::Admin { text: own(&text) },
            ServerMsg::FileAccept { id } => ServerMsg::FileAccept { id },
            ServerMsg::FileChunk { id, offset, data } => {
                ServerMsg::FileChunk { id, offset, data: Blob::Owned(data.into_owned()) }
            }
            ServerMsg::FileDone { id, sha256 } => ServerMsg::FileDone { id, sha256 },
            ServerMsg::FileAvailable { id, name, size, from, room } => {
                ServerMsg::FileAvailable { id, name: own(&name), size, from: own(&from), room: own(&room) }
            }
            ServerMsg::ListFiles { room, files } => ServerMsg::ListFiles {
                room: own(&room),
                files: files
                    .iter()
                    .map(|f| FileEntry { id: f.id, name: own(&f.name), size: f.size, from: own(&f.from) })
                    .collect(),
            },
        }
    }
}
