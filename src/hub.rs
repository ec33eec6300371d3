//! The chat semantics: login, rooms, room and private messages, lists and presence notices.
//!
//! The hub sees decoded messages and connection keys, never sockets or bytes. A room message is
//! encoded at most once per wire format present in the room, and every member's queue gets a
//! clone of that shared `Bytes` (a refcount, not a copy).

use crate::connection::{Peers, Session};
use crate::protocol::validate::{check_room, check_username, DEFAULT_ROOM};
use crate::protocol::{ClientMsg, ErrorCode, ServerMsg, SystemKind, WireFormat};
use crate::room::{Membership, RoomId, Rooms};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

/// Counters the hub keeps (published by the server loop).
#[derive(Clone, Copy, Debug, Default)]
pub struct HubCounters {
    /// Successful logins.
    pub logins: u64,
    /// Room messages accepted.
    pub room_msgs: u64,
    /// Private messages delivered.
    pub private_msgs: u64,
    /// Room-message deliveries queued (one per recipient).
    pub deliveries: u64,
}

/// Users and rooms of one server.
pub struct Hub {
    /// Online users by case-folded name. Invariant: each key's connection has a session.
    users: HashMap<Box<str>, usize>,
    /// Rooms and their members.
    rooms: Rooms,
    /// The id the next room message gets; ids are unique and increasing per server.
    next_id: u64,
    /// Milliseconds since the Unix epoch, refreshed once per loop turn by [`Hub::set_now`].
    now_ms: u64,
    /// Scratch for case folding, reused to avoid an allocation per lookup.
    fold_buf: String,
    /// What the hub has done so far.
    pub counters: HubCounters,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    /// An empty hub with the default room.
    pub fn new() -> Self {
        Hub {
            users: HashMap::new(),
            rooms: Rooms::new(DEFAULT_ROOM),
            next_id: 1,
            now_ms: 0,
            fold_buf: String::new(),
            counters: HubCounters::default(),
        }
    }

    /// Sets the timestamp stamped on messages this loop turn.
    pub fn set_now(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// Number of users online.
    pub fn online(&self) -> usize {
        self.users.len()
    }

    /// Handles one decoded message from connection `key`.
    pub fn handle(&mut self, peers: &mut Peers, key: usize, msg: ClientMsg<'_>) {
        let logged_in = peers.conns.get(key).is_some_and(|c| c.session.is_some());
        match msg {
            ClientMsg::Login { username, .. } if !logged_in => self.login(peers, key, &username),
            ClientMsg::Login { .. } => peers.send_error(key, ErrorCode::AlreadyLoggedIn, "you are already logged in"),
            ClientMsg::Ping { token } => peers.send(key, &ServerMsg::Pong { token }),
            ClientMsg::Pong { .. } => {}
            _ if !logged_in => {
                peers.send_error(key, ErrorCode::NotLoggedIn, "log in first: only LOGIN is accepted before login")
            }
            ClientMsg::RoomMsg { text } => self.room_msg(peers, key, &text),
            ClientMsg::PrivateMsg { to, text } => self.private_msg(peers, key, &to, &text),
            ClientMsg::JoinRoom { room } => self.join(peers, key, &room),
            ClientMsg::ListUsers => self.list_users(peers, key),
            ClientMsg::ListRooms => {
                let rooms = self.rooms.list().into_iter().map(|(n, c)| (n.into(), c)).collect();
                peers.send(key, &ServerMsg::ListRooms { rooms });
            }
        }
    }

    fn login(&mut self, peers: &mut Peers, key: usize, username: &str) {
        let reject = |peers: &mut Peers, code, reason: String| {
            peers.send(key, &ServerMsg::LoginReject { code, reason: reason.into() });
        };
        if let Err(e) = check_username(username) {
            return reject(peers, ErrorCode::InvalidUsername, format!("invalid user name: {e}"));
        }
        let folded: Box<str> = fold(&mut self.fold_buf, username).into();
        if self.users.contains_key(&folded) {
            return reject(peers, ErrorCode::UsernameTaken, format!("the name {username:?} is taken"));
        }
        self.users.insert(folded, key);
        let room = self.rooms.find(DEFAULT_ROOM).unwrap_or_else(|| self.rooms.get_or_create(DEFAULT_ROOM));
        let membership = self.rooms.join(room, key);
        let name: Arc<str> = username.into();
        if let Some(conn) = peers.conns.get_mut(key) {
            conn.session = Some(Session { name: name.clone(), membership });
        }
        self.counters.logins += 1;
        peers.send(key, &ServerMsg::LoginAck { username: username.into(), room: DEFAULT_ROOM.into() });
        self.presence(peers, room, key, SystemKind::Join, &name);
    }

    fn room_msg(&mut self, peers: &mut Peers, key: usize, text: &str) {
        if text.is_empty() {
            return peers.send_error(key, ErrorCode::EmptyText, "empty message");
        }
        let Some(session) = peers.conns[key].session.as_ref() else { return };
        let (from, room) = (session.name.clone(), session.membership.room);
        let (id, ts_ms) = (self.next_id, self.now_ms);
        self.next_id += 1;
        let room_name = &self.rooms.room(room).name;
        let msg = ServerMsg::RoomMsg {
            id,
            ts_ms,
            room: (&**room_name).into(),
            from: (&*from).into(),
            text: text.into(),
            history: false,
        };
        self.counters.deliveries += self.fanout(peers, room, Some(key), &msg);
        self.counters.room_msgs += 1;
        peers.send(key, &ServerMsg::RoomMsgAck { id, ts_ms });
    }

    /// Queues `msg` for every member of `room` but `except`, encoding it at most once per format.
    /// Returns the number of recipients.
    fn fanout(&self, peers: &mut Peers, room: RoomId, except: Option<usize>, msg: &ServerMsg<'_>) -> u64 {
        let mut encoded: [Option<Bytes>; 2] = [None, None];
        let mut n = 0;
        for &member in &self.rooms.room(room).members {
            if Some(member) == except {
                continue;
            }
            let Some(format) = peers.conns.get(member).and_then(|c| c.format) else { continue };
            let slot = match format {
                WireFormat::Binary => 0,
                WireFormat::Json => 1,
            };
            let frame = match &encoded[slot] {
                Some(f) => f.clone(),
                None => encoded[slot].insert(peers.encode(format, msg)).clone(),
            };
            peers.push(member, frame);
            n += 1;
        }
        n
    }

    fn private_msg(&mut self, peers: &mut Peers, key: usize, to: &str, text: &str) {
        if text.is_empty() {
            return peers.send_error(key, ErrorCode::EmptyText, "empty message");
        }
        let Some(&target) = self.users.get(fold(&mut self.fold_buf, to)) else {
            return peers.send_error(key, ErrorCode::UnknownUser, &format!("no user named {to:?} is online"));
        };
        let from = match peers.conns[key].name() {
            Some(n) => n.to_string(),
            None => return,
        };
        let to_name = peers.conns[target].name().unwrap_or(to).to_string();
        let msg = ServerMsg::PrivateMsgDelivery {
            ts_ms: self.now_ms,
            from: from.into(),
            to: to_name.into(),
            text: text.into(),
        };
        peers.send(target, &msg);
        if target != key {
            peers.send(key, &msg);
        }
        self.counters.private_msgs += 1;
    }

    fn join(&mut self, peers: &mut Peers, key: usize, room: &str) {
        if let Err(e) = check_room(room) {
            return peers.send_error(key, ErrorCode::InvalidRoom, &format!("invalid room name: {e}"));
        }
        let Some(session) = peers.conns[key].session.as_ref() else { return };
        let (name, old) = (session.name.clone(), session.membership);
        if &*self.rooms.room(old.room).name == room {
            return peers.send(key, &ServerMsg::JoinRoom { room: room.into() });
        }
        self.leave_room(peers, key, old, SystemKind::Leave);
        let id = self.rooms.get_or_create(room);
        let membership = self.rooms.join(id, key);
        if let Some(s) = peers.conns[key].session.as_mut() {
            s.membership = membership;
        }
        peers.send(key, &ServerMsg::JoinRoom { room: room.into() });
        self.presence(peers, id, key, SystemKind::Join, &name);
    }

    /// Takes `key` out of its room, fixing the moved member's index, and tells the room.
    fn leave_room(&mut self, peers: &mut Peers, key: usize, m: Membership, kind: SystemKind) {
        let name = peers.conns[key].session.as_ref().map(|s| s.name.clone());
        // Announce before the room can vanish with its last member.
        if let Some(name) = &name {
            self.presence(peers, m.room, key, kind, name);
        }
        if let Some(moved) = self.rooms.leave(m) {
            if let Some(s) = peers.conns.get_mut(moved).and_then(|c| c.session.as_mut()) {
                s.membership.index = m.index;
            }
        }
    }

    /// Tells everyone in `room` but `who` that `who` joined, left or disconnected.
    fn presence(&self, peers: &mut Peers, room: RoomId, who: usize, kind: SystemKind, name: &str) {
        let room_name = &*self.rooms.room(room).name;
        let verb = match kind {
            SystemKind::Join => "joined",
            SystemKind::Leave => "left",
            _ => "disconnected from",
        };
        let text = format!("{name} {verb} {room_name}");
        let msg = ServerMsg::SystemMsg { kind, room: room_name.into(), user: name.into(), text: text.into() };
        self.fanout(peers, room, Some(who), &msg);
    }

    fn list_users(&self, peers: &mut Peers, key: usize) {
        let Some(session) = peers.conns[key].session.as_ref() else { return };
        let room = self.rooms.room(session.membership.room);
        let mut users: Vec<_> =
            room.members.iter().filter_map(|&m| peers.conns.get(m)?.name().map(|n| n.to_string().into())).collect();
        users.sort_unstable();
        let msg = ServerMsg::ListUsers { room: (&*room.name).into(), users };
        peers.send(key, &msg);
    }

    /// Forgets connection `key`: leaves its room with a disconnect notice and frees its name.
    /// Call before removing the connection from `peers`.
    pub fn disconnect(&mut self, peers: &mut Peers, key: usize) {
        let Some(session) = peers.conns.get(key).and_then(|c| c.session.as_ref()) else { return };
        let (name, m) = (session.name.clone(), session.membership);
        self.leave_room(peers, key, m, SystemKind::Disconnect);
        let folded: Box<str> = fold(&mut self.fold_buf, &name).into();
        self.users.remove(&folded);
        if let Some(conn) = peers.conns.get_mut(key) {
            conn.session = None;
        }
    }
}

/// Case-folds `name` into `buf` (reused, so lookups do not allocate) for case-insensitive
/// user-name uniqueness.
fn fold<'a>(buf: &'a mut String, name: &str) -> &'a str {
    buf.clear();
    buf.extend(name.chars().flat_map(char::to_lowercase));
    buf
}
