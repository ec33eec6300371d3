//! The rooms a node follows in the log: where each one's hand-over stands, and its newest
//! messages kept in memory so that most replays need no read from NATS (a join storm of
//! thousands of members costs one read per room, not one per member).

use crate::services::history::{Entry, Replay};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// One followed room.
#[derive(Debug, Default)]
struct Followed {
    /// The highest sequence handed to the local shards; `None` while the follower is getting
    /// ready. Every message of the room above it is still to come; none at or below it is
    /// handed over again.
    at: Option<u64>,
    /// The room's newest messages, oldest first. Invariant: exactly the room's messages with
    /// `floor < id <= at` (so a replay "since n" with `n >= floor` is answered from here).
    recent: VecDeque<Arc<Entry>>,
    /// See `recent`.
    floor: u64,
    /// Bytes `recent` holds (counted in [`Rooms::bytes`]).
    bytes: usize,
}

/// The followed rooms of one node.
#[derive(Debug)]
pub(super) struct Rooms {
    rooms: HashMap<Arc<str>, Followed>,
    /// Messages kept per room (the replay length).
    per_room: usize,
    /// Bytes kept over all rooms; past it the room that grew drops what it keeps.
    budget: usize,
    /// Bytes kept now.
    bytes: usize,
}

/// Memory one kept message costs, roughly.
fn cost(e: &Entry) -> usize {
    std::mem::size_of::<Entry>() + e.from.len() + e.text.len() + 32
}

impl Rooms {
    pub(super) fn new(per_room: usize, budget: usize) -> Rooms {
        Rooms { rooms: HashMap::new(), per_room, budget, bytes: 0 }
    }

    /// Starts following `room` (not ready yet); what was kept for it is dropped.
    pub(super) fn begin(&mut self, room: &Arc<str>) {
        self.remove(room);
        self.rooms.insert(room.clone(), Followed::default());
    }

    /// The follower of `room` is ready at `end`: nothing kept yet, nothing missing above `end`.
    /// False if the room is no longer followed.
    pub(super) fn ready(&mut self, room: &str, end: u64) -> bool {
        let Some(f) = self.rooms.get_mut(room) else { return false };
        self.bytes -= f.bytes;
        *f = Followed { at: Some(end), floor: end, ..Followed::default() };
        true
    }

    /// Where `room`'s hand-over stands: `None` if not followed, `Some(None)` if not ready.
    pub(super) fn at(&self, room: &str) -> Option<Option<u64>> {
        self.rooms.get(room).map(|f| f.at)
    }

    /// Stops following `room`.
    pub(super) fn remove(&mut self, room: &str) {
        if let Some(f) = self.rooms.remove(room) {
            self.bytes -= f.bytes;
        }
    }

    /// Moves `room` past `seq` if it is the next to hand over, keeping the message (made by
    /// `entry`, only when kept); false if it is not (old, or the room is not followed or ready).
    pub(super) fn advance(&mut self, room: &str, seq: u64, entry: impl FnOnce() -> Entry) -> bool {
        let Some(f) = self.rooms.get_mut(room) else { return false };
        match f.at {
            Some(at) if seq > at => f.at = Some(seq),
            _ => return false,
        }
        if self.per_room == 0 {
            f.floor = seq;
            return true;
        }
        let e = Arc::new(entry());
        f.bytes += cost(&e);
        self.bytes += cost(&e);
        f.recent.push_back(e);
        while f.recent.len() > self.per_room {
            Self::drop_oldest(f, &mut self.bytes);
        }
        if self.bytes > self.budget {
            // Over the budget: this room keeps nothing (it stays exact: the floor moves up).
            while !f.recent.is_empty() {
                Self::drop_oldest(f, &mut self.bytes);
            }
        }
        true
    }

    fn drop_oldest(f: &mut Followed, bytes: &mut usize) {
        if let Some(old) = f.recent.pop_front() {
            f.floor = old.id;
            f.bytes -= cost(&old);
            *bytes -= cost(&old);
        }
    }

    /// A replay of `room` from what is kept, if it can be answered here: "since n" with
    /// `n >= floor`, or the newest `limit` when that many are kept (or all there are).
    pub(super) fn replay(&self, room: &str, since: Option<u64>, limit: usize) -> Option<Replay> {
        let f = self.rooms.get(room).filter(|f| f.at.is_some())?;
        let newer: Vec<Arc<Entry>> = match since {
            Some(n) if n >= f.floor => f.recent.iter().filter(|e| e.id > n).cloned().collect(),
            None if f.recent.len() >= limit || f.floor == 0 => f.recent.iter().cloned().collect(),
            _ => return None,
        };
        let skip = newer.len().saturating_sub(limit);
        let lost = if since.is_some() { skip as u64 } else { 0 };
        let entries = newer.into_iter().skip(skip).collect();
        Some(Replay { entries, gap: lost > 0, lost, ..Replay::default() })
    }

    /// Keeps what a read from the log found: `read` holds every message of the room with
    /// `floor < id <= at` (the room's position now), oldest first.
    pub(super) fn seed(&mut self, room: &str, floor: u64, read: &[Arc<Entry>]) {
        let Some(f) = self.rooms.get_mut(room).filter(|f| f.at.is_some()) else { return };
        if self.per_room == 0 || floor >= f.floor {
            return; // nothing better than what is kept
        }
        self.bytes -= f.bytes;
        let keep = &read[read.len().saturating_sub(self.per_room)..];
        f.floor = if keep.len() < read.len() { read[read.len() - keep.len() - 1].id } else { floor };
        f.recent = keep.iter().cloned().collect();
        f.bytes = keep.iter().map(|e| cost(e)).sum();
        self.bytes += f.bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64) -> Entry {
        Entry { id, ts_ms: 0, room: "r".into(), from: "a".into(), text: format!("m{id}").into() }
    }

    fn ids(r: &Replay) -> Vec<u64> {
        r.entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn a_room_keeps_its_newest_and_answers_replays_it_can() {
        let mut rooms = Rooms::new(3, usize::MAX);
        let room: Arc<str> = "r".into();
        rooms.begin(&room);
        assert!(rooms.replay("r", None, 3).is_none(), "not ready");
        assert!(rooms.ready("r", 10));
        for seq in [12, 15, 11, 17, 20] {
            // 11 is older than 15: not handed over again.
            assert_eq!(rooms.advance("r", seq, || entry(seq)), seq != 11);
        }
        assert_eq!(rooms.at("r"), Some(Some(20)));
        assert_eq!(ids(&rooms.replay("r", Some(15), 3).expect("kept")), vec![17, 20]);
        assert_eq!(ids(&rooms.replay("r", None, 3).expect("three kept")), vec![15, 17, 20]);
        assert_eq!(ids(&rooms.replay("r", Some(12), 3).expect("all after 12 kept")), vec![15, 17, 20]);
        assert!(rooms.replay("r", Some(11), 3).is_none(), "12 was dropped: it would be missing");
        assert!(rooms.replay("r", None, 4).is_none(), "older ones are in the log only");
        let cut = rooms.replay("r", Some(15), 1).expect("kept");
        assert_eq!((ids(&cut), cut.gap, cut.lost), (vec![20], true, 1));
    }

    #[test]
    fn a_read_from_the_log_seeds_a_room_and_the_budget_bounds_memory() {
        let mut rooms = Rooms::new(2, usize::MAX);
        let room: Arc<str> = "r".into();
        rooms.begin(&room);
        rooms.ready("r", 7);
        let read: Vec<Arc<Entry>> = [3, 5, 7].into_iter().map(|i| Arc::new(entry(i))).collect();
        rooms.seed("r", 0, &read);
        assert_eq!(ids(&rooms.replay("r", Some(5), 2).expect("seeded")), vec![7]);
        assert_eq!(ids(&rooms.replay("r", None, 2).expect("seeded")), vec![5, 7]);
        assert!(rooms.replay("r", Some(2), 2).is_none(), "3 was cut to keep two");
        rooms.seed("r", 4, &read[2..]); // no better than what is kept: ignored
        assert_eq!(ids(&rooms.replay("r", None, 2).expect("kept")), vec![5, 7]);

        let mut small = Rooms::new(10, 1);
        small.begin(&room);
        small.ready("r", 0);
        assert!(small.advance("r", 1, || entry(1)));
        assert_eq!(small.bytes, 0, "over the budget: nothing kept");
        assert_eq!(ids(&small.replay("r", Some(1), 5).expect("still exact")), Vec::<u64>::new());
        small.remove("r");
        assert_eq!(small.at("r"), None);
    }
}
