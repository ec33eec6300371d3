//! Rooms: JOIN_ROOM with its leave and join notices, the lists, the presence limit, and the
//! history replayed on entering a room.

use super::*;

#[test]
fn join_answers_the_joiner_and_tells_the_old_and_the_new_room() {
    let mut w = World::new(1);
    w.enter(0, 1, "dave", JSON);
    w.send(0, 1, join("tech"));
    w.enter(0, 2, "alice", BIN);
    w.enter(0, 3, "bob", BIN);
    w.enter(0, 4, "carol", BIN);

    w.send(0, 2, join("tech"));
    assert_eq!(w.take(0, 2), [ServerMsg::JoinRoom { room: "tech".into() }]);
    let left = notice(SystemKind::Leave, "general", "alice", "alice left general");
    let (bob, carol) = (w.outs[0].frames(3), w.outs[0].frames(4));
    assert_eq!(bob.len(), 1);
    assert_eq!(carol.len(), 1);
    assert_eq!(decode(WireFormat::Binary, &bob[0]), left);
    assert!(shared(&[&bob[0], &carol[0]]), "one encoding for the old room's binary members");
    assert_eq!(w.take(0, 1), [notice(SystemKind::Join, "tech", "alice", "alice joined tech")]);

    // She is in tech now: her messages go there, and the old room hears nothing.
    w.send(0, 2, say("hello tech"));
    assert_eq!(w.take(0, 1), [room_msg(1, "tech", "alice", "hello tech", false)]);
    assert_eq!(w.take(0, 3), []);
    assert_eq!(w.take(0, 4), []);
}

#[test]
fn an_invalid_room_is_refused_and_nothing_moves() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", JSON);
    let long = "r".repeat(33);
    for (room, why) in [
        ("", "name is empty"),
        ("two words", "name contains a space or control character"),
        (long.as_str(), "name is 33 characters; the limit is 32"),
    ] {
        w.send(0, 1, join(room));
        let text = format!("invalid room name: {why}");
        assert_eq!(w.take(0, 1), [error(ErrorCode::InvalidRoom, &text)], "room {room:?}");
    }
    assert_eq!(w.take(0, 2), []);
    w.send(0, 1, ClientMsg::ListUsers { after: None });
    let users = ServerMsg::ListUsers { room: "general".into(), users: vec!["alice".into(), "bob".into()], next: None };
    assert_eq!(w.take(0, 1), [users]);
}

#[test]
fn joining_the_room_you_are_in_only_confirms_it() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", JSON);
    w.send(0, 1, join("general"));
    assert_eq!(w.take(0, 1), [ServerMsg::JoinRoom { room: "general".into() }]);
    assert_eq!(w.take(0, 2), [], "no leave or join notice");
    w.send(0, 1, ClientMsg::ListRooms { after: None });
    assert_eq!(w.take(0, 1), [ServerMsg::ListRooms { rooms: vec![("general".into(), 2)], next: None }]);
}

#[test]
fn room_names_are_case_sensitive() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.send(0, 1, join("General"));
    assert_eq!(w.take(0, 1), [ServerMsg::JoinRoom { room: "General".into() }]);
    w.send(0, 1, ClientMsg::ListRooms { after: None });
    let rooms = vec![("General".into(), 1), ("general".into(), 0)];
    assert_eq!(w.take(0, 1), [ServerMsg::ListRooms { rooms, next: None }]);
}

#[test]
fn list_users_names_the_members_of_my_room_sorted() {
    let mut w = World::new(1);
    w.enter(0, 1, "carol", BIN);
    w.enter(0, 2, "alice", JSON);
    w.enter(0, 3, "bob", BIN);
    w.send(0, 3, join("tech"));
    w.send(0, 1, ClientMsg::ListUsers { after: None });
    let users =
        ServerMsg::ListUsers { room: "general".into(), users: vec!["alice".into(), "carol".into()], next: None };
    assert_eq!(w.take(0, 1), [notice(SystemKind::Leave, "general", "bob", "bob left general"), users]);
    w.send(0, 3, ClientMsg::ListUsers { after: None });
    let users = ServerMsg::ListUsers { room: "tech".into(), users: vec!["bob".into()], next: None };
    assert_eq!(w.take(0, 3), [ServerMsg::JoinRoom { room: "tech".into() }, users]);
}

#[test]
fn list_rooms_counts_members_and_always_lists_the_default_room() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", JSON);
    w.enter(0, 3, "carol", JSON);
    w.send(0, 1, join("tech"));
    w.send(0, 2, join("tech"));
    w.send(0, 3, join("a-team"));
    w.outs[0].clear();
    w.send(0, 3, ClientMsg::ListRooms { after: None });
    let rooms = vec![("a-team".into(), 1), ("general".into(), 0), ("tech".into(), 2)];
    assert_eq!(w.take(0, 3), [ServerMsg::ListRooms { rooms, next: None }]);

    // An emptied room is gone; the default room stays, empty.
    w.send(0, 3, join("tech"));
    w.send(0, 3, ClientMsg::ListRooms { after: None });
    let rooms = vec![("general".into(), 0), ("tech".into(), 3)];
    assert_eq!(w.take(0, 3).pop(), Some(ServerMsg::ListRooms { rooms, next: None }));
}

#[test]
fn presence_notices_stop_over_the_presence_limit() {
    let mut w = World::with(1, Arc::new(Services::default()), 2);
    w.enter(0, 1, "alice", BIN);
    w.connect(0, 2, BIN);
    w.send(0, 2, login("bob"));
    // Two members: not over the limit of 2.
    assert_eq!(w.take(0, 1), [notice(SystemKind::Join, "general", "bob", "bob joined general")]);
    w.connect(0, 3, JSON);
    w.send(0, 3, login("carol"));
    // Three members: over it. The joiner is still acknowledged.
    assert_eq!(w.take(0, 3), [login_ack("carol", "general")]);
    assert_eq!(w.take(0, 2), [login_ack("bob", "general")]);
    w.assert_quiet();
    w.leave(0, 3);
    w.assert_quiet();
    // Counted before leaving: two members, so the room hears it again.
    w.leave(0, 2);
    assert_eq!(w.take(0, 1), [notice(SystemKind::Disconnect, "general", "bob", "bob disconnected from general")]);
}

#[test]
fn presence_limit_zero_means_no_limit() {
    let mut w = World::new(1);
    for key in 1..=5 {
        w.enter(0, key, &format!("user{key}"), BIN);
    }
    w.connect(0, 6, BIN);
    w.send(0, 6, login("late"));
    for key in 1..=5 {
        assert_eq!(w.take(0, key), [notice(SystemKind::Join, "general", "late", "late joined general")]);
    }
}

#[test]
fn history_is_replayed_flagged_after_the_login_ack_in_each_format() {
    let mut w = World::with(1, services(2, None), 0);
    w.enter(0, 1, "alice", BIN);
    for text in ["one", "two", "three"] {
        w.send(0, 1, say(text));
    }
    // In memory, an acknowledgement does not wait for anything.
    let acks: Vec<Msg> = (1..=3).map(|id| ServerMsg::RoomMsgAck { id, ts_ms: NOW }).collect();
    assert_eq!(w.take(0, 1), acks);

    let replay = [room_msg(2, "general", "alice", "two", true), room_msg(3, "general", "alice", "three", true)];
    for (key, name, format) in [(2, "bob", BIN), (3, "carol", JSON)] {
        w.connect(0, key, format);
        w.send(0, key, login(name));
        let mut expected = vec![login_ack(name, "general")];
        expected.extend(replay.iter().cloned());
        assert_eq!(w.take(0, key), expected, "{name} speaks {format:?}");
    }
}

#[test]
fn history_of_the_new_room_is_replayed_after_join_room() {
    let mut w = World::with(1, services(5, None), 0);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", JSON);
    w.send(0, 1, join("tech"));
    w.send(0, 1, say("in tech"));
    w.send(0, 2, say("in general"));
    w.outs[0].clear();

    w.send(0, 2, join("tech"));
    let expected = [ServerMsg::JoinRoom { room: "tech".into() }, room_msg(1, "tech", "alice", "in tech", true)];
    assert_eq!(w.take(0, 2), expected);
    assert_eq!(w.take(0, 1), [notice(SystemKind::Join, "tech", "bob", "bob joined tech")]);

    // Back in general: its own history, not tech's.
    w.send(0, 2, join("general"));
    let expected = [ServerMsg::JoinRoom { room: "general".into() }, room_msg(2, "general", "bob", "in general", true)];
    assert_eq!(w.take(0, 2), expected);
}

#[test]
fn without_history_nothing_is_replayed() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.send(0, 1, say("gone"));
    w.connect(0, 2, BIN);
    w.send(0, 2, login("bob"));
    assert_eq!(w.take(0, 2), [login_ack("bob", "general")]);
}

/// Issue 16, item 2: lists come in pages; the `next` cursor sent back as `after` gives the
/// rest, across shards, and the last page has no cursor.
#[test]
fn lists_are_paged_with_a_cursor() {
    let mut services = Services::default();
    services.list_page = crate::config::ListPage { entries: 2, bytes: 64 * 1024 };
    let mut w = World::with(2, Arc::new(services), 0);
    for (key, name) in [(1, "dave"), (2, "alice"), (3, "carol"), (4, "bob"), (5, "erin")] {
        w.enter(key % 2, key, name, if key % 2 == 0 { BIN } else { JSON });
    }
    w.send(0, 2, ClientMsg::ListUsers { after: None });
    let page = |users: &[&str], next: Option<&str>| ServerMsg::ListUsers {
        room: "general".into(),
        users: users.iter().map(|u| u.to_string().into()).collect(),
        next: next.map(|n| n.to_string().into()),
    };
    assert_eq!(w.take(0, 2), [page(&["alice", "bob"], Some("bob"))]);
    w.send(0, 2, ClientMsg::ListUsers { after: Some("bob".into()) });
    assert_eq!(w.take(0, 2), [page(&["carol", "dave"], Some("dave"))]);
    w.send(0, 2, ClientMsg::ListUsers { after: Some("dave".into()) });
    assert_eq!(w.take(0, 2), [page(&["erin"], None)]);
    for (key, room) in [(1, "a"), (3, "b"), (5, "c")] {
        w.send(1, key, join(room));
    }
    w.outs[1].frames(1);
    w.send(1, 1, ClientMsg::ListRooms { after: None });
    let rooms = vec![("a".into(), 1), ("b".into(), 1)];
    assert_eq!(w.take(1, 1), [ServerMsg::ListRooms { rooms, next: Some("b".into()) }]);
    w.send(1, 1, ClientMsg::ListRooms { after: Some("b".into()) });
    let rooms = vec![("c".into(), 1), ("general".into(), 2)];
    assert_eq!(w.take(1, 1), [ServerMsg::ListRooms { rooms, next: None }]);
}
