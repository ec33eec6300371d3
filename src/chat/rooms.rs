//! Rooms: switching rooms, presence notices, and the user and room lists.

use super::page::{fixed_cost, str_cost, take_page};
use super::presence::Change;
use super::room::{Membership, RoomId};
use super::{Hub, Outbox};
use crate::protocol::validate::{check_room, normalize_name};
use crate::protocol::{ErrorCode, ServerMsg, SystemKind};
use std::borrow::Cow;
use std::sync::Arc;

impl Hub {
    /// JOIN_ROOM: leave the current room (telling it), enter the new one, replay its history
    /// (all of the last `history_len`, or only after id `since`), tell it.
    pub(super) fn join<O: Outbox>(&mut self, out: &mut O, key: usize, room: &str, since: Option<u64>) {
        let normalized = normalize_name(room);
        let room: &str = &normalized;
        if let Err(e) = check_room(room) {
            return out.send_error(key, ErrorCode::InvalidRoom, &format!("invalid room name: {e}"));
        }
        let Some(session) = self.sessions.get(key) else { return };
        let (name, old) = (session.name.clone(), session.membership);
        let current = self.rooms.room(old.room).name.clone();
        if *current == *room {
            out.send(key, &ServerMsg::JoinRoom { room: room.into() });
            if since.is_some() && !old.is_pending() {
                // A resume of the room it is in: wait for the replay again, then carry on.
                let waiting = self.rooms.join_pending(old.room, key);
                self.move_member(key, old, waiting);
                self.start_replay(out, key, current, since);
            }
            return;
        }
        self.leave_room(out, key, old, SystemKind::Leave);
        let (id, membership) = self.enter_room(key, &name, room);
        if let Some(s) = self.sessions.get_mut(key) {
            s.membership = membership;
        }
        out.send(key, &ServerMsg::JoinRoom { room: room.into() });
        let canonical = self.rooms.room(id).name.clone();
        self.start_replay(out, key, canonical, since);
        self.presence(out, id, key, SystemKind::Join, &name);
    }

    /// Adds `key` (user `name`) to `room` here and on the backplane, waiting for its replay
    /// ([`Hub::start_replay`]).
    pub(super) fn enter_room(&mut self, key: usize, name: &Arc<str>, room: &str) -> (RoomId, Membership) {
        let (canonical, shared) = self.backplane.join(room, self.shard, name);
        let owner = self.backplane.room_owner(&canonical);
        let id = self.rooms.get_or_create(&canonical, shared, owner);
        (id, self.rooms.join_pending(id, key))
    }

    /// Replaces `key`'s membership `old` by `new` (same room), fixing the moved member's index.
    fn move_member(&mut self, key: usize, old: super::room::Membership, new: Membership) {
        if let Some(moved) = self.rooms.leave(old, key) {
            if let Some(s) = self.sessions.get_mut(moved) {
                s.membership.index = old.index;
            }
        }
        if let Some(s) = self.sessions.get_mut(key) {
            s.membership = new;
        }
    }

    /// Takes `key` out of its room, fixing the moved member's index, and tells the room.
    pub(super) fn leave_room<O: Outbox>(&mut self, out: &mut O, key: usize, m: Membership, kind: SystemKind) {
        let Some(name) = self.sessions.name(key).cloned() else { return };
        // Announce before the room can vanish with its last member.
        self.presence(out, m.room, key, kind, &name);
        let room_name = self.rooms.room(m.room).name.clone();
        if let Some(moved) = self.rooms.leave(m, key) {
            if let Some(s) = self.sessions.get_mut(moved) {
                s.membership.index = m.index;
            }
        }
        self.backplane.leave(&room_name, self.shard, &name);
    }

    /// Tells everyone in `room` but `who` that `who` joined, left or disconnected — unless the
    /// room is over the presence limit or the server is shutting down. At once (SYSTEM_MSG) in a
    /// quiet room; otherwise gathered into the room's next PRESENCE notice ([`Hub::flush_presence`]).
    pub(super) fn presence<O: Outbox>(
        &mut self,
        out: &mut O,
        room: RoomId,
        who: usize,
        kind: SystemKind,
        name: &Arc<str>,
    ) {
        let r = self.rooms.room(room);
        let room_name = r.name.clone();
        if self.quiet || (self.presence_limit > 0 && self.backplane.room_size(&room_name) > self.presence_limit) {
            return;
        }
        let change = if kind == SystemKind::Join { Change::Joined } else { Change::Left };
        if !self.coalescer.note(&room_name, &r.shared, change, name, self.now_ms) {
            return;
        }
        let verb = match kind {
            SystemKind::Join => "joined",
            SystemKind::Leave => "left",
            _ => "disconnected from",
        };
        let text = format!("{name} {verb} {room_name}");
        let msg = ServerMsg::SystemMsg { kind, room: (&*room_name).into(), user: (&**name).into(), text: text.into() };
        self.broadcast(out, room, Some(who), &msg, false);
    }

    /// Sends one PRESENCE notice for every room whose window ended with changes gathered: encoded
    /// once per format, shared by every local member and handed to every other shard hosting
    /// members (the room may have none left here).
    pub(super) fn flush_presence<O: Outbox>(&mut self, out: &mut O) {
        if self.quiet {
            return self.coalescer.clear();
        }
        let mut due = Vec::new();
        self.coalescer.due(self.now_ms, |room, shared, gathered| due.push((room.clone(), shared.shards(), gathered)));
        fn names(v: &[Arc<str>]) -> Vec<Cow<'_, str>> {
            v.iter().map(|n| Cow::Borrowed(&**n)).collect()
        }
        for (room, mask, g) in due {
            let msg = ServerMsg::Presence {
                room: (&*room).into(),
                joined: names(&g.joined),
                joined_more: g.joined_more,
                left: names(&g.left),
                left_more: g.left_more,
            };
            let frames = out.encode_both(&msg);
            if let Some(id) = self.rooms.find(&room) {
                let mut encoded = frames.clone().into_slots();
                self.fanout(out, id, None, &mut encoded, None);
            }
            self.relay.room(mask & !(1u64 << self.shard), &room, &frames, false, None);
        }
    }

    /// LIST_USERS: the members of the sender's room, everywhere, sorted, one page after the
    /// cursor `after` (a user name).
    pub(super) fn list_users<O: Outbox>(&self, out: &mut O, key: usize, after: Option<&str>) {
        let Some(session) = self.sessions.get(key) else { return };
        let Some(format) = out.reply_format(key) else { return };
        let room = &self.rooms.room(session.membership.room).name;
        let mut names = self.backplane.members(room);
        names.sort_unstable();
        let rest = names.iter().filter(|n| after.is_none_or(|a| &***n > a));
        let (users, next) = take_page(rest, self.services.list_page, |n| str_cost(format, n), |n| n.to_string());
        let users = users.into_iter().map(|n| (&**n).into()).collect();
        let next = next.map(Into::into);
        out.send(key, &ServerMsg::ListUsers { room: (&**room).into(), users, next });
    }

    /// LIST_ROOMS: every room with its member count, sorted by name, one page after the cursor
    /// `after` (a room name).
    pub(super) fn list_rooms<O: Outbox>(&self, out: &mut O, key: usize, after: Option<&str>) {
        let Some(format) = out.reply_format(key) else { return };
        let all = self.backplane.rooms();
        let rest = all.iter().filter(|(n, _)| after.is_none_or(|a| &**n > a));
        let cost = |(n, _): &&(Arc<str>, u32)| str_cost(format, n) + fixed_cost(format, 4, 26);
        let (rooms, next) = take_page(rest, self.services.list_page, cost, |(n, _)| n.to_string());
        let rooms = rooms.into_iter().map(|(n, c)| ((&**n).into(), *c)).collect();
        out.send(key, &ServerMsg::ListRooms { rooms, next: next.map(Into::into) });
    }
}
