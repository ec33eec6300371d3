//! Fail-over, the socket side: a bot of the membership whose connection ends moves to the next
//! address after a back-off, logs in again under the same name and resumes its room with
//! `since` = the last id it saw (the state lives in [`crate::failover::Resume`]).
//!
//! Bounded: the whole retry, from the drop, lasts at most `--failover-timeout`; then the bot gives
//! up and counts as an ordinary failure.

use std::sync::atomic::Ordering::Relaxed;

use super::{Bot, Ctx, Flow, Phase};
use crate::failover::backoff_ns;
use crate::schedule::Kind;

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// EOF, reset, refused connect or a failed write: try the next address.
    Dropped,
    /// The name is still held (the dead node's claim has not expired) or could not be confirmed:
    /// try the same address again.
    NameBusy,
    /// A protocol failure or a refusal for good: no fail-over.
    Broken,
}

impl Bot {
    /// The connection ended for `cause`: fails over when that is on and applies (returns
    /// [`Flow::Away`]); otherwise counts the failure by phase and closes.
    pub fn end(&mut self, cause: Cause, ctx: &mut Ctx<'_>) -> Flow {
        if cause != Cause::Broken && self.fail_over(cause, ctx) {
            return Flow::Away;
        }
        self.note_failure(ctx);
        self.close()
    }

    /// Turns the end of a connection into a later retry. False when fail-over is off, the bot
    /// is not in the frozen membership, or its retry time is up (counted as given up).
    fn fail_over(&mut self, cause: Cause, ctx: &mut Ctx<'_>) -> bool {
        let Some(fo) = ctx.shared.scenario.failover else { return false };
        if !ctx.frozen || !ctx.shared.ready[self.id as usize].load(Relaxed) {
            return false;
        }
        let now = ctx.shared.clock.now_ns();
        if self.resume.away_since.is_none() {
            ctx.stats.counters.failover.dropped += 1;
        }
        let dropped = *self.resume.away_since.get_or_insert(now);
        self.write_off_unacked(ctx);
        let f = &mut ctx.stats.counters.failover;
        if now.saturating_sub(dropped) >= fo.timeout.as_nanos() as u64 {
            f.gave_up += 1;
            self.resume.away_since = None;
            return false;
        }
        match cause {
            Cause::NameBusy => f.name_retries += 1,
            _ => self.resume.addr = (self.resume.addr + 1) % ctx.shared.scenario.addr_list().len(),
        }
        let at = now + backoff_ns(self.resume.attempt);
        self.resume.attempt = self.resume.attempt.saturating_add(1);
        self.close();
        self.phase = Phase::Away { at };
        true
    }

    /// Marks the room messages this connection sent without a ROOM_MSG_ACK (the newest ones
    /// the ledger saw sent; acks come in send order) as unacknowledged. They are not resent, so
    /// they count once, and their missing deliveries are not the server's loss.
    fn write_off_unacked(&mut self, ctx: &mut Ctx<'_>) {
        let unacked = self.resume.unacked();
        let (mut left, mut seq) = (unacked, self.next_seq);
        while left > 0 && seq > 0 {
            seq -= 1;
            if ctx.shared.schedule.kind(self.id, seq) == Kind::Room && ctx.shared.ledger.mark_unacked(self.id, seq) {
                left -= 1;
            }
        }
        ctx.stats.counters.failover.unacked += u64::from(unacked);
        self.resume.new_connection();
    }
}
