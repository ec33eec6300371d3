//! File sharing: uploaded files on disk under server-generated ids, their metadata, the size cap
//! and disk quota, and the worker thread that does every disk write and read off the event loops.
//!
//! Layout under `data_dir/files/`: `<id>` (16 hex digits) is a stored file, `<id>.json` its
//! metadata sidecar ([`FileMeta`]), `<id>.part` an upload in progress. The uploader's file name
//! is only metadata, sanitized for display ([`sanitize_name`]); it never becomes a path. The
//! directory is created on the first upload, so a server nobody uploads to leaves no trace.
//!
//! The hub hands the worker [`Job`]s (begin, write, finish, abort an upload; read a chunk of a
//! download) through a channel. The worker answers through the shard's inbox with
//! [`Done::File`](crate::services::Done::File) and wakes its loop, like the history writer.

use crate::protocol::validate::{fold_name, is_invisible, normalize_name};
use crate::services::{Done, Links, Worker};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

/// Bytes of file data per FILE_CHUNK the server sends (and the client's default). Base64 in JSON
/// makes it about 43 KiB, under the default 64 KiB frame limit.
pub const CHUNK: usize = 32 * 1024;

/// A download's next chunk is read only while the connection's outbound queue holds less than
/// this: a big file never sits in memory, and a slow reader slows its own download only.
pub const DOWNLOAD_LOW_WATER: usize = 2 * CHUNK;

/// Longest display name kept, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// The file-system block the quota counts in: what ext4 and xfs spend per block by default.
pub const BLOCK: u64 = 4096;

/// What a stored file of `size` bytes costs the quota: what the disk pays for it, its data
/// rounded up to whole [`BLOCK`]s (an empty file still takes an inode and a directory entry:
/// one block) plus one block for its metadata sidecar. So 20,000 one-byte files count as
/// 160 MiB, not 20 KB.
pub fn disk_cost(size: u64) -> u64 {
    size.div_ceil(BLOCK).max(1).saturating_mul(BLOCK).saturating_add(BLOCK)
}

/// The caps of the file store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimits {
    /// Largest file accepted, in bytes of content.
    pub max_file_size: u64,
    /// Most bytes all stored files (plus uploads in progress) may cost, by [`disk_cost`].
    pub quota: u64,
    /// Most files (stored plus uploads in progress) one user may have.
    pub per_user: u64,
    /// Most files (stored plus uploads in progress) in total.
    pub total: u64,
}

/// What the server knows about one stored file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// The server-generated id (also the file's name on disk, in hex).
    pub id: u64,
    /// The uploader's file name, sanitized: a label only.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The uploader's user name.
    pub from: String,
    /// The room the file was shared in; only its members can list and download it.
    pub room: String,
    /// SHA-256 of the content, checked at upload.
    pub sha256: [u8; 32],
    /// When the upload finished, ms since the Unix epoch.
    pub ts_ms: u64,
}

/// A file's metadata as JSON (the digest as hex): the store's sidecar beside each file, and
/// the body of a cluster's file index entry.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct FileRecord {
    id: u64,
    name: String,
    size: u64,
    from: String,
    room: String,
    sha256: String,
    ts_ms: u64,
}

impl FileMeta {
    /// Its JSON form.
    pub fn to_record(&self) -> FileRecord {
        FileRecord {
            id: self.id,
            name: self.name.clone(),
            size: self.size,
            from: self.from.clone(),
            room: self.room.clone(),
            sha256: crate::protocol::json::sha256_hex(&self.sha256),
            ts_ms: self.ts_ms,
        }
    }

    /// Back from its JSON form; `None` if the digest is not 64 hex digits.
    pub fn from_record(s: FileRecord) -> Option<FileMeta> {
        let mut sha256 = [0u8; 32];
        if s.sha256.len() != 64 {
            return None;
        }
        for (i, b) in sha256.iter_mut().enumerate() {
            *b = u8::from_str_radix(s.sha256.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(FileMeta { id: s.id, name: s.name, size: s.size, from: s.from, room: s.room, sha256, ts_ms: s.ts_ms })
    }
}

/// Where a worker's answer goes: the shard and connection that asked.
#[derive(Clone, Copy, Debug)]
pub struct ReplyTo {
    /// The asking shard.
    pub shard: usize,
    /// The connection on that shard.
    pub key: usize,
}

/// A worker's answer, delivered to the shard as `Done::File`.
#[derive(Debug)]
pub enum FileDone {
    /// The upload was checked and stored: notify its room.
    Stored { to: ReplyTo, meta: FileMeta },
    /// The upload failed (bad SHA-256, disk error); nothing was kept.
    Failed { to: ReplyTo, id: u64, reason: String },
    /// A chunk of a download, read from disk (or why it could not be).
    Chunk { to: ReplyTo, id: u64, tag: u64, offset: u64, data: Result<Vec<u8>, String> },
    /// [`RECHECK_AFTER`] has passed since download `tag` found its connection's queue full:
    /// look again.
    Recheck { to: ReplyTo, tag: u64 },
}

/// How long a download whose connection's queue is full waits before looking again. The loop
/// would wake for the socket's writable event, but the hub is not told about those; this timer
/// is what moves a paused download on.
pub const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_millis(2);

/// Work for the file worker.
#[derive(Debug)]
enum Job {
    Begin { id: u64 },
    Write { id: u64, data: Vec<u8> },
    Finish { to: ReplyTo, meta: FileMeta },
    Abort { id: u64 },
    Read { to: ReplyTo, id: u64, tag: u64, offset: u64, len: usize },
}

impl State {
    /// Adds a stored file, after every file already there.
    fn insert(&mut self, meta: FileMeta) {
        self.order.insert(meta.id, self.order.len() as u64);
        self.index.insert(meta.id, Arc::new(meta));
    }

    /// Ends upload `id`'s reservation; unless `stored`, the file no longer counts for its user.
    fn unreserve(&mut self, id: u64, stored: bool) -> Option<Reservation> {
        let r = self.pending.remove(&id)?;
        self.reserved = self.reserved.saturating_sub(r.cost);
        if stored {
            self.used += r.cost;
        } else if let Some(n) = self.per_user.get_mut(&r.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_user.remove(&r.user);
            }
        }
        Some(r)
    }
}

/// Space and a file slot promised to an upload in progress.
#[derive(Debug)]
struct Reservation {
    /// The uploader, case-folded.
    user: String,
    /// Its [`disk_cost`].
    cost: u64,
}

/// The index and the space accounting, shared by the shards and the worker.
#[derive(Debug, Default)]
struct State {
    /// Stored files by id.
    index: HashMap<u64, Arc<FileMeta>>,
    /// Storage order of each file in `index` (ids are random, so files stored in the same
    /// millisecond are listed in this order).
    order: HashMap<u64, u64>,
    /// Disk cost ([`disk_cost`]) of stored files.
    used: u64,
    /// Disk cost promised to uploads in progress (counted against the quota until they finish).
    reserved: u64,
    /// Uploads in progress by id. Invariant: `reserved` is the sum of their costs.
    pending: HashMap<u64, Reservation>,
    /// Files stored plus uploads in progress, per case-folded user (no zero entries).
    per_user: HashMap<String, u64>,
}

/// The server's shared files: index, caps, and the worker.
#[derive(Debug)]
pub struct FileStore {
    /// `data_dir/files`.
    dir: PathBuf,
    /// The size cap, the quota and the file counts.
    limits: FileLimits,
    /// Index and space accounting, shared with the worker.
    state: Arc<Mutex<State>>,
    /// The disk worker.
    worker: Worker<Job>,
    /// The pacer: answers each request with [`FileDone::Recheck`] after [`RECHECK_AFTER`].
    pacer: Worker<(ReplyTo, u64)>,
}

/// Errors opening the file store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilesError {
    #[error("cannot start the file worker: {0}")]
    Thread(#[from] std::io::Error),
}

impl FileStore {
    /// Opens the store in `dir` (loading what an earlier run stored, if the directory exists)
    /// and starts the worker, which answers through `links`.
    pub fn open(dir: PathBuf, limits: FileLimits, links: Arc<Links>) -> Result<FileStore, FilesError> {
        let state = Arc::new(Mutex::new(load(&dir)));
        let (wdir, wstate) = (dir.clone(), state.clone());
        let wlinks = links.clone();
        let worker = Worker::spawn("chat-files", move |rx| run(&wdir, rx, &wstate, &wlinks))?;
        let pacer = Worker::spawn("chat-files-pacer", move |rx| pace(rx, &links))?;
        Ok(FileStore { dir, limits, state, worker, pacer })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where stored files live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reserves room for an upload of `size` bytes by `user` and gives it a fresh id, or says
    /// (in words meant for the user) why not: over the size cap, the user's or the server's file
    /// count, or the quota (counted by [`disk_cost`]).
    ///
    /// `(stride, offset)` is the backplane's [`file_id_slot`](crate::cluster::Backplane::file_id_slot):
    /// every id is `offset` modulo `stride`, so nodes of a cluster never make the same id.
    pub fn reserve(&self, size: u64, user: &str, (stride, offset): (u64, u64)) -> Result<u64, String> {
        let FileLimits { max_file_size, quota, per_user, total } = self.limits;
        if size > max_file_size {
            return Err(format!("file too large: {size} bytes; the server accepts files up to {max_file_size} bytes"));
        }
        let user = fold_name(user);
        let mut st = self.lock();
        let mine = st.per_user.get(&user).copied().unwrap_or(0);
        if mine >= per_user {
            return Err(format!("too many files: you have {mine} files; the server keeps at most {per_user} per user"));
        }
        if (st.index.len() + st.pending.len()) as u64 >= total {
            return Err(format!("too many files: the server holds its maximum of {total} files"));
        }
        let cost = disk_cost(size);
        let free = quota.saturating_sub(st.used + st.reserved);
        if cost > free {
            return Err(format!(
                "not enough storage: the file takes {cost} bytes on disk (in {BLOCK}-byte blocks, with its \
                 metadata) but only {free} bytes of the server's {quota}-byte file quota are free"
            ));
        }
        let id = loop {
            let mut b = [0u8; 8];
            if getrandom::getrandom(&mut b).is_err() {
                return Err("the server could not generate a file id".into());
            }
            // 53 bits: exact in every JSON implementation (JavaScript numbers included).
            let r = u64::from_be_bytes(b) & ((1 << 53) - 1);
            let stride = stride.max(1);
            let id = r - r % stride + offset % stride;
            if id != 0 && id < 1 << 53 && !st.index.contains_key(&id) {
                break id;
            }
        };
        st.reserved += cost;
        *st.per_user.entry(user.clone()).or_insert(0) += 1;
        st.pending.insert(id, Reservation { user, cost });
        drop(st);
        self.submit(Job::Begin { id });
        Ok(id)
    }

    /// Appends upload data (in order; the hub checks offsets).
    pub fn write(&self, id: u64, data: Vec<u8>) {
        self.submit(Job::Write { id, data });
    }

    /// Every byte was sent: check the SHA-256 against `meta.sha256` and store, or discard.
    pub fn finish(&self, to: ReplyTo, meta: FileMeta) {
        let id = meta.id;
        if !self.submit(Job::Finish { to, meta }) {
            self.release(id);
        }
    }

    /// Gives up upload `id`: frees its reservation and deletes its data.
    pub fn abort(&self, id: u64) {
        self.release(id);
        self.submit(Job::Abort { id });
    }

    /// Asks for `len` bytes of file `id` at `offset`; the answer is a [`FileDone::Chunk`].
    pub fn read(&self, to: ReplyTo, id: u64, tag: u64, offset: u64, len: usize) -> bool {
        self.submit(Job::Read { to, id, tag, offset, len })
    }

    /// Asks for a [`FileDone::Recheck`] of download `tag` after [`RECHECK_AFTER`].
    pub fn recheck_later(&self, to: ReplyTo, tag: u64) -> bool {
        self.pacer.submit((to, tag))
    }

    fn release(&self, id: u64) {
        self.lock().unreserve(id, false);
    }

    fn submit(&self, job: Job) -> bool {
        self.worker.submit(job)
    }

    /// A stored file.
    pub fn get(&self, id: u64) -> Option<Arc<FileMeta>> {
        self.lock().index.get(&id).cloned()
    }

    /// The files shared in `room`, oldest first.
    pub fn list(&self, room: &str) -> Vec<Arc<FileMeta>> {
        let st = self.lock();
        let mut v: Vec<_> = st.index.values().filter(|m| m.room == room).cloned().collect();
        v.sort_unstable_by_key(|m| (m.ts_ms, st.order.get(&m.id).copied().unwrap_or(u64::MAX)));
        v
    }

    /// Every stored file, in no particular order.
    pub fn all(&self) -> Vec<Arc<FileMeta>> {
        self.lock().index.values().cloned().collect()
    }

    /// Quota bytes ([`disk_cost`]) used by stored files and reserved by uploads in progress.
    pub fn usage(&self) -> (u64, u64) {
        let st = self.lock();
        (st.used, st.reserved)
    }
}

/// Makes an uploader's file name safe to show: in NFKC form, only its last path component, no
/// control or invisible characters, no leading dots, at most [`MAX_NAME_CHARS`] characters (and 255 bytes); `file` if
/// nothing is left.
/// (It is never used as a path; this is for display and for the downloader's default name.)
pub fn sanitize_name(name: &str) -> String {
    // NFKC first, so a fullwidth slash is a slash; invisible characters are dropped.
    let name = normalize_name(name);
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut clean = String::new();
    for c in last.chars().filter(|&c| !c.is_control() && !is_invisible(c)).take(MAX_NAME_CHARS) {
        // A name8 field holds 255 bytes: keep whole characters that fit.
        if clean.len() + c.len_utf8() > crate::protocol::binary::MAX_NAME_BYTES {
            break;
        }
        clean.push(c);
    }
    let clean = clean.trim().trim_start_matches('.').trim();
    if clean.is_empty() {
        "file".to_string()
    } else {
        clean.to_string()
    }
}

fn data_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}"))
}

fn part_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}.part"))
}

fn meta_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}.json"))
}

/// Reads the sidecars of an earlier run; drops leftovers of interrupted uploads.
fn load(dir: &Path) -> State {
    let mut st = State::default();
    let Ok(entries) = std::fs::read_dir(dir) else { return st };
    let mut loaded = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        match path.extension().and_then(|x| x.to_str()) {
            Some("part") => {
                let _ = std::fs::remove_file(&path);
            }
            Some("json") => {
                let meta = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<FileRecord>(&b).ok())
                    .and_then(FileMeta::from_record);
                let Some(meta) = meta else { continue };
                let on_disk = std::fs::metadata(data_path(dir, meta.id)).map(|m| m.len()).ok();
                if on_disk == Some(meta.size) {
                    loaded.push(meta);
                }
            }
            _ => {}
        }
    }
    // Directory order is arbitrary: restore the storage order by time, then id.
    loaded.sort_unstable_by_key(|m| (m.ts_ms, m.id));
    for meta in loaded {
        st.used += disk_cost(meta.size);
        *st.per_user.entry(fold_name(&meta.from)).or_insert(0) += 1;
        st.insert(meta);
    }
    st
}

/// An upload the worker is writing.
struct Writing {
    /// The `.part` file, or the first error writing it.
    file: Result<File, String>,
    hasher: Sha256,
}

/// The disk worker: runs jobs in order until the queue closes.
fn run(dir: &Path, rx: Receiver<Job>, state: &Mutex<State>, links: &Links) {
    let mut open: HashMap<u64, Writing> = HashMap::new();
    let answer = |to: ReplyTo, done: FileDone| {
        links.send(to.shard, Done::File(done));
    };
    for job in rx {
        match job {
            Job::Begin { id } => {
                let file = std::fs::create_dir_all(dir)
                    .and_then(|()| File::options().write(true).create_new(true).open(part_path(dir, id)))
                    .map_err(|e| format!("the server could not create the file: {e}"));
                open.insert(id, Writing { file, hasher: Sha256::new() });
            }
            Job::Write { id, data } => {
                let Some(w) = open.get_mut(&id) else { continue };
                w.hasher.update(&data);
                if let Ok(f) = &mut w.file {
                    if let Err(e) = f.write_all(&data) {
                        w.file = Err(format!("the server could not write the file: {e}"));
                    }
                }
            }
            Job::Finish { to, meta } => {
                let id = meta.id;
                let result = match open.remove(&id) {
                    Some(w) => store(dir, w, &meta),
                    None => Err("the upload was not started".to_string()),
                };
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                st.unreserve(id, result.is_ok());
                match result {
                    Ok(()) => {
                        st.insert(meta.clone());
                        drop(st);
                        answer(to, FileDone::Stored { to, meta });
                    }
                    Err(reason) => {
                        drop(st);
                        let _ = std::fs::remove_file(part_path(dir, id));
                        answer(to, FileDone::Failed { to, id, reason });
                    }
                }
            }
            Job::Abort { id } => {
                open.remove(&id);
                let _ = std::fs::remove_file(part_path(dir, id));
            }
            Job::Read { to, id, tag, offset, len } => {
                let data = read_chunk(dir, id, offset, len);
                answer(to, FileDone::Chunk { to, id, tag, offset, data });
            }
        }
    }
}

/// Answers recheck requests after [`RECHECK_AFTER`], in batches: one sleep serves every request
/// that arrived meanwhile.
fn pace(rx: Receiver<(ReplyTo, u64)>, links: &Links) {
    while let Ok(first) = rx.recv() {
        std::thread::sleep(RECHECK_AFTER);
        for (to, tag) in std::iter::once(first).chain(rx.try_iter()) {
            links.send(to.shard, Done::File(FileDone::Recheck { to, tag }));
        }
    }
}

/// Checks the digest, then makes the upload a stored file: data flushed, sidecar written, the
/// `.part` renamed to its final name last (a crash before that leaves only a `.part`, dropped at
/// the next start, and a sidecar without data, ignored).
fn store(dir: &Path, w: Writing, meta: &FileMeta) -> Result<(), String> {
    let file = w.file?;
    let got: [u8; 32] = w.hasher.finalize().into();
    if got != meta.sha256 {
        return Err(format!(
            "integrity check failed: the data's SHA-256 is {}, not the {} offered; the file was discarded",
            crate::protocol::json::sha256_hex(&got),
            crate::protocol::json::sha256_hex(&meta.sha256)
        ));
    }
    let io = |e: std::io::Error| format!("the server could not store the file: {e}");
    file.sync_all().map_err(io)?;
    let sidecar = serde_json::to_vec(&meta.to_record()).map_err(|e| e.to_string())?;
    std::fs::write(meta_path(dir, meta.id), sidecar).map_err(io)?;
    std::fs::rename(part_path(dir, meta.id), data_path(dir, meta.id)).map_err(io)
}

/// Reads `len` bytes of stored file `id` at `offset` from the store's directory `dir` (the
/// file worker's reads, and a cluster node's answers to other nodes' downloads).
pub fn read_chunk(dir: &Path, id: u64, offset: u64, len: usize) -> Result<Vec<u8>, String> {
    read_at(&data_path(dir, id), offset, len).map_err(|e| format!("the server could not read file {id}: {e}"))
}

fn read_at(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(len);
    f.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_labels_not_paths() {
        assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_name("C:\\Windows\\evil.exe"), "evil.exe");
        assert_eq!(sanitize_name("..."), "file");
        assert_eq!(sanitize_name(".bashrc"), "bashrc");
        assert_eq!(sanitize_name("a\u{7}b\nc.txt"), "abc.txt");
        assert_eq!(sanitize_name(""), "file");
        assert_eq!(sanitize_name("dir/"), "file");
        assert_eq!(sanitize_name(&"x".repeat(300)).chars().count(), MAX_NAME_CHARS);
        assert_eq!(sanitize_name(&"😀".repeat(100)).len(), 252);
        // Issue 16, item 5: lookalike and invisible file names.
        assert_eq!(sanitize_name("ｒｅｐｏｒｔ.pdf"), "report.pdf");
        assert_eq!(sanitize_name("evil\u{202e}fdp.exe"), "evilfdp.exe");
        assert_eq!(sanitize_name("..／..／etc／passwd"), "passwd");
        assert_eq!(sanitize_name("\u{200b}\u{3164}"), "file");
    }

    #[test]
    fn the_quota_counts_blocks_and_the_metadata() {
        assert_eq!(disk_cost(0), 2 * BLOCK);
        assert_eq!(disk_cost(1), 2 * BLOCK);
        assert_eq!(disk_cost(BLOCK), 2 * BLOCK);
        assert_eq!(disk_cost(BLOCK + 1), 3 * BLOCK);
        assert_eq!(20_000 * disk_cost(1), 163_840_000, "20,000 one-byte files: 160 MiB, as the disk pays");
    }

    #[test]
    fn ids_stay_in_the_servers_slot() {
        let dir = std::env::temp_dir().join(format!("chat-files-slot-{}", std::process::id()));
        let limits = FileLimits { max_file_size: 10, quota: 1 << 30, per_user: 1000, total: 1000 };
        let store = FileStore::open(dir.clone(), limits, Arc::default()).expect("store");
        for _ in 0..200 {
            let id = store.reserve(1, "alice", (16, 5)).expect("an id");
            assert!(id % 16 == 5 && id < 1 << 53, "{id}");
            store.abort(id);
        }
        let id = store.reserve(1, "alice", (1, 0)).expect("alone: any id");
        assert!(id != 0 && id < 1 << 53);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sidecar_round_trips() {
        let m = FileMeta {
            id: 7,
            name: "a.txt".into(),
            size: 3,
            from: "bob".into(),
            room: "general".into(),
            sha256: [0xab; 32],
            ts_ms: 5,
        };
        assert_eq!(FileMeta::from_record(m.to_record()), Some(m));
    }
}
