//! `chat-client` with piped input and output, as scripts run it.

use super::{lines_ending, stamped, ChatClient};
use crate::support::{
    server, spawn, Client, ClientMsg, HistoryMode, RunningServer, ServerConfig, ServerMsg, TempDir, WireFormat,
    DEADLINE,
};
use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

fn addr_args(addr: SocketAddr) -> [String; 2] {
    [addr.ip().to_string(), addr.port().to_string()]
}

#[test]
fn piped_sessions_print_plain_stamped_lines() {
    let srv = server();
    let [host, port] = addr_args(srv.addr);
    let mut alice = ChatClient::start(&["alice", &host, &port]);
    alice.wait_for("Welcome, alice!");
    let mut bob = Client::login_new(srv.addr, WireFormat::Binary, "bob");
    bob.say("hello from bob");
    let out = alice.wait_for("[general] bob: hello from bob");
    alice.type_line("hi bob");
    let got = bob.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. }));
    assert!(matches!(got, ServerMsg::RoomMsg { ref text, .. } if text == "hi bob"), "{got:?}");
    alice.wait_for("[general] alice: hi bob");
    alice.type_line("/help");
    alice.wait_for("aliases: /download");
    let (status, out2) = alice.finish();
    assert!(status.success(), "{status:?}\n{out2}");
    assert!(!out2.contains('\x1b'), "no escape codes on a pipe:\n{out2:?}");
    for line in lines_ending(&out, "bob: hello from bob").into_iter().chain(lines_ending(&out2, "alice: hi bob")) {
        assert!(stamped(line), "every line starts with HH:MM: {line:?}");
    }
    assert!(!out2.lines().any(|l| l.starts_with('>')), "no prompt on a pipe:\n{out2}");
}

#[test]
fn no_timestamps_flag() {
    let srv = server();
    let [host, port] = addr_args(srv.addr);
    let alice = ChatClient::start(&["alice", &host, &port, "--no-timestamps"]);
    let out = alice.wait_for("Welcome, alice!");
    assert!(out.lines().any(|l| l.starts_with("Welcome, alice!")), "{out}");
}

#[test]
fn server_list_skips_servers_that_are_down() {
    let srv = server();
    // A port nothing listens on: bound, then released.
    let dead = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind");
    let list = format!("{dead},{}", srv.addr);
    let mut alice = ChatClient::start(&["alice", "--server", &list]);
    let out = alice.wait_for("Welcome, alice!");
    assert!(out.contains(&format!("Connected to {}", srv.addr)), "{out}");
    let (status, _) = alice.finish();
    assert!(status.success());
}

#[test]
fn a_bad_server_list_is_refused() {
    let mut c = ChatClient::start(&["alice", "--server", "a:1,,b:2"]);
    let (status, out) = c.wait_exit();
    assert!(!status.success() && out.contains("empty entry"), "{status:?} {out}");
}

/// A server with SQLite history in `dir`, on `bind` (port 0 for any).
fn history_server(dir: &TempDir, bind: SocketAddr) -> Result<RunningServer, String> {
    let mut cfg = ServerConfig::loopback();
    cfg.bind = bind;
    cfg.services.history = HistoryMode::Sqlite;
    cfg.services.history_len = 50;
    cfg.services.data_dir = dir.path().to_path_buf();
    spawn(cfg).map_err(|e| e.to_string())
}

#[test]
fn reconnecting_shows_nothing_twice_and_misses_nothing() {
    let dir = TempDir::new("client-reconnect");
    let srv = history_server(&dir, "127.0.0.1:0".parse().expect("addr")).expect("server");
    let addr = srv.addr;
    let [host, port] = addr_args(addr);
    let mut alice = ChatClient::start(&["alice", &host, &port]);
    alice.wait_for("Welcome, alice!");
    let mut bob = Client::login_new(addr, WireFormat::Json, "bob");
    bob.say("before the restart");
    alice.wait_for("bob: before the restart");
    alice.type_line("mine before");
    alice.wait_for("alice: mine before");
    drop(bob);
    srv.stop().expect("graceful stop");
    alice.wait_for("* reconnecting in");
    // The same port again (bounded retries: the old socket may take a moment to go).
    let deadline = Instant::now() + DEADLINE;
    let srv = loop {
        match history_server(&dir, addr) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot listen on {addr} again: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    };
    alice.wait_for("* reconnected to");
    alice.wait_for("* back in general; nothing new while you were away");
    let mut carol = Client::login_new(srv.addr, WireFormat::Binary, "carol");
    carol.say("after the restart");
    let out = alice.wait_for("carol: after the restart");
    assert_eq!(out.matches("bob: before the restart").count(), 1, "shown once:\n{out}");
    assert_eq!(out.matches("alice: mine before").count(), 1, "my own line shown once:\n{out}");
    let (status, _) = alice.finish();
    assert!(status.success());
}

#[test]
fn a_kick_with_a_ban_is_shown_and_not_reconnected() {
    let mut cfg = ServerConfig::loopback();
    cfg.services.admin_user = Some("root".into());
    cfg.services.admin_password = Some("hunter22".into());
    let srv = spawn(cfg).expect("server");
    let [host, port] = addr_args(srv.addr);
    let mut alice = ChatClient::start(&["alice", &host, &port]);
    alice.wait_for("Welcome, alice!");
    let mut root = Client::connect(srv.addr, WireFormat::Json);
    root.send(&ClientMsg::Login { username: "root".into(), credential: Some("hunter22".into()), since: None });
    root.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. }));
    root.send(&ClientMsg::Admin { command: "kick alice 5m".into() });
    let (status, out) = alice.wait_exit();
    assert!(!status.success(), "a kicked session ends with status 1:\n{out}");
    assert!(out.contains("banned by an administrator for 300 s"), "the reason and duration:\n{out}");
    assert!(out.contains("not reconnecting") && !out.contains("reconnecting in"), "{out}");
    // Starting again during the ban is refused with the reason and a hint.
    let mut again = ChatClient::start(&["alice", &host, &port]);
    let (status, out) = again.wait_exit();
    assert!(!status.success() && out.contains("BANNED") && out.contains("banned this name"), "{out}");
}

/// A server replaying at most 3 messages per room, in memory.
fn short_history_server() -> RunningServer {
    let mut cfg = ServerConfig::loopback();
    cfg.services.history = HistoryMode::Memory;
    cfg.services.history_len = 3;
    spawn(cfg).expect("server")
}

#[test]
fn coming_back_to_a_room_shows_what_was_missed_and_the_gap() {
    let srv = short_history_server();
    let [host, port] = addr_args(srv.addr);
    let mut bob = Client::login_new(srv.addr, WireFormat::Binary, "bob");
    let mut alice = ChatClient::start(&["alice", &host, &port]);
    alice.wait_for("Welcome, alice!");
    bob.say("seen 1");
    alice.wait_for("bob: seen 1");
    alice.type_line("/join elsewhere");
    alice.wait_for("* you are now in 'elsewhere'");
    for i in 1..=5 {
        bob.say(&format!("missed {i}"));
    }
    bob.sync();
    alice.type_line("/join general");
    let out = alice.wait_for("! gap:");
    alice.wait_for("bob: missed 5");
    let out =
        alice.output().split_once("you are now in 'elsewhere'").map(|(_, after)| after.to_string()).unwrap_or(out);
    assert!(!out.contains("seen 1"), "nothing twice:\n{out}");
    assert!(out.contains("! gap: 2 messages of general") || out.contains("! gap: some messages of general"), "{out}");
    for i in 3..=5 {
        assert_eq!(out.matches(&format!("bob: missed {i}")).count(), 1, "{out}");
    }
}

#[test]
fn history_scrolls_back_a_page_at_a_time() {
    let dir = TempDir::new("client-scroll");
    let srv = history_server(&dir, "127.0.0.1:0".parse().expect("addr")).expect("server");
    let [host, port] = addr_args(srv.addr);
    let mut bob = Client::login_new(srv.addr, WireFormat::Binary, "bob");
    for i in 1..=60 {
        bob.say(&format!("old {i}"));
    }
    bob.sync();
    let mut alice = ChatClient::start(&["alice", &host, &port]);
    alice.wait_for("bob: old 60");
    assert!(!alice.output().contains("bob: old 10\n"), "the join replays the last 50 only");
    alice.type_line("/history");
    let out = alice.wait_for("earlier messages of general above");
    assert!(out.contains("* 10 earlier messages of general above; that is the start of its history"), "{out}");
    assert!(out.contains("bob: old 1\n") && out.contains("bob: old 10\n"), "{out}");
    assert_eq!(out.matches("bob: old 11\n").count(), 1, "{out}");
    alice.type_line("/history");
    alice.wait_for("* no earlier messages in general");
}

#[test]
fn reconnecting_goes_back_to_the_room_without_showing_the_landing_room() {
    let dir = TempDir::new("client-back-to-room");
    let srv = history_server(&dir, "127.0.0.1:0".parse().expect("addr")).expect("server");
    let addr = srv.addr;
    let [host, port] = addr_args(addr);
    let mut bob = Client::login_new(addr, WireFormat::Binary, "bob");
    bob.say("general chatter");
    bob.sync();
    let mut alice = ChatClient::start(&["alice", &host, &port]);
    alice.wait_for("bob: general chatter");
    alice.type_line("/join tech");
    alice.wait_for("* you are now in 'tech'");
    alice.type_line("in tech");
    alice.wait_for("[tech] alice: in tech");
    drop(bob);
    srv.stop().expect("graceful stop");
    let deadline = Instant::now() + DEADLINE;
    let _srv = loop {
        match history_server(&dir, addr) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot listen on {addr} again: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    };
    let out = alice.wait_for("* back in tech; nothing new while you were away");
    let after = out.split_once("* reconnected to").map(|(_, a)| a).unwrap_or("");
    assert!(
        !after.contains("[general]") && !after.contains("general chatter"),
        "the landing room is passed through:\n{out}"
    );
    assert!(after.contains("* you are now in 'tech'"), "{out}");
    assert_eq!(out.matches("alice: in tech").count(), 1, "{out}");
}
