//! Stream reassembly: frames dribbled one byte per write, and many frames in one write.

use crate::support::{
    is_room_msg, room_msgs, server, server_with, unlimited_config, Client, ClientMsg, ServerMsg, WireFormat,
};

/// LOGIN, a room message and a PING, sent one byte per write; everything must decode.
fn bytewise(format: WireFormat) {
    let server = server();
    let mut peer = Client::login_new(server.addr, WireFormat::Binary, "peer");
    let mut c = Client::connect(server.addr, format);
    let text = "dribbled, one byte at a time: ünïcödé ✓";
    let mut bytes = c.encode(&ClientMsg::Login { username: "slowpoke".into(), credential: None, since: None });
    bytes.extend(c.encode(&ClientMsg::RoomMsg { text: text.into() }));
    bytes.extend(c.encode(&ClientMsg::Ping { token: 42 }));
    c.send_bytewise(&bytes);
    assert!(matches!(c.recv(), ServerMsg::LoginAck { username, .. } if username == "slowpoke"));
    assert!(matches!(c.recv(), ServerMsg::RoomMsgAck { .. }));
    assert_eq!(c.recv(), ServerMsg::Pong { token: 42 });
    let got = peer.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. }));
    assert!(is_room_msg(&got, text), "{got:?}");
    assert!(matches!(&got, ServerMsg::RoomMsg { from, .. } if from == "slowpoke"));
}

#[test]
fn binary_frames_one_byte_per_write() {
    bytewise(WireFormat::Binary);
}

#[test]
fn json_lines_one_byte_per_write() {
    bytewise(WireFormat::Json);
}

/// 300 room messages in one write; the peer gets all of them, in order, and the sender 300 acks.
fn batched(format: WireFormat) {
    let server = server_with(unlimited_config());
    let mut peer = Client::login_new(server.addr, WireFormat::Binary, "peer");
    let mut c = Client::login_new(server.addr, format, "batcher");
    peer.sync();
    let texts: Vec<String> = (0..300).map(|i| format!("batched message {i:03} {}", "x".repeat(i % 50))).collect();
    let mut bytes = Vec::new();
    for t in &texts {
        bytes.extend(c.encode(&ClientMsg::RoomMsg { text: t.as_str().into() }));
    }
    c.send_raw(&bytes);
    let replies = c.sync();
    let ids: Vec<u64> = replies
        .iter()
        .map(|m| match m {
            ServerMsg::RoomMsgAck { id, .. } => *id,
            other => panic!("only acks expected, got {other:?}"),
        })
        .collect();
    assert_eq!(ids.len(), texts.len());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase");
    let got = room_msgs(&peer.sync());
    let want: Vec<(String, String)> = texts.iter().map(|t| ("batcher".to_string(), t.clone())).collect();
    assert_eq!(got, want);
}

#[test]
fn many_binary_frames_in_one_write() {
    batched(WireFormat::Binary);
}

#[test]
fn many_json_lines_in_one_write() {
    batched(WireFormat::Json);
}

#[test]
fn json_tolerates_whitespace_crlf_and_blank_lines() {
    let server = server();
    let mut peer = Client::login_new(server.addr, WireFormat::Binary, "peer");
    let mut c = Client::connect(server.addr, WireFormat::Json);
    // Leading whitespace selects JSON too (a person typing into nc).
    let mut bytes = b"\r\n  {\"type\":\"login\",\"username\":\"typist\"}\r\n\n\n".to_vec();
    bytes.extend_from_slice(b"{\"type\":\"room_msg\",\"text\":\"a\\nb \\u00e9\"}  \r\n");
    c.send_raw(&bytes);
    assert!(matches!(c.recv(), ServerMsg::LoginAck { username, .. } if username == "typist"));
    assert!(matches!(c.recv(), ServerMsg::RoomMsgAck { .. }));
    let got = peer.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. }));
    assert!(is_room_msg(&got, "a\nb é"), "{got:?}");
}

#[test]
fn big_frames_split_at_odd_places() {
    // Frames near the size limits, written in uneven pieces that straddle frame boundaries.
    let server = server();
    let mut peer = Client::login_new(server.addr, WireFormat::Json, "peer");
    let mut c = Client::login_new(server.addr, WireFormat::Binary, "chunker");
    peer.sync();
    let texts: Vec<String> =
        (0..40).map(|i| char::from(b'a' + (i % 26) as u8).to_string().repeat(8 * 1024 - i)).collect();
    let mut bytes = Vec::new();
    for t in &texts {
        bytes.extend(c.encode(&ClientMsg::RoomMsg { text: t.as_str().into() }));
    }
    let mut rest = &bytes[..];
    let mut step = 1;
    while !rest.is_empty() {
        let n = step.min(rest.len());
        c.send_raw(&rest[..n]);
        rest = &rest[n..];
        step = step * 7 % 10_007 + 1;
    }
    assert_eq!(c.sync().len(), texts.len());
    let got: Vec<String> = room_msgs(&peer.sync()).into_iter().map(|(_, t)| t).collect();
    assert_eq!(got.len(), texts.len(), "every message arrives");
    if let Some(i) = (0..texts.len()).find(|&i| got[i] != texts[i]) {
        panic!("message {i} differs: {} bytes arrived, {} were sent", got[i].len(), texts[i].len());
    }
}
