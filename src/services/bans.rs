//! Names an administrator banned (kick with a ban): refused at login, from any address, until
//! the ban runs out. Shared by every shard of the server; a cluster backplane would share it
//! between nodes too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Banned names (case-folded) and when each ban ends. Expired bans are dropped when looked at
/// or when another ban is added, so the map holds at most the live bans plus a few.
#[derive(Debug, Default)]
pub struct Bans(Mutex<HashMap<String, Instant>>);

impl Bans {
    /// Refuses `folded` until `now + for_`.
    pub fn ban(&self, folded: &str, for_: Duration, now: Instant) {
        let mut bans = self.0.lock().unwrap_or_else(|e| e.into_inner());
        bans.retain(|_, until| *until > now);
        bans.insert(folded.to_string(), now + for_);
    }

    /// Lifts the ban on `folded`; true if there was one.
    pub fn unban(&self, folded: &str, now: Instant) -> bool {
        let mut bans = self.0.lock().unwrap_or_else(|e| e.into_inner());
        bans.remove(folded).is_some_and(|until| until > now)
    }

    /// How long `folded` stays banned, if it is.
    pub fn remaining(&self, folded: &str, now: Instant) -> Option<Duration> {
        let mut bans = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let until = *bans.get(folded)?;
        if until <= now {
            bans.remove(folded);
            return None;
        }
        Some(until - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ban_lasts_its_duration_and_can_be_lifted() {
        let (bans, t0) = (Bans::default(), Instant::now());
        bans.ban("bob", Duration::from_secs(60), t0);
        assert_eq!(bans.remaining("bob", t0 + Duration::from_secs(20)), Some(Duration::from_secs(40)));
        assert_eq!(bans.remaining("bob", t0 + Duration::from_secs(60)), None);
        bans.ban("bob", Duration::from_secs(60), t0);
        assert!(bans.unban("bob", t0));
        assert_eq!(bans.remaining("bob", t0), None);
        assert!(!bans.unban("bob", t0));
    }
}
