//! The history RAM cache of one owner shard: each room's last messages, bounded in count per
//! room (`len`) and in bytes for the whole cache (its share of `--history-cache`), the least
//! recently used rooms evicted first.
//!
//! Only a room's owner shard appends to its room's log (the owner stamps the room's ids), so a
//! log is in id order and a lock is shared only with readers (joins, scroll-back).

use super::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// Bytes one cached entry costs beyond its text and names (the `Arc`, the deque slot, the
/// allocation headers): an estimate, so the budget holds for many tiny messages too.
const ENTRY_OVERHEAD: usize = 96;

/// What an entry costs the budget.
pub(super) fn cost(e: &Entry) -> usize {
    ENTRY_OVERHEAD + e.text.len() + e.from.len() + e.room.len()
}

/// One room's cached messages.
#[derive(Debug, Default)]
pub(super) struct Log {
    /// Oldest first, ids increasing. At most `len`.
    pub entries: VecDeque<Arc<Entry>>,
    /// Every message of the room with an id above `floor` is in `entries` or was dropped (see
    /// `dropped_max`). 0 when the log was loaded from the store (or nothing older exists).
    pub floor: u64,
    /// The largest id dropped from `entries` to keep `len` (0: none).
    pub dropped_max: u64,
    /// Bytes charged to the budget.
    pub bytes: usize,
    /// Its key in [`Cache::lru`].
    tick: u64,
}

impl Log {
    /// True when every message with an id above `since` is in `entries`.
    pub fn covers(&self, since: u64) -> bool {
        since >= self.floor && since >= self.dropped_max
    }
}

/// The logs of the rooms one shard owns.
#[derive(Debug, Default)]
pub(super) struct Cache {
    /// Logs by room.
    pub rooms: HashMap<Arc<str>, Log>,
    /// Rooms by last use, oldest first. Invariant: one entry per log, keyed by its `tick`.
    lru: BTreeMap<u64, Arc<str>>,
    /// Next use tick.
    tick: u64,
    /// Bytes charged to the budget by every log.
    pub bytes: usize,
    /// The largest id any evicted log held (memory mode: what a resume may have lost).
    pub evicted_max: u64,
}

impl Cache {
    /// Marks `room` as just used.
    pub fn touch(&mut self, room: &str) {
        let Some((name, log)) = self.rooms.get_key_value(room) else { return };
        let name = name.clone();
        self.lru.remove(&log.tick);
        self.tick += 1;
        self.lru.insert(self.tick, name);
        if let Some(log) = self.rooms.get_mut(room) {
            log.tick = self.tick;
        }
    }

    /// The log of `room`, created empty (with `floor`) if absent, marked used.
    pub fn log(&mut self, room: &Arc<str>, floor: u64) -> &mut Log {
        if !self.rooms.contains_key(room) {
            self.rooms.insert(room.clone(), Log { floor, ..Log::default() });
            self.tick += 1;
            self.lru.insert(self.tick, room.clone());
            if let Some(log) = self.rooms.get_mut(room) {
                log.tick = self.tick;
            }
        } else {
            self.touch(room);
        }
        // Present: inserted above if it was not.
        self.rooms.get_mut(room).expect("log present")
    }

    /// Appends `entry` to `room`'s log, keeping at most `len`.
    pub fn push(&mut self, entry: Arc<Entry>, len: usize, floor: u64) {
        let room = entry.room.clone();
        let add = cost(&entry);
        let log = self.log(&room, floor);
        log.entries.push_back(entry);
        log.bytes += add;
        let mut freed = 0;
        while log.entries.len() > len {
            if let Some(old) = log.entries.pop_front() {
                log.dropped_max = log.dropped_max.max(old.id);
                freed += cost(&old);
            }
        }
        log.bytes -= freed;
        self.bytes = self.bytes + add - freed;
    }

    /// Replaces `room`'s log with `entries` (ids increasing) and the log's bounds.
    pub fn replace(&mut self, room: &Arc<str>, entries: VecDeque<Arc<Entry>>, floor: u64, dropped_max: u64) {
        let bytes: usize = entries.iter().map(|e| cost(e)).sum();
        let log = self.log(room, floor);
        let old = std::mem::replace(&mut log.bytes, bytes);
        log.entries = entries;
        log.floor = floor;
        log.dropped_max = dropped_max;
        self.bytes = self.bytes - old + bytes;
    }

    /// Evicts least recently used logs (never `keep`) until the cache fits `budget` bytes.
    pub fn evict(&mut self, budget: usize, keep: &str) {
        while self.bytes > budget {
            let victim = self.lru.values().find(|r| ***r != *keep).cloned();
            let Some(victim) = victim else { return };
            if let Some(log) = self.rooms.remove(&victim) {
                self.lru.remove(&log.tick);
                self.bytes -= log.bytes;
                let max = log.entries.back().map_or(0, |e| e.id).max(log.dropped_max);
                self.evicted_max = self.evicted_max.max(max);
            }
        }
    }
}
