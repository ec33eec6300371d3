//! Unit tests of the interactive session: typed lines and server messages in, printed lines
//! (captured) and state out, with no terminal and, mostly, no connection.

use super::*;
use crate::protocol::SystemKind;
use sha2::{Digest, Sha256};
use std::net::TcpListener;

/// A session for alice in `general`, not connected, printing into a capture.
fn app() -> App {
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
    a.on_message(ServerMsg::ListRooms { rooms: vec![("general".into(), 1)] });
    a.on_message(ServerMsg::RoomMsgAck { id: 1, ts_ms: 2 });
    assert_eq!(a.out.take(), ["Rooms (1):\n  general  1 user", "[general] alice: hello"]);
}
