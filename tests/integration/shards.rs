//! Several event-loop shards behind one port (`ServerConfig::shards`): the kernel spreads the
//! connections, and users on different shards must not notice. Deliveries from another shard
//! arrive asynchronously, so these tests wait for markers instead of using `Client::sync`.

use crate::support::{
    is_notice, server_with, summary, wait_for_stats, Client, ClientMsg, ErrorCode, Msg, RunningServer, ServerConfig,
    ServerMsg, SystemKind, WireFormat,
};
use std::collections::{BTreeMap, BTreeSet};

const SHARDS: usize = 2;

fn sharded_server() -> RunningServer {
    let mut cfg = ServerConfig::loopback();
    cfg.shards = SHARDS;
    server_with(cfg)
}

/// Logs in clients `u00`, `u01`, … (alternating formats) until every shard holds at least two
/// of them (at least `min` clients in all). Returns the clients with their notices drained.
fn spread_clients(server: &RunningServer, min: usize) -> Vec<Client> {
    let mut clients = Vec::new();
    loop {
        let per_shard: Vec<u64> = server.handle.shard_stats().iter().map(|s| s.logins).collect();
        if clients.len() >= min && per_shard.iter().all(|&n| n >= 2) {
            break;
        }
        assert!(clients.len() < 64, "the kernel never spread connections over the shards: {per_shard:?}");
        let i = clients.len();
        let format = if i % 2 == 0 { WireFormat::Binary } else { WireFormat::Json };
        clients.push(Client::login_new(server.addr, format, &format!("u{i:02}")));
        // Wait for the shard's counters to show this login before deciding again.
        wait_for_stats(server, "the login counted", |s| s.logins == clients.len() as u64);
    }
    // Everyone has seen every earlier join once the last one's has arrived everywhere.
    let last = clients.last().map(|c| c.name.clone()).expect("clients");
    let n = clients.len();
    for c in &mut clients[..n - 1] {
        c.recv_until(|m| is_notice(m, SystemKind::Join, &last));
    }
    clients
}

#[test]
fn room_messages_cross_shards_exactly_once() {
    let server = sharded_server();
    let mut clients = spread_clients(&server, 6);
    let names: Vec<String> = clients.iter().map(|c| c.name.clone()).collect();
    let end = |name: &str| format!("end from {name}");
    for c in &mut clients {
        for k in 0..3 {
            let text = format!("{k} from {}", c.name);
            c.say(&text);
        }
        let e = end(&c.name);
        c.say(&e);
    }
    for c in &mut clients {
        let mut by_sender: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut acks = 0;
        let mut ends = BTreeSet::new();
        while ends.len() < names.len() - 1 || acks < 4 {
            match c.recv() {
                ServerMsg::RoomMsg { from, text, room, .. } => {
                    assert_eq!(room, "general");
                    if text == end(&from) {
                        assert!(ends.insert(from.to_string()), "{}: two end markers from {from}", c.name);
                    }
                    by_sender.entry(from.to_string()).or_default().push(text.to_string());
                }
                ServerMsg::RoomMsgAck { .. } => acks += 1,
                other => panic!("{}: unexpected {other:?}", c.name),
            }
        }
        for sender in names.iter().filter(|n| **n != c.name) {
            let want: Vec<String> = (0..3).map(|k| format!("{k} from {sender}")).chain([end(sender)]).collect();
            assert_eq!(by_sender.get(sender), Some(&want), "{} hears {sender} once each, in order", c.name);
        }
        assert!(!by_sender.contains_key(&c.name), "{} does not hear itself", c.name);
    }
    let want = 4 * names.len() as u64;
    wait_for_stats(&server, "every room message counted", |s| s.room_msgs == want);
}

#[test]
fn rooms_lists_and_presence_cross_shards() {
    let server = sharded_server();
    let mut clients = spread_clients(&server, 4);
    let names: Vec<String> = clients.iter().map(|c| c.name.clone()).collect();
    let n = clients.len();

    // The member list is the same from every shard.
    for c in &mut clients {
        c.send(&ClientMsg::ListUsers { after: None });
        match c.recv_until(|m| matches!(m, ServerMsg::ListUsers { .. })) {
            ServerMsg::ListUsers { room, users, .. } => {
                assert_eq!(room, "general");
                assert_eq!(users, names, "LIST_USERS from {}", c.name);
            }
            _ => unreachable!(),
        }
    }

    // Everyone but the first moves to "tech", one by one; the rooms hear it wherever they are.
    for i in 1..n {
        clients[i].send(&ClientMsg::JoinRoom { room: "tech".into(), since: None });
        assert!(matches!(clients[i].recv(), ServerMsg::JoinRoom { room } if room == "tech"));
        let who = names[i].clone();
        for (j, c) in clients.iter_mut().enumerate() {
            if j == 0 || j > i {
                c.recv_until(|m| {
                    is_notice(m, SystemKind::Leave, &who)
                        && matches!(m, ServerMsg::SystemMsg { room, .. } if room == "general")
                });
            } else if j < i {
                c.recv_until(|m| {
                    is_notice(m, SystemKind::Join, &who)
                        && matches!(m, ServerMsg::SystemMsg { room, .. } if room == "tech")
                });
            }
        }
    }
    for c in &mut clients {
        c.send(&ClientMsg::ListRooms { after: None });
        match c.recv_until(|m| matches!(m, ServerMsg::ListRooms { .. })) {
            ServerMsg::ListRooms { rooms, .. } => {
                let got: Vec<(String, u32)> = rooms.into_iter().map(|(r, k)| (r.into_owned(), k)).collect();
                assert_eq!(got, vec![("general".to_string(), 1), ("tech".to_string(), (n - 1) as u32)]);
            }
            _ => unreachable!(),
        }
    }

    // A message in tech reaches tech on every shard, and not general.
    clients[1].say("tech talk");
    for c in &mut clients[2..] {
        let m = c.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. }));
        assert!(matches!(&m, ServerMsg::RoomMsg { room, text, .. } if room == "tech" && text == "tech talk"), "{m:?}");
    }
    clients[0].say("general talk");
    clients[1].say("tech again");
    for c in &mut clients[2..] {
        let m = c.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. }));
        assert!(matches!(&m, ServerMsg::RoomMsg { text, .. } if text == "tech again"), "{} heard {m:?}", c.name);
    }

    // A disconnect on one shard is announced on the others; the name is free everywhere.
    let gone = clients.pop().expect("client");
    let gone_name = gone.name.clone();
    gone.shutdown();
    drop(gone);
    for c in &mut clients[1..] {
        c.recv_until(|m| is_notice(m, SystemKind::Disconnect, &gone_name));
    }
    let mut back = Client::login_new(server.addr, WireFormat::Json, &gone_name.to_uppercase());
    back.send(&ClientMsg::ListRooms { after: None });
    match back.recv_until(|m| matches!(m, ServerMsg::ListRooms { .. })) {
        ServerMsg::ListRooms { rooms, .. } => {
            let got: Vec<(String, u32)> = rooms.into_iter().map(|(r, k)| (r.into_owned(), k)).collect();
            assert_eq!(got, vec![("general".to_string(), 2), ("tech".to_string(), (n - 2) as u32)]);
        }
        _ => unreachable!(),
    }

    // Empty the room from all shards: it disappears.
    for c in &mut clients[1..] {
        c.send(&ClientMsg::JoinRoom { room: "general".into(), since: None });
        c.recv_until(|m| matches!(m, ServerMsg::JoinRoom { .. }));
    }
    back.send(&ClientMsg::ListRooms { after: None });
    match back.recv_until(|m| matches!(m, ServerMsg::ListRooms { .. })) {
        ServerMsg::ListRooms { rooms, .. } => assert_eq!(rooms, vec![("general".into(), n as u32)]),
        _ => unreachable!(),
    }
}

/// True for a PRIVATE_MSG_DELIVERY with these fields.
fn is_private(m: &Msg, from: &str, to: &str, text: &str) -> bool {
    matches!(m, ServerMsg::PrivateMsgDelivery { from: f, to: t, text: x, .. } if f == from && t == to && x == text)
}

#[test]
fn private_messages_and_names_cross_shards() {
    let server = sharded_server();
    let mut clients = spread_clients(&server, 4);
    let names: Vec<String> = clients.iter().map(|c| c.name.clone()).collect();
    let n = clients.len();

    // Every pair, addressed in upper case.
    for i in 0..n {
        for j in 0..n {
            let text = format!("{} to {}", names[i], names[j]);
            clients[i].send(&ClientMsg::PrivateMsg { to: names[j].to_uppercase().into(), text: text.as_str().into() });
            let is_it = |m: &Msg| is_private(m, &names[i], &names[j], &text);
            clients[j].recv_until(is_it);
            if i != j {
                clients[i].recv_until(is_it); // the echo
            }
        }
    }
    clients[0].send(&ClientMsg::PrivateMsg { to: "nobody".into(), text: "?".into() });
    assert_eq!(clients[0].recv_error(), ErrorCode::UnknownUser);
    wait_for_stats(&server, "every private message counted", |s| s.private_msgs == (n * n) as u64);

    // Names are unique across shards, case-insensitively: new connections land on every shard.
    let mut others: Vec<Client> = (0..8)
        .map(|i| Client::connect(server.addr, if i % 2 == 0 { WireFormat::Binary } else { WireFormat::Json }))
        .collect();
    for (k, c) in others.iter_mut().enumerate() {
        let name = names[k % n].to_uppercase();
        c.send(&ClientMsg::Login { username: name.as_str().into(), credential: None, since: None });
        match c.recv() {
            ServerMsg::LoginReject { code, .. } => assert_eq!(code, ErrorCode::UsernameTaken, "{name}"),
            other => panic!("{name} must be taken: {other:?}"),
        }
    }
}

#[test]
fn shutdown_reaches_every_shard() {
    let server = sharded_server();
    let mut clients = spread_clients(&server, 4);
    server.stop().expect("clean stop");
    for c in &mut clients {
        let frames = c.expect_closed();
        assert!(
            matches!(frames.as_slice(), [ServerMsg::SystemMsg { kind: SystemKind::Info, .. }]),
            "{}: {}",
            c.name,
            summary(&frames)
        );
    }
}
