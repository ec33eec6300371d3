//! The SQLite history store. A writer thread owns the database (WAL) and commits in groups: it
//! blocks for the first message, takes everything else already queued (up to [`MAX_BATCH`]),
//! writes them in one transaction, commits, and only then tells each shard which messages are
//! durable, so that ROOM_MSG_ACK in SQLite mode means "committed": a message acknowledged
//! survives the server being killed.

use super::{Ack, AckTo, DurableAcks, Entry, HistoryError, HistoryStore, Loaded};
use crate::services::{Done, Links, Worker};
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 1024;

/// A message on its way to the database, with whom to acknowledge.
type Job = (Arc<Entry>, AckTo);

/// History in a SQLite database, written by one group-committing thread.
#[derive(Debug)]
pub struct SqliteStore {
    /// The writer thread.
    writer: Worker<Job>,
}

impl SqliteStore {
    /// Opens (creating) the database at `path`, loads the last `len` messages of every room, and
    /// starts the writer, which answers through `links`.
    pub fn open(path: &Path, len: usize, links: Arc<Links>) -> Result<(SqliteStore, Loaded), HistoryError> {
        let db_err = |source| HistoryError::Db { path: path.display().to_string(), source };
        let schema = "CREATE TABLE IF NOT EXISTS messages (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
                 room TEXT NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS messages_room ON messages (room, seq)";
        let db = crate::services::open_sqlite(path, schema).map_err(db_err)?;
        let loaded = load(&db, len).map_err(db_err)?;
        let writer = Worker::spawn("chat-history", move |rx| write_loop(db, rx, &links))?;
        Ok((SqliteStore { writer }, loaded))
    }
}

impl HistoryStore for SqliteStore {
    fn append(&self, entry: Arc<Entry>, ack: AckTo) -> bool {
        self.writer.submit((entry, ack))
    }
}

/// The last `len` messages of every room, oldest first, and the largest id.
fn load(db: &rusqlite::Connection, len: usize) -> rusqlite::Result<Loaded> {
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
    let mut loaded = Loaded { rooms: HashMap::new(), max_id: max_id.unwrap_or(0) as u64 };
    for e in rows {
        let e = e?;
        loaded.rooms.entry(e.room.clone()).or_default().push(e);
    }
    Ok(loaded)
}

/// The writer thread: group commits until every sender is gone.
fn write_loop(mut db: rusqlite::Connection, rx: Receiver<Job>, links: &Links) {
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

fn commit(db: &mut rusqlite::Connection, batch: &[Job]) -> rusqlite::Result<()> {
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
fn acknowledge(batch: Vec<Job>, ok: bool, links: &Links) {
    let mut per_shard: HashMap<usize, DurableAcks> = HashMap::new();
    for (e, to) in batch {
        let acks = per_shard.entry(to.shard).or_insert_with(|| DurableAcks { acks: Vec::new(), ok });
        acks.acks.push(Ack { to, id: e.id, ts_ms: e.ts_ms });
    }
    for (shard, acks) in per_shard {
        links.send(shard, Done::Durable(acks));
    }
}
