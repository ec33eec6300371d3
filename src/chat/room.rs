//! This shard's rooms and their local members: the index fan-out walks.
//!
//! Members are kept in a plain `Vec` of connection keys, so a room message is one linear walk.
//! Each member remembers its position ([`Membership::index`]), so leaving is an O(1)
//! `swap_remove`; the member moved into the hole is reported back so its position can be fixed.
//! A room exists here while it has local members; the [`Directory`](crate::cluster) knows the
//! room across shards.

use crate::cluster::RoomShared;
use slab::Slab;
use std::collections::HashMap;
use std::sync::Arc;

/// Index of a room in [`Rooms`]. Stable while the room has local members.
pub type RoomId = usize;

/// Where a connection sits: its room and its position in that room's member list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The room.
    pub room: RoomId,
    /// Position in `Room::members`. Invariant: `rooms[room].members[index]` is this connection,
    /// or `index` is [`PENDING`] and the connection is in `rooms[room].pending`.
    pub index: usize,
}

/// The index of a member still waiting for its history replay: it gets no live frames yet.
pub const PENDING: usize = usize::MAX;

impl Membership {
    /// True while the member waits for its replay.
    pub fn is_pending(&self) -> bool {
        self.index == PENDING
    }
}

/// One room, as seen from this shard.
#[derive(Debug)]
pub struct Room {
    /// The room's name (shared with the directory).
    pub name: Arc<str>,
    /// Keys of the local members, in no particular order. `members` and `pending` are never
    /// both empty while the room exists.
    pub members: Vec<usize>,
    /// Keys of members waiting for their replay (few, short-lived).
    pub pending: Vec<usize>,
    /// Which other shards host members (read lock-free per message).
    pub shared: Arc<RoomShared>,
    /// The shard that stamps the room's ids (`Backplane::room_owner`, asked once).
    pub owner: usize,
}

/// This shard's rooms, by id and by name.
#[derive(Debug, Default)]
pub struct Rooms {
    /// Rooms by id.
    rooms: Slab<Room>,
    /// Ids by exact name. Invariant: holds exactly the rooms in `rooms`.
    by_name: HashMap<Arc<str>, RoomId>,
}

impl Rooms {
    /// The local room called `name`, created (with the directory's shared state and its owner
    /// shard) if new here.
    pub fn get_or_create(&mut self, name: &Arc<str>, shared: Arc<RoomShared>, owner: usize) -> RoomId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id =
            self.rooms.insert(Room { name: name.clone(), members: Vec::new(), pending: Vec::new(), shared, owner });
        self.by_name.insert(name.clone(), id);
        id
    }

    /// The local room called `name`, if it has local members.
    pub fn find(&self, name: &str) -> Option<RoomId> {
        self.by_name.get(name).copied()
    }

    /// The room with this id. Panics on an id that does not exist (a server bug, not input).
    pub fn room(&self, id: RoomId) -> &Room {
        &self.rooms[id]
    }

    /// Adds connection `key` to room `id`.
    pub fn join(&mut self, id: RoomId, key: usize) -> Membership {
        let members = &mut self.rooms[id].members;
        members.push(key);
        Membership { room: id, index: members.len() - 1 }
    }

    /// Adds connection `key` to room `id` as waiting for its replay.
    pub fn join_pending(&mut self, id: RoomId, key: usize) -> Membership {
        self.rooms[id].pending.push(key);
        Membership { room: id, index: PENDING }
    }

    /// Moves waiting member `key` of room `id` into the member list.
    pub fn activate(&mut self, id: RoomId, key: usize) -> Membership {
        let room = &mut self.rooms[id];
        room.pending.retain(|&k| k != key);
        self.join(id, key)
    }

    /// Removes connection `key`, member at `m`. Returns the key of the member moved into its
    /// place, whose membership index must become `m.index`. A room left without local members
    /// (live or waiting) is dropped.
    pub fn leave(&mut self, m: Membership, key: usize) -> Option<usize> {
        let room = &mut self.rooms[m.room];
        let moved = if m.is_pending() {
            room.pending.retain(|&k| k != key);
            None
        } else {
            room.members.swap_remove(m.index);
            room.members.get(m.index).copied()
        };
        if room.members.is_empty() && room.pending.is_empty() {
            let room = self.rooms.remove(m.room);
            self.by_name.remove(&room.name);
        }
        moved
    }

    /// True when no room has local members.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_leave_keeps_indices_consistent() {
        let mut rooms = Rooms::default();
        let g = rooms.get_or_create(&"general".into(), Arc::default(), 0);
        let a = rooms.join(g, 10);
        let _b = rooms.join(g, 11);
        let c = rooms.join(g, 12);
        assert_eq!(rooms.leave(a, 10), Some(12));
        assert_eq!(rooms.room(g).members, vec![12, 11]);
        let c = Membership { index: 0, ..c };
        assert_eq!(rooms.leave(c, 12), Some(11));
        assert_eq!(rooms.room(g).members, vec![11]);
    }

    #[test]
    fn rooms_without_local_members_vanish() {
        let mut rooms = Rooms::default();
        let t = rooms.get_or_create(&"tech".into(), Arc::default(), 0);
        let m = rooms.join(t, 1);
        assert_eq!(rooms.find("tech"), Some(t));
        rooms.leave(m, 1);
        assert_eq!(rooms.find("tech"), None);
        assert!(rooms.is_empty());
    }
}
