//! Rooms and their members: the index fan-out walks.
//!
//! Members are kept in a plain `Vec` of connection keys, so a room message is one linear walk.
//! Each member remembers its position ([`Membership::index`]), so leaving is an O(1)
//! `swap_remove`; the member moved into the hole is reported back so its position can be fixed.

use slab::Slab;
use std::collections::HashMap;

/// Index of a room in [`Rooms`]. Stable while the room exists.
pub type RoomId = usize;

/// Where a connection sits: its room and its position in that room's member list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The room.
    pub room: RoomId,
    /// Position in `Room::members`. Invariant: `rooms[room].members[index]` is this connection.
    pub index: usize,
}

/// One room.
#[derive(Debug)]
pub struct Room {
    /// The room's name, as first created.
    pub name: Box<str>,
    /// Connection keys of the members, in no particular order.
    pub members: Vec<usize>,
    /// Kept when empty (the default room); other rooms vanish with their last member.
    persistent: bool,
}

/// All rooms, by id and by name.
#[derive(Debug)]
pub struct Rooms {
    /// Rooms by id.
    rooms: Slab<Room>,
    /// Ids by exact name. Invariant: holds exactly the rooms in `rooms`.
    by_name: HashMap<Box<str>, RoomId>,
}

impl Rooms {
    /// A registry holding the persistent default room.
    pub fn new(default_room: &str) -> Self {
        let mut rooms = Rooms { rooms: Slab::new(), by_name: HashMap::new() };
        let id = rooms.get_or_create(default_room);
        rooms.rooms[id].persistent = true;
        rooms
    }

    /// The room called `name`, created if new.
    pub fn get_or_create(&mut self, name: &str) -> RoomId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = self.rooms.insert(Room { name: name.into(), members: Vec::new(), persistent: false });
        self.by_name.insert(name.into(), id);
        id
    }

    /// The room called `name`, if it exists.
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

    /// Removes the member at `m`. Returns the key of the member moved into its place, whose
    /// membership index must become `m.index`. An emptied, non-persistent room is deleted.
    pub fn leave(&mut self, m: Membership) -> Option<usize> {
        let room = &mut self.rooms[m.room];
        room.members.swap_remove(m.index);
        let moved = room.members.get(m.index).copied();
        if room.members.is_empty() && !room.persistent {
            let room = self.rooms.remove(m.room);
            self.by_name.remove(&room.name);
        }
        moved
    }

    /// Every room with its member count, sorted by name.
    pub fn list(&self) -> Vec<(&str, u32)> {
        let mut v: Vec<_> = self.rooms.iter().map(|(_, r)| (&*r.name, r.members.len() as u32)).collect();
        v.sort_unstable();
        v
    }

    /// Number of rooms.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// True when there are no rooms (never: the default room persists).
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_leave_keeps_indices_consistent() {
        let mut rooms = Rooms::new("general");
        let g = rooms.find("general").unwrap();
        let a = rooms.join(g, 10);
        let _b = rooms.join(g, 11);
        let c = rooms.join(g, 12);
        assert_eq!(rooms.leave(a), Some(12));
        assert_eq!(rooms.room(g).members, vec![12, 11]);
        let c = Membership { index: 0, ..c };
        assert_eq!(rooms.leave(c), Some(11));
        assert_eq!(rooms.room(g).members, vec![11]);
    }

    #[test]
    fn empty_rooms_vanish_but_default_stays() {
        let mut rooms = Rooms::new("general");
        let t = rooms.get_or_create("tech");
        let m = rooms.join(t, 1);
        assert_eq!(rooms.list(), vec![("general", 0), ("tech", 1)]);
        rooms.leave(m);
        assert_eq!(rooms.find("tech"), None);
        assert_eq!(rooms.list(), vec![("general", 0)]);
    }
}
