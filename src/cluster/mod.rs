//! The backplane seam: what the chat rules need from "everyone else" — the other shards of this
//! server today, other nodes tomorrow.
//!
//! A backplane answers who is online where (user names are unique across it), which rooms exist
//! with which members, and carries already-encoded frames to the shards that host recipients.
//! The chat rules ([`crate::chat`]) hold an `Arc<dyn Backplane>` and never know which one they
//! have. [`InProcess`] is the one implementation: one directory behind a mutex, shared by the
//! shards of one process, with each shard's inbox a channel plus a `mio::Waker`.
//!
//! A room message never takes a lock: the chat core reads the room's [`RoomShared`] mask to see
//! which other shards host members, and [`Relay`] batches the frames per shard for one
//! [`Backplane::deliver`] per shard per loop turn.

mod local;
pub mod nats;
mod relay;

pub use local::InProcess;
pub use relay::Relay;

pub use crate::protocol::Frames;

use crate::services::files::{FileMeta, ReplyTo};
use crate::services::history::{AckTo, Read, ReadTag, Replay};
use crate::services::Done;
use mio::Waker;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

/// Room state every shard hosting members of the room can read without a lock.
#[derive(Debug, Default)]
pub struct RoomShared {
    /// Bit `i` is set while shard `i` hosts at least one member. Written by the backplane (under
    /// its lock) on join and leave; read by every message sent to the room.
    shards: AtomicU64,
}

impl RoomShared {
    /// Shards hosting members, as a bit mask.
    pub fn shards(&self) -> u64 {
        self.shards.load(Ordering::Acquire)
    }

    /// Marks `shard` as hosting members.
    fn add(&self, shard: usize) {
        self.shards.fetch_or(1 << shard, Ordering::AcqRel);
    }

    /// Marks `shard` as hosting none.
    fn remove(&self, shard: usize) {
        self.shards.fetch_and(!(1 << shard), Ordering::AcqRel);
    }
}

/// A room message on its way to the room's owner shard, which stamps its id (so that ids
/// increase in the order every shard delivers them).
#[derive(Debug)]
pub struct Stamp {
    /// The room.
    pub room: Arc<str>,
    /// The room's shard mask, from the sender's shard (a member's, so current).
    pub shared: Arc<RoomShared>,
    /// The sender's name.
    pub from: Arc<str>,
    /// The text.
    pub text: Box<str>,
    /// The sender, for its ROOM_MSG_ACK and to leave it out of the fan-out.
    pub sender: AckTo,
}

/// A read of a room's history, asked of the room's owner, which holds it.
///
/// A replay (`Read::Since`): a member waiting to enter `room` asks for the history it missed;
/// the owner answers in the same ordered stream as the room's messages, so nothing is missed or
/// sent twice. A scroll-back page (`Read::Page`): a member asks for older messages.
#[derive(Clone, Debug)]
pub struct ReplayReq {
    /// The asking member.
    pub tag: ReadTag,
    /// The room.
    pub room: Arc<str>,
    /// `Since(n)`: replay ids above `n` (`None`: the last `history_len`); `Page { before }`: a
    /// scroll-back page.
    pub read: Read,
}

/// A chunk of a file another node stores, for a download on this node: the answer comes back to
/// the asking shard as `Done::File(FileDone::Chunk)` with the same `to`, `id`, `tag` and
/// `offset`, as a read of the local store would.
#[derive(Clone, Copy, Debug)]
pub struct FileRead {
    /// The downloading shard and connection.
    pub to: ReplyTo,
    /// The file.
    pub id: u64,
    /// The download's tag (tells its answers from a stale one's).
    pub tag: u64,
    /// Where the chunk starts.
    pub offset: u64,
    /// Bytes wanted (at most one chunk).
    pub len: usize,
}

/// A file another node stores, as the cluster's file index lists it.
#[derive(Clone, Debug)]
pub struct RemoteFile {
    /// Its metadata (id, room, name, size, SHA-256, uploader).
    pub meta: Arc<FileMeta>,
    /// The node that holds its bytes.
    pub node: Arc<str>,
    /// False when that node has not been heard from within the cluster's TTL (gone, or cut off):
    /// its files are not listed and cannot be downloaded until it is back.
    pub reachable: bool,
}

/// Work one shard hands another.
#[derive(Debug)]
pub enum Remote {
    /// Deliver to every local member of `room`, but `skip` (a connection key and its login
    /// session: the sender, on its own shard).
    /// `chat`: a room message (counted as deliveries), not a presence notice.
    Room { room: Arc<str>, frames: Frames, chat: bool, skip: Option<(usize, u64)> },
    /// A room message for its owner to stamp and deliver.
    Stamp(Stamp),
    /// A replay or scroll-back request for the room's owner.
    Replay(ReplayReq),
    /// The owner's answer to a replay or scroll-back request.
    Replayed { req: ReplayReq, replay: Replay },
    /// Deliver to local connection `key` if it is still `user` (keys are reused).
    Direct { key: usize, user: Arc<str>, frames: Frames },
    /// Deliver to every logged-in local connection (admin alerts).
    All { frames: Frames },
    /// Close local connection `key` if it is still `user` (admin kick), telling it how long
    /// its name is banned.
    Kick { key: usize, user: Arc<str>, ban: std::time::Duration },
    /// An admin banned the case-folded name `user` for `ban` (zero: lifted the ban) on another
    /// shard or node: record it here too (the ban list is per server).
    Ban { user: Arc<str>, ban: std::time::Duration },
    /// Local connection `key`, if it is still `user`, lost its name to another node (its claim
    /// expired while this node was cut off from the cluster): close it.
    NameLost { key: usize, user: Arc<str> },
    /// The verdict on a name claim that [`Backplane::claim`] answered [`Claim::Pending`] for:
    /// connection `key`, if it is still waiting to log in as `user`.
    Claimed { key: usize, user: Arc<str>, verdict: Claim },
    /// The result of work done off the loop (hashing, disk, console).
    Done(Done),
}

/// How to reach a shard: its inbox and the waker of its loop.
#[derive(Clone, Debug)]
pub struct ShardLink {
    /// Batches of work for the shard.
    pub tx: Sender<Vec<Remote>>,
    /// Wakes the shard's poll.
    pub waker: Arc<Waker>,
}

/// Where an online user is.
#[derive(Clone, Debug)]
pub struct UserEntry {
    /// The name as the user wrote it.
    pub name: Arc<str>,
    /// The shard holding the connection.
    pub shard: usize,
    /// The connection's key on that shard.
    pub key: usize,
}

/// The answer to a name claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The name is this user's until released.
    Granted,
    /// Someone else holds the name.
    Taken,
    /// Asked elsewhere (another node): the verdict comes later as [`Remote::Claimed`]. Until
    /// then the name is held here, so a second claim on this node is [`Claim::Taken`].
    Pending,
    /// The backplane cannot tell now (the cluster is unreachable); try again later.
    Unavailable,
}

/// What the chat rules of one shard need from the rest of the server (or cluster).
///
/// Every method but [`Backplane::deliver`] may take a lock: the chat core calls them on login,
/// logout, join, leave, lists and admin commands, never per room message.
pub trait Backplane: Send + Sync {
    /// Number of shards (the room mask has one bit per shard).
    fn shard_count(&self) -> usize;
    /// The shard that owns `room`: it stamps the room's ids and answers its replays. Must be
    /// the same answer on every shard, for the life of the server.
    fn room_owner(&self, room: &str) -> usize;
    /// How `shard` makes room message ids unique: id = `seq * stride + offset`, where no two
    /// shards (of the whole cluster) share an offset and all share the stride. By default one
    /// slot per shard of this server.
    fn id_slot(&self, shard: usize) -> (u64, u64) {
        (self.shard_count() as u64, shard as u64)
    }
    /// Claims `folded` (a case-folded user name) for `entry`. Never waits on a network: a
    /// backplane that must ask elsewhere answers [`Claim::Pending`] and delivers the verdict.
    fn claim(&self, folded: &str, entry: UserEntry) -> Claim;
    /// Releases a claimed name.
    fn release(&self, folded: &str);
    /// Where the user with this case-folded name is, if online.
    fn locate(&self, folded: &str) -> Option<UserEntry>;
    /// Records `user` (on `shard`) as a member of `room`, creating it; returns the room's
    /// canonical name and its shared state.
    fn join(&self, room: &str, shard: usize, user: &Arc<str>) -> (Arc<str>, Arc<RoomShared>);
    /// Removes `user` (on `shard`) from `room`, deleting an emptied room (not the default one).
    fn leave(&self, room: &str, shard: usize, user: &str);
    /// Members of `room` everywhere.
    fn room_size(&self, room: &str) -> usize;
    /// Member names of `room`, sorted.
    fn members(&self, room: &str) -> Vec<Arc<str>>;
    /// Every room and its member count, sorted by name; the default room is always listed.
    fn rooms(&self) -> Vec<(Arc<str>, u32)>;
    /// Every room with its members' names, sorted by room (admin `users`).
    fn users_by_room(&self) -> Vec<(Arc<str>, Vec<Arc<str>>)>;
    /// Users online everywhere.
    fn online(&self) -> usize;
    /// How ids of files stored on this server are made unique cluster-wide: every id is
    /// `offset` modulo `stride`, and no two servers of a cluster share an offset. By default
    /// (one server) any id.
    fn file_id_slot(&self) -> (u64, u64) {
        (1, 0)
    }
    /// Files of `room` stored on other servers whose holder is reachable (none by default).
    fn remote_files(&self, _room: &str) -> Vec<Arc<FileMeta>> {
        Vec::new()
    }
    /// File `id` if another server stores it.
    fn remote_file(&self, _id: u64) -> Option<RemoteFile> {
        None
    }
    /// This server stored `meta`: tell the others (nothing to do alone).
    fn file_stored(&self, _meta: &FileMeta) {}
    /// Asks the server holding `read.id` for a chunk, without waiting; false if it cannot be
    /// asked (no other servers, or the queue to them is full).
    fn read_remote_file(&self, _read: FileRead) -> bool {
        false
    }
    /// Hands a batch of work to `shard` and wakes it; false if the shard is unknown or gone.
    /// A clustered backplane has one more shard than it runs: the rest of the cluster.
    fn deliver(&self, shard: usize, batch: Vec<Remote>) -> bool;
}
