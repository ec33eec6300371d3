//! Malformed input beside the pair: oversized length prefixes, truncated frames, bad magic, bad
//! UTF-8, garbage JSON. Recoverable errors get ERROR_MSG and the connection carries on; framing
//! errors get ERROR_MSG and close that connection only.

use super::pair::Pair;
use crate::support::{
    random_bytes, raw, server, summary, wait_for_stats, Client, ClientMsg, ErrorCode, ServerConfig, ServerMsg,
    WireFormat,
};

/// True if `frames` hold a ROOM_MSG (nothing bad may ever reach a room).
fn has_room_msg(frames: &[crate::support::Msg]) -> bool {
    frames.iter().any(|m| matches!(m, ServerMsg::RoomMsg { .. }))
}

#[test]
fn length_prefix_of_4_gib_closes_only_that_connection() {
    let server = server();
    let pair = Pair::start(server.addr);
    // Logged in, then a header announcing a 4 GiB body (and nothing after it).
    let mut c = Client::login_new(server.addr, WireFormat::Binary, "big");
    c.send_raw(&raw::frame_claiming(raw::ROOM_MSG, u32::MAX, b""));
    c.expect_error_then_closed(ErrorCode::FrameTooLarge);
    // As the very first bytes of a connection, with 2 GiB and a few body bytes behind it.
    let mut c = Client::connect(server.addr, WireFormat::Binary);
    c.send_raw(&raw::frame_claiming(raw::LOGIN, 0x8000_0000, b"xyz"));
    c.expect_error_then_closed(ErrorCode::FrameTooLarge);
    // One byte over the configured limit.
    let mut c = Client::login_new(server.addr, WireFormat::Binary, "big2");
    let limit = ServerConfig::loopback().limits.max_frame as u32;
    c.send_raw(&raw::frame_claiming(raw::ROOM_MSG, limit + 1, b""));
    c.expect_error_then_closed(ErrorCode::FrameTooLarge);
    wait_for_stats(&server, "three protocol errors", |s| s.protocol_errors >= 3);
    wait_for_stats(&server, "only the pair left", |s| s.connections_open == 2);
    pair.finish();
}

#[test]
fn truncated_frames_wait_for_the_rest_or_are_refused() {
    let server = server();
    let pair = Pair::start(server.addr);
    let mut c = Client::login_new(server.addr, WireFormat::Binary, "trunc");
    let mut watcher = Client::login_new(server.addr, WireFormat::Json, "watcher");

    // A frame cut in two: nothing happens until the rest arrives, then it is a normal message.
    let whole = c.encode(&ClientMsg::RoomMsg { text: "x".repeat(100).into() });
    for cut in [1, 2, 5, 8, 9, 10, 60, whole.len() - 1] {
        c.send_raw(&whole[..cut]);
        let early = c.poll(std::time::Duration::from_millis(20)).expect("still open");
        let replied = early.iter().any(|m| matches!(m, ServerMsg::RoomMsgAck { .. } | ServerMsg::ErrorMsg { .. }));
        assert!(!replied, "a reply before the frame was complete (cut at {cut}): {}", summary(&early));
        c.send_raw(&whole[cut..]);
        c.recv_until(|m| matches!(m, ServerMsg::RoomMsgAck { .. }));
    }
    let got = watcher.sync();
    assert_eq!(got.iter().filter(|m| matches!(m, ServerMsg::RoomMsg { .. })).count(), 8, "{}", summary(&got));

    // Fields that run past the end of their frame: MALFORMED, and the connection carries on.
    let mut text = (200u16).to_be_bytes().to_vec();
    text.extend_from_slice(b"only ten b");
    c.send_raw(&raw::frame(raw::ROOM_MSG, 0, &text));
    c.expect_error(ErrorCode::Malformed);
    c.send_raw(&raw::frame(raw::ROOM_MSG, 0, &[0]));
    c.expect_error(ErrorCode::Malformed);
    c.send_raw(&raw::frame(raw::ROOM_MSG, 0, &[]));
    c.expect_error(ErrorCode::Malformed);
    // A LOGIN whose name8 claims 50 bytes on a fresh connection.
    let mut fresh = Client::connect(server.addr, WireFormat::Binary);
    fresh.send_raw(&raw::frame(raw::LOGIN, 0, &[50, b'a', b'b']));
    fresh.expect_error(ErrorCode::Malformed);
    fresh.login("fresh");

    // A JSON line cut short (but terminated): MALFORMED, carries on.
    let mut j = Client::login_new(server.addr, WireFormat::Json, "jtrunc");
    j.send_raw(b"{\"type\":\"room_msg\",\"te\n");
    j.expect_error(ErrorCode::Malformed);
    j.say("after the truncated line");
    c.sync();
    let got = watcher.sync();
    assert_eq!(got.iter().filter(|m| matches!(m, ServerMsg::RoomMsg { .. })).count(), 1, "{}", summary(&got));
    pair.finish();
}

#[test]
fn bad_magic_and_version_close_only_that_connection() {
    let server = server();
    let pair = Pair::start(server.addr);
    // Logged in, then a frame with the magic byte-swapped.
    let mut c = Client::login_new(server.addr, WireFormat::Binary, "magic");
    c.send_raw(&raw::frame_with(0x5043, 1, raw::ROOM_MSG, 0, &raw::text16(b"hi")));
    c.expect_error_then_closed(ErrorCode::BadMagic);
    // Logged in, then 'C' followed by junk: the magic is wrong from its second byte.
    let mut c = Client::login_new(server.addr, WireFormat::Binary, "magic2");
    c.send_raw(b"C\x00\x01\x04");
    c.expect_error_then_closed(ErrorCode::BadMagic);
    // A first byte that is neither ChatProto nor an HTTP method: refused in JSON, the readable
    // format (an HTTP request gets an HTTP answer: see `websocket.rs`).
    for (i, first) in [&b"\x00\x01\x02"[..], b"SSH-2.0-x\r\n", b"\xff\xfe"].into_iter().enumerate() {
        let mut c = Client::connect(server.addr, WireFormat::Json);
        c.name = format!("first-byte-{i}");
        c.send_raw(first);
        c.expect_error_then_closed(ErrorCode::BadMagic);
    }
    // Version 2.
    let mut c = Client::login_new(server.addr, WireFormat::Binary, "version");
    c.send_raw(&raw::frame_with(0x4350, 2, raw::ROOM_MSG, 0, &raw::text16(b"hi")));
    c.expect_error_then_closed(ErrorCode::BadVersion);
    // A random binary stream after a valid magic byte.
    let mut c = Client::login_new(server.addr, WireFormat::Binary, "noise");
    let mut noise = b"CP".to_vec();
    noise.extend(random_bytes(0xB0D1, 4096));
    let _ = c.try_send_raw(&noise);
    c.expect_closed();
    wait_for_stats(&server, "only the pair left", |s| s.connections_open == 2);
    pair.finish();
}

#[test]
fn bad_utf8_is_refused_and_the_connection_carries_on() {
    let server = server();
    let pair = Pair::start(server.addr);
    let mut watcher = Client::login_new(server.addr, WireFormat::Binary, "watcher");
    let mut b = Client::login_new(server.addr, WireFormat::Binary, "utf8-bin");
    for bad in [&b"\xff\xfe"[..], b"ok then \xc3\x28", b"\xed\xa0\x80 surrogate", b"\xf0\x9f\x98"] {
        b.send_raw(&raw::frame(raw::ROOM_MSG, 0, &raw::text16(bad)));
        b.expect_error(ErrorCode::BadUtf8);
    }
    // Before login, in the user name.
    let mut fresh = Client::connect(server.addr, WireFormat::Binary);
    fresh.send_raw(&raw::frame(raw::LOGIN, 0, &raw::name8(b"bad\xffname")));
    fresh.expect_error(ErrorCode::BadUtf8);
    fresh.login("fresh");

    let mut j = Client::login_new(server.addr, WireFormat::Json, "utf8-json");
    for bad in
        [&b"{\"type\":\"room_msg\",\"text\":\"\xff\"}\n"[..], b"{\"type\":\"room_msg\",\"text\":\"a\xc3\x28b\"}\n"]
    {
        j.send_raw(bad);
        j.expect_error(ErrorCode::BadUtf8);
    }
    b.say("valid after bad");
    j.say("valid after bad too");
    b.sync();
    j.sync();
    let got = watcher.sync();
    let texts: Vec<String> = got
        .iter()
        .filter_map(|m| match m {
            ServerMsg::RoomMsg { text, .. } => Some(text.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["valid after bad", "valid after bad too"], "only the valid messages reach the room");
    pair.finish();
}

#[test]
fn garbage_json_is_refused_line_by_line() {
    let server = server();
    let pair = Pair::start(server.addr);
    let mut watcher = Client::login_new(server.addr, WireFormat::Binary, "watcher");
    let mut j = Client::login_new(server.addr, WireFormat::Json, "garbage");
    let deep_array = format!("{}\n", "[".repeat(60_000));
    let deep_field = format!("{{\"type\":\"room_msg\",\"text\":\"t\",\"x\":{}\n", "{\"a\":".repeat(10_000));
    let lines: Vec<(&str, ErrorCode)> = vec![
        ("not json at all\n", ErrorCode::Malformed),
        ("{\"type\":\n", ErrorCode::Malformed),
        ("[1,2,3]\n", ErrorCode::Malformed),
        ("{\"type\":\"room_msg\"}\n", ErrorCode::Malformed),
        ("{\"type\":\"no_such_type\",\"text\":\"x\"}\n", ErrorCode::UnknownType),
        ("{\"text\":\"no type\"}\n", ErrorCode::Malformed),
        ("{\"type\":42}\n", ErrorCode::Malformed),
        ("{\"type\":\"room_msg\",\"text\":7}\n", ErrorCode::Malformed),
        ("{\"type\":\"room_msg\",\"text\":\"a\"}{\"x\":1}\n", ErrorCode::Malformed),
        ("{\"type\":\"room_msg\",\"text\":\"a\",\"text\":\"b\"}\n", ErrorCode::Malformed),
        ("{\"type\":\"room_msg\",\"text\":\"\\ud800\"}\n", ErrorCode::Malformed),
        ("{\"type\":\"login_ack\",\"username\":\"x\",\"room\":\"y\"}\n", ErrorCode::UnknownType),
        (&deep_array, ErrorCode::Malformed),
        (&deep_field, ErrorCode::Malformed),
    ];
    for (line, code) in &lines {
        j.send_raw(line.as_bytes());
        let got = j.recv_until(|m| matches!(m, ServerMsg::ErrorMsg { .. }));
        match got {
            // Either MALFORMED or BAD_UTF8 is a fair answer for a lone surrogate.
            ServerMsg::ErrorMsg { code: c, .. }
                if c == *code || (line.contains("ud800") && c == ErrorCode::BadUtf8) => {}
            other => panic!("line {:?}: expected {code:?}, got {other:?}", &line[..line.len().min(60)]),
        }
    }
    // Random bytes after a '{' (no newline inside, so exactly one refused line).
    let mut noise = b"{".to_vec();
    noise.extend(random_bytes(0x15, 2000).into_iter().map(|b| if b == b'\n' { b'x' } else { b }));
    noise.push(b'\n');
    j.send_raw(&noise);
    let before = j.sync();
    assert!(
        before.iter().any(|m| matches!(m, ServerMsg::ErrorMsg { .. })),
        "the noise line is refused: {}",
        summary(&before)
    );
    j.say("still here");
    j.sync();
    let got = watcher.sync();
    assert!(has_room_msg(&got), "the valid message arrives: {}", summary(&got));
    assert_eq!(got.iter().filter(|m| matches!(m, ServerMsg::RoomMsg { .. })).count(), 1, "{}", summary(&got));
    // Finally a line over the frame limit: framing is lost, the connection closes.
    let long = vec![b'a'; ServerConfig::loopback().limits.max_frame + 10];
    let _ = j.try_send_raw(&long);
    j.expect_error_then_closed(ErrorCode::FrameTooLarge);
    pair.finish();
}
