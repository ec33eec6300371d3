//! Unit tests of the parent module.

use super::*;
use crate::protocol::{ClientMsg, ErrorCode, Limits, ServerMsg, SystemKind, WireFormat};
use bytes::BytesMut;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A one-connection fake server on loopback running `script` on the accepted socket.
fn fake_server<F>(script: F) -> (ConnectOptions, JoinHandle<()>)
where
    F: FnOnce(TcpStream) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let t = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        script(sock)
    });
    let mut opts = ConnectOptions::new("127.0.0.1", port);
    opts.connect_timeout = Duration::from_secs(5);
    (opts, t)
}

/// Reads one client message the way the server will.
fn read_client(sock: &mut TcpStream, fmt: WireFormat, buf: &mut Vec<u8>) -> ClientMsg<'static> {
    loop {
        if let Some((m, n)) = fmt.decode_client(buf, &Limits::default()).expect("decode") {
            let m = m.into_owned();
            buf.drain(..n);
            return m;
        }
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).expect("read");
        assert!(n > 0, "client hung up");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn write_server(sock: &mut TcpStream, fmt: WireFormat, msg: &ServerMsg<'_>) {
    let mut out = BytesMut::new();
    fmt.encode_server(msg, &mut out);
    sock.write_all(&out).expect("write");
}

fn ack() -> ServerMsg<'static> {
    ServerMsg::LoginAck { username: "alice".into(), room: "general".into() }
}

fn notice() -> ServerMsg<'static> {
    let text = "welcome".into();
    ServerMsg::SystemMsg { kind: SystemKind::Info, room: "".into(), user: "".into(), text }
}

#[test]
fn login_buffers_early_frames_in_both_formats() {
    for fmt in [WireFormat::Binary, WireFormat::Json] {
        let (mut opts, t) = fake_server(move |mut s| {
            let mut buf = Vec::new();
            let login = read_client(&mut s, fmt, &mut buf);
            let want = ClientMsg::Login { username: "alice".into(), credential: Some("k".into()), since: None };
            assert_eq!(login, want);
            write_server(&mut s, fmt, &notice());
            write_server(&mut s, fmt, &ack());
        });
        opts.format = fmt;
        let mut c = Client::connect(&opts).expect("connect");
        let info = c.login("alice", Some("k")).expect("login");
        assert_eq!(info, LoginInfo { username: "alice".into(), room: "general".into() });
        assert_eq!(c.recv().expect("early frame"), notice());
        assert!(matches!(c.recv(), Err(ClientError::Closed)));
        t.join().expect("server");
    }
}

#[test]
fn login_rejected_carries_code_and_reason() {
    let (opts, t) = fake_server(|mut s| {
        read_client(&mut s, WireFormat::Binary, &mut Vec::new());
        let reason = "name in use".into();
        write_server(
            &mut s,
            WireFormat::Binary,
            &ServerMsg::LoginReject { code: ErrorCode::UsernameTaken, reason, retry_ms: None },
        );
    });
    let mut c = Client::connect(&opts).expect("connect");
    match c.login("alice", None) {
        Err(ClientError::LoginRejected { code: ErrorCode::UsernameTaken, reason }) => {
            assert_eq!(reason, "name in use")
        }
        other => panic!("{other:?}"),
    }
    t.join().expect("server");
    assert!(matches!(c.login("bad name", None), Err(ClientError::InvalidUsername { .. })));
}

#[test]
fn login_times_out_when_the_server_is_silent() {
    let (mut opts, t) = fake_server(|s| {
        thread::sleep(Duration::from_millis(600));
        drop(s);
    });
    opts.connect_timeout = Duration::from_millis(200);
    let mut c = Client::connect(&opts).expect("connect");
    let err = c.login("alice", None).expect_err("should time out");
    assert!(matches!(err, ClientError::Timeout { during: "waiting for the login reply from", .. }), "{err}");
    t.join().expect("server");
}

#[test]
fn pings_are_answered_and_partial_frames_wait() {
    let (opts, t) = fake_server(|mut s| {
        write_server(&mut s, WireFormat::Binary, &ServerMsg::Ping { token: 7 });
        assert_eq!(read_client(&mut s, WireFormat::Binary, &mut Vec::new()), ClientMsg::Pong { token: 7 });
        let mut out = BytesMut::new();
        WireFormat::Binary.encode_server(&notice(), &mut out);
        s.write_all(&out[..5]).expect("write");
        thread::sleep(Duration::from_millis(150));
        s.write_all(&out[5..]).expect("write");
    });
    let mut c = Client::connect(&opts).expect("connect");
    assert!(c.recv_timeout(Duration::from_millis(100)).expect("recv").is_none());
    assert_eq!(c.recv().expect("recv"), notice());
    t.join().expect("server");
}

#[test]
fn protocol_garbage_is_fatal() {
    let (opts, t) = fake_server(|mut s| s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").expect("write"));
    let mut c = Client::connect(&opts).expect("connect");
    assert!(matches!(c.recv(), Err(ClientError::Protocol(_))));
    t.join().expect("server");
}

#[test]
fn session_sends_and_delivers_events() {
    let (opts, t) = fake_server(|mut s| {
        let mut buf = Vec::new();
        let got = read_client(&mut s, WireFormat::Binary, &mut buf);
        assert_eq!(got, ClientMsg::RoomMsg { text: "hi".into() });
        write_server(&mut s, WireFormat::Binary, &ServerMsg::RoomMsgAck { id: 1, ts_ms: 2 });
    });
    let c = Client::connect(&opts).expect("connect");
    let (session, events) = c.spawn_channel();
    assert!(session.send(ClientMsg::RoomMsg { text: "hi".into() }));
    let first = events.recv_timeout(Duration::from_secs(5)).expect("event");
    assert!(matches!(first, Event::Message(ServerMsg::RoomMsgAck { id: 1, ts_ms: 2 })));
    let second = events.recv_timeout(Duration::from_secs(5)).expect("event");
    assert!(matches!(second, Event::Closed(ClientError::Closed)), "{second:?}");
    t.join().expect("server");
    session.close();
}

#[test]
fn connect_errors_are_classified() {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind").port();
    let err = Client::connect(&ConnectOptions::new("127.0.0.1", port)).err();
    assert!(matches!(err, Some(ClientError::Refused { .. })), "{err:?}");
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains(&format!("is the server running on 127.0.0.1:{port}")), "{msg}");
    let err = Client::connect(&ConnectOptions::new("no-such-host.invalid", 5555)).err();
    assert!(matches!(err, Some(ClientError::Dns { .. })), "{err:?}");
}

#[test]
fn tls_failures_are_reported_as_tls() {
    let (mut opts, t) = fake_server(drop);
    opts.tls = Some(ClientTrust::SystemRoots);
    let err = Client::connect(&opts).err();
    assert!(matches!(err, Some(ClientError::Tls { .. })), "{err:?}");
    assert!(!err.map(|e| e.is_transient()).unwrap_or(true));
    t.join().expect("server");
}
