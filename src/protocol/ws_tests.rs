//! The WebSocket frame codec: headers, masking, unwrapping in place, server text frames.

use super::*;
use bytes::BytesMut;

/// A masked client frame.
fn client(fin: bool, opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_header(&mut out, fin, opcode, payload.len(), Some(key));
    let at = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[at..], key, 0);
    out.to_vec()
}

/// Unwraps `buf` completely; returns the lines, the events and the carried-over bytes.
fn unwrap_all(state: &mut Inbound, mut buf: Vec<u8>, max: usize) -> (Vec<u8>, Vec<Event>, Vec<u8>) {
    let mut u = Unframer::new(state, max);
    let mut events = Vec::new();
    while let Some(e) = u.next(state, &mut buf) {
        let stop = matches!(e, Event::Refuse(_) | Event::Close(..));
        events.push(e);
        if stop {
            break;
        }
    }
    let (ready, len) = u.finish(state, &mut buf);
    (buf[..ready].to_vec(), events, buf[ready..len].to_vec())
}

const K: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[test]
fn masked_text_frames_become_lines() {
    let buf = [client(true, OP_TEXT, br#"{"type":"ping"}"#, K), client(true, OP_TEXT, b"{\"a\":\n1}", K)].concat();
    let (lines, events, rest) = unwrap_all(&mut Inbound::default(), buf, 1024);
    assert_eq!(lines, b"{\"type\":\"ping\"}\n{\"a\": 1}\n");
    assert!(events.is_empty() && rest.is_empty());
}

#[test]
fn fragments_join_across_reads_with_a_ping_between() {
    let whole = [
        client(false, OP_TEXT, b"{\"x\":", K),
        client(true, OP_PING, b"hi", K),
        client(false, OP_CONTINUATION, b"\"ab", K),
        client(true, OP_CONTINUATION, b"c\"}", K),
    ]
    .concat();
    for cut in 1..whole.len() {
        let mut state = Inbound::default();
        let (mut lines, mut events, rest) = unwrap_all(&mut state, whole[..cut].to_vec(), 1024);
        let (more, e2, rest2) = unwrap_all(&mut state, [rest, whole[cut..].to_vec()].concat(), 1024);
        lines.extend(more);
        events.extend(e2);
        assert_eq!(lines, b"{\"x\":\"abc\"}\n", "cut at {cut}");
        assert_eq!(events.len(), 1, "cut at {cut}");
        assert!(rest2.is_empty());
    }
}

#[test]
fn rule_breaking_frames_are_refused_with_their_codes() {
    let code = |buf: Vec<u8>| match unwrap_all(&mut Inbound::default(), buf, 16).1.pop() {
        Some(Event::Refuse((code, _))) => code,
        other => panic!("{other:?}"),
    };
    let mut unmasked = BytesMut::new();
    write_frame(&mut unmasked, OP_TEXT, b"{}", None);
    assert_eq!(code(unmasked.to_vec()), CloseCode::Protocol);
    assert_eq!(code(client(true, OP_TEXT, &[0xff, 0xfe], K)), CloseCode::BadData);
    assert_eq!(code(client(true, OP_TEXT, &[b'a'; 17], K)), CloseCode::TooBig);
    assert_eq!(code(client(true, OP_BINARY, b"x", K)), CloseCode::Unsupported);
    assert_eq!(code(client(true, OP_CONTINUATION, b"x", K)), CloseCode::Protocol);
    assert_eq!(code(client(false, OP_PING, b"x", K)), CloseCode::Protocol);
    assert_eq!(code(client(true, 0x3, b"x", K)), CloseCode::Protocol);
    assert_eq!(code([client(false, OP_TEXT, b"x", K), client(true, OP_TEXT, b"y", K)].concat()), CloseCode::Protocol);
    assert_eq!(code(client(true, OP_CLOSE, &[0x03, 0xe8 + 5], K)), CloseCode::Protocol); // 1005
    let big_header = [0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3, 4];
    assert_eq!(code(big_header.to_vec()), CloseCode::TooBig);
}

#[test]
fn a_close_frame_reports_its_code() {
    let (_, events, _) = unwrap_all(&mut Inbound::default(), client(true, OP_CLOSE, &[0x03, 0xe8, b'o', b'k'], K), 64);
    assert_eq!(events, vec![Event::Close(Some(1000), 8..10)]);
}

#[test]
fn server_text_frames_have_minimal_headers() {
    for len in [0, 1, 125, 126, 65535, 65536, 70000] {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let payload = vec![b'x'; len];
        text_frame(&mut out, |o| {
            o.extend_from_slice(&payload);
            o.extend_from_slice(b"\n");
        });
        let (h, range) = server_frame(&out[6..]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode, h.len as usize), (true, OP_TEXT, len));
        assert_eq!(
            h.header_len,
            if len < 126 {
                2
            } else if len < 65536 {
                4
            } else {
                10
            }
        );
        assert_eq!(&out[6..][range], &payload[..]);
        assert_eq!(&out[..6], b"prefix");
    }
}

#[test]
fn masking_is_its_own_inverse_at_any_offset() {
    let data: Vec<u8> = (0..=255).collect();
    for offset in 0..8 {
        let mut d = data.clone();
        apply_mask(&mut d, K, offset);
        assert_eq!(d[0], data[0] ^ K[offset % 4]);
        apply_mask(&mut d, K, offset);
        assert_eq!(d, data);
    }
}

/// A run of frames, mostly valid: any opcode (some unknown), fin or not, masked or (rarely)
/// not, payloads of any bytes up to 300 long.
fn frames() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let frame = (any::<bool>(), prop::sample::select(vec![0u8, 1, 1, 1, 2, 3, 8, 9, 10]), any::<u8>(), {
        prop::collection::vec(prop_oneof![Just(b'a'), Just(b'\n'), any::<u8>()], 0..300)
    })
        .prop_map(|(fin, op, m, payload)| {
            let mut out = BytesMut::new();
            let key = if m < 250 { Some([m, 1, 2, 3]) } else { None };
            write_frame(&mut out, op, &payload, key);
            if !fin {
                out[0] &= 0x7F;
            }
            out.to_vec()
        });
    prop::collection::vec(frame, 0..6).prop_map(|v| v.concat())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]

    /// Bytes arriving in two reads unwrap to what they unwrap to in one: the same lines, the
    /// same events, and never a panic or an out-of-range length, whatever the bytes.
    #[test]
    fn unwrapping_in_two_reads_equals_one(data in proptest::prop_oneof![frames(), proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)], cut in 0usize..400) {
        let cut = cut.min(data.len());
        let (whole_lines, whole_events, _) = unwrap_all(&mut Inbound::default(), data.clone(), 256);
        let mut state = Inbound::default();
        let (mut lines, mut events, rest) = unwrap_all(&mut state, data[..cut].to_vec(), 256);
        let stopped = matches!(events.last(), Some(Event::Refuse(_) | Event::Close(..)));
        if !stopped {
            let (more, e2, _) = unwrap_all(&mut state, [rest, data[cut..].to_vec()].concat(), 256);
            lines.extend(more);
            events.extend(e2);
        }
        proptest::prop_assert_eq!(&lines, &whole_lines);
        // Events carry ranges into different buffers; compare their kinds and codes.
        let kind = |e: &Event| match e {
            Event::Ping(r) => format!("ping {}", r.len()),
            Event::Close(c, r) => format!("close {c:?} {}", r.len()),
            Event::Refuse((c, _)) => format!("refuse {c:?}"),
        };
        let got: Vec<String> = events.iter().map(kind).collect();
        let want: Vec<String> = whole_events.iter().map(kind).collect();
        proptest::prop_assert_eq!(got, want);
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            proptest::prop_assert!(std::str::from_utf8(line).is_ok());
        }
    }
}
