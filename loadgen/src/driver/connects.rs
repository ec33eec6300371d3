//! Pacing and capping a thread's connects while its bots set up.

/// Which bot connects next, and when: at most one per `pace_ns` (from `--connect-rate`), and no
/// more than `max_pending` bots between connect() and "joined" at once.
///
/// Invariant: `next_bot <= bots`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectPacer {
    /// Nanoseconds between two connects of this thread (threads × 1 s / connect rate); 0 means
    /// unpaced (only the pending cap holds connects back).
    pace_ns: u64,
    /// Earliest clock time of the next paced connect. After a stall it catches up by at most one
    /// extra connect instead of bursting the backlog.
    next_at: u64,
    /// Index, in the thread's bots, of the next bot to connect.
    next_bot: usize,
    /// Bots connecting, logging in or joining now: the cap keeps a thread from flooding the
    /// server's accept queue and its own CPU with handshakes.
    pending: u32,
    /// Most bots pending at once (`--max-pending`).
    max_pending: u32,
    /// How many bots the thread has.
    bots: usize,
}

impl ConnectPacer {
    /// A pacer for `bots` bots whose first connect may happen at `now`.
    pub fn new(pace_ns: u64, now: u64, max_pending: u32, bots: usize) -> Self {
        ConnectPacer { pace_ns, next_at: now, next_bot: 0, pending: 0, max_pending, bots }
    }

    /// The index of the bot to connect at `now`, if the pace and the cap allow one.
    pub fn due(&self, now: u64) -> Option<usize> {
        let paced_ok = self.pace_ns == 0 || now >= self.next_at;
        (self.next_bot < self.bots && self.pending < self.max_pending && paced_ok).then_some(self.next_bot)
    }

    /// The bot [`due`](Self::due) named was tried at `now`; `connecting` when its connect()
    /// started (it is then pending until [`settled`](Self::settled)).
    pub fn advance(&mut self, now: u64, connecting: bool) {
        if connecting {
            self.pending += 1;
        }
        self.next_bot += 1;
        self.next_at = self.next_at.max(now.saturating_sub(self.pace_ns)) + self.pace_ns;
    }

    /// A pending bot became ready or failed.
    pub fn settled(&mut self) {
        self.pending = self.pending.saturating_sub(1);
    }

    /// Sending started: set-up is over and pending bots are no longer tracked.
    pub fn forget_pending(&mut self) {
        self.pending = 0;
    }

    /// When the next paced connect is due, if one is waiting only for its time.
    pub fn deadline(&self) -> Option<u64> {
        let waiting = self.pace_ns > 0 && self.next_bot < self.bots && self.pending < self.max_pending;
        waiting.then_some(self.next_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connects everything due at `now`, as the driver does; returns the indexes.
    fn connect_due(p: &mut ConnectPacer, now: u64) -> Vec<usize> {
        let mut got = Vec::new();
        while let Some(i) = p.due(now) {
            got.push(i);
            p.advance(now, true);
        }
        got
    }

    #[test]
    fn paced_connects_come_one_per_interval() {
        let mut p = ConnectPacer::new(10, 1_000, 100, 5);
        assert_eq!(connect_due(&mut p, 1_000), vec![0]);
        assert_eq!(p.deadline(), Some(1_010));
        assert_eq!(connect_due(&mut p, 1_009), Vec::<usize>::new());
        assert_eq!(connect_due(&mut p, 1_010), vec![1]);
        // A stall catches up by one extra connect, not by a burst.
        assert_eq!(connect_due(&mut p, 2_000), vec![2, 3]);
        assert_eq!(connect_due(&mut p, 2_010), vec![4]);
        assert_eq!((p.due(9_999), p.deadline()), (None, None), "every bot connected");
    }

    #[test]
    fn the_pending_cap_holds_connects_until_bots_settle() {
        let mut p = ConnectPacer::new(0, 0, 2, 5);
        assert_eq!(connect_due(&mut p, 0), vec![0, 1]);
        assert_eq!(p.deadline(), None, "unpaced: nothing to wake up for");
        p.settled();
        assert_eq!(connect_due(&mut p, 0), vec![2]);
        p.forget_pending();
        assert_eq!(connect_due(&mut p, 0), vec![3, 4]);
    }

    #[test]
    fn a_failed_connect_does_not_count_as_pending() {
        let mut p = ConnectPacer::new(0, 0, 1, 3);
        assert_eq!(p.due(0), Some(0));
        p.advance(0, false);
        assert_eq!(p.due(0), Some(1));
        p.advance(0, true);
        assert_eq!(p.due(0), None);
        p.settled();
        p.settled();
        assert_eq!(p.due(0), Some(2), "settling never goes below zero");
    }
}
