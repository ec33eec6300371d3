//! What the session remembers of each room it has been in: the ids it has shown (so a replay
//! after reconnecting never shows a message twice), the newest id (where a resume starts) and
//! the oldest (where scroll-back continues).

use std::collections::{HashMap, HashSet, VecDeque};

/// Per-room memory, for every room visited. Invariant: at most [`RoomLog::MAX_ROOMS`] rooms;
/// each remembers at most [`RoomLog::MAX_SEEN`] ids.
#[derive(Debug, Default)]
pub(super) struct RoomLog {
    /// By room name.
    rooms: HashMap<String, RoomState>,
}

/// One room's memory.
#[derive(Debug, Default)]
struct RoomState {
    /// The newest (largest) message id shown: a reconnect asks for what came after it.
    newest: Option<u64>,
    /// The oldest message id shown: `/history` asks for what came before it.
    oldest: Option<u64>,
    /// Ids shown, for dropping repeats. Invariant: `seen` and `order` hold the same ids.
    seen: HashSet<u64>,
    /// The same ids, oldest first, so the oldest are forgotten first.
    order: VecDeque<u64>,
}

impl RoomLog {
    /// Rooms remembered; the bound keeps a client that wanders through many rooms small.
    pub(super) const MAX_ROOMS: usize = 256;
    /// Ids remembered per room for dropping repeats; a replay is at most a history's length.
    pub(super) const MAX_SEEN: usize = 4096;

    /// A room message arrived: true if it is new (show it), false if this id was shown before.
    pub(super) fn first_sight(&mut self, room: &str, id: u64) -> bool {
        if !self.rooms.contains_key(room) && self.rooms.len() >= Self::MAX_ROOMS {
            // Forget an arbitrary other room: only its repeat-dropping and resume point are lost.
            if let Some(k) = self.rooms.keys().next().cloned() {
                self.rooms.remove(&k);
            }
        }
        let r = self.rooms.entry(room.to_string()).or_default();
        if !r.seen.insert(id) {
            return false;
        }
        r.order.push_back(id);
        if r.order.len() > Self::MAX_SEEN {
            if let Some(old) = r.order.pop_front() {
                r.seen.remove(&old);
            }
        }
        r.newest = Some(r.newest.map_or(id, |n| n.max(id)));
        r.oldest = Some(r.oldest.map_or(id, |o| o.min(id)));
        true
    }

    /// The newest id shown in `room`, where a resume starts.
    pub(super) fn newest(&self, room: &str) -> Option<u64> {
        self.rooms.get(room).and_then(|r| r.newest)
    }

    /// The oldest id shown in `room`, where scroll-back continues.
    pub(super) fn oldest(&self, room: &str) -> Option<u64> {
        self.rooms.get(room).and_then(|r| r.oldest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_dropped_and_ends_tracked() {
        let mut log = RoomLog::default();
        assert!(log.first_sight("general", 5));
        assert!(log.first_sight("general", 3));
        assert!(log.first_sight("general", 9));
        assert!(!log.first_sight("general", 5), "a replayed message");
        assert!(log.first_sight("tech", 5), "ids are per room");
        assert_eq!((log.newest("general"), log.oldest("general")), (Some(9), Some(3)));
        assert_eq!(log.newest("nowhere"), None);
    }

    #[test]
    fn memory_is_bounded() {
        let mut log = RoomLog::default();
        for id in 0..(RoomLog::MAX_SEEN as u64 + 10) {
            assert!(log.first_sight("r", id));
        }
        assert!(log.first_sight("r", 0), "the oldest ids are forgotten first");
        assert!(!log.first_sight("r", RoomLog::MAX_SEEN as u64 + 9));
        for i in 0..RoomLog::MAX_ROOMS + 5 {
            log.first_sight(&format!("room{i}"), 1);
        }
        assert_eq!(log.rooms.len(), RoomLog::MAX_ROOMS);
    }
}
