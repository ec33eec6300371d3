//! Admission: LOGIN accepted and rejected, REGISTER in open mode, messages before login, PING,
//! and what a disconnect tells the room and frees.

use super::*;

const NOT_LOGGED_IN: &str = "log in first: only LOGIN is accepted before login";

#[test]
fn login_is_acknowledged_then_announced_to_the_others() {
    let mut w = World::new(1);
    w.enter(0, 1, "bob", JSON);
    w.connect(0, 2, BIN);
    w.send(0, 2, login("Alice"));
    assert_eq!(w.take(0, 2), [login_ack("Alice", "general")]);
    assert!(w.outs[0].conn(2).logged_in, "the outbox is told the connection now chats");
    assert_eq!(w.take(0, 1), [notice(SystemKind::Join, "general", "Alice", "Alice joined general")]);
    assert!(w.hubs[0].is_logged_in(2));
    assert_eq!(w.hubs[0].online(), 2);
    assert_eq!(w.hubs[0].counters.logins, 2);
}

#[test]
fn a_connection_that_has_not_said_its_format_is_answered_in_json() {
    let mut w = World::new(1);
    w.connect(0, 1, None);
    w.send(0, 1, login("alice"));
    let frames = w.outs[0].frames(1);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].first(), Some(&b'{'));
    assert_eq!(decode(WireFormat::Json, &frames[0]), login_ack("alice", "general"));
}

#[test]
fn a_name_in_use_is_refused_whatever_its_case_and_the_connection_may_try_again() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.connect(0, 2, JSON);
    w.send(0, 2, login("ALICE"));
    assert_eq!(w.take(0, 2), [reject(ErrorCode::UsernameTaken, "the name \"ALICE\" is taken")]);
    assert!(!w.hubs[0].is_logged_in(2));
    assert!(!w.outs[0].conn(2).logged_in);
    assert_eq!(w.take(0, 1), [], "no presence notice for a refused login");

    w.send(0, 2, login("carol"));
    assert_eq!(w.take(0, 2), [login_ack("carol", "general")]);
}

#[test]
fn invalid_names_are_refused_with_the_rule_they_break() {
    let mut w = World::new(1);
    w.connect(0, 1, BIN);
    let long = "x".repeat(21);
    for (name, why) in [
        ("", "name is empty"),
        ("a b", "name contains a space or control character"),
        ("a\u{7}", "name contains a space or control character"),
        (long.as_str(), "name is 21 characters; the limit is 20"),
    ] {
        w.send(0, 1, login(name));
        let reason = format!("invalid user name: {why}");
        assert_eq!(w.take(0, 1), [reject(ErrorCode::InvalidUsername, &reason)], "name {name:?}");
    }
    assert!(!w.hubs[0].is_logged_in(1));
    assert_eq!(w.hubs[0].online(), 0);
}

#[test]
fn a_second_login_or_register_is_already_logged_in() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.send(0, 1, login("other"));
    w.send(0, 1, ClientMsg::Register { username: "other".into(), password: "password1".into() });
    let e = error(ErrorCode::AlreadyLoggedIn, "you are already logged in");
    assert_eq!(w.take(0, 1), [e.clone(), e]);
    assert_eq!(w.hubs[0].online(), 1);
}

#[test]
fn register_needs_the_accounts_mode() {
    let mut w = World::new(1);
    w.connect(0, 1, JSON);
    w.send(0, 1, ClientMsg::Register { username: "alice".into(), password: "password1".into() });
    let why = "this server has no accounts (REGISTER needs --auth accounts)";
    assert_eq!(w.take(0, 1), [reject(ErrorCode::AuthFailed, why)]);
    assert!(!w.hubs[0].is_logged_in(1));
}

#[test]
fn everything_but_login_and_ping_is_refused_before_login() {
    let mut w = World::new(1);
    w.enter(0, 9, "watcher", BIN);
    w.connect(0, 1, BIN);
    let requests = [
        say("hi"),
        pm("watcher", "hi"),
        join("tech"),
        ClientMsg::ListUsers { after: None },
        ClientMsg::ListRooms { after: None },
        ClientMsg::Time,
        admin("users"),
        ClientMsg::FileOffer { name: "a.txt".into(), size: 1, sha256: [0; 32] },
        ClientMsg::FileChunk { id: 1, offset: 0, data: b"x".as_slice().into() },
        ClientMsg::FileDone { id: 1, sha256: [0; 32] },
        ClientMsg::ListFiles { after: None },
        ClientMsg::FileGet { id: 1 },
    ];
    let n = requests.len();
    for msg in requests {
        w.send(0, 1, msg);
    }
    assert_eq!(w.take(0, 1), vec![error(ErrorCode::NotLoggedIn, NOT_LOGGED_IN); n]);
    assert_eq!(w.take(0, 9), [], "nothing reached the room or the PM target");
}

#[test]
fn ping_is_answered_with_its_token_before_and_after_login_and_pong_is_silent() {
    let mut w = World::new(1);
    w.connect(0, 1, JSON);
    w.send(0, 1, ClientMsg::Ping { token: 7 });
    w.send(0, 1, ClientMsg::Pong { token: 8 });
    assert_eq!(w.take(0, 1), [ServerMsg::Pong { token: 7 }]);
    w.send(0, 1, login("alice"));
    w.send(0, 1, ClientMsg::Ping { token: u64::MAX });
    w.send(0, 1, ClientMsg::Pong { token: 1 });
    assert_eq!(w.take(0, 1), [login_ack("alice", "general"), ServerMsg::Pong { token: u64::MAX }]);
}

#[test]
fn disconnect_tells_the_room_and_frees_the_name() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", JSON);
    w.leave(0, 1);
    assert_eq!(w.take(0, 2), [notice(SystemKind::Disconnect, "general", "alice", "alice disconnected from general")]);
    assert!(!w.hubs[0].is_logged_in(1));
    assert_eq!(w.hubs[0].online(), 1);

    // A second disconnect of the same key does nothing.
    w.hubs[0].disconnect(&mut w.outs[0], 1);
    assert_eq!(w.take(0, 2), []);

    w.send(0, 2, ClientMsg::ListUsers { after: None });
    let users = ServerMsg::ListUsers { room: "general".into(), users: vec!["bob".into()], next: None };
    assert_eq!(w.take(0, 2), [users]);

    // The key is reused by a new connection, which may take the freed name in any case.
    w.connect(0, 1, BIN);
    w.send(0, 1, login("ALICE"));
    assert_eq!(w.take(0, 1), [login_ack("ALICE", "general")]);
    assert_eq!(w.take(0, 2), [notice(SystemKind::Join, "general", "ALICE", "ALICE joined general")]);
}

#[test]
fn disconnect_of_a_connection_that_never_logged_in_is_silent() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.connect(0, 2, BIN);
    w.send(0, 2, login("a b"));
    w.outs[0].clear();
    w.leave(0, 2);
    w.assert_quiet();
    assert_eq!(w.hubs[0].online(), 1);
}

#[test]
fn shutdown_sends_no_presence_notices() {
    let mut w = World::new(1);
    w.enter(0, 1, "alice", BIN);
    w.enter(0, 2, "bob", JSON);
    w.hubs[0].set_quiet();
    w.leave(0, 1);
    w.assert_quiet();
    assert_eq!(w.hubs[0].online(), 1);
}

/// Issue 16, item 5: while `Alice` is online, names that look like hers are refused, and a
/// fullwidth name logs in under its NFKC form.
#[test]
fn lookalike_and_invisible_names_are_refused_while_the_original_is_online() {
    let mut w = World::new(1);
    w.enter(0, 1, "Alice", BIN);
    let taken = ["\u{410}lice", "ALICE", "Ａｌｉｃｅ", "\u{430}lice"];
    let invisible = ["al\u{200d}ice", "Alice\u{200b}", "\u{202e}ecilA", "\u{3164}", "\u{2800}"];
    let cases = taken.map(|n| (n, ErrorCode::UsernameTaken)).into_iter();
    for (key, (name, code)) in (10..).zip(cases.chain(invisible.map(|n| (n, ErrorCode::InvalidUsername)))) {
        w.connect(0, key, JSON);
        w.send(0, key, login(name));
        let got = w.take(0, key);
        assert!(matches!(got.as_slice(), [ServerMsg::LoginReject { code: c, .. }] if *c == code), "{name:?}: {got:?}");
    }
    w.leave(0, 1);
    w.connect(0, 30, BIN);
    w.send(0, 30, login("Ｂｏｂ"));
    assert_eq!(w.take(0, 30), [login_ack("Bob", "general")]);
}
