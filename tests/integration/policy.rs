//! Policy limits: login and idle deadlines, the connection caps, TLS-only, and the message rate
//! limit. Each limit is set small so the test is quick; waits stay bounded by the support
//! deadline and nothing asserts how long anything took.

use crate::support::{
    is_notice, is_room_msg, server_with, summary, tls_config, wait_for_stats, Client, ClientMsg, ErrorCode, Msg,
    ServerConfig, ServerMsg, SystemKind, TempDir, WireFormat,
};
use std::time::Duration;

/// The one ERROR_MSG among `frames`, which must end with the close.
#[track_caller]
fn closing_error(frames: &[Msg]) -> ErrorCode {
    match frames {
        [.., ServerMsg::ErrorMsg { code, .. }] => *code,
        other => panic!("expected a last ERROR_MSG before the close, got {}", summary(other)),
    }
}

#[test]
fn a_connection_that_never_logs_in_is_closed_with_timeout() {
    let mut cfg = ServerConfig::loopback();
    cfg.login_timeout = Duration::from_millis(300);
    let server = server_with(cfg);
    let mut member = Client::login_new(server.addr, WireFormat::Binary, "member");
    let mut silent = Client::connect(server.addr, WireFormat::Json); // sends nothing at all
    let mut talker = Client::connect(server.addr, WireFormat::Binary); // talks, never logs in
    talker.send(&ClientMsg::Ping { token: 1 });
    assert_eq!(talker.recv(), ServerMsg::Pong { token: 1 });
    assert_eq!(closing_error(&silent.expect_closed()), ErrorCode::Timeout);
    assert_eq!(closing_error(&talker.expect_closed()), ErrorCode::Timeout);
    // The logged-in member is not affected (it has been quiet all along).
    member.send(&ClientMsg::ListUsers { after: None });
    assert!(matches!(member.recv(), ServerMsg::ListUsers { users, .. } if users == ["member"]));
}

#[test]
fn quiet_clients_are_pinged_and_closed_only_if_they_stay_quiet() {
    let mut cfg = ServerConfig::loopback();
    cfg.idle_ping = Duration::from_millis(300);
    cfg.idle_timeout = Duration::from_millis(1200);
    let server = server_with(cfg);
    let mut mute = Client::login_new(server.addr, WireFormat::Binary, "mute");
    let mut polite = Client::login_new(server.addr, WireFormat::Json, "polite");
    mute.sync();
    // The polite client answers every server PING until the mute one has been closed.
    let mut pongs = 0;
    let mut mute_gone = false;
    while !mute_gone {
        match polite.recv() {
            ServerMsg::Ping { token } => {
                polite.send(&ClientMsg::Pong { token });
                pongs += 1;
            }
            m if is_notice(&m, SystemKind::Disconnect, "mute") => mute_gone = true,
            other => panic!("polite got {other:?}"),
        }
    }
    assert!(pongs >= 1, "the server pinged the quiet client");
    let frames = mute.expect_closed();
    assert!(frames.iter().any(|m| matches!(m, ServerMsg::Ping { .. })), "mute was pinged first");
    assert_eq!(closing_error(&frames), ErrorCode::Timeout);
    polite.send(&ClientMsg::ListUsers { after: None });
    let m = polite.recv_until(|m| matches!(m, ServerMsg::ListUsers { .. }));
    assert!(matches!(m, ServerMsg::ListUsers { users, .. } if users == ["polite"]));
}

#[test]
fn past_max_connections_new_connections_get_server_full() {
    let mut cfg = ServerConfig::loopback();
    cfg.max_connections = 2;
    let server = server_with(cfg);
    let mut a = Client::login_new(server.addr, WireFormat::Binary, "a");
    let mut b = Client::login_new(server.addr, WireFormat::Binary, "b");
    // Refusals are JSON lines (the client's format is not known yet), whatever it speaks.
    let mut third = Client::connect(server.addr, WireFormat::Json);
    assert_eq!(closing_error(&third.expect_closed()), ErrorCode::ServerFull);
    a.say("still fine");
    assert!(is_room_msg(&b.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. })), "still fine"));
    // A freed slot is usable again.
    b.shutdown();
    drop(b);
    a.recv_until(|m| is_notice(m, SystemKind::Disconnect, "b"));
    wait_for_stats(&server, "one connection", |s| s.connections_open == 1);
    Client::login_new(server.addr, WireFormat::Json, "c");
}

#[test]
fn the_per_address_cap_applies_when_loopback_is_not_exempt() {
    let mut cfg = ServerConfig::loopback();
    cfg.exempt_loopback = false;
    cfg.max_per_address = 2;
    let server = server_with(cfg);
    let a = Client::login_new(server.addr, WireFormat::Binary, "a");
    let _b = Client::login_new(server.addr, WireFormat::Binary, "b");
    let mut third = Client::connect(server.addr, WireFormat::Json);
    assert_eq!(closing_error(&third.expect_closed()), ErrorCode::ServerFull);
    a.shutdown();
    drop(a);
    wait_for_stats(&server, "one connection", |s| s.connections_open == 1);
    Client::login_new(server.addr, WireFormat::Json, "c");
}

/// A TLS-only server, a logged-in TLS client, and a plaintext client speaking `format` that
/// must be refused with AUTH_FAILED while the TLS client carries on.
fn tls_only_refuses(format: WireFormat) {
    let dir = TempDir::new("tls-only");
    let mut cfg = tls_config(&dir);
    cfg.tls.tls_only = true;
    let server = server_with(cfg);
    let mut secure = Client::connect_tls(server.addr, WireFormat::Binary, &dir.cert());
    secure.login("secure");
    let mut plain = Client::connect(server.addr, format);
    plain.send(&ClientMsg::Login { username: "plain".into(), credential: None, since: None });
    assert_eq!(closing_error(&plain.expect_closed()), ErrorCode::AuthFailed, "{format:?}");
    secure.send(&ClientMsg::ListUsers { after: None });
    assert!(matches!(secure.recv(), ServerMsg::ListUsers { users, .. } if users == ["secure"]));
}

#[test]
fn a_tls_only_server_refuses_plaintext_json() {
    tls_only_refuses(WireFormat::Json);
}

#[test]
fn a_tls_only_server_refuses_plaintext_binary_in_binary() {
    tls_only_refuses(WireFormat::Binary);
}

#[test]
fn the_rate_limit_drops_excess_messages_then_disconnects_a_flooder() {
    let mut cfg = ServerConfig::loopback();
    // Practically no refill during the test: exactly `burst` frames pass.
    cfg.rate_limit.rate = 0.001;
    cfg.rate_limit.burst = 5.0;
    cfg.rate_limit.disconnect_after = 10;
    let server = server_with(cfg);
    let mut peer = Client::login_new(server.addr, WireFormat::Binary, "peer");
    let mut fast = Client::login_new(server.addr, WireFormat::Json, "fast");
    peer.sync();
    // LOGIN took one token: four more messages pass, the next five are refused.
    let mut burst = Vec::new();
    for i in 0..9 {
        burst.extend(fast.encode(&ClientMsg::RoomMsg { text: format!("m{i}").into() }));
    }
    fast.send_raw(&burst);
    let replies: Vec<Msg> = (0..9).map(|_| fast.recv()).collect();
    let acks = replies.iter().filter(|m| matches!(m, ServerMsg::RoomMsgAck { .. })).count();
    let limited =
        replies.iter().filter(|m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::RateLimited, .. })).count();
    assert_eq!((acks, limited), (4, 5), "{}", summary(&replies));
    for i in 0..4 {
        let text = format!("m{i}");
        assert!(is_room_msg(&peer.recv(), &text));
    }
    // Five more refusals in a row (ten in all): the flooder is cut off.
    let mut more = Vec::new();
    for _ in 0..5 {
        more.extend(fast.encode(&ClientMsg::RoomMsg { text: "again".into() }));
    }
    let _ = fast.try_send_raw(&more);
    let frames = fast.expect_closed();
    assert_eq!(closing_error(&frames), ErrorCode::RateLimited);
    let m = peer.recv();
    assert!(is_notice(&m, SystemKind::Disconnect, "fast"), "the peer heard no flood, only the disconnect: {m:?}");
}
