//! Coalesced presence (issue 15) over real sockets: 200 clients join one room as fast as they can
//! on two shards; each hears a number of presence frames bounded by a constant plus the
//! coalescing intervals the storm lasted, not one frame per join, and the first member hears of
//! every joiner exactly once (named or counted).

use crate::support::{
    raise_fd_limit, server_with, Client, ClientMsg, Msg, ServerConfig, ServerMsg, SystemKind, WireFormat,
};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const CLIENTS: usize = 200;
const BATCH: usize = 50;
const SHARDS: usize = 2;
const INTERVAL: Duration = Duration::from_millis(250);
/// Bounds every wait for notices still in flight.
const SETTLE: Duration = Duration::from_secs(30);

/// Joins (named or counted) and presence frames in `msgs`; adds listed names to `names`.
fn count(msgs: &[Msg], names: &mut Vec<String>) -> (u64, u64) {
    let (mut joins, mut frames) = (0, 0);
    for m in msgs {
        match m {
            ServerMsg::SystemMsg { kind: SystemKind::Join, user, .. } => {
                names.push(user.to_string());
                joins += 1;
            }
            ServerMsg::Presence { joined, joined_more, left, left_more, .. } => {
                assert!(left.is_empty() && *left_more == 0, "nobody left: {m:?}");
                names.extend(joined.iter().map(|n| n.to_string()));
                joins += joined.len() as u64 + joined_more;
            }
            ServerMsg::SystemMsg { .. } => {}
            _ => continue,
        }
        frames += 1;
    }
    (joins, frames)
}

#[test]
fn a_join_storm_costs_each_member_a_bounded_number_of_presence_frames() {
    let limit = raise_fd_limit();
    assert!(limit >= (2 * CLIENTS + 200) as u64, "RLIMIT_NOFILE hard limit {limit} is too low for this test");
    let mut cfg = ServerConfig::loopback();
    cfg.shards = SHARDS;
    cfg.presence_interval = INTERVAL;
    let server = server_with(cfg);
    let start = Instant::now();
    let mut first = Client::login_new(server.addr, WireFormat::Binary, "first");
    let mut clients: Vec<Client> = Vec::with_capacity(CLIENTS);
    while clients.len() < CLIENTS - 1 {
        let from = clients.len();
        let mut batch: Vec<Client> = (from..(from + BATCH).min(CLIENTS - 1))
            .map(|i| {
                let mut c =
                    Client::connect(server.addr, if i % 2 == 0 { WireFormat::Json } else { WireFormat::Binary });
                c.name = format!("j{i:03}");
                c
            })
            .collect();
        for c in &mut batch {
            let name = c.name.clone();
            c.send(&ClientMsg::Login { username: name.as_str().into(), credential: None, since: None });
        }
        for c in &mut batch {
            let m = c.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. }));
            assert!(matches!(&m, ServerMsg::LoginAck { username, .. } if *username == c.name), "{m:?}");
        }
        clients.extend(batch);
    }
    // The first member hears of all the others; bounded polling until it has.
    let deadline = Instant::now() + SETTLE;
    let (mut joins, mut frames, mut names) = (0, 0, Vec::new());
    while joins < (CLIENTS - 1) as u64 && Instant::now() < deadline {
        let (j, f) = count(&first.poll(Duration::from_millis(100)).expect("first stays connected"), &mut names);
        joins += j;
        frames += f;
    }
    assert_eq!(joins, (CLIENTS - 1) as u64, "the first member hears of every joiner once");
    let listed: HashSet<&String> = names.iter().collect();
    assert_eq!(listed.len(), names.len(), "no name is listed twice");
    // Windows end an interval after their last change: after the storm plus two intervals no
    // notice of it is left to send. The storm lasted `intervals`; each shard sends a member at
    // most one SYSTEM_MSG and one notice per interval (plus the one the last window ends with).
    std::thread::sleep(2 * INTERVAL);
    let intervals = (start.elapsed().as_millis() / INTERVAL.as_millis()) as u64 + 1;
    let bound = SHARDS as u64 * (2 + intervals);
    assert!(frames <= bound, "the first member got {frames} presence frames; bound {bound}");
    for c in &mut clients {
        let mut frames = 0;
        // Everything queued for it, in at most CLIENTS reads (no notice is still being made).
        for _ in 0..CLIENTS {
            let msgs = c.poll(Duration::from_millis(10)).expect("clients stay connected");
            if msgs.is_empty() {
                break;
            }
            frames += count(&msgs, &mut Vec::new()).1;
        }
        assert!(frames <= bound, "{} got {frames} presence frames; bound {bound}", c.name);
    }
}
