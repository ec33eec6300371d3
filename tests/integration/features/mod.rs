//! The seed features over loopback: TIME, history (memory and SQLite, across a restart and a
//! SIGKILL of the real binary), passkey auth, accounts (argon2id + SQLite), the admin command
//! set, and file sharing ([`files`]).

pub(crate) mod files;
mod storm;

use crate::support::{
    server, server_with, tcp_connect_from, AuthMode, Client, ClientMsg, ErrorCode, HistoryMode, Msg, ServerConfig,
    ServerMsg, ServerProcess, SystemKind, TempDir, WireFormat,
};

pub(super) const FORMATS: [WireFormat; 2] = [WireFormat::Binary, WireFormat::Json];

/// Sends LOGIN with `credential` and returns the reply (LOGIN_ACK or LOGIN_REJECT).
fn login_reply(c: &mut Client, name: &str, credential: Option<&str>) -> Msg {
    c.send(&ClientMsg::Login { username: name.into(), credential: credential.map(Into::into), since: None });
    c.name = name.to_string();
    c.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. }))
}

fn login_ok(addr: std::net::SocketAddr, f: WireFormat, name: &str, credential: Option<&str>) -> Client {
    let mut c = Client::connect(addr, f);
    let reply = login_reply(&mut c, name, credential);
    assert!(matches!(reply, ServerMsg::LoginAck { .. }), "{name}: {reply:?}");
    c
}

fn history_texts(frames: &[Msg]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|m| match m {
            ServerMsg::RoomMsg { text, history: true, .. } => Some(text.to_string()),
            _ => None,
        })
        .collect()
}

/// The texts of the next `n` history messages (bounded wait). A replay read from SQLite, or
/// gathered by the room's owner on another shard, may come after replies to later requests
/// (a sync's PONG), so tests wait for it rather than sync.
fn recv_history(c: &mut Client, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| match c.recv_until(|m| matches!(m, ServerMsg::RoomMsg { history: true, .. })) {
            ServerMsg::RoomMsg { text, .. } => text.to_string(),
            _ => unreachable!(),
        })
        .collect()
}

/// Says `text` and waits for its ROOM_MSG_ACK; returns the id.
fn say_acked(c: &mut Client, text: &str) -> u64 {
    c.say(text);
    match c.recv_until(|m| matches!(m, ServerMsg::RoomMsgAck { .. } | ServerMsg::ErrorMsg { .. })) {
        ServerMsg::RoomMsgAck { id, .. } => id,
        other => panic!("no ack for {text:?}: {other:?}"),
    }
}

#[test]
fn time_answers_with_the_server_clock() {
    let s = server();
    for f in FORMATS {
        let mut c = Client::login_new(s.addr, f, &format!("t{}", f.name()));
        c.send(&ClientMsg::Time);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        match c.recv_until(|m| matches!(m, ServerMsg::Time { .. })) {
            ServerMsg::Time { ts_ms } => assert!(ts_ms.abs_diff(now) < 60_000, "{ts_ms} vs {now}"),
            _ => unreachable!(),
        }
    }
    let mut anon = Client::connect(s.addr, WireFormat::Json);
    anon.send(&ClientMsg::Time);
    assert_eq!(anon.recv_error(), ErrorCode::NotLoggedIn);
}

#[test]
fn memory_history_is_replayed_flagged_on_login_and_join() {
    let mut cfg = ServerConfig::loopback();
    cfg.services.history_len = 50;
    let s = server_with(cfg);
    let mut alice = Client::login_new(s.addr, WireFormat::Binary, "alice");
    for t in ["one", "two", "three"] {
        say_acked(&mut alice, t);
    }
    alice.send(&ClientMsg::JoinRoom { room: "rust".into(), since: None });
    say_acked(&mut alice, "in rust");
    for f in FORMATS {
        let mut bob = Client::login_new(s.addr, f, &format!("bob{}", f.name()));
        assert_eq!(history_texts(&bob.sync()), ["one", "two", "three"]);
        bob.send(&ClientMsg::JoinRoom { room: "rust".into(), since: None });
        let frames = bob.sync();
        assert!(matches!(frames[0], ServerMsg::JoinRoom { .. }), "JOIN_ROOM comes before the history");
        assert_eq!(history_texts(&frames), ["in rust"]);
    }
}

pub(super) fn features_config(tag: &str, dir: &TempDir) -> ServerConfig {
    let mut cfg = ServerConfig::loopback();
    cfg.services.data_dir = dir.path().join(tag);
    cfg.services.argon2_memory_kib = 1024; // fast hashing in debug builds
    cfg.services.history_len = 50;
    cfg
}

#[test]
fn history_length_is_configurable() {
    let dir = TempDir::new("histlen");
    let mut cfg = features_config("h", &dir);
    cfg.services.history_len = 2;
    let s = server_with(cfg);
    let mut alice = Client::login_new(s.addr, WireFormat::Json, "alice");
    for t in ["a", "b", "c", "d"] {
        say_acked(&mut alice, t);
    }
    let mut bob = Client::login_new(s.addr, WireFormat::Binary, "bob");
    assert_eq!(history_texts(&bob.sync()), ["c", "d"]);
}

#[test]
fn sqlite_history_acks_only_committed_messages_and_survives_a_restart() {
    let dir = TempDir::new("sqlite");
    let mut cfg = features_config("data", &dir);
    cfg.services.history = HistoryMode::Sqlite;
    cfg.shards = 2;
    let db = cfg.services.data_dir.join("history.db");
    let s = server_with(cfg.clone());
    let mut ids = Vec::new();
    let mut clients: Vec<Client> =
        (0..4).map(|i| Client::login_new(s.addr, FORMATS[i % 2], &format!("user{i}"))).collect();
    for round in 0..5 {
        for (i, c) in clients.iter_mut().enumerate() {
            ids.push(say_acked(c, &format!("m{round}-{i}")));
        }
    }
    // The promise: ROOM_MSG_ACK means committed. Another connection sees every acked message
    // while the server still runs, so killing it now would lose none of them.
    let probe = rusqlite::Connection::open(&db).expect("open the history db");
    let stored: i64 = probe.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0)).unwrap();
    assert_eq!(stored as usize, ids.len());
    drop(probe);
    drop(clients);
    s.stop().expect("stop");

    let s = server_with(cfg);
    let mut late = Client::login_new(s.addr, WireFormat::Binary, "late");
    let history = recv_history(&mut late, 20);
    assert_eq!(history.len(), 20);
    assert_eq!(history.first().map(String::as_str), Some("m0-0"));
    assert_eq!(history.last().map(String::as_str), Some("m4-3"));
    let new_id = say_acked(&mut late, "after the restart");
    assert!(ids.iter().all(|&old| old < new_id), "ids keep growing across restarts");
}

fn passkey_config(dir: &TempDir) -> ServerConfig {
    let mut cfg = features_config("pk", dir);
    cfg.services.auth = AuthMode::Passkey;
    cfg.services.passkey = Some("letmein-42".into());
    cfg.shards = 2;
    cfg
}

#[test]
fn a_wrong_passkey_is_rejected_and_sees_nothing() {
    let dir = TempDir::new("passkey");
    let s = server_with(passkey_config(&dir));
    let mut alice = login_ok(s.addr, WireFormat::Binary, "alice", Some("letmein-42"));
    say_acked(&mut alice, "before eve");
    for f in FORMATS {
        let mut eve = Client::connect(s.addr, f);
        for key in [Some("guess"), None, Some("")] {
            match login_reply(&mut eve, &format!("eve-{}", f.name()), key) {
                ServerMsg::LoginReject { code, .. } => assert_eq!(code, ErrorCode::AuthFailed),
                other => panic!("eve got {other:?}"),
            }
        }
        say_acked(&mut alice, "while eve waits");
        eve.say("let me in");
        let seen = eve.sync();
        assert!(
            seen.iter().all(|m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::NotLoggedIn, .. })),
            "eve saw {seen:?}"
        );
    }
    let mut bob = login_ok(s.addr, WireFormat::Json, "bob", Some("letmein-42"));
    assert_eq!(recv_history(&mut bob, 3), ["before eve", "while eve waits", "while eve waits"]);
}

fn admin_config(dir: &TempDir) -> ServerConfig {
    let mut cfg = features_config("adm", dir);
    cfg.services.admin_user = Some("root".into());
    cfg.services.admin_password = Some("hunter22".into());
    cfg.shards = 2;
    cfg
}

#[test]
fn admin_commands_from_a_client() {
    let dir = TempDir::new("admin");
    let s = server_with(admin_config(&dir));
    let mut impostor = Client::connect(s.addr, WireFormat::Json);
    assert!(matches!(login_reply(&mut impostor, "ROOT", Some("guess")), ServerMsg::LoginReject { .. }));
    let mut users: Vec<Client> = (0..6).map(|i| Client::login_new(s.addr, FORMATS[i % 2], &format!("u{i}"))).collect();
    users[1].send(&ClientMsg::JoinRoom { room: "rust".into(), since: None });
    users[1].sync();
    users[0].send(&ClientMsg::Admin { command: "users".into() });
    assert_eq!(users[0].recv_error(), ErrorCode::Forbidden);

    let mut root = login_ok(s.addr, WireFormat::Binary, "root", Some("hunter22"));
    let list = root.admin("users");
    assert!(list.starts_with("7 users online"), "{list}");
    assert!(list.contains("rust: u1"), "{list}");
    assert!(root.admin("rooms").contains("rust: 1 users"));
    assert!(root.admin("time").starts_with("server time: 20"));
    assert!(root.admin("stats").contains("connections"));
    assert!(root.admin("reboot").contains("unknown admin command"));

    // The alert reaches everyone, on both shards, in every room.
    assert_eq!(root.admin("alert fire drill at 3"), "alert sent to 7 users");
    for u in &mut users {
        match u.recv_until(|m| matches!(m, ServerMsg::SystemMsg { kind: SystemKind::Alert, .. })) {
            ServerMsg::SystemMsg { text, user, .. } => assert_eq!((&*text, &*user), ("fire drill at 3", "root")),
            _ => unreachable!(),
        }
    }
    assert_eq!(root.admin("kick u3 0"), "kicked u3");
    let last = users[3].expect_closed();
    assert!(last.iter().any(|m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::Forbidden, .. })), "{last:?}");
    assert_eq!(root.admin("kick u4"), "kicked u4, banned for 300 s");
    let last = users[4].expect_closed();
    assert!(last.iter().any(|m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::Banned, .. })), "{last:?}");
    assert!(root.admin("kick nobody").contains("no user"));
}

fn accounts_config(dir: &TempDir) -> ServerConfig {
    let mut cfg = features_config("acc", dir);
    cfg.services.auth = AuthMode::Accounts;
    cfg.shards = 2;
    cfg
}

fn register_reply(c: &mut Client, name: &str, password: &str) -> Msg {
    c.send(&ClientMsg::Register { username: name.into(), password: password.into() });
    c.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. }))
}

#[test]
fn accounts_register_login_and_refuse_duplicates() {
    let dir = TempDir::new("accounts");
    let s = server_with(accounts_config(&dir));
    let mut observer = Client::connect(s.addr, WireFormat::Json);
    assert!(matches!(register_reply(&mut observer, "obs", "observer password"), ServerMsg::LoginAck { .. }));
    let mut a = Client::connect(s.addr, WireFormat::Binary);
    assert!(matches!(register_reply(&mut a, "alice", "short"), ServerMsg::LoginReject { .. }));
    assert!(matches!(register_reply(&mut a, "alice", "correct horse"), ServerMsg::LoginAck { .. }));
    drop(a);
    // Wait until the server has seen alice leave: until then her name is still online.
    observer.recv_until(
        |m| matches!(m, ServerMsg::SystemMsg { kind: SystemKind::Disconnect, user, .. } if user == "alice"),
    );
    let mut dup = Client::connect(s.addr, WireFormat::Json);
    match register_reply(&mut dup, "ALICE", "another password") {
        ServerMsg::LoginReject { code, .. } => assert!(matches!(code, ErrorCode::UsernameTaken)),
        other => panic!("duplicate registration: {other:?}"),
    }
    let mut open = Client::connect(s.addr, WireFormat::Json);
    match login_reply(&mut open, "alice", None) {
        ServerMsg::LoginReject { code, .. } => assert_eq!(code, ErrorCode::AuthFailed),
        other => panic!("no password: {other:?}"),
    }
    assert!(matches!(login_reply(&mut open, "alice", Some("wrong password")), ServerMsg::LoginReject { .. }));
    let mut ok = login_ok(s.addr, WireFormat::Binary, "alice", Some("correct horse"));
    ok.say("hi");
    ok.sync();
}

#[test]
fn login_attempts_are_throttled_per_user_and_address() {
    let dir = TempDir::new("throttle");
    let s = server_with(accounts_config(&dir));
    let mut observer = Client::connect(s.addr, WireFormat::Json);
    assert!(matches!(register_reply(&mut observer, "obs", "observer password"), ServerMsg::LoginAck { .. }));
    let mut c = Client::connect(s.addr, WireFormat::Json);
    assert!(matches!(register_reply(&mut c, "bob", "bob's password"), ServerMsg::LoginAck { .. }));
    drop(c);
    // Wait until the server has seen bob leave: until then the name is still taken.
    observer
        .recv_until(|m| matches!(m, ServerMsg::SystemMsg { kind: SystemKind::Disconnect, user, .. } if user == "bob"));
    let mut attacker = Client::connect(s.addr, WireFormat::Binary);
    let mut codes = Vec::new();
    for i in 0..7 {
        match login_reply(&mut attacker, "bob", Some(&format!("guess {i}"))) {
            ServerMsg::LoginReject { code, .. } => codes.push(code),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(codes.iter().filter(|c| **c == ErrorCode::AuthFailed).count(), 5, "{codes:?}");
    assert_eq!(codes.last(), Some(&ErrorCode::RateLimited));
    // Even the right password waits out the window now, from the attacker's address.
    assert!(matches!(login_reply(&mut attacker, "bob", Some("bob's password")), ServerMsg::LoginReject { .. }));
    // Issue 16, item 6: the lockout is per (name, address): bob, from elsewhere, still logs in.
    let elsewhere = std::net::IpAddr::from([127, 0, 0, 2]);
    let from_elsewhere = tcp_connect_from(Some(elsewhere), s.addr).expect("connect from 127.0.0.2");
    let mut bob = Client::from_tcp(from_elsewhere, WireFormat::Json);
    assert!(matches!(login_reply(&mut bob, "bob", Some("bob's password")), ServerMsg::LoginAck { .. }));
}

/// Starts the real `chat-server` binary in `dir` with SQLite history on port 0 and waits
/// (bounded) until it listens. Dropping it sends SIGKILL: no shutdown path runs.
fn start_binary(dir: &std::path::Path) -> (ServerProcess, std::net::SocketAddr) {
    let net = ["--bind", "127.0.0.1", "--port", "0", "--no-tls", "--shards", "1"];
    let server = ServerProcess::start(dir, &[&net[..], &["--history", "sqlite", "--data-dir", "data"]].concat());
    let addr = server.wait_listening();
    (server, addr)
}

/// The documented promise of SQLite mode: ROOM_MSG_ACK means committed, so every acknowledged
/// message survives the process being killed without any chance to flush.
#[test]
fn acked_messages_survive_a_sigkill_of_the_server() {
    let dir = TempDir::new("sigkill");
    let texts: Vec<String> = (0..30).map(|i| format!("durable {i}")).collect();
    {
        let (_server, addr) = start_binary(dir.path());
        let mut alice = login_ok(addr, WireFormat::Binary, "alice", None);
        for t in &texts {
            say_acked(&mut alice, t);
        }
        // Dropping `server` sends SIGKILL: no shutdown path runs.
    }
    let (_server, addr) = start_binary(dir.path());
    let mut bob = login_ok(addr, WireFormat::Json, "bob", None);
    assert_eq!(recv_history(&mut bob, texts.len()), texts, "every acknowledged message is in the replayed history");
}
