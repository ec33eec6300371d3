//! Fail-over state of one bot: which address it uses, the ids it has seen (for `since` and for
//! dropping replayed or repeated messages), how long it has been away and how often it retried.
//!
//! Pure data and arithmetic; the bot's socket side of fail-over is in `bot/away.rs`.

use std::collections::VecDeque;

/// Wait before the first retry after a drop (then doubling, up to [`BACKOFF_MAX_NS`]).
pub const BACKOFF_FIRST_NS: u64 = 50_000_000;
/// Longest wait between two retries. The whole retry is bounded by `--failover-timeout`.
pub const BACKOFF_MAX_NS: u64 = 1_000_000_000;

/// Wait before retry number `attempt` (0 for the first).
pub fn backoff_ns(attempt: u32) -> u64 {
    (BACKOFF_FIRST_NS << attempt.min(8)).min(BACKOFF_MAX_NS)
}

/// One bot's resume and fail-over state.
#[derive(Debug, Default)]
pub struct Resume {
    /// Index, in the scenario's address list, of the address the bot uses now.
    pub addr: usize,
    /// Largest room message id seen in the bot's room (live or replayed): the `since` of a resume.
    pub last_id: Option<u64>,
    /// The last `cap` room message ids seen, oldest first. Invariant: `recent.len() <= cap`.
    recent: VecDeque<u64>,
    /// How many ids `recent` keeps; 0 when fail-over is off (nothing is tracked).
    cap: usize,
    /// Clock time the connection dropped, while the bot is failing over; `None` once it is back.
    pub away_since: Option<u64>,
    /// Retries since the drop (the back-off exponent).
    pub attempt: u32,
    /// True from asking for a resume (`since`) until its REPLAY_END: HISTORY messages of the
    /// bot's room are then deliveries, not old history.
    pub replaying: bool,
    /// Room messages sent on the current connection.
    pub sent_on_conn: u32,
    /// ROOM_MSG_ACKs (or refusals) received on the current connection (they come in send
    /// order).
    pub acks_on_conn: u32,
    /// The schedule positions of room messages sent on this connection and not yet answered,
    /// oldest first (answers come in send order), so that a refusal names its message. At most
    /// [`AWAITING_CAP`]: past it the oldest is forgotten (a refusal then names nothing).
    pub awaiting: VecDeque<u32>,
}

/// Unanswered room messages a connection remembers.
pub const AWAITING_CAP: usize = 4096;

impl Resume {
    /// State for a bot starting on address `addr`, remembering `cap` ids (0: fail-over off).
    pub fn new(addr: usize, cap: usize) -> Self {
        Resume { addr, cap, ..Resume::default() }
    }

    /// A room message with `id` arrived: true when it is new to this bot (deliver it), false
    /// when the bot already had it (a replay overlapping what came live, or a repeat). Ids
    /// older than the `cap` remembered ones count as new.
    pub fn observe(&mut self, id: u64) -> bool {
        if self.cap == 0 {
            return true;
        }
        let above = self.last_id.is_none_or(|l| id > l);
        if !above && self.recent.contains(&id) {
            return false;
        }
        if self.recent.len() == self.cap {
            self.recent.pop_front();
        }
        self.recent.push_back(id);
        self.last_id = Some(self.last_id.map_or(id, |l| l.max(id)));
        true
    }

    /// The `since` to ask for when (re)joining: only while failing over, and then the last id
    /// seen (0 when none: replay everything the server still holds).
    pub fn since(&self) -> Option<u64> {
        self.away_since.map(|_| self.last_id.unwrap_or(0))
    }

    /// A room message was sent on this connection (schedule position `seq`).
    pub fn sent(&mut self, seq: u32) {
        self.sent_on_conn += 1;
        if self.awaiting.len() == AWAITING_CAP {
            self.awaiting.pop_front();
        }
        self.awaiting.push_back(seq);
    }

    /// A ROOM_MSG_ACK: the oldest unanswered room message is acknowledged.
    pub fn acked(&mut self) {
        self.acks_on_conn += 1;
        self.awaiting.pop_front();
    }

    /// A refusal (ERROR_MSG `INTERNAL`): the oldest unanswered room message was not stored; its
    /// position, if one was waiting.
    pub fn refused(&mut self) -> Option<u32> {
        let seq = self.awaiting.pop_front()?;
        self.acks_on_conn += 1;
        Some(seq)
    }

    /// Room messages sent on this connection that no ROOM_MSG_ACK confirmed.
    pub fn unacked(&self) -> u32 {
        self.sent_on_conn.saturating_sub(self.acks_on_conn)
    }

    /// A new connection starts: nothing sent or acknowledged on it yet.
    pub fn new_connection(&mut self) {
        self.sent_on_conn = 0;
        self.acks_on_conn = 0;
        self.awaiting.clear();
        self.replaying = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff_ns(0), BACKOFF_FIRST_NS);
        assert_eq!(backoff_ns(1), 2 * BACKOFF_FIRST_NS);
        assert_eq!(backoff_ns(4), 16 * BACKOFF_FIRST_NS);
        assert_eq!(backoff_ns(5), BACKOFF_MAX_NS);
        assert_eq!(backoff_ns(u32::MAX), BACKOFF_MAX_NS);
    }

    #[test]
    fn observe_drops_ids_seen_and_remembers_at_most_cap() {
        let mut r = Resume::new(0, 3);
        assert_eq!(r.since(), None, "not away: no resume");
        assert!(r.observe(10) && r.observe(12) && r.observe(11), "interleaved node sequences are new");
        assert!(!r.observe(12) && !r.observe(10), "seen");
        assert_eq!(r.last_id, Some(12));
        assert!(r.observe(13));
        assert!(r.observe(10), "10 was forgotten (cap 3): counted as new");
        r.away_since = Some(1);
        assert_eq!(r.since(), Some(13));
        let mut off = Resume::new(1, 0);
        assert!(off.observe(5) && off.observe(5), "fail-over off: nothing tracked");
        assert_eq!(off.last_id, None);
    }

    #[test]
    fn answers_name_their_messages_in_send_order() {
        let mut r = Resume::new(0, 8);
        for seq in [3, 5, 9] {
            r.sent(seq);
        }
        r.acked();
        assert_eq!(r.refused(), Some(5), "the oldest unanswered is refused");
        assert_eq!(r.unacked(), 1, "9 is still unanswered");
        r.acked();
        assert_eq!((r.refused(), r.unacked()), (None, 0), "nothing waits: a refusal names nothing");
        r.sent(11);
        r.new_connection();
        assert_eq!(r.refused(), None, "a new connection remembers nothing");
    }

    #[test]
    fn unacked_is_sent_minus_acked_on_this_connection() {
        let mut r = Resume::new(0, 1);
        r.sent_on_conn = 5;
        r.acks_on_conn = 3;
        assert_eq!(r.unacked(), 2);
        r.new_connection();
        assert_eq!(r.unacked(), 0);
    }
}
