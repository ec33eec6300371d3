//! Policy limits hit beside the pair: connections per address, connections in total, the login
//! deadline, idle PING and timeout, the message rate limit. Limits are set small so the tests
//! are quick; nothing asserts how long anything took.

use super::pair::Pair;
use crate::support::{
    server_with, summary, tcp_connect_from, wait_for_stats, Client, ClientMsg, ErrorCode, Msg, ServerConfig, ServerMsg,
    WireFormat, DEADLINE,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A connection that must be refused with SERVER_FULL (a JSON line, whatever the client
/// speaks) and closed. With `login`, the client sends its LOGIN at once, as real clients do.
#[track_caller]
fn expect_refused(from: Option<IpAddr>, addr: SocketAddr, login: bool) {
    let tcp = tcp_connect_from(from, addr).expect("connect");
    let mut c = Client::from_tcp(tcp, WireFormat::Json);
    c.name = format!("refused from {from:?}");
    if login {
        // The server may already have closed: a failed write is fine, the reply is what counts.
        let _ = c.try_send(&ClientMsg::Login { username: "refused".into(), credential: None, since: None });
    }
    c.expect_error_then_closed(ErrorCode::ServerFull);
}

/// Logs in a new connection from `from`, retrying while the server has not yet noticed a
/// close that freed a slot (bounded).
#[track_caller]
fn login_when_admitted(from: Option<IpAddr>, addr: SocketAddr, name: &str) -> Client {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let tcp = tcp_connect_from(from, addr).expect("connect");
        let mut c = Client::from_tcp(tcp, WireFormat::Binary);
        c.name = name.to_string();
        let _ = c.try_send(&ClientMsg::Login { username: name.into(), credential: None, since: None });
        match c.recv_by(deadline) {
            Ok(ServerMsg::LoginAck { .. }) => return c,
            // Refused in JSON: the binary decoder sees '{' as bad magic, or the close.
            Ok(_) | Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            other => panic!("{name} was never admitted: {other:?}"),
        }
    }
}

#[test]
fn per_address_cap_refuses_the_extra_connection_only() {
    let mut cfg = ServerConfig::loopback();
    cfg.exempt_loopback = false;
    cfg.max_per_address = 2;
    let server = server_with(cfg);
    // The pair is the two connections 127.0.0.1 may have.
    let pair = Pair::start(server.addr);
    expect_refused(Some(loopback(1)), server.addr, false);
    // Another "host" has its own two.
    let other = loopback(2);
    let first = login_when_admitted(Some(other), server.addr, "host2-a");
    let _second = login_when_admitted(Some(other), server.addr, "host2-b");
    expect_refused(Some(other), server.addr, false);
    expect_refused(Some(other), server.addr, true);
    // A third host is unaffected.
    let _third = login_when_admitted(Some(loopback(3)), server.addr, "host3-a");
    // Closing one frees its slot.
    first.close();
    let _again = login_when_admitted(Some(other), server.addr, "host2-c");
    expect_refused(Some(other), server.addr, false);
    let s = wait_for_stats(&server, "the refusals counted", |s| s.accept_refusals >= 4);
    assert_eq!(s.logins, 2 + 4, "pair plus four admitted logins: {s:?}");
    pair.finish();
}

#[test]
fn max_connections_refuses_then_recovers() {
    let mut cfg = ServerConfig::loopback();
    cfg.max_connections = 4;
    let server = server_with(cfg);
    let pair = Pair::start(server.addr);
    let a = login_when_admitted(None, server.addr, "a");
    // A connection that never sends anything still takes a slot.
    let idle = Client::connect(server.addr, WireFormat::Json);
    wait_for_stats(&server, "four connections", |s| s.connections_open == 4);
    for login in [false, true, false] {
        expect_refused(None, server.addr, login);
    }
    a.close();
    idle.close();
    wait_for_stats(&server, "the pair alone", |s| s.connections_open == 2);
    let _b = login_when_admitted(None, server.addr, "b");
    let _c = login_when_admitted(None, server.addr, "c");
    expect_refused(None, server.addr, true);
    wait_for_stats(&server, "four refusals", |s| s.accept_refusals >= 4);
    pair.finish();
}

#[test]
fn login_timeout_closes_silent_and_partial_connections() {
    let mut cfg = ServerConfig::loopback();
    cfg.login_timeout = Duration::from_millis(300);
    let server = server_with(cfg);
    let pair = Pair::start(server.addr);
    // Silent: never sends a byte. Answered in JSON (no format known).
    let mut silent = Client::connect(server.addr, WireFormat::Json);
    silent.name = "silent".into();
    // Partial: half a binary LOGIN. Answered in binary.
    let mut partial = Client::connect(server.addr, WireFormat::Binary);
    partial.name = "partial".into();
    let login = partial.encode(&ClientMsg::Login { username: "partial".into(), credential: None, since: None });
    partial.send_raw(&login[..6]);
    // Talks (PING), never logs in.
    let mut talker = Client::connect(server.addr, WireFormat::Json);
    talker.name = "talker".into();
    talker.sync();
    for c in [&mut silent, &mut partial, &mut talker] {
        c.expect_error_then_closed(ErrorCode::Timeout);
    }
    wait_for_stats(&server, "the pair alone", |s| s.connections_open == 2);
    pair.finish();
}

#[test]
fn idle_clients_are_pinged_and_only_the_silent_one_is_closed() {
    let mut cfg = ServerConfig::loopback();
    cfg.idle_ping = Duration::from_millis(300);
    cfg.idle_timeout = Duration::from_millis(1500);
    let server = server_with(cfg);
    // The pair never goes quiet for long: it is neither pinged to death nor closed.
    let pair = Pair::start(server.addr);
    let mut polite = Client::login_new(server.addr, WireFormat::Json, "polite");
    let mut mute = Client::login_new(server.addr, WireFormat::Binary, "mute");
    let mute_thread = std::thread::spawn(move || {
        let frames = mute.expect_closed();
        let pinged = frames.iter().any(|m| matches!(m, ServerMsg::Ping { .. }));
        let last = frames.last().cloned();
        (pinged, last, summary(&frames))
    });
    // The polite client answers every PING until the mute one is gone, and a little longer.
    let deadline = Instant::now() + DEADLINE;
    let mut pongs = 0;
    let mut pongs_after_mute_closed = 0;
    while pongs_after_mute_closed < 2 {
        let m = polite.recv_by(deadline).unwrap_or_else(|e| panic!("polite: {e} after {pongs} PONGs"));
        match m {
            ServerMsg::Ping { token } => {
                polite.send(&ClientMsg::Pong { token });
                pongs += 1;
                if mute_thread.is_finished() {
                    pongs_after_mute_closed += 1;
                }
            }
            ServerMsg::ErrorMsg { .. } => panic!("polite was closed: {m:?}"),
            _ => {}
        }
    }
    let (pinged, last, frames) = mute_thread.join().expect("mute thread");
    assert!(pinged, "mute was pinged before being closed: {frames}");
    assert!(matches!(last, Some(ServerMsg::ErrorMsg { code: ErrorCode::Timeout, .. })), "{frames}");
    polite.sync();
    pair.finish();
}

/// Sends `n` room messages in one write and returns the replies to them (ACK or ERROR_MSG),
/// and whether the server then closed the connection.
fn burst(c: &mut Client, n: usize) -> (Vec<Msg>, bool) {
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.extend(c.encode(&ClientMsg::RoomMsg { text: format!("flood {i}").into() }));
    }
    let _ = c.try_send_raw(&bytes);
    let deadline = Instant::now() + DEADLINE;
    let mut replies = Vec::new();
    while replies.len() < n {
        match c.recv_by(deadline) {
            Ok(m @ (ServerMsg::RoomMsgAck { .. } | ServerMsg::ErrorMsg { .. })) => replies.push(m),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return (replies, true),
            Err(e) => panic!("{}: {e} after {}", c.name, summary(&replies)),
        }
    }
    (replies, false)
}

fn count(replies: &[Msg], pred: impl Fn(&Msg) -> bool) -> usize {
    replies.iter().filter(|m| pred(m)).count()
}

#[test]
fn rate_limit_refuses_a_burst_then_disconnects_a_flooder() {
    let mut cfg = ServerConfig::loopback();
    // The pair sends 50/s each, well under the 100/s sustained rate.
    cfg.rate_limit.rate = 100.0;
    cfg.rate_limit.burst = 20.0;
    cfg.rate_limit.disconnect_after = 30;
    let server = server_with(cfg);
    let pair = Pair::start(server.addr);

    // 25 at once: about 20 pass (a little refill may let one or two more through), the rest are
    // refused, and the connection stays.
    let mut eager = Client::login_new(server.addr, WireFormat::Binary, "eager");
    std::thread::sleep(Duration::from_millis(300)); // the LOGIN's token comes back
    let (replies, closed) = burst(&mut eager, 25);
    assert!(!closed, "eager was not cut off: {}", summary(&replies));
    let acks = count(&replies, |m| matches!(m, ServerMsg::RoomMsgAck { .. }));
    let limited = count(&replies, |m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::RateLimited, .. }));
    assert_eq!(acks + limited, 25, "{}", summary(&replies));
    assert!((20..25).contains(&acks), "the burst passes, then refusals: {}", summary(&replies));
    std::thread::sleep(Duration::from_millis(300)); // refill, so the PING is not refused
    eager.sync();

    // A flood far past the limit: refusals, then the connection is closed with RATE_LIMITED.
    let mut flooder = Client::login_new(server.addr, WireFormat::Json, "flooder");
    let (replies, closed) = burst(&mut flooder, 500);
    assert!(closed, "the flooder was cut off: {}", summary(&replies));
    let limited = count(&replies, |m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::RateLimited, .. }));
    assert!(limited >= 30, "30 refusals in a row before the cut: {}", summary(&replies));
    assert!(matches!(replies.last(), Some(ServerMsg::ErrorMsg { code: ErrorCode::RateLimited, .. })));
    let s = wait_for_stats(&server, "the flooder gone", |s| s.connections_open == 3);
    // The flooder's 30 refusals, and at least one of the eager client's.
    assert!(s.rate_limited > 30, "{s:?}");
    pair.finish();
}
