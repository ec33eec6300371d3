//! The chat semantics of one shard: login, rooms, room and private messages, lists, presence.
//! The seed features (authentication, history replay, admin commands, TIME) are in [`ext`],
//! their shared services in [`crate::features`].
//!
//! The hub sees decoded messages and connection keys, never sockets or bytes. A room message is
//! encoded at most once per wire format; every local member's queue gets a clone of that shared
//! `Bytes` (a refcount, not a copy), and every other shard hosting members of the room gets the
//! same `Bytes` in its next batch, never re-encoded.

mod ext;
mod files;

use crate::connection::{Peers, Session};
use crate::directory::{Directory, Frames, Remote, UserEntry};
use crate::features::{Features, StatsSource};
use crate::protocol::validate::{check_room, check_username, DEFAULT_ROOM};
use crate::protocol::{ClientMsg, ErrorCode, ServerMsg, SystemKind, WireFormat};
use crate::room::{Membership, RoomId, Rooms};
use crate::stats::StatsSnapshot;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// Counters the hub keeps (published by the server loop).
#[derive(Clone, Copy, Debug, Default)]
pub struct HubCounters {
    /// Successful logins.
    pub logins: u64,
    /// Room messages accepted.
    pub room_msgs: u64,
    /// Private messages delivered.
    pub private_msgs: u64,
    /// Room-message deliveries queued here (one per local recipient).
    pub deliveries: u64,
}

/// One shard's users and rooms, plus its link to the others.
pub struct Hub {
    /// This shard's number.
    shard: usize,
    /// Users and rooms across shards.
    dir: Arc<Directory>,
    /// Local users by case-folded name (the fast path for private messages).
    local_users: HashMap<Box<str>, usize>,
    /// Rooms with local members.
    rooms: Rooms,
    /// Sequence of the next room message here; ids are `seq * shards + shard`, so unique.
    next_seq: u64,
    /// Milliseconds since the Unix epoch, refreshed once per loop turn by [`Hub::set_now`].
    now_ms: u64,
    /// Scratch for case folding, reused to avoid an allocation per lookup.
    fold_buf: String,
    /// Work for other shards, sent once per loop turn by [`Hub::send_remote`].
    outbox: Vec<Vec<Remote>>,
    /// Rooms larger than this get no presence notices (0: no limit).
    presence_limit: usize,
    /// Set during shutdown: nobody is left to tell about departures.
    quiet: bool,
    /// Wakes this shard's loop; worker threads doing slow work (hashing, disk) use it to
    /// report back, and [`Hub::on_turn`] picks their results up.
    waker: Arc<mio::Waker>,
    /// Authentication, history and admin services shared by all shards.
    features: Arc<Features>,
    /// Connections waiting for the accounts worker, with the nonce their answer must carry.
    pending_auth: HashMap<usize, u64>,
    /// Next pending-auth nonce.
    next_nonce: u64,
    /// Connections logged in as the admin.
    admins: HashSet<usize>,
    /// File uploads in progress, by connection.
    uploads: HashMap<usize, files::Upload>,
    /// File downloads in progress, by connection.
    downloads: HashMap<usize, files::Download>,
    /// Server-wide counters for the admin `stats` command (else the features' source).
    stats_source: Option<StatsSource>,
    /// The counters at the previous `stats` command, for rates.
    last_stats: Option<(Instant, StatsSnapshot)>,
    /// What the hub has done so far.
    pub counters: HubCounters,
}

impl Hub {
    /// The hub of shard `shard`.
    pub fn new(shard: usize, dir: Arc<Directory>, presence_limit: usize, waker: Arc<mio::Waker>) -> Self {
        let outbox = (0..dir.shard_count()).map(|_| Vec::new()).collect();
        let features = dir.features().clone();
        // Ids stay unique across restarts: start above every id already in the history.
        let next_seq = features.history.max_id() / dir.shard_count().max(1) as u64 + 1;
        Hub {
            shard,
            dir,
            local_users: HashMap::new(),
            rooms: Rooms::default(),
            next_seq,
            now_ms: 0,
            fold_buf: String::new(),
            outbox,
            presence_limit,
            quiet: false,
            waker,
            features,
            pending_auth: HashMap::new(),
            next_nonce: 1,
            admins: HashSet::new(),
            uploads: HashMap::new(),
            downloads: HashMap::new(),
            stats_source: None,
            last_stats: None,
            counters: HubCounters::default(),
        }
    }

    /// Gives the admin `stats` command the server-wide counters (summed over shards).
    pub fn set_stats_source(&mut self, f: StatsSource) {
        self.stats_source = Some(f);
    }

    /// Called once per loop turn, after the turn's events: picks up results of off-loop work.
    pub fn on_turn(&mut self, peers: &mut Peers) {
        let _ = &self.waker;
        self.pump_downloads(peers);
    }

    /// Sets the timestamp stamped on messages this loop turn.
    pub fn set_now(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// Number of users logged in on this shard.
    pub fn online(&self) -> usize {
        self.local_users.len()
    }

    /// Handles one decoded message from connection `key`.
    pub fn handle(&mut self, peers: &mut Peers, key: usize, msg: ClientMsg<'_>) {
        let logged_in = peers.conns.get(key).is_some_and(|c| c.session.is_some());
        match msg {
            ClientMsg::Login { username, credential } if !logged_in => {
                self.login_request(peers, key, &username, credential.as_deref(), false)
            }
            ClientMsg::Register { username, password } if !logged_in => {
                self.login_request(peers, key, &username, Some(&password), true)
            }
            ClientMsg::Login { .. } | ClientMsg::Register { .. } => {
                peers.send_error(key, ErrorCode::AlreadyLoggedIn, "you are already logged in")
            }
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
                let rooms = self.dir.rooms().into_iter().map(|(n, c)| (n.to_string().into(), c)).collect();
                peers.send(key, &ServerMsg::ListRooms { rooms });
            }
            ClientMsg::Time => peers.send(key, &ServerMsg::Time { ts_ms: self.now_ms }),
            ClientMsg::Admin { command } => self.admin_from_client(peers, key, &command),
            ClientMsg::FileOffer { name, size, sha256 } => self.file_offer(peers, key, &name, size, sha256),
            ClientMsg::FileChunk { id, offset, data } => self.file_chunk(peers, key, id, offset, &data),
            ClientMsg::FileDone { id, sha256 } => self.file_done(peers, key, id, sha256),
            ClientMsg::ListFiles => self.list_files(peers, key),
            ClientMsg::FileGet { id } => self.file_get(peers, key, id),
        }
    }

    /// Logs `key` in as `username` once authenticated: claims the name, enters the default
    /// room, acknowledges, replays the room's history, tells the room.
    fn finish_login(&mut self, peers: &mut Peers, key: usize, username: &str, admin: bool) {
        let reject = |peers: &mut Peers, code, reason: String| {
            peers.send(key, &ServerMsg::LoginReject { code, reason: reason.into() });
        };
        if let Err(e) = check_username(username) {
            return reject(peers, ErrorCode::InvalidUsername, format!("invalid user name: {e}"));
        }
        let name: Arc<str> = username.into();
        let folded = fold(&mut self.fold_buf, username);
        if !self.dir.login(folded, UserEntry { name: name.clone(), shard: self.shard, key }) {
            return reject(peers, ErrorCode::UsernameTaken, format!("the name {username:?} is taken"));
        }
        self.local_users.insert(folded.into(), key);
        let (room, membership) = self.enter_room(key, &name, DEFAULT_ROOM);
        if let Some(conn) = peers.conns.get_mut(key) {
            conn.session = Some(Session { name: name.clone(), membership });
        }
        self.counters.logins += 1;
        if admin {
            self.admins.insert(key);
        }
        peers.send(key, &ServerMsg::LoginAck { username: username.into(), room: DEFAULT_ROOM.into() });
        self.replay(peers, key, DEFAULT_ROOM);
        self.presence(peers, room, key, SystemKind::Join, &name);
    }

    fn room_msg(&mut self, peers: &mut Peers, key: usize, text: &str) {
        if text.is_empty() {
            return peers.send_error(key, ErrorCode::EmptyText, "empty message");
        }
        let Some(session) = peers.conns[key].session.as_ref() else { return };
        let (from, room) = (session.name.clone(), session.membership.room);
        let id = self.next_seq * self.dir.shard_count() as u64 + self.shard as u64;
        let ts_ms = self.now_ms;
        self.next_seq += 1;
        let room_name = self.rooms.room(room).name.clone();
        let msg = ServerMsg::RoomMsg {
            id,
            ts_ms,
            room: (&*room_name).into(),
            from: (&*from).into(),
            text: text.into(),
            history: false,
        };
        self.broadcast(peers, room, Some(key), &msg, true);
        self.counters.room_msgs += 1;
        self.record(peers, key, (id, ts_ms), room_name, from, text);
    }

    /// Delivers `msg` to every member of `room` on every shard, except local `except`.
    /// `chat` says whether it is a room message, counted in `deliveries` (presence notices are not).
    fn broadcast(&mut self, peers: &mut Peers, room: RoomId, except: Option<usize>, msg: &ServerMsg<'_>, chat: bool) {
        let mut encoded = [None, None];
        let n = self.fanout(peers, room, except, &mut encoded, Some(msg));
        if chat {
            self.counters.deliveries += n;
        }
        let others = self.rooms.room(room).shared.shards() & !(1u64 << self.shard);
        if others == 0 {
            return;
        }
        let frames = Frames {
            binary: encoded[0].take().unwrap_or_else(|| peers.encode(WireFormat::Binary, msg)),
            json: encoded[1].take().unwrap_or_else(|| peers.encode(WireFormat::Json, msg)),
        };
        let name = &self.rooms.room(room).name;
        for shard in (0..self.outbox.len()).filter(|s| others & (1 << s) != 0) {
            self.outbox[shard].push(Remote::Room { room: name.clone(), frames: frames.clone(), chat });
        }
    }

    /// Queues a frame for every local member of `room` but `except`. `encoded` holds the frame
    /// per format (index 0 binary, 1 JSON); an empty slot is filled by encoding `msg` once.
    /// Returns the number of recipients.
    fn fanout(
        &self,
        peers: &mut Peers,
        room: RoomId,
        except: Option<usize>,
        encoded: &mut [Option<Bytes>; 2],
        msg: Option<&ServerMsg<'_>>,
    ) -> u64 {
        let mut n = 0;
        for &member in &self.rooms.room(room).members {
            if Some(member) == except {
                continue;
            }
            let Some(format) = peers.conns.get(member).and_then(|c| c.format) else { continue };
            let slot = &mut encoded[slot(format)];
            let frame = match (&*slot, msg) {
                (Some(f), _) => f.clone(),
                (None, Some(msg)) => slot.insert(peers.encode(format, msg)).clone(),
                (None, None) => continue,
            };
            peers.push(member, frame);
            n += 1;
        }
        n
    }

    /// Handles work another shard sent: deliver pre-encoded frames to local members.
    pub fn remote(&mut self, peers: &mut Peers, work: Remote) {
        match work {
            Remote::Room { room, frames, chat } => {
                let Some(id) = self.rooms.find(&room) else { return };
                let mut encoded = [Some(frames.binary), Some(frames.json)];
                let n = self.fanout(peers, id, None, &mut encoded, None);
                if chat {
                    self.counters.deliveries += n;
                }
            }
            Remote::Direct { key, user, frames } => {
                let Some(conn) = peers.conns.get(key) else { return };
                if conn.name() != Some(&*user) {
                    return;
                }
                let frame = match conn.format {
                    Some(WireFormat::Binary) => frames.binary,
                    _ => frames.json,
                };
                peers.push(key, frame);
            }
            Remote::All { frames } => self.deliver_all(peers, &frames),
            Remote::Kick { key, user } => {
                if peers.conns.get(key).and_then(|c| c.name()) == Some(&*user) {
                    ext::kick(peers, key);
                }
            }
            Remote::Done(done) => self.done(peers, done),
        }
    }

    /// Sends this turn's batches to the other shards (one wake-up per shard per turn).
    pub fn send_remote(&mut self) {
        for (shard, batch) in self.outbox.iter_mut().enumerate() {
            if !batch.is_empty() {
                self.dir.send(shard, std::mem::take(batch));
            }
        }
    }

    fn private_msg(&mut self, peers: &mut Peers, key: usize, to: &str, text: &str) {
        if text.is_empty() {
            return peers.send_error(key, ErrorCode::EmptyText, "empty message");
        }
        let folded = fold(&mut self.fold_buf, to);
        let target = match self.local_users.get(folded) {
            Some(&k) => peers.conns.get(k).and_then(|c| c.session.as_ref()).map(|s| (self.shard, k, s.name.clone())),
            None => self.dir.find_user(folded).map(|e| (e.shard, e.key, e.name)),
        };
        let Some((shard, target, to_name)) = target else {
            return peers.send_error(key, ErrorCode::UnknownUser, &format!("no user named {to:?} is online"));
        };
        let Some(from) = peers.conns[key].session.as_ref().map(|s| s.name.clone()) else { return };
        let msg = ServerMsg::PrivateMsgDelivery {
            ts_ms: self.now_ms,
            from: (&*from).into(),
            to: (&*to_name).into(),
            text: text.into(),
        };
        if shard == self.shard {
            peers.send(target, &msg);
        } else {
            let frames =
                Frames { binary: peers.encode(WireFormat::Binary, &msg), json: peers.encode(WireFormat::Json, &msg) };
            self.outbox[shard].push(Remote::Direct { key: target, user: to_name.clone(), frames });
        }
        if (shard, target) != (self.shard, key) {
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
        let (id, membership) = self.enter_room(key, &name, room);
        if let Some(s) = peers.conns[key].session.as_mut() {
            s.membership = membership;
        }
        peers.send(key, &ServerMsg::JoinRoom { room: room.into() });
        self.replay(peers, key, room);
        self.presence(peers, id, key, SystemKind::Join, &name);
    }

    /// Adds `key` (user `name`) to `room` here and in the directory.
    fn enter_room(&mut self, key: usize, name: &Arc<str>, room: &str) -> (RoomId, Membership) {
        let (canonical, shared) = self.dir.join(room, self.shard, name);
        let id = self.rooms.get_or_create(&canonical, shared);
        (id, self.rooms.join(id, key))
    }

    /// Takes `key` out of its room, fixing the moved member's index, and tells the room.
    fn leave_room(&mut self, peers: &mut Peers, key: usize, m: Membership, kind: SystemKind) {
        let Some(name) = peers.conns[key].session.as_ref().map(|s| s.name.clone()) else { return };
        // Announce before the room can vanish with its last member.
        self.presence(peers, m.room, key, kind, &name);
        let room_name = self.rooms.room(m.room).name.clone();
        if let Some(moved) = self.rooms.leave(m) {
            if let Some(s) = peers.conns.get_mut(moved).and_then(|c| c.session.as_mut()) {
                s.membership.index = m.index;
            }
        }
        self.dir.leave(&room_name, self.shard, &name);
    }

    /// Stops presence notices (shutdown: every connection is closing).
    pub fn set_quiet(&mut self) {
        self.quiet = true;
    }

    /// Tells everyone in `room` but `who` that `who` joined, left or disconnected — unless the
    /// room is over the presence limit or the server is shutting down.
    fn presence(&mut self, peers: &mut Peers, room: RoomId, who: usize, kind: SystemKind, name: &str) {
        let room_name = self.rooms.room(room).name.clone();
        if self.quiet || (self.presence_limit > 0 && self.dir.room_size(&room_name) > self.presence_limit) {
            return;
        }
        let verb = match kind {
            SystemKind::Join => "joined",
            SystemKind::Leave => "left",
            _ => "disconnected from",
        };
        let text = format!("{name} {verb} {room_name}");
        let msg = ServerMsg::SystemMsg { kind, room: (&*room_name).into(), user: name.into(), text: text.into() };
        self.broadcast(peers, room, Some(who), &msg, false);
    }

    fn list_users(&self, peers: &mut Peers, key: usize) {
        let Some(session) = peers.conns[key].session.as_ref() else { return };
        let room = &self.rooms.room(session.membership.room).name;
        let users = self.dir.members(room).iter().map(|n| n.to_string().into()).collect();
        peers.send(key, &ServerMsg::ListUsers { room: (&**room).into(), users });
    }

    /// Forgets connection `key`: leaves its room with a disconnect notice and frees its name.
    /// Call before removing the connection from `peers`.
    pub fn disconnect(&mut self, peers: &mut Peers, key: usize) {
        self.pending_auth.remove(&key);
        self.admins.remove(&key);
        self.drop_transfers(key);
        let Some(session) = peers.conns.get(key).and_then(|c| c.session.as_ref()) else { return };
        let (name, m) = (session.name.clone(), session.membership);
        self.leave_room(peers, key, m, SystemKind::Disconnect);
        let folded = fold(&mut self.fold_buf, &name);
        self.local_users.remove(folded);
        self.dir.logout(folded);
        if let Some(conn) = peers.conns.get_mut(key) {
            conn.session = None;
        }
    }
}

/// Index of a format in the per-format encoding slots.
fn slot(format: WireFormat) -> usize {
    match format {
        WireFormat::Binary => 0,
        WireFormat::Json => 1,
    }
}

/// Case-folds `name` into `buf` (reused, so lookups do not allocate) for case-insensitive
/// user-name uniqueness.
fn fold<'a>(buf: &'a mut String, name: &str) -> &'a str {
    buf.clear();
    buf.extend(name.chars().flat_map(char::to_lowercase));
    buf
}
