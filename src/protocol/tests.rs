//! Property and edge-case tests for the codec.
//!
//! - **Round trips**: proptest generates every `ClientMsg` and `ServerMsg` variant; each must
//!   encode and decode back to itself in both formats, using exactly the bytes it encoded to.
//! - **Streaming**: a valid stream cut at every byte boundary (and at random chunk sizes) decodes
//!   to the same messages when fed the way a connection's read buffer is.
//! - **Errors**: every decode failure with its exact kind, wire code, and fatal/skip length.
//! - **Golden bytes**: a few encodings pinned byte for byte, and an ignored test that prints the
//!   annotated hex dumps used in `docs/PROTOCOL.md`
//!   (`cargo test --lib protocol::tests::print_wire_examples -- --ignored --nocapture`).

use super::*;
use crate::protocol::binary::MAX_NAME_BYTES;
use bytes::BytesMut;
use proptest::prelude::*;
use std::borrow::Cow;

const FORMATS: [WireFormat; 2] = [WireFormat::Binary, WireFormat::Json];

fn limits() -> Limits {
    Limits::default()
}

fn owned(s: impl Into<String>) -> Str<'static> {
    Cow::Owned(s.into())
}

fn enc_client(f: WireFormat, m: &ClientMsg<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    f.encode_client(m, &mut out);
    out.to_vec()
}

fn enc_server(f: WireFormat, m: &ServerMsg<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    f.encode_server(m, &mut out);
    out.to_vec()
}

/// A binary frame built by hand, so tests can break any header field.
fn raw_frame(ty: u8, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x43, 0x50, VERSION, ty, flags];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Asserts a client decode fails with exactly `kind`, skipping `skip` bytes (`None` = fatal).
#[track_caller]
fn client_err(f: WireFormat, buf: &[u8], kind: DecodeErrorKind, skip: Option<usize>) -> DecodeError {
    let e = f.decode_client(buf, &limits()).expect_err("expected a decode error");
    assert_eq!(e, DecodeError { kind, skip });
    e
}

/// Asserts a server decode fails with exactly `kind`, skipping `skip` bytes (`None` = fatal).
#[track_caller]
fn server_err(f: WireFormat, buf: &[u8], kind: DecodeErrorKind, skip: Option<usize>) -> DecodeError {
    let e = f.decode_server(buf, &limits()).expect_err("expected a decode error");
    assert_eq!(e, DecodeError { kind, skip });
    e
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Cuts `s` at a char boundary so it is at most `max` bytes.
fn fit(mut s: String, max: usize) -> String {
    while s.len() > max {
        s.pop();
    }
    s
}

/// Names: valid UTF-8 of 0..=255 *bytes* (the binary u8 prefix counts bytes, not chars).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_#.-]{0,20}",
        3 => prop::collection::vec(any::<char>(), 0..=80)
            .prop_map(|v| fit(v.into_iter().collect(), MAX_NAME_BYTES)),
        1 => (0..=MAX_NAME_BYTES).prop_map(|n| "n".repeat(n)),
        // Multi-byte characters right up to the 255-byte edge: 3 ASCII + 63 × 4 bytes.
        1 => (0usize..=63).prop_map(|n| format!("abc{}", "😀".repeat(n))),
    ]
}

/// Texts: valid UTF-8 of 0..=max_text bytes, mostly short, sometimes at the limit.
fn text() -> impl Strategy<Value = String> {
    let max = Limits::default().max_text;
    prop_oneof![
        6 => prop::collection::vec(any::<char>(), 0..=64).prop_map(|v| v.into_iter().collect()),
        1 => prop::collection::vec(any::<char>(), 0..=2500).prop_map(move |v| fit(v.into_iter().collect(), max)),
        1 => (0..=max).prop_map(|n| "t".repeat(n)),
    ]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    any::<u8>().prop_map(ErrorCode::from_u8)
}

fn system_kind() -> impl Strategy<Value = SystemKind> {
    (0u8..=4).prop_map(SystemKind::from_u8)
}

fn client_msg() -> impl Strategy<Value = ClientMsg<'static>> {
    prop_oneof![
        (name(), prop::option::of(name()))
            .prop_map(|(u, c)| ClientMsg::Login { username: owned(u), credential: c.map(owned) }),
        text().prop_map(|t| ClientMsg::RoomMsg { text: owned(t) }),
        (name(), text()).prop_map(|(to, t)| ClientMsg::PrivateMsg { to: owned(to), text: owned(t) }),
        name().prop_map(|r| ClientMsg::JoinRoom { room: owned(r) }),
        Just(ClientMsg::ListUsers),
        Just(ClientMsg::ListRooms),
        any::<u64>().prop_map(|token| ClientMsg::Ping { token }),
        any::<u64>().prop_map(|token| ClientMsg::Pong { token }),
        Just(ClientMsg::Time),
        text().prop_map(|t| ClientMsg::Admin { command: owned(t) }),
        (name(), name()).prop_map(|(u, p)| ClientMsg::Register { username: owned(u), password: owned(p) }),
        (name(), any::<u64>(), any::<[u8; 32]>()).prop_map(|(n, size, sha256)| ClientMsg::FileOffer {
            name: owned(n),
            size,
            sha256
        }),
        (any::<u64>(), any::<u64>(), data()).prop_map(|(id, offset, d)| ClientMsg::FileChunk {
            id,
            offset,
            data: d.into()
        }),
        (any::<u64>(), any::<[u8; 32]>()).prop_map(|(id, sha256)| ClientMsg::FileDone { id, sha256 }),
        Just(ClientMsg::ListFiles),
        any::<u64>().prop_map(|id| ClientMsg::FileGet { id }),
    ]
}

/// File data: empty, small, or a whole default chunk (which must fit a frame in both formats).
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..=64),
        1 => prop::collection::vec(any::<u8>(), crate::services::files::CHUNK..=crate::services::files::CHUNK),
    ]
}

fn file_entry() -> impl Strategy<Value = FileEntry<'static>> {
    (any::<u64>(), name(), any::<u64>(), name()).prop_map(|(id, n, size, from)| FileEntry {
        id,
        name: owned(n),
        size,
        from: owned(from),
    })
}

fn server_msg() -> impl Strategy<Value = ServerMsg<'static>> {
    prop_oneof![
        (name(), name()).prop_map(|(u, r)| ServerMsg::LoginAck { username: owned(u), room: owned(r) }),
        (error_code(), text()).prop_map(|(code, t)| ServerMsg::LoginReject { code, reason: owned(t) }),
        (any::<u64>(), any::<u64>(), name(), name(), text(), any::<bool>()).prop_map(
            |(id, ts_ms, room, from, t, history)| ServerMsg::RoomMsg {
                id,
                ts_ms,
                room: owned(room),
                from: owned(from),
                text: owned(t),
                history,
            }
        ),
        (any::<u64>(), name(), name(), text()).prop_map(|(ts_ms, from, to, t)| {
            ServerMsg::PrivateMsgDelivery { ts_ms, from: owned(from), to: owned(to), text: owned(t) }
        }),
        name().prop_map(|r| ServerMsg::JoinRoom { room: owned(r) }),
        (name(), prop::collection::vec(name(), 0..6))
            .prop_map(|(r, us)| ServerMsg::ListUsers { room: owned(r), users: us.into_iter().map(owned).collect() }),
        prop::collection::vec((name(), any::<u32>()), 0..6)
            .prop_map(|rs| ServerMsg::ListRooms { rooms: rs.into_iter().map(|(n, c)| (owned(n), c)).collect() }),
        (system_kind(), name(), name(), text()).prop_map(|(kind, room, user, t)| ServerMsg::SystemMsg {
            kind,
            room: owned(room),
            user: owned(user),
            text: owned(t),
        }),
        (error_code(), text()).prop_map(|(code, t)| ServerMsg::ErrorMsg { code, text: owned(t) }),
        (any::<u64>(), any::<u64>()).prop_map(|(id, ts_ms)| ServerMsg::RoomMsgAck { id, ts_ms }),
        any::<u64>().prop_map(|token| ServerMsg::Ping { token }),
        any::<u64>().prop_map(|token| ServerMsg::Pong { token }),
        any::<u64>().prop_map(|ts_ms| ServerMsg::Time { ts_ms }),
        text().prop_map(|t| ServerMsg::Admin { text: owned(t) }),
        any::<u64>().prop_map(|id| ServerMsg::FileAccept { id }),
        (any::<u64>(), any::<u64>(), data()).prop_map(|(id, offset, d)| ServerMsg::FileChunk {
            id,
            offset,
            data: d.into()
        }),
        (any::<u64>(), any::<[u8; 32]>()).prop_map(|(id, sha256)| ServerMsg::FileDone { id, sha256 }),
        (any::<u64>(), name(), any::<u64>(), name(), name()).prop_map(|(id, n, size, from, room)| {
            ServerMsg::FileAvailable { id, name: owned(n), size, from: owned(from), room: owned(room) }
        }),
        (name(), prop::collection::vec(file_entry(), 0..6))
            .prop_map(|(room, files)| ServerMsg::ListFiles { room: owned(room), files }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

/// Checks the framing of one encoded message: binary header fields, or a single JSON line.
fn check_framing(f: WireFormat, bytes: &[u8], t: MsgType, flags: u8) -> Result<(), TestCaseError> {
    match f {
        WireFormat::Binary => {
            prop_assert!(bytes.len() >= HEADER_LEN);
            prop_assert_eq!(&bytes[..3], &[0x43, 0x50, VERSION][..]);
            prop_assert_eq!(bytes[3], t as u8);
            prop_assert_eq!(bytes[4], flags);
            let len = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) as usize;
            prop_assert_eq!(len, bytes.len() - HEADER_LEN);
        }
        WireFormat::Json => {
            prop_assert_eq!(bytes.first(), Some(&b'{'));
            prop_assert_eq!(bytes.iter().position(|&b| b == b'\n'), Some(bytes.len() - 1));
            let prefix = format!("{{\"type\":\"{}\"", t.json_name());
            prop_assert!(bytes.starts_with(prefix.as_bytes()));
        }
        WireFormat::WebSocket => {
            let (h, payload) = ws::server_frame(bytes).ok().flatten().expect("a whole WebSocket frame");
            prop_assert_eq!((h.fin, h.opcode, payload.end), (true, ws::OP_TEXT, bytes.len()));
            prop_assert!(!bytes[payload].contains(&b'\n'));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn client_round_trip(msg in client_msg()) {
        for f in FORMATS {
            // Encoders append: whatever is already in the buffer stays untouched.
            let mut out = BytesMut::from(&b"xyz"[..]);
            f.encode_client(&msg, &mut out);
            prop_assert_eq!(&out[..3], b"xyz");
            let bytes = &out[3..];
            check_framing(f, bytes, msg.msg_type(), 0)?;
            let (got, used) = f.decode_client(bytes, &limits()).unwrap().expect("a whole frame");
            prop_assert_eq!(used, bytes.len(), "{} consumed length", f.name());
            prop_assert_eq!(&got, &msg, "{}", f.name());
        }
        // Over WebSocket: a masked frame, unwrapped in place into a line, decoded as JSON.
        let mut out = BytesMut::new();
        WireFormat::WebSocket.encode_client(&msg, &mut out);
        let mut buf = out.to_vec();
        let mut state = ws::Inbound::default();
        let mut unframer = ws::Unframer::new(&state, 1 << 20);
        prop_assert_eq!(unframer.next(&mut state, &mut buf), None);
        let (ready, len) = unframer.finish(&mut state, &mut buf);
        prop_assert_eq!(ready, len);
        let (got, used) = WireFormat::WebSocket.decode_client(&buf[..ready], &limits()).unwrap().expect("a line");
        prop_assert_eq!(used, ready);
        prop_assert_eq!(&got, &msg);
    }

    #[test]
    fn server_round_trip(msg in server_msg()) {
        for f in WireFormat::ALL {
            let mut out = BytesMut::from(&b"xyz"[..]);
            f.encode_server(&msg, &mut out);
            prop_assert_eq!(&out[..3], b"xyz");
            let bytes = &out[3..];
            let flags = if matches!(msg, ServerMsg::RoomMsg { history: true, .. }) { FLAG_HISTORY } else { 0 };
            check_framing(f, bytes, msg.msg_type(), flags)?;
            let (got, used) = f.decode_server(bytes, &limits()).unwrap().expect("a whole frame");
            prop_assert_eq!(used, bytes.len(), "{} consumed length", f.name());
            prop_assert_eq!(&got, &msg, "{}", f.name());
        }
    }
}

#[test]
fn names_at_the_255_byte_edge_round_trip() {
    for name in ["n".repeat(255), format!("abc{}", "😀".repeat(63)), format!("a{}", "é".repeat(127))] {
        assert_eq!(name.len(), 255);
        let msg = ClientMsg::JoinRoom { room: Cow::Borrowed(&name) };
        for f in FORMATS {
            let bytes = enc_client(f, &msg);
            assert_eq!(f.decode_client(&bytes, &limits()).unwrap(), Some((msg.clone(), bytes.len())));
        }
        assert_eq!(enc_client(WireFormat::Binary, &msg)[HEADER_LEN], 255);
    }
}

#[test]
fn text_at_max_text_round_trips_and_one_more_byte_does_not() {
    let max = limits().max_text;
    for f in FORMATS {
        let ok = ClientMsg::RoomMsg { text: owned("é".repeat(max / 2)) };
        let bytes = enc_client(f, &ok);
        assert_eq!(f.decode_client(&bytes, &limits()).unwrap(), Some((ok, bytes.len())));

        let long = ClientMsg::RoomMsg { text: owned(format!("x{}", "é".repeat(max / 2))) };
        let bytes = enc_client(f, &long);
        let e = client_err(
            f,
            &bytes,
            DecodeErrorKind::FieldTooLong { field: "text", len: max + 1, max },
            Some(bytes.len()),
        );
        assert_eq!(e.code(), ErrorCode::FieldTooLong);
        assert!(!e.is_fatal());
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming: feed the decoder the way a connection's read buffer does
// ---------------------------------------------------------------------------------------------

/// Appends `chunk` to `pending`, decodes every complete frame into `out`, keeps the leftovers.
fn feed<M>(
    pending: &mut Vec<u8>,
    chunk: &[u8],
    out: &mut Vec<M>,
    mut decode: impl FnMut(&[u8]) -> Result<Option<(M, usize)>, DecodeError>,
) {
    pending.extend_from_slice(chunk);
    let mut pos = 0;
    while let Some((msg, used)) = decode(&pending[pos..]).expect("a valid stream never errors") {
        assert!(used > 0, "a decoded frame must consume bytes");
        out.push(msg);
        pos += used;
    }
    pending.drain(..pos);
}

fn client_decoder(f: WireFormat) -> impl FnMut(&[u8]) -> Result<Option<(ClientMsg<'static>, usize)>, DecodeError> {
    move |b| f.decode_client(b, &limits()).map(|o| o.map(|(m, n)| (m.into_owned(), n)))
}

fn server_decoder(f: WireFormat) -> impl FnMut(&[u8]) -> Result<Option<(ServerMsg<'static>, usize)>, DecodeError> {
    move |b| f.decode_server(b, &limits()).map(|o| o.map(|(m, n)| (m.into_owned(), n)))
}

/// Decodes `stream` delivered in pieces cut at `cuts` (ascending offsets).
fn decode_in_pieces<M>(
    stream: &[u8],
    cuts: &[usize],
    mut decode: impl FnMut(&[u8]) -> Result<Option<(M, usize)>, DecodeError>,
) -> (Vec<M>, Vec<u8>) {
    let mut pending = Vec::new();
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        feed(&mut pending, &stream[from..cut], &mut out, &mut decode);
        from = cut;
    }
    (out, pending)
}

fn example_client_stream() -> Vec<ClientMsg<'static>> {
    vec![
        ClientMsg::Login { username: owned("zoë"), credential: Some(owned("pa ss\"word")) },
        ClientMsg::RoomMsg { text: owned("hello, 世界 🌍") },
        ClientMsg::RoomMsg { text: owned("") },
        ClientMsg::PrivateMsg { to: owned("bob"), text: owned("line1\nline2\ttab \\ \u{0}") },
        ClientMsg::JoinRoom { room: owned("#rust") },
        ClientMsg::ListUsers,
        ClientMsg::ListRooms,
        ClientMsg::Ping { token: u64::MAX },
        ClientMsg::Pong { token: 0 },
        ClientMsg::FileChunk { id: 3, offset: 9, data: vec![0, b'\n', 0xff, b'{'].into() },
        ClientMsg::FileOffer { name: owned("../a b.txt"), size: 4, sha256: [7; 32] },
    ]
}

fn example_server_stream() -> Vec<ServerMsg<'static>> {
    vec![
        ServerMsg::LoginAck { username: owned("zoë"), room: owned("general") },
        ServerMsg::LoginReject { code: ErrorCode::UsernameTaken, reason: owned("taken") },
        ServerMsg::RoomMsg {
            id: 1,
            ts_ms: 1_700_000_000_000,
            room: owned("general"),
            from: owned("alice"),
            text: owned("hi 👋"),
            history: true,
        },
        ServerMsg::RoomMsg {
            id: 2,
            ts_ms: 1_700_000_000_001,
            room: owned("general"),
            from: owned("bob"),
            text: owned("quote \" and backslash \\"),
            history: false,
        },
        ServerMsg::PrivateMsgDelivery { ts_ms: 5, from: owned("a"), to: owned("b"), text: owned("psst") },
        ServerMsg::JoinRoom { room: owned("rust") },
        ServerMsg::ListUsers { room: owned("rust"), users: vec![owned("alice"), owned("ünï")] },
        ServerMsg::ListUsers { room: owned("empty"), users: vec![] },
        ServerMsg::ListRooms { rooms: vec![(owned("general"), 3), (owned("rust"), u32::MAX)] },
        ServerMsg::SystemMsg { kind: SystemKind::Leave, room: owned("general"), user: owned("a"), text: owned("") },
        ServerMsg::ErrorMsg { code: ErrorCode::Internal, text: owned("oops") },
        ServerMsg::RoomMsgAck { id: 9, ts_ms: 10 },
        ServerMsg::Ping { token: 1 },
        ServerMsg::Pong { token: 2 },
        ServerMsg::FileChunk { id: 3, offset: 0, data: vec![b'\n'; 40].into() },
        ServerMsg::FileDone { id: 3, sha256: [0xee; 32] },
    ]
}

#[test]
fn json_file_fields_are_checked() {
    let f = WireFormat::Json;
    let cases: [(&[u8], &str); 4] = [
        (b"{\"type\":\"file_done\",\"id\":1,\"sha256\":\"abc\"}\n", "sha256"),
        (b"{\"type\":\"file_chunk\",\"id\":1,\"offset\":0,\"data\":\"!!\"}\n", "base64"),
        (b"{\"type\":\"file_chunk\",\"id\":1,\"data\":\"\"}\n", "offset"),
        (b"{\"type\":\"file_offer\",\"name\":\"a\",\"size\":1}\n", "sha256"),
    ];
    for (line, what) in cases {
        let e = f.decode_client(line, &limits()).unwrap_err();
        assert_eq!(e.skip, Some(line.len()), "{what}");
        assert_eq!(e.code(), ErrorCode::Malformed, "{what}");
        assert!(e.to_string().contains(what), "{e} should name {what}");
    }
}

#[test]
fn client_stream_cut_at_every_byte_decodes_the_same() {
    let msgs = example_client_stream();
    for f in FORMATS {
        let mut stream = Vec::new();
        msgs.iter().for_each(|m| stream.extend(enc_client(f, m)));
        for cut in 0..=stream.len() {
            let (got, left) = decode_in_pieces(&stream, &[cut], client_decoder(f));
            assert_eq!(got, msgs, "{} cut at {cut}", f.name());
            assert!(left.is_empty(), "{} cut at {cut}: {} bytes left over", f.name(), left.len());
        }
        // One byte at a time, the worst case for a reader.
        let cuts: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(decode_in_pieces(&stream, &cuts, client_decoder(f)).0, msgs, "{} bytewise", f.name());
    }
}

#[test]
fn server_stream_cut_at_every_byte_decodes_the_same() {
    let msgs = example_server_stream();
    for f in FORMATS {
        let mut stream = Vec::new();
        msgs.iter().for_each(|m| stream.extend(enc_server(f, m)));
        for cut in 0..=stream.len() {
            let (got, left) = decode_in_pieces(&stream, &[cut], server_decoder(f));
            assert_eq!(got, msgs, "{} cut at {cut}", f.name());
            assert!(left.is_empty(), "{} cut at {cut}: {} bytes left over", f.name(), left.len());
        }
        let cuts: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(decode_in_pieces(&stream, &cuts, server_decoder(f)).0, msgs, "{} bytewise", f.name());
    }
}

#[test]
fn json_stream_with_blank_lines_and_crlf_decodes_the_same() {
    let msgs = example_client_stream();
    let mut stream = b"\n  \r\n".to_vec();
    for m in &msgs {
        let mut line = enc_client(WireFormat::Json, m);
        line.pop();
        stream.extend_from_slice(b"  ");
        stream.extend(line);
        stream.extend_from_slice(b" \r\n\n");
    }
    for cut in 0..=stream.len() {
        let (got, left) = decode_in_pieces(&stream, &[cut], client_decoder(WireFormat::Json));
        assert_eq!(got, msgs, "cut at {cut}");
        // Blank lines after the last message stay buffered until a non-blank line follows.
        assert!(left.iter().all(u8::is_ascii_whitespace), "cut at {cut}: {left:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_streams_in_random_chunks_decode_the_same(
        cmsgs in prop::collection::vec(client_msg(), 1..6),
        smsgs in prop::collection::vec(server_msg(), 1..6),
        chunks in prop::collection::vec(1usize..200, 1..40),
    ) {
        let cuts_for = |len: usize| {
            let mut cuts = Vec::new();
            let mut at = 0;
            for c in chunks.iter().cycle().take(4 * len / 3 + chunks.len()) {
                at += c;
                if at >= len { break; }
                cuts.push(at);
            }
            cuts
        };
        for f in FORMATS {
            let stream: Vec<u8> = cmsgs.iter().flat_map(|m| enc_client(f, m)).collect();
            let (got, left) = decode_in_pieces(&stream, &cuts_for(stream.len()), client_decoder(f));
            prop_assert_eq!(&got, &cmsgs);
            prop_assert!(left.is_empty());

            let stream: Vec<u8> = smsgs.iter().flat_map(|m| enc_server(f, m)).collect();
            let (got, left) = decode_in_pieces(&stream, &cuts_for(stream.len()), server_decoder(f));
            prop_assert_eq!(&got, &smsgs);
            prop_assert!(left.is_empty());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Format detection
// ---------------------------------------------------------------------------------------------

#[test]
fn first_byte_picks_the_format() {
    assert_eq!(WireFormat::detect(0x43), Some(WireFormat::Binary));
    for b in [b'{', b' ', b'\t', b'\r', b'\n'] {
        assert_eq!(WireFormat::detect(b), Some(WireFormat::Json), "byte {b:#04x}");
    }
    // 0x16 is a TLS handshake record: the caller handles it before asking for a format.
    for b in [0x16, b'G', b'[', 0x00, 0xff] {
        assert_eq!(WireFormat::detect(b), None, "byte {b:#04x}");
    }
    // Every encoded frame starts with a byte that detects as its own format.
    for f in FORMATS {
        assert_eq!(WireFormat::detect(enc_client(f, &ClientMsg::ListRooms)[0]), Some(f));
        assert_eq!(WireFormat::detect(enc_server(f, &ServerMsg::Ping { token: 0 })[0]), Some(f));
    }
}

// ---------------------------------------------------------------------------------------------
// Binary errors
// ---------------------------------------------------------------------------------------------

#[test]
fn binary_bad_magic_is_fatal_and_seen_from_two_bytes() {
    let f = WireFormat::Binary;
    let e = client_err(f, b"GET / HTTP/1.1\r\n", DecodeErrorKind::BadMagic(0x4745), None);
    assert_eq!(e.code(), ErrorCode::BadMagic);
    assert!(e.is_fatal());
    server_err(f, b"GET / HTTP/1.1\r\n", DecodeErrorKind::BadMagic(0x4745), None);
    // Two bytes are enough to know; one is not.
    client_err(f, &[0x43, 0x51], DecodeErrorKind::BadMagic(0x4351), None);
    assert_eq!(f.decode_client(&[0x42], &limits()), Ok(None));
    assert_eq!(f.decode_client(&[], &limits()), Ok(None));
    assert_eq!(f.decode_client(&[0x43, 0x50, 0x01], &limits()), Ok(None));
}

#[test]
fn binary_bad_version_is_fatal() {
    let mut frame = raw_frame(MsgType::ListRooms as u8, 0, &[]);
    frame[2] = 2;
    let e = client_err(WireFormat::Binary, &frame, DecodeErrorKind::BadVersion(2), None);
    assert_eq!(e.code(), ErrorCode::BadVersion);
    frame[2] = 0;
    server_err(WireFormat::Binary, &frame, DecodeErrorKind::BadVersion(0), None);
}

#[test]
fn binary_oversized_length_is_fatal_from_the_header_alone() {
    let max = limits().max_frame;
    // A 4 GiB length prefix with nothing after the header: rejected before any body arrives.
    let header = [0x43, 0x50, 0x01, 0x04, 0x00, 0xff, 0xff, 0xff, 0xff];
    let e =
        client_err(WireFormat::Binary, &header, DecodeErrorKind::FrameTooLarge { len: u32::MAX as usize, max }, None);
    assert_eq!(e.code(), ErrorCode::FrameTooLarge);
    server_err(WireFormat::Binary, &header, DecodeErrorKind::FrameTooLarge { len: u32::MAX as usize, max }, None);

    // One byte over the limit is fatal; exactly the limit waits for the body.
    let over = &raw_frame(4, 0, &vec![0; max + 1])[..HEADER_LEN];
    client_err(WireFormat::Binary, over, DecodeErrorKind::FrameTooLarge { len: max + 1, max }, None);
    let at = &raw_frame(4, 0, &vec![0; max])[..HEADER_LEN];
    assert_eq!(WireFormat::Binary.decode_client(at, &limits()), Ok(None));
    // A custom limit is honoured.
    let small = Limits { max_frame: 8, max_text: 8 };
    let e = WireFormat::Binary.decode_client(&raw_frame(4, 0, &[0; 9])[..HEADER_LEN], &small).unwrap_err();
    assert_eq!(e, DecodeError::fatal(DecodeErrorKind::FrameTooLarge { len: 9, max: 8 }));
}

#[test]
fn binary_unknown_type_skips_the_whole_frame() {
    for ty in [0u8, 13, 0x1f, 0x3f, 0xff] {
        let frame = raw_frame(ty, 0, b"abc");
        let e = client_err(WireFormat::Binary, &frame, DecodeErrorKind::UnknownType(ty.to_string()), Some(12));
        assert_eq!(e.code(), ErrorCode::UnknownType);
        server_err(WireFormat::Binary, &frame, DecodeErrorKind::UnknownType(ty.to_string()), Some(12));
    }
    // After the skip the next frame decodes: the stream is still in sync.
    let mut stream = raw_frame(0x3f, 0, b"future extension");
    let skip = stream.len();
    stream.extend(enc_client(WireFormat::Binary, &ClientMsg::ListUsers));
    let e = WireFormat::Binary.decode_client(&stream, &limits()).unwrap_err();
    assert_eq!(e.skip, Some(skip));
    assert_eq!(WireFormat::Binary.decode_client(&stream[skip..], &limits()), Ok(Some((ClientMsg::ListUsers, 9))));
}

#[test]
fn binary_unknown_type_waits_for_the_whole_frame_before_skipping() {
    let frame = raw_frame(0x30, 0, b"0123456789");
    for cut in 0..frame.len() {
        assert_eq!(WireFormat::Binary.decode_client(&frame[..cut], &limits()), Ok(None), "cut at {cut}");
    }
}

#[test]
fn binary_reserved_flag_bits_skip_the_frame() {
    for flags in [0x02u8, 0x04, 0x80, 0xff] {
        let frame = raw_frame(MsgType::RoomMsg as u8, flags, &[0, 2, b'h', b'i']);
        let e = client_err(WireFormat::Binary, &frame, DecodeErrorKind::BadFlags(flags), Some(13));
        assert_eq!(e.code(), ErrorCode::BadFlags);
        let body = enc_server(WireFormat::Binary, &ServerMsg::Ping { token: 3 });
        let frame = raw_frame(MsgType::Ping as u8, flags, &body[HEADER_LEN..]);
        server_err(WireFormat::Binary, &frame, DecodeErrorKind::BadFlags(flags), Some(17));
    }
    // Bad flags are reported only once the whole frame is there, so the skip is exact.
    let frame = raw_frame(MsgType::RoomMsg as u8, 0x02, &[0, 2, b'h', b'i']);
    assert_eq!(WireFormat::Binary.decode_client(&frame[..12], &limits()), Ok(None));
}

#[test]
fn binary_history_flag_marks_server_room_msg() {
    let msg =
        ServerMsg::RoomMsg { id: 1, ts_ms: 2, room: owned("r"), from: owned("u"), text: owned("t"), history: true };
    let bytes = enc_server(WireFormat::Binary, &msg);
    assert_eq!(bytes[4], FLAG_HISTORY);
    assert_eq!(WireFormat::Binary.decode_server(&bytes, &limits()).unwrap(), Some((msg, bytes.len())));
    // Every other message is sent with flags 0.
    let mut live = bytes.clone();
    live[4] = 0;
    let (m, _) = WireFormat::Binary.decode_server(&live, &limits()).unwrap().unwrap();
    assert!(matches!(m, ServerMsg::RoomMsg { history: false, .. }));
}

#[test]
fn binary_bad_utf8_in_a_name_or_text_skips_the_frame() {
    // JOIN_ROOM room = [ff fe]
    let frame = raw_frame(MsgType::JoinRoom as u8, 0, &[2, 0xff, 0xfe]);
    let e = client_err(WireFormat::Binary, &frame, DecodeErrorKind::BadUtf8("room"), Some(12));
    assert_eq!(e.code(), ErrorCode::BadUtf8);
    // ROOM_MSG text = [c3 28] (a lead byte followed by ASCII)
    let frame = raw_frame(MsgType::RoomMsg as u8, 0, &[0, 2, 0xc3, 0x28]);
    client_err(WireFormat::Binary, &frame, DecodeErrorKind::BadUtf8("text"), Some(13));
    // PRIVATE_MSG: good name, text cut in the middle of a 3-byte character
    let frame = raw_frame(MsgType::PrivateMsg as u8, 0, &[1, b'b', 0, 2, 0xe4, 0xb8]);
    client_err(WireFormat::Binary, &frame, DecodeErrorKind::BadUtf8("text"), Some(15));
    // LOGIN username with a surrogate encoded in UTF-8 (invalid in UTF-8)
    let frame = raw_frame(MsgType::Login as u8, 0, &[3, 0xed, 0xa0, 0x80]);
    client_err(WireFormat::Binary, &frame, DecodeErrorKind::BadUtf8("username"), Some(13));
    // Server side: ROOM_MSG `from` is bad
    let mut body = vec![0; 16];
    body.extend_from_slice(&[1, b'g', 1, 0xff, 0, 0]);
    let frame = raw_frame(MsgType::RoomMsg as u8, 0, &body);
    server_err(WireFormat::Binary, &frame, DecodeErrorKind::BadUtf8("from"), Some(frame.len()));
}

#[test]
fn binary_trailing_bytes_skip_the_frame_as_malformed() {
    let cases: [(u8, &[u8]); 5] = [
        (MsgType::ListUsers as u8, &[0]),
        (MsgType::ListRooms as u8, b"xx"),
        (MsgType::Ping as u8, &[0; 9]),
        (MsgType::JoinRoom as u8, &[1, b'r', b'!']),
        // LOGIN: username, credential, then one byte too many
        (MsgType::Login as u8, &[1, b'a', 1, b'p', 0]),
    ];
    for (ty, body) in cases {
        let frame = raw_frame(ty, 0, body);
        let e = WireFormat::Binary.decode_client(&frame, &limits()).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Malformed(ref s) if s.contains("trailing")), "type {ty}: {e}");
        assert_eq!(e.skip, Some(frame.len()));
        assert_eq!(e.code(), ErrorCode::Malformed);
    }
    let frame = raw_frame(MsgType::RoomMsgAck as u8, 0, &[0; 17]);
    let e = WireFormat::Binary.decode_server(&frame, &limits()).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Malformed(_)));
    assert_eq!(e.skip, Some(26));
}

#[test]
fn binary_short_body_skips_the_frame_as_malformed() {
    let cases: [(u8, &[u8]); 5] = [
        (MsgType::Login as u8, &[]),
        (MsgType::JoinRoom as u8, &[5, b'r']),
        (MsgType::RoomMsg as u8, &[0]),
        (MsgType::RoomMsg as u8, &[0, 3, b'h', b'i']),
        (MsgType::Ping as u8, &[0; 7]),
    ];
    for (ty, body) in cases {
        let frame = raw_frame(ty, 0, body);
        let e = WireFormat::Binary.decode_client(&frame, &limits()).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Malformed(ref s) if s.contains("past the end")), "type {ty}: {e}");
        assert_eq!(e.skip, Some(frame.len()));
    }
    // LIST_USERS claiming 3 users but carrying 1
    let frame = raw_frame(MsgType::ListUsers as u8, 0, &[1, b'r', 0, 3, 1, b'a']);
    let e = WireFormat::Binary.decode_server(&frame, &limits()).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Malformed(_)));
    assert_eq!(e.skip, Some(frame.len()));
    // LIST_ROOMS claiming 65535 rooms in a 2-byte body must not allocate for them.
    let frame = raw_frame(MsgType::ListRooms as u8, 0, &[0xff, 0xff]);
    assert!(matches!(
        WireFormat::Binary.decode_server(&frame, &limits()).unwrap_err().kind,
        DecodeErrorKind::Malformed(_)
    ));
}

#[test]
fn binary_text_over_max_text_skips_the_frame() {
    let max = limits().max_text;
    let text = vec![b'a'; max + 1];
    let mut body = ((max + 1) as u16).to_be_bytes().to_vec();
    body.extend_from_slice(&text);
    let frame = raw_frame(MsgType::RoomMsg as u8, 0, &body);
    let e = client_err(
        WireFormat::Binary,
        &frame,
        DecodeErrorKind::FieldTooLong { field: "text", len: max + 1, max },
        Some(frame.len()),
    );
    assert_eq!(e.code(), ErrorCode::FieldTooLong);
    // The length is checked before the bytes: a lying prefix is caught the same way.
    let frame = raw_frame(MsgType::RoomMsg as u8, 0, &[0xff, 0xff, b'a']);
    client_err(
        WireFormat::Binary,
        &frame,
        DecodeErrorKind::FieldTooLong { field: "text", len: 0xffff, max },
        Some(frame.len()),
    );
    // Server messages: ERROR_MSG text and LOGIN_REJECT reason have the same limit.
    let mut body = vec![ErrorCode::Internal as u8];
    body.extend_from_slice(&((max + 1) as u16).to_be_bytes());
    body.extend_from_slice(&text);
    let frame = raw_frame(MsgType::LoginReject as u8, 0, &body);
    server_err(
        WireFormat::Binary,
        &frame,
        DecodeErrorKind::FieldTooLong { field: "reason", len: max + 1, max },
        Some(frame.len()),
    );
}

#[test]
fn binary_wrong_direction_skips_the_frame() {
    // A client sending a server-only type.
    for t in [
        MsgType::LoginAck,
        MsgType::LoginReject,
        MsgType::PrivateMsgDelivery,
        MsgType::SystemMsg,
        MsgType::ErrorMsg,
        MsgType::RoomMsgAck,
    ] {
        let frame = raw_frame(t as u8, 0, b"");
        let e = client_err(WireFormat::Binary, &frame, DecodeErrorKind::WrongDirection(t.json_name()), Some(9));
        assert_eq!(e.code(), ErrorCode::UnknownType);
    }
    // A server sending a client-only type.
    for t in [MsgType::Login, MsgType::PrivateMsg] {
        let frame = raw_frame(t as u8, 0, b"");
        server_err(WireFormat::Binary, &frame, DecodeErrorKind::WrongDirection(t.json_name()), Some(9));
    }
}

#[test]
fn binary_decoder_never_waits_with_a_whole_frame_buffered() {
    // Ok(None) must mean "need more bytes": with HEADER_LEN + max_frame bytes there, never.
    let l = Limits { max_frame: 32, max_text: 16 };
    let junk: Vec<u8> = raw_frame(0x77, 0, &[7; 32]).into_iter().chain([1, 2, 3]).collect();
    assert!(WireFormat::Binary.decode_client(&junk, &l).is_err());
}

#[test]
fn error_codes_and_kinds_round_trip_through_their_bytes() {
    for b in 0..=255u8 {
        let c = ErrorCode::from_u8(b);
        assert!(c as u8 == b || c == ErrorCode::Internal, "byte {b}");
        assert_eq!(ErrorCode::from_u8(c as u8), c);
    }
    assert_eq!(ErrorCode::from_u8(23), ErrorCode::FileRefused);
    assert_eq!(ErrorCode::from_u8(24), ErrorCode::Internal);
    assert_eq!(ErrorCode::from_u8(0), ErrorCode::Internal);
    for b in 0..=4u8 {
        assert_eq!(SystemKind::from_u8(b) as u8, b);
        let k = SystemKind::from_u8(b);
        assert_eq!(SystemKind::from_json_name(k.json_name()), k);
    }
    assert_eq!(SystemKind::from_u8(9), SystemKind::Info);
    for t in MsgType::ALL {
        assert_eq!(MsgType::from_code(t as u8), Some(t));
        assert_eq!(MsgType::from_json_name(t.json_name()), Some(t));
    }
    assert_eq!(MsgType::from_code(0x3f), None);
}

// ---------------------------------------------------------------------------------------------
// JSON errors and leniencies
// ---------------------------------------------------------------------------------------------

#[test]
fn json_malformed_line_is_skipped_and_the_next_decodes() {
    let first = b"{\"type\":\"room_msg\",\"text\":}\n";
    let mut stream = first.to_vec();
    stream.extend_from_slice(b"{\"type\":\"list_rooms\"}\n");
    let e = WireFormat::Json.decode_client(&stream, &limits()).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Malformed(_)), "{e}");
    assert_eq!(e.skip, Some(first.len()));
    assert_eq!(e.code(), ErrorCode::Malformed);
    let rest = &stream[first.len()..];
    assert_eq!(WireFormat::Json.decode_client(rest, &limits()), Ok(Some((ClientMsg::ListRooms, rest.len()))));
    // Other shapes that are not a message object.
    for line in [&b"hello\n"[..], b"[1,2]\n", b"\"room_msg\"\n", b"{\"type\":\"ping\"} {}\n", b"{\"type\":7}\n"] {
        let e = WireFormat::Json.decode_client(line, &limits()).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Malformed(_)), "{:?}: {e}", String::from_utf8_lossy(line));
        assert_eq!(e.skip, Some(line.len()));
    }
}

#[test]
fn json_unknown_type_is_skipped() {
    let line = b"{\"type\":\"dance\",\"text\":\"x\"}\n";
    let e = client_err(WireFormat::Json, line, DecodeErrorKind::UnknownType("dance".into()), Some(line.len()));
    assert_eq!(e.code(), ErrorCode::UnknownType);
    server_err(WireFormat::Json, line, DecodeErrorKind::UnknownType("dance".into()), Some(line.len()));
    // Type names are case-sensitive.
    let line = b"{\"type\":\"ROOM_MSG\",\"text\":\"x\"}\n";
    client_err(WireFormat::Json, line, DecodeErrorKind::UnknownType("ROOM_MSG".into()), Some(line.len()));
}

#[test]
fn json_missing_field_is_skipped() {
    let cases: [(&[u8], &str); 5] = [
        (b"{\"text\":\"hi\"}\n", "type"),
        (b"{\"type\":\"room_msg\"}\n", "text"),
        (b"{\"type\":\"private_msg\",\"text\":\"hi\"}\n", "to"),
        (b"{\"type\":\"join_room\"}\n", "room"),
        (b"{\"type\":\"login\",\"credential\":\"pw\"}\n", "username"),
    ];
    for (line, field) in cases {
        let e = client_err(WireFormat::Json, line, DecodeErrorKind::MissingField(field), Some(line.len()));
        assert_eq!(e.code(), ErrorCode::Malformed);
    }
    let line = b"{\"type\":\"room_msg\",\"text\":\"hi\",\"room\":\"r\",\"from\":\"a\",\"ts\":1}\n";
    server_err(WireFormat::Json, line, DecodeErrorKind::MissingField("id"), Some(line.len()));
}

#[test]
fn json_line_over_max_frame_without_newline_is_fatal() {
    let max = limits().max_frame;
    let long = vec![b'a'; max + 1];
    let e = client_err(WireFormat::Json, &long, DecodeErrorKind::FrameTooLarge { len: max + 1, max }, None);
    assert_eq!(e.code(), ErrorCode::FrameTooLarge);
    assert!(e.is_fatal());
    // Detected as soon as max_frame + 1 bytes are buffered, without waiting for more.
    assert_eq!(WireFormat::Json.decode_client(&long[..max], &limits()), Ok(None));
    // A newline just past the limit does not rescue it.
    let mut late = vec![b' '; max + 1];
    late.push(b'\n');
    assert!(WireFormat::Json.decode_client(&late, &limits()).unwrap_err().is_fatal());
    // A line of exactly max_frame bytes (plus its newline) is fine.
    let msg = b"{\"type\":\"list_rooms\"}";
    let mut line = vec![b' '; max - msg.len()];
    line.extend_from_slice(msg);
    line.push(b'\n');
    assert_eq!(WireFormat::Json.decode_client(&line, &limits()), Ok(Some((ClientMsg::ListRooms, max + 1))));
}

#[test]
fn json_blank_lines_are_skipped_and_counted() {
    let buf = b"\n\r\n   \n\t\n{\"type\":\"list_users\"}\n{\"type\":\"list_rooms\"}\n";
    let first = buf.len() - b"{\"type\":\"list_rooms\"}\n".len();
    assert_eq!(WireFormat::Json.decode_client(buf, &limits()), Ok(Some((ClientMsg::ListUsers, first))));
    // Blank lines alone are not a message.
    assert_eq!(WireFormat::Json.decode_client(b"\n\n \r\n", &limits()), Ok(None));
}

/// A connection that sends nothing but newlines must not make the reader buffer them forever:
/// like every other `Ok(None)`, the blank-line case should mean "need more bytes", which can only
/// be true while at most `max_frame + 1` bytes are buffered. Today `next_line` skips the blank
/// lines, finds no further line, and returns `Ok(None)` without reporting what it skipped, so the
/// caller keeps every blank byte: the server's read arena fills with them, `dispatch` never
/// consumes anything, and the connection is retried every turn without progress.
#[test]

fn json_blank_line_flood_is_bounded() {
    let l = Limits { max_frame: 16, max_text: 8 };
    let flood = vec![b'\n'; 1000];
    assert_ne!(WireFormat::Json.decode_client(&flood, &l), Ok(None));
}

#[test]
fn json_crlf_and_surrounding_whitespace_are_accepted() {
    let line = b"{\"type\":\"ping\",\"token\":7}\r\n";
    assert_eq!(WireFormat::Json.decode_client(line, &limits()), Ok(Some((ClientMsg::Ping { token: 7 }, line.len()))));
    let line = b" \t{\"type\":\"room_msg\",\"text\":\"hi\"} \r\n";
    assert_eq!(
        WireFormat::Json.decode_client(line, &limits()),
        Ok(Some((ClientMsg::RoomMsg { text: Cow::Borrowed("hi") }, line.len())))
    );
    // Spaces inside the object, any key order, unknown keys ignored.
    let line = b"{ \"text\" : \"hi\" , \"future\" : [1, {\"a\": null}], \"type\" : \"room_msg\" }\n";
    assert_eq!(
        WireFormat::Json.decode_client(line, &limits()),
        Ok(Some((ClientMsg::RoomMsg { text: Cow::Borrowed("hi") }, line.len())))
    );
}

#[test]
fn json_partial_line_waits() {
    let line = b"{\"type\":\"room_msg\",\"text\":\"hi\"}\n";
    for cut in 0..line.len() {
        assert_eq!(WireFormat::Json.decode_client(&line[..cut], &limits()), Ok(None), "cut at {cut}");
    }
}

#[test]
fn json_escaped_strings_decode_owned() {
    let line = br#"{"type":"private_msg","to":"b\u00f6b","text":"say \"hi\"\n\t\\ \ud83d\ude00"}"#;
    let mut buf = line.to_vec();
    buf.push(b'\n');
    let (msg, used) = WireFormat::Json.decode_client(&buf, &limits()).unwrap().unwrap();
    assert_eq!(used, buf.len());
    let ClientMsg::PrivateMsg { to, text } = msg else { panic!("{msg:?}") };
    assert_eq!(to, "böb");
    assert_eq!(text, "say \"hi\"\n\t\\ 😀");
    assert!(matches!(to, Cow::Owned(_)));
    assert!(matches!(text, Cow::Owned(_)));
}

/// The module docs promise that strings without escapes borrow from the read buffer.
#[test]

fn json_unescaped_strings_borrow() {
    let buf = "{\"type\":\"private_msg\",\"to\":\"bob\",\"text\":\"héllo\"}\n".as_bytes();
    let (msg, _) = WireFormat::Json.decode_client(buf, &limits()).unwrap().unwrap();
    let ClientMsg::PrivateMsg { to, text } = msg else { panic!("{msg:?}") };
    assert!(matches!(to, Cow::Borrowed(_)), "to: {to:?} was copied");
    assert!(matches!(text, Cow::Borrowed(_)), "text: {text:?} was copied");
    let buf = b"{\"type\":\"list_users\",\"room\":\"r\",\"users\":[\"alice\",\"bob\"]}\n";
    let (msg, _) = WireFormat::Json.decode_server(buf, &limits()).unwrap().unwrap();
    let ServerMsg::ListUsers { room, users } = msg else { panic!("{msg:?}") };
    assert!(matches!(room, Cow::Borrowed(_)));
    assert!(users.iter().all(|u| matches!(u, Cow::Borrowed(_))));
}

#[test]
fn json_room_names_in_list_rooms_borrow() {
    // RoomEntry.name is a bare Cow<str> with #[serde(borrow)], which serde does borrow.
    let buf = b"{\"type\":\"list_rooms\",\"rooms\":[{\"name\":\"general\",\"users\":2}]}\n";
    let (msg, _) = WireFormat::Json.decode_server(buf, &limits()).unwrap().unwrap();
    let ServerMsg::ListRooms { rooms } = msg else { panic!("{msg:?}") };
    assert_eq!(rooms, vec![(Cow::Borrowed("general"), 2)]);
    assert!(matches!(rooms[0].0, Cow::Borrowed(_)));
}

#[test]
fn json_server_type_from_a_client_is_wrong_direction() {
    let line = b"{\"type\":\"login_ack\",\"username\":\"a\",\"room\":\"general\"}\n";
    let e = client_err(WireFormat::Json, line, DecodeErrorKind::WrongDirection("login_ack"), Some(line.len()));
    assert_eq!(e.code(), ErrorCode::UnknownType);
    for ty in ["login_reject", "private_msg_delivery", "system_msg", "error_msg", "room_msg_ack"] {
        let line = format!("{{\"type\":\"{ty}\",\"text\":\"x\"}}\n");
        let kind = DecodeErrorKind::WrongDirection(MsgType::from_json_name(ty).unwrap().json_name());
        client_err(WireFormat::Json, line.as_bytes(), kind, Some(line.len()));
    }
    let line = b"{\"type\":\"login\",\"username\":\"a\"}\n";
    server_err(WireFormat::Json, line, DecodeErrorKind::WrongDirection("login"), Some(line.len()));
}

#[test]
fn json_bad_utf8_is_skipped() {
    let mut line = b"{\"type\":\"room_msg\",\"text\":\"a".to_vec();
    line.extend_from_slice(&[0xff, 0xfe]);
    line.extend_from_slice(b"\"}\n");
    let e = client_err(WireFormat::Json, &line, DecodeErrorKind::BadUtf8("line"), Some(line.len()));
    assert_eq!(e.code(), ErrorCode::BadUtf8);
    // A lone surrogate escape is valid UTF-8 on the wire but a bad JSON escape: Malformed.
    let line = b"{\"type\":\"join_room\",\"room\":\"\\ud800\"}\n";
    let e = WireFormat::Json.decode_client(line, &limits()).unwrap_err();
    assert_eq!(e.skip, Some(line.len()));
    assert_eq!(e.code(), ErrorCode::Malformed);
}

#[test]
fn json_text_over_max_text_is_skipped() {
    let max = limits().max_text;
    let msg = ClientMsg::RoomMsg { text: owned("a".repeat(max + 1)) };
    let line = enc_client(WireFormat::Json, &msg);
    let e = client_err(
        WireFormat::Json,
        &line,
        DecodeErrorKind::FieldTooLong { field: "text", len: max + 1, max },
        Some(line.len()),
    );
    assert_eq!(e.code(), ErrorCode::FieldTooLong);
    // The limit counts decoded bytes: 8 192 escaped characters of one byte each are fine.
    let line = format!("{{\"type\":\"room_msg\",\"text\":\"{}\"}}\n", "\\u0041".repeat(max));
    let (m, _) = WireFormat::Json.decode_client(line.as_bytes(), &limits()).unwrap().unwrap();
    assert_eq!(m, ClientMsg::RoomMsg { text: owned("A".repeat(max)) });
    // LOGIN_REJECT reason has the same limit.
    let msg = ServerMsg::LoginReject { code: ErrorCode::Internal, reason: owned("r".repeat(max + 1)) };
    let line = enc_server(WireFormat::Json, &msg);
    server_err(
        WireFormat::Json,
        &line,
        DecodeErrorKind::FieldTooLong { field: "reason", len: max + 1, max },
        Some(line.len()),
    );
}

#[test]
fn json_optional_fields_have_defaults() {
    let d = |s: &str| WireFormat::Json.decode_client(s.as_bytes(), &limits()).unwrap().unwrap().0.into_owned();
    assert_eq!(d("{\"type\":\"ping\"}\n"), ClientMsg::Ping { token: 0 });
    assert_eq!(
        d("{\"type\":\"login\",\"username\":\"a\"}\n"),
        ClientMsg::Login { username: owned("a"), credential: None }
    );
    let s = |s: &str| WireFormat::Json.decode_server(s.as_bytes(), &limits()).unwrap().unwrap().0.into_owned();
    assert_eq!(
        s("{\"type\":\"system_msg\",\"text\":\"hello\"}\n"),
        ServerMsg::SystemMsg { kind: SystemKind::Info, room: owned(""), user: owned(""), text: owned("hello") }
    );
    assert_eq!(
        s("{\"type\":\"error_msg\",\"text\":\"?\"}\n"),
        ServerMsg::ErrorMsg { code: ErrorCode::Internal, text: owned("?") }
    );
    assert_eq!(
        s("{\"type\":\"room_msg\",\"id\":1,\"ts\":2,\"room\":\"r\",\"from\":\"f\",\"text\":\"t\"}\n"),
        ServerMsg::RoomMsg { id: 1, ts_ms: 2, room: owned("r"), from: owned("f"), text: owned("t"), history: false }
    );
}

// ---------------------------------------------------------------------------------------------
// Golden bytes and the examples in docs/PROTOCOL.md
// ---------------------------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

#[test]
fn golden_encodings() {
    let login = ClientMsg::Login { username: owned("alice"), credential: None };
    assert_eq!(hex(&enc_client(WireFormat::Binary, &login)), "43 50 01 01 00 00 00 00 06 05 61 6c 69 63 65");
    assert_eq!(enc_client(WireFormat::Json, &login), b"{\"type\":\"login\",\"username\":\"alice\"}\n");

    let rm = ServerMsg::RoomMsg {
        id: 42,
        ts_ms: 1_700_000_000_000,
        room: owned("general"),
        from: owned("alice"),
        text: owned("hi all"),
        history: false,
    };
    assert_eq!(
        hex(&enc_server(WireFormat::Binary, &rm)),
        "43 50 01 04 00 00 00 00 26 \
         00 00 00 00 00 00 00 2a 00 00 01 8b cf e5 68 00 \
         07 67 65 6e 65 72 61 6c 05 61 6c 69 63 65 00 06 68 69 20 61 6c 6c"
    );
    assert_eq!(
        enc_server(WireFormat::Json, &rm),
        &b"{\"type\":\"room_msg\",\"id\":42,\"ts\":1700000000000,\"room\":\"general\",\"from\":\"alice\",\"text\":\"hi all\"}\n"[..]
    );
    let lr = ServerMsg::ListRooms { rooms: vec![(owned("general"), 2)] };
    assert_eq!(
        enc_server(WireFormat::Json, &lr),
        &b"{\"type\":\"list_rooms\",\"rooms\":[{\"name\":\"general\",\"users\":2}]}\n"[..]
    );
}

/// One field of a binary body, for the annotated dumps.
enum Field {
    U8(&'static str),
    U32(&'static str),
    U64(&'static str),
    Name(&'static str),
    /// A trailing name that may be absent.
    OptName(&'static str),
    Text(&'static str),
    /// 32 raw bytes of SHA-256.
    Sha(&'static str),
    /// u32 length, then raw bytes.
    Data(&'static str),
    /// u16 count, then that many repetitions of the inner fields.
    List(&'static str, &'static [Field]),
    /// Not in the body (a header flag).
    None,
}

/// The binary layout of one form, read from its description (labelled with the JSON keys).
fn layout(fields: &[FieldSpec]) -> Vec<Field> {
    use Field::*;
    let field = |f: &FieldSpec| match f.kind {
        FieldKind::Name | FieldKind::NameOrEmpty => Name(f.json),
        FieldKind::OptName => OptName(f.json),
        FieldKind::Text => Text(f.json),
        FieldKind::U64 | FieldKind::Token => U64(f.json),
        FieldKind::Code | FieldKind::SysKind => U8(f.json),
        FieldKind::HistoryFlag => None,
        FieldKind::Sha256 => Sha(f.json),
        FieldKind::Data => Data(f.json),
        FieldKind::Names => List(f.json, &[Name("user")]),
        FieldKind::RoomCounts => List(f.json, &[Name("name"), U32("users")]),
        FieldKind::Files => List(f.json, &[U64("id"), Name("name"), U64("size"), Name("from")]),
    };
    fields.iter().map(field).collect()
}

fn layout_client(t: MsgType) -> Vec<Field> {
    layout(t.spec().client.unwrap_or_default())
}

fn layout_server(t: MsgType) -> Vec<Field> {
    layout(t.spec().server.unwrap_or_default())
}

/// Appends `offset  hex  comment` rows for the fields of `body` (which starts at `*at`).
fn dump_fields(frame: &[u8], at: &mut usize, fields: &[Field], rows: &mut Vec<(usize, String, String)>) {
    for field in fields {
        let start = *at;
        let (len, note) = match *field {
            Field::None => continue,
            Field::OptName(_) if start >= frame.len() => return, // optional trailing field absent
            Field::U8(n) => {
                let b = frame[start];
                let meaning = match n {
                    "code" => format!("{:?}", ErrorCode::from_u8(b)),
                    "kind" => SystemKind::from_u8(b).json_name().to_string(),
                    _ => String::new(),
                };
                (1, format!("{n} = {b} ({meaning})"))
            }
            Field::U32(n) => {
                (4, format!("{n} = {} (u32)", u32::from_be_bytes(frame[start..start + 4].try_into().unwrap())))
            }
            Field::U64(n) => {
                (8, format!("{n} = {} (u64)", u64::from_be_bytes(frame[start..start + 8].try_into().unwrap())))
            }
            Field::Name(n) | Field::OptName(n) => {
                let l = frame[start] as usize;
                let optional = if matches!(field, Field::OptName(_)) { " (optional)" } else { "" };
                (
                    1 + l,
                    format!(
                        "{n}{optional}: name8, {l} bytes {:?}",
                        std::str::from_utf8(&frame[start + 1..start + 1 + l]).unwrap()
                    ),
                )
            }
            Field::Text(n) => {
                let l = u16::from_be_bytes([frame[start], frame[start + 1]]) as usize;
                (
                    2 + l,
                    format!(
                        "{n}: text16, {l} bytes {:?}",
                        std::str::from_utf8(&frame[start + 2..start + 2 + l]).unwrap()
                    ),
                )
            }
            Field::Sha(n) => (32, format!("{n}: 32 bytes")),
            Field::Data(n) => {
                let l = u32::from_be_bytes(frame[start..start + 4].try_into().unwrap()) as usize;
                (4 + l, format!("{n}: u32 length {l}, then the bytes"))
            }
            Field::List(n, inner) => {
                let count = u16::from_be_bytes([frame[start], frame[start + 1]]) as usize;
                rows.push((start, hex(&frame[start..start + 2]), format!("{n}: count = {count} (u16)")));
                *at += 2;
                for _ in 0..count {
                    dump_fields(frame, at, inner, rows);
                }
                continue;
            }
        };
        rows.push((start, hex(&frame[start..start + len]), note));
        *at += len;
    }
}

fn binary_dump(frame: &[u8], fields: &[Field], t: MsgType) -> String {
    let body_len = u32::from_be_bytes(frame[5..9].try_into().unwrap());
    let mut rows = vec![(
        0,
        hex(&frame[..HEADER_LEN]),
        format!(
            "header: magic 4350, version {}, type {:#04x} {}, flags {:#04x}, body length {body_len}",
            frame[2],
            frame[3],
            t.json_name().to_uppercase(),
            frame[4]
        ),
    )];
    let mut at = HEADER_LEN;
    dump_fields(frame, &mut at, fields, &mut rows);
    assert_eq!(at, frame.len(), "layout for {t:?} does not cover the frame");
    let width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let body = if frame.len() == HEADER_LEN { "(empty body)".to_string() } else { hex(&frame[HEADER_LEN..]) };
    let mut s = format!("{} | {body}\n\n", hex(&frame[..HEADER_LEN]));
    for (off, h, note) in rows {
        // Long fields wrap at 16 bytes per row.
        let bytes: Vec<&str> = h.split(' ').collect();
        for (i, chunk) in bytes.chunks(16).enumerate() {
            let line = chunk.join(" ");
            if i == 0 {
                s += &format!("{off:04x}  {line:width$}  {note}\n", width = width.min(47));
            } else {
                s += &format!("{:04x}  {line}\n", off + 16 * i);
            }
        }
    }
    s
}

fn json_dump(line: &[u8]) -> String {
    let mut s = format!("{}\n", String::from_utf8_lossy(&line[..line.len() - 1]));
    for (i, chunk) in line.chunks(16).enumerate() {
        s += &format!("{:04x}  {}\n", i * 16, hex(chunk));
    }
    s
}

/// SHA-256 of `hi\n`, the file of the doc examples.
fn doc_sha() -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b"hi\n").into()
}

/// The messages `docs/PROTOCOL.md` shows, one of every type in each direction.
fn doc_examples() -> (Vec<ClientMsg<'static>>, Vec<ServerMsg<'static>>) {
    let ts = 1_700_000_000_000;
    let client = vec![
        ClientMsg::Login { username: owned("alice"), credential: None },
        ClientMsg::Login { username: owned("alice"), credential: Some(owned("s3cret")) },
        ClientMsg::RoomMsg { text: owned("hi all") },
        ClientMsg::PrivateMsg { to: owned("bob"), text: owned("psst") },
        ClientMsg::JoinRoom { room: owned("rust") },
        ClientMsg::ListUsers,
        ClientMsg::ListRooms,
        ClientMsg::Ping { token: 1 },
        ClientMsg::Pong { token: 7 },
        ClientMsg::Time,
        ClientMsg::Admin { command: owned("alert lunch") },
        ClientMsg::Register { username: owned("alice"), password: owned("s3cret") },
        ClientMsg::FileOffer { name: owned("hi.txt"), size: 3, sha256: doc_sha() },
        ClientMsg::FileChunk { id: 7, offset: 0, data: b"hi\n".to_vec().into() },
        ClientMsg::FileDone { id: 7, sha256: doc_sha() },
        ClientMsg::ListFiles,
        ClientMsg::FileGet { id: 7 },
    ];
    let server = vec![
        ServerMsg::LoginAck { username: owned("alice"), room: owned("general") },
        ServerMsg::LoginReject { code: ErrorCode::UsernameTaken, reason: owned("name in use") },
        ServerMsg::RoomMsg {
            id: 42,
            ts_ms: ts,
            room: owned("general"),
            from: owned("alice"),
            text: owned("hi all"),
            history: false,
        },
        ServerMsg::RoomMsg {
            id: 41,
            ts_ms: ts - 5000,
            room: owned("rust"),
            from: owned("bob"),
            text: owned("yo"),
            history: true,
        },
        ServerMsg::PrivateMsgDelivery { ts_ms: ts, from: owned("alice"), to: owned("bob"), text: owned("psst") },
        ServerMsg::JoinRoom { room: owned("rust") },
        ServerMsg::ListUsers { room: owned("general"), users: vec![owned("alice"), owned("bob")] },
        ServerMsg::ListRooms { rooms: vec![(owned("general"), 2), (owned("rust"), 1)] },
        ServerMsg::SystemMsg {
            kind: SystemKind::Join,
            room: owned("rust"),
            user: owned("alice"),
            text: owned("alice joined"),
        },
        ServerMsg::ErrorMsg { code: ErrorCode::NotLoggedIn, text: owned("log in first") },
        ServerMsg::RoomMsgAck { id: 42, ts_ms: ts },
        ServerMsg::Ping { token: 7 },
        ServerMsg::Pong { token: 1 },
        ServerMsg::Time { ts_ms: ts },
        ServerMsg::Admin { text: owned("2 users online") },
        ServerMsg::FileAccept { id: 7 },
        ServerMsg::FileAvailable {
            id: 7,
            name: owned("hi.txt"),
            size: 3,
            from: owned("alice"),
            room: owned("general"),
        },
        ServerMsg::ListFiles {
            room: owned("general"),
            files: vec![FileEntry { id: 7, name: owned("hi.txt"), size: 3, from: owned("alice") }],
        },
        ServerMsg::FileChunk { id: 7, offset: 0, data: b"hi\n".to_vec().into() },
        ServerMsg::FileDone { id: 7, sha256: doc_sha() },
    ];
    (client, server)
}

#[test]
fn doc_examples_round_trip() {
    let (client, server) = doc_examples();
    for f in FORMATS {
        for m in &client {
            let b = enc_client(f, m);
            assert_eq!(f.decode_client(&b, &limits()).unwrap(), Some((m.clone(), b.len())));
        }
        for m in &server {
            let b = enc_server(f, m);
            assert_eq!(f.decode_server(&b, &limits()).unwrap(), Some((m.clone(), b.len())));
        }
    }
}

#[test]
fn encode_both_gives_each_format_its_own_frame_and_leaves_the_arena_empty() {
    let (_, server) = doc_examples();
    let mut arena = BytesMut::with_capacity(64);
    for m in &server {
        let frames = encode_both(m, &mut arena);
        assert_eq!(frames.binary, enc_server(WireFormat::Binary, m));
        assert_eq!(frames.json, enc_server(WireFormat::Json, m));
        assert_eq!(frames.get(WireFormat::Binary), &frames.binary);
        assert_eq!(frames.get(WireFormat::Json), &frames.json);
        assert!(arena.is_empty());
    }
}

/// The doc examples show every form the description defines (so every variant is in the docs),
/// and each example's binary body has exactly the layout its description gives.
#[test]
fn doc_examples_cover_every_described_form_with_its_layout() {
    let (client, server) = doc_examples();
    let client_types: Vec<MsgType> = client.iter().map(|m| m.msg_type()).collect();
    let server_types: Vec<MsgType> = server.iter().map(|m| m.msg_type()).collect();
    for s in MESSAGES {
        assert_eq!(client_types.contains(&s.ty), s.client.is_some(), "client form of {:?}", s.ty);
        assert_eq!(server_types.contains(&s.ty), s.server.is_some(), "server form of {:?}", s.ty);
    }
    let frames = client
        .iter()
        .map(|m| (enc_client(WireFormat::Binary, m), layout_client(m.msg_type()), m.msg_type()))
        .chain(server.iter().map(|m| (enc_server(WireFormat::Binary, m), layout_server(m.msg_type()), m.msg_type())));
    for (frame, fields, t) in frames {
        let mut at = HEADER_LEN;
        dump_fields(&frame, &mut at, &fields, &mut Vec::new());
        assert_eq!(at, frame.len(), "the description of {t:?} does not cover its frame");
    }
}

/// Each JSON example carries `type` and only keys its description lists, all of them except
/// optional ones left out.
#[test]
fn doc_examples_json_keys_are_the_described_ones() {
    let (client, server) = doc_examples();
    let lines = client
        .iter()
        .map(|m| (enc_client(WireFormat::Json, m), m.msg_type().spec().client))
        .chain(server.iter().map(|m| (enc_server(WireFormat::Json, m), m.msg_type().spec().server)));
    for (line, form) in lines {
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let obj = v.as_object().unwrap();
        let form = form.unwrap();
        for key in obj.keys().filter(|k| *k != "type") {
            assert!(form.iter().any(|f| f.json == key), "undescribed key {key} in {v}");
        }
        let optional = [FieldKind::OptName, FieldKind::HistoryFlag];
        for f in form.iter().filter(|f| !optional.contains(&f.kind)) {
            assert!(obj.contains_key(f.json), "described key {} missing in {v}", f.json);
        }
    }
}

/// `docs/PROTOCOL.md` shows every example frame as `header | body` and every JSON line verbatim:
/// they must still be what the encoder produces.
#[test]
fn protocol_doc_matches_the_encoder() {
    let doc = include_str!("../../docs/PROTOCOL.md");
    let frame_line = |b: &[u8]| {
        let body = if b.len() == HEADER_LEN { "(empty body)".to_string() } else { hex(&b[HEADER_LEN..]) };
        format!("{} | {body}", hex(&b[..HEADER_LEN]))
    };
    let (client, server) = doc_examples();
    let frames = client
        .iter()
        .map(|m| (enc_client(WireFormat::Binary, m), enc_client(WireFormat::Json, m)))
        .chain(server.iter().map(|m| (enc_server(WireFormat::Binary, m), enc_server(WireFormat::Json, m))));
    for (bin, json) in frames {
        let line = frame_line(&bin);
        assert!(doc.contains(&line), "docs/PROTOCOL.md lacks the frame {line}");
        let text = std::str::from_utf8(&json[..json.len() - 1]).unwrap();
        assert!(doc.contains(text), "docs/PROTOCOL.md lacks the JSON line {text}");
    }
}

/// The message-type table of `docs/PROTOCOL.md` section 5 lists every described type with its
/// code, name and directions.
#[test]
fn protocol_doc_lists_every_described_type() {
    let doc = include_str!("../../docs/PROTOCOL.md");
    for s in MESSAGES {
        let yes = |form: Option<&[FieldSpec]>| if form.is_some() { "yes" } else { "—" };
        let row = format!(
            "| `{:#04x}` | {} | `{}` | {} | {}",
            s.code,
            s.json.to_uppercase(),
            s.json,
            yes(s.client),
            yes(s.server)
        );
        assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
    }
}

/// Prints the hex dumps in `docs/PROTOCOL.md`, so every byte there comes from the encoder.
#[test]
#[ignore = "prints the docs/PROTOCOL.md examples; run with --ignored --nocapture"]
fn print_wire_examples() {
    let (client, server) = doc_examples();
    for m in &client {
        println!("### client → server {:?}\n", m);
        println!(
            "```text\n{}```\n",
            binary_dump(&enc_client(WireFormat::Binary, m), &layout_client(m.msg_type()), m.msg_type())
        );
        println!("```text\n{}```\n", json_dump(&enc_client(WireFormat::Json, m)));
    }
    for m in &server {
        println!("### server → client {:?}\n", m);
        println!(
            "```text\n{}```\n",
            binary_dump(&enc_server(WireFormat::Binary, m), &layout_server(m.msg_type()), m.msg_type())
        );
        println!("```text\n{}```\n", json_dump(&enc_server(WireFormat::Json, m)));
    }
}
