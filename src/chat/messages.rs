//! Room and private messages: fan-out to local members (encoded once per format, shared by
//! every recipient), hand-off to the other shards, and delivery of what they hand us.
//!
//! A room's ids are stamped by its owner shard ([`Backplane::room_owner`]): a message sent on
//! another shard travels to the owner first ([`Remote::Stamp`]), which stamps, delivers to its
//! own members and hands the frames to every other hosting shard in stamping order. Each shard
//! receives one owner's stream in order, so every member sees a room's ids increase.
//!
//! [`Backplane::room_owner`]: crate::cluster::Backplane::room_owner

use super::room::RoomId;
use super::{fold, Hub, Outbox};
use crate::cluster::{Frames, Remote, RoomShared, Stamp};
use crate::protocol::{ErrorCode, ServerMsg, WireFormat};
use crate::services::history::AckTo;
use bytes::Bytes;
use std::sync::Arc;

impl Hub {
    /// ROOM_MSG: stamped here if this shard owns the room, else handed to the owner.
    pub(super) fn room_msg<O: Outbox>(&mut self, out: &mut O, key: usize, text: &str) {
        if text.is_empty() {
            return out.send_error(key, ErrorCode::EmptyText, "empty message");
        }
        let Some(session) = self.sessions.get(key) else { return };
        let (from, room, id) = (session.name.clone(), session.membership.room, session.id);
        let r = self.rooms.room(room);
        let sender = AckTo { shard: self.shard, key, session: id };
        if r.owner == self.shard {
            let (name, shared) = (r.name.clone(), r.shared.clone());
            return self.stamp(out, (name, Some(room)), &shared, from, text, sender);
        }
        let stamp = Stamp { room: r.name.clone(), shared: r.shared.clone(), from, text: text.into(), sender };
        self.relay.to(r.owner, Remote::Stamp(stamp));
    }

    /// Stamps a room message of a room this shard owns (id, time), delivers it to the room
    /// everywhere but its sender, and records it (which acknowledges it). `local` is the room's
    /// index here when the caller knows it (a local sender), else it is looked up by name.
    pub(super) fn stamp<O: Outbox>(
        &mut self,
        out: &mut O,
        (room, local): (Arc<str>, Option<RoomId>),
        shared: &RoomShared,
        from: Arc<str>,
        text: &str,
        sender: AckTo,
    ) {
        let (stride, offset) = self.backplane.id_slot(self.shard);
        let id = self.next_seq * stride + offset;
        let ts_ms = self.now_ms;
        self.next_seq += 1;
        let msg = ServerMsg::RoomMsg {
            id,
            ts_ms,
            room: (&*room).into(),
            from: (&*from).into(),
            text: text.into(),
            history: false,
        };
        let mut encoded = [None, None, None];
        let local = local.or_else(|| self.rooms.find(&room));
        let skip = (sender.shard == self.shard).then_some(sender.key);
        if let Some(local) = local {
            self.counters.deliveries += self.fanout(out, local, skip, &mut encoded, Some(&msg));
        }
        let others = shared.shards() & !(1u64 << self.shard);
        if others != 0 {
            let frames = frames_for_others(out, &mut encoded, &msg);
            let skip = Some((sender.shard, sender.key, sender.session));
            self.relay.room(others, &room, &frames, true, skip);
        }
        self.counters.room_msgs += 1;
        self.record(out, sender, (id, ts_ms), room, from, text);
    }

    /// Delivers `msg` to every member of `room` on every shard, except local `except`.
    /// `chat` says whether it is a room message, counted in `deliveries` (presence notices are not).
    pub(super) fn broadcast<O: Outbox>(
        &mut self,
        out: &mut O,
        room: RoomId,
        except: Option<usize>,
        msg: &ServerMsg<'_>,
        chat: bool,
    ) {
        let mut encoded = [None, None, None];
        let n = self.fanout(out, room, except, &mut encoded, Some(msg));
        if chat {
            self.counters.deliveries += n;
        }
        let r = self.rooms.room(room);
        let others = r.shared.shards() & !(1u64 << self.shard);
        if others == 0 {
            return;
        }
        let frames = frames_for_others(out, &mut encoded, msg);
        self.relay.room(others, &r.name, &frames, chat, None);
    }

    /// Queues a frame for every local member of `room` but `except`. `encoded` holds the frame
    /// per format (by `WireFormat::index`); an empty slot is filled by encoding `msg` once.
    /// Returns the number of recipients.
    pub(super) fn fanout<O: Outbox>(
        &self,
        out: &mut O,
        room: RoomId,
        except: Option<usize>,
        encoded: &mut [Option<Bytes>; 3],
        msg: Option<&ServerMsg<'_>>,
    ) -> u64 {
        let mut n = 0;
        for &member in &self.rooms.room(room).members {
            if Some(member) == except {
                continue;
            }
            let Some(format) = out.format(member) else { continue };
            let slot = &mut encoded[format.index()];
            let frame = match (&*slot, msg) {
                (Some(f), _) => f.clone(),
                (None, Some(msg)) => slot.insert(out.encode(format, msg)).clone(),
                (None, None) => continue,
            };
            out.push(member, frame);
            n += 1;
        }
        n
    }

    /// Another shard's room frames: deliver them to the local members of `room` but `skip`
    /// (the sender, if still in the session that sent it).
    pub(super) fn room_from_remote<O: Outbox>(
        &mut self,
        out: &mut O,
        room: &str,
        frames: Frames,
        chat: bool,
        skip: Option<(usize, u64)>,
    ) {
        let Some(id) = self.rooms.find(room) else { return };
        let skip = skip.filter(|&(key, session)| self.sessions.get(key).is_some_and(|s| s.id == session)).map(|s| s.0);
        let mut encoded = frames.into_slots();
        let n = self.fanout(out, id, skip, &mut encoded, None);
        if chat {
            self.counters.deliveries += n;
        }
    }

    /// Queues `frames` for every logged-in local connection.
    pub(super) fn deliver_all<O: Outbox>(&mut self, out: &mut O, frames: &Frames) {
        for key in self.sessions.keys() {
            if let Some(format) = out.reply_format(key) {
                out.push(key, frames.get(format).clone());
            }
        }
    }

    /// PRIVATE_MSG: to the named user wherever they are, echoed to the sender.
    pub(super) fn private_msg<O: Outbox>(&mut self, out: &mut O, key: usize, to: &str, text: &str) {
        if text.is_empty() {
            return out.send_error(key, ErrorCode::EmptyText, "empty message");
        }
        let folded = fold(&mut self.fold_buf, to);
        let target = match self.local_users.get(folded) {
            Some(&k) => self.sessions.name(k).map(|name| (self.shard, k, name.clone())),
            None => self.backplane.locate(folded).map(|e| (e.shard, e.key, e.name)),
        };
        let Some((shard, target, to_name)) = target else {
            return out.send_error(key, ErrorCode::UnknownUser, &format!("no user named {to:?} is online"));
        };
        let Some(from) = self.sessions.name(key).cloned() else { return };
        let msg = ServerMsg::PrivateMsgDelivery {
            ts_ms: self.now_ms,
            from: (&*from).into(),
            to: (&*to_name).into(),
            text: text.into(),
        };
        if shard == self.shard {
            out.send(target, &msg);
        } else {
            let frames = out.encode_both(&msg);
            self.relay.to(shard, Remote::Direct { key: target, user: to_name.clone(), frames });
        }
        if (shard, target) != (self.shard, key) {
            out.send(key, &msg);
        }
        self.counters.private_msgs += 1;
    }

    /// The name of the room `key` is in, with the user's name.
    pub(super) fn user_and_room(&self, key: usize) -> Option<(Arc<str>, Arc<str>)> {
        let s = self.sessions.get(key)?;
        Some((s.name.clone(), self.rooms.room(s.membership.room).name.clone()))
    }
}

/// The frames other shards need, per format: those the local fan-out already encoded, the rest
/// encoded now (the WebSocket frame wraps the JSON line rather than encoding `msg` again).
fn frames_for_others<O: Outbox>(out: &mut O, encoded: &mut [Option<Bytes>; 3], msg: &ServerMsg<'_>) -> Frames {
    let json = encoded[WireFormat::Json.index()].take().unwrap_or_else(|| out.encode(WireFormat::Json, msg));
    Frames::from_fn(|f| match encoded[f.index()].take() {
        Some(frame) => frame,
        None if f == WireFormat::Json => json.clone(),
        None => out.encode_after_json(f, msg, &json),
    })
}
