//! The cluster's room log (a JetStream stream on a real `nats-server -js`): ids are the log's
//! sequence and increase in the same delivery order on every node; history replays and pages
//! read from any node; an acknowledged message outlives the node that took it; clients of a
//! SIGKILLed node resume on another node and get every acknowledged message exactly once; a
//! stopped node neither stalls the others nor misses anything once it runs again; with three
//! replicas on a cluster of three nats-servers, losing one of them loses nothing.

use crate::support::{
    node, node_at, node_with, Client, ClientMsg, Msg, NatsCluster, NatsServer, ServerMsg, WireFormat, DEADLINE, TTL_S,
};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Replay length given to the nodes: longer than any test's run, so a resume is never cut.
const REPLAY: &str = "500";

/// `(id, text)` of the live (or, with `history`, replayed) room messages in `frames`.
fn ids(frames: &[Msg], history: bool) -> Vec<(u64, String)> {
    frames
        .iter()
        .filter_map(|m| match m {
            ServerMsg::RoomMsg { id, text, history: h, .. } if *h == history => Some((*id, text.to_string())),
            _ => None,
        })
        .collect()
}

/// Says `text` and waits for its ROOM_MSG_ACK; its id, or `None` if the connection broke first.
fn say_acked(c: &mut Client, text: &str) -> Option<u64> {
    c.try_send(&ClientMsg::RoomMsg { text: text.into() }).ok()?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        match c.recv_by(deadline) {
            Ok(ServerMsg::RoomMsgAck { id, .. }) => return Some(id),
            Ok(ServerMsg::ErrorMsg { code, text }) => panic!("{}: {code:?} {text}", c.name),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Logs in as `name` on `addr` (asking again while the name is still held by a dead node, up to
/// its claim's TTL), resuming after `since`; returns the client and what came up to REPLAY_END.
#[track_caller]
fn resume(addr: SocketAddr, format: WireFormat, name: &str, since: u64) -> (Client, Vec<Msg>) {
    let end = Instant::now() + DEADLINE + Duration::from_secs(TTL_S);
    loop {
        let mut c = Client::connect(addr, format);
        c.name = name.into();
        c.send(&ClientMsg::Login { username: name.into(), credential: None, since: Some(since) });
        match c.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. })) {
            ServerMsg::LoginAck { .. } => {
                let mut got = Vec::new();
                loop {
                    let m = c.recv();
                    let done = matches!(m, ServerMsg::ReplayEnd { .. });
                    got.push(m);
                    if done {
                        return (c, got);
                    }
                }
            }
            reply => assert!(Instant::now() < end, "{name} never got back in: {reply:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every frame until the connection ends (a killed node's client).
fn drain_until_closed(c: &mut Client) -> Vec<Msg> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while let Ok(m) = c.recv_by(deadline) {
        got.push(m);
    }
    got
}

/// Reads room messages until every id in `want` has come (bounded).
#[track_caller]
fn until_ids(c: &mut Client, want: &HashSet<u64>) -> Vec<Msg> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while !want.iter().all(|id| ids(&got, false).iter().any(|(i, _)| i == id)) {
        match c.recv_by(deadline) {
            Ok(m) => got.push(m),
            Err(e) => panic!("{}: {e}; missing {:?}", c.name, missing(&got, want)),
        }
    }
    got
}

fn missing(got: &[Msg], want: &HashSet<u64>) -> Vec<u64> {
    let have: HashSet<u64> = ids(got, false).into_iter().chain(ids(got, true)).map(|(i, _)| i).collect();
    let mut m: Vec<u64> = want.difference(&have).copied().collect();
    m.sort_unstable();
    m
}

/// Asserts `seen` holds every id of `acked` exactly once, in increasing order.
#[track_caller]
fn exactly_once_in_order(who: &str, seen: &[(u64, String)], acked: &HashSet<u64>) {
    let ids: Vec<u64> = seen.iter().map(|(i, _)| *i).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{who}: ids not increasing (or repeated): {ids:?}");
    let have: HashSet<u64> = ids.iter().copied().collect();
    let mut lost: Vec<_> = acked.difference(&have).collect();
    lost.sort_unstable();
    assert!(lost.is_empty(), "{who} never got acknowledged messages {lost:?}");
}

/// Waits until `listener` hears `speaker` in the room: both nodes follow the room's log.
#[track_caller]
fn warm(speaker: &mut Client, listener: &mut Client) {
    crate::cluster::until_room_route(speaker, listener, "warm");
}

#[test]
fn ids_increase_in_one_delivery_order_on_every_node() {
    let Some(nats) = NatsServer::start("cluster_log::ids_increase_in_one_delivery_order_on_every_node") else {
        return;
    };
    let nodes = [node(&nats, "n1"), node(&nats, "n2"), node(&nats, "n3")];
    let formats = [WireFormat::Binary, WireFormat::Json, WireFormat::Binary];
    let mut speakers: Vec<Client> =
        (0..3).map(|i| Client::login_new(nodes[i].addr, formats[i], &format!("s{i}"))).collect();
    let mut listeners: Vec<Client> =
        (0..3).map(|i| Client::login_new(nodes[i].addr, formats[2 - i], &format!("l{i}"))).collect();
    for (i, l) in listeners.iter_mut().enumerate() {
        warm(&mut speakers[(i + 1) % 3], l);
    }
    // Every speaker sends without waiting, so the three streams interleave in the log.
    const EACH: usize = 30;
    for n in 0..EACH {
        for (i, s) in speakers.iter_mut().enumerate() {
            s.send(&ClientMsg::RoomMsg { text: format!("s{i} {n}").into() });
        }
    }
    // Every one was taken by the log (an error here would explain a listener's gap).
    for s in &mut speakers {
        for _ in 0..EACH {
            let m = s.recv_until(|m| matches!(m, ServerMsg::RoomMsgAck { .. } | ServerMsg::ErrorMsg { .. }));
            assert!(matches!(m, ServerMsg::RoomMsgAck { .. }), "{}: {m:?}", s.name);
        }
    }
    let mut orders = Vec::new();
    for l in &mut listeners {
        let texts: Vec<String> = (0..3).flat_map(|i| (0..EACH).map(move |n| format!("s{i} {n}"))).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let got =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::cluster::collect_until(l, &texts))) {
                Ok(got) => got,
                Err(e) => {
                    for n in &nodes {
                        eprintln!("---- node log:\n{}", n.process.log());
                    }
                    std::panic::resume_unwind(e)
                }
            };
        let order: Vec<(u64, String)> = ids(&got, false).into_iter().filter(|(_, t)| !t.starts_with("warm")).collect();
        assert_eq!(order.len(), 3 * EACH, "{}: each message once", l.name);
        assert!(order.windows(2).all(|w| w[0].0 < w[1].0), "{}: ids out of order: {order:?}", l.name);
        orders.push(order);
    }
    assert!(orders.windows(2).all(|w| w[0] == w[1]), "every node delivers in one order");
}

#[test]
fn history_replays_and_pages_from_any_node() {
    let Some(nats) = NatsServer::start("cluster_log::history_replays_and_pages_from_any_node") else {
        return;
    };
    let (n1, n2, n3) = (node(&nats, "n1"), node(&nats, "n2"), node(&nats, "n3"));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    let mut acked = Vec::new();
    for n in 0..5 {
        for c in [&mut alice, &mut bob] {
            let text = format!("{} {n}", c.name);
            acked.push((say_acked(c, &text).expect("acknowledged"), text));
        }
    }
    assert!(acked.windows(2).all(|w| w[0].0 < w[1].0), "acknowledged ids increase: {acked:?}");
    // carol, on a node none of it went through, gets it all replayed on login.
    let mut carol = Client::login_new(n3.addr, WireFormat::Json, "carol");
    let mut frames = Vec::new();
    while !ids(&frames, true).iter().any(|(_, t)| t == "bob 4") {
        frames.push(carol.recv());
    }
    let replayed = ids(&frames, true);
    assert!(replayed.ends_with(&acked), "replay {replayed:?} ends with {acked:?}");
    // A scroll-back page from a third node: the older half, then the rest.
    let before = acked[5].0;
    carol.send(&ClientMsg::History { before });
    let page = carol.recv_until(|m| matches!(m, ServerMsg::HistoryEnd { .. }));
    assert!(matches!(page, ServerMsg::HistoryEnd { count: 5, more: false, .. }), "{page:?}");
    let mut dave = Client::login_new(n2.addr, WireFormat::Binary, "dave");
    dave.send(&ClientMsg::History { before });
    let mut frames = Vec::new();
    while !matches!(frames.last(), Some(ServerMsg::HistoryEnd { .. })) {
        frames.push(dave.recv());
    }
    // (dave's login replay may come first: the page is what precedes HISTORY_END.)
    let page = ids(&frames, true);
    assert_eq!(page[page.len() - 5..], acked[..5], "the page holds the older half, oldest first");
}

#[test]
fn an_acknowledged_message_outlives_its_node() {
    let Some(nats) = NatsServer::start("cluster_log::an_acknowledged_message_outlives_its_node") else {
        return;
    };
    let (n1, n2) = (node(&nats, "n1"), node(&nats, "n2"));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let id = say_acked(&mut alice, "kept").expect("acknowledged");
    n1.process.signal(libc::SIGKILL);
    let (_bob, got) = resume(n2.addr, WireFormat::Json, "bob", id - 1);
    assert_eq!(ids(&got, true), vec![(id, "kept".to_string())]);
    assert!(matches!(got.last(), Some(ServerMsg::ReplayEnd { last, gap: false, .. }) if *last == id), "{got:?}");
}

#[test]
fn a_killed_nodes_clients_resume_on_another_node_with_every_acknowledged_message_once() {
    let Some(nats) = NatsServer::start("cluster_log::a_killed_nodes_clients_resume") else {
        return;
    };
    let extra = ["--history-len", REPLAY];
    let (n1, n2) = (node_with(&nats, "n1", &extra), node_with(&nats, "n2", &extra));
    let mut w1 = Client::login_new(n1.addr, WireFormat::Binary, "w1");
    let mut w2 = Client::login_new(n2.addr, WireFormat::Json, "w2");
    let mut r1 = Client::login_new(n1.addr, WireFormat::Json, "r1");
    let mut r2 = Client::login_new(n2.addr, WireFormat::Binary, "r2");
    warm(&mut w2, &mut r1);
    warm(&mut w1, &mut r2);
    let (mut acked, mut n1_alive) = (HashSet::new(), true);
    for n in 0..40 {
        if n == 20 {
            n1.process.signal(libc::SIGKILL);
            n1_alive = false;
        }
        acked.extend(say_acked(&mut w2, &format!("w2 {n}")));
        match say_acked(&mut w1, &format!("w1 {n}")) {
            Some(id) => drop(acked.insert(id)),
            None => {
                assert!(!n1_alive, "w1 lost its node while it was alive");
                // Its node is gone: back in through n2 (once the dead node's claim expires).
                w1 = resume(n2.addr, WireFormat::Binary, "w1", 0).0;
                acked.extend(say_acked(&mut w1, &format!("w1 {n} again")));
            }
        }
    }
    // r1 read what its node sent before dying, then resumes on n2 after the last id it saw.
    let before = drain_until_closed(&mut r1);
    let mut seen = ids(&before, false);
    let last = seen.iter().map(|(i, _)| *i).max().unwrap_or(0);
    let (mut r1, replay) = resume(n2.addr, WireFormat::Json, "r1", last);
    seen.extend(ids(&replay, true));
    let tail: HashSet<u64> = acked.iter().copied().filter(|&i| i > last).collect();
    let caught: HashSet<u64> = ids(&replay, true).iter().map(|(i, _)| *i).collect();
    if !tail.is_subset(&caught) {
        seen.extend(ids(&until_ids(&mut r1, &tail.difference(&caught).copied().collect()), false));
    }
    seen.retain(|(_, t)| !t.starts_with("warm"));
    exactly_once_in_order("r1", &seen, &acked);
    let mut on_n2 = ids(&until_ids(&mut r2, &acked), false);
    on_n2.retain(|(_, t)| !t.starts_with("warm"));
    exactly_once_in_order("r2", &on_n2, &acked);
}

#[test]
fn a_stopped_node_stalls_nobody_and_misses_nothing() {
    let Some(nats) = NatsServer::start("cluster_log::a_stopped_node_stalls_nobody") else {
        return;
    };
    let (n1, n2, n3) = (node(&nats, "n1"), node(&nats, "n2"), node(&nats, "n3"));
    let mut a = Client::login_new(n1.addr, WireFormat::Binary, "a");
    let mut b = Client::login_new(n2.addr, WireFormat::Json, "b");
    let mut slow = Client::login_new(n3.addr, WireFormat::Json, "slow");
    warm(&mut a, &mut slow);
    warm(&mut a, &mut b);
    n3.process.signal(libc::SIGSTOP);
    let mut acked = HashSet::new();
    for n in 0..30 {
        acked.insert(say_acked(&mut a, &format!("a {n}")).expect("n1 answers while n3 is stopped"));
    }
    let heard = ids(&until_ids(&mut b, &acked), false);
    n3.process.signal(libc::SIGCONT);
    let mut late = ids(&until_ids(&mut slow, &acked), false);
    late.retain(|(_, t)| !t.starts_with("warm"));
    exactly_once_in_order("slow", &late, &acked);
    assert_eq!(heard.iter().filter(|(_, t)| !t.starts_with("warm")).count(), 30);
}

#[test]
fn with_three_replicas_the_cluster_survives_the_loss_of_a_nats_server() {
    let Some(mut nats) = NatsCluster::start("cluster_log::the_cluster_survives_the_loss_of_a_nats_server", 3) else {
        return;
    };
    let replicas = ["--cluster-replicas", "3"];
    let (n1, n2) = (node_at(&nats.urls(0), "n1", &replicas), node_at(&nats.urls(1), "n2", &replicas));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    warm(&mut alice, &mut bob);
    let kept = say_acked(&mut alice, "before").expect("acknowledged");
    // The NATS server n1 is connected to (the client picks one of the list) goes away for good.
    let log = n1.process.log();
    let port = log.rsplit("connected successfully server=").next().and_then(|r| r.split_whitespace().next());
    let port: u16 = port.and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("whose NATS? {log}"));
    nats.servers.iter_mut().find(|s| s.port == port).expect("one of ours").kill();
    n1.process.wait_for("cluster: lost NATS");
    // Both ways again, once NATS has elected new leaders for the log and the buckets (bounded
    // generously: an election after a server's loss takes seconds).
    crate::cluster::until_room_route_within(&mut alice, &mut bob, "after", DEADLINE * 3);
    crate::cluster::until_room_route_within(&mut bob, &mut alice, "back", DEADLINE * 3);
    // The message acknowledged before is still in the log, and names can be claimed again.
    // (A name held on n1 may have expired meanwhile: the test nodes' name TTL is 2 s.)
    let (_carol, got) = resume(n2.addr, WireFormat::Json, "carol", kept - 1);
    assert_eq!(ids(&got, true).first(), Some(&(kept, "before".to_string())), "{got:?}");
    let (_dave, _) = resume(n1.addr, WireFormat::Binary, "dave", kept);
}
