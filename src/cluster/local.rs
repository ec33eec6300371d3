//! The in-process backplane: the shards of one server, sharing one directory behind a mutex.
//!
//! The mutex is taken on login, logout, join, leave, lists, and a private message to a user on
//! another shard — never for a room message. The room-message path reads only the room's
//! [`RoomShared::shards`] mask, an atomic, to know which other shards host members. Work for
//! another shard goes through that shard's inbox (a channel) and wakes its loop.

use super::{Backplane, Claim, Frames, Remote, RoomShared, ShardLink, UserEntry};
use crate::config::MAX_SHARDS;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

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

/// The locked part of the backplane.
#[derive(Default)]
struct Inner {
    /// Online users by case-folded name.
    users: HashMap<Box<str>, UserEntry>,
    /// Rooms by exact name.
    rooms: HashMap<Arc<str>, DirRoom>,
}

/// The in-process backplane. One per server; every shard holds an `Arc`.
pub struct InProcess {
    inner: Mutex<Inner>,
    /// Shard links, indexed by shard number.
    links: Vec<ShardLink>,
    /// The room that is never deleted.
    default_room: Arc<str>,
}

impl InProcess {
    /// A backplane for the shards reachable through `links`.
    pub fn new(links: Vec<ShardLink>, default_room: &str) -> Self {
        InProcess { inner: Mutex::default(), links, default_room: default_room.into() }
    }

    /// Hands `frames` for `room` to every local shard hosting members (one batch each), leaving
    /// out connection `skip.1` (a key and its login session) on shard `skip.0`: what a cluster
    /// node does with what reaches it for a room.
    pub(crate) fn deliver_room(
        &self,
        room: &Arc<str>,
        frames: &Frames,
        chat: bool,
        skip: Option<(usize, (usize, u64))>,
    ) {
        let mask = self.local_mask(room);
        for shard in (0..self.links.len()).filter(|s| mask & (1 << s) != 0) {
            let skip = skip.filter(|&(on, _)| on == shard).map(|(_, who)| who);
            self.deliver(shard, vec![Remote::Room { room: room.clone(), frames: frames.clone(), chat, skip }]);
        }
    }

    /// Bit `i` set while local shard `i` hosts members of `room` (0: no local member).
    pub(crate) fn local_mask(&self, room: &str) -> u64 {
        let all = u64::MAX.checked_shr(64 - self.links.len() as u32).unwrap_or(0);
        self.lock().rooms.get(room).map_or(0, |r| r.shared.shards() & all)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a server bug; the data is still consistent
        // enough to keep serving, so recover the guard.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Backplane for InProcess {
    fn shard_count(&self) -> usize {
        self.links.len()
    }

    fn room_owner(&self, room: &str) -> usize {
        crate::services::history::owner(room, self.links.len())
    }

    fn claim(&self, folded: &str, entry: UserEntry) -> Claim {
        let mut inner = self.lock();
        if inner.users.contains_key(folded) {
            return Claim::Taken;
        }
        inner.users.insert(folded.into(), entry);
        Claim::Granted
    }

    fn release(&self, folded: &str) {
        self.lock().users.remove(folded);
    }

    fn locate(&self, folded: &str) -> Option<UserEntry> {
        self.lock().users.get(folded).cloned()
    }

    fn join(&self, room: &str, shard: usize, user: &Arc<str>) -> (Arc<str>, Arc<RoomShared>) {
        let mut inner = self.lock();
        let name = match inner.rooms.get_key_value(room) {
            Some((name, _)) => name.clone(),
            None => room.into(),
        };
        let r = inner.rooms.entry(name.clone()).or_insert_with(|| DirRoom {
            shared: Arc::default(),
            per_shard: [0; MAX_SHARDS],
            members: BTreeSet::new(),
        });
        r.per_shard[shard] += 1;
        r.shared.add(shard);
        r.members.insert(user.clone());
        (name, r.shared.clone())
    }

    fn leave(&self, room: &str, shard: usize, user: &str) {
        let mut inner = self.lock();
        let Some(r) = inner.rooms.get_mut(room) else { return };
        r.members.remove(user);
        r.per_shard[shard] = r.per_shard[shard].saturating_sub(1);
        if r.per_shard[shard] == 0 {
            r.shared.remove(shard);
        }
        if r.members.is_empty() && *room != *self.default_room {
            inner.rooms.remove(room);
        }
    }

    fn room_size(&self, room: &str) -> usize {
        self.lock().rooms.get(room).map_or(0, |r| r.members.len())
    }

    fn members(&self, room: &str) -> Vec<Arc<str>> {
        self.lock().rooms.get(room).map(|r| r.members.iter().cloned().collect()).unwrap_or_default()
    }

    fn rooms(&self) -> Vec<(Arc<str>, u32)> {
        let inner = self.lock();
        let mut v: Vec<_> = inner.rooms.iter().map(|(n, r)| (n.clone(), r.members.len() as u32)).collect();
        if !inner.rooms.contains_key(&*self.default_room) {
            v.push((self.default_room.clone(), 0));
        }
        v.sort_unstable();
        v
    }

    fn users_by_room(&self) -> Vec<(Arc<str>, Vec<Arc<str>>)> {
        let inner = self.lock();
        let mut v: Vec<_> =
            inner.rooms.iter().map(|(n, r)| (n.clone(), r.members.iter().cloned().collect::<Vec<_>>())).collect();
        v.sort_unstable();
        v
    }

    fn online(&self) -> usize {
        self.lock().users.len()
    }

    fn deliver(&self, shard: usize, batch: Vec<Remote>) -> bool {
        let Some(link) = self.links.get(shard) else { return false };
        if link.tx.send(batch).is_err() {
            return false;
        }
        let _ = link.waker.wake();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> InProcess {
        InProcess::new(Vec::new(), "general")
    }

    #[test]
    fn names_are_unique() {
        let d = dir();
        let e = UserEntry { name: "Alice".into(), shard: 0, key: 1 };
        assert_eq!(d.claim("alice", e.clone()), Claim::Granted);
        assert_eq!(d.claim("alice", e), Claim::Taken);
        assert_eq!(d.locate("alice").map(|e| e.key), Some(1));
        d.release("alice");
        assert!(d.locate("alice").is_none());
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
