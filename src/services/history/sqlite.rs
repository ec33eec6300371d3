//! The SQLite history store. A writer thread owns the database (WAL) and commits in groups: it
//! blocks for the first message, takes everything else already queued (up to [`MAX_BATCH`]),
//! writes them in one transaction, commits, and only then tells each shard which messages are
//! durable, so that ROOM_MSG_ACK in SQLite mode means "committed": a message acknowledged
//! survives the server being killed. Between batches (and at least every [`PRUNE_EVERY`]) it
//! applies the [`Retention`] policy, deleting at most [`PRUNE_BATCH`] rows per pass.
//!
//! A second thread owns a read-only connection and answers [`ReadJob`]s (replays the cache
//! cannot serve, scroll-back pages), so a read never waits behind a commit nor blocks a loop.

use super::{Ack, AckTo, DurableAcks, Entry, HistoryError, HistoryStore, Read, ReadDone, ReadJob, Retention};
use crate::services::{Done, Links, Worker};
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 1024;

/// The longest the writer goes without a retention pass.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Most rows one retention pass deletes (the writer's commits wait for it).
pub const PRUNE_BATCH: usize = 5_000;

/// A message on its way to the database, with whom to acknowledge.
type Job = (Arc<Entry>, AckTo);

/// History in a SQLite database, written by one group-committing thread.
#[derive(Debug)]
pub struct SqliteStore {
    /// The reader thread (declared first: dropped, and joined, before the writer).
    reader: Worker<ReadJob>,
    /// The writer thread.
    writer: Worker<Job>,
}

impl SqliteStore {
    /// Opens (creating) the database at `path`, reads the largest id stored, and starts the
    /// writer (which prunes per `retention`) and the reader; both answer through `links`.
    pub fn open(path: &Path, retention: Retention, links: Arc<Links>) -> Result<(SqliteStore, u64), HistoryError> {
        let db_err = |source| HistoryError::Db { path: path.display().to_string(), source };
        // Ids increase within a room in delivery order, so (room, id) orders a room's history.
        // `pruned` remembers, per room, the largest id retention deleted (resume gaps).
        let schema = "CREATE TABLE IF NOT EXISTS messages (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
                 room TEXT NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS messages_room ON messages (room, seq);
             CREATE INDEX IF NOT EXISTS messages_room_id ON messages (room, id);
             CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts_ms);
             CREATE TABLE IF NOT EXISTS pruned (room TEXT PRIMARY KEY, max_id INTEGER NOT NULL)";
        let db = crate::services::open_sqlite(path, schema).map_err(db_err)?;
        let max_id: Option<i64> = db.query_row("SELECT MAX(id) FROM messages", [], |r| r.get(0)).map_err(db_err)?;
        let read_db = crate::services::open_sqlite(path, "").map_err(db_err)?;
        let read_links = links.clone();
        let reader = Worker::spawn("chat-history-read", move |rx| read_loop(read_db, rx, &read_links))?;
        let writer = Worker::spawn("chat-history", move |rx| write_loop(db, rx, &links, retention))?;
        Ok((SqliteStore { reader, writer }, max_id.unwrap_or(0) as u64))
    }
}

impl HistoryStore for SqliteStore {
    fn append(&self, entry: Arc<Entry>, ack: AckTo) -> bool {
        self.writer.submit((entry, ack))
    }

    fn read(&self, job: ReadJob) -> bool {
        self.reader.submit(job)
    }
}

/// The reader thread: answers reads in order until the store is dropped.
fn read_loop(db: rusqlite::Connection, rx: Receiver<ReadJob>, links: &Links) {
    for job in rx {
        let reply = job.reply;
        let done = match read(&db, &job) {
            Ok((rows, more, pruned)) => ReadDone { job, rows, more, pruned, ok: true },
            Err(e) => {
                tracing::error!("history: could not read room {:?}: {e}", job.room);
                ReadDone { job, rows: Vec::new(), more: 0, pruned: false, ok: false }
            }
        };
        links.send(reply, Done::HistoryRead(done));
    }
}

/// One read: the newest `limit` matching rows (returned oldest first), how many more matched,
/// and whether retention deleted some of what was asked for.
fn read(db: &rusqlite::Connection, job: &ReadJob) -> rusqlite::Result<(Vec<Entry>, u64, bool)> {
    // SQLite integers are i64: ids above i64::MAX exist nowhere.
    let (low, high) = match job.read {
        Read::Since(since) => (since.unwrap_or(0).min(i64::MAX as u64), i64::MAX as u64),
        Read::Page { before: 0 } => (0, i64::MAX as u64),
        Read::Page { before } => (0, before.min(i64::MAX as u64)),
    };
    let room = &*job.room;
    let mut stmt = db.prepare_cached(
        "SELECT id, ts_ms, sender, text FROM messages WHERE room = ?1 AND id > ?2 AND id < ?3
         ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(rusqlite::params![room, low as i64, high as i64, job.limit as i64], |r| {
        Ok(Entry {
            id: r.get::<_, i64>(0)? as u64,
            ts_ms: r.get::<_, i64>(1)? as u64,
            room: job.room.clone(),
            from: r.get::<_, String>(2)?.into(),
            text: r.get::<_, String>(3)?.into(),
        })
    })?;
    let mut rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.reverse();
    let oldest = rows.first().map_or(high, |e| e.id);
    let more: i64 = db.query_row(
        "SELECT COUNT(*) FROM messages WHERE room = ?1 AND id > ?2 AND id < ?3",
        rusqlite::params![room, low as i64, oldest as i64],
        |r| r.get(0),
    )?;
    let pruned_max: Option<i64> =
        db.query_row("SELECT MAX(max_id) FROM pruned WHERE room = ?1", [room], |r| r.get(0))?;
    let pruned = matches!(job.read, Read::Since(Some(_))) && pruned_max.is_some_and(|m| m as u64 > low);
    Ok((rows, more as u64, pruned))
}

/// The writer thread: group commits until every sender is gone.
fn write_loop(mut db: rusqlite::Connection, rx: Receiver<Job>, links: &Links, retention: Retention) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut last_prune = Instant::now();
    loop {
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = Instant::now();
            if let Err(e) = prune(&mut db, retention, PRUNE_BATCH) {
                tracing::warn!("history: retention pass failed: {e}");
            }
        }
        let first = match rx.recv_timeout(PRUNE_EVERY) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
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

/// One retention pass: deletes messages older than the age limit, then a room's messages past
/// the per-room count, at most `budget` rows in all; records each room's largest deleted id.
/// Returns the rows deleted.
pub fn prune(db: &mut rusqlite::Connection, retention: Retention, budget: usize) -> rusqlite::Result<usize> {
    let tx = db.transaction()?;
    let mut victims: Vec<(i64, String, i64)> = Vec::new();
    if let Some(age) = retention.max_age {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let cutoff = now - age.as_millis() as i64;
        let mut stmt = tx.prepare("SELECT seq, room, id FROM messages WHERE ts_ms < ?1 LIMIT ?2")?;
        let rows =
            stmt.query_map(rusqlite::params![cutoff, budget as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        victims = rows.collect::<rusqlite::Result<_>>()?;
    }
    if retention.per_room > 0 && victims.len() < budget {
        let mut rooms = tx.prepare("SELECT room FROM messages GROUP BY room HAVING COUNT(*) > ?1 LIMIT 16")?;
        let over: Vec<String> =
            rooms.query_map([retention.per_room as i64], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        let mut stmt =
            tx.prepare("SELECT seq, room, id FROM messages WHERE room = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3")?;
        for room in over {
            let room_budget = (budget - victims.len()) as i64;
            let rows = stmt.query_map(rusqlite::params![room, room_budget, retention.per_room as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            victims.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
            if victims.len() >= budget {
                break;
            }
        }
    }
    {
        let mut del = tx.prepare_cached("DELETE FROM messages WHERE seq = ?1")?;
        let mut mark = tx.prepare_cached(
            "INSERT INTO pruned (room, max_id) VALUES (?1, ?2)
             ON CONFLICT(room) DO UPDATE SET max_id = MAX(max_id, excluded.max_id)",
        )?;
        for (seq, room, id) in &victims {
            del.execute([seq])?;
            mark.execute(rusqlite::params![room, id])?;
        }
    }
    tx.commit()?;
    if !victims.is_empty() {
        tracing::info!("history: retention deleted {} messages", victims.len());
    }
    Ok(victims.len())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::history::ReadTag;

    fn db(name: &str) -> (rusqlite::Connection, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("chatproto-history-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        // Opening the store creates the schema; its threads stop when it is dropped.
        let retention = Retention { max_age: None, per_room: 0 };
        drop(SqliteStore::open(&path, retention, Arc::default()).expect("open"));
        (crate::services::open_sqlite(&path, "").expect("reopen"), path)
    }

    fn insert(db: &rusqlite::Connection, room: &str, id: u64, ts_ms: u64) {
        db.execute(
            "INSERT INTO messages (id, ts_ms, room, sender, text) VALUES (?1, ?2, ?3, 'u', 't')",
            rusqlite::params![id as i64, ts_ms as i64, room],
        )
        .expect("insert");
    }

    fn job(room: &str, read: Read, limit: usize) -> ReadJob {
        ReadJob { reply: 0, tag: ReadTag { shard: 0, key: 0, session: 0 }, room: room.into(), read, limit }
    }

    #[test]
    fn reads_page_and_resume_by_id_and_count_what_they_leave_out() {
        let (db, path) = db("read");
        (1..=10).for_each(|id| insert(&db, "r", id * 2, 1));
        insert(&db, "other", 3, 1);
        let (rows, more, pruned) = read(&db, &job("r", Read::Since(Some(10)), 3)).unwrap();
        assert_eq!((rows.iter().map(|e| e.id).collect::<Vec<_>>(), more, pruned), (vec![16, 18, 20], 2, false));
        let (rows, more, _) = read(&db, &job("r", Read::Page { before: 8 }, 50)).unwrap();
        assert_eq!((rows.iter().map(|e| e.id).collect::<Vec<_>>(), more), (vec![2, 4, 6], 0));
        let (rows, more, _) = read(&db, &job("r", Read::Since(Some(u64::MAX)), 3)).unwrap();
        assert_eq!((rows.len(), more), (0, 0));
        drop(db);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn retention_deletes_by_age_and_count_in_bounded_passes_and_remembers_the_gap() {
        let (mut db, path) = db("prune");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        (1..=10).for_each(|id| insert(&db, "old", id, 1_000)); // 1970: past any age limit
        (11..=40).for_each(|id| insert(&db, "busy", id, now));
        let retention = Retention { max_age: Some(Duration::from_secs(3600)), per_room: 20 };
        assert_eq!(prune(&mut db, retention, 6).unwrap(), 6, "a pass deletes at most its budget");
        assert_eq!(prune(&mut db, retention, 100).unwrap(), 4 + 10, "the rest of old, then busy past 20");
        assert_eq!(prune(&mut db, retention, 100).unwrap(), 0);
        let count = |room: &str| -> i64 {
            db.query_row("SELECT COUNT(*) FROM messages WHERE room = ?1", [room], |r| r.get(0)).unwrap()
        };
        assert_eq!((count("old"), count("busy")), (0, 20));
        // A resume from before what was pruned is told about the gap; one after it is not.
        let (rows, _, pruned) = read(&db, &job("busy", Read::Since(Some(15)), 50)).unwrap();
        assert_eq!((rows.first().map(|e| e.id), pruned), (Some(21), true));
        let (_, _, pruned) = read(&db, &job("busy", Read::Since(Some(20)), 50)).unwrap();
        assert!(!pruned);
        drop(db);
        let _ = std::fs::remove_file(path);
    }
}
