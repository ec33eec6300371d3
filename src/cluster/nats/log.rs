//! The cluster's room log: every room message goes through one JetStream stream, which gives it
//! its id (the stream's sequence), keeps it (history readable from every node) and hands it back
//! to every node following the room, in one order.
//!
//! - A room's owner is the cluster ([`super::Nats`]'s `room_owner` is `remote`): a shard hands
//!   each room message ([`Remote::Stamp`]) to the link thread, which appends it on
//!   `chat.log.<room>` with its sender and time ([`wire::LogEntry`]). The sender's ROOM_MSG_ACK
//!   waits for the stream's PubAck: acknowledged means the log has it, and its id is the sequence.
//! - The stream republishes each stored message on `chat.live.<room>` with its sequence
//!   (`Nats-Sequence`), in stream order. A node follows that subject while it has members in the
//!   room; the link thread encodes each message once per wire format and hands the frames to the
//!   local shards hosting members. Every node delivers a room's messages in sequence order, so ids
//!   increase in delivery order cluster-wide.
//! - Each followed room has a position: the last sequence handed to the shards ([`Rooms`]).
//!   A live message at or below it is dropped; one whose room predecessor (the stream's
//!   `Nats-Last-Sequence`) is above it means NATS lost some, which are read from the log first;
//!   after a lost connection the follower starts again from the position, reading the gap.
//! - Replays and scroll-back ([`Remote::Replay`]) are answered from the room's newest messages
//!   kept in memory when they cover it, else read from the stream with direct gets. A replay
//!   covers exactly the messages up to the room's position when it is answered, and is handed
//!   over in the same order: the waiting member gets every message once, those up to the answer
//!   in the replay, later ones live (and those stored after it asked, after the replay, as live).

use super::link::Ctx;
use super::recent::Rooms;
use super::wire::{self, LogEntry};
use super::{ClusterError, ClusterStats};
use crate::chat::HISTORY_PAGE;
use crate::cluster::{Backplane, InProcess, Remote, ReplayReq, Stamp};
use crate::config::Retention;
use crate::protocol::{encode_both, ServerMsg};
use crate::services::history::{Ack, AckTo, DurableAcks, Entry, Read, Replay};
use crate::services::Done;
use async_nats::header::{NATS_LAST_SEQUENCE, NATS_SEQUENCE};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::stream::{self, DirectGetError, DirectGetErrorKind};
use async_nats::Client;
use bytes::BytesMut;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

/// The stream holding every room's messages.
pub const STREAM: &str = "chat_log";
/// How long a replay waits for its room's follower to be ready (subscribed, the log's end
/// read) before it is answered with a gap.
const READY_WAIT: Duration = Duration::from_secs(10);

/// What the log keeps and replays (the server's history settings).
#[derive(Clone, Copy, Debug)]
pub struct LogLimits {
    /// Messages replayed to a member entering a room (`--history-len`); also how many each
    /// followed room keeps in memory.
    pub replay_len: usize,
    /// Bytes all followed rooms keep in memory (`--history-cache`).
    pub cache_bytes: usize,
    /// Room messages awaiting the log's PubAck at once (`--cluster-inflight`).
    pub inflight: usize,
    /// What the stream keeps (`--history-retain-days`, `--history-retain-per-room`); the
    /// first node to make the stream sets it for the cluster.
    pub retention: Retention,
}

/// The stream as the first node makes it: per-room subjects, kept on disk, republished in order.
pub fn stream_config(limits: &LogLimits, replicas: usize) -> stream::Config {
    let per_room = limits.retention.per_room;
    stream::Config {
        name: STREAM.into(),
        subjects: vec![format!("{}.>", wire::LOG_PREFIX)],
        storage: stream::StorageType::File,
        max_age: limits.retention.max_age.unwrap_or(Duration::ZERO),
        max_messages_per_subject: if per_room == 0 { -1 } else { per_room as i64 },
        discard: stream::DiscardPolicy::Old,
        allow_direct: true,
        republish: Some(stream::Republish {
            source: format!("{}.>", wire::LOG_PREFIX),
            destination: format!("{}.>", wire::LIVE_PREFIX),
            headers_only: false,
        }),
        num_replicas: replicas,
        ..Default::default()
    }
}

/// An append waiting for its PubAck.
/// An append waiting for its answer: the PubAck, or `None` when it was refused before it was
/// sent. Refusals wait in line too, so a sender gets its answers in the order it sent.
struct Pending {
    ack: Option<PublishAckFuture>,
    to: AckTo,
    ts_ms: u64,
}

/// The log as the link thread's tasks hold it (cheap to clone).
#[derive(Clone)]
pub(super) struct Log {
    ctx: Arc<Ctx>,
    js: async_nats::jetstream::Context,
    stream: stream::Stream,
    /// The followed rooms: per room, the highest sequence handed to the local shards, and its
    /// newest messages ([`Rooms`]). Every message of a room above its position is still to come
    /// (live, or from the catch-up after a lost connection); none at or below it is handed over
    /// again (a late or repeated live copy is dropped). It starts at the stream's last sequence
    /// when following begins.
    rooms: Arc<Mutex<Rooms>>,
    /// Signalled whenever a room's follower becomes ready (replays wait for it).
    ready: Arc<Notify>,
    /// Appends waiting for their PubAck, answered in order.
    acks: mpsc::Sender<Pending>,
    /// Messages a replay holds at most.
    replay_len: usize,
}

impl Log {
    /// Opens (or makes) the stream and starts the task answering appends.
    pub(super) async fn open(client: &Client, ctx: Arc<Ctx>, limits: &LogLimits) -> Result<Log, ClusterError> {
        let js = async_nats::jetstream::new(client.clone());
        let stream = js
            .get_or_create_stream(stream_config(limits, ctx.replicas))
            .await
            .map_err(|e| ClusterError::Log { stream: STREAM, reason: e.to_string() })?;
        // Appends whose PubAck is awaited at once (`--cluster-inflight`, plus this short
        // queue); past it the link thread waits, and the shards' bounded queue to it takes the
        // pressure.
        let (acks, rx) = mpsc::channel(64);
        tokio::spawn(acker(rx, ctx.clone(), limits.inflight.max(1)));
        let rooms = Arc::new(Mutex::new(Rooms::new(limits.replay_len, limits.cache_bytes)));
        Ok(Log { ctx, js, stream, rooms, ready: Arc::default(), acks, replay_len: limits.replay_len })
    }

    fn rooms(&self) -> MutexGuard<'_, Rooms> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a room message; its sender is acknowledged (or refused) once the stream answers.
    pub(super) async fn append(&self, s: Stamp) {
        let ts_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        // With NATS away it would wait for the request timeout: refused at once (in line).
        let ack = match self.ctx.stats.connected.load(Ordering::Relaxed) {
            false => None,
            true => {
                let payload = wire::encode_entry(&self.ctx.node, s.sender, ts_ms, &s.from, &s.text);
                match self.js.publish(wire::log_subject(&s.room), payload).await {
                    Ok(ack) => Some(ack),
                    Err(e) => {
                        tracing::debug!("cluster: cannot append a room message to the log: {e}");
                        None
                    }
                }
            }
        };
        if let Err(e) = self.acks.send(Pending { ack, to: s.sender, ts_ms }).await {
            send_ack(&self.ctx.local, &self.ctx.stats, e.0.to, None);
        }
    }

    /// Starts handing `room`'s messages to the local shards: from the log's current end, or
    /// (after a lost connection, `catch_up`) from where the last follower stopped, so that what
    /// was republished while the node was away is read from the log instead. Returns the
    /// follower's task; until it is ready, replays of the room wait.
    pub(super) fn follow(&self, client: &Client, room: &Arc<str>, catch_up: Option<u64>) -> JoinHandle<()> {
        self.rooms().begin(room);
        tokio::spawn(self.clone().follower(client.clone(), room.clone(), catch_up))
    }

    /// The room's last hand-over, for a catch-up once the node is back on NATS.
    pub(super) fn position(&self, room: &str) -> Option<u64> {
        self.rooms().at(room).flatten()
    }

    /// Stops following `room` (its task is aborted by the caller).
    pub(super) fn unfollow(&self, room: &str) {
        self.rooms().remove(room);
    }

    /// Subscribes, reads the log's end (and catches up to it), then hands the room's messages,
    /// as the stream republishes them, to the local shards.
    async fn follower(self, client: Client, room: Arc<str>, catch_up: Option<u64>) {
        let mut sub = match client.subscribe(wire::live_subject(&room)).await {
            Ok(sub) => sub,
            Err(e) => return tracing::error!("cluster: cannot follow room {room:?}: {e}"),
        };
        // Once the server has the subscription, every message stored after `end` reaches it.
        let _ = client.flush().await;
        let mut arena = BytesMut::new();
        let end = loop {
            match self.stream.get_info().await {
                Ok(info) => break info.state.last_sequence,
                Err(e) => tracing::debug!("cluster: cannot read the log's end for room {room:?} (retried): {e}"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        if let Some(from) = catch_up.filter(|&from| from < end) {
            let mut missed = Vec::new();
            if let Err(e) = scan(&self.stream, &wire::log_subject(&room), from + 1, end + 1, &mut missed).await {
                tracing::warn!("cluster: room {room:?} missed messages while NATS was away and cannot read them: {e}");
            }
            missed.iter().for_each(|(seq, e)| hand_over(&self.ctx, &room, *seq, e, &mut arena));
        }
        if !self.rooms().ready(&room, end) {
            return; // unfollowed meanwhile
        }
        self.ready.notify_waiters();
        let subject = wire::log_subject(&room);
        while let Some(msg) = sub.next().await {
            let header = |name| msg.headers.as_ref()?.get(name)?.as_str().parse::<u64>().ok();
            let (seq, prev) = (header(NATS_SEQUENCE), header(NATS_LAST_SEQUENCE).unwrap_or(0));
            let (Some(seq), Some(entry)) = (seq, wire::decode_entry(msg.payload)) else {
                tracing::debug!("cluster: malformed log message on {}", msg.subject);
                continue;
            };
            self.ctx.stats.received.fetch_add(1, Ordering::Relaxed);
            let Some(last) = self.position(&room) else { return };
            if prev > last {
                // The room's previous message (the stream says which) never came live: read
                // what is missing from the log before this one.
                self.ctx.stats.log_gaps.fetch_add(1, Ordering::Relaxed);
                let mut missed = Vec::new();
                if let Err(e) = scan(&self.stream, &subject, last + 1, seq, &mut missed).await {
                    tracing::warn!("cluster: room {room:?} missed live messages and cannot read them: {e}");
                }
                for (s, e) in &missed {
                    self.hand_over_next(&room, *s, e, &mut arena);
                }
            }
            if !self.hand_over_next(&room, seq, &entry, &mut arena) && self.position(&room).is_none() {
                return; // unfollowed
            }
        }
    }

    /// Hands `seq` over if it is past the room's position (and moves it); false if not (or the
    /// room is no longer followed).
    fn hand_over_next(&self, room: &Arc<str>, seq: u64, e: &LogEntry, arena: &mut BytesMut) -> bool {
        let next = self.rooms().advance(room, seq, || entry(room, seq, e));
        if next {
            // (Still in the same poll as the advance: no other hand-over comes between.)
            hand_over(&self.ctx, room, seq, e, arena);
        }
        next
    }

    /// Where the room's follower stands once it is ready; `None` if the room is not followed
    /// (or its follower is not ready within [`READY_WAIT`]).
    async fn ready_at(&self, room: &str) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + READY_WAIT;
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.rooms().at(room) {
                Some(Some(at)) => return Some(at),
                Some(None) => {}
                None => return None,
            }
            tokio::time::timeout_at(deadline, notified).await.ok()?;
        }
    }

    /// Answers a replay or scroll-back request from the stream, off the command loop.
    pub(super) fn replay(&self, req: ReplayReq) {
        let log = self.clone();
        tokio::spawn(async move {
            match req.read {
                Read::Since(since) => log.replay_since(req, since).await,
                Read::Page { before } => {
                    let replay = log.page(&req.room, before).await;
                    log.ctx.local.deliver(req.tag.shard, vec![Remote::Replayed { req, replay }]);
                }
            }
        });
    }

    /// A replay: the room's messages above `since` (or the newest `replay_len`) up to the last
    /// one handed to the shards, answered under the lock that orders live hand-overs, so the
    /// member's shard gets the replay before any message it does not hold.
    async fn replay_since(self, req: ReplayReq, since: Option<u64>) {
        let Some(upto) = self.ready_at(&req.room).await else {
            return gap(&self.ctx.local, req, since);
        };
        // Most replays are answered from the room's newest messages, kept here.
        if let Some(replay) = self.rooms().replay(&req.room, since, self.replay_len.max(1)) {
            self.ctx.local.deliver(req.tag.shard, vec![Remote::Replayed { req, replay }]);
            return;
        }
        match self.read_replay(&req.room, since, upto).await {
            Ok(replay) => {
                self.ctx.local.deliver(req.tag.shard, vec![Remote::Replayed { req, replay }]);
            }
            Err(e) => {
                tracing::debug!("cluster: cannot read the log for a replay: {e}");
                gap(&self.ctx.local, req, since);
            }
        }
    }

    /// Reads a replay up to `asked` (the room's position when the member asked), then again up
    /// to what went out live meanwhile, until nothing did; returns it (to be handed over at
    /// once, before any later live message), with what came after `asked` as live messages.
    async fn read_replay(&self, room: &Arc<str>, since: Option<u64>, asked: u64) -> Result<Replay, String> {
        let mut upto = asked;
        let subject = wire::log_subject(room);
        let limit = self.replay_len.max(1);
        let (mut read, mut first) = (Vec::new(), 0);
        // `read` will hold every message of the room with `floor < seq <= upto`.
        let floor = match since {
            Some(s) => {
                first = self.stream.get_info().await.map_err(|e| e.to_string())?.state.first_sequence;
                scan(&self.stream, &subject, s + 1, upto + 1, &mut read).await?;
                s
            }
            None => {
                read = newest(&self.stream, &subject, 0, upto + 1, limit).await?.0;
                match read.first() {
                    Some((seq, _)) if read.len() >= limit => seq - 1,
                    _ => 0, // the room's whole history
                }
            }
        };
        loop {
            // Checked and answered without an await between: no live hand-over comes between.
            let now = self.position(room).unwrap_or(upto);
            if now == upto {
                let mut all = entries(room, read);
                self.rooms().seed(room, floor, &all);
                // What came after the member asked is news to it, not history.
                let live = all.iter().position(|e| e.id > asked).map_or(Vec::new(), |at| all.split_off(at));
                let mut replay = replay_of(all, since, limit, first);
                replay.live = live;
                return Ok(replay);
            }
            // Live messages went out while reading: read them too.
            scan(&self.stream, &subject, upto + 1, now + 1, &mut read).await?;
            upto = now;
        }
    }

    /// A scroll-back page: the newest messages below `before` (0: the newest).
    async fn page(&self, room: &Arc<str>, before: u64) -> Replay {
        let subject = wire::log_subject(room);
        let limit = HISTORY_PAGE.min(self.replay_len.max(1));
        let read = async {
            let info = self.stream.get_info().await.map_err(|e| e.to_string())?;
            let hi = if before == 0 { info.state.last_sequence + 1 } else { before };
            newest(&self.stream, &subject, info.state.first_sequence.saturating_sub(1), hi, limit).await
        };
        match read.await {
            Ok((found, more)) => Replay { entries: entries(room, found), more, ..Replay::default() },
            Err(e) => {
                tracing::debug!("cluster: cannot read the log for a page: {e}");
                Replay { failed: true, ..Replay::default() }
            }
        }
    }
}

/// Answers appends in order as their PubAcks come. They are awaited together (each one's
/// timeout runs from when it was taken), up to `cap` at once, so a lost connection costs the
/// waiting senders one timeout, not one each.
async fn acker(mut rx: mpsc::Receiver<Pending>, ctx: Arc<Ctx>, cap: usize) {
    let mut waiting = FuturesOrdered::new();
    let mut open = true;
    while open || !waiting.is_empty() {
        tokio::select! {
            p = rx.recv(), if open && waiting.len() < cap => match p {
                Some(Pending { ack, to, ts_ms }) => waiting.push_back(async move {
                    let answer = match ack {
                        Some(ack) => ack.await.map_err(|e| e.to_string()),
                        None => Err("refused before it was sent".to_string()),
                    };
                    (answer, to, ts_ms)
                }),
                None => open = false,
            },
            Some((answer, to, ts_ms)) = waiting.next() => match answer {
                Ok(a) => {
                    ctx.stats.logged.fetch_add(1, Ordering::Relaxed);
                    send_ack(&ctx.local, &ctx.stats, to, Some((a.sequence, ts_ms)));
                }
                Err(e) => {
                    tracing::debug!("cluster: the log did not confirm a room message: {e}");
                    send_ack(&ctx.local, &ctx.stats, to, None);
                }
            },
        }
    }
}

/// Tells a sender's shard its message is in the log as `id` (or could not be stored).
fn send_ack(local: &InProcess, stats: &ClusterStats, to: AckTo, id: Option<(u64, u64)>) {
    if id.is_none() {
        stats.log_refused.fetch_add(1, Ordering::Relaxed);
    }
    let (id, ts_ms) = id.unwrap_or((0, 0));
    let done = DurableAcks { acks: vec![Ack { to, id, ts_ms }], ok: id != 0 };
    local.deliver(to.shard, vec![Remote::Done(Done::Durable(done))]);
}

/// Answers a replay that could not be read: the member enters, told of a gap if it resumed.
fn gap(local: &InProcess, req: ReplayReq, since: Option<u64>) {
    let replay = Replay { gap: since.is_some(), failed: true, ..Replay::default() };
    local.deliver(req.tag.shard, vec![Remote::Replayed { req, replay }]);
}

/// Answers work for the log that never reached the link thread (its queue was full): an append
/// is refused, a replay answered with a gap. Other work is dropped (counted by the caller).
pub(super) fn refuse(local: &InProcess, stats: &ClusterStats, work: Remote) {
    match work {
        Remote::Stamp(s) => send_ack(local, stats, s.sender, None),
        Remote::Replay(req) => match req.read {
            Read::Since(since) => gap(local, req, since),
            Read::Page { .. } => gap(local, req, None),
        },
        _ => {}
    }
}

/// Encodes a logged room message once per wire format and hands it to every local shard
/// hosting members of `room`, leaving out its sender (on the sending node).
fn hand_over(ctx: &Ctx, room: &Arc<str>, seq: u64, e: &LogEntry, arena: &mut BytesMut) {
    let msg = ServerMsg::RoomMsg {
        id: seq,
        ts_ms: e.ts_ms,
        room: (&**room).into(),
        from: e.from().into(),
        text: e.text().into(),
        history: false,
    };
    let frames = encode_both(&msg, arena);
    let mine = *e.node == *ctx.node.as_bytes();
    let sender = mine.then_some((e.sender.shard, (e.sender.key, e.sender.session)));
    ctx.local.deliver_room(room, &frames, true, sender);
}

/// Appends to `out` every message of `subject` with `from <= seq < to`, oldest first (one
/// direct get each; malformed ones are skipped).
async fn scan(
    stream: &stream::Stream,
    subject: &str,
    from: u64,
    to: u64,
    out: &mut Vec<(u64, LogEntry)>,
) -> Result<(), String> {
    let mut seq = from.max(1);
    while seq < to {
        match stream.direct_get_next_for_subject(subject, Some(seq)).await {
            Ok(m) if m.sequence < to => {
                seq = m.sequence + 1;
                if let Some(e) = wire::decode_entry(m.payload) {
                    out.push((m.sequence, e));
                }
            }
            Ok(_) => break,
            Err(e) if is_not_found(&e) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

fn is_not_found(e: &DirectGetError) -> bool {
    e.kind() == DirectGetErrorKind::NotFound
}

/// The newest `limit` messages of `subject` with `lo < seq < hi`, oldest first, and whether older
/// ones remain. Reads windows back from `hi`, each eight times the last, so a page costs about
/// its own size in direct gets however many rooms share the stream.
async fn newest(
    stream: &stream::Stream,
    subject: &str,
    lo: u64,
    hi: u64,
    limit: usize,
) -> Result<(Vec<(u64, LogEntry)>, bool), String> {
    let floor = lo + 1;
    let (mut found, mut top, mut window) = (Vec::new(), hi, (limit as u64).max(16) * 4);
    loop {
        let start = top.saturating_sub(window).max(floor);
        let mut older = Vec::new();
        scan(stream, subject, start, top, &mut older).await?;
        older.append(&mut found);
        found = older;
        if found.len() > limit || start <= floor {
            break;
        }
        (top, window) = (start, window.saturating_mul(8));
    }
    let more = found.len() > limit;
    found.drain(..found.len().saturating_sub(limit));
    Ok((found, more))
}

/// The replay of what was read: the newest `limit` of `read`, with a gap when more were read
/// (counted as lost) or when the stream no longer starts right after `since` (`first`: its
/// first sequence; messages may have aged out, how many is unknown).
fn replay_of(mut read: Vec<Arc<Entry>>, since: Option<u64>, limit: usize, first: u64) -> Replay {
    let skip = read.len().saturating_sub(limit);
    read.drain(..skip);
    let lost = if since.is_some() { skip as u64 } else { 0 };
    let aged = since.is_some_and(|s| s + 1 < first);
    Replay { entries: read, gap: lost > 0 || aged, lost, ..Replay::default() }
}

/// A log entry as a history entry.
fn entry(room: &Arc<str>, id: u64, e: &LogEntry) -> Entry {
    Entry { id, ts_ms: e.ts_ms, room: room.clone(), from: e.from().into(), text: e.text().into() }
}

/// Log entries as history entries.
fn entries(room: &Arc<str>, read: Vec<(u64, LogEntry)>) -> Vec<Arc<Entry>> {
    read.into_iter().map(|(id, e)| Arc::new(entry(room, id, &e))).collect()
}
