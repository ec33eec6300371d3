//! The connection layer over real loopback sockets: the enqueue policy of [`Peers`] (flush
//! list, outbound cap, slow consumers, closing with a last ERROR_MSG), a connection's phases and
//! lingering, and intake (format detection, bad frames, the rate limit). What the client
//! receives is read on a blocking std socket and decoded with the protocol crate.

use super::intake::{Cursor, Policy};
use super::limits::{RateLimit, TokenBucket};
use super::*;
use crate::chat::Outbox;
use crate::protocol::{ClientMsg, ErrorCode, Limits, ServerMsg};
use std::io::Read;
use std::net::{TcpListener, TcpStream as StdStream};
use std::thread;

/// Bound on every wait for the other side: attempts × pause.
const ATTEMPTS: usize = 5_000;
const PAUSE: Duration = Duration::from_millis(1);

/// A connected pair over loopback: a server-side [`Connection`] and the blocking client.
fn connection(now: Instant, rate: &RateLimit) -> (Connection, StdStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = StdStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (server, peer) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let transport = Transport::new(mio::net::TcpStream::from_std(server));
    (Connection::new(transport, peer, now, TokenBucket::new(rate, now), false), client)
}

/// A table with one connection (format set when given) and its client.
fn one_peer(max_outbound: usize, format: Option<WireFormat>) -> (Peers, usize, StdStream) {
    let mut peers = Peers::new(max_outbound);
    let (conn, client) = connection(Instant::now(), &RateLimit::default());
    let key = peers.conns.insert(conn);
    if let Some(f) = format {
        peers.set_format(key, f);
    }
    (peers, key, client)
}

/// Writes everything `key` has queued (as the loop does on each writable edge), closes the
/// socket, and returns what the client received, decoded.
fn deliver(peers: &mut Peers, key: usize, client: StdStream, format: WireFormat) -> Vec<ServerMsg<'static>> {
    let reader = thread::spawn(move || read_all(client));
    for _ in 0..ATTEMPTS {
        peers.conns[key].set_writable();
        peers.write_out(key);
        if !peers.conns[key].has_output() {
            break;
        }
        thread::sleep(PAUSE);
    }
    assert!(!peers.conns[key].has_output(), "the client never took its bytes");
    peers.conns[key].transport().close(&mut peers.wire);
    decode_all(format, &reader.join().unwrap())
}

/// Everything the client receives until the server closes.
fn read_all(mut client: StdStream) -> Vec<u8> {
    let mut all = Vec::new();
    client.read_to_end(&mut all).unwrap();
    all
}

/// Decodes a stream of server frames, all of them, with room for any test frame.
fn decode_all(format: WireFormat, mut bytes: &[u8]) -> Vec<ServerMsg<'static>> {
    let limits = Limits { max_frame: 1 << 20, max_text: 1 << 20 };
    let mut msgs = Vec::new();
    while !bytes.is_empty() {
        let (msg, used) = format.decode_server(bytes, &limits).unwrap().expect("a whole frame");
        msgs.push(msg.into_owned());
        bytes = &bytes[used..];
    }
    msgs
}

fn error_msg(code: ErrorCode, text: &str) -> ServerMsg<'static> {
    ServerMsg::ErrorMsg { code, text: text.to_string().into() }
}

fn room_msg(peers: &mut Peers, format: WireFormat, text: &str) -> bytes::Bytes {
    let msg = ServerMsg::RoomMsg {
        id: 1,
        ts_ms: 2,
        room: "lobby".into(),
        from: "alice".into(),
        text: text.to_string().into(),
        history: false,
    };
    peers.encode(format, &msg)
}

#[test]
fn push_within_the_cap_queues_and_marks_dirty_once() {
    let (mut peers, key, client) = one_peer(64 * 1024, Some(WireFormat::Json));
    let (a, b) = (room_msg(&mut peers, WireFormat::Json, "one"), room_msg(&mut peers, WireFormat::Json, "two"));
    peers.push(key, a.clone());
    peers.push(key, b.clone());
    assert_eq!(peers.conns[key].queued(), a.len() + b.len());
    assert_eq!(peers.backlog(key), Some(a.len() + b.len()));
    assert_eq!(peers.counters.frames_queued, 2);
    assert!(peers.has_dirty());
    assert_eq!(dirty_keys(&mut peers), vec![key]);
    assert!(!peers.has_dirty() && dirty_keys(&mut peers).is_empty());
    // A gone key is neither queued nor listed.
    peers.push(key + 1, a.clone());
    assert!(dirty_keys(&mut peers).is_empty());

    let msgs = deliver(&mut peers, key, client, WireFormat::Json);
    assert_eq!(msgs.len(), 2);
    assert!(matches!(&msgs[1], ServerMsg::RoomMsg { text, .. } if text == "two"));
    assert_eq!(peers.wire.written as usize, a.len() + b.len());
    assert!(peers.counters.slow_consumers == 0 && !peers.conns[key].is_closing());
}

#[test]
fn a_peer_that_never_reads_is_cut_off_with_slow_consumer_in_its_own_format() {
    let cap = 64 * 1024;
    let (mut peers, key, client) = one_peer(cap, Some(WireFormat::Binary));
    let frame = room_msg(&mut peers, WireFormat::Binary, &"x".repeat(4000));
    // The kernel absorbs a few MiB first; 20,000 frames (80 MB) bound the loop.
    let mut pushed = 0usize;
    for _ in 0..20_000 {
        if peers.conns[key].is_closing() {
            break;
        }
        peers.push(key, frame.clone());
        pushed += 1;
    }
    let conn = &peers.conns[key];
    assert_eq!(conn.close_reason(), Some(CloseReason::SlowConsumer), "not cut off after {pushed} frames");
    assert!(matches!(conn.phase(), Phase::Closing { reason: CloseReason::SlowConsumer, since: None }));
    assert_eq!(peers.counters.slow_consumers, 1);
    assert_eq!(peers.backlog(key), None);
    // The backlog was dropped: at most a partly written frame and the last error remain.
    assert!(conn.queued() < frame.len() + 200, "{} bytes still queued", conn.queued());
    // Nothing more is queued for a closing connection, and it is not cut off twice.
    let queued = conn.queued();
    peers.push(key, frame.clone());
    assert_eq!(peers.conns[key].queued(), queued);
    assert_eq!(peers.counters.slow_consumers, 1);
    assert_eq!(dirty_keys(&mut peers), vec![key]);

    // The client starts reading: whole room messages, then the ERROR_MSG, in binary.
    let msgs = deliver(&mut peers, key, client, WireFormat::Binary);
    let (last, rest) = msgs.split_last().unwrap();
    let text = format!("you are reading too slowly: over {cap} bytes were waiting");
    assert_eq!(*last, error_msg(ErrorCode::SlowConsumer, &text));
    assert!(!rest.is_empty() && rest.iter().all(|m| matches!(m, ServerMsg::RoomMsg { .. })));
    assert!(rest.len() < pushed);
}

#[test]
fn close_with_sends_one_error_and_closes() {
    let (mut peers, key, client) = one_peer(64 * 1024, Some(WireFormat::Json));
    peers.close_with(key, CloseReason::Timeout, ErrorCode::Timeout, "login took too long");
    let queued = peers.conns[key].queued();
    assert!(queued > 0);
    assert_eq!(peers.conns[key].phase(), Phase::Closing { reason: CloseReason::Timeout, since: None });
    assert_eq!(peers.backlog(key), None);
    // A second close, a kick, or a push after it queue nothing more; the first reason wins.
    peers.close_with(key, CloseReason::Framing, ErrorCode::Malformed, "again");
    peers.close(key, ErrorCode::AuthFailed, "kicked");
    let frame = room_msg(&mut peers, WireFormat::Json, "late");
    peers.push(key, frame);
    assert_eq!(peers.conns[key].queued(), queued);
    assert_eq!(peers.conns[key].close_reason(), Some(CloseReason::Timeout));
    assert_eq!(dirty_keys(&mut peers), vec![key]);

    let msgs = deliver(&mut peers, key, client, WireFormat::Json);
    assert_eq!(msgs, vec![error_msg(ErrorCode::Timeout, "login took too long")]);
}

#[test]
fn kick_closes_as_kicked_and_answers_in_json_before_any_byte() {
    let (mut peers, key, client) = one_peer(64 * 1024, None);
    assert_eq!(peers.format(key), None);
    assert_eq!(peers.reply_format(key), Some(WireFormat::Json));
    peers.close(key, ErrorCode::AuthFailed, "kicked by admin");
    assert_eq!(peers.conns[key].close_reason(), Some(CloseReason::Kicked));
    let msgs = deliver(&mut peers, key, client, WireFormat::Json);
    assert_eq!(msgs, vec![error_msg(ErrorCode::AuthFailed, "kicked by admin")]);
}

#[test]
fn linger_closes_a_drained_connection_now_and_a_stuck_one_after_linger() {
    let (mut peers, key, client) = one_peer(64 * 1024, Some(WireFormat::Json));
    let t0 = Instant::now();
    assert_eq!(peers.conns[key].linger(t0), None, "not closing");
    assert!(!peers.conns[key].lingered_out(t0 + LINGER));

    // Output not yet written (no flush since the close): it lingers from its first try.
    peers.close_with(key, CloseReason::Kicked, ErrorCode::AuthFailed, "bye");
    let conn = &mut peers.conns[key];
    assert_eq!(conn.linger(t0), Some((false, true)));
    assert_eq!(conn.phase(), Phase::Closing { reason: CloseReason::Kicked, since: Some(t0) });
    let half = t0 + LINGER / 2;
    assert_eq!(conn.linger(half), Some((false, false)));
    assert!(!conn.lingered_out(half));
    assert!(conn.lingered_out(t0 + LINGER));
    assert_eq!(conn.linger(t0 + LINGER), Some((true, false)));

    // Once the last frame is written it closes at once.
    peers.write_out(key);
    assert!(!peers.conns[key].has_output());
    assert_eq!(peers.conns[key].linger(half), Some((true, false)));
    drop(client);

    // A connection closing with nothing queued closes at its first flush.
    let (mut peers, key, _client) = one_peer(64 * 1024, Some(WireFormat::Json));
    peers.start_closing(key, CloseReason::PeerClosed);
    assert_eq!(dirty_keys(&mut peers), vec![key]);
    peers.write_out(key);
    assert_eq!(peers.conns[key].linger(t0), Some((true, true)));
}

#[test]
fn logged_in_moves_opening_to_chatting_only() {
    let (mut peers, key, _client) = one_peer(64 * 1024, Some(WireFormat::Binary));
    assert_eq!(peers.conns[key].phase(), Phase::Opening);
    peers.logged_in(key);
    assert_eq!(peers.conns[key].phase(), Phase::Chatting);
    peers.logged_in(key);
    assert_eq!(peers.conns[key].phase(), Phase::Chatting);
    peers.start_closing(key, CloseReason::Shutdown);
    peers.logged_in(key);
    assert_eq!(peers.conns[key].close_reason(), Some(CloseReason::Shutdown));
    // A gone key is ignored.
    peers.logged_in(key + 7);
}

#[test]
fn refusal_is_a_json_server_full_error() {
    let mut peers = Peers::new(1024);
    let frame = peers.refusal("the server is full");
    assert!(frame.starts_with(b"{") && frame.ends_with(b"\n"));
    assert_eq!(decode_all(WireFormat::Json, &frame), vec![error_msg(ErrorCode::ServerFull, "the server is full")]);
}

/// Intake's view of the server's configuration.
fn policy<'a>(limits: &'a Limits, rate: &'a RateLimit, now: Instant) -> Policy<'a> {
    static SITE: crate::config::site::Site = crate::config::site::Site::fixed(bytes::Bytes::new());
    Policy { limits, rate, now, max_http_head: 8192, site: &SITE }
}

#[test]
fn a_json_first_byte_sets_the_format_and_decodes() {
    let (mut peers, key, _client) = one_peer(64 * 1024, None);
    let (limits, rate) = (Limits::default(), RateLimit::default());
    let data = b"{\"type\":\"ping\",\"token\":7}\n{\"type\":\"time\"}\n{\"type\":\"pi";
    let mut cursor = Cursor::default();
    let p = policy(&limits, &rate, Instant::now());
    assert_eq!(peers.next_msg(key, data, &mut cursor, p), Some(ClientMsg::Ping { token: 7 }));
    assert_eq!(peers.format(key), Some(WireFormat::Json));
    assert_eq!(peers.counters.open_json, 1);
    assert_eq!(peers.next_msg(key, data, &mut cursor, p), Some(ClientMsg::Time));
    // The partial third frame waits for more bytes.
    assert_eq!(peers.next_msg(key, data, &mut cursor, p), None);
    assert_eq!(&data[cursor.used..], b"{\"type\":\"pi");
    assert_eq!(peers.counters.frames_in, 2);
    assert!(dirty_keys(&mut peers).is_empty(), "nothing to answer");
    peers.remove(key).unwrap();
    assert_eq!(peers.counters.open_json, 0);
}

#[test]
fn a_binary_first_byte_sets_the_format_and_reads_from_the_socket() {
    use std::io::Write;
    let (mut peers, key, mut client) = one_peer(64 * 1024, None);
    let mut frame = bytes::BytesMut::new();
    WireFormat::Binary.encode_client(&ClientMsg::Ping { token: 42 }, &mut frame);
    client.write_all(&frame).unwrap();
    // Through the transport into the read arena, as the loop does.
    let mut arena = crate::net::buffer::ReadArena::new(Limits::default().max_frame);
    arena.load(peers.conns[key].pending());
    for _ in 0..ATTEMPTS {
        if let Outcome::Progress(n) = peers.conns[key].transport.read(arena.spare(), &mut peers.wire) {
            arena.filled(n);
        }
        if arena.data().len() >= frame.len() {
            break;
        }
        thread::sleep(PAUSE);
    }
    let (limits, rate) = (Limits::default(), RateLimit::default());
    let mut cursor = Cursor::default();
    let p = policy(&limits, &rate, Instant::now());
    assert_eq!(peers.next_msg(key, arena.data(), &mut cursor, p), Some(ClientMsg::Ping { token: 42 }));
    assert_eq!(cursor.used, frame.len());
    assert_eq!(peers.format(key), Some(WireFormat::Binary));
    assert_eq!((peers.counters.open_binary, peers.counters.open_json), (1, 0));
    assert_eq!(peers.wire.read as usize, frame.len());
}

#[test]
fn a_bad_first_byte_closes_with_bad_magic_in_json() {
    let (mut peers, key, client) = one_peer(64 * 1024, None);
    let (limits, rate) = (Limits::default(), RateLimit::default());
    let mut cursor = Cursor::default();
    let p = policy(&limits, &rate, Instant::now());
    assert_eq!(peers.next_msg(key, b"GET / HTTP/1.1\r\n", &mut cursor, p), None);
    assert_eq!(peers.conns[key].close_reason(), Some(CloseReason::Framing));
    assert_eq!(peers.format(key), None);
    assert_eq!((peers.counters.open_binary, peers.counters.open_json), (0, 0));
    assert_eq!(peers.counters.protocol_errors, 1);
    let text = "not ChatProto: the first byte 0x47 is neither 0x43 (binary) nor '{' (JSON)";
    let msgs = deliver(&mut peers, key, client, WireFormat::Json);
    assert_eq!(msgs, vec![error_msg(ErrorCode::BadMagic, text)]);
}

#[test]
fn a_recoverable_bad_frame_is_answered_and_decoding_carries_on() {
    let (mut peers, key, client) = one_peer(64 * 1024, None);
    let (limits, rate) = (Limits::default(), RateLimit::default());
    let data = b"{\"type\":\"nope\"}\n{\"type\":\"ping\",\"token\":1}\n";
    let mut cursor = Cursor::default();
    let p = policy(&limits, &rate, Instant::now());
    assert_eq!(peers.next_msg(key, data, &mut cursor, p), Some(ClientMsg::Ping { token: 1 }));
    assert_eq!(cursor.used, data.len());
    assert!(!peers.conns[key].is_closing());
    assert_eq!((peers.counters.protocol_errors, peers.counters.frames_in), (1, 1));
    assert_eq!(dirty_keys(&mut peers), vec![key]);
    let msgs = deliver(&mut peers, key, client, WireFormat::Json);
    assert_eq!(msgs, vec![error_msg(ErrorCode::UnknownType, "unknown message type nope")]);
}

#[test]
fn a_frame_that_loses_the_framing_closes_the_connection() {
    let (mut peers, key, client) = one_peer(64 * 1024, None);
    let (limits, rate) = (Limits::default(), RateLimit::default());
    // A binary header with version 2, then a good frame that must not be decoded.
    let mut data = vec![0x43, 0x50, 0x02, 0x20, 0x00, 0x00, 0x00, 0x00, 0x08];
    data.extend_from_slice(&[0; 8]);
    let mut good = bytes::BytesMut::new();
    WireFormat::Binary.encode_client(&ClientMsg::Ping { token: 3 }, &mut good);
    data.extend_from_slice(&good);
    let mut cursor = Cursor::default();
    let p = policy(&limits, &rate, Instant::now());
    assert_eq!(peers.next_msg(key, &data, &mut cursor, p), None);
    assert_eq!(cursor.used, data.len());
    assert_eq!(peers.conns[key].close_reason(), Some(CloseReason::Framing));
    assert_eq!(peers.counters.protocol_errors, 1);
    let text = "unsupported protocol version 2 (this server speaks version 1)";
    let msgs = deliver(&mut peers, key, client, WireFormat::Binary);
    assert_eq!(msgs, vec![error_msg(ErrorCode::BadVersion, text)]);
}

#[test]
fn over_the_rate_limit_refuses_then_closes_as_flooding() {
    let rate = RateLimit { rate: 0.001, burst: 1.0, disconnect_after: 3 };
    let now = Instant::now();
    let mut peers = Peers::new(64 * 1024);
    let (conn, client) = connection(now, &rate);
    let key = peers.conns.insert(conn);
    let limits = Limits::default();
    let data: Vec<u8> = (1..=5).flat_map(|t| format!("{{\"type\":\"ping\",\"token\":{t}}}\n").into_bytes()).collect();
    let mut cursor = Cursor::default();
    let p = policy(&limits, &rate, now);
    assert_eq!(peers.next_msg(key, &data, &mut cursor, p), Some(ClientMsg::Ping { token: 1 }));
    // Tokens 2 and 3 are refused, 4 is the third refusal in a row: disconnect; 5 is never read.
    assert_eq!(peers.next_msg(key, &data, &mut cursor, p), None);
    assert_eq!(peers.conns[key].close_reason(), Some(CloseReason::Flooding));
    assert_eq!(peers.counters.rate_limited, 3);
    assert_eq!(peers.counters.frames_in, 4);
    assert!(cursor.used < data.len());
    assert_eq!(peers.next_msg(key, &data, &mut cursor, p), None, "a closing connection yields nothing");

    let slow = "slow down: over the message rate limit; this message was dropped";
    let flood = "disconnected for flooding: far over the message rate limit";
    let msgs = deliver(&mut peers, key, client, WireFormat::Json);
    assert_eq!(
        msgs,
        vec![
            error_msg(ErrorCode::RateLimited, slow),
            error_msg(ErrorCode::RateLimited, slow),
            error_msg(ErrorCode::RateLimited, flood)
        ]
    );
}

#[test]
fn two_connections_have_their_own_queues_and_one_flush_entry_each() {
    let mut peers = Peers::new(64 * 1024);
    let now = Instant::now();
    let (a, client_a) = connection(now, &RateLimit::default());
    let (b, client_b) = connection(now, &RateLimit::default());
    let (ka, kb) = (peers.conns.insert(a), peers.conns.insert(b));
    peers.set_format(ka, WireFormat::Json);
    peers.set_format(kb, WireFormat::Binary);
    // One shared frame per format, as the chat core fans a room message out.
    let json = room_msg(&mut peers, WireFormat::Json, "hi all");
    let bin = room_msg(&mut peers, WireFormat::Binary, "hi all");
    for _ in 0..3 {
        peers.push(ka, json.clone());
        peers.push(kb, bin.clone());
    }
    peers.send_error(kb, ErrorCode::EmptyText, "empty");
    let mut dirty = dirty_keys(&mut peers);
    dirty.sort_unstable();
    assert_eq!(dirty, vec![ka, kb]);
    assert_eq!(peers.counters.frames_queued, 7);
    let to_a = deliver(&mut peers, ka, client_a, WireFormat::Json);
    let to_b = deliver(&mut peers, kb, client_b, WireFormat::Binary);
    assert_eq!(to_a.len(), 3);
    assert_eq!(to_b.len(), 4);
    assert_eq!(to_b[3], error_msg(ErrorCode::EmptyText, "empty"));
    assert_eq!(to_a[0], to_b[0], "the same message in either format");
}

/// This turn's flush list, as the loop takes it.
fn dirty_keys(peers: &mut Peers) -> Vec<usize> {
    let mut keys = Vec::new();
    peers.take_dirty(&mut keys);
    keys
}

/// Issue 16, item 11: undecodable frames used to bypass the rate limiter, each drawing its own
/// ERROR_MSG (798k unknown-type frames drew 216k answers). They now cost a token like any frame.
#[test]
fn a_flood_of_undecodable_frames_is_rate_limited_then_cut_off() {
    let rate = RateLimit { rate: 0.001, burst: 2.0, disconnect_after: 3 };
    let now = Instant::now();
    let mut peers = Peers::new(64 * 1024);
    let (conn, client) = connection(now, &rate);
    let key = peers.conns.insert(conn);
    let limits = Limits::default();
    let data: Vec<u8> = (0..100).flat_map(|_| b"{\"type\":\"nope\"}\n".to_vec()).collect();
    let mut cursor = Cursor::default();
    assert_eq!(peers.next_msg(key, &data, &mut cursor, policy(&limits, &rate, now)), None);
    // Two answered within the burst, two refused, the third refusal in a row cuts it off.
    assert_eq!(peers.conns[key].close_reason(), Some(CloseReason::Flooding));
    assert_eq!(peers.counters.protocol_errors, 5);
    assert_eq!(peers.counters.rate_limited, 3);
    assert!(cursor.used < data.len(), "the rest of the flood is never decoded");
    let unknown = error_msg(ErrorCode::UnknownType, "unknown message type nope");
    let slow = error_msg(ErrorCode::RateLimited, "slow down: over the message rate limit; this message was dropped");
    let flood = error_msg(ErrorCode::RateLimited, "disconnected for flooding: far over the message rate limit");
    let msgs = deliver(&mut peers, key, client, WireFormat::Json);
    assert_eq!(msgs, vec![unknown.clone(), unknown, slow.clone(), slow, flood]);
}

/// Issue 16, item 2: one frame bigger than `max_outbound` (a reply we chose to send) reaches a
/// reader that reads; the cap judges what a reader leaves unread, not the size of a frame.
#[test]
fn a_frame_over_the_cap_reaches_a_reader_that_reads() {
    let cap = 4 * 1024;
    let (peers, key, client) = one_peer(cap, Some(WireFormat::Json));
    let mut peers = peers.with_slow_policy(1024 * 1024, Duration::from_secs(2));
    let big = room_msg(&mut peers, WireFormat::Json, &"\u{1}".repeat(8 * 1024));
    assert!(big.len() > 10 * cap, "{} bytes", big.len());
    peers.push(key, big.clone());
    peers.push(key, big.clone());
    assert_eq!(peers.flush(key, Instant::now()), None, "not closing");
    let msgs = deliver(&mut peers, key, client, WireFormat::Json);
    assert_eq!(msgs.len(), 2);
    assert_eq!(peers.counters.slow_consumers, 0);
}

/// A reader that takes nothing is still cut: at the flush once its backlog has been over the
/// cap for the grace, whatever the hard cap.
#[test]
fn a_reader_that_takes_nothing_is_cut_after_the_grace() {
    let cap = 64 * 1024;
    let (peers, key, _client) = one_peer(cap, Some(WireFormat::Binary));
    let mut peers = peers.with_slow_policy(1 << 30, Duration::from_secs(5));
    let frame = room_msg(&mut peers, WireFormat::Binary, &"x".repeat(4000));
    let start = Instant::now();
    // Fill the kernel's buffers and then ours past the cap (the loop's flush after each burst).
    for _ in 0..2_000 {
        (0..50).for_each(|_| peers.push(key, frame.clone()));
        peers.conns[key].set_writable();
        assert_eq!(peers.flush(key, start), None, "never cut within the grace");
        if peers.conns[key].backlog() > 2 * cap {
            break;
        }
    }
    assert!(peers.conns[key].backlog() > 2 * cap, "the socket took everything");
    assert_eq!(peers.flush(key, start + Duration::from_secs(4)), None, "still within the grace");
    assert_eq!(peers.flush(key, start + Duration::from_secs(6)), Some((false, true)), "cut, lingering");
    assert_eq!(peers.conns[key].close_reason(), Some(CloseReason::SlowConsumer));
    assert_eq!(peers.counters.slow_consumers, 1);
    assert!(peers.conns[key].queued() < frame.len() + 200, "the backlog was dropped");
}
