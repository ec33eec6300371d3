//! TLS on the shared port: TLS and plaintext clients in one room, certificate and record
//! failures that hurt only their own connection, and a TLS reader too slow for a flooding room.

use crate::support::{
    is_notice, is_room_msg, random_bytes, raw_connect, read_until_closed, room_msgs, server_with, tls_config,
    wait_for_stats, Client, ClientMsg, ErrorCode, RunningServer, ServerMsg, SystemKind, TempDir, WireFormat, DEADLINE,
};
use std::io::Write;
use std::time::Instant;

#[test]
fn tls_and_plaintext_clients_share_a_room() {
    let dir = TempDir::new("tls-chat");
    let server = server_with(tls_config(&dir));
    let mut tls_bin = Client::connect_tls(server.addr, WireFormat::Binary, &dir.cert());
    tls_bin.login("tls_bin");
    let mut tls_json = Client::connect_tls(server.addr, WireFormat::Json, &dir.cert());
    tls_json.login("tls_json");
    let mut plain = Client::login_new(server.addr, WireFormat::Binary, "plain");
    for c in [&mut tls_bin, &mut tls_json, &mut plain] {
        c.sync();
    }
    let names = ["tls_bin", "tls_json", "plain"];
    let mut clients = [tls_bin, tls_json, plain];
    for i in 0..clients.len() {
        let text = format!("{} says hi over {}", names[i], if i < 2 { "TLS" } else { "TCP" });
        clients[i].say(&text);
        for (j, c) in clients.iter_mut().enumerate() {
            let got = room_msgs(&c.sync());
            if i == j {
                assert!(got.is_empty());
            } else {
                assert_eq!(got, vec![(names[i].to_string(), text.clone())], "{} receives", names[j]);
            }
        }
    }
    // Private messages and lists work across the seam as well.
    clients[2].send(&ClientMsg::PrivateMsg { to: "TLS_JSON".into(), text: "secret".into() });
    let got = clients[1].recv();
    assert!(matches!(&got, ServerMsg::PrivateMsgDelivery { from, text, .. } if from == "plain" && text == "secret"));
    clients[1].send(&ClientMsg::ListUsers { after: None });
    assert!(
        matches!(clients[1].recv(), ServerMsg::ListUsers { users, .. } if users == ["plain", "tls_bin", "tls_json"])
    );
    let stats = wait_for_stats(&server, "two TLS connections", |s| s.tls_connections == 2);
    assert_eq!(stats.logins, 3);
}

#[test]
fn a_wrong_ca_fails_the_handshake_and_only_that_connection() {
    let dir = TempDir::new("tls-ca");
    let server = server_with(tls_config(&dir));
    let mut plain = Client::login_new(server.addr, WireFormat::Binary, "plain");
    let mut good = Client::connect_tls(server.addr, WireFormat::Json, &dir.cert());
    good.login("good");
    plain.sync();

    // A different self-signed certificate, also for localhost: the server's is not signed by it.
    let other = TempDir::new("tls-other-ca");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    let other_ca = other.path().join("other.crt");
    std::fs::write(&other_ca, ck.cert.pem()).expect("write other CA");
    for format in [WireFormat::Binary, WireFormat::Json] {
        match Client::try_connect_tls(server.addr, format, &other_ca) {
            Ok(_) => panic!("the handshake must fail with an untrusted certificate"),
            Err(e) => assert!(e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer"), "error: {e}"),
        }
    }

    // Everyone else carries on, and new TLS clients with the right CA still get in.
    good.say("still here");
    assert!(is_room_msg(&plain.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. })), "still here"));
    let mut late = Client::connect_tls(server.addr, WireFormat::Binary, &dir.cert());
    late.login("late");
    plain.say("welcome");
    assert!(is_room_msg(&late.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. })), "welcome"));
    assert!(is_room_msg(&good.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. })), "welcome"));
    // No logins leaked from the failed handshakes.
    assert_eq!(wait_for_stats(&server, "3 logins", |s| s.logins == 3).connections_open, 3);
}

/// Sends `bytes` on a fresh raw connection and checks the server closes it while the others
/// (a plain client and a TLS client) keep chatting.
fn garbage_closes_only_itself(tag: &str, bytes: &[u8]) {
    let dir = TempDir::new("tls-garbage");
    let server = server_with(tls_config(&dir));
    let mut plain = Client::login_new(server.addr, WireFormat::Binary, "plain");
    let mut secure = Client::connect_tls(server.addr, WireFormat::Binary, &dir.cert());
    secure.login("secure");
    plain.sync();

    let mut raw = raw_connect(server.addr);
    let _ = raw.write_all(bytes);
    if let Err(e) = read_until_closed(&mut raw) {
        panic!("{tag}: the server should close the connection: {e}");
    }

    plain.say(&format!("after {tag}"));
    assert!(is_room_msg(&secure.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. })), &format!("after {tag}")));
    secure.say("me too");
    assert!(is_room_msg(&plain.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. })), "me too"));
    wait_for_stats(&server, "the garbage connection gone", |s| s.connections_open == 2);
}

#[test]
fn random_bytes_after_a_tls_record_header_close_only_that_connection() {
    let mut bytes = vec![0x16, 0x03, 0x01, 0x00, 0x20];
    bytes.extend(random_bytes(0x7A5_0032, 32));
    garbage_closes_only_itself("random record", &bytes);
}

#[test]
fn an_oversized_tls_record_closes_only_that_connection() {
    let mut bytes = vec![0x16, 0x03, 0x01, 0xff, 0xff];
    bytes.extend(random_bytes(0x7A5_0064, 64));
    garbage_closes_only_itself("huge record", &bytes);
}

#[test]
fn a_tls_client_sending_non_chatproto_plaintext_gets_an_error_then_closed() {
    let dir = TempDir::new("tls-hello");
    let server = server_with(tls_config(&dir));
    let mut plain = Client::login_new(server.addr, WireFormat::Binary, "plain");
    let mut c = Client::connect_tls(server.addr, WireFormat::Json, &dir.cert());
    c.send_raw(b"hello\n");
    let frames = c.expect_closed();
    assert!(matches!(frames.as_slice(), [ServerMsg::ErrorMsg { code: ErrorCode::BadMagic, .. }]), "{frames:?}");
    plain.say("unbothered");
    assert!(plain.sync().iter().any(|m| matches!(m, ServerMsg::RoomMsgAck { .. })));
}

/// What [`flood_until_slow_consumer`] saw; the two clients are handed back, still connected.
struct Flood {
    /// Messages the flooder sent.
    sent: usize,
    /// Flood messages the observer received.
    got: usize,
    /// Whether the observer saw the sloth's disconnect notice.
    notice: bool,
    flooder: Client,
    observer: Client,
}

/// Floods the room from `flooder` with 1 KiB messages until the server reports a slow-consumer
/// disconnect, while `observer` reads on its own thread. The flooder sends `window` messages at
/// a time and waits for their acks (a burst larger than the outbound cap would also cut off
/// readers that keep up: see `backpressure.rs`).
fn flood_until_slow_consumer(
    server: &RunningServer,
    mut flooder: Client,
    mut observer: Client,
    window: usize,
) -> Flood {
    const MAX_MSGS: usize = 40_000;
    const DONE: &str = "flood is over";
    // The observer counts the flood and stops at the final marker.
    let obs = std::thread::spawn(move || {
        let deadline = Instant::now() + DEADLINE * 6;
        let (mut n, mut notice) = (0, false);
        loop {
            match observer.recv_by(deadline) {
                Ok(ServerMsg::RoomMsg { text, .. }) if text == DONE => return Ok((n, notice, observer)),
                Ok(ServerMsg::RoomMsg { .. }) => n += 1,
                Ok(m) if is_notice(&m, SystemKind::Disconnect, "sloth") => notice = true,
                Ok(ServerMsg::ErrorMsg { code, text }) => return Err(format!("observer got {code:?}: {text}")),
                Ok(_) => {}
                Err(e) => return Err(format!("observer after {n} messages: {e}")),
            }
        }
    });
    let deadline = Instant::now() + DEADLINE * 4;
    let slow = || server.handle.stats().slow_consumer_disconnects >= 1;
    let frame = flooder.encode(&ClientMsg::RoomMsg { text: "f".repeat(1024).into() });
    let batch: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * window).collect();
    let mut sent = 0;
    while !slow() && sent < MAX_MSGS && Instant::now() < deadline {
        flooder.send_raw(&batch);
        sent += window;
        let acks = flooder.sync().iter().filter(|m| matches!(m, ServerMsg::RoomMsgAck { .. })).count();
        assert_eq!(acks, window, "flooder's acks");
    }
    assert!(slow(), "no slow-consumer disconnect after {sent} messages: {:?}", server.handle.stats());
    flooder.say(DONE);
    let (got, notice, observer) = obs.join().expect("observer thread").unwrap_or_else(|e| panic!("{e}"));
    Flood { sent, got, notice, flooder, observer }
}

fn slow_tls_reader_setup(max_outbound: usize) -> (TempDir, RunningServer, Client, Client, Client) {
    let dir = TempDir::new("tls-slow");
    let mut cfg = tls_config(&dir);
    cfg.max_outbound_bytes = max_outbound;
    cfg.rate_limit.rate = 0.0; // the flood is the point here
    let server = server_with(cfg);
    let mut slow = Client::connect_tls(server.addr, WireFormat::Binary, &dir.cert());
    slow.login("sloth");
    let flooder = Client::login_new(server.addr, WireFormat::Binary, "flooder");
    let mut observer = Client::login_new(server.addr, WireFormat::Json, "observer");
    observer.sync();
    slow.sync();
    (dir, server, slow, flooder, observer)
}

#[test]
fn a_tls_client_that_stops_reading_is_cut_off_without_stalling_the_room() {
    let (_dir, server, mut slow, flooder, observer) = slow_tls_reader_setup(64 * 1024);
    let flood = flood_until_slow_consumer(&server, flooder, observer, 16);
    assert_eq!(flood.got, flood.sent, "the observer got the whole flood");
    assert!(flood.notice, "the room was told the sloth disconnected");
    let s = server.handle.stats();
    assert_eq!(s.slow_consumer_disconnects, 1, "only the sloth was cut off: {s:?}");
    // The sloth finds its stream ended once it reads again; the others are still chatting.
    slow.expect_closed();
    let (mut flooder, mut observer) = (flood.flooder, flood.observer);
    flooder.say("calm again");
    assert!(is_room_msg(&observer.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. })), "calm again"));
    let mut after = Client::login_new(server.addr, WireFormat::Binary, "newcomer");
    after.send(&ClientMsg::ListUsers { after: None });
    match after.recv_until(|m| matches!(m, ServerMsg::ListUsers { .. })) {
        ServerMsg::ListUsers { users, .. } => assert_eq!(users, vec!["flooder", "newcomer", "observer"]),
        _ => unreachable!(),
    }
}
