//! Resume ("since id N" on LOGIN and JOIN_ROOM), REPLAY_END, scroll-back: on one shard and
//! across shards, where the room's owner answers the replay in its ordered stream.

use super::*;

fn join_since(room: &str, since: u64) -> ClientMsg<'_> {
    ClientMsg::JoinRoom { room: room.into(), since: Some(since) }
}

fn login_since(name: &str, since: u64) -> ClientMsg<'_> {
    ClientMsg::Login { username: name.into(), credential: None, since: Some(since) }
}

fn end(room: &str, last: u64, lost: u64, gap: bool) -> Msg {
    ServerMsg::ReplayEnd { room: room.to_string().into(), last, lost, gap }
}

#[test]
fn login_since_replays_only_newer_messages_then_the_end_marker() {
    let mut w = World::with(1, services(10, None), 0);
    w.enter(0, 1, "alice", BIN);
    ["one", "two", "three"].into_iter().for_each(|t| w.send(0, 1, say(t)));
    w.outs[0].clear();
    w.connect(0, 2, JSON);
    w.send(0, 2, login_since("bob", 1));
    let expected = [
        login_ack("bob", "general"),
        room_msg(2, "general", "alice", "two", true),
        room_msg(3, "general", "alice", "three", true),
        end("general", 3, 0, false),
    ];
    assert_eq!(w.take(0, 2), expected);
    // Resuming from the last replayed id gets nothing twice.
    w.send(0, 2, join_since("general", 3));
    assert_eq!(w.take(0, 2), [ServerMsg::JoinRoom { room: "general".into() }, end("general", 3, 0, false)]);
    // And the live stream carries on after the replay.
    w.send(0, 1, say("four"));
    assert_eq!(w.take(0, 2), [room_msg(4, "general", "alice", "four", false)]);
}

#[test]
fn a_resume_older_than_history_reports_the_gap() {
    let mut w = World::with(1, services(2, None), 0);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", BIN);
    w.send(0, 2, join("elsewhere"));
    (1..=5).for_each(|i| w.send(0, 1, say(&format!("m{i}"))));
    w.outs[0].clear();
    w.send(0, 2, join_since("general", 1));
    let got = w.take(0, 2);
    assert_eq!(got[1..3], [room_msg(4, "general", "alice", "m4", true), room_msg(5, "general", "alice", "m5", true)]);
    assert_eq!(got[3], end("general", 5, 0, true), "messages 2 and 3 are gone: a gap");
}

#[test]
fn a_join_without_since_is_replayed_as_before_with_no_marker() {
    let mut w = World::with(1, services(10, None), 0);
    w.enter(0, 1, "alice", BIN);
    w.send(0, 1, say("hello"));
    w.connect(0, 2, BIN);
    w.send(0, 2, login("bob"));
    assert_eq!(w.take(0, 2), [login_ack("bob", "general"), room_msg(1, "general", "alice", "hello", true)]);
}

/// The member waits on shard 0 while the owner (shard 1) stamps another message: that message
/// reaches shard 0 before the replay answer and is not delivered live, it comes in the replay;
/// everything after the answer is live. Nothing twice, nothing missed, ids in order.
#[test]
fn a_resume_across_shards_misses_nothing_and_repeats_nothing() {
    let mut w = World::with(2, services(10, None), 0);
    w.enter(1, 1, "bob", BIN);
    w.enter(0, 1, "alice", JSON);
    w.send(0, 1, join("tech"));
    w.settle();
    w.send(1, 1, say("m1"));
    w.send(1, 1, say("m2"));
    w.settle();
    w.outs.iter_mut().for_each(Recorder::clear);

    w.send(0, 1, join_since("general", 3));
    w.send(1, 1, say("m3"));
    w.settle();
    w.send(1, 1, say("m4"));
    w.settle();
    // Shard 1's ids of 2 shards: 3, 5, 7, 9.
    let expected = [
        ServerMsg::JoinRoom { room: "general".into() },
        room_msg(5, "general", "bob", "m2", true),
        room_msg(7, "general", "bob", "m3", true),
        end("general", 7, 0, false),
        room_msg(9, "general", "bob", "m4", false),
    ];
    assert_eq!(w.take(0, 1), expected);
}

#[test]
fn scroll_back_pages_older_messages_in_order_with_the_end_marker() {
    let mut w = World::with(1, services(50, None), 0);
    w.enter(0, 1, "alice", BIN);
    (1..=5).for_each(|i| w.send(0, 1, say(&format!("m{i}"))));
    w.outs[0].clear();
    w.send(0, 1, ClientMsg::History { before: 4 });
    let expected = [
        room_msg(1, "general", "alice", "m1", true),
        room_msg(2, "general", "alice", "m2", true),
        room_msg(3, "general", "alice", "m3", true),
        ServerMsg::HistoryEnd { room: "general".into(), before: 4, count: 3, more: false },
    ];
    assert_eq!(w.take(0, 1), expected);
}

#[test]
fn scroll_back_says_when_more_exist() {
    let mut w = World::with(1, services(2, None), 0);
    w.enter(0, 1, "alice", BIN);
    (1..=2).for_each(|i| w.send(0, 1, say(&format!("m{i}"))));
    w.outs[0].clear();
    // A page is at most history_len (2) here: asking from the newest gets both, no more.
    w.send(0, 1, ClientMsg::History { before: 0 });
    let got = w.take(0, 1);
    assert_eq!(got.last(), Some(&ServerMsg::HistoryEnd { room: "general".into(), before: 0, count: 2, more: false }));
    w.send(0, 1, ClientMsg::History { before: 3 });
    let got = w.take(0, 1);
    assert_eq!(got.len(), 3);
}
