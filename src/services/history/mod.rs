//! Room history: the last N messages of a room, replayed (flagged HISTORY) on joining it,
//! resumed after an id ("since id N"), and paged back (scroll-back).
//!
//! A bounded RAM cache ([`cache`]) answers most reads without the disk: per owner shard, each
//! room's last `len` messages, the whole cache within `--history-cache` bytes, least recently
//! used rooms evicted. What it cannot answer goes to the store's reader thread
//! ([`HistoryStore::read`]) and comes back as [`Done::HistoryRead`](crate::services::Done);
//! nothing is loaded at start but the largest id. Durability is a [`HistoryStore`]'s job: with
//! one, ROOM_MSG_ACK waits for the store to say a message is durable
//! ([`Done::Durable`](crate::services::Done::Durable)); without one (memory mode) ACK means
//! accepted. [`sqlite`] is the store today; another store is one file beside it.

mod cache;
pub mod sqlite;

use cache::Cache;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub use crate::config::{HistoryMode, Retention};

/// Errors opening the history database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    #[error("history database {path}: {source}")]
    Db { path: String, source: rusqlite::Error },
    #[error("cannot start the history writer: {0}")]
    Thread(#[from] std::io::Error),
}

/// One stored room message.
#[derive(Debug)]
pub struct Entry {
    /// The server's message id.
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// The room.
    pub room: Arc<str>,
    /// The sender's name.
    pub from: Arc<str>,
    /// The text.
    pub text: Box<str>,
}

/// Who to acknowledge once a message is committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckTo {
    /// The sender's shard.
    pub shard: usize,
    /// The sender's connection on that shard.
    pub key: usize,
    /// The sender's login session on that shard. Keys are reused and a user may log in again
    /// on the same key; session numbers never repeat, so a closed session's acks reach nobody.
    pub session: u64,
}

/// One message a store made durable, and whom to tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The sender.
    pub to: AckTo,
    /// The message id.
    pub id: u64,
    /// The message's time.
    pub ts_ms: u64,
}

/// Messages one shard may now acknowledge.
#[derive(Debug, Default)]
pub struct DurableAcks {
    /// One per committed message.
    pub acks: Vec<Ack>,
    /// False when the commit failed: the senders get an error instead of an ack.
    pub ok: bool,
}

/// Where messages are made durable. Appends are queued (never blocking the caller) and each
/// sender is told through [`crate::services::Links`] once its message is stored, or failed.
pub trait HistoryStore: Send + Sync + std::fmt::Debug {
    /// Queues `entry`; the answer goes to `ack`. False if it could not be queued (then nobody
    /// will answer).
    fn append(&self, entry: Arc<Entry>, ack: AckTo) -> bool;
    /// Queues a read; the answer goes to shard `job.reply` as
    /// [`Done::HistoryRead`](crate::services::Done::HistoryRead). False if it could not be queued.
    fn read(&self, job: ReadJob) -> bool;
}

/// Which shard owns `room` among `shards`: it stamps the room's ids and caches its history.
/// FNV-1a of the name, so every shard (and, later, every node) agrees without asking.
pub fn owner(room: &str, shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in room.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

/// Messages to replay, and what is missing.
#[derive(Debug, Default)]
pub struct Replay {
    /// Oldest first.
    pub entries: Vec<Arc<Entry>>,
    /// True when history no longer held every message asked for.
    pub gap: bool,
    /// How many of those are known to be missing (0: none, or unknown).
    pub lost: u64,
    /// A scroll-back page only: older messages remain.
    pub more: bool,
    /// A scroll-back page only: the read failed (`entries` is empty).
    pub failed: bool,
}

/// A read the cache could not answer, for the store's reader thread.
#[derive(Clone, Debug)]
pub struct ReadJob {
    /// The shard the answer goes to.
    pub reply: usize,
    /// Whose read it is (handed back untouched).
    pub tag: ReadTag,
    /// The room.
    pub room: Arc<str>,
    /// What to read.
    pub read: Read,
    /// At most this many messages.
    pub limit: usize,
}

/// Who asked for a read, handed back with the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadTag {
    /// The asking connection's shard.
    pub shard: usize,
    /// The asking connection.
    pub key: usize,
    /// Its login session.
    pub session: u64,
}

/// What a read asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// The newest `limit` messages with an id above `since` (all ids when `None`).
    Since(Option<u64>),
    /// The newest `limit` messages with an id below `before` (0: no bound).
    Page { before: u64 },
}

/// The store's answer to a [`ReadJob`].
#[derive(Debug)]
pub struct ReadDone {
    /// The job, as submitted.
    pub job: ReadJob,
    /// The messages, oldest first.
    pub rows: Vec<Entry>,
    /// Messages that matched beyond `limit` (older than `rows`).
    pub more: u64,
    /// True when retention deleted messages the read asked for.
    pub pruned: bool,
    /// False when the read failed (then `rows` is empty).
    pub ok: bool,
}

/// Room history shared by all shards.
#[derive(Debug)]
pub struct History {
    /// Messages replayed per room (and cached per room).
    len: usize,
    /// Bytes each slot's cache may hold: the cache budget shared evenly by the slots.
    budget: usize,
    /// One cache per owner shard ([`owner`]): only the owner appends to its rooms' logs.
    slots: Vec<Mutex<Cache>>,
    /// The largest message id stored at start (new ids must be larger).
    max_id: u64,
    /// Where messages are made durable and read back; `None` in memory mode.
    store: Option<Box<dyn HistoryStore>>,
}

impl History {
    /// History kept in RAM only: `len` messages per room, `budget` bytes in all, `shards` owners.
    pub fn memory(len: usize, budget: usize, shards: usize) -> History {
        History::new(len, budget, shards, None, 0)
    }

    /// History made durable by `store`, whose largest stored id is `max_id`.
    pub fn with_store(len: usize, budget: usize, shards: usize, store: Box<dyn HistoryStore>, max_id: u64) -> History {
        History::new(len, budget, shards, Some(store), max_id)
    }

    fn new(len: usize, budget: usize, shards: usize, store: Option<Box<dyn HistoryStore>>, max_id: u64) -> History {
        let n = shards.max(1);
        History { len, budget: budget / n, slots: (0..n).map(|_| Mutex::default()).collect(), max_id, store }
    }

    /// Messages replayed on a join (and the most a resume replays).
    pub fn replay_len(&self) -> usize {
        self.len
    }

    /// True when acknowledgements wait for the store to make messages durable.
    pub fn is_durable(&self) -> bool {
        self.store.is_some()
    }

    /// The largest id already stored: ids given out from now on must be larger.
    pub fn max_id(&self) -> u64 {
        self.max_id
    }

    /// True when appended messages are kept at all (replayed, or written to the database).
    pub fn is_kept(&self) -> bool {
        self.len > 0 || self.store.is_some()
    }

    /// Bytes the cache holds now (all slots).
    pub fn cached_bytes(&self) -> usize {
        self.slots.iter().map(|s| lock(s).bytes).sum()
    }

    fn slot(&self, room: &str) -> std::sync::MutexGuard<'_, Cache> {
        lock(&self.slots[owner(room, self.slots.len())])
    }

    /// Records a message (called by the room's owner, in id order). With a store it is queued
    /// there, and the store will acknowledge it to `ack` once committed; returns false if it
    /// could not be queued (then nobody will).
    pub fn append(&self, entry: Entry, ack: AckTo) -> bool {
        let entry = Arc::new(entry);
        if self.len > 0 {
            let mut cache = self.slot(&entry.room);
            // A log started by this append holds everything from this id on; with a store,
            // older messages may be on disk only.
            let floor = if self.store.is_some() { entry.id.saturating_sub(1) } else { 0 };
            cache.push(entry.clone(), self.len, floor);
            cache.evict(self.budget, &entry.room);
        }
        match &self.store {
            Some(store) => store.append(entry, ack),
            None => true,
        }
    }

    /// The cache's answer to "messages of `room` after `since`" (the last `len` when `None`),
    /// or `None` when only the store can answer.
    pub fn cached_since(&self, room: &str, since: Option<u64>) -> Option<Replay> {
        let mut cache = self.slot(room);
        let durable = self.store.is_some();
        let evicted_max = cache.evicted_max;
        cache.touch(room);
        let Some(log) = cache.rooms.get(room) else {
            return match (durable, since) {
                (true, _) => None,
                (false, None) => Some(Replay::default()),
                (false, Some(n)) => Some(Replay { gap: n < evicted_max, ..Replay::default() }),
            };
        };
        let after = since.unwrap_or(0);
        let newer = || log.entries.iter().filter(|e| e.id > after).cloned().collect::<Vec<_>>();
        match since {
            None if !durable || log.floor == 0 || log.entries.len() >= self.len => {
                Some(Replay { entries: newer(), ..Replay::default() })
            }
            Some(n) if log.covers(n) => Some(Replay { entries: newer(), ..Replay::default() }),
            Some(_) if !durable => Some(Replay { entries: newer(), gap: true, ..Replay::default() }),
            _ => None,
        }
    }

    /// The cache's answer to "up to `limit` messages of `room` older than `before`" (0: the
    /// newest): the messages, oldest first, and whether older ones exist; `None` when only the
    /// store can answer.
    pub fn cached_page(&self, room: &str, before: u64, limit: usize) -> Option<(Vec<Arc<Entry>>, bool)> {
        let cache = self.slot(room);
        let durable = self.store.is_some();
        let bound = if before == 0 { u64::MAX } else { before };
        let Some(log) = cache.rooms.get(room) else { return (!durable).then(|| (Vec::new(), false)) };
        let older: Vec<_> = log.entries.iter().filter(|e| e.id < bound).cloned().collect();
        let skip = older.len().saturating_sub(limit);
        let complete = log.floor == 0 && log.dropped_max == 0;
        if skip > 0 || complete || !durable {
            return Some((older.into_iter().skip(skip).collect(), skip > 0));
        }
        None
    }

    /// Merges what the store read for a replay (`rows`, the newest at or below the store's
    /// newest) with the newer messages only the cache has yet, and refills the cache's log of
    /// the room when that makes it whole.
    pub fn merge_read(&self, done: ReadDone) -> Replay {
        let since = match done.job.read {
            Read::Since(s) => s,
            Read::Page { .. } => None,
        };
        let room = done.job.room.clone();
        // Without `since` the replay is "the last `len`": older messages are no gap.
        let mut gap = !done.ok || (since.is_some() && (done.pruned || done.more > 0));
        let mut entries: VecDeque<Arc<Entry>> = done.rows.into_iter().map(Arc::new).collect();
        let last = entries.back().map_or(since.unwrap_or(0), |e| e.id);
        let mut cache = self.slot(&room);
        // Every message after `last` is either in the room's log or was committed after the
        // read, unless a log holding it was cut (`dropped_max`) or evicted (`evicted_max`, over
        // all rooms of the slot: conservative) before it was committed.
        let evicted_newer = cache.evicted_max > last;
        match cache.rooms.get(&*room) {
            Some(log) if log.covers(last) => entries.extend(log.entries.iter().filter(|e| e.id > last).cloned()),
            Some(log) => {
                gap |= evicted_newer || log.dropped_max > last;
                entries.extend(log.entries.iter().filter(|e| e.id > last).cloned());
            }
            None => gap |= evicted_newer,
        }
        if since.is_none() && !gap && self.len > 0 {
            let keep: VecDeque<_> = entries.iter().skip(entries.len().saturating_sub(self.len)).cloned().collect();
            let dropped_max = if keep.len() < entries.len() || done.more > 0 {
                keep.front().map_or(0, |e| e.id.saturating_sub(1))
            } else {
                0
            };
            cache.replace(&room, keep, 0, dropped_max);
            cache.evict(self.budget, &room);
        }
        let skip = entries.len().saturating_sub(self.len.max(1));
        let lost = if since.is_some() { done.more + skip as u64 } else { 0 };
        Replay { entries: entries.into_iter().skip(skip).collect(), gap: gap || skip > 0, lost, ..Replay::default() }
    }

    /// Hands a read to the store's reader; false without a store or if it is gone.
    pub fn read(&self, job: ReadJob) -> bool {
        self.store.as_ref().is_some_and(|s| s.read(job))
    }
}

fn lock(m: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(room: &str, id: u64, text: &str) -> Entry {
        Entry { id, ts_ms: id, room: room.into(), from: "u".into(), text: text.into() }
    }

    fn append(h: &History, room: &str, id: u64) {
        assert!(h.append(entry(room, id, &format!("m{id}")), AckTo { shard: 0, key: 0, session: 1 }));
    }

    fn ids(r: &Replay) -> Vec<u64> {
        r.entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn memory_history_keeps_the_last_len_and_resumes_after_an_id() {
        let h = History::memory(3, 1 << 20, 2);
        (1..=5).for_each(|id| append(&h, "r", id));
        let all = h.cached_since("r", None).unwrap();
        assert_eq!((ids(&all), all.gap), (vec![3, 4, 5], false));
        let after3 = h.cached_since("r", Some(3)).unwrap();
        assert_eq!((ids(&after3), after3.gap), (vec![4, 5], false));
        // Message 2 was dropped to keep three: a client at 1 has a gap.
        let after1 = h.cached_since("r", Some(1)).unwrap();
        assert_eq!((ids(&after1), after1.gap), (vec![3, 4, 5], true));
        assert!(h.cached_since("other", None).unwrap().entries.is_empty());
        let (page, more) = h.cached_page("r", 5, 50).unwrap();
        assert_eq!((page.iter().map(|e| e.id).collect::<Vec<_>>(), more), (vec![3, 4], false));
        let (page, more) = h.cached_page("r", 0, 1).unwrap();
        assert_eq!((page.iter().map(|e| e.id).collect::<Vec<_>>(), more), (vec![5], true));
    }

    #[test]
    fn the_cache_stays_within_its_budget_by_evicting_the_least_recently_used_rooms() {
        let text = "x".repeat(1000);
        let h = History::memory(50, 64 * 1024, 1);
        for id in 1..=1000u64 {
            let room = format!("room{id}");
            assert!(h.append(entry(&room, id, &text), AckTo { shard: 0, key: 0, session: 1 }));
        }
        assert!(h.cached_bytes() <= 64 * 1024, "{} bytes cached", h.cached_bytes());
        // The newest room is cached; an evicted one reports a possible gap on resume.
        assert_eq!(ids(&h.cached_since("room1000", None).unwrap()), [1000]);
        assert!(h.cached_since("room1", Some(0)).unwrap().gap);
    }

    #[test]
    fn nothing_is_kept_without_replay_or_database() {
        let h = History::memory(0, 1 << 20, 1);
        assert!(!h.is_kept());
        append(&h, "r", 1);
        assert!(h.cached_since("r", None).unwrap().entries.is_empty());
        assert!(History::memory(1, 1 << 20, 1).is_kept());
    }

    #[test]
    fn owners_spread_rooms_and_agree() {
        assert_eq!(owner("general", 1), 0);
        assert_eq!(owner("general", 4), owner("general", 4));
        let used: std::collections::HashSet<usize> = (0..64).map(|i| owner(&format!("r{i}"), 4)).collect();
        assert_eq!(used.len(), 4);
    }
}
