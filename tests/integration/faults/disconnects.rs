//! Clients that go away badly, beside the pair: mid-frame, half-closed, reset. The server cleans
//! up each one (room membership, user name, connection slot) and tells the room.

use super::pair::Pair;
use crate::support::{
    is_notice, raw_connect, reset, server, summary, wait_for_stats, Client, ClientMsg, ServerMsg, SystemKind,
    WireFormat, DEADLINE,
};
use std::collections::HashSet;
use std::io::Write;
use std::time::Instant;

/// Waits on `observer` for the disconnect notice about `user`.
#[track_caller]
fn expect_disconnect_notice(observer: &mut Client, user: &str) {
    observer.recv_until(|m| is_notice(m, SystemKind::Disconnect, user));
}

/// Waits on `observer` for a disconnect notice about each of `users`, in any order (the server
/// handles connections closed at once in its own order).
#[track_caller]
fn expect_disconnect_notices(observer: &mut Client, users: &[String]) {
    let mut missing: HashSet<&str> = users.iter().map(String::as_str).collect();
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while !missing.is_empty() {
        match observer.recv_by(deadline) {
            Ok(m @ ServerMsg::SystemMsg { kind: SystemKind::Disconnect, .. }) => {
                let ServerMsg::SystemMsg { user, .. } = &m else { unreachable!() };
                let fresh = missing.remove(&**user);
                seen.push(m.clone());
                assert!(fresh, "one disconnect notice per user, only for {users:?}; got {}", summary(&seen));
            }
            Ok(m) => seen.push(m),
            Err(e) => panic!("observer: {e}; no disconnect notice for {missing:?}; other frames: {}", summary(&seen)),
        }
    }
}

#[test]
fn disconnect_mid_frame_is_cleaned_up() {
    let server = server();
    let pair = Pair::start(server.addr);
    let mut observer = Client::login_new(server.addr, WireFormat::Json, "observer");

    // Binary: seven bytes of a header, then FIN.
    let mut c = Client::login_new(server.addr, WireFormat::Binary, "mid-bin");
    let frame = c.encode(&ClientMsg::RoomMsg { text: "never finished".into() });
    c.send_raw(&frame[..7]);
    c.close();
    expect_disconnect_notice(&mut observer, "mid-bin");

    // Binary: the header and half the body, then RST.
    let mut c = Client::login_new(server.addr, WireFormat::Binary, "mid-rst");
    c.send_raw(&frame[..frame.len() / 2]);
    c.reset();
    expect_disconnect_notice(&mut observer, "mid-rst");

    // JSON: half a line, then FIN.
    let mut c = Client::login_new(server.addr, WireFormat::Json, "mid-json");
    c.send_raw(b"{\"type\":\"room_msg\",\"text\":\"never fin");
    c.close();
    expect_disconnect_notice(&mut observer, "mid-json");

    // Before login: a partial LOGIN, then FIN; and a partial LOGIN, then RST.
    let login = Client::connect(server.addr, WireFormat::Binary).encode(&ClientMsg::Login {
        username: "ghost".into(),
        credential: None,
        since: None,
    });
    let mut tcp = raw_connect(server.addr);
    tcp.write_all(&login[..login.len() - 1]).expect("send");
    drop(tcp);
    let mut tcp = raw_connect(server.addr);
    tcp.write_all(&login[..3]).expect("send");
    reset(tcp);

    wait_for_stats(&server, "the pair and the observer left", |s| s.connections_open == 3);
    // Nothing half-sent reached the room, and every name is free again.
    let got = observer.sync();
    assert!(!got.iter().any(|m| matches!(m, ServerMsg::RoomMsg { .. })), "{}", summary(&got));
    for name in ["mid-bin", "mid-rst", "mid-json", "ghost"] {
        Client::login_new(server.addr, WireFormat::Binary, name).close();
    }
    pair.finish();
}

#[test]
fn half_close_delivers_what_was_sent_then_cleans_up() {
    let server = server();
    let pair = Pair::start(server.addr);
    let mut observer = Client::login_new(server.addr, WireFormat::Binary, "observer");
    for format in [WireFormat::Binary, WireFormat::Json] {
        let name = format!("half-{}", format.name());
        let mut c = Client::login_new(server.addr, format, &name);
        c.say("last words");
        c.shutdown_write();
        // The server answers what it read before our FIN, then closes its side too.
        let frames = c.expect_closed();
        assert!(
            frames.iter().any(|m| matches!(m, ServerMsg::RoomMsgAck { .. })),
            "{name}: the last message is acknowledged: {}",
            summary(&frames)
        );
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            let m = observer.recv_by(deadline).unwrap_or_else(|e| panic!("observer: {e}; {}", summary(&seen)));
            if is_notice(&m, SystemKind::Disconnect, &name) {
                break;
            }
            seen.push(m);
        }
        assert!(
            seen.iter()
                .any(|m| matches!(m, ServerMsg::RoomMsg { from, text, .. } if *from == *name && text == "last words")),
            "the room got {name}'s last words before the disconnect notice: {}",
            summary(&seen)
        );
    }
    wait_for_stats(&server, "the pair and the observer left", |s| s.connections_open == 3);
    pair.finish();
}

#[test]
fn reset_connections_are_cleaned_up() {
    let server = server();
    let pair = Pair::start(server.addr);
    let mut observer = Client::login_new(server.addr, WireFormat::Binary, "observer");
    for round in 0..3 {
        let names: Vec<String> = (0..10).map(|i| format!("rst-{round}-{i}")).collect();
        let conns: Vec<Client> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let format = if i % 2 == 0 { WireFormat::Binary } else { WireFormat::Json };
                let mut c = Client::login_new(server.addr, format, n);
                if i % 3 == 0 {
                    c.say("then reset");
                }
                c
            })
            .collect();
        conns.into_iter().for_each(Client::reset);
        expect_disconnect_notices(&mut observer, &names);
        // Fresh connections reset before sending anything, too.
        for _ in 0..10 {
            reset(raw_connect(server.addr));
        }
        wait_for_stats(&server, "the pair and the observer left", |s| s.connections_open == 3);
        // The names are free again.
        Client::login_new(server.addr, WireFormat::Json, &names[0]).close();
        expect_disconnect_notice(&mut observer, &names[0]);
    }
    pair.finish();
}
