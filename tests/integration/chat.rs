//! Chat semantics end to end: room fan-out across formats, presence and rooms, private messages.

use crate::support::{
    is_notice, is_room_msg, room_msgs, server, Client, ClientMsg, ErrorCode, Msg, ServerMsg, SystemKind, WireFormat,
};

/// The LIST_USERS reply's room and names.
fn list_users(c: &mut Client) -> (String, Vec<String>) {
    c.send(&ClientMsg::ListUsers { after: None });
    match c.recv_until(|m| matches!(m, ServerMsg::ListUsers { .. })) {
        ServerMsg::ListUsers { room, users, .. } => (room.into_owned(), users.iter().map(|u| u.to_string()).collect()),
        _ => unreachable!(),
    }
}

/// The LIST_ROOMS reply as (name, count) pairs.
fn list_rooms(c: &mut Client) -> Vec<(String, u32)> {
    c.send(&ClientMsg::ListRooms { after: None });
    match c.recv_until(|m| matches!(m, ServerMsg::ListRooms { .. })) {
        ServerMsg::ListRooms { rooms, .. } => rooms.into_iter().map(|(n, k)| (n.into_owned(), k)).collect(),
        _ => unreachable!(),
    }
}

fn rooms(v: &[(&str, u32)]) -> Vec<(String, u32)> {
    v.iter().map(|(n, k)| (n.to_string(), *k)).collect()
}

/// Joins `room` and checks the JOIN_ROOM reply (skipping nothing else of interest).
fn join(c: &mut Client, room: &str) {
    c.send(&ClientMsg::JoinRoom { room: room.into(), since: None });
    match c.recv_until(|m| matches!(m, ServerMsg::JoinRoom { .. } | ServerMsg::ErrorMsg { .. })) {
        ServerMsg::JoinRoom { room: r } => assert_eq!(r, room),
        other => panic!("{} joining {room}: {other:?}", c.name),
    }
}

#[test]
fn room_messages_reach_every_other_member_once_in_their_own_format() {
    let server = server();
    let specs = [
        ("bin1", WireFormat::Binary),
        ("bin2", WireFormat::Binary),
        ("json1", WireFormat::Json),
        ("json2", WireFormat::Json),
    ];
    let mut clients: Vec<Client> = specs.iter().map(|(n, f)| Client::login_new(server.addr, *f, n)).collect();
    // Everything each client receives from now on (presence notices of later logins excluded).
    let mut inbox: Vec<Vec<Msg>> = clients
        .iter_mut()
        .map(|c| {
            c.sync();
            Vec::new()
        })
        .collect();

    // (sender, text, id) in the order the server accepted them.
    let mut sent: Vec<(usize, String, u64)> = Vec::new();
    let mut last_id = 0;
    for round in 0..3 {
        for i in 0..clients.len() {
            let text = format!("round {round} from {} ✓", clients[i].name);
            if clients[i].format == WireFormat::Json {
                // A forged `from` must be ignored: the server stamps the sender.
                let line = serde_json::json!({"type": "room_msg", "text": text, "from": "mallory"}).to_string() + "\n";
                clients[i].send_raw(line.as_bytes());
            } else {
                clients[i].say(&text);
            }
            let frames = clients[i].sync();
            let acks: Vec<u64> = frames
                .iter()
                .filter_map(|m| match m {
                    ServerMsg::RoomMsgAck { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            assert_eq!(acks.len(), 1, "{}: exactly one ack per message: {frames:?}", clients[i].name);
            assert!(acks[0] > last_id, "ids increase: {} after {last_id}", acks[0]);
            last_id = acks[0];
            sent.push((i, text, acks[0]));
            inbox[i].extend(frames);
        }
    }
    for (i, c) in clients.iter_mut().enumerate() {
        inbox[i].extend(c.sync());
        let got: Vec<(String, String, u64)> = inbox[i]
            .iter()
            .filter_map(|m| match m {
                ServerMsg::RoomMsg { id, room, from, text, history, .. } => {
                    assert_eq!(room, "general");
                    assert!(!history, "live messages are not history");
                    Some((from.to_string(), text.to_string(), *id))
                }
                _ => None,
            })
            .collect();
        let want: Vec<(String, String, u64)> =
            sent.iter().filter(|(s, ..)| *s != i).map(|(s, t, id)| (specs[*s].0.to_string(), t.clone(), *id)).collect();
        assert_eq!(got, want, "{} gets every other member's messages exactly once, in order", c.name);
    }
}

#[test]
fn presence_rooms_and_lists() {
    let server = server();
    let mut alice = Client::login_new(server.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(server.addr, WireFormat::Json, "bob");
    let n = alice.recv();
    assert!(is_notice(&n, SystemKind::Join, "bob"), "alice sees bob join: {n:?}");
    assert!(matches!(&n, ServerMsg::SystemMsg { room, .. } if room == "general"));
    assert!(bob.sync().is_empty(), "no notice about oneself");

    assert_eq!(list_users(&mut alice), ("general".into(), vec!["alice".into(), "bob".into()]));
    assert_eq!(list_rooms(&mut bob), rooms(&[("general", 2)]));

    // Joining a new room creates it; the old room hears "leave".
    join(&mut bob, "tech");
    let n = alice.recv();
    assert!(is_notice(&n, SystemKind::Leave, "bob"), "alice sees bob leave: {n:?}");
    assert!(matches!(&n, ServerMsg::SystemMsg { room, .. } if room == "general"));
    assert_eq!(list_rooms(&mut alice), rooms(&[("general", 1), ("tech", 1)]));
    assert_eq!(list_users(&mut bob), ("tech".into(), vec!["bob".into()]));

    // carol logs in (general hears it, tech does not), then moves to tech.
    let mut carol = Client::login_new(server.addr, WireFormat::Binary, "carol");
    assert!(is_notice(&alice.recv(), SystemKind::Join, "carol"));
    assert!(bob.sync().is_empty(), "tech hears nothing of general's logins");
    join(&mut carol, "tech");
    let n = bob.recv();
    assert!(is_notice(&n, SystemKind::Join, "carol"), "bob sees carol join tech: {n:?}");
    assert!(matches!(&n, ServerMsg::SystemMsg { room, .. } if room == "tech"));
    assert!(is_notice(&alice.recv(), SystemKind::Leave, "carol"));
    assert_eq!(list_users(&mut carol), ("tech".into(), vec!["bob".into(), "carol".into()]));
    assert_eq!(list_rooms(&mut carol), rooms(&[("general", 1), ("tech", 2)]));

    // Room messages stay in their room.
    carol.say("tech only");
    assert!(is_room_msg(&bob.recv(), "tech only"));
    assert!(room_msgs(&alice.sync()).is_empty(), "general does not hear tech");

    // Joining the room one is in: a reply, no notices.
    join(&mut carol, "tech");
    assert!(bob.sync().is_empty());

    // An invalid room name is refused and changes nothing.
    carol.send(&ClientMsg::JoinRoom { room: "two words".into(), since: None });
    assert_eq!(carol.recv_error(), ErrorCode::InvalidRoom);
    carol.send(&ClientMsg::JoinRoom { room: "r".repeat(33).into(), since: None });
    assert_eq!(carol.recv_error(), ErrorCode::InvalidRoom);
    assert_eq!(list_users(&mut carol).0, "tech");

    // A disconnect is announced to the room left behind.
    bob.shutdown();
    drop(bob);
    let n = carol.recv();
    assert!(is_notice(&n, SystemKind::Disconnect, "bob"), "carol sees bob disconnect: {n:?}");
    assert!(matches!(&n, ServerMsg::SystemMsg { room, .. } if room == "tech"));
    assert!(alice.sync().is_empty(), "general hears nothing of tech's disconnects");

    // The last member leaves tech: it disappears; general stays even when empty.
    join(&mut carol, "general");
    assert!(is_notice(&alice.recv(), SystemKind::Join, "carol"));
    assert_eq!(list_rooms(&mut alice), rooms(&[("general", 2)]));
    join(&mut alice, "lobby");
    join(&mut carol, "lobby");
    assert_eq!(list_rooms(&mut alice), rooms(&[("general", 0), ("lobby", 2)]));
    // A room of the same name can be created again after it vanished.
    join(&mut carol, "tech");
    assert_eq!(list_rooms(&mut carol), rooms(&[("general", 0), ("lobby", 1), ("tech", 1)]));
    assert_eq!(list_users(&mut alice), ("lobby".into(), vec!["alice".into()]));
}

/// True for a PRIVATE_MSG_DELIVERY with these fields.
fn is_private(m: &Msg, from: &str, to: &str, text: &str) -> bool {
    matches!(m, ServerMsg::PrivateMsgDelivery { from: f, to: t, text: x, .. } if f == from && t == to && x == text)
}

#[test]
fn private_messages_cross_rooms_case_insensitively() {
    let server = server();
    let mut alice = Client::login_new(server.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(server.addr, WireFormat::Json, "Bob");
    let mut carol = Client::login_new(server.addr, WireFormat::Binary, "carol");
    join(&mut bob, "den");
    for c in [&mut alice, &mut bob, &mut carol] {
        c.sync();
    }

    alice.send(&ClientMsg::PrivateMsg { to: "bOB".into(), text: "psst".into() });
    let got = bob.sync();
    assert_eq!(got.len(), 1, "one delivery to the target: {got:?}");
    assert!(is_private(&got[0], "alice", "Bob", "psst"), "target's real name in `to`: {got:?}");
    let echo = alice.sync();
    assert_eq!(echo.len(), 1, "one echo to the sender: {echo:?}");
    assert!(is_private(&echo[0], "alice", "Bob", "psst"));

    bob.send(&ClientMsg::PrivateMsg { to: "ALICE".into(), text: "hi back".into() });
    let got = alice.sync();
    assert!(got.len() == 1 && is_private(&got[0], "Bob", "alice", "hi back"), "{got:?}");
    assert!(bob.sync().iter().filter(|m| is_private(m, "Bob", "alice", "hi back")).count() == 1);

    // To oneself: delivered once, not twice.
    carol.send(&ClientMsg::PrivateMsg { to: "Carol".into(), text: "note to self".into() });
    let got = carol.sync();
    assert!(got.len() == 1 && is_private(&got[0], "carol", "carol", "note to self"), "{got:?}");

    // Unknown and departed users.
    alice.send(&ClientMsg::PrivateMsg { to: "nobody".into(), text: "hello?".into() });
    assert_eq!(alice.recv_error(), ErrorCode::UnknownUser);
    carol.shutdown();
    drop(carol);
    assert!(is_notice(&alice.recv(), SystemKind::Disconnect, "carol"));
    alice.send(&ClientMsg::PrivateMsg { to: "carol".into(), text: "still there?".into() });
    assert_eq!(alice.recv_error(), ErrorCode::UnknownUser);
    alice.send(&ClientMsg::PrivateMsg { to: "bob".into(), text: "".into() });
    assert_eq!(alice.recv_error(), ErrorCode::EmptyText);

    // Nobody else heard any of it.
    assert!(bob.sync().is_empty());
    assert!(alice.sync().is_empty());
}

#[test]
fn empty_room_message_is_refused() {
    let server = server();
    let mut alice = Client::login_new(server.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(server.addr, WireFormat::Json, "bob");
    alice.sync();
    bob.say("");
    assert_eq!(bob.recv_error(), ErrorCode::EmptyText);
    assert!(alice.sync().is_empty(), "nothing delivered");
}
