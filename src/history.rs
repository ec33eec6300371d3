//! Room history: the last N messages of every room, replayed (flagged HISTORY) on joining it.
//!
//! Reads never touch the disk: every room's recent messages are kept in RAM (loaded from the
//! database at start), behind a mutex held only to copy a few `Arc`s. In SQLite mode a writer
//! thread owns the database (WAL) and commits in groups: it blocks for the first message, takes
//! everything else already queued (up to [`MAX_BATCH`]), writes them in one transaction, commits,
//! and only then tells each shard which messages are durable, so that ROOM_MSG_ACK in SQLite
//! mode means "committed": a message acknowledged survives the server being killed.

use crate::features::{Done, Links};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 1024;

/// Where history is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistoryMode {
    /// RAM only: lost on restart; ROOM_MSG_ACK means accepted.
    Memory,
    /// SQLite (WAL) plus a RAM cache; ROOM_MSG_ACK means committed.
    #[default]
    Sqlite,
}

impl std::str::FromStr for HistoryMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(HistoryMode::Memory),
            "sqlite" => Ok(HistoryMode::Sqlite),
            other => Err(format!("unknown history mode {other:?} (expected memory or sqlite)")),
        }
    }
}

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
#[derive(Clone, Debug)]
pub struct AckTo {
    /// The sender's shard.
    pub shard: usize,
    /// The sender's connection on that shard.
    pub key: usize,
    /// The sender's name (keys are reused; a different user on the key gets nothing).
    pub user: Arc<str>,
}

/// Messages one shard may now acknowledge.
#[derive(Debug, Default)]
pub struct DurableAcks {
    /// `(connection, user, id, ts)` per committed message.
    pub acks: Vec<(usize, Arc<str>, u64, u64)>,
    /// False when the commit failed: the senders get an error instead of an ack.
    pub ok: bool,
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
    /// The SQLite writer, in SQLite mode.
    writer: Option<Writer>,
}

#[derive(Debug)]
struct Writer {
    tx: Option<Sender<(Arc<Entry>, AckTo)>>,
    thread: Option<JoinHandle<()>>,
}

impl History {
    /// History kept in RAM only, `len` messages per room.
    pub fn memory(len: usize) -> History {
        History { len, recent: caches(Recent::new()), order: AtomicU64::new(0), max_id: 0, writer: None }
    }

    /// History in the SQLite database at `path` (created if missing), `len` messages per room
    /// replayed; the writer answers through `links`.
    pub fn sqlite(path: &Path, len: usize, links: Arc<Links>) -> Result<History, HistoryError> {
        let db_err = |source| HistoryError::Db { path: path.display().to_string(), source };
        let db = rusqlite::Connection::open(path).map_err(db_err)?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS messages (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
                 room TEXT NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS messages_room ON messages (room, seq)",
        )
        .map_err(db_err)?;
        let (recent, max_id) = load(&db, len).map_err(db_err)?;
        let order = AtomicU64::new(recent.values().map(|q| q.len() as u64).sum());
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new().name("chat-history".into()).spawn(move || writer(db, rx, &links))?;
        let writer = Writer { tx: Some(tx), thread: Some(thread) };
        Ok(History { len, recent: caches(recent), order, max_id, writer: Some(writer) })
    }

    /// True when acknowledgements wait for the writer's commit.
    pub fn is_durable(&self) -> bool {
        self.writer.is_some()
    }

    /// The largest id already stored: ids given out from now on must be larger.
    pub fn max_id(&self) -> u64 {
        self.max_id
    }

    /// True when appended messages are kept at all (replayed, or written to the database).
    pub fn is_kept(&self) -> bool {
        self.len > 0 || self.writer.is_some()
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

    /// Records a message. In SQLite mode it is queued for the writer, which will acknowledge it
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
        match &self.writer {
            Some(w) => w.tx.as_ref().is_some_and(|tx| tx.send((entry, ack)).is_ok()),
            None => true,
        }
    }
}

impl Drop for Writer {
    /// Lets the writer commit what is queued, then waits for it.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Per room, the recent messages with their place in the global append order.
type Recent = HashMap<Arc<str>, VecDeque<(u64, Arc<Entry>)>>;

/// One cache per possible shard; `first` (messages loaded at start) goes in slot 0.
fn caches(first: Recent) -> Vec<Mutex<Recent>> {
    let mut v = vec![Mutex::new(first)];
    v.extend((1..crate::directory::MAX_SHARDS).map(|_| Mutex::default()));
    v
}

/// The last `len` messages of every room, and the largest id.
fn load(db: &rusqlite::Connection, len: usize) -> rusqlite::Result<(Recent, u64)> {
    let max_id: Option<i64> = db.query_row("SELECT MAX(id) FROM messages", [], |r| r.get(0))?;
    let mut stmt = db.prepare(
        "SELECT id, ts_ms, room, sender, text FROM (
             SELECT *, ROW_NUMBER() OVER (PARTITION BY room ORDER BY seq DESC) AS rn FROM messages)
         WHERE rn <= ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([len as i64], |r| {
        Ok(Entry {
            id: r.get::<_, i64>(0)? as u64,
            ts_ms: r.get::<_, i64>(1)? as u64,
            room: r.get::<_, String>(2)?.into(),
            from: r.get::<_, String>(3)?.into(),
            text: r.get::<_, String>(4)?.into(),
        })
    })?;
    let mut recent = Recent::new();
    for (n, e) in rows.enumerate() {
        let e = e?;
        recent.entry(e.room.clone()).or_default().push_back((n as u64, Arc::new(e)));
    }
    Ok((recent, max_id.unwrap_or(0) as u64))
}

/// The writer thread: group commits until every sender is gone.
fn writer(mut db: rusqlite::Connection, rx: Receiver<(Arc<Entry>, AckTo)>, links: &Links) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let ok = match commit(&mut db, &batch) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("history: could not store {} messages: {e}", batch.len());
                false
            }
        };
        acknowledge(std::mem::take(&mut batch), ok, links);
    }
}

fn commit(db: &mut rusqlite::Connection, batch: &[(Arc<Entry>, AckTo)]) -> rusqlite::Result<()> {
    let tx = db.transaction()?;
    {
        let mut stmt =
            tx.prepare_cached("INSERT INTO messages (id, ts_ms, room, sender, text) VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for (e, _) in batch {
            stmt.execute(rusqlite::params![e.id as i64, e.ts_ms as i64, &*e.room, &*e.from, &*e.text])?;
        }
    }
    tx.commit()
}

/// Tells each shard which of its senders' messages are now durable (or failed).
fn acknowledge(batch: Vec<(Arc<Entry>, AckTo)>, ok: bool, links: &Links) {
    let mut per_shard: HashMap<usize, DurableAcks> = HashMap::new();
    for (e, to) in batch {
        let acks = per_shard.entry(to.shard).or_insert_with(|| DurableAcks { acks: Vec::new(), ok });
        acks.acks.push((to.key, to.user, e.id, e.ts_ms));
    }
    for (shard, acks) in per_shard {
        links.send(shard, Done::Durable(acks));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(h: &History, shard: usize, id: u64, ts_ms: u64) {
        let entry = Entry { id, ts_ms, room: "r".into(), from: "u".into(), text: format!("m{id}").into() };
        assert!(h.append(entry, AckTo { shard, key: 0, user: "u".into() }));
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
