//! Presence coalescing: a join storm costs O(n) notices, not O(n²).
//!
//! Without it every join and leave is one SYSTEM_MSG to every member, so n users joining one room
//! make about n²/2 frames. Here each room has a *window* per shard: the first change in a quiet
//! room goes out at once (as the SYSTEM_MSG it always was) and opens a window of `interval`; the
//! changes that follow inside it are gathered and, when it ends, become ONE PRESENCE notice,
//! encoded once per format and shared by every member on every shard. A window that ends with
//! changes gathered opens the next one; a window that ends empty closes, and the room is quiet
//! again.
//!
//! So a member hears at most `1 + intervals` notices per shard that hosts joiners, however many
//! join. Windows are per shard (each shard gathers the changes of its own connections and sends
//! the notice to every shard hosting members), so members everywhere see the same notices.
//!
//! Time is the hub's clock (`set_now`), handed in; nothing here reads one.

use crate::cluster::RoomShared;
use std::collections::HashMap;
use std::sync::Arc;

/// Names listed per list of one PRESENCE notice; the rest are counted (`joined_more`,
/// `left_more`), so a notice stays small however big the storm.
pub const NAMES_CAP: usize = 20;

/// Whether a change is a join or a departure (leave or disconnect).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The user entered the room.
    Joined,
    /// The user left the room or disconnected.
    Left,
}

/// The changes of one room gathered in a window, ready to be sent.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Gathered {
    /// Names that joined, in order, at most [`NAMES_CAP`].
    pub joined: Vec<Arc<str>>,
    /// Joins past the cap.
    pub joined_more: u64,
    /// Names that left or disconnected, in order, at most [`NAMES_CAP`].
    pub left: Vec<Arc<str>>,
    /// Departures past the cap.
    pub left_more: u64,
}

impl Gathered {
    /// True when nothing was gathered.
    fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty() && self.joined_more == 0 && self.left_more == 0
    }

    fn add(&mut self, change: Change, name: &Arc<str>) {
        let (names, more) = match change {
            Change::Joined => (&mut self.joined, &mut self.joined_more),
            Change::Left => (&mut self.left, &mut self.left_more),
        };
        if names.len() < NAMES_CAP {
            names.push(name.clone());
        } else {
            *more += 1;
        }
    }
}

/// One room's open window.
#[derive(Debug)]
struct Window {
    /// Which shards host members (kept so a notice still reaches them after the last local
    /// member left and the local room is gone).
    shared: Arc<RoomShared>,
    /// When the window ends (ms, the hub's clock).
    until_ms: u64,
    /// What arrived since the window opened.
    gathered: Gathered,
}

/// The open windows of one shard's rooms.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// Window length in ms; 0 turns coalescing off (every change goes out at once).
    interval_ms: u64,
    /// Open windows by canonical room name. Invariant: at most one per room, and only for rooms
    /// with a change in the last interval (bounded by the rooms, swept by [`Coalescer::due`]).
    windows: HashMap<Arc<str>, Window>,
}

impl Coalescer {
    /// Windows of `interval_ms` (0: off).
    pub fn new(interval_ms: u64) -> Self {
        Coalescer { interval_ms, windows: HashMap::new() }
    }

    /// Records `change` of user `name` in `room` at `now_ms`. Returns true when it must go out
    /// at once (coalescing is off, or the room was quiet: this opens a window), false when it was
    /// gathered for the room's next notice.
    pub fn note(
        &mut self,
        room: &Arc<str>,
        shared: &Arc<RoomShared>,
        change: Change,
        name: &Arc<str>,
        now_ms: u64,
    ) -> bool {
        if self.interval_ms == 0 {
            return true;
        }
        if let Some(w) = self.windows.get_mut(room) {
            w.gathered.add(change, name);
            return false;
        }
        let w = Window { shared: shared.clone(), until_ms: now_ms + self.interval_ms, gathered: Gathered::default() };
        self.windows.insert(room.clone(), w);
        true
    }

    /// Ends every window due at `now_ms`: hands `send` the room, its shard mask and what was
    /// gathered; a window with changes opens the next one, an empty one closes. A window whose end
    /// lies more than an interval ahead (the wall clock went back) counts as due.
    pub fn due(&mut self, now_ms: u64, mut send: impl FnMut(&Arc<str>, &RoomShared, Gathered)) {
        if self.windows.is_empty() {
            return;
        }
        let interval = self.interval_ms;
        self.windows.retain(|room, w| {
            if now_ms < w.until_ms && w.until_ms <= now_ms + interval {
                return true;
            }
            if w.gathered.is_empty() {
                return false;
            }
            send(room, &w.shared, std::mem::take(&mut w.gathered));
            w.until_ms = now_ms + interval;
            true
        });
    }

    /// Milliseconds from `now_ms` until the next window ends, if any is open (the loop's poll
    /// timeout).
    pub fn next_due_in(&self, now_ms: u64) -> Option<u64> {
        self.windows.values().map(|w| w.until_ms.saturating_sub(now_ms).min(self.interval_ms)).min()
    }

    /// Forgets every window (shutdown: nobody is left to tell).
    pub fn clear(&mut self) {
        self.windows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<Arc<str>> {
        (0..n).map(|i| Arc::from(format!("u{i}"))).collect()
    }

    #[test]
    fn the_first_change_goes_out_at_once_and_the_rest_wait_for_the_window() {
        let mut c = Coalescer::new(250);
        let (room, shared) = (Arc::from("general"), Arc::default());
        let users = names(30);
        assert!(c.note(&room, &shared, Change::Joined, &users[0], 1000));
        for u in &users[1..] {
            assert!(!c.note(&room, &shared, Change::Joined, u, 1100));
        }
        assert!(!c.note(&room, &shared, Change::Left, &users[0], 1200));
        let mut sent = Vec::new();
        c.due(1249, |_, _, g| sent.push(g));
        assert!(sent.is_empty(), "not before the window ends");
        c.due(1250, |r, _, g| {
            assert_eq!(&**r, "general");
            sent.push(g)
        });
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].joined, users[1..21].to_vec());
        assert_eq!((sent[0].joined_more, sent[0].left.len(), sent[0].left_more), (9, 1, 0));
        // The next window is open: a change now waits; an empty window closes the room's.
        assert!(!c.note(&room, &shared, Change::Joined, &users[0], 1300));
        c.due(1500, |_, _, g| sent.push(g));
        c.due(1750, |_, _, g| sent.push(g));
        assert_eq!(sent.len(), 2);
        assert_eq!(c.next_due_in(1750), None, "closed");
        assert!(c.note(&room, &shared, Change::Joined, &users[1], 1800), "quiet again");
    }

    #[test]
    fn interval_zero_sends_every_change_and_a_clock_going_back_ends_windows() {
        let mut off = Coalescer::new(0);
        let (room, shared, u) = (Arc::from("r"), Arc::default(), Arc::from("u"));
        assert!(off.note(&room, &shared, Change::Joined, &u, 5));
        assert!(off.note(&room, &shared, Change::Joined, &u, 5));
        let mut c = Coalescer::new(100);
        c.note(&room, &shared, Change::Joined, &u, 10_000);
        c.note(&room, &shared, Change::Left, &u, 10_000);
        assert_eq!(c.next_due_in(10_050), Some(50));
        let mut sent = 0;
        c.due(5_000, |_, _, _| sent += 1);
        assert_eq!(sent, 1, "the clock went back: the window is due, not stuck");
    }
}
