//! History on the chat side: recording room messages (which acknowledges them), replaying a
//! room to a member who enters it ("since id N" or the last `history_len`), and scroll-back.
//!
//! A member entering a room waits ([`PENDING`](super::room::PENDING): no live frames) while
//! the room's owner shard gathers its replay, from the cache or, through the history reader,
//! the database. The owner sends the replay in the same ordered stream as the room's messages,
//! so the member gets every message exactly once, in id order: those stamped before the answer
//! in the replay, those after it live.

use super::{Hub, Outbox};
use crate::cluster::{Remote, ReplayReq};
use crate::protocol::{ErrorCode, ServerMsg};
use crate::services::history::{Ack, AckTo, DurableAcks, Entry, Read, ReadDone, ReadJob, ReadTag, Replay};
use crate::services::Done;
use std::sync::Arc;

/// Most messages one scroll-back page holds.
pub const HISTORY_PAGE: usize = 50;

/// A history entry as the ROOM_MSG that replays it.
fn replayed(e: &Entry) -> ServerMsg<'_> {
    ServerMsg::RoomMsg {
        id: e.id,
        ts_ms: e.ts_ms,
        room: (&*e.room).into(),
        from: (&*e.from).into(),
        text: (&*e.text).into(),
        history: true,
    }
}

impl Hub {
    /// Stores a room message in the history (on the room's owner). Without a durable store it
    /// is acknowledged at once; with one the acknowledgement waits for the store
    /// ([`Hub::durable`]).
    pub(super) fn record<O: Outbox>(
        &mut self,
        out: &mut O,
        sender: AckTo,
        (id, ts_ms): (u64, u64),
        room: Arc<str>,
        from: Arc<str>,
        text: &str,
    ) {
        let history = &self.services.history;
        let queued = if history.is_kept() {
            let entry = Entry { id, ts_ms, room, from, text: text.into() };
            history.append(entry, sender)
        } else {
            true
        };
        if !history.is_durable() || !queued {
            let ack = Ack { to: sender, id, ts_ms };
            if sender.shard == self.shard {
                // The common case, once per message: no batch to allocate.
                self.ack(out, ack, queued);
            } else {
                let acks = DurableAcks { acks: vec![ack], ok: queued };
                self.relay.to(sender.shard, Remote::Done(Done::Durable(acks)));
            }
        }
    }

    /// The store made these messages durable (or failed to): acknowledge their senders, if they
    /// are still in the session that sent them.
    pub(super) fn durable<O: Outbox>(&mut self, out: &mut O, d: DurableAcks) {
        for ack in d.acks {
            self.ack(out, ack, d.ok);
        }
    }

    /// Acknowledges one message to its sender (`ok`: stored, else an error), if the sender is
    /// still in the session that sent it.
    fn ack<O: Outbox>(&self, out: &mut O, Ack { to, id, ts_ms }: Ack, ok: bool) {
        if self.sessions.get(to.key).map(|s| s.id) != Some(to.session) {
            return;
        }
        if ok {
            out.send(to.key, &ServerMsg::RoomMsgAck { id, ts_ms });
        } else {
            // Id 0: the message never got one (a cluster's log did not confirm it).
            let text = match id {
                0 => "the message could not be stored, so it may not have reached the room; try again".to_string(),
                id => format!("message {id} could not be stored"),
            };
            out.send_error(to.key, ErrorCode::Internal, &text);
        }
    }

    /// `key` (waiting in `room`) asks for its replay, of the room's owner.
    pub(super) fn start_replay<O: Outbox>(&mut self, out: &mut O, key: usize, room: Arc<str>, since: Option<u64>) {
        let Some(session) = self.sessions.get(key).map(|s| s.id) else { return };
        let req = ReplayReq { tag: ReadTag { shard: self.shard, key, session }, room, read: Read::Since(since) };
        if self.services.history.replay_len() == 0 {
            // Replay is off (or nothing is kept): nothing to replay, and a resume may have
            // missed anything.
            return self.replayed(out, req, Replay { gap: since.is_some(), ..Replay::default() });
        }
        self.ask_owner(out, req);
    }

    /// Hands a history read to the room's owner: this shard, another, or (in a cluster) the
    /// cluster's log. The owner answers replays in the room's message order.
    fn ask_owner<O: Outbox>(&mut self, out: &mut O, req: ReplayReq) {
        let owner = self.backplane.room_owner(&req.room);
        if owner == self.shard {
            self.replay_at_owner(out, req);
        } else {
            self.relay.to(owner, Remote::Replay(req));
        }
    }

    /// On the room's owner: answer a replay or scroll-back request from the cache, or ask the
    /// history reader.
    pub(super) fn replay_at_owner<O: Outbox>(&mut self, out: &mut O, req: ReplayReq) {
        let history = &self.services.history;
        let (cached, limit) = match req.read {
            Read::Since(since) => (history.cached_since(&req.room, since), history.replay_len().max(1)),
            Read::Page { before } => {
                let limit = HISTORY_PAGE.min(history.replay_len().max(1));
                let page = history.cached_page(&req.room, before, limit);
                (page.map(|(entries, more)| Replay { entries, more, ..Replay::default() }), limit)
            }
        };
        if let Some(replay) = cached {
            return self.send_replay(out, req, replay);
        }
        let job = ReadJob { reply: self.shard, tag: req.tag, room: req.room.clone(), read: req.read, limit };
        if !history.read(job) {
            self.send_replay(out, req, Replay { gap: true, failed: true, ..Replay::default() });
        }
    }

    /// Hands a replay to the asking member's shard (this one, or through the relay, after
    /// every room frame already handed over).
    fn send_replay<O: Outbox>(&mut self, out: &mut O, req: ReplayReq, replay: Replay) {
        if req.tag.shard == self.shard {
            self.replayed(out, req, replay);
        } else {
            self.relay.to(req.tag.shard, Remote::Replayed { req, replay });
        }
    }

    /// The owner's answer, on the asking member's shard: a replay lets the waiting member in; a
    /// scroll-back page is sent with its HISTORY_END. A member that left (or, for a replay, went
    /// elsewhere) meanwhile gets nothing.
    pub(super) fn replayed<O: Outbox>(&mut self, out: &mut O, req: ReplayReq, replay: Replay) {
        match req.read {
            Read::Since(since) => self.enter(out, req, since, replay),
            Read::Page { before } => {
                let key = req.tag.key;
                if self.sessions.get(key).map(|s| s.id) != Some(req.tag.session) {
                    return;
                }
                if replay.failed {
                    return out.send_error(key, ErrorCode::Internal, "history could not be read");
                }
                self.send_page(out, key, &req.room, before, replay.entries.iter().map(|e| &**e), replay.more);
            }
        }
    }

    /// The replay for a waiting member: send it (and REPLAY_END for a resume), then let the
    /// member in.
    fn enter<O: Outbox>(&mut self, out: &mut O, req: ReplayReq, since: Option<u64>, replay: Replay) {
        let key = req.tag.key;
        let Some(s) = self.sessions.get(key).filter(|s| s.id == req.tag.session) else { return };
        let m = s.membership;
        if !m.is_pending() || *self.rooms.room(m.room).name != *req.room {
            return;
        }
        for e in &replay.entries {
            out.send(key, &replayed(e));
        }
        if let Some(since) = since {
            let last = replay.entries.last().map_or(since, |e| e.id.max(since));
            let end = ServerMsg::ReplayEnd { room: (&*req.room).into(), last, lost: replay.lost, gap: replay.gap };
            out.send(key, &end);
        }
        let active = self.rooms.activate(m.room, key);
        if let Some(s) = self.sessions.get_mut(key) {
            s.membership = active;
        }
    }

    /// HISTORY: a page of the current room's messages older than `before`, then HISTORY_END;
    /// asked of the room's owner like a replay.
    pub(super) fn history_page<O: Outbox>(&mut self, out: &mut O, key: usize, before: u64) {
        let Some(s) = self.sessions.get(key) else { return };
        let (room, session) = (self.rooms.room(s.membership.room).name.clone(), s.id);
        let req = ReplayReq { tag: ReadTag { shard: self.shard, key, session }, room, read: Read::Page { before } };
        self.ask_owner(out, req);
    }

    /// Sends a scroll-back page and its HISTORY_END.
    fn send_page<'e, O: Outbox>(
        &self,
        out: &mut O,
        key: usize,
        room: &str,
        before: u64,
        entries: impl Iterator<Item = &'e Entry>,
        more: bool,
    ) {
        let mut count = 0;
        for e in entries {
            out.send(key, &replayed(e));
            count += 1;
        }
        out.send(key, &ServerMsg::HistoryEnd { room: room.into(), before, count, more });
    }

    /// The history reader's answer to a read asked here (the room's owner): hand it on.
    pub(super) fn history_read<O: Outbox>(&mut self, out: &mut O, done: ReadDone) {
        let req = ReplayReq { tag: done.job.tag, room: done.job.room.clone(), read: done.job.read };
        let replay = match done.job.read {
            Read::Since(_) => self.services.history.merge_read(done),
            Read::Page { .. } => Replay {
                more: done.more > 0,
                failed: !done.ok,
                entries: done.rows.into_iter().map(Arc::new).collect(),
                ..Replay::default()
            },
        };
        self.send_replay(out, req, replay);
    }
}
