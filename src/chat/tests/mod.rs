//! The chat core's unit tests, without sockets (issue 11): every reply path of every client
//! message is asserted against a recording [`Outbox`].
//!
//! [`Recorder`] keeps what the hub pushed per connection and decodes it back with the real
//! codecs, so assertions are on [`ServerMsg`]s, not bytes; the frames themselves stay available
//! for checking that a fan-out shares one encoding per format. [`World`] is one or more hubs
//! over a real [`InProcess`] backplane, each shard with its own recorder, inbox and
//! `mio::Waker`; [`World::settle`] plays the server loops' part of handing batches over.
//!
//! - `login`: admission, rejections, messages before login, ping, disconnect.
//! - `rooms`: join, leave notices, lists, the presence limit, history replay.
//! - `presence`: join storms coalesced into O(n) notices, quiet rooms, across shards.
//! - `messages`: room messages per format, private messages, empty text, TIME, files off.
//! - `resume`: "since id N" replays, REPLAY_END, scroll-back (one shard and across shards).
//! - `shards`: the same paths across two or three shards sharing one backplane.
//! - `admin`: FORBIDDEN for others, the admin login, users/rooms/alert/kick/time/stats.
//! - `files`: the upload idle deadline.

mod admin;
mod files;
mod login;
mod messages;
mod presence;
mod resume;
mod rooms;
mod shards;

use super::{Hub, Outbox};
use crate::cluster::{InProcess, Remote, ShardLink};
use crate::config::{HistoryMode, ServerConfig};
use crate::protocol::validate::DEFAULT_ROOM;
use crate::protocol::{ClientMsg, ErrorCode, Limits, ServerMsg, SystemKind, WireFormat};
use crate::services::Services;
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

/// The time every hub is handed (2023-11-14 22:13:20 UTC).
const NOW: u64 = 1_700_000_000_000;

const BIN: Option<WireFormat> = Some(WireFormat::Binary);
const JSON: Option<WireFormat> = Some(WireFormat::Json);

/// A decoded server message that owns its strings.
type Msg = ServerMsg<'static>;

/// One recorded connection.
#[derive(Debug)]
struct Conn {
    /// The format it speaks; `None` until it has said.
    format: Option<WireFormat>,
    /// Frames pushed and not yet taken by the test.
    frames: Vec<Bytes>,
    /// The code and text of `Outbox::close`, once called.
    closed: Option<(ErrorCode, String)>,
    /// `Outbox::logged_in` was called.
    logged_in: bool,
}

/// A test [`Outbox`]: records every frame per connection instead of writing it.
#[derive(Debug, Default)]
struct Recorder {
    /// Connections by key.
    conns: HashMap<usize, Conn>,
    /// Calls to `encode`, per format.
    encodes: HashMap<WireFormat, usize>,
    /// Frames pushed to a connection that is gone or closing (dropped, as the server does).
    dropped: usize,
}

impl Recorder {
    /// Opens connection `key` speaking `format`.
    fn connect(&mut self, key: usize, format: Option<WireFormat>) {
        let conn = Conn { format, frames: Vec::new(), closed: None, logged_in: false };
        assert!(self.conns.insert(key, conn).is_none(), "key {key} is already open");
    }

    /// Forgets connection `key` (its socket is gone).
    fn gone(&mut self, key: usize) {
        self.conns.remove(&key);
    }

    fn conn(&self, key: usize) -> &Conn {
        self.conns.get(&key).unwrap_or_else(|| panic!("no connection {key}"))
    }

    /// Takes the frames pushed to `key` so far.
    fn frames(&mut self, key: usize) -> Vec<Bytes> {
        std::mem::take(&mut self.conns.get_mut(&key).unwrap_or_else(|| panic!("no connection {key}")).frames)
    }

    /// Takes the messages pushed to `key` so far, decoded in the format it is answered in.
    fn take(&mut self, key: usize) -> Vec<Msg> {
        let format = self.reply_format(key).expect("open connection");
        self.frames(key).iter().map(|f| decode(format, f)).collect()
    }

    /// Forgets everything pushed so far, to every connection.
    fn clear(&mut self) {
        self.conns.values_mut().for_each(|c| c.frames.clear());
        self.encodes.clear();
    }

    /// The close `key` got, if any.
    fn closed(&self, key: usize) -> Option<(ErrorCode, &str)> {
        self.conn(key).closed.as_ref().map(|(c, t)| (*c, t.as_str()))
    }

    /// Calls to `encode` in `format` since the last `clear`.
    fn encodes(&self, format: WireFormat) -> usize {
        self.encodes.get(&format).copied().unwrap_or(0)
    }
}

/// Decodes one whole frame with the real codec.
fn decode(format: WireFormat, frame: &[u8]) -> Msg {
    let (msg, used) = format
        .decode_server(frame, &Limits::default())
        .unwrap_or_else(|e| panic!("{format:?} frame does not decode: {e}"))
        .unwrap_or_else(|| panic!("{format:?} frame is incomplete"));
    assert_eq!(used, frame.len(), "one frame per push");
    msg.into_owned()
}

impl Outbox for Recorder {
    fn format(&self, key: usize) -> Option<WireFormat> {
        self.conns.get(&key)?.format
    }

    fn encode(&mut self, format: WireFormat, msg: &ServerMsg<'_>) -> Bytes {
        *self.encodes.entry(format).or_default() += 1;
        let mut buf = BytesMut::new();
        format.encode_server(msg, &mut buf);
        buf.freeze()
    }

    fn push(&mut self, key: usize, frame: Bytes) {
        match self.conns.get_mut(&key) {
            Some(c) if c.closed.is_none() => c.frames.push(frame),
            _ => self.dropped += 1,
        }
    }

    fn close(&mut self, key: usize, code: ErrorCode, text: &str) {
        if let Some(c) = self.conns.get_mut(&key).filter(|c| c.closed.is_none()) {
            c.closed = Some((code, text.to_string()));
        }
    }

    fn backlog(&self, key: usize) -> Option<usize> {
        let c = self.conns.get(&key).filter(|c| c.closed.is_none())?;
        Some(c.frames.iter().map(Bytes::len).sum())
    }

    fn peer_ip(&self, key: usize) -> Option<IpAddr> {
        self.conns.get(&key).map(|_| IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    fn logged_in(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(&key) {
            c.logged_in = true;
        }
    }

    fn reply_format(&self, key: usize) -> Option<WireFormat> {
        self.conns.get(&key).map(|c| c.format.unwrap_or(WireFormat::Json))
    }
}

/// Hubs for `n` shards over one real in-process backplane, each with a recorder and an inbox.
struct World {
    hubs: Vec<Hub>,
    outs: Vec<Recorder>,
    /// Each shard's inbox, as its server loop would read it.
    inboxes: Vec<Receiver<Vec<Remote>>>,
    /// Kept alive for the wakers registered with them.
    _polls: Vec<mio::Poll>,
}

impl World {
    /// `shards` hubs with the default services (open auth, no history, no files, no admin).
    fn new(shards: usize) -> World {
        World::with(shards, Arc::new(Services::default()), 0)
    }

    fn with(shards: usize, services: Arc<Services>, presence_limit: usize) -> World {
        let (mut links, mut inboxes, mut polls) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..shards {
            let poll = mio::Poll::new().expect("poll");
            let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker"));
            let (tx, rx) = channel();
            links.push(ShardLink { tx, waker });
            inboxes.push(rx);
            polls.push(poll);
        }
        let backplane = Arc::new(InProcess::new(links, DEFAULT_ROOM));
        let hubs = (0..shards)
            .map(|shard| {
                let mut hub = Hub::new(shard, backplane.clone(), services.clone(), presence_limit);
                hub.set_now(NOW);
                hub
            })
            .collect();
        World { hubs, outs: (0..shards).map(|_| Recorder::default()).collect(), inboxes, _polls: polls }
    }

    /// `shards` hubs with the default services whose presence changes are coalesced over
    /// `interval_ms`.
    fn coalescing(shards: usize, interval_ms: u64) -> World {
        let mut w = World::new(shards);
        let interval = std::time::Duration::from_millis(interval_ms);
        w.hubs = std::mem::take(&mut w.hubs).into_iter().map(|h| h.with_presence_interval(interval)).collect();
        w
    }

    /// Plays one loop turn of every shard at `now` (ms): the clock moves, timed work runs
    /// ([`Hub::on_turn`]), batches are handed over.
    fn turn_at(&mut self, now: u64) {
        for (hub, out) in self.hubs.iter_mut().zip(&mut self.outs) {
            hub.set_now(now);
            hub.on_turn(out);
        }
        self.settle();
    }

    fn connect(&mut self, shard: usize, key: usize, format: Option<WireFormat>) {
        self.outs[shard].connect(key, format);
    }

    /// Hands `msg` from connection `key` to shard `shard`'s hub.
    fn send(&mut self, shard: usize, key: usize, msg: ClientMsg<'_>) {
        self.hubs[shard].handle(&mut self.outs[shard], key, msg);
    }

    /// Connects `key` on `shard` and logs it in as `name`, then settles and forgets every
    /// frame sent so far, so that a test starts from a clean slate.
    fn enter(&mut self, shard: usize, key: usize, name: &str, format: Option<WireFormat>) {
        self.connect(shard, key, format);
        self.send(shard, key, login(name));
        let first = self.outs[shard].take(key).into_iter().next();
        assert!(matches!(first, Some(ServerMsg::LoginAck { .. })), "{name} not logged in: {first:?}");
        self.settle();
        self.outs.iter_mut().for_each(Recorder::clear);
    }

    /// The connection closes: the hub forgets it, then the socket goes.
    fn leave(&mut self, shard: usize, key: usize) {
        self.hubs[shard].disconnect(&mut self.outs[shard], key);
        self.outs[shard].gone(key);
    }

    /// Plays the loops: every hub sends its batches and every shard handles what it was sent,
    /// until nothing moves. No threads are involved, so nothing here waits.
    fn settle(&mut self) {
        loop {
            self.hubs.iter_mut().for_each(Hub::send_remote);
            let mut moved = false;
            for (shard, inbox) in self.inboxes.iter().enumerate() {
                while let Ok(batch) = inbox.try_recv() {
                    moved = true;
                    for work in batch {
                        self.hubs[shard].remote(&mut self.outs[shard], work);
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Takes what `key` on `shard` was sent.
    fn take(&mut self, shard: usize, key: usize) -> Vec<Msg> {
        self.outs[shard].take(key)
    }

    /// Asserts that nobody on any shard was sent anything.
    fn assert_quiet(&mut self) {
        for (shard, out) in self.outs.iter_mut().enumerate() {
            let mut keys: Vec<usize> = out.conns.keys().copied().collect();
            keys.sort_unstable();
            for key in keys {
                assert_eq!(out.take(key), [], "shard {shard} key {key} was sent something");
            }
        }
    }
}

/// Services with history kept in memory (`history_len` per room), optionally an admin, no files.
fn services(history_len: usize, admin: Option<(&str, &str)>) -> Arc<Services> {
    let mut config = ServerConfig::loopback();
    config.services.history = HistoryMode::Memory;
    config.services.history_len = history_len;
    config.services.files = false;
    config.services.admin_user = admin.map(|(u, _)| u.to_string());
    config.services.admin_password = admin.map(|(_, p)| p.to_string());
    Services::start(&config).expect("memory services need no disk")
}

fn login(name: &str) -> ClientMsg<'_> {
    ClientMsg::Login { username: name.into(), credential: None, since: None }
}

fn login_with<'a>(name: &'a str, credential: &'a str) -> ClientMsg<'a> {
    ClientMsg::Login { username: name.into(), credential: Some(credential.into()), since: None }
}

fn say(text: &str) -> ClientMsg<'_> {
    ClientMsg::RoomMsg { text: text.into() }
}

fn pm<'a>(to: &'a str, text: &'a str) -> ClientMsg<'a> {
    ClientMsg::PrivateMsg { to: to.into(), text: text.into() }
}

fn join(room: &str) -> ClientMsg<'_> {
    ClientMsg::JoinRoom { room: room.into(), since: None }
}

fn admin(command: &str) -> ClientMsg<'_> {
    ClientMsg::Admin { command: command.into() }
}

fn login_ack(name: &str, room: &str) -> Msg {
    ServerMsg::LoginAck { username: name.to_string().into(), room: room.to_string().into() }
}

fn reject(code: ErrorCode, reason: &str) -> Msg {
    ServerMsg::LoginReject { code, reason: reason.to_string().into(), retry_ms: None }
}

fn error(code: ErrorCode, text: &str) -> Msg {
    ServerMsg::ErrorMsg { code, text: text.to_string().into() }
}

fn notice(kind: SystemKind, room: &str, user: &str, text: &str) -> Msg {
    ServerMsg::SystemMsg {
        kind,
        room: room.to_string().into(),
        user: user.to_string().into(),
        text: text.to_string().into(),
    }
}

/// A room message stamped at [`NOW`].
fn room_msg(id: u64, room: &str, from: &str, text: &str, history: bool) -> Msg {
    ServerMsg::RoomMsg {
        id,
        ts_ms: NOW,
        room: room.to_string().into(),
        from: from.to_string().into(),
        text: text.to_string().into(),
        history,
    }
}

/// A private message stamped at [`NOW`].
fn delivery(from: &str, to: &str, text: &str) -> Msg {
    ServerMsg::PrivateMsgDelivery {
        ts_ms: NOW,
        from: from.to_string().into(),
        to: to.to_string().into(),
        text: text.to_string().into(),
    }
}

fn admin_reply(text: &str) -> Msg {
    ServerMsg::Admin { text: text.to_string().into() }
}

/// True when every frame shares the first one's memory (one encoding, refcounted).
fn shared(frames: &[&Bytes]) -> bool {
    frames.windows(2).all(|w| w[0].as_ptr() == w[1].as_ptr() && w[0].len() == w[1].len())
}
