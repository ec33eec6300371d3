//! Shared files across nodes: the bytes stay on the node that stored them and are fetched
//! through the bus, chunk by chunk, when a user on another node downloads them.
//!
//! - **Ids** are unique cluster-wide: a node makes file ids in its id slot
//!   ([`Backplane::file_id_slot`](crate::cluster::Backplane::file_id_slot) = `(MAX_NODES, slot)`).
//! - **The index**: each node writes the metadata of every file it stores (at start, and as each
//!   upload is stored) to the key-value bucket [`FILES_BUCKET`], one key per file
//!   (`<node>.<id in hex>`), and mirrors the other nodes' entries. At start it also deletes
//!   entries under its name that its store no longer has (a data directory wiped or moved). The bucket keeps entries without an age limit (files
//!   are kept forever); a file is listed and downloadable only while its node is alive, which is
//!   what the rooms directory already tells ([`super::directory`]: a node's entry refreshed
//!   within the TTL). A node that comes back (same name, same data directory) serves its files
//!   again.
//! - **Remote reads**: a download of another node's file asks that node for one chunk at a time
//!   (request/reply on `chat.files.<node>`, `--cluster-file-timeout` each); the answer reaches the
//!   asking shard as `Done::File(FileDone::Chunk)`, exactly as a read of its own store would, so
//!   the download pump (pacing, offsets, FILE_DONE with the indexed SHA-256) is the same. The
//!   holder answers requests one at a time, reading each chunk on tokio's blocking pool.

use super::link::Ctx;
use super::Mirror;
use crate::cluster::{Backplane, FileRead, Remote, RemoteFile};
use crate::services::files::{read_chunk, FileDone, FileMeta, FileRecord, CHUNK};
use crate::services::Done;
use async_nats::client::RequestErrorKind;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::kv::{Operation, Store};
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::{self, stream};
use async_nats::{Client, Subscriber};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The KV bucket holding every node's file metadata (key: `<node>.<file id in hex>`).
pub const FILES_BUCKET: &str = "chat_files";
/// Index writes that may wait for the files task; past it one is dropped (and logged; the
/// node's next start writes it again).
const FILES_QUEUE: usize = 1024;

/// Another node's file, as its index entry says.
#[derive(Debug)]
pub(super) struct Indexed {
    /// Its metadata.
    pub meta: Arc<FileMeta>,
    /// The node holding the bytes.
    pub node: Arc<str>,
}

/// Other nodes' files by id, mirrored from [`FILES_BUCKET`].
pub(super) type Index = HashMap<u64, Indexed>;

/// File work for the link thread.
#[derive(Debug)]
pub enum FilesCmd {
    /// This node stores files in `dir` (`None`: file sharing is off here): answer other nodes'
    /// reads, index `files` (everything the store holds) and drop stale entries of this node.
    Serve { dir: Option<PathBuf>, files: Vec<Arc<FileMeta>> },
    /// A file was stored here: index it.
    Stored(Arc<FileMeta>),
    /// A local download wants a chunk of another node's file.
    Read(FileRead),
}

/// An index entry's JSON form: the file's record, and the node that stores it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    #[serde(flatten)]
    file: FileRecord,
    node: String,
}

fn key(node: &str, id: u64) -> String {
    format!("{node}.{id:016x}")
}

/// The node and file id of a key.
fn parse_key(key: &str) -> Option<(&str, u64)> {
    let (node, id) = key.split_once('.')?;
    Some((node, u64::from_str_radix(id, 16).ok()?))
}

/// Subject on which `node` answers chunk requests.
fn subject(node: &str) -> String {
    format!("chat.files.{node}")
}

fn encode_entry(meta: &FileMeta, node: &str) -> Option<Bytes> {
    let e = Entry { file: meta.to_record(), node: node.to_string() };
    serde_json::to_vec(&e).ok().map(Bytes::from)
}

fn decode_entry(value: &[u8]) -> Option<Indexed> {
    let e: Entry = serde_json::from_slice(value).ok()?;
    Some(Indexed { meta: Arc::new(FileMeta::from_record(e.file)?), node: e.node.into() })
}

/// A chunk request: id, offset, length (big-endian).
fn encode_read(read: &FileRead) -> Bytes {
    let mut b = BytesMut::with_capacity(20);
    b.put_u64(read.id);
    b.put_u64(read.offset);
    b.put_u32(read.len as u32);
    b.freeze()
}

fn decode_read(p: &[u8]) -> Option<(u64, u64, usize)> {
    let id = u64::from_be_bytes(p.get(0..8)?.try_into().ok()?);
    let offset = u64::from_be_bytes(p.get(8..16)?.try_into().ok()?);
    let len = u32::from_be_bytes(p.get(16..20)?.try_into().ok()?) as usize;
    (p.len() == 20).then_some((id, offset, len))
}

/// A chunk answer: `0` then the bytes, or `1` then why not (UTF-8).
fn encode_answer(answer: &Result<Vec<u8>, String>) -> Bytes {
    let (tag, body) = match answer {
        Ok(data) => (0u8, data.as_slice()),
        Err(why) => (1u8, why.as_bytes()),
    };
    let mut b = BytesMut::with_capacity(1 + body.len());
    b.put_u8(tag);
    b.put_slice(body);
    b.freeze()
}

fn decode_answer(p: &[u8]) -> Result<Vec<u8>, String> {
    match p.split_first() {
        Some((0, data)) => Ok(data.to_vec()),
        Some((1, why)) => Err(String::from_utf8_lossy(why).into_owned()),
        _ => Err("the node holding the file sent a malformed answer".into()),
    }
}

/// True while `node`'s rooms directory entry is fresh: it is alive and connected.
fn reachable(mirror: &Mirror, ttl: Duration, node: &str) -> bool {
    mirror.dirs.get(node).is_some_and(|d| d.seen.elapsed() < ttl)
}

/// The files of `room` on other reachable nodes.
pub(super) fn listed(mirror: &Mirror, ttl: Duration, room: &str) -> Vec<Arc<FileMeta>> {
    let files = mirror.files.values().filter(|f| f.meta.room == room);
    files.filter(|f| reachable(mirror, ttl, &f.node)).map(|f| f.meta.clone()).collect()
}

/// File `id` on another node.
pub(super) fn find(mirror: &Mirror, ttl: Duration, id: u64) -> Option<RemoteFile> {
    let f = mirror.files.get(&id)?;
    let up = reachable(mirror, ttl, &f.node);
    Some(RemoteFile { meta: f.meta.clone(), node: f.node.clone(), reachable: up })
}

/// The link thread's side of file sharing.
pub(super) struct Files {
    client: Client,
    ctx: Arc<Ctx>,
    /// How long one chunk request may wait for its answer.
    timeout: Duration,
    /// Index writes for the files task.
    tx: mpsc::Sender<FilesCmd>,
}

impl Files {
    /// Starts the files task (it opens the bucket, mirrors it, and writes this node's entries).
    pub fn start(client: &Client, ctx: &Arc<Ctx>, (ttl, timeout): (Duration, Duration)) -> Files {
        let (tx, rx) = mpsc::channel(FILES_QUEUE);
        tokio::spawn(index(client.clone(), ctx.clone(), ttl, rx));
        Files { client: client.clone(), ctx: ctx.clone(), timeout, tx }
    }

    /// Acts on one command without waiting on the network.
    pub fn handle(&self, cmd: FilesCmd) {
        match cmd {
            FilesCmd::Read(read) => {
                drop(tokio::spawn(fetch(self.client.clone(), self.ctx.clone(), read, self.timeout)))
            }
            cmd => {
                if self.tx.try_send(cmd).is_err() {
                    tracing::warn!("cluster: the file index queue is full; a file is not indexed until the next start");
                }
            }
        }
    }
}

/// Asks the holder of `read.id` for one chunk and hands the answer to the downloading shard.
async fn fetch(client: Client, ctx: Arc<Ctx>, read: FileRead, timeout: Duration) {
    let FileRead { to, id, tag, offset, .. } = read;
    let node = ctx.mirror.lock().unwrap_or_else(|e| e.into_inner()).files.get(&id).map(|f| f.node.clone());
    let data = match node {
        None => Err(format!("file {id} is no longer in the cluster's file index")),
        // The request would only wait for its timeout.
        Some(node) if !ctx.stats.connected.load(Ordering::Relaxed) => Err(format!(
            "file {id} is stored on node {node}, and this node has lost the cluster's connection; try again shortly"
        )),
        Some(node) => ask(&client, &node, &read, timeout).await,
    };
    let counter = if data.is_ok() { &ctx.stats.file_chunks_fetched } else { &ctx.stats.file_fetches_failed };
    counter.fetch_add(1, Ordering::Relaxed);
    let done = FileDone::Chunk { to, id, tag, offset, data };
    ctx.local.deliver(to.shard, vec![Remote::Done(Done::File(done))]);
}

/// One chunk request to `node`, waiting at most `timeout`; errors in words meant for the user.
async fn ask(client: &Client, node: &str, read: &FileRead, timeout: Duration) -> Result<Vec<u8>, String> {
    let id = read.id;
    match tokio::time::timeout(timeout, client.request(subject(node), encode_read(read))).await {
        Ok(Ok(msg)) => decode_answer(&msg.payload),
        Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => {
            Err(format!("file {id} is stored on node {node}, which is not reachable now; try again when it is back"))
        }
        Ok(Err(e)) => Err(format!("file {id} could not be fetched from node {node}: {e}")),
        Err(_) => Err(format!(
            "file {id}: node {node}, which stores it, did not answer within {} s; try again later",
            timeout.as_secs_f64()
        )),
    }
}

/// Answers other nodes' chunk requests for files in `dir`, one at a time.
async fn serve(client: Client, mut sub: Subscriber, dir: PathBuf, ctx: Arc<Ctx>) {
    while let Some(msg) = sub.next().await {
        let Some(reply) = msg.reply else { continue };
        let answer = match decode_read(&msg.payload) {
            Some((id, offset, len)) if len <= CHUNK => {
                let dir = dir.clone();
                let read = tokio::task::spawn_blocking(move || read_chunk(&dir, id, offset, len));
                read.await.unwrap_or_else(|e| Err(format!("the read failed: {e}")))
            }
            _ => Err("malformed chunk request".to_string()),
        };
        if answer.is_ok() {
            ctx.stats.file_chunks_served.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = client.publish(reply, encode_answer(&answer)).await {
            tracing::debug!("cluster: cannot answer a file chunk request: {e}");
        }
    }
}

/// The bucket's stream: one value per key, kept until deleted.
fn bucket_stream(replicas: usize) -> stream::Config {
    stream::Config {
        name: format!("KV_{FILES_BUCKET}"),
        subjects: vec![format!("$KV.{FILES_BUCKET}.>")],
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Makes the bucket if NATS does not have it. Returns when the bucket was made (nanoseconds
/// since the epoch, as NATS says): a bucket made again (by any node, after NATS lost its store)
/// has lost this node's entries.
async fn ensure(js: &jetstream::Context, replicas: usize) -> Result<i128, String> {
    let stream = match js.get_stream(format!("KV_{FILES_BUCKET}")).await {
        Ok(stream) => stream,
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) => {
            js.get_or_create_stream(bucket_stream(replicas)).await.map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    Ok(stream.cached_info().created.unix_timestamp_nanos())
}

/// Opens the bucket, making it if NATS does not have it; with when it was made.
async fn open(js: &jetstream::Context, replicas: usize) -> Result<(Store, i128), String> {
    let made = ensure(js, replicas).await?;
    Ok((js.get_key_value(FILES_BUCKET).await.map_err(|e| e.to_string())?, made))
}

/// This node's entries in the bucket.
struct Entries {
    kv: Store,
    node: Arc<str>,
    /// When the bucket these entries were written to was made (see [`ensure`]).
    made: i128,
    /// Every file this node stores (written again if the bucket is lost).
    served: Vec<Arc<FileMeta>>,
    /// Files whose entry could not be written yet (NATS away or slow): tried again every tick.
    unwritten: Vec<Arc<FileMeta>>,
}

impl Entries {
    /// Writes `files`' entries, keeping those that failed for the next [`Entries::retry`].
    async fn write(&mut self, files: Vec<Arc<FileMeta>>) {
        for meta in files {
            let written = match encode_entry(&meta, &self.node) {
                Some(value) => self.kv.put(key(&self.node, meta.id), value).await.map_err(|e| e.to_string()),
                None => Ok(0),
            };
            if let Err(e) = written {
                tracing::debug!("cluster: cannot index file {} now (tried again): {e}", meta.id);
                self.unwritten.push(meta.clone());
            }
            self.served.push(meta);
        }
    }

    /// Writes again what could not be written.
    async fn retry(&mut self) {
        let again = std::mem::take(&mut self.unwritten);
        let count = again.len();
        for meta in again {
            let Some(value) = encode_entry(&meta, &self.node) else { continue };
            if self.kv.put(key(&self.node, meta.id), value).await.is_err() {
                self.unwritten.push(meta);
            }
        }
        if count > 0 && self.unwritten.is_empty() {
            tracing::info!("cluster: indexed {count} files whose entries could not be written before");
        }
    }

    /// Deletes this node's entries for files its store does not hold.
    async fn drop_stale(&self, files: &[Arc<FileMeta>]) {
        let held: std::collections::HashSet<u64> = files.iter().map(|m| m.id).collect();
        let Ok(keys) = self.kv.keys().await else { return };
        let keys: Vec<String> = keys.filter_map(|k| std::future::ready(k.ok())).collect().await;
        let mine = |k: &String| parse_key(k).is_some_and(|(n, id)| n == &*self.node && !held.contains(&id));
        for k in keys.iter().filter(|k| mine(k)) {
            tracing::info!("cluster: file {k} is no longer stored here; dropped from the index");
            let _ = self.kv.delete(k).await;
        }
    }
}

/// The files task: opens the bucket (retrying), mirrors it, writes this node's entries (again
/// when a write failed), and every `ttl / 3` makes the bucket again if NATS lost it, writing
/// this node's entries again when the bucket was made again (by this node or another).
async fn index(client: Client, ctx: Arc<Ctx>, ttl: Duration, mut rx: mpsc::Receiver<FilesCmd>) {
    let js = jetstream::new(client.clone());
    let (kv, made) = loop {
        match open(&js, ctx.replicas).await {
            Ok(opened) => break opened,
            Err(e) => tracing::warn!("cluster: cannot open the files bucket {FILES_BUCKET} (retrying): {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    tokio::spawn(watch(kv.clone(), ctx.clone()));
    let node = ctx.node.as_str().into();
    let mut entries = Entries { kv, node, made, served: Vec::new(), unwritten: Vec::new() };
    let mut tick = tokio::time::interval(ttl / 3);
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(FilesCmd::Serve { dir, files }) => {
                    if let Some(dir) = dir {
                        match client.subscribe(subject(&ctx.node)).await {
                            Ok(sub) => drop(tokio::spawn(serve(client.clone(), sub, dir, ctx.clone()))),
                            Err(e) => tracing::error!("cluster: cannot serve this node's files to the others: {e}"),
                        }
                    }
                    entries.drop_stale(&files).await;
                    entries.write(files).await;
                }
                Some(FilesCmd::Stored(meta)) => entries.write(vec![meta]).await,
                Some(FilesCmd::Read(_)) => {}
                None => break,
            },
            _ = tick.tick() => {
                if !ctx.stats.connected.load(Ordering::Relaxed) {
                    continue;
                }
                match ensure(&js, ctx.replicas).await {
                    Ok(made) if made != entries.made => {
                        let n = entries.served.len();
                        tracing::warn!(
                            "cluster: bucket {FILES_BUCKET} was made again (NATS lost its store?); writing this node's {n} entries again"
                        );
                        entries.made = made;
                        entries.unwritten = entries.served.clone();
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!("cluster: cannot check the files bucket now: {e}"),
                }
                entries.retry().await;
            }
        }
    }
}

/// Mirrors the other nodes' entries, starting with every entry already there (entries are
/// written once, not renewed); starts again after a break.
async fn watch(kv: Store, ctx: Arc<Ctx>) {
    loop {
        if let Ok(mut w) = kv.watch_with_history(">").await {
            while let Some(Ok(entry)) = w.next().await {
                let Some((node, id)) = parse_key(&entry.key) else { continue };
                if node == ctx.node {
                    continue;
                }
                let mut mirror = ctx.mirror.lock().unwrap_or_else(|e| e.into_inner());
                match (entry.operation, decode_entry(&entry.value)) {
                    (Operation::Put, Some(f)) if *f.node == *node && f.meta.id == id => {
                        mirror.files.insert(id, f);
                    }
                    _ => drop(mirror.files.remove(&id)),
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_requests_round_trip() {
        let meta = FileMeta {
            id: 33,
            name: "a b.txt".into(),
            size: 7,
            from: "alice".into(),
            room: "general".into(),
            sha256: [0xa5; 32],
            ts_ms: 9,
        };
        let value = encode_entry(&meta, "n1").expect("encodes");
        let back = decode_entry(&value).expect("decodes");
        assert_eq!((*back.meta).clone(), meta);
        assert_eq!(&*back.node, "n1");
        assert!(decode_entry(b"{\"id\":1}").is_none());
        let to = crate::services::files::ReplyTo { shard: 1, key: 2 };
        let read = FileRead { to, id: 5, tag: 6, offset: 65536, len: CHUNK };
        assert_eq!(decode_read(&encode_read(&read)), Some((5, 65536, CHUNK)));
        assert_eq!(decode_read(b"short"), None);
        assert_eq!(decode_answer(&encode_answer(&Ok(vec![1, 2]))), Ok(vec![1, 2]));
        assert_eq!(decode_answer(&encode_answer(&Err("gone".into()))), Err("gone".into()));
        assert!(decode_answer(b"").is_err());
        assert_eq!(parse_key(&key("n-1", 0xabc)), Some(("n-1", 0xabc)));
        assert_eq!(parse_key("n1"), None);
    }
}
