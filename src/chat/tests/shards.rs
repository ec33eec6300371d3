//! Two or three hubs over one in-process backplane: names, private messages, room messages and
//! presence across shards, and the batches one shard hands another.

use super::*;
use crate::cluster::Frames;
use std::sync::mpsc::TryRecvError;
use std::time::Duration;

/// The one batch waiting in `shard`'s inbox (bounded wait: `send_remote` already sent it).
fn batch(w: &World, shard: usize) -> Vec<Remote> {
    let batch = w.inboxes[shard].recv_timeout(Duration::from_secs(5)).expect("a batch for the shard");
    assert_eq!(w.inboxes[shard].try_recv().err(), Some(TryRecvError::Empty), "one batch per shard per turn");
    batch
}

fn no_batch(w: &World, shard: usize) {
    assert_eq!(w.inboxes[shard].try_recv().err(), Some(TryRecvError::Empty), "nothing for shard {shard}");
}

#[test]
fn names_are_unique_across_shards() {
    let mut w = World::new(2);
    w.enter(0, 1, "alice", BIN);
    w.connect(1, 1, JSON);
    w.send(1, 1, login("Alice"));
    assert_eq!(w.take(1, 1), [reject(ErrorCode::UsernameTaken, "the name \"Alice\" is taken")]);
    w.leave(0, 1);
    w.send(1, 1, login("Alice"));
    assert_eq!(w.take(1, 1), [login_ack("Alice", "general")]);
}

#[test]
fn a_private_message_to_another_shard_goes_in_its_next_batch() {
    let mut w = World::new(2);
    w.enter(0, 1, "alice", BIN);
    // The same key on the other shard: keys are per shard.
    w.enter(1, 1, "bob", JSON);

    w.send(0, 1, pm("Bob", "over there"));
    let expected = delivery("alice", "bob", "over there");
    assert_eq!(w.take(0, 1), std::slice::from_ref(&expected), "the sender's echo is immediate");
    no_batch(&w, 1);
    assert_eq!(w.take(1, 1), []);

    w.hubs[0].send_remote();
    no_batch(&w, 0);
    let mut work = batch(&w, 1);
    assert_eq!(work.len(), 1);
    let Some(Remote::Direct { key: 1, user, frames }) = work.pop() else { panic!("not a direct delivery") };
    assert_eq!(&*user, "bob");
    assert_eq!(decode(WireFormat::Binary, &frames.binary), expected);
    assert_eq!(decode(WireFormat::Json, &frames.json), expected);
    let json = frames.json.clone();

    w.hubs[1].remote(&mut w.outs[1], Remote::Direct { key: 1, user, frames });
    let got = w.outs[1].frames(1);
    assert_eq!(got.len(), 1);
    assert!(shared(&[&got[0], &json]), "delivered as sent, not re-encoded");
    assert_eq!(decode(WireFormat::Json, &got[0]), expected);
    assert_eq!(w.hubs[0].counters.private_msgs, 1);
}

#[test]
fn a_direct_delivery_for_a_key_now_someone_elses_is_dropped() {
    let mut w = World::new(2);
    w.enter(0, 1, "alice", BIN);
    w.enter(1, 1, "bob", JSON);
    w.send(0, 1, pm("bob", "for bob only"));
    w.hubs[0].send_remote();
    let work = batch(&w, 1);
    // Before shard 1 reads its inbox, bob leaves and carol gets his key.
    w.leave(1, 1);
    w.enter(1, 1, "carol", JSON);
    for work in work {
        w.hubs[1].remote(&mut w.outs[1], work);
    }
    assert_eq!(w.take(1, 1), []);
}

#[test]
fn a_room_message_is_relayed_once_per_shard_with_members_and_shared_there() {
    let mut w = World::new(3);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", JSON);
    w.enter(1, 1, "carol", BIN);
    w.enter(1, 2, "dave", BIN);
    w.enter(1, 3, "erin", JSON);
    w.enter(2, 1, "frank", BIN);
    w.send(2, 1, join("elsewhere"));
    w.settle();
    w.outs.iter_mut().for_each(Recorder::clear);

    w.send(0, 1, say("across"));
    // Ids are `seq * shards + shard`: the first message of shard 0 of 3 is id 3.
    let expected = room_msg(3, "general", "alice", "across", false);
    assert_eq!(w.take(0, 1), [ServerMsg::RoomMsgAck { id: 3, ts_ms: NOW }]);
    let bob = w.outs[0].frames(2).remove(0);
    assert_eq!(decode(WireFormat::Json, &bob), expected);
    // Shard 0 has no binary member but alice: it encoded binary once, for the other shards.
    assert_eq!(w.outs[0].encodes(WireFormat::Binary), 2, "the relayed frame and alice's ack");
    assert_eq!(w.outs[0].encodes(WireFormat::Json), 1);

    w.hubs[0].send_remote();
    no_batch(&w, 2);
    let mut work = batch(&w, 1);
    assert_eq!(work.len(), 1, "one entry for the shard, not one per member");
    let Some(Remote::Room { room, frames, chat: true }) = work.pop() else { panic!("not a room message") };
    assert_eq!(&*room, "general");
    assert!(shared(&[&frames.json, &bob]), "the JSON frame is the one shard 0's members got");
    let Frames { binary, json, .. } = frames.clone();

    w.hubs[1].remote(&mut w.outs[1], Remote::Room { room, frames, chat: true });
    let (carol, dave, erin) = (w.outs[1].frames(1), w.outs[1].frames(2), w.outs[1].frames(3));
    assert!(shared(&[&carol[0], &dave[0], &binary]));
    assert!(shared(&[&erin[0], &json]));
    assert_eq!(decode(WireFormat::Binary, &carol[0]), expected);
    assert_eq!(w.outs[1].encodes(WireFormat::Binary) + w.outs[1].encodes(WireFormat::Json), 0);
    assert_eq!(w.hubs[1].counters.deliveries, 3);
    assert_eq!(w.hubs[0].counters.deliveries, 1);
    w.assert_quiet();
}

#[test]
fn room_frames_for_a_room_without_local_members_are_dropped() {
    let mut w = World::new(2);
    w.enter(1, 1, "carol", BIN);
    let frames =
        Frames { binary: Bytes::from_static(b"x"), json: Bytes::from_static(b"y"), ws: Bytes::from_static(b"z") };
    w.hubs[1].remote(&mut w.outs[1], Remote::Room { room: "tech".into(), frames, chat: true });
    assert_eq!(w.outs[1].frames(1), Vec::<Bytes>::new());
    assert_eq!(w.hubs[1].counters.deliveries, 0);
}

#[test]
fn presence_crosses_shards_but_is_not_counted_as_chat() {
    let mut w = World::new(2);
    w.enter(0, 1, "alice", BIN);
    w.connect(1, 1, JSON);
    w.send(1, 1, login("bob"));
    assert_eq!(w.take(1, 1), [login_ack("bob", "general")]);
    assert_eq!(w.take(0, 1), [], "not before shard 1's turn ends");
    w.hubs[1].send_remote();
    let work = batch(&w, 0);
    assert!(matches!(work.as_slice(), [Remote::Room { chat: false, .. }]), "{work:?}");
    for work in work {
        w.hubs[0].remote(&mut w.outs[0], work);
    }
    assert_eq!(w.take(0, 1), [notice(SystemKind::Join, "general", "bob", "bob joined general")]);
    assert_eq!(w.hubs[0].counters.deliveries, 0);

    w.send(1, 1, join("tech"));
    w.settle();
    assert_eq!(w.take(0, 1), [notice(SystemKind::Leave, "general", "bob", "bob left general")]);
    w.leave(0, 1);
    w.settle();
    assert_eq!(w.take(1, 1), [ServerMsg::JoinRoom { room: "tech".into() }], "alice was not in tech");
}

#[test]
fn lists_see_every_shard() {
    let mut w = World::new(2);
    w.enter(0, 1, "alice", BIN);
    w.enter(1, 1, "bob", JSON);
    w.enter(1, 2, "carol", JSON);
    w.send(1, 2, join("tech"));
    w.outs[1].clear();
    w.send(0, 1, ClientMsg::ListUsers);
    w.send(0, 1, ClientMsg::ListRooms);
    let users = ServerMsg::ListUsers { room: "general".into(), users: vec!["alice".into(), "bob".into()] };
    let rooms = ServerMsg::ListRooms { rooms: vec![("general".into(), 2), ("tech".into(), 1)] };
    assert_eq!(w.take(0, 1), [users, rooms]);
}

#[test]
fn presence_limit_counts_members_on_every_shard() {
    let mut w = World::with(2, Arc::new(Services::default()), 1);
    w.enter(0, 1, "alice", BIN);
    w.connect(1, 1, BIN);
    w.send(1, 1, login("bob"));
    w.settle();
    assert_eq!(w.take(0, 1), [], "two members across shards: over the limit of 1");
    no_batch(&w, 0);
}

#[test]
fn ids_are_unique_across_shards() {
    let mut w = World::new(2);
    w.enter(0, 1, "alice", BIN);
    w.enter(1, 1, "bob", BIN);
    w.send(0, 1, say("a"));
    w.send(1, 1, say("b"));
    w.send(0, 1, say("c"));
    assert_eq!(
        w.take(0, 1),
        [ServerMsg::RoomMsgAck { id: 2, ts_ms: NOW }, ServerMsg::RoomMsgAck { id: 4, ts_ms: NOW }]
    );
    assert_eq!(w.take(1, 1), [ServerMsg::RoomMsgAck { id: 3, ts_ms: NOW }]);
    w.settle();
    assert_eq!(
        w.take(1, 1),
        [room_msg(2, "general", "alice", "a", false), room_msg(4, "general", "alice", "c", false)]
    );
    assert_eq!(w.take(0, 1), [room_msg(3, "general", "bob", "b", false)]);
}
