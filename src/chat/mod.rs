//! The chat rules of one shard, sans-IO: login, rooms, room and private messages, lists,
//! presence, history, admin commands and files.
//!
//! The core is handed decoded messages, connection keys and the time, and writes through an
//! [`Outbox`]; it never sees a socket or a byte buffer, so every rule is unit-tested without one.
//! What it needs from the other shards (names, rooms, delivery) goes through the
//! [`Backplane`] seam, and slow work (hashing, disk) through the shared [`Services`].
//!
//! A room message is encoded at most once per wire format; every local member's queue gets a
//! clone of that shared `Bytes` (a refcount, not a copy), and every other shard hosting members
//! of the room gets the same `Bytes` in its next batch, never re-encoded.
//!
//! One file per concern: `login` (authentication, admission, leaving), `rooms` (join, leave,
//! presence, lists), `presence` (coalescing a room's joins and leaves per interval), `messages`
//! (room and private messages, fan-out, other shards' frames), `history` (record, acknowledge,
//! replay), `admin`, `files`; `outbox` is the seam to the connections and `session` who is logged
//! in.

mod admin;
mod files;
mod history;
pub use history::HISTORY_PAGE;
pub use presence::NAMES_CAP;
mod login;
mod messages;
mod outbox;
mod page;
mod presence;
mod room;
mod rooms;
mod session;
#[cfg(test)]
mod tests;

pub use outbox::Outbox;

use crate::cluster::{Backplane, Relay, Remote};
use crate::protocol::validate::fold_name_into as fold;
use crate::protocol::{ClientMsg, ErrorCode, ServerMsg};
use crate::services::{Done, Services};
use crate::stats::StatsSnapshot;
use room::Rooms;
use session::Sessions;
use std::collections::HashMap;
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
    /// Names, rooms and delivery across shards.
    backplane: Arc<dyn Backplane>,
    /// Work for other shards, handed over once per loop turn by [`Hub::send_remote`].
    relay: Relay,
    /// Authentication, history, files and admin services shared by all shards.
    services: Arc<Services>,
    /// Logged-in connections.
    sessions: Sessions,
    /// Local users by case-folded name (the fast path for private messages).
    local_users: HashMap<Box<str>, usize>,
    /// Rooms with local members.
    rooms: Rooms,
    /// Sequence of the next room message here; ids are `seq * stride + offset` with this
    /// shard's [`Backplane::id_slot`], so unique.
    next_seq: u64,
    /// Milliseconds since the Unix epoch, refreshed once per loop turn by [`Hub::set_now`].
    now_ms: u64,
    /// Scratch for case folding, reused to avoid an allocation per lookup.
    fold_buf: String,
    /// Rooms larger than this get no presence notices (0: no limit).
    presence_limit: usize,
    /// Each room's presence window: changes after the first in an interval become one notice.
    coalescer: presence::Coalescer,
    /// Set during shutdown: nobody is left to tell about departures.
    quiet: bool,
    /// Connections waiting for the accounts worker, with the nonce their answer must carry.
    pending_auth: HashMap<usize, u64>,
    /// Connections whose name claim the backplane answers later (a cluster), by key.
    pending_claims: HashMap<usize, login::PendingLogin>,
    /// Next nonce for pending logins, sessions and downloads (tells a live answer from a stale
    /// one); never reused.
    next_nonce: u64,
    /// File uploads in progress, by connection.
    uploads: HashMap<usize, files::Upload>,
    /// File downloads in progress, by connection.
    downloads: HashMap<usize, files::Download>,
    /// The counters at the previous admin `stats` command, for rates.
    last_stats: Option<(Instant, StatsSnapshot)>,
    /// What the hub has done so far.
    pub counters: HubCounters,
}

impl Hub {
    /// The chat core of shard `shard`.
    pub fn new(shard: usize, backplane: Arc<dyn Backplane>, services: Arc<Services>, presence_limit: usize) -> Self {
        let shards = backplane.shard_count().max(1);
        // Ids stay unique across restarts: start above every id already in the history.
        let next_seq = services.history.max_id() / backplane.id_slot(shard).0.max(1) + 1;
        Hub {
            shard,
            relay: Relay::new(shard, shards),
            backplane,
            services,
            sessions: Sessions::default(),
            local_users: HashMap::new(),
            rooms: Rooms::default(),
            next_seq,
            now_ms: 0,
            fold_buf: String::new(),
            presence_limit,
            coalescer: presence::Coalescer::new(0),
            quiet: false,
            pending_auth: HashMap::new(),
            pending_claims: HashMap::new(),
            next_nonce: 1,
            uploads: HashMap::new(),
            downloads: HashMap::new(),
            last_stats: None,
            counters: HubCounters::default(),
        }
    }

    /// Coalesces each room's presence changes over `interval` (zero, the default of
    /// [`Hub::new`]: every change is its own notice). See `chat/presence.rs`.
    pub fn with_presence_interval(mut self, interval: std::time::Duration) -> Self {
        self.coalescer = presence::Coalescer::new(interval.as_millis().try_into().unwrap_or(u64::MAX));
        self
    }

    /// Called once per loop turn, after the turn's events: moves paused downloads on, ends
    /// uploads that went quiet, sends the presence notices whose window ended.
    pub fn on_turn<O: Outbox>(&mut self, out: &mut O) {
        self.pump_downloads(out);
        self.expire_uploads(out);
        self.flush_presence(out);
    }

    /// Milliseconds until [`Hub::on_turn`] has timed work (a presence window ends), if any: the
    /// loop polls no longer than this.
    pub fn next_timer_ms(&self) -> Option<u64> {
        self.coalescer.next_due_in(self.now_ms)
    }

    /// Sets the timestamp stamped on messages this loop turn.
    pub fn set_now(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// Number of users logged in on this shard.
    pub fn online(&self) -> usize {
        self.sessions.count()
    }

    /// True when connection `key` is logged in.
    pub fn is_logged_in(&self, key: usize) -> bool {
        self.sessions.get(key).is_some()
    }

    /// Handles one decoded message from connection `key`.
    pub fn handle<O: Outbox>(&mut self, out: &mut O, key: usize, msg: ClientMsg<'_>) {
        let logged_in = self.is_logged_in(key);
        match msg {
            ClientMsg::Login { username, credential, since } if !logged_in => {
                self.login_request(out, key, &username, credential.as_deref(), (false, since))
            }
            ClientMsg::Register { username, password } if !logged_in => {
                self.login_request(out, key, &username, Some(&password), (true, None))
            }
            ClientMsg::Login { .. } | ClientMsg::Register { .. } => {
                out.send_error(key, ErrorCode::AlreadyLoggedIn, "you are already logged in")
            }
            ClientMsg::Ping { token } => out.send(key, &ServerMsg::Pong { token }),
            ClientMsg::Pong { .. } => {}
            _ if !logged_in => {
                out.send_error(key, ErrorCode::NotLoggedIn, "log in first: only LOGIN is accepted before login")
            }
            ClientMsg::RoomMsg { text } => self.room_msg(out, key, &text),
            ClientMsg::PrivateMsg { to, text } => self.private_msg(out, key, &to, &text),
            ClientMsg::JoinRoom { room, since } => self.join(out, key, &room, since),
            ClientMsg::History { before } => self.history_page(out, key, before),
            ClientMsg::ListUsers { after } => self.list_users(out, key, after.as_deref()),
            ClientMsg::ListRooms { after } => self.list_rooms(out, key, after.as_deref()),
            ClientMsg::Time => out.send(key, &ServerMsg::Time { ts_ms: self.now_ms }),
            ClientMsg::Admin { command } => self.admin_from_client(out, key, &command),
            ClientMsg::FileOffer { name, size, sha256 } => self.file_offer(out, key, &name, size, sha256),
            ClientMsg::FileChunk { id, offset, data } => self.file_chunk(out, key, id, offset, &data),
            ClientMsg::FileDone { id, sha256 } => self.file_done(out, key, id, sha256),
            ClientMsg::ListFiles { after } => self.list_files(out, key, after.as_deref()),
            ClientMsg::FileGet { id } => self.file_get(out, key, id),
        }
    }

    /// Handles work another shard sent, or the answer of a worker thread.
    pub fn remote<O: Outbox>(&mut self, out: &mut O, work: Remote) {
        match work {
            Remote::Room { room, frames, chat, skip } => self.room_from_remote(out, &room, frames, chat, skip),
            Remote::Stamp(s) => self.stamp(out, (s.room, None), &s.shared, s.from, &s.text, s.sender),
            Remote::Replay(req) => self.replay_at_owner(out, req),
            Remote::Replayed { req, replay } => self.replayed(out, req, replay),
            Remote::Direct { key, user, frames } => {
                if self.sessions.is(key, &user) {
                    if let Some(format) = out.format(key) {
                        out.push(key, frames.get(format).clone());
                    }
                }
            }
            Remote::All { frames } => self.deliver_all(out, &frames),
            Remote::Kick { key, user, ban } => {
                if self.sessions.is(key, &user) {
                    admin::kick(out, key, ban);
                }
            }
            Remote::Done(done) => self.done(out, done),
            Remote::Claimed { key, user, verdict } => self.claim_verdict(out, key, &user, verdict),
            Remote::Ban { user, ban } => match ban.is_zero() {
                true => drop(self.services.bans.unban(&user, Instant::now())),
                false => self.services.bans.ban(&user, ban, Instant::now()),
            },
            Remote::NameLost { key, user } => {
                if self.sessions.is(key, &user) {
                    let why = "another node took your name while this one was cut off from the cluster; log in again";
                    out.close(key, ErrorCode::UsernameTaken, why);
                }
            }
        }
    }

    /// Acts on the result of off-loop work.
    fn done<O: Outbox>(&mut self, out: &mut O, done: Done) {
        match done {
            Done::Auth(verdict) => self.auth_verdict(out, verdict),
            Done::Durable(acks) => self.durable(out, acks),
            Done::Console(req) => {
                let answer = self.run_admin(out, "console", req.command);
                let _ = req.reply.send(answer);
            }
            Done::File(done) => self.file_done_from_worker(out, done),
            Done::HistoryRead(done) => self.history_read(out, done),
        }
    }

    /// Sends this turn's batches to the other shards (one wake-up per shard per turn).
    pub fn send_remote(&mut self) {
        self.relay.flush(&*self.backplane);
    }

    /// Stops presence notices (shutdown: every connection is closing).
    pub fn set_quiet(&mut self) {
        self.quiet = true;
    }
}
