//! Unit tests of the interactive session: typed lines and server messages in, printed lines
//! (captured) and state out, with no terminal and, mostly, no connection.

use super::*;
use crate::protocol::SystemKind;
use sha2::{Digest, Sha256};
use std::net::TcpListener;

/// A session for alice in `general`, not connected, printing into a capture.
pub(super) fn app() -> App {
    let (tx, rx) = mpsc::channel();
    let config = Config {
        opts: ConnectOptions::new("127.0.0.1", 1),
        servers: Vec::new(),
        style: Style::BARE,
        username: "alice".into(),
        passkey: None,
        register: false,
        reconnect: false,
    };
    let info = LoginInfo { username: "alice".into(), room: "general".into() };
    App::new(config, info, tx, rx, Printer::capture())
}

#[test]
fn typed_lines_while_offline() {
    let mut a = app();
    assert_eq!(a.on_line("/help"), Flow::Continue);
    assert_eq!(a.out.take(), [HELP]);
    a.on_line("/dance");
    assert_eq!(
        a.out.take(),
        ["! unknown command '/dance'; type /help for the list (to send a line starting with '/', type '//')"]
    );
    a.on_line("hi");
    a.on_line("/users");
    assert_eq!(a.out.take(), ["! not connected (reconnecting); not sent"; 2]);
    a.on_line("   ");
    assert!(a.out.take().is_empty());
    let max = Limits::default().max_text;
    a.on_line(&"x".repeat(max + 1));
    assert_eq!(a.out.take(), [format!("! message too long ({} bytes; the limit is {max}); not sent", max + 1)]);
    assert_eq!(a.on_line("/quit"), Flow::Quit);
    assert_eq!(a.on_line("/EXIT now"), Flow::Quit);
}

#[test]
fn own_room_messages_show_once_acknowledged() {
    let mut a = app();
    a.outstanding.push(Req::Room { text: "hello".into() });
    a.on_message(ServerMsg::RoomMsgAck { id: 1, ts_ms: 2 });
    assert_eq!(a.out.take(), ["[general] alice: hello"]);
    a.outstanding.push(Req::Other);
    a.on_message(ServerMsg::JoinRoom { room: "tech".into() });
    assert_eq!((a.room.as_str(), a.out.take()), ("tech", vec!["* you are now in 'tech'".to_string()]));
    a.outstanding.push(Req::Room { text: "too fast".into() });
    a.on_message(ServerMsg::ErrorMsg { code: ErrorCode::RateLimited, text: "slow down".into() });
    assert_eq!(a.out.take(), ["! error (RATE_LIMITED): slow down", "  (your message \"too fast\" was not delivered)"]);
    assert_eq!(a.outstanding.failed(), None);
}

#[test]
fn other_messages_are_only_rendered() {
    let mut a = app();
    a.outstanding.push(Req::Room { text: "mine".into() });
    let notice =
        ServerMsg::SystemMsg { kind: SystemKind::Join, room: "general".into(), user: "bob".into(), text: "".into() };
    a.on_message(notice);
    a.on_message(ServerMsg::Ping { token: 1 });
    assert_eq!(a.out.take(), ["* bob joined general"]);
    assert_eq!(a.outstanding.failed(), Some(Req::Room { text: "mine".into() }), "no reply was consumed");
}

#[test]
fn downloads_are_written_checked_and_abandoned() {
    let dir = std::env::temp_dir().join(format!("chatproto-app-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let dest = dir.join("a.txt");
    let _ = std::fs::remove_file(&dest);
    let mut a = app();
    let shared =
        ServerMsg::FileAvailable { id: 7, name: "a.txt".into(), size: 3, from: "bob".into(), room: "general".into() };
    a.on_message(shared);
    a.start_download("7", Some(dest.clone()));
    let lines = a.out.take();
    assert_eq!(lines[1], format!("↓ file 7: downloading to {}", dest.display()));
    a.on_message(ServerMsg::FileChunk { id: 7, offset: 0, data: b"abc".to_vec().into() });
    a.on_message(ServerMsg::FileDone { id: 7, sha256: Sha256::digest(b"abc").into() });
    let done = format!("↓ a.txt: 100%, saved to {} (3 B, SHA-256 verified)", dest.display());
    assert_eq!(a.out.take(), [done]);
    assert_eq!(std::fs::read(&dest).expect("saved"), b"abc");
    // A download cut off by a lost connection is deleted; without reconnecting, the session ends.
    let partial = dir.join("b.txt");
    let _ = std::fs::remove_file(&partial);
    a.start_download("8", Some(partial.clone()));
    a.out.take();
    assert_eq!(a.on_closed(ClientError::Closed), Some(Ending::Lost));
    let lost = ["! download of file 8 abandoned", "! disconnected: the server closed the connection"];
    assert_eq!(a.out.take(), lost);
    assert!(!partial.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn typed_requests_go_to_the_live_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut a = app();
    a.attach(Client::connect(&ConnectOptions::new("127.0.0.1", port)).expect("connect"));
    a.on_line("/rooms");
    a.on_line("hello");
    assert!(a.out.take().is_empty(), "sent, nothing to say yet");
    a.on_message(ServerMsg::ListRooms { rooms: vec![("general".into(), 1)], next: None });
    a.on_message(ServerMsg::RoomMsgAck { id: 1, ts_ms: 2 });
    assert_eq!(a.out.take(), ["Rooms (1):\n  general  1 user", "[general] alice: hello"]);
}

fn room_msg(id: u64, from: &str, text: &str, history: bool) -> ServerMsg<'static> {
    ServerMsg::RoomMsg {
        id,
        ts_ms: 1_700_000_000_000,
        room: "general".into(),
        from: from.to_string().into(),
        text: text.to_string().into(),
        history,
    }
}

#[test]
fn replays_never_show_a_message_twice() {
    let mut a = app();
    a.on_message(room_msg(10, "bob", "one", false));
    a.on_message(room_msg(11, "bob", "two", true));
    // After a reconnect the server replays its history: only the new message shows.
    a.on_message(room_msg(10, "bob", "one", true));
    a.on_message(room_msg(11, "bob", "two", true));
    a.on_message(room_msg(12, "bob", "three", true));
    assert_eq!(a.out.take(), ["[general] bob: one", "[general] (history) bob: two", "[general] (history) bob: three"]);
    // A live message is always shown, even with an id seen before (a restarted server).
    a.on_message(room_msg(10, "carol", "new", false));
    assert_eq!(a.out.take(), ["[general] carol: new"]);
    // My own acknowledged message is not shown again when replayed.
    a.outstanding.push(Req::Room { text: "mine".into() });
    a.on_message(ServerMsg::RoomMsgAck { id: 20, ts_ms: 1 });
    a.on_message(room_msg(20, "alice", "mine", true));
    assert_eq!(a.out.take(), ["[general] alice: mine"]);
}

#[test]
fn names_for_completion_follow_the_session() {
    let mut a = app();
    a.on_message(room_msg(1, "bob", "hi", false));
    a.on_message(ServerMsg::ListUsers {
        room: "general".into(),
        users: vec!["alice".into(), "carol".into()],
        next: None,
    });
    a.on_message(ServerMsg::ListRooms { rooms: vec![("general".into(), 2), ("tech".into(), 1)], next: None });
    let users = |a: &App| crate::client::complete::complete("/msg ", 5, &a.names()).1;
    assert_eq!(users(&a), ["alice", "bob", "carol"]);
    let left =
        ServerMsg::SystemMsg { kind: SystemKind::Leave, room: "general".into(), user: "bob".into(), text: "".into() };
    a.on_message(left);
    assert_eq!(users(&a), ["alice", "carol"]);
    assert_eq!(crate::client::complete::complete("/join t", 7, &a.names()).1, ["tech"]);
}

#[test]
fn get_by_short_id_index_or_name_into_a_directory() {
    let dir = std::env::temp_dir().join(format!("chatproto-app-get-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut a = app();
    let id = 1_234_567_890_123_456;
    let files = vec![crate::protocol::FileEntry { id, name: "a.txt".into(), size: 3, from: "bob".into() }];
    a.on_message(ServerMsg::ListFiles { room: "general".into(), files, next: None });
    let listing = a.out.take();
    assert!(listing[0].contains("#1") && listing[0].contains("3456  a.txt"), "{listing:?}");
    for (what, dest) in [("3456", dir.join("a.txt")), ("#1", dir.join("a.txt.1")), ("a.txt", dir.join("a.txt.2"))] {
        a.start_download(what, Some(dir.clone()));
        assert_eq!(a.out.take()[0], format!("↓ file {id}: downloading to {}", dest.display()), "{what}");
        a.on_message(ServerMsg::FileChunk { id, offset: 0, data: b"abc".to_vec().into() });
        a.on_message(ServerMsg::FileDone { id, sha256: Sha256::digest(b"abc").into() });
        a.out.take();
        assert_eq!(std::fs::read(&dest).expect("saved"), b"abc", "{what}");
    }
    a.start_download("nope", Some(dir.clone()));
    assert_eq!(a.out.take(), ["! no file matches 'nope'; /files lists the files of your room"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_kick_ends_the_session_without_reconnecting() {
    let mut a = app();
    a.config.reconnect = true;
    let kick = "you were disconnected by an administrator";
    a.on_message(ServerMsg::ErrorMsg { code: ErrorCode::Forbidden, text: kick.into() });
    a.out.take();
    assert_eq!(a.on_closed(ClientError::Closed), Some(Ending::Lost));
    let lines = a.out.take();
    assert_eq!(lines[1], format!("*** removed by an administrator: {kick}; not reconnecting"));
}
