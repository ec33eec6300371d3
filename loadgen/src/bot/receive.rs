//! What a bot does with each server message: log-in and join steps, deliveries checked against
//! the ledger and timed, acks, and a resume's replay (fail-over).
//!
//! Free functions over the bot's parts rather than `Bot` methods, so that the message may borrow
//! the bot's read buffer while they run.

use bytes::BytesMut;
use chatproto::protocol::{ClientMsg, ErrorCode, ServerMsg};
use std::borrow::Cow;

use super::{Ctx, Phase};
use crate::failover::Resume;
use crate::schedule::{pick_target, Kind};
use crate::stamp::Stamp;
use crate::stats::record;

/// Which bot a message reached: its id and room.
#[derive(Clone, Copy, Debug)]
pub(super) struct Me {
    pub id: u32,
    pub room: u32,
}

/// What the bot should do after a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Handled {
    /// Keep going.
    Continue,
    /// The server refused the bot for good (counted): close.
    Close,
    /// A login while failing over was refused because the name is still held by the dead node
    /// (or the cluster could not confirm it): retry after a back-off.
    NameBusy,
}

/// How a chat text reached the bot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// Live room message.
    Room,
    /// Private message.
    Private,
    /// A resume's replay of the bot's room.
    Replay,
}

/// Reacts to one server message.
pub(super) fn handle(
    phase: &mut Phase,
    me: Me,
    resume: &mut Resume,
    out: &mut BytesMut,
    msg: &ServerMsg<'_>,
    now: u64,
    ctx: &mut Ctx<'_>,
) -> Handled {
    let format = ctx.shared.scenario.format;
    let c = &mut ctx.stats.counters;
    match msg {
        ServerMsg::RoomMsg { .. } => on_room_msg(me, resume, msg, now, ctx),
        ServerMsg::PrivateMsgDelivery { text, .. } => chat(me, text, Via::Private, now, ctx),
        ServerMsg::RoomMsgAck { .. } => {
            c.acks += 1;
            resume.acked();
        }
        ServerMsg::ReplayEnd { gap, .. } => {
            resume.replaying = false;
            c.failover.replay_ends += 1;
            c.failover.replay_gaps += u64::from(*gap);
        }
        ServerMsg::SystemMsg { .. } => c.system += 1,
        ServerMsg::Presence { .. } => c.presence += 1,
        ServerMsg::Ping { token } => format.encode_client(&ClientMsg::Pong { token: *token }, out),
        ServerMsg::LoginAck { .. } => {
            if let Phase::LoggingIn { since } = *phase {
                record(&mut ctx.stats.hists.login, now - since);
                if me.room == 0 {
                    become_ready(phase, resume, now, me, ctx);
                } else {
                    let name = crate::scenario::room_name(me.room);
                    let since = resume.since();
                    resume.replaying = since.is_some();
                    format.encode_client(&ClientMsg::JoinRoom { room: Cow::Borrowed(&name), since }, out);
                    *phase = Phase::Joining { since: now };
                }
            }
        }
        ServerMsg::JoinRoom { room: joined } => {
            if let Phase::Joining { since } = *phase {
                if *joined == crate::scenario::room_name(me.room) {
                    record(&mut ctx.stats.hists.join, now - since);
                    become_ready(phase, resume, now, me, ctx);
                }
            }
        }
        ServerMsg::LoginReject { code, .. } => return refused(phase, resume, *code, ctx),
        ServerMsg::ErrorMsg { code, .. } if phase.is_pending() => return refused(phase, resume, *code, ctx),
        ServerMsg::ErrorMsg { code, .. } => {
            *c.error_msgs.entry(format!("{code:?}")).or_default() += 1;
            // INTERNAL answers the oldest unanswered room message: "could not be stored" (a
            // cluster's log did not take it). Not acknowledged, so its missing deliveries are
            // not the server's loss.
            if *code == ErrorCode::Internal {
                if let Some(seq) = resume.refused() {
                    ctx.shared.ledger.mark_unacked(me.id, seq);
                    ctx.stats.counters.refused_room += 1;
                }
            }
        }
        // Lists, PONGs and whatever later protocol versions add: not part of the load.
        _ => {}
    }
    Handled::Continue
}

/// A login or join was refused. While failing over, a name the dead node still holds (or one
/// the cluster cannot confirm yet) is retried; anything else ends the bot.
fn refused(phase: &mut Phase, resume: &Resume, code: ErrorCode, ctx: &mut Ctx<'_>) -> Handled {
    if resume.away_since.is_some() && matches!(code, ErrorCode::UsernameTaken | ErrorCode::Internal) {
        return Handled::NameBusy;
    }
    let c = &mut ctx.stats.counters;
    *c.error_msgs.entry(format!("{code:?}")).or_default() += 1;
    c.login_failures += 1;
    *phase = Phase::Closed;
    Handled::Close
}

/// A ROOM_MSG: a live delivery, old history (ignored), or a resume's replay (a delivery). With
/// fail-over on, a message whose id the bot already had is dropped, as a client would.
fn on_room_msg(me: Me, resume: &mut Resume, msg: &ServerMsg<'_>, now: u64, ctx: &mut Ctx<'_>) {
    let ServerMsg::RoomMsg { id, room, text, history, .. } = msg else { return };
    let tracking = ctx.shared.scenario.failover.is_some();
    let c = &mut ctx.stats.counters;
    if *history {
        if !(resume.replaying && is_room(room, me.room)) {
            c.history += 1;
            return;
        }
        if !resume.observe(*id) {
            c.failover.replay_dropped += 1;
            return;
        }
        c.failover.replayed += 1;
        return chat(me, text, Via::Replay, now, ctx);
    }
    // Only ids of the bot's own room make its `since` (a bot passes through `general` at login).
    if tracking && is_room(room, me.room) && !resume.observe(*id) {
        c.failover.live_dropped += 1;
        return;
    }
    chat(me, text, Via::Room, now, ctx)
}

/// True when `name` is room `k`'s name (no allocation: this runs per message with fail-over on).
fn is_room(name: &str, k: u32) -> bool {
    if k == 0 {
        name == chatproto::protocol::validate::DEFAULT_ROOM
    } else {
        name.strip_prefix("room").and_then(|n| n.parse::<u32>().ok()) == Some(k)
    }
}

/// The bot is in its room: the first time it joins the membership (before the freeze); after a
/// fail-over it is back, and the time since its connection dropped is recorded.
fn become_ready(phase: &mut Phase, resume: &mut Resume, now: u64, me: Me, ctx: &mut Ctx<'_>) {
    *phase = Phase::Ready;
    if let Some(dropped) = resume.away_since.take() {
        record(&mut ctx.stats.hists.failover, now.saturating_sub(dropped));
        ctx.stats.counters.failover.back += 1;
        resume.attempt = 0;
        return;
    }
    if !ctx.frozen {
        ctx.shared.ready[me.id as usize].store(true, std::sync::atomic::Ordering::Release);
        *ctx.became_ready += 1;
    }
}

/// A chat text arrived at bot `me`: check it is ours and meant for us, count it, time it.
fn chat(me: Me, text: &str, via: Via, now: u64, ctx: &mut Ctx<'_>) {
    let c = &mut ctx.stats.counters;
    let Some(s) = Stamp::parse(text) else {
        c.foreign += 1;
        return;
    };
    let shared = ctx.shared;
    match via {
        Via::Private if s.bot == me.id => {
            c.echoes += 1;
            return;
        }
        // A replay holds the bot's own messages too: history, not deliveries.
        Via::Replay if s.bot == me.id => {
            c.history += 1;
            return;
        }
        _ => {}
    }
    let Some(start) = shared.start_ns() else {
        c.foreign += 1;
        return;
    };
    let addressed_to_me = if via == Via::Private {
        match (shared.schedule.kind(s.bot, s.seq), shared.membership.get()) {
            (Kind::Private { pick }, Some(m)) => pick_target(&m.ready, s.bot, pick) == Some(me.id),
            _ => false,
        }
    } else {
        s.bot != me.id && shared.rooms.get(s.bot as usize) == Some(&me.room)
    };
    if !addressed_to_me || !shared.ledger.deliver(s.bot, s.seq) {
        c.foreign += 1;
        return;
    }
    if via == Via::Private {
        c.delivered_private += 1;
    } else {
        c.delivered_room += 1;
    }
    if shared.schedule.is_measured(s.intended_ns.saturating_sub(start)) && s.intended_ns >= start {
        c.delivered_measured += 1;
        let corrected = now.saturating_sub(s.intended_ns);
        record(&mut ctx.stats.hists.corrected, corrected);
        record(&mut ctx.stats.hists.uncorrected, now.saturating_sub(s.actual_ns));
        record(ctx.window, corrected);
    }
}

#[cfg(test)]
mod tests {
    use super::is_room;

    #[test]
    fn room_names_match_without_allocating() {
        assert!(is_room("general", 0) && is_room("room3", 3));
        assert!(!is_room("room3", 0) && !is_room("room31", 3) && !is_room("general", 1) && !is_room("roomx", 1));
    }
}
