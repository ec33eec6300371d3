//! The delivery ledger: one counter per scheduled message, so that every loss and every duplicate
//! is found, not just a difference of totals.
//!
//! Each message `(bot, seq)` has an `AtomicU32`: the sender sets the top bit when it sends (and
//! the next one when its connection dropped before the ROOM_MSG_ACK, see fail-over), every
//! receiving bot adds one. After the run, [`Ledger::audit`] compares each count with the number of
//! receivers the message should have reached. Memory is 4 bytes per scheduled message; runs with
//! more than [`MAX_TRACKED`] messages keep only totals.

use serde::Serialize;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::schedule::Schedule;

const SENT: u32 = 1 << 31;
/// Sent on a connection that dropped before the ROOM_MSG_ACK came: the server may never have had it.
const UNACKED: u32 = 1 << 30;
const COUNT: u32 = UNACKED - 1;

/// Above this many scheduled messages (256 MiB of counters) the ledger is off.
pub const MAX_TRACKED: u64 = 64 << 20;

/// Per-message delivery counters for a run.
pub struct Ledger {
    /// `per_bot[b][seq]`: sent flag (bit 31) and delivery count (bits 0..31). Empty when off.
    per_bot: Vec<Box<[AtomicU32]>>,
}

/// What the audit found, for one part of the run (measured window or warm-up).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// Messages sent.
    pub sent: u64,
    /// Deliveries those messages should have produced.
    pub expected: u64,
    /// Deliveries counted (at most `expected` per message; extras are duplicates).
    pub delivered: u64,
    /// Deliveries missing.
    pub lost: u64,
    /// Deliveries beyond the expected count.
    pub duplicated: u64,
    /// Messages with at least one missing delivery.
    pub messages_with_loss: u64,
    /// Messages with at least one extra delivery.
    pub messages_with_duplicates: u64,
    /// Deliveries of messages the ledger never saw sent (should be impossible).
    pub phantom: u64,
    /// Messages sent on a connection that dropped before their ROOM_MSG_ACK (fail-over). Their
    /// deliveries are in `expected`/`delivered`, but what is missing of them is `lost_unacked`,
    /// not `lost`: a client resends what was never acknowledged, the server lost nothing.
    #[serde(skip_serializing_if = "is_zero")]
    pub unacked: u64,
    /// Deliveries missing of `unacked` messages.
    #[serde(skip_serializing_if = "is_zero")]
    pub lost_unacked: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Ledger {
    /// A ledger sized for `schedule`, or an empty one if it would exceed [`MAX_TRACKED`].
    pub fn new(schedule: &Schedule, bots: u32) -> Self {
        if schedule.total() > MAX_TRACKED {
            return Ledger { per_bot: Vec::new() };
        }
        let per_bot = (0..bots)
            .map(|b| (0..schedule.count(b)).map(|_| AtomicU32::new(0)).collect::<Vec<_>>().into_boxed_slice())
            .collect();
        Ledger { per_bot }
    }

    /// True when per-message counters are kept.
    pub fn enabled(&self) -> bool {
        !self.per_bot.is_empty()
    }

    fn slot(&self, bot: u32, seq: u32) -> Option<&AtomicU32> {
        self.per_bot.get(bot as usize)?.get(seq as usize)
    }

    /// The sender sent `(bot, seq)`.
    pub fn mark_sent(&self, bot: u32, seq: u32) {
        if let Some(s) = self.slot(bot, seq) {
            s.fetch_or(SENT, Relaxed);
        }
    }

    /// The sender's connection dropped before `(bot, seq)` was acknowledged. False when the
    /// message was not sent (or the ledger is off).
    pub fn mark_unacked(&self, bot: u32, seq: u32) -> bool {
        match self.slot(bot, seq) {
            Some(s) if s.load(Relaxed) & SENT != 0 => {
                s.fetch_or(UNACKED, Relaxed);
                true
            }
            _ => false,
        }
    }

    /// A bot received `(bot, seq)`. False if the ledger has no such message (a foreign stamp).
    pub fn deliver(&self, bot: u32, seq: u32) -> bool {
        match self.slot(bot, seq) {
            Some(s) => {
                s.fetch_add(1, Relaxed);
                true
            }
            None => !self.enabled(),
        }
    }

    /// Checks every message. `expected(bot, seq)` is the number of receivers of a sent message;
    /// `measured(bot, seq)` says which part of the run it belongs to. Returns (measured, warm-up).
    pub fn audit(&self, expected: impl Fn(u32, u32) -> u64, measured: impl Fn(u32, u32) -> bool) -> (Audit, Audit) {
        let (mut m, mut w) = (Audit::default(), Audit::default());
        for (bot, slots) in self.per_bot.iter().enumerate() {
            for (seq, slot) in slots.iter().enumerate() {
                let (bot, seq) = (bot as u32, seq as u32);
                let v = slot.load(Relaxed);
                let got = (v & COUNT) as u64;
                let a = if measured(bot, seq) { &mut m } else { &mut w };
                if v & SENT == 0 {
                    a.phantom += got;
                    continue;
                }
                let want = expected(bot, seq);
                a.sent += 1;
                a.expected += want;
                a.delivered += got.min(want);
                if v & UNACKED != 0 {
                    a.unacked += 1;
                    a.lost_unacked += want.saturating_sub(got);
                    a.duplicated += got.saturating_sub(want);
                    a.messages_with_duplicates += u64::from(got > want);
                } else if got < want {
                    a.lost += want - got;
                    a.messages_with_loss += 1;
                } else if got > want {
                    a.duplicated += got - want;
                    a.messages_with_duplicates += 1;
                }
            }
        }
        (m, w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unacknowledged_messages_lose_apart_from_the_servers_loss() {
        // 2 bots, 4 messages each; every message should reach 3 receivers.
        let ledger = Ledger::new(&Schedule::new(2, 1.0, 0, 4_000_000_000, 0.0), 2);
        for seq in 0..4 {
            ledger.mark_sent(0, seq);
        }
        assert!(!ledger.mark_unacked(1, 0), "never sent: nothing to write off");
        assert!(ledger.mark_unacked(0, 3));
        assert!(ledger.deliver(0, 3));
        for _ in 0..3 {
            ledger.deliver(0, 0);
        }
        ledger.deliver(0, 1);
        let (a, _) = ledger.audit(|_, _| 3, |_, _| true);
        assert_eq!((a.sent, a.expected, a.delivered), (4, 12, 5));
        assert_eq!((a.unacked, a.lost_unacked), (1, 2), "seq 3: one of three arrived");
        assert_eq!((a.lost, a.messages_with_loss), (5, 2), "seq 1 misses 2, seq 2 misses 3");
        assert_eq!(a.delivered + a.lost + a.lost_unacked, a.expected);
    }
}
