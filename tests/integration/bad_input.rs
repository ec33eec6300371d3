//! Every kind of bad input: the offender gets the right error code, recoverable errors leave its
//! connection usable, framing errors close it, and in every case two normal clients in the same
//! room keep chatting.

use crate::support::{is_notice, is_room_msg, raw, server, Client, ErrorCode, Msg, ServerMsg, SystemKind, WireFormat};

/// What happens to the offender after its bad input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum After {
    /// ERROR_MSG, then the connection carries on.
    Continues,
    /// ERROR_MSG, then the server closes the connection.
    Closed,
}

/// One bad-input scenario.
struct Case {
    /// The offender's format.
    format: WireFormat,
    /// Log the offender in before the bad input (otherwise the bad bytes are its first).
    logged_in: bool,
    /// The bad bytes.
    bytes: Vec<u8>,
    /// The error code expected in the ERROR_MSG.
    code: ErrorCode,
    after: After,
}

/// Two bystanders chat after the offender's input, in both directions.
fn bystanders_still_chat(alice: &mut Client, bob: &mut Client, tag: &str) {
    let a = format!("alice after {tag}");
    alice.say(&a);
    bob.recv_until(|m| is_room_msg(m, &a));
    let b = format!("bob after {tag}");
    bob.say(&b);
    alice.recv_until(|m| is_room_msg(m, &b));
}

fn run(tag: &str, case: Case) {
    let server = server();
    let mut alice = Client::login_new(server.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(server.addr, WireFormat::Json, "bob");
    bystanders_still_chat(&mut alice, &mut bob, "setup");

    let mut bad = Client::connect(server.addr, case.format);
    if case.logged_in {
        bad.login("offender");
        alice.recv_until(|m| is_notice(m, SystemKind::Join, "offender"));
        bob.recv_until(|m| is_notice(m, SystemKind::Join, "offender"));
    }
    // The server may close (and reset) while a long input is still being written.
    let sent = bad.try_send_raw(&case.bytes);
    assert!(sent.is_ok() || case.after == After::Closed, "{tag}: sending failed: {sent:?}");

    match case.after {
        After::Continues => {
            assert_eq!(bad.recv_error(), case.code, "{tag}: error code");
            // The offender's connection still works: a room message goes through.
            let text = format!("offender recovered after {tag}");
            bad.say(&text);
            assert!(
                matches!(bad.recv_until(|m| !matches!(m, ServerMsg::SystemMsg { .. })), ServerMsg::RoomMsgAck { .. }),
                "{tag}: ack after recovery"
            );
            alice.recv_until(|m| is_room_msg(m, &text));
            bob.recv_until(|m| is_room_msg(m, &text));
        }
        After::Closed => {
            let frames = bad.expect_closed();
            let errors: Vec<&Msg> = frames.iter().filter(|m| matches!(m, ServerMsg::ErrorMsg { .. })).collect();
            assert!(
                matches!(errors.as_slice(), [ServerMsg::ErrorMsg { code, .. }] if *code == case.code),
                "{tag}: one ERROR_MSG {:?} before the close, got {frames:?}",
                case.code
            );
            if case.logged_in {
                alice.recv_until(|m| is_notice(m, SystemKind::Disconnect, "offender"));
                bob.recv_until(|m| is_notice(m, SystemKind::Disconnect, "offender"));
            }
        }
    }
    bystanders_still_chat(&mut alice, &mut bob, tag);
    // Nothing unexpected reached the bystanders.
    for c in [&mut alice, &mut bob] {
        let extra = c.sync();
        assert!(extra.iter().all(|m| !matches!(m, ServerMsg::ErrorMsg { .. })), "{tag}: {extra:?}");
    }
}

fn binary(bytes: Vec<u8>, code: ErrorCode, after: After) -> Case {
    Case { format: WireFormat::Binary, logged_in: true, bytes, code, after }
}

fn json(line: &str, code: ErrorCode, after: After) -> Case {
    Case { format: WireFormat::Json, logged_in: true, bytes: line.as_bytes().to_vec(), code, after }
}

#[test]
fn binary_unknown_type_code() {
    run("unknown type", binary(raw::frame(0x7f, 0, b""), ErrorCode::UnknownType, After::Continues));
}

#[test]
fn binary_unknown_type_code_with_a_body() {
    run("unknown type+body", binary(raw::frame(0x13, 0, &[1, 2, 3, 4, 5]), ErrorCode::UnknownType, After::Continues));
}

#[test]
fn binary_reserved_flag_bits() {
    run(
        "bad flags",
        binary(raw::frame(raw::ROOM_MSG, 0x80, &raw::text16(b"hi")), ErrorCode::BadFlags, After::Continues),
    );
}

#[test]
fn binary_invalid_utf8_text() {
    let body = raw::text16(&[b'o', b'k', 0xff, 0xfe]);
    run("bad utf-8", binary(raw::frame(raw::ROOM_MSG, 0, &body), ErrorCode::BadUtf8, After::Continues));
}

#[test]
fn binary_text_over_the_limit() {
    let body = raw::text16(&vec![b'a'; 8 * 1024 + 1]);
    run("long text", binary(raw::frame(raw::ROOM_MSG, 0, &body), ErrorCode::FieldTooLong, After::Continues));
}

#[test]
fn binary_trailing_bytes() {
    let mut body = raw::text16(b"hi");
    body.extend_from_slice(&[0, 0]);
    run("trailing", binary(raw::frame(raw::ROOM_MSG, 0, &body), ErrorCode::Malformed, After::Continues));
}

#[test]
fn binary_field_past_the_end_of_the_body() {
    // Text length says 5, only 1 byte follows.
    run("truncated", binary(raw::frame(raw::ROOM_MSG, 0, &[0, 5, b'h']), ErrorCode::Malformed, After::Continues));
}

#[test]
fn binary_server_only_type_from_a_client() {
    let mut body = raw::name8(b"me");
    body.extend(raw::name8(b"general"));
    run("login_ack from client", binary(raw::frame(2, 0, &body), ErrorCode::UnknownType, After::Continues));
}

#[test]
fn binary_bad_magic_closes() {
    let f = raw::frame_with(0x4351, 1, raw::ROOM_MSG, 0, &raw::text16(b"hi"));
    run("bad magic", binary(f, ErrorCode::BadMagic, After::Closed));
}

#[test]
fn binary_bad_magic_mid_stream_closes() {
    run("garbage magic", binary(b"XXXXXXXXXXXXXXXX".to_vec(), ErrorCode::BadMagic, After::Closed));
}

#[test]
fn binary_bad_version_closes() {
    let f = raw::frame_with(0x4350, 2, raw::ROOM_MSG, 0, &raw::text16(b"hi"));
    run("bad version", binary(f, ErrorCode::BadVersion, After::Closed));
}

#[test]
fn binary_oversized_length_closes_from_the_header_alone() {
    // Only the 9-byte header: the server must not wait for 4 GiB of body.
    let header = [0x43, 0x50, 1, raw::ROOM_MSG, 0, 0xff, 0xff, 0xff, 0xff];
    run("huge length", binary(header.to_vec(), ErrorCode::FrameTooLarge, After::Closed));
}

#[test]
fn binary_length_just_over_the_limit_closes() {
    let len = (64 * 1024 + 1) as u32;
    let mut header = vec![0x43, 0x50, 1, raw::ROOM_MSG, 0];
    header.extend_from_slice(&len.to_be_bytes());
    run("length limit+1", binary(header, ErrorCode::FrameTooLarge, After::Closed));
}

#[test]
fn binary_bad_first_frame_before_login_closes() {
    let f = raw::frame_with(0x4350, 9, 1, 0, &raw::name8(b"x"));
    run("bad version first", Case { logged_in: false, ..binary(f, ErrorCode::BadVersion, After::Closed) });
}

#[test]
fn json_malformed_line_continues() {
    run("malformed json", json("{not json at all\n", ErrorCode::Malformed, After::Continues));
}

#[test]
fn json_not_an_object_continues() {
    run("json array", json("[1,2,3]\n", ErrorCode::Malformed, After::Continues));
}

#[test]
fn json_trailing_data_after_the_object() {
    run("json trailing", json("{\"type\":\"room_msg\",\"text\":\"x\"} junk\n", ErrorCode::Malformed, After::Continues));
}

#[test]
fn json_field_of_the_wrong_type() {
    run("json wrong type", json("{\"type\":\"room_msg\",\"text\":5}\n", ErrorCode::Malformed, After::Continues));
}

#[test]
fn json_lone_surrogate_escape() {
    run(
        "json surrogate",
        json("{\"type\":\"room_msg\",\"text\":\"\\ud800\"}\n", ErrorCode::Malformed, After::Continues),
    );
}

#[test]
fn json_unknown_type() {
    run("unknown json type", json("{\"type\":\"shout\",\"text\":\"HI\"}\n", ErrorCode::UnknownType, After::Continues));
}

#[test]
fn json_missing_type() {
    run("missing type", json("{\"text\":\"hi\"}\n", ErrorCode::Malformed, After::Continues));
}

#[test]
fn json_missing_field() {
    run("missing field", json("{\"type\":\"room_msg\"}\n", ErrorCode::Malformed, After::Continues));
}

#[test]
fn json_server_only_type_from_a_client() {
    let line = "{\"type\":\"login_ack\",\"username\":\"me\",\"room\":\"general\"}\n";
    run("json login_ack", json(line, ErrorCode::UnknownType, After::Continues));
}

#[test]
fn json_text_over_the_limit() {
    let line = format!("{{\"type\":\"room_msg\",\"text\":\"{}\"}}\n", "a".repeat(8 * 1024 + 1));
    run("json long text", json(&line, ErrorCode::FieldTooLong, After::Continues));
}

#[test]
fn json_invalid_utf8() {
    let mut bytes = b"{\"type\":\"room_msg\",\"text\":\"ok".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"\"}\n");
    run("json bad utf-8", Case { bytes, ..json("", ErrorCode::BadUtf8, After::Continues) });
}

#[test]
fn json_line_over_the_limit_without_newline_closes() {
    let mut bytes = b"{\"type\":\"room_msg\",\"text\":\"".to_vec();
    bytes.resize(64 * 1024 + 100, b'a');
    run("json long line", Case { bytes, ..json("", ErrorCode::FrameTooLarge, After::Closed) });
}

#[test]
fn garbage_first_bytes_close_with_a_json_error() {
    run(
        "hello",
        Case {
            format: WireFormat::Json, // the server answers an unknown first byte in JSON
            logged_in: false,
            bytes: b"hello\n".to_vec(),
            code: ErrorCode::BadMagic,
            after: After::Closed,
        },
    );
}

#[test]
fn a_request_in_no_known_protocol_closes_with_a_json_error() {
    // HTTP methods are answered over HTTP now (`websocket.rs`); other text is not ChatProto.
    let bytes = b"SSH-2.0-OpenSSH_9.6\r\n".to_vec();
    run(
        "not-chatproto",
        Case { format: WireFormat::Json, logged_in: false, bytes, code: ErrorCode::BadMagic, after: After::Closed },
    );
}

#[test]
fn tls_hello_on_a_plaintext_only_server_closes_quietly() {
    // TLS off: a ClientHello-looking first byte is not ChatProto; the server just closes.
    let server = server();
    let mut alice = Client::login_new(server.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(server.addr, WireFormat::Json, "bob");
    let mut bad = Client::connect(server.addr, WireFormat::Binary);
    let _ = bad.try_send_raw(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]);
    bad.expect_closed();
    bystanders_still_chat(&mut alice, &mut bob, "tls on plain");
}

#[test]
fn several_recoverable_errors_in_one_write_each_get_an_answer() {
    let server = server();
    let mut alice = Client::login_new(server.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(server.addr, WireFormat::Json, "bob");
    let mut bad = Client::login_new(server.addr, WireFormat::Binary, "offender");
    let mut bytes = raw::frame(0x7f, 0, b"");
    bytes.extend(raw::frame(raw::ROOM_MSG, 0x02, &raw::text16(b"x")));
    bytes.extend(bad.encode(&crate::support::ClientMsg::RoomMsg { text: "between".into() }));
    bytes.extend(raw::frame(raw::ROOM_MSG, 0, &raw::text16(&[0xc3])));
    bad.send_raw(&bytes);
    let got: Vec<Msg> = bad.sync().into_iter().filter(|m| !matches!(m, ServerMsg::SystemMsg { .. })).collect();
    let codes: Vec<Option<ErrorCode>> = got
        .iter()
        .map(|m| match m {
            ServerMsg::ErrorMsg { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec![Some(ErrorCode::UnknownType), Some(ErrorCode::BadFlags), None, Some(ErrorCode::BadUtf8)]);
    assert!(matches!(got[2], ServerMsg::RoomMsgAck { .. }));
    alice.recv_until(|m| is_room_msg(m, "between"));
    bob.recv_until(|m| is_room_msg(m, "between"));
    bystanders_still_chat(&mut alice, &mut bob, "burst");
}
