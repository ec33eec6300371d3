//! Issue 16, item 7: a registration storm from many addresses must not starve an honest login.
//! Password hashing runs on a pool of workers fed round-robin across addresses, and an address
//! with too many jobs waiting gets a "busy, retry" refusal for its excess alone.
//!
//! The honest login's latency is measured and printed (`--nocapture`), never asserted on: the
//! numbers are recorded in `results/2026-11-30-accounts-storm/`.

use super::{features_config, FORMATS};
use crate::support::{
    have_fds, server_with, tcp_connect_from, AuthMode, Client, ClientMsg, ErrorCode, ServerMsg, TempDir,
};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Storm addresses (127.0.0.10 onwards) and registrations from each.
const ADDRESSES: u8 = 40;
const PER_ADDRESS: usize = 8;

/// The first LOGIN_ACK or LOGIN_REJECT on `c`, waiting up to `wait`.
fn verdict(c: &mut Client, wait: Duration) -> Result<ServerMsg<'static>, String> {
    let deadline = Instant::now() + wait;
    loop {
        match c.recv_by(deadline) {
            Ok(m @ (ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. })) => return Ok(m),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[test]
fn an_honest_login_completes_during_a_registration_storm() {
    if !have_fds(4 * (ADDRESSES as u64 * PER_ADDRESS as u64) + 64) {
        return;
    }
    let dir = TempDir::new("storm");
    let mut cfg = features_config("acc", &dir);
    cfg.services.auth = AuthMode::Accounts;
    let s = server_with(cfg);
    let mut first = Client::connect(s.addr, FORMATS[0]);
    first.send(&ClientMsg::Register { username: "honest".into(), password: "honest password".into() });
    assert!(matches!(verdict(&mut first, Duration::from_secs(30)), Ok(ServerMsg::LoginAck { .. })));
    drop(first);
    // Wait until the name is free again (the server saw the close).
    std::thread::sleep(Duration::from_millis(200));

    // The storm: every registration written at once, from 40 addresses.
    let mut storm = Vec::new();
    for a in 0..ADDRESSES {
        let ip = IpAddr::from([127, 0, 0, 10 + a]);
        for i in 0..PER_ADDRESS {
            let tcp = tcp_connect_from(Some(ip), s.addr).expect("connect from a storm address");
            storm.push(Client::from_tcp(tcp, FORMATS[i % 2]));
        }
    }
    for (n, c) in storm.iter_mut().enumerate() {
        c.send(&ClientMsg::Register { username: format!("storm{n}").into(), password: "storm password".into() });
    }
    // The honest login, from its own address, right behind the storm.
    let honest_ip = IpAddr::from([127, 0, 0, 200]);
    let mut honest = Client::from_tcp(tcp_connect_from(Some(honest_ip), s.addr).expect("connect"), FORMATS[1]);
    let start = Instant::now();
    honest.send(&ClientMsg::Login {
        username: "honest".into(),
        credential: Some("honest password".into()),
        since: None,
    });
    let reply = verdict(&mut honest, Duration::from_secs(120));
    let latency = start.elapsed();

    let (mut ok, mut busy, mut other) = (0, 0, Vec::new());
    for c in &mut storm {
        match verdict(c, Duration::from_secs(120)) {
            Ok(ServerMsg::LoginAck { .. }) => ok += 1,
            Ok(ServerMsg::LoginReject { code: ErrorCode::RateLimited, reason, .. }) if reason.contains("busy") => {
                busy += 1
            }
            other_reply => other.push(format!("{other_reply:?}")),
        }
    }
    let storm_time = start.elapsed();
    println!(
        "accounts storm: {} registrations from {ADDRESSES} addresses; honest login {:.1} ms ({reply:?}); \
         storm answered in {:.1} ms: {ok} registered, {busy} busy, {} other",
        storm.len(),
        latency.as_secs_f64() * 1e3,
        storm_time.as_secs_f64() * 1e3,
        other.len()
    );
    assert!(matches!(reply, Ok(ServerMsg::LoginAck { .. })), "the honest login succeeds: {reply:?}");
    assert!(other.is_empty(), "every storm request is registered or told to retry: {other:?}");
    assert!(busy > 0, "the storm's excess is told the service is busy");
    assert!(ok >= ADDRESSES as usize, "every address gets its fair share: {ok} registered");
}
