//! Who is logged in on this shard: one [`Session`] per logged-in connection, by key.

use super::room::Membership;
use std::sync::Arc;

/// A logged-in user's session.
#[derive(Debug)]
pub struct Session {
    /// The user name as given at login (shared with the user index).
    pub name: Arc<str>,
    /// The room the user is in, and the position in its member list.
    pub membership: Membership,
    /// Logged in as the administrator: may run admin commands.
    pub admin: bool,
    /// This login's number on the shard; never reused (keys are), so answers meant for an
    /// earlier session on the same key can be told apart.
    pub id: u64,
}

/// Sessions by connection key. Keys are slab keys (small, dense, reused), so a vector indexed
/// by key is the map: O(1) with no hashing on the per-message path.
#[derive(Debug, Default)]
pub struct Sessions {
    /// `by_key[k]` is connection `k`'s session, if it is logged in.
    by_key: Vec<Option<Session>>,
    /// Number of `Some` entries in `by_key`.
    len: usize,
}

impl Sessions {
    /// Connection `key`'s session.
    pub fn get(&self, key: usize) -> Option<&Session> {
        self.by_key.get(key)?.as_ref()
    }

    /// Connection `key`'s session, to change its membership.
    pub fn get_mut(&mut self, key: usize) -> Option<&mut Session> {
        self.by_key.get_mut(key)?.as_mut()
    }

    /// The user name of `key`'s session.
    pub fn name(&self, key: usize) -> Option<&Arc<str>> {
        self.get(key).map(|s| &s.name)
    }

    /// True when `key` is logged in as `user` (keys are reused: a late answer for a previous
    /// user of the key must not reach the next one).
    pub fn is(&self, key: usize, user: &str) -> bool {
        self.name(key).is_some_and(|n| **n == *user)
    }

    /// Records `key`'s session.
    pub fn insert(&mut self, key: usize, session: Session) {
        if self.by_key.len() <= key {
            self.by_key.resize_with(key + 1, || None);
        }
        if self.by_key[key].replace(session).is_none() {
            self.len += 1;
        }
    }

    /// Forgets `key`'s session.
    pub fn remove(&mut self, key: usize) -> Option<Session> {
        let s = self.by_key.get_mut(key)?.take();
        self.len -= usize::from(s.is_some());
        s
    }

    /// Logged-in connections on this shard.
    pub fn count(&self) -> usize {
        self.len
    }

    /// Keys of every logged-in connection.
    pub fn keys(&self) -> impl Iterator<Item = usize> + '_ {
        self.by_key.iter().enumerate().filter(|(_, s)| s.is_some()).map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(name: &str) -> Session {
        Session { name: name.into(), membership: Membership { room: 0, index: 0 }, admin: false, id: 0 }
    }

    #[test]
    fn insert_remove_and_count() {
        let mut s = Sessions::default();
        s.insert(5, session("alice"));
        s.insert(2, session("bob"));
        assert_eq!(s.count(), 2);
        assert!(s.is(5, "alice") && !s.is(5, "bob") && !s.is(9, "alice"));
        assert_eq!(s.keys().collect::<Vec<_>>(), [2, 5]);
        assert_eq!(s.remove(5).map(|s| s.name), Some("alice".into()));
        assert!(s.remove(5).is_none());
        assert_eq!(s.count(), 1);
    }
}
