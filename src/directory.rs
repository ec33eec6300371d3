//! What all shards share: who is online (user-name uniqueness), which rooms exist with which
//! members (LIST_USERS, LIST_ROOMS), and how to reach another shard.
//!
//! The directory's mutex is taken on login, logout, join, leave, lists, and a private message to
//! a user on another shard — never for a room message. The room-message path reads only the
//! room's [`RoomShared::shards`] mask, an atomic, to know which other shards host members.

use crate::features::{Done, Features};
use bytes::Bytes;
use mio::Waker;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};

/// The most shards a server can run (the room mask is one `u64`).
pub const MAX_SHARDS: usize = 64;

/// Room state every shard hosting members of the room can read without a lock.
#[derive(Debug, Default)]
pub struct RoomShared {
    /// Bit `i` is set while shard `i` hosts at least one member. Written under the directory lock.
    shards: AtomicU64,
}

impl RoomShared {
    /// Shards hosting members, as a bit mask.
    pub fn shards(&self) -> u64 {
        self.shards.load(Ordering::Acquire)
    }
}

/// A frame encoded once in both formats, for delivery on another shard whose members' formats
/// the sender does not know.
#[derive(Clone, Debug)]
pub struct Frames {
    /// The binary encoding.
    pub binary: Bytes,
    /// The JSON-lines encoding.
    pub json: Bytes,
}

/// Work one shard hands another.
#[derive(Debug)]
pub enum Remote {
    /// Deliver to every local member of `room`.
    /// `chat`: a room message (counted as deliveries), not a presence notice.
    Room { room: Arc<str>, frames: Frames, chat: bool },
    /// Deliver to local connection `key` if it is still `user` (keys are reused).
    Direct { key: usize, user: Arc<str>, frames: Frames },
    /// Deliver to every logged-in local connection (admin alerts).
    All { frames: Frames },
    /// Close local connection `key` if it is still `user` (admin kick).
    Kick { key: usize, user: Arc<str> },
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

/// One room across shards.
#[derive(Debug)]
struct DirRoom {
    /// The lock-free part.
    shared: Arc<RoomShared>,
    /// Members per shard. Invariant: bit `i` of `shared.shards` is set iff `per_shard[i] > 0`.
    per_shard: [u32; MAX_SHARDS],
    /// Member names, sorted (LIST_USERS).
    members: BTreeSet<Arc<str>>,
}

/// The locked part of the directory.
#[derive(Default)]
struct Inner {
    /// Online users by case-folded name.
    users: HashMap<Box<str>, UserEntry>,
    /// Rooms by exact name.
    rooms: HashMap<Arc<str>, DirRoom>,
}

/// The shared directory. One per server; every shard holds an `Arc`.
pub struct Directory {
    inner: Mutex<Inner>,
    /// Shard links, indexed by shard number. Set once all shards exist.
    links: Vec<ShardLink>,
    /// The room that is never deleted.
    default_room: Arc<str>,
    /// Authentication, history and admin services shared by every shard.
    features: Arc<Features>,
}

impl Directory {
    /// A directory for shards reachable through `links`.
    pub fn new(links: Vec<ShardLink>, default_room: &str) -> Self {
        let features = Arc::new(Features::default());
        features.attach(links.clone());
        Directory { inner: Mutex::default(), links, default_room: default_room.into(), features }
    }

    /// Uses `features` (started by [`Features::start`]) instead of the defaults, and lets its
    /// worker threads answer the shards.
    pub fn with_features(mut self, features: Arc<Features>) -> Self {
        features.attach(self.links.clone());
        self.features = features;
        self
    }

    /// The shared feature services.
    pub fn features(&self) -> &Arc<Features> {
        &self.features
    }

    /// Every room with its members' names, sorted by room (admin `users`).
    pub fn users_by_room(&self) -> Vec<(Arc<str>, Vec<Arc<str>>)> {
        let inner = self.lock();
        let mut v: Vec<_> =
            inner.rooms.iter().map(|(n, r)| (n.clone(), r.members.iter().cloned().collect::<Vec<_>>())).collect();
        v.sort_unstable();
        v
    }

    /// Number of users online on all shards.
    pub fn online(&self) -> usize {
        self.lock().users.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a server bug; the data is still consistent
        // enough to keep serving, so recover the guard.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.links.len()
    }

    /// Claims `folded` for a user on `shard`/`key`. False if the name is taken.
    pub fn login(&self, folded: &str, entry: UserEntry) -> bool {
        let mut inner = self.lock();
        if inner.users.contains_key(folded) {
            return false;
        }
        inner.users.insert(folded.into(), entry);
        true
    }

    /// Releases a user name.
    pub fn logout(&self, folded: &str) {
        self.lock().users.remove(folded);
    }

    /// Finds an online user.
    pub fn find_user(&self, folded: &str) -> Option<UserEntry> {
        self.lock().users.get(folded).cloned()
    }

    /// Records `user` (on `shard`) as a member of `room`, creating it; returns the room's
    /// shared state and its canonical name.
    pub fn join(&self, room: &str, shard: usize, user: &Arc<str>) -> (Arc<str>, Arc<RoomShared>) {
        let mut inner = self.lock();
        let (name, r) = match inner.rooms.get_key_value(room) {
            Some((name, _)) => {
                let name = name.clone();
                let r = inner.rooms.get_mut(&name).expect("present");
                (name, r)
            }
            None => {
                let name: Arc<str> = room.into();
                let r = DirRoom { shared: Arc::default(), per_shard: [0; MAX_SHARDS], members: BTreeSet::new() };
                (name.clone(), inner.rooms.entry(name).or_insert(r))
            }
        };
        r.per_shard[shard] += 1;
        r.shared.shards.fetch_or(1 << shard, Ordering::AcqRel);
        r.members.insert(user.clone());
        (name, r.shared.clone())
    }

    /// Removes `user` (on `shard`) from `room`; deletes the room when it empties (except the
    /// default room).
    pub fn leave(&self, room: &str, shard: usize, user: &str) {
        let mut inner = self.lock();
        let Some(r) = inner.rooms.get_mut(room) else { return };
        r.members.remove(user);
        r.per_shard[shard] = r.per_shard[shard].saturating_sub(1);
        if r.per_shard[shard] == 0 {
            r.shared.shards.fetch_and(!(1 << shard), Ordering::AcqRel);
        }
        if r.members.is_empty() && *room != *self.default_room {
            inner.rooms.remove(room);
        }
    }

    /// Members of `room` on all shards.
    pub fn room_size(&self, room: &str) -> usize {
        self.lock().rooms.get(room).map_or(0, |r| r.members.len())
    }

    /// Member names of `room`, sorted.
    pub fn members(&self, room: &str) -> Vec<Arc<str>> {
        self.lock().rooms.get(room).map(|r| r.members.iter().cloned().collect()).unwrap_or_default()
    }

    /// Every room and its member count, sorted by name. The default room is always listed.
    pub fn rooms(&self) -> Vec<(Arc<str>, u32)> {
        let inner = self.lock();
        let mut v: Vec<_> = inner.rooms.iter().map(|(n, r)| (n.clone(), r.members.len() as u32)).collect();
        if !inner.rooms.contains_key(&*self.default_room) {
            v.push((self.default_room.clone(), 0));
        }
        v.sort_unstable();
        v
    }

    /// Hands a batch of work to `shard` and wakes it.
    pub fn send(&self, shard: usize, batch: Vec<Remote>) {
        let Some(link) = self.links.get(shard) else { return };
        if link.tx.send(batch).is_ok() {
            let _ = link.waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Directory {
        Directory::new(Vec::new(), "general")
    }

    #[test]
    fn names_are_unique() {
        let d = dir();
        let e = UserEntry { name: "Alice".into(), shard: 0, key: 1 };
        assert!(d.login("alice", e.clone()));
        assert!(!d.login("alice", e));
        d.logout("alice");
        assert!(d.find_user("alice").is_none());
    }

    #[test]
    fn masks_follow_members_per_shard() {
        let d = dir();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let (_, shared) = d.join("tech", 0, &a);
        d.join("tech", 3, &b);
        assert_eq!(shared.shards(), 0b1001);
        d.leave("tech", 0, "a");
        assert_eq!(shared.shards(), 0b1000);
        assert_eq!(d.members("tech"), vec![b.clone()]);
        d.leave("tech", 3, "b");
        assert_eq!(d.rooms(), vec![("general".into(), 0)]);
    }
}
