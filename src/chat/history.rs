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
            out.send_error(to.key, ErrorCode::Internal, &format!("message {id} could not be stored"));
        }
    }

    /// `key` (waiting in `room`) asks for its replay: from the owner, here or on its shard.
    pub(super) fn start_replay<O: Outbox>(&mut self, out: &mut O, key: usize, room: Arc<str>, since: Option<u64>) {
        let Some(session) = self.sessions.get(key).map(|s| s.id) else { return };
        let req = ReplayReq { tag: ReadTag { shard: self.shard, key, session }, room, since };
        if self.services.history.replay_len() == 0 {
            // Replay is off (or nothing is kept): nothing to replay, and a resume may have
            // missed anything.
            return self.replayed(out, req, Replay { gap: since.is_some(), ..Replay::default() });
        }
        let owner = self.backplane.room_owner(&req.room);
        if owner == self.shard {
            self.replay_at_owner(out, req);
        } else {
            self.relay.to(owner, Remote::Replay(req));
        }
    }

    /// On the room's owner: answer a replay request from the cache, or ask the history reader.
    pub(super) fn replay_at_owner<O: Outbox>(&mut self, out: &mut O, req: ReplayReq) {
        let history = &self.services.history;
        if let Some(replay) = history.cached_since(&req.room, req.since) {
            return self.send_replay(out, req, replay);
        }
        let job = ReadJob {
            reply: self.shard,
            tag: req.tag,
            room: req.room.clone(),
            read: Read::Since(req.since),
            limit: history.replay_len().max(1),
        };
        if !history.read(job) {
            self.send_replay(out, req, Replay { gap: true, ..Replay::default() });
        }
    }

    /// Hands a replay to the waiting member's shard (this one, or through the relay, after
    /// every room frame already handed over).
    fn send_replay<O: Outbox>(&mut self, out: &mut O, req: ReplayReq, replay: Replay) {
        if req.tag.shard == self.shard {
            self.replayed(out, req, replay);
        } else {
            self.relay.to(req.tag.shard, Remote::Replayed { req, replay });
        }
    }

    /// The replay for a waiting member: send it (and REPLAY_END for a resume), then let the
    /// member in. A member that left, or went elsewhere, meanwhile gets nothing.
    pub(super) fn replayed<O: Outbox>(&mut self, out: &mut O, req: ReplayReq, replay: Replay) {
        let key = req.tag.key;
        let Some(s) = self.sessions.get(key).filter(|s| s.id == req.tag.session) else { return };
        let m = s.membership;
        if !m.is_pending() || *self.rooms.room(m.room).name != *req.room {
            return;
        }
        for e in &replay.entries {
            out.send(key, &replayed(e));
        }
        if let Some(since) = req.since {
            let last = replay.entries.last().map_or(since, |e| e.id.max(since));
            let end = ServerMsg::ReplayEnd { room: (&*req.room).into(), last, lost: replay.lost, gap: replay.gap };
            out.send(key, &end);
        }
        let active = self.rooms.activate(m.room, key);
        if let Some(s) = self.sessions.get_mut(key) {
            s.membership = active;
        }
    }

    /// HISTORY: a page of the current room's messages older than `before`, then HISTORY_END.
    pub(super) fn history_page<O: Outbox>(&mut self, out: &mut O, key: usize, before: u64) {
        let Some(s) = self.sessions.get(key) else { return };
        let (room, session) = (self.rooms.room(s.membership.room).name.clone(), s.id);
        let history = &self.services.history;
        let limit = HISTORY_PAGE.min(history.replay_len().max(1));
        if let Some((entries, more)) = history.cached_page(&room, before, limit) {
            return self.send_page(out, key, &room, before, entries.iter().map(|e| &**e), more);
        }
        let tag = ReadTag { shard: self.shard, key, session };
        let job = ReadJob { reply: self.shard, tag, room: room.clone(), read: Read::Page { before }, limit };
        if !history.read(job) {
            out.send_error(key, ErrorCode::Internal, "history is not available");
        }
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

    /// The history reader's answer: a replay (here, the room's owner) or a scroll-back page.
    pub(super) fn history_read<O: Outbox>(&mut self, out: &mut O, done: ReadDone) {
        match done.job.read {
            Read::Since(since) => {
                let req = ReplayReq { tag: done.job.tag, room: done.job.room.clone(), since };
                let replay = self.services.history.merge_read(done);
                self.send_replay(out, req, replay);
            }
            Read::Page { before } => {
                let key = done.job.tag.key;
                if self.sessions.get(key).map(|s| s.id) != Some(done.job.tag.session) {
                    return;
                }
                if !done.ok {
                    return out.send_error(key, ErrorCode::Internal, "history could not be read");
                }
                self.send_page(out, key, &done.job.room, before, done.rows.iter(), done.more > 0);
            }
        }
    }
}
