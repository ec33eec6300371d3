//! The NATS backplane: several chat-server nodes joined through a NATS server.
//!
//! Each node keeps its own connections and room members and runs its shards over an
//! [`InProcess`] backplane as a single server does. [`Nats`] wraps that backplane and adds one
//! more shard number, `remote` (the local shard count), which stands for the rest of the cluster:
//!
//! - every room's shard mask has the `remote` bit, so a room message's owner shard hands its
//!   encoded frames to `remote` once per turn ([`crate::cluster::Relay`]); the link thread
//!   publishes them once on the room's subject, and NATS carries them only to nodes subscribed to
//!   it (a node subscribes to a room while it has local members);
//! - a user on another node is [`locate`](Backplane::locate)d at shard `remote`: private messages
//!   and kicks for them go to `remote`, which publishes them on the holding node's subject;
//! - names are claimed in a JetStream key-value bucket with create-if-absent: [`Backplane::claim`]
//!   answers [`Claim::Pending`] and the verdict comes back to the shard as [`Remote::Claimed`].
//!   Each node re-writes its names every `ttl / 3`; the bucket's `max_age` is `ttl`, so a dead
//!   node's names expire within `ttl` of its last write.
//!
//! No shard thread ever waits on the network: work for the link thread goes through a bounded
//! queue with `try_send` (full: the batch is dropped and counted), and what arrives from NATS
//! reaches the shards through their inboxes and wakers, as work from a sibling shard does.

mod accounts;
mod directory;
mod files;
mod link;
mod log;
mod names;
mod recent;
pub mod wire;

pub use files::FILES_BUCKET;
pub use log::{LogLimits, STREAM as LOG_STREAM};

use super::{Backplane, Claim, FileRead, InProcess, Remote, RemoteFile, RoomShared, UserEntry};
pub use crate::config::ClusterConfig;
use crate::services::files::FileMeta;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Most nodes in one cluster: each holds one of this many id slots.
pub const MAX_NODES: u64 = 16;

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("cannot reach NATS at {servers}: {reason}")]
    Connect { servers: String, reason: String },
    #[error("NATS JetStream key-value bucket {bucket}: {reason} (is nats-server running with -js?)")]
    Bucket { bucket: &'static str, reason: String },
    #[error("NATS JetStream stream {stream}: {reason} (is nats-server 2.9 or later running with -js?)")]
    Log { stream: &'static str, reason: String },
    #[error("cannot join the cluster as this node: {0}")]
    Node(String),
    #[error("cannot start the NATS thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("the NATS thread did not answer in time")]
    Timeout,
}

/// The link's counters, readable from any thread.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// True while the NATS connection is up.
    pub connected: AtomicBool,
    /// Times the connection was lost.
    pub disconnects: AtomicU64,
    /// Batches of outgoing work dropped because the queue to the NATS thread was full.
    pub dropped: AtomicU64,
    /// Envelopes published.
    pub published: AtomicU64,
    /// Envelopes received from other nodes.
    pub received: AtomicU64,
    /// Names this node held that the bucket no longer confirmed (lost to another node).
    pub names_lost: AtomicU64,
    /// Local joins and leaves so far (the link rewrites this node's rooms when it moves).
    pub directory_changes: AtomicU64,
    /// Room messages the log confirmed (acknowledged to their senders).
    pub logged: AtomicU64,
    /// Room messages refused because the log could not take them (NATS away, queue full, no
    /// answer in time): their senders got an error, not an acknowledgement.
    pub log_refused: AtomicU64,
    /// Times a followed room's live messages skipped some (the stream's `Nats-Last-Sequence`
    /// said so) and the missing ones were read from the log.
    pub log_gaps: AtomicU64,
    /// Chunks of other nodes' files fetched for downloads on this node.
    pub file_chunks_fetched: AtomicU64,
    /// Chunk requests to other nodes that failed (holder gone, no answer in time, read error):
    /// each ended its download with an error.
    pub file_fetches_failed: AtomicU64,
    /// Chunks of this node's files read for downloads on other nodes.
    pub file_chunks_served: AtomicU64,
}

/// A user name held on another node, as last seen in the names bucket.
#[derive(Debug)]
struct RemoteName {
    /// The name as its user wrote it.
    name: Arc<str>,
    /// The holding node.
    node: Arc<str>,
    /// When its claim was last written (a heartbeat refreshes it): older than the TTL means
    /// the node stopped refreshing it, and the bucket has dropped it.
    seen: Instant,
}

/// What this node knows of the others, mirrored from the buckets by the link.
#[derive(Debug, Default)]
struct Mirror {
    /// Names held on other nodes, by case-folded name.
    names: HashMap<Box<str>, RemoteName>,
    /// Other nodes' rooms, by node name.
    dirs: HashMap<Arc<str>, directory::RemoteDir>,
    /// Other nodes' files, by id.
    files: files::Index,
}

/// Work for the link thread.
#[derive(Debug)]
enum Cmd {
    /// A shard's batch for the rest of the cluster.
    Out(Vec<Remote>),
    /// A room's local membership changed: subscribe or unsubscribe to match.
    Membership(Arc<str>),
    /// Claim a name in the bucket for a local connection.
    Claim { folded: Box<str>, entry: UserEntry },
    /// Drop a claim.
    Release(Box<str>),
    /// File sharing across nodes.
    Files(files::FilesCmd),
}

/// The clustered backplane of one node.
pub struct Nats {
    /// This node's shards.
    local: Arc<InProcess>,
    /// The shard number standing for the other nodes (= the local shard count).
    remote: usize,
    /// The bounded queue to the link thread.
    cmds: mpsc::Sender<Cmd>,
    /// Names on other nodes.
    mirror: Arc<Mutex<Mirror>>,
    /// How long a name claim lives without a heartbeat.
    ttl: Duration,
    /// The link's counters.
    stats: Arc<ClusterStats>,
    /// This node's id slot (below [`MAX_NODES`]), claimed in the names bucket.
    slot: u64,
    /// The bounded queue from the accounts threads to the NATS thread.
    book: mpsc::Sender<accounts::BookReq>,
}

impl Nats {
    /// Connects to NATS, opens (or creates) the names bucket and starts the link thread; waits
    /// (on the calling thread, before any shard runs) until the link is ready.
    pub fn start(config: ClusterConfig, limits: LogLimits, local: Arc<InProcess>) -> Result<Nats, ClusterError> {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let mirror = Arc::new(Mutex::new(Mirror::default()));
        let stats = Arc::new(ClusterStats::default());
        let remote = local.shard_count();
        let (book, book_rx) = mpsc::channel(accounts::BOOK_QUEUE);
        let (slot, ttl) = link::spawn((config, limits), local.clone(), mirror.clone(), stats.clone(), (rx, book_rx))?;
        Ok(Nats { local, remote, cmds: tx, mirror, ttl, stats, slot, book })
    }

    /// The cluster's shared accounts (`--auth accounts`), for the accounts threads.
    pub fn account_book(&self) -> Arc<dyn crate::services::accounts::AccountBook> {
        Arc::new(accounts::NatsBook { tx: self.book.clone(), stats: self.stats.clone() })
    }

    /// Serves the files this node stores in `dir` to the other nodes and indexes `files` (what
    /// the store holds at start) for them; `None`: file sharing is off here (this node's old
    /// entries are dropped). Call once, before the shards run.
    pub fn serve_files(&self, dir: Option<std::path::PathBuf>, files: Vec<Arc<FileMeta>>) {
        self.send(Cmd::Files(files::FilesCmd::Serve { dir, files }));
    }

    /// The link's counters.
    pub fn stats(&self) -> Arc<ClusterStats> {
        self.stats.clone()
    }

    fn mirror(&self) -> MutexGuard<'_, Mirror> {
        self.mirror.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues work for the link thread without waiting; false (and counted) if the queue is full.
    fn send(&self, cmd: Cmd) -> bool {
        let ok = self.cmds.try_send(cmd).is_ok();
        if !ok {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// The holder of `folded` on another node, if its claim is fresh.
    fn remote_name(&self, folded: &str) -> Option<Arc<str>> {
        let mirror = self.mirror();
        let r = mirror.names.get(folded)?;
        (r.seen.elapsed() < self.ttl).then(|| r.name.clone())
    }
}

impl Backplane for Nats {
    fn shard_count(&self) -> usize {
        self.remote + 1
    }

    /// The cluster's log owns every room: it stamps ids (its sequence) and answers replays.
    fn room_owner(&self, _room: &str) -> usize {
        self.remote
    }

    // (No `id_slot`: in a cluster no shard stamps a room message; the log's sequence is its id.)

    /// Ids in this node's slot: an id names one file cluster-wide.
    fn file_id_slot(&self) -> (u64, u64) {
        (MAX_NODES, self.slot)
    }

    fn remote_files(&self, room: &str) -> Vec<Arc<FileMeta>> {
        files::listed(&self.mirror(), self.ttl, room)
    }

    fn remote_file(&self, id: u64) -> Option<RemoteFile> {
        files::find(&self.mirror(), self.ttl, id)
    }

    fn file_stored(&self, meta: &FileMeta) {
        self.send(Cmd::Files(files::FilesCmd::Stored(Arc::new(meta.clone()))));
    }

    fn read_remote_file(&self, read: FileRead) -> bool {
        self.send(Cmd::Files(files::FilesCmd::Read(read)))
    }

    fn claim(&self, folded: &str, entry: UserEntry) -> Claim {
        if self.remote_name(folded).is_some() || self.local.claim(folded, entry.clone()) == Claim::Taken {
            return Claim::Taken;
        }
        if self.send(Cmd::Claim { folded: folded.into(), entry }) {
            Claim::Pending
        } else {
            self.local.release(folded);
            Claim::Unavailable
        }
    }

    fn release(&self, folded: &str) {
        self.local.release(folded);
        // If this is dropped the link notices at its next heartbeat (the name is no longer
        // held here) and deletes the claim then.
        self.send(Cmd::Release(folded.into()));
    }

    fn locate(&self, folded: &str) -> Option<UserEntry> {
        self.local.locate(folded).or_else(|| {
            let name = self.remote_name(folded)?;
            Some(UserEntry { name, shard: self.remote, key: 0 })
        })
    }

    fn join(&self, room: &str, shard: usize, user: &Arc<str>) -> (Arc<str>, Arc<RoomShared>) {
        let (name, shared) = self.local.join(room, shard, user);
        shared.add(self.remote);
        self.stats.directory_changes.fetch_add(1, Ordering::Relaxed);
        self.send(Cmd::Membership(name.clone()));
        (name, shared)
    }

    fn leave(&self, room: &str, shard: usize, user: &str) {
        self.local.leave(room, shard, user);
        self.stats.directory_changes.fetch_add(1, Ordering::Relaxed);
        self.send(Cmd::Membership(room.into()));
    }

    fn room_size(&self, room: &str) -> usize {
        // A name is held on one node at a time, so the counts add up without a merge.
        self.local.room_size(room) + directory::remote_size(&self.mirror(), self.ttl, room)
    }

    fn members(&self, room: &str) -> Vec<Arc<str>> {
        directory::members(&self.local, &self.mirror(), self.ttl, room)
    }

    fn rooms(&self) -> Vec<(Arc<str>, u32)> {
        let all = directory::merged(&self.local, &self.mirror(), self.ttl);
        // The local list always has the default room, so the merged one does too.
        all.into_iter().map(|(room, members)| (room, members.len() as u32)).collect()
    }

    fn users_by_room(&self) -> Vec<(Arc<str>, Vec<Arc<str>>)> {
        let all = directory::merged(&self.local, &self.mirror(), self.ttl);
        all.into_iter().map(|(room, members)| (room, members.into_iter().collect())).collect()
    }

    fn online(&self) -> usize {
        let ttl = self.ttl;
        self.local.online() + self.mirror().names.values().filter(|r| r.seen.elapsed() < ttl).count()
    }

    fn deliver(&self, shard: usize, batch: Vec<Remote>) -> bool {
        match shard.cmp(&self.remote) {
            std::cmp::Ordering::Less => self.local.deliver(shard, batch),
            std::cmp::Ordering::Equal => match self.cmds.try_send(Cmd::Out(batch)) {
                Ok(()) => true,
                Err(full) => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    // A dropped append or replay is still answered, or its sender waits forever.
                    if let Cmd::Out(batch) = full.into_inner() {
                        batch.into_iter().for_each(|work| log::refuse(&self.local, &self.stats, work));
                    }
                    false
                }
            },
            std::cmp::Ordering::Greater => false,
        }
    }
}
