//! Room messages (fan-out once per format), private messages, empty text, TIME, and files
//! when file sharing is off.

use super::*;
use crate::services::history::{Ack, AckTo, DurableAcks, Entry, History, HistoryStore, ReadJob};
use crate::services::Done;
use std::sync::Mutex;

#[test]
fn a_room_message_is_encoded_once_per_format_and_acknowledged_to_its_sender() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", BIN);
    w.enter(0, 3, "carol", BIN);
    w.enter(0, 4, "dave", JSON);
    w.enter(0, 5, "erin", JSON);
    w.enter(0, 6, "outsider", JSON);
    w.send(0, 6, join("elsewhere"));
    w.outs[0].clear();

    w.send(0, 1, say("hi all"));
    assert_eq!(w.take(0, 1), [ServerMsg::RoomMsgAck { id: 1, ts_ms: NOW }], "the ack, not the message");
    let expected = room_msg(1, "general", "alice", "hi all", false);
    let frames: Vec<Bytes> = (2..=5).map(|key| w.outs[0].frames(key)).map(|mut f| f.remove(0)).collect();
    assert_eq!(decode(WireFormat::Binary, &frames[0]), expected);
    assert_eq!(decode(WireFormat::Json, &frames[2]), expected);
    assert!(shared(&[&frames[0], &frames[1]]), "binary members share one frame");
    assert!(shared(&[&frames[2], &frames[3]]), "JSON members share one frame");
    assert_ne!(frames[0].as_ptr(), frames[2].as_ptr());
    // One binary encoding for the members plus the sender's ack; one JSON encoding.
    assert_eq!(w.outs[0].encodes(WireFormat::Binary), 2);
    assert_eq!(w.outs[0].encodes(WireFormat::Json), 1);
    w.assert_quiet();
    assert_eq!(w.hubs[0].counters.room_msgs, 1);
    assert_eq!(w.hubs[0].counters.deliveries, 4);

    // Ids go up; each message is a new encoding.
    w.send(0, 4, say("hello"));
    assert_eq!(w.take(0, 4), [ServerMsg::RoomMsgAck { id: 2, ts_ms: NOW }]);
    assert_eq!(w.take(0, 1), [room_msg(2, "general", "dave", "hello", false)]);
}

#[test]
fn a_room_message_carries_the_time_the_hub_was_given() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", JSON);
    w.hubs[0].set_now(NOW + 1234);
    w.send(0, 1, say("later"));
    assert_eq!(w.take(0, 1), [ServerMsg::RoomMsgAck { id: 1, ts_ms: NOW + 1234 }]);
    let got = w.take(0, 2);
    assert!(matches!(got.as_slice(), [ServerMsg::RoomMsg { id: 1, ts_ms, .. }] if *ts_ms == NOW + 1234), "{got:?}");
}

#[test]
fn a_member_whose_format_is_unknown_gets_no_room_frames() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", BIN);
    // Still in the room, but the outbox no longer knows the connection (closing, gone).
    w.outs[0].conns.get_mut(&2).expect("bob").format = None;
    w.send(0, 1, say("anyone?"));
    assert_eq!(w.take(0, 1), [ServerMsg::RoomMsgAck { id: 1, ts_ms: NOW }]);
    assert_eq!(w.take(0, 2), []);
    assert_eq!(w.hubs[0].counters.deliveries, 0);
}

#[test]
fn empty_text_is_refused_for_room_and_private_messages() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", JSON);
    w.send(0, 1, say(""));
    w.send(0, 1, pm("bob", ""));
    let e = error(ErrorCode::EmptyText, "empty message");
    assert_eq!(w.take(0, 1), [e.clone(), e]);
    assert_eq!(w.take(0, 2), []);
    assert_eq!(w.hubs[0].counters.room_msgs, 0);
    assert_eq!(w.hubs[0].counters.private_msgs, 0);
    // No id was used up.
    w.send(0, 1, say("first"));
    assert_eq!(w.take(0, 1), [ServerMsg::RoomMsgAck { id: 1, ts_ms: NOW }]);
}

#[test]
fn a_private_message_reaches_its_target_in_any_room_and_is_echoed() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "Bob", JSON);
    w.enter(0, 3, "carol", BIN);
    w.send(0, 2, join("tech"));
    w.outs[0].clear();

    // Names are matched case-insensitively; the delivery names the target as it logged in.
    w.send(0, 1, pm("bOB", "psst"));
    let expected = delivery("alice", "Bob", "psst");
    assert_eq!(w.take(0, 2), std::slice::from_ref(&expected));
    assert_eq!(w.take(0, 1), [expected]);
    assert_eq!(w.take(0, 3), []);
    assert_eq!(w.hubs[0].counters.private_msgs, 1);
}

#[test]
fn a_private_message_to_yourself_arrives_once() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.send(0, 1, pm("alice", "note to self"));
    assert_eq!(w.take(0, 1), [delivery("alice", "alice", "note to self")]);
}

#[test]
fn a_private_message_to_nobody_online_is_unknown_user() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", BIN);
    w.send(0, 1, pm("zed", "hello?"));
    assert_eq!(w.take(0, 1), [error(ErrorCode::UnknownUser, "no user named \"zed\" is online")]);
    w.leave(0, 2);
    w.outs[0].clear();
    w.send(0, 1, pm("bob", "still there?"));
    assert_eq!(w.take(0, 1), [error(ErrorCode::UnknownUser, "no user named \"bob\" is online")]);
    assert_eq!(w.hubs[0].counters.private_msgs, 0);
}

#[test]
fn time_answers_the_hubs_clock() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", JSON);
    w.send(0, 1, ClientMsg::Time);
    w.hubs[0].set_now(NOW + 5);
    w.send(0, 1, ClientMsg::Time);
    assert_eq!(w.take(0, 1), [ServerMsg::Time { ts_ms: NOW }, ServerMsg::Time { ts_ms: NOW + 5 }]);
}

#[test]
fn files_are_refused_when_file_sharing_is_off() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", JSON);
    w.send(0, 1, ClientMsg::FileOffer { name: "notes.txt".into(), size: 10, sha256: [7; 32] });
    w.send(0, 1, ClientMsg::FileGet { id: 1 });
    w.send(0, 1, ClientMsg::FileChunk { id: 1, offset: 0, data: b"0123456789".as_slice().into() });
    w.send(0, 1, ClientMsg::FileDone { id: 1, sha256: [7; 32] });
    w.send(0, 1, ClientMsg::ListFiles { after: None });
    let off = error(ErrorCode::FileRefused, "file sharing is off on this server");
    let no_upload = error(ErrorCode::FileRefused, "no upload 1 is in progress on this connection");
    let list = ServerMsg::ListFiles { room: "general".into(), files: vec![], next: None };
    assert_eq!(w.take(0, 1), [off.clone(), off, no_upload.clone(), no_upload, list]);
    assert_eq!(w.take(0, 2), [], "nothing is announced");
}

/// Messages a [`Holding`] store was handed, with whom to acknowledge.
type Held = Arc<Mutex<Vec<(Arc<Entry>, AckTo)>>>;

/// A store that holds every message instead of making it durable; the test decides when.
#[derive(Debug)]
struct Holding(Held);

impl HistoryStore for Holding {
    fn append(&self, entry: Arc<Entry>, ack: AckTo) -> bool {
        self.0.lock().unwrap().push((entry, ack));
        true
    }

    fn read(&self, _: ReadJob) -> bool {
        false
    }
}

/// Issue 16, item 8: durable acks were addressed by (shard, key, name), so a dead connection's
/// acks reached the same user's next session on the reused key.
#[test]
fn a_durable_ack_reaches_only_the_session_that_sent_the_message() {
    let held: Held = Arc::default();
    let mut services = Services::default();
    services.history = History::with_store(0, 0, 1, Box::new(Holding(held.clone())), 0);
    let mut w = World::with(1, Arc::new(services), 0);
    w.enter(0, 1, "alice", BIN);
    w.send(0, 1, say("first"));
    w.send(0, 1, say("second"));
    assert_eq!(w.take(0, 1), [], "no ack before the store says the message is durable");
    let acks: Vec<Ack> = held.lock().unwrap().iter().map(|(e, to)| Ack { to: *to, id: e.id, ts_ms: e.ts_ms }).collect();
    let durable = |ack: Ack| Remote::Done(Done::Durable(DurableAcks { acks: vec![ack], ok: true }));
    w.hubs[0].remote(&mut w.outs[0], durable(acks[0]));
    assert_eq!(w.take(0, 1), [ServerMsg::RoomMsgAck { id: acks[0].id, ts_ms: NOW }]);
    // Alice's connection dies; she is back on the same key before the second message commits.
    w.leave(0, 1);
    w.enter(0, 1, "alice", BIN);
    w.hubs[0].remote(&mut w.outs[0], durable(acks[1]));
    assert_eq!(w.take(0, 1), [], "an earlier session's ack reached the new session");
}
