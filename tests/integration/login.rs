//! Login rules: naming, uniqueness (case-insensitive), one login per connection, nothing before it.

use crate::support::{is_notice, raw, server, Client, ClientMsg, ErrorCode, ServerMsg, SystemKind, WireFormat};

/// Sends LOGIN and returns the reply (LOGIN_ACK or LOGIN_REJECT).
fn try_login(c: &mut Client, name: &str) -> ServerMsg<'static> {
    c.send(&ClientMsg::Login { username: name.into(), credential: None, since: None });
    c.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. }))
}

#[track_caller]
fn assert_rejected(reply: ServerMsg<'_>, code: ErrorCode, name: &str) {
    match reply {
        ServerMsg::LoginReject { code: c, .. } => assert_eq!(c, code, "login as {name:?}"),
        other => panic!("login as {name:?} should be rejected with {code:?}, got {other:?}"),
    }
}

#[test]
fn invalid_names_are_rejected_and_the_connection_stays_open() {
    let server = server();
    let long = "x".repeat(21);
    let bad = ["", long.as_str(), "a b", "tab\there", "bell\u{7}", "new\nline", " lead"];
    for format in [WireFormat::Binary, WireFormat::Json] {
        let mut c = Client::connect(server.addr, format);
        for name in bad {
            assert_rejected(try_login(&mut c, name), ErrorCode::InvalidUsername, name);
        }
        // Still open and not logged in.
        c.send(&ClientMsg::ListUsers { after: None });
        assert_eq!(c.recv_error(), ErrorCode::NotLoggedIn);
        // The limits are inclusive: 20 characters (even multi-byte ones) are fine.
        let name = if format == WireFormat::Binary { "é".repeat(20) } else { "y".repeat(20) };
        c.login(&name);
    }
}

#[test]
fn names_are_unique_case_insensitively_and_a_rejected_connection_can_retry() {
    let server = server();
    let mut alice = Client::login_new(server.addr, WireFormat::Binary, "Alice");
    let mut other = Client::connect(server.addr, WireFormat::Json);
    for name in ["Alice", "alice", "ALICE", "aLiCe"] {
        assert_rejected(try_login(&mut other, name), ErrorCode::UsernameTaken, name);
    }
    other.login("alice2");
    // Nobody saw a join for the rejected attempts; alice sees only alice2.
    let seen = alice.sync();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(is_notice(&seen[0], SystemKind::Join, "alice2"));

    // Once Alice is gone, the name is free again (in any case).
    alice.shutdown();
    drop(alice);
    other.recv_until(|m| is_notice(m, SystemKind::Disconnect, "Alice"));
    let mut again = Client::connect(server.addr, WireFormat::Binary);
    again.login("ALICE");
}

#[test]
fn a_second_login_is_an_error_and_changes_nothing() {
    let server = server();
    let mut alice = Client::login_new(server.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(server.addr, WireFormat::Json, "bob");
    alice.sync();
    for c in [&mut alice, &mut bob] {
        c.send(&ClientMsg::Login { username: "someone_else".into(), credential: None, since: None });
        assert_eq!(c.recv_error(), ErrorCode::AlreadyLoggedIn);
    }
    // Still known by the original names.
    bob.send(&ClientMsg::ListUsers { after: None });
    match bob.recv() {
        ServerMsg::ListUsers { users, .. } => assert_eq!(users, vec!["alice", "bob"]),
        other => panic!("{other:?}"),
    }
    alice.say("still alice");
    match bob.recv() {
        ServerMsg::RoomMsg { from, text, .. } => assert_eq!((&*from, &*text), ("alice", "still alice")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_login_and_ping_are_accepted_before_login() {
    let server = server();
    let mut watcher = Client::login_new(server.addr, WireFormat::Binary, "watcher");
    let mut late = Vec::new();
    for format in [WireFormat::Binary, WireFormat::Json] {
        let mut c = Client::connect(server.addr, format);
        let before = [
            ClientMsg::RoomMsg { text: "hi".into() },
            ClientMsg::PrivateMsg { to: "watcher".into(), text: "hi".into() },
            ClientMsg::JoinRoom { room: "tech".into(), since: None },
            ClientMsg::ListUsers { after: None },
            ClientMsg::ListRooms { after: None },
        ];
        for msg in &before {
            c.send(msg);
            assert_eq!(c.recv_error(), ErrorCode::NotLoggedIn, "{msg:?} before login");
        }
        c.send(&ClientMsg::Ping { token: 77 });
        assert_eq!(c.recv(), ServerMsg::Pong { token: 77 });
        c.send(&ClientMsg::Pong { token: 1 }); // ignored, no reply
        c.login(&format!("late_{}", format.name()));
        late.push(c);
    }
    // The watcher got nothing but the two joins.
    let seen = watcher.sync();
    assert_eq!(seen.len(), 2, "{seen:?}");
    // A raw LOGIN with a credential field is accepted too (credentials are optional).
    let mut body = raw::name8(b"withcred");
    body.extend(raw::name8(b"secret"));
    let mut c = Client::connect(server.addr, WireFormat::Binary);
    c.send_raw(&raw::frame(1, 0, &body));
    assert!(matches!(c.recv(), ServerMsg::LoginAck { username, .. } if username == "withcred"));
}
