//! Room history: the last N messages of every room, replayed (flagged HISTORY) on joining it.
//!
//! Reads never touch the disk: every room's recent messages are kept in RAM (loaded from the
//! store at start), behind a mutex held only to copy a few `Arc`s. Durability is a
//! [`HistoryStore`]'s job: with one, ROOM_MSG_ACK waits for the store to say a message is
//! durable ([`Done::Durable`](crate::services::Done::Durable)); without one (memory mode) ACK
//! means accepted. [`sqlite`] is the store today; another store is one file beside it.

pub mod sqlite;

use crate::config::MAX_SHARDS;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use crate::config::HistoryMode;

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
}

/// What a store hands the cache at start: every room's last messages, oldest first, and the
/// largest id stored (new ids must be larger).
#[derive(Debug, Default)]
pub struct Loaded {
    /// The last messages of each room, oldest first.
    pub rooms: HashMap<Arc<str>, Vec<Entry>>,
    /// The largest id stored.
    pub max_id: u64,
}

/// Room history shared by all shards.
#[derive(Debug)]
pub struct History {
    /// Messages replayed per room.
    len: usize,
    /// The last `len` messages of every room, oldest first, one cache per shard (indexed by the
    /// sender's shard): a shard appending a message locks only its own cache, which another
    /// shard touches only to replay history on a join. Messages loaded at start are in slot 0.
    recent: Vec<Mutex<Recent>>,
    /// The next append's place in the global order. Shards' caches are merged by it on replay:
    /// ids (`seq * shards + shard`) and millisecond times cannot order messages across shards.
    order: AtomicU64,
    /// The largest message id stored at start (new ids must be larger).
    max_id: u64,
    /// Where messages are made durable; `None` in memory mode.
    store: Option<Box<dyn HistoryStore>>,
}

impl History {
    /// History kept in RAM only, `len` messages per room.
    pub fn memory(len: usize) -> History {
        History { len, recent: caches(Recent::new()), order: AtomicU64::new(0), max_id: 0, store: None }
    }

    /// History made durable by `store`, `len` messages per room replayed, starting from what the
    /// store `loaded`.
    pub fn with_store(len: usize, store: Box<dyn HistoryStore>, loaded: Loaded) -> History {
        let mut recent = Recent::new();
        let mut n = 0u64;
        for (room, entries) in loaded.rooms {
            let skip = entries.len().saturating_sub(len);
            let q = recent.entry(room).or_default();
            for e in entries.into_iter().skip(skip) {
                q.push_back((n, Arc::new(e)));
                n += 1;
            }
        }
        History { len, recent: caches(recent), order: AtomicU64::new(n), max_id: loaded.max_id, store: Some(store) }
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

    /// The recent messages of `room`, oldest first: the last `len` over every shard's cache, in
    /// the order they were appended.
    pub fn recent(&self, room: &str) -> Vec<Arc<Entry>> {
        let mut all = Vec::new();
        for cache in &self.recent {
            let cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(q) = cache.get(room) {
                all.extend(q.iter().cloned());
            }
        }
        all.sort_unstable_by_key(|(n, _)| *n);
        let skip = all.len().saturating_sub(self.len);
        all.into_iter().skip(skip).map(|(_, e)| e).collect()
    }

    /// Records a message. With a store it is queued there, and the store will acknowledge it
    /// to `ack` once committed; returns false if it could not be queued (then nobody will).
    pub fn append(&self, entry: Entry, ack: AckTo) -> bool {
        let entry = Arc::new(entry);
        if self.len > 0 {
            let slot = ack.shard.min(self.recent.len() - 1);
            let mut recent = self.recent[slot].lock().unwrap_or_else(|e| e.into_inner());
            let q = recent.entry(entry.room.clone()).or_default();
            if q.len() == self.len {
                q.pop_front();
            }
            q.push_back((self.order.fetch_add(1, Ordering::Relaxed), entry.clone()));
        }
        match &self.store {
            Some(store) => store.append(entry, ack),
            None => true,
        }
    }
}

/// Per room, the recent messages with their place in the global append order.
type Recent = HashMap<Arc<str>, VecDeque<(u64, Arc<Entry>)>>;

/// One cache per possible shard; `first` (messages loaded at start) goes in slot 0.
fn caches(first: Recent) -> Vec<Mutex<Recent>> {
    let mut v = vec![Mutex::new(first)];
    v.extend((1..MAX_SHARDS).map(|_| Mutex::default()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(h: &History, shard: usize, id: u64, ts_ms: u64) {
        let entry = Entry { id, ts_ms, room: "r".into(), from: "u".into(), text: format!("m{id}").into() };
        assert!(h.append(entry, AckTo { shard, key: 0, session: 1 }));
    }

    #[test]
    fn recent_merges_every_shards_cache_in_append_order_and_keeps_the_last_len() {
        let h = History::memory(3);
        append(&h, 0, 2, 10);
        append(&h, 1, 3, 11);
        append(&h, 0, 4, 12);
        // Same millisecond, sent later from the other shard with a smaller id: order is by append.
        append(&h, 1, 1, 12);
        append(&h, 1, 7, 14);
        let ids: Vec<u64> = h.recent("r").iter().map(|e| e.id).collect();
        assert_eq!(ids, [4, 1, 7]);
        assert!(h.recent("other").is_empty());
    }

    #[test]
    fn nothing_is_kept_without_replay_or_database() {
        let h = History::memory(0);
        assert!(!h.is_kept());
        append(&h, 0, 1, 1);
        assert!(h.recent("r").is_empty());
        assert!(History::memory(1).is_kept());
    }
}
