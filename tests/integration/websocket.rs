//! HTTP and WebSocket on the chat port: the embedded web app with its headers, the opening
//! handshake and its refusals, JSON over WebSocket beside binary and JSON-lines clients in one
//! room, the framing rules with their close codes, the limits that apply to every transport,
//! and `wss://` + `https://` on the TLS port.

use crate::support::{
    frames_until_closed, http_get, is_notice, is_room_msg, masked, raw_connect_small_rcvbuf, server, server_with,
    tls_config, unlimited_config, upgrade_request, wait_for_stats, ws_connect, ws_connect_tls, ws_raw, wsframe, Client,
    ClientMsg, ErrorCode, Msg, ServerConfig, ServerMsg, StatsSnapshot, SystemKind, TempDir, WireFormat, WsFrame,
    DEADLINE,
};
use std::io::Write;
use std::time::Instant;

/// The close frame that ends `frames` (after any text frames).
#[track_caller]
fn last_close(frames: &[WsFrame]) -> u16 {
    let last = frames.last().unwrap_or_else(|| panic!("no frame before the close"));
    last.close_code().unwrap_or_else(|| panic!("the last frame is not a close: {frames:?}"))
}

/// Sends raw bytes on an upgraded socket and returns the close code the server ends with.
#[track_caller]
fn close_code_after(addr: std::net::SocketAddr, bytes: &[u8]) -> u16 {
    let mut tcp = ws_raw(addr);
    tcp.write_all(bytes).expect("send frames");
    last_close(&frames_until_closed(&mut tcp))
}

/// A login message as a masked text frame.
fn login_frame(name: &str) -> Vec<u8> {
    masked(true, wsframe::OP_TEXT, format!(r#"{{"type":"login","username":"{name}"}}"#).as_bytes())
}

#[test]
fn the_web_app_is_served_with_its_type_and_security_headers() {
    let server = server();
    let (status, head, body) = http_get(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Type: text/html; charset=utf-8\r\n"), "{head}");
    assert!(head.contains("Content-Security-Policy: default-src 'self';"), "{head}");
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
    assert!(head.contains("X-Content-Type-Options: nosniff\r\n"), "{head}");
    assert!(head.contains("Cache-Control: no-cache\r\n") && head.contains("ETag: \""), "{head}");
    assert!(body.starts_with(b"<!doctype html>") || body.starts_with(b"<!DOCTYPE html>"), "the page itself");
    let len: usize = head.split("Content-Length: ").nth(1).and_then(|s| s.split('\r').next()?.parse().ok()).unwrap();
    assert_eq!(len, body.len());
    // The ETag answers a revalidation with 304 and no body.
    let etag = head.split("ETag: ").nth(1).and_then(|s| s.split('\r').next()).unwrap().to_string();
    let req = format!("GET /index.html HTTP/1.1\r\nIf-None-Match: {etag}\r\n\r\n");
    let (status, _, body) = http_get(server.addr, req.as_bytes());
    assert_eq!((status, body.len()), (304, 0));
    let (status, _, body) = http_get(server.addr, b"HEAD / HTTP/1.1\r\n\r\n");
    assert_eq!((status, body.len()), (200, 0));
    wait_for_stats(&server, "three HTTP requests", |s| s.http_requests == 3);
}

#[test]
fn the_public_settings_say_how_to_sign_in_and_never_the_secret() {
    let mut cfg = ServerConfig::loopback();
    cfg.services.auth = chatproto::config::AuthMode::Passkey;
    cfg.services.passkey = Some("sesame-secret".into());
    cfg.limits.max_frame = 20_000;
    let server = server_with(cfg);
    let (status, head, body) = http_get(server.addr, b"GET /config.json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Type: application/json\r\n"), "{head}");
    assert!(head.contains("Content-Security-Policy: default-src 'self';"), "{head}");
    let text = String::from_utf8(body).expect("UTF-8");
    assert!(!text.contains("sesame"), "the passkey is never served: {text}");
    let site: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(site["auth"], "passkey", "{text}");
    assert_eq!(site["max_frame"], 20_000, "{text}");
    assert_eq!(site["files"], true, "{text}");
    assert_eq!(site["servers"], serde_json::json!([]), "no cluster, no other servers: {text}");
    let (status, _, body) = http_get(server.addr, b"HEAD /config.json HTTP/1.1\r\n\r\n");
    assert_eq!((status, body.len()), (200, 0));
}

#[test]
fn bad_requests_get_short_http_errors_and_the_server_carries_on() {
    let server = server();
    let host = server.addr.to_string();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unknown path", b"GET /nope.js HTTP/1.1\r\n\r\n".to_vec(), 404),
        ("wrong method", b"POST /ws HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_vec(), 405),
        ("a body", b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".to_vec(), 413),
        ("not an upgrade", b"GET /ws HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("bad key", upgrade_request(&host, "").replace_all("dGhlIHNhbXBsZSBub25jZQ==", "short"), 400),
        ("missing version", upgrade_request(&host, "").replace_all("Sec-WebSocket-Version: 13\r\n", ""), 400),
        ("old version", upgrade_request(&host, "").replace_all("Version: 13", "Version: 8"), 400),
        ("HTTP/1.0", upgrade_request(&host, "").replace_all("HTTP/1.1", "HTTP/1.0"), 400),
        ("cross origin", upgrade_request(&host, "Origin: http://elsewhere.example\r\n"), 403),
        ("garbage", b"GET \x01 HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("huge head", [b"GET / HTTP/1.1\r\nX-Big: ".to_vec(), vec![b'a'; 9000], b"\r\n\r\n".to_vec()].concat(), 431),
    ];
    for (what, req, want) in cases {
        let (status, head, body) = http_get(server.addr, &req);
        assert_eq!(status, want, "{what}: {head}");
        assert!(!body.is_empty() && body.len() < 200, "{what}: a short text body");
    }
    // The same-origin upgrade is accepted, and the server is fine.
    let origin = format!("Origin: http://{host}\r\n");
    let mut c = Client::connect(server.addr, WireFormat::Json);
    assert!(c.upgrade(&upgrade_request(&host, &origin)).unwrap().starts_with("HTTP/1.1 101 "));
    c.login("after");
}

/// Lets `replace_all` work on request bytes.
trait ReplaceAll {
    fn replace_all(&self, from: &str, to: &str) -> Vec<u8>;
}

impl ReplaceAll for Vec<u8> {
    fn replace_all(&self, from: &str, to: &str) -> Vec<u8> {
        String::from_utf8_lossy(self).replace(from, to).into_bytes()
    }
}

#[test]
fn websocket_binary_and_json_clients_chat_in_one_room() {
    let server = server();
    let mut web = ws_connect(server.addr);
    web.login("web");
    let mut bin = Client::login_new(server.addr, WireFormat::Binary, "bin");
    let mut json = Client::login_new(server.addr, WireFormat::Json, "json");
    web.sync();
    bin.sync();
    web.say("hello from the browser");
    assert!(is_room_msg(&bin.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. })), "hello from the browser"));
    assert!(is_room_msg(&json.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. })), "hello from the browser"));
    bin.say("hello from the terminal é😀");
    let m = web.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. }));
    assert!(is_room_msg(&m, "hello from the terminal é😀"), "{m:?}");
    web.send(&ClientMsg::PrivateMsg { to: "json".into(), text: "psst".into() });
    let m = json.recv_until(|m| matches!(m, ServerMsg::PrivateMsgDelivery { .. }));
    assert!(matches!(&m, ServerMsg::PrivateMsgDelivery { from, text, .. } if from == "web" && text == "psst"), "{m:?}");
    let by_format = |s: &StatsSnapshot| (s.open_websocket, s.open_websocket_tls, s.open_binary, s.open_json);
    wait_for_stats(&server, "one connection per format", |s| by_format(s) == (1, 0, 1, 1));
}

#[test]
fn a_fragmented_message_with_a_ping_between_its_fragments_arrives_whole() {
    let server = server();
    let mut bin = Client::login_new(server.addr, WireFormat::Binary, "bin");
    let mut tcp = ws_raw(server.addr);
    let text = br#"{"type":"room_msg","text":"in three parts"}"#;
    let frames = [
        login_frame("frag"),
        masked(false, wsframe::OP_TEXT, &text[..10]),
        masked(true, wsframe::OP_PING, b"are you there"),
        masked(false, wsframe::OP_CONTINUATION, &text[10..20]),
        masked(true, wsframe::OP_CONTINUATION, &text[20..]),
    ]
    .concat();
    // One byte at a time: every split point of every header and payload.
    for b in &frames {
        tcp.write_all(std::slice::from_ref(b)).unwrap();
    }
    let m = bin.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. }));
    assert!(is_room_msg(&m, "in three parts"), "{m:?}");
    tcp.write_all(&masked(true, wsframe::OP_CLOSE, &1000u16.to_be_bytes())).unwrap();
    let got = frames_until_closed(&mut tcp);
    let pong = got.iter().find(|f| f.opcode == wsframe::OP_PONG).expect("a pong");
    assert_eq!(pong.payload, b"are you there");
    assert_eq!(last_close(&got), 1000, "the close handshake echoes the code");
}

#[test]
fn the_close_handshake_echoes_the_peers_code() {
    let server = server();
    let code = close_code_after(server.addr, &masked(true, wsframe::OP_CLOSE, &[0x0f, 0xa0, b'b', b'y', b'e']));
    assert_eq!(code, 4000);
}

#[test]
fn a_shutdown_tells_websocket_clients_and_closes_with_going_away() {
    let server = server();
    let mut tcp = ws_raw(server.addr);
    tcp.write_all(&login_frame("leaver")).unwrap();
    wait_for_stats(&server, "the login", |s| s.logins == 1);
    server.stop().expect("clean stop");
    let frames = frames_until_closed(&mut tcp);
    let texts: Vec<String> = frames.iter().map(|f| String::from_utf8_lossy(&f.payload).into_owned()).collect();
    assert!(texts.iter().any(|t| t.contains("shutting down")), "{texts:?}");
    assert_eq!(last_close(&frames), 1001);
}

#[test]
fn the_login_deadline_applies_to_a_websocket_that_never_logs_in() {
    let mut cfg = ServerConfig::loopback();
    cfg.login_timeout = std::time::Duration::from_millis(300);
    let server = server_with(cfg);
    let mut tcp = ws_raw(server.addr);
    let frames = frames_until_closed(&mut tcp);
    let first = String::from_utf8_lossy(&frames[0].payload).into_owned();
    assert!(first.starts_with(r#"{"type":"error_msg","code":"#), "{first}");
    assert_eq!(last_close(&frames), 1008, "a policy close after the ERROR_MSG");
}

#[test]
fn framing_violations_close_with_their_codes() {
    let mut cfg = ServerConfig::loopback();
    cfg.limits.max_frame = 1024;
    let server = server_with(cfg);
    let mut unmasked = bytes::BytesMut::new();
    wsframe::write_frame(&mut unmasked, wsframe::OP_TEXT, br#"{"type":"ping","token":1}"#, None);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked frame", unmasked.to_vec(), 1002),
        ("bad UTF-8", masked(true, wsframe::OP_TEXT, b"{\"type\":\"\xff\"}"), 1007),
        ("frame over max-frame", masked(true, wsframe::OP_TEXT, &[b' '; 1025]), 1009),
        (
            "message over max-frame in fragments",
            [masked(false, wsframe::OP_TEXT, &[b' '; 600]), masked(true, wsframe::OP_CONTINUATION, &[b' '; 600])]
                .concat(),
            1009,
        ),
        ("reserved bits", vec![0xC1, 0x80, 0, 0, 0, 0], 1002),
        ("continuation first", masked(true, wsframe::OP_CONTINUATION, b"x"), 1002),
        ("binary message", masked(true, wsframe::OP_BINARY, b"x"), 1003),
        ("long ping", masked(true, wsframe::OP_PING, &[0; 126]), 1002),
    ];
    for (what, bytes, want) in cases {
        assert_eq!(close_code_after(server.addr, &bytes), want, "{what}");
    }
    wait_for_stats(&server, "eight protocol errors", |s| s.protocol_errors >= 8);
    // Bad JSON in a good frame costs only an ERROR_MSG, like on a JSON-lines connection.
    let mut web = ws_connect(server.addr);
    web.send_raw(&masked(true, wsframe::OP_TEXT, b"{not json"));
    web.expect_error(ErrorCode::Malformed);
    web.login("still-here");
}

#[test]
fn the_rate_limit_applies_to_websocket_clients() {
    let mut cfg = ServerConfig::loopback();
    cfg.rate_limit.rate = 0.001;
    cfg.rate_limit.burst = 5.0;
    cfg.rate_limit.disconnect_after = 10;
    let server = server_with(cfg);
    let mut fast = ws_connect(server.addr);
    fast.login("fast");
    let burst: Vec<u8> =
        (0..9).flat_map(|i| fast.encode(&ClientMsg::RoomMsg { text: format!("m{i}").into() })).collect();
    fast.send_raw(&burst);
    let replies: Vec<Msg> = (0..9).map(|_| fast.recv()).collect();
    let limited =
        replies.iter().filter(|m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::RateLimited, .. })).count();
    assert_eq!(limited, 5, "{replies:?}");
    let more: Vec<u8> = (0..5).flat_map(|_| fast.encode(&ClientMsg::RoomMsg { text: "again".into() })).collect();
    let _ = fast.try_send_raw(&more);
    let frames = fast.expect_closed();
    assert!(matches!(frames.last(), Some(ServerMsg::ErrorMsg { code: ErrorCode::RateLimited, .. })), "{frames:?}");
}

#[test]
fn a_websocket_reader_that_falls_behind_is_cut_off_as_a_slow_consumer() {
    let mut cfg = unlimited_config();
    cfg.max_outbound_bytes = 64 * 1024;
    let server = server_with(cfg);
    let tcp = raw_connect_small_rcvbuf(server.addr, 4096);
    let mut sloth = Client::from_tcp(tcp, WireFormat::Json);
    assert!(sloth.upgrade(&upgrade_request(&server.addr.to_string(), "")).unwrap().starts_with("HTTP/1.1 101"));
    sloth.login("sloth");
    sloth.sync();
    let mut flooder = Client::login_new(server.addr, WireFormat::Binary, "flooder");
    let frame = flooder.encode(&ClientMsg::RoomMsg { text: "f".repeat(4000).into() });
    let batch: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * 16).collect();
    let deadline = Instant::now() + DEADLINE * 2;
    let slow = || server.handle.stats().slow_consumer_disconnects >= 1;
    for _ in 0..2_000 {
        if slow() || Instant::now() > deadline {
            break;
        }
        flooder.send_raw(&batch);
        flooder.sync();
    }
    assert!(slow(), "no slow-consumer disconnect: {:?}", server.handle.stats());
    flooder.say("the room keeps flowing");
    assert!(flooder.sync().iter().any(|m| matches!(m, ServerMsg::RoomMsgAck { .. })));
}

#[test]
fn wss_and_https_share_the_tls_port() {
    let dir = TempDir::new("wss");
    let server = server_with(tls_config(&dir));
    let mut web = ws_connect_tls(server.addr, &dir.cert());
    web.login("secure-web");
    let mut bin = Client::login_new(server.addr, WireFormat::Binary, "plain-bin");
    web.sync();
    bin.say("to the TLS browser");
    assert!(is_room_msg(&web.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. })), "to the TLS browser"));
    web.say("back over wss");
    assert!(is_room_msg(&bin.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. })), "back over wss"));
    let s = wait_for_stats(&server, "one wss connection", |s| s.open_websocket_tls == 1);
    assert_eq!(s.open_websocket, 1);
    // A page over https: an HTTP request as the first decrypted bytes.
    let mut page = Client::connect_tls(server.addr, WireFormat::Json, &dir.cert());
    let head = page.upgrade(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("text/html"), "{head}");
}

#[test]
fn websocket_members_on_every_shard_get_a_room_message() {
    let mut cfg = ServerConfig::loopback();
    cfg.shards = 2;
    let server = server_with(cfg);
    let mut webs = Vec::new();
    // WebSocket clients until both shards hold one (the kernel spreads the connections).
    while server.handle.shard_stats().iter().any(|s| s.open_websocket == 0) {
        assert!(webs.len() < 64, "the kernel never spread connections over the shards");
        let mut c = ws_connect(server.addr);
        c.login(&format!("web{}", webs.len()));
        webs.push(c);
        let n = webs.len() as u64;
        wait_for_stats(&server, "the login counted", |s| s.logins == n);
    }
    let mut bin = Client::login_new(server.addr, WireFormat::Binary, "sender");
    // Everyone has seen the sender join (on their own shard or relayed) before it speaks.
    for c in &mut webs {
        c.recv_until(|m| is_notice(m, SystemKind::Join, "sender"));
    }
    bin.say("across shards");
    for c in &mut webs {
        let m = c.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. }));
        assert!(is_room_msg(&m, "across shards"), "{}: {m:?}", c.name);
    }
}

#[test]
fn a_tls_only_server_answers_plain_http_with_a_pointer_to_https() {
    let dir = TempDir::new("tls-only-http");
    let mut cfg = tls_config(&dir);
    cfg.tls.tls_only = true;
    let server = server_with(cfg);
    let (status, _, body) = http_get(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("https://"));
    let mut page = Client::connect_tls(server.addr, WireFormat::Json, &dir.cert());
    assert!(page.upgrade(b"GET / HTTP/1.1\r\n\r\n").unwrap().starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn a_request_head_in_two_reads_is_read_as_http_to_the_end() {
    let dir = TempDir::new("http-two-reads");
    let server = server_with(tls_config(&dir));
    // The second read starts with 0x16: it is the rest of the head, never a new TLS opening.
    let mut tcp = crate::support::raw_connect(server.addr);
    let first = b"GET /nope HTTP/1.1\r\nX-A: a";
    tcp.write_all(first).unwrap();
    wait_for_stats(&server, "the first part read", |s| s.bytes_in >= first.len() as u64);
    tcp.write_all(b"\x16\r\n\r\n").unwrap();
    let all = crate::support::read_until_closed(&mut tcp).unwrap();
    assert!(all.starts_with(b"HTTP/1.1 400 ") || all.starts_with(b"HTTP/1.1 404 "), "{all:?}");
}
