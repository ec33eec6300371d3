//! Abusive load beside the pair: a thousand slowloris connections, a hundred clients that never
//! read while a room floods, a flood from one client, a connection storm. Every loop is bounded
//! in count; the pair must not lose a message to any of them.

use super::pair::{Pair, ROOM};
use crate::support::{
    decode_all, have_fds, raw, raw_connect, raw_connect_small_rcvbuf, read_until_closed, reset, server, server_with,
    summary, tcp_connect_from, wait_for_stats, Client, ClientMsg, ErrorCode, ServerConfig, ServerMsg, WireFormat,
    DEADLINE,
};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The slowloris connections.
const SLOWLORIS: usize = 1000;

#[test]
fn a_thousand_slowloris_connections_time_out_while_the_pair_chats() {
    if !have_fds(3 * SLOWLORIS as u64 + 200) {
        return;
    }
    let mut cfg = ServerConfig::loopback();
    cfg.login_timeout = Duration::from_secs(1);
    let server = server_with(cfg);
    let pair = Pair::start(server.addr);
    // Half start a binary LOGIN whose body never completes, half a JSON line that never ends.
    let binary_head = raw::frame_claiming(raw::LOGIN, 64, b"");
    let json_head = b"{\"type\":\"login\",\"username\":\"".to_vec();
    let mut conns: Vec<(WireFormat, TcpStream)> = Vec::with_capacity(SLOWLORIS);
    for i in 0..SLOWLORIS {
        let mut tcp = raw_connect(server.addr);
        let (format, head) =
            if i % 2 == 0 { (WireFormat::Binary, &binary_head) } else { (WireFormat::Json, &json_head) };
        tcp.write_all(head).expect("send head");
        conns.push((format, tcp));
    }
    // Trickle: one more byte each, a few rounds (the server may already be closing some).
    for _ in 0..3 {
        for (_, tcp) in conns.iter_mut() {
            let _ = tcp.write_all(b"a");
        }
        pair.still_chatting();
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each is closed with ERROR_MSG TIMEOUT in its own format.
    for (i, (format, tcp)) in conns.iter_mut().enumerate() {
        let bytes = read_until_closed(tcp).unwrap_or_else(|e| panic!("slowloris {i}: {e}"));
        let frames = decode_all(*format, &bytes);
        assert!(
            matches!(frames.last(), Some(ServerMsg::ErrorMsg { code: ErrorCode::Timeout, .. })),
            "slowloris {i} ({format:?}): {}",
            summary(&frames)
        );
    }
    wait_for_stats(&server, "only the pair left", |s| s.connections_open == 2);
    pair.finish();
}

/// Readers that never read, in the flooded room.
const NON_READERS: usize = 100;
/// Text of one flood message.
const FLOOD_TEXT_LEN: usize = 1024;
/// Flood messages per write (the flooder reads its ACKs between writes).
const FLOOD_BATCH: usize = 20;
/// Upper bound on flood batches (10 MB per non-reader at most).
const MAX_FLOOD_BATCHES: usize = 500;

/// Sends `n` room messages from `c` in one write and reads its `n` ACKs (skipping the rest).
fn flood_batch(c: &mut Client, text: &str, n: usize) {
    let mut bytes = Vec::new();
    for _ in 0..n {
        bytes.extend(c.encode(&ClientMsg::RoomMsg { text: text.into() }));
    }
    c.send_raw(&bytes);
    for _ in 0..n {
        match c.recv_until(|m| matches!(m, ServerMsg::RoomMsgAck { .. } | ServerMsg::ErrorMsg { .. })) {
            ServerMsg::RoomMsgAck { .. } => {}
            other => panic!("flooder: {other:?}"),
        }
    }
}

#[test]
fn a_hundred_clients_that_never_read_are_cut_off_while_a_room_floods() {
    if !have_fds(4 * NON_READERS as u64 + 200) {
        return;
    }
    let mut cfg = ServerConfig::loopback();
    cfg.rate_limit.rate = 0.0;
    cfg.max_outbound_bytes = 64 * 1024;
    let server = server_with(cfg);
    let pair = Pair::start(server.addr);
    let mut sleepers: Vec<Client> = (0..NON_READERS)
        .map(|i| {
            let mut c = Client::from_tcp(raw_connect_small_rcvbuf(server.addr, 4096), WireFormat::Binary);
            c.login(&format!("sleeper-{i}"));
            c
        })
        .collect();
    let mut flooder = Client::login_new(server.addr, WireFormat::Binary, "flooder");
    let text = "f".repeat(FLOOD_TEXT_LEN);
    let mut batches = 0;
    while server.handle.stats().slow_consumer_disconnects < NON_READERS as u64 && batches < MAX_FLOOD_BATCHES {
        flood_batch(&mut flooder, &text, FLOOD_BATCH);
        batches += 1;
    }
    eprintln!("flood: {batches} batches of {FLOOD_BATCH} x {FLOOD_TEXT_LEN} bytes");
    pair.still_chatting();
    let s = wait_for_stats(&server, "every sleeper cut off", |s| s.slow_consumer_disconnects >= NON_READERS as u64);
    assert_eq!(s.slow_consumer_disconnects, NON_READERS as u64, "only the sleepers are slow: {s:?}");
    wait_for_stats(&server, "the pair and the flooder left", |s| s.connections_open == 3);
    // The flooder is still served.
    flood_batch(&mut flooder, "after the cut", 1);
    // Every sleeper's connection is really closed. Draining megabytes through a 4 KiB window
    // can stall in the sender's zero-window probing, so poke instead: a socket the server has
    // closed answers new data with RST; an open one would answer the PING.
    for (i, c) in sleepers.iter_mut().enumerate() {
        let _ = c.try_send(&ClientMsg::Ping { token: 1 });
        let mut tcp = c.tcp().try_clone().expect("clone");
        read_until_closed(&mut tcp).unwrap_or_else(|e| panic!("sleeper {i} still open: {e}"));
    }
    pair.finish();
}

#[test]
fn a_slow_consumer_is_told_why_it_is_cut_off() {
    let mut cfg = ServerConfig::loopback();
    cfg.rate_limit.rate = 0.0;
    cfg.max_outbound_bytes = 64 * 1024;
    let server = server_with(cfg);
    let pair = Pair::start(server.addr);
    // Default buffers: a 4 KiB window could stall the final drain in zero-window probing.
    let mut sleeper = Client::login_new(server.addr, WireFormat::Binary, "sleeper");
    let mut flooder = Client::login_new(server.addr, WireFormat::Binary, "flooder");
    let text = "f".repeat(FLOOD_TEXT_LEN);
    let mut batches = 0;
    while server.handle.stats().slow_consumer_disconnects < 1 && batches < 4 * MAX_FLOOD_BATCHES {
        flood_batch(&mut flooder, &text, FLOOD_BATCH);
        batches += 1;
    }
    eprintln!("flood: {batches} batches of {FLOOD_BATCH} x {FLOOD_TEXT_LEN} bytes");
    wait_for_stats(&server, "the sleeper cut off", |s| s.slow_consumer_disconnects == 1);
    let frames = sleeper.expect_closed();
    assert!(
        matches!(frames.last(), Some(ServerMsg::ErrorMsg { code: ErrorCode::SlowConsumer, .. })),
        "the last frame says why: {}",
        summary(&frames)
    );
    pair.finish();
}

/// Messages in the one-client flood.
const FLOOD: u64 = 10_000;

#[test]
fn a_flood_from_one_client_does_not_starve_the_pair() {
    let mut cfg = ServerConfig::loopback();
    cfg.rate_limit.rate = 0.0;
    let server = server_with(cfg);
    let pair = Pair::start(server.addr);
    let mut flooder = Client::login_new(server.addr, WireFormat::Json, "flooder");
    flooder.join(ROOM);
    // Writes on one thread, reads ACKs on this one, so neither side waits for the other.
    let mut writer = flooder.tcp().try_clone().expect("clone");
    let encoded: Vec<u8> =
        (0..100).flat_map(|i| flooder.encode(&ClientMsg::RoomMsg { text: format!("flood {i}").into() })).collect();
    let write_thread = std::thread::spawn(move || {
        for _ in 0..FLOOD / 100 {
            writer.write_all(&encoded)?;
        }
        Ok::<_, std::io::Error>(())
    });
    let deadline = Instant::now() + 3 * DEADLINE;
    let mut acks = 0;
    while acks < FLOOD {
        match flooder.recv_by(deadline) {
            Ok(ServerMsg::RoomMsgAck { .. }) => acks += 1,
            Ok(m @ ServerMsg::ErrorMsg { .. }) => panic!("flooder: {m:?}"),
            Ok(_) => {}
            Err(e) => panic!("flooder after {acks} ACKs: {e}"),
        }
    }
    write_thread.join().expect("writer").expect("flood write");
    pair.finish_with_others(Some(FLOOD));
}

/// Storm threads, and connections each opens.
const STORM_THREADS: usize = 4;
const STORM_PER_THREAD: usize = 400;

/// One storm thread: every kind of short-lived connection, in turn.
fn storm(addr: std::net::SocketAddr, t: usize) -> Result<u64, String> {
    let mut held = Vec::new();
    let mut logins = 0;
    for i in 0..STORM_PER_THREAD {
        let tcp = tcp_connect_from(None, addr).map_err(|e| format!("connect {t}/{i}: {e}"))?;
        match i % 5 {
            0 => drop(tcp),
            1 => {
                let mut c = Client::from_tcp(tcp, WireFormat::Binary);
                let name = format!("storm-{t}-{i}");
                c.send(&ClientMsg::Login { username: name.as_str().into(), credential: None, since: None });
                match c.recv_by(Instant::now() + DEADLINE) {
                    Ok(ServerMsg::LoginAck { .. }) => logins += 1,
                    other => return Err(format!("{name}: {other:?}")),
                }
                c.close();
            }
            2 => {
                let mut tcp = tcp;
                let _ = tcp.write_all(b"CP\x01\x04");
                reset(tcp);
            }
            3 => {
                let mut tcp = tcp;
                let _ = tcp.write_all(b"{\"type\":\"ping\"}\n");
                drop(tcp);
            }
            _ => held.push(tcp),
        }
    }
    drop(held);
    Ok(logins)
}

#[test]
fn a_connection_storm_leaves_the_pair_and_the_server_intact() {
    if !have_fds(2 * (STORM_THREADS * STORM_PER_THREAD) as u64 + 200) {
        return;
    }
    let server = server();
    let pair = Pair::start(server.addr);
    let addr = server.addr;
    let threads: Vec<_> = (0..STORM_THREADS).map(|t| std::thread::spawn(move || storm(addr, t))).collect();
    pair.still_chatting();
    let mut logins = 0;
    for t in threads {
        logins += t.join().expect("storm thread").unwrap_or_else(|e| panic!("storm: {e}"));
    }
    assert_eq!(logins, (STORM_THREADS * STORM_PER_THREAD / 5) as u64);
    let s = wait_for_stats(&server, "only the pair left", |s| s.connections_open == 2);
    assert_eq!(s.logins, 2 + logins, "{s:?}");
    assert!(s.connections_total >= 2 + (STORM_THREADS * STORM_PER_THREAD) as u64, "{s:?}");
    // Still accepting.
    let mut late = Client::login_new(server.addr, WireFormat::Json, "late");
    late.sync();
    pair.finish();
}
