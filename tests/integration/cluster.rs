//! Nodes joined through a real `nats-server -js` (started here on a free loopback port): room
//! messages and private messages cross nodes in both wire formats, a user name is unique across
//! the cluster, lists cover every node, a killed node's names are freed once their claims
//! expire, nodes recover by themselves when nats-server restarts (with or without its store), and
//! a node cut off from NATS keeps serving locally and gives up a name taken meanwhile.
//!
//! A node subscribes to a room shortly after its first member joins and learns of another
//! node's users shortly after they log in, so the first crossing of each route is retried
//! (bounded); what is asserted after that is exact.

use crate::support::{
    http_get, node, node_at, node_with, room_msgs, Client, ClientMsg, ErrorCode, Msg, NatsServer, ServerMsg,
    ServerProcess, SystemKind, TempDir, WireFormat, DEADLINE, TTL_S,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends `say` from `from` (retrying, bounded) until `to` receives it: the route is up.
#[track_caller]
fn until_route(from: &mut Client, to: &mut Client, say: impl Fn(&mut Client, u32), heard: impl Fn(&Msg, u32) -> bool) {
    let end = Instant::now() + DEADLINE;
    for attempt in 0.. {
        say(from, attempt);
        let got = to.poll(Duration::from_millis(200)).expect("poll");
        if got.iter().any(|m| heard(m, attempt)) {
            from.sync();
            to.sync();
            return;
        }
        assert!(Instant::now() < end, "{} never heard {} across nodes", to.name, from.name);
    }
}

/// Every frame `c` receives until room messages with each of `texts` have arrived (bounded).
#[track_caller]
pub(crate) fn collect_until(c: &mut Client, texts: &[&str]) -> Vec<Msg> {
    let deadline = Instant::now() + DEADLINE;
    let mut seen: Vec<Msg> = Vec::new();
    while !texts.iter().all(|t| room_msgs(&seen).iter().any(|(_, x)| x == t)) {
        match c.recv_by(deadline) {
            Ok(m) => seen.push(m),
            Err(e) => panic!("{}: {e} waiting for {texts:?}; got {:?}", c.name, room_msgs(&seen)),
        }
    }
    seen
}

/// The LOGIN reply for `name` on `addr`.
fn try_login(addr: SocketAddr, name: &str) -> (Client, Msg) {
    let mut c = Client::connect(addr, WireFormat::Json);
    c.send(&ClientMsg::Login { username: name.into(), credential: None, since: None });
    let reply = c.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. }));
    (c, reply)
}

/// [`until_route`] for room messages: `from` says "`word` N" until `to` hears one. Then `from`
/// reads every one's ROOM_MSG_ACK or error (the log answers after PONG may have come), so a
/// later acknowledgement read by a test is for its own message.
#[track_caller]
pub(crate) fn until_room_route(from: &mut Client, to: &mut Client, word: &str) {
    until_room_route_within(from, to, word, DEADLINE);
}

/// [`until_room_route`], trying for up to `within`.
#[track_caller]
pub(crate) fn until_room_route_within(from: &mut Client, to: &mut Client, word: &str, within: Duration) {
    let end = Instant::now() + within;
    for attempt in 1.. {
        from.say(&format!("{word} {attempt}"));
        let got = to.poll(Duration::from_millis(200)).expect("poll");
        if room_msgs(&got).iter().any(|(_, t)| *t == format!("{word} {attempt}")) {
            // (One sent while NATS was away is refused with an error instead.)
            for _ in 0..attempt {
                from.recv_until(|m| matches!(m, ServerMsg::RoomMsgAck { .. } | ServerMsg::ErrorMsg { .. }));
            }
            to.sync();
            return;
        }
        assert!(Instant::now() < end, "{} never heard {} across nodes", to.name, from.name);
    }
}

/// Room messages cross from `a`'s node to `b`'s and back.
#[track_caller]
fn room_route_both_ways(a: &mut Client, b: &mut Client) {
    until_room_route(a, b, "ping");
    until_room_route(b, a, "pong");
}

#[test]
fn room_messages_cross_nodes_in_both_formats_with_unique_ids() {
    let Some(nats) = NatsServer::start("cluster::room_messages_cross_nodes_in_both_formats_with_unique_ids") else {
        return;
    };
    let (n1, n2) = (node(&nats, "n1"), node(&nats, "n2"));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    let mut carol = Client::login_new(n1.addr, WireFormat::Json, "carol");
    room_route_both_ways(&mut alice, &mut bob);
    carol.sync();

    // Once each way, exactly once, in each receiver's own format (a marker closes each run:
    // one sender's messages cross in order).
    bob.say("hello from n2");
    bob.say("end n2");
    alice.say("hello from n1");
    alice.say("end n1");
    let pair =
        |from: &str, a: &str, b: &str| vec![(from.to_string(), a.to_string()), (from.to_string(), b.to_string())];
    // (A route probe may still arrive late: probes are left out.)
    let heard = |frames: Vec<Msg>| -> Vec<Msg> {
        let probe = |t: &str| t.starts_with("ping ") || t.starts_with("pong ");
        frames.into_iter().filter(|m| !matches!(m, ServerMsg::RoomMsg { text, .. } if probe(text))).collect()
    };
    assert_eq!(room_msgs(&heard(collect_until(&mut alice, &["end n2"]))), pair("bob", "hello from n2", "end n2"));
    assert_eq!(room_msgs(&heard(collect_until(&mut bob, &["end n1"]))), pair("alice", "hello from n1", "end n1"));
    let carol_frames = heard(collect_until(&mut carol, &["end n1", "end n2"]));
    let ids: std::collections::HashSet<u64> = carol_frames
        .iter()
        .filter_map(|m| match m {
            ServerMsg::RoomMsg { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 4, "ids are unique across nodes: {carol_frames:?}");
    let mut at_carol = room_msgs(&carol_frames);
    at_carol.sort();
    let mut want = [pair("alice", "end n1", "hello from n1"), pair("bob", "end n2", "hello from n2")].concat();
    want.sort();
    assert_eq!(at_carol, want, "carol (n1) hears both nodes once");

    // A room of its own, with a member on each node.
    alice.join("tech");
    bob.join("tech");
    until_room_route(&mut bob, &mut alice, "tech");
    carol.say("general only");
    bob.say("tech only");
    assert_eq!(room_msgs(&collect_until(&mut alice, &["tech only"])), vec![("bob".into(), "tech only".into())]);
    assert!(room_msgs(&carol.sync()).iter().all(|(_, t)| !t.starts_with("tech")), "carol is not in tech");

    drop((n1, n2));
}

#[test]
fn private_messages_cross_nodes_and_the_link_shows_in_metrics() {
    let Some(nats) = NatsServer::start("cluster::private_messages_cross_nodes_and_the_link_shows_in_metrics") else {
        return;
    };
    let (n1, n2) = (node_with(&nats, "n1", &["--metrics", "127.0.0.1:0"]), node(&nats, "n2"));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    let mut carol = Client::login_new(n1.addr, WireFormat::Json, "carol");
    room_route_both_ways(&mut alice, &mut bob);
    carol.sync();

    // A private message to a user on the other node, named in another case.
    let pm = |m: &Msg, i: u32| matches!(m, ServerMsg::PrivateMsgDelivery { from, text, .. } if from == "alice" && *text == format!("psst {i}"));
    until_route(
        &mut alice,
        &mut bob,
        |c, i| c.send(&ClientMsg::PrivateMsg { to: "BOB".into(), text: format!("psst {i}").into() }),
        pm,
    );
    bob.send(&ClientMsg::PrivateMsg { to: "alice".into(), text: "back".into() });
    let at_alice = alice.recv_until(|m| matches!(m, ServerMsg::PrivateMsgDelivery { .. }));
    assert!(
        matches!(at_alice, ServerMsg::PrivateMsgDelivery { ref from, ref to, ref text, .. } if from == "bob" && to == "alice" && text == "back"),
        "{at_alice:?}"
    );
    // Nobody else heard it.
    assert!(!carol.sync().iter().any(|m| matches!(m, ServerMsg::PrivateMsgDelivery { .. })));

    // n1's metrics show the link up and traffic both ways.
    let line = n1.process.wait_for("metrics at http://");
    let metrics: SocketAddr = line.split("http://").nth(1).and_then(|u| u.split('/').next()).unwrap().parse().unwrap();
    let (status, _, body) = http_get(metrics, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 200);
    assert!(body.contains("\nchatproto_cluster_connected 1\n"), "{body}");
    // (alice's room messages went through the log: logged.)
    let counters =
        ["chatproto_cluster_published_total", "chatproto_cluster_received_total", "chatproto_cluster_logged_total"];
    for counter in counters {
        let value = body.lines().find_map(|l| l.strip_prefix(counter)?.trim().parse::<u64>().ok());
        assert!(value.is_some_and(|v| v > 0), "{counter}: {value:?}");
    }
    drop((n1, n2));
}

#[test]
fn a_name_is_unique_across_nodes_and_a_killed_nodes_names_are_freed() {
    let Some(nats) = NatsServer::start("cluster::a_name_is_unique_across_nodes_and_a_killed_nodes_names_are_freed")
    else {
        return;
    };
    let (n1, n2) = (node(&nats, "n1"), node(&nats, "n2"));
    let _alice = Client::login_new(n1.addr, WireFormat::Binary, "Alice");
    for name in ["Alice", "ALICE"] {
        let (_c, reply) = try_login(n2.addr, name);
        assert!(
            matches!(reply, ServerMsg::LoginReject { code: ErrorCode::UsernameTaken, .. }),
            "{name} on n2 while Alice is on n1: {reply:?}"
        );
    }
    // A name let go on one node is free on the other (retried until the release crosses).
    let bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    bob.close();
    let end = Instant::now() + DEADLINE;
    loop {
        let (_c, reply) = try_login(n1.addr, "bob");
        if matches!(reply, ServerMsg::LoginAck { .. }) {
            break;
        }
        assert!(Instant::now() < end, "bob never became free on n1: {reply:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // n1 dies without a word: its claims stop being renewed and expire within the TTL.
    n1.process.signal(libc::SIGKILL);
    let end = Instant::now() + DEADLINE + Duration::from_secs(TTL_S);
    let mut refused = 0;
    let _alice2 = loop {
        let (c, reply) = try_login(n2.addr, "alice");
        match reply {
            ServerMsg::LoginAck { .. } => break c,
            ServerMsg::LoginReject { code: ErrorCode::UsernameTaken, .. } => refused += 1,
            other => panic!("unexpected reply: {other:?}"),
        }
        assert!(Instant::now() < end, "alice was never freed after n1 died ({refused} refusals)");
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(n2);
}

#[test]
fn a_node_that_cannot_reach_nats_does_not_start() {
    let dir = TempDir::new("nonats");
    // Port 1 on loopback: nothing listens there.
    let args = ["--port", "0", "--no-tls", "--cluster", "nats://127.0.0.1:1", "--node", "n1"];
    let mut server = ServerProcess::start(dir.path(), &args);
    let status = server.wait_exit();
    assert!(!status.success(), "{status:?}");
    assert!(server.log().contains("cannot reach NATS"), "{status:?}: {:?}", server.log());
}

/// LIST_USERS and LIST_ROOMS as seen by `c`.
pub(crate) fn lists(c: &mut Client) -> (Vec<String>, Vec<(String, u32)>) {
    c.send(&ClientMsg::ListUsers { after: None });
    let users = match c.recv_until(|m| matches!(m, ServerMsg::ListUsers { .. })) {
        ServerMsg::ListUsers { users, .. } => users.iter().map(|u| u.to_string()).collect(),
        _ => unreachable!(),
    };
    c.send(&ClientMsg::ListRooms { after: None });
    let rooms = match c.recv_until(|m| matches!(m, ServerMsg::ListRooms { .. })) {
        ServerMsg::ListRooms { rooms, .. } => rooms.into_iter().map(|(n, k)| (n.into_owned(), k)).collect(),
        _ => unreachable!(),
    };
    (users, rooms)
}

#[test]
fn user_and_room_lists_cover_every_node() {
    let Some(nats) = NatsServer::start("cluster::user_and_room_lists_cover_every_node") else {
        return;
    };
    let (n1, n2) = (node(&nats, "n1"), node(&nats, "n2"));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let _bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    let mut carol = Client::login_new(n2.addr, WireFormat::Json, "carol");
    carol.join("tech");
    // Lists follow other nodes within a moment: ask until they do (bounded).
    let want =
        (vec!["alice".to_string(), "bob".to_string()], vec![("general".to_string(), 2), ("tech".to_string(), 1)]);
    let end = Instant::now() + DEADLINE;
    loop {
        let got = lists(&mut alice);
        if got == want {
            break;
        }
        assert!(Instant::now() < end, "alice's lists never covered n2: {got:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A node that dies leaves the lists once its entry expires.
    n2.process.signal(libc::SIGKILL);
    let want = (vec!["alice".to_string()], vec![("general".to_string(), 1)]);
    let end = Instant::now() + DEADLINE + Duration::from_secs(TTL_S);
    loop {
        let got = lists(&mut alice);
        if got == want {
            break;
        }
        assert!(Instant::now() < end, "n2's users never left alice's lists: {got:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(n1);
}

#[test]
fn nodes_recover_when_nats_restarts() {
    let Some(mut nats) = NatsServer::start("cluster::nodes_recover_when_nats_restarts") else {
        return;
    };
    let (n1, n2) = (node(&nats, "n1"), node(&nats, "n2"));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    until_room_route(&mut alice, &mut bob, "before");

    nats.restart(false);
    for n in [&n1, &n2] {
        n.process.wait_for("cluster: lost NATS");
    }
    // Local chat never stopped; cross-node chat comes back by itself.
    until_room_route(&mut alice, &mut bob, "after");
    until_room_route(&mut bob, &mut alice, "back");
    // Names held before are still held cluster-wide, and new claims work again.
    let (_c, reply) = try_login(n2.addr, "alice");
    assert!(matches!(reply, ServerMsg::LoginReject { code: ErrorCode::UsernameTaken, .. }), "{reply:?}");
    let (_c, reply) = try_login(n1.addr, "carol");
    assert!(matches!(reply, ServerMsg::LoginAck { .. }), "{reply:?}");
    assert!(n1.process.log().matches("cluster: connected to NATS").count() >= 2, "{}", n1.process.log());
}

#[test]
fn admin_alerts_kicks_and_bans_reach_other_nodes() {
    let Some(nats) = NatsServer::start("cluster::admin_alerts_kicks_and_bans_reach_other_nodes") else {
        return;
    };
    let n1 = node_with(&nats, "n1", &["--admin-user", "root", "--admin-password", "hunter22"]);
    let n2 = node(&nats, "n2");
    let mut root = Client::connect(n1.addr, WireFormat::Binary);
    root.send(&ClientMsg::Login { username: "root".into(), credential: Some("hunter22".into()), since: None });
    root.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. }));
    let mut bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    // Kick by name needs n1 to know where bob is: ask until it does (bounded).
    let end = Instant::now() + DEADLINE;
    while root.admin("users").starts_with("1 users") {
        assert!(Instant::now() < end, "n1 never saw bob");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(root.admin("alert fire drill"), "alert sent to 2 users");
    match bob.recv_until(|m| matches!(m, ServerMsg::SystemMsg { kind: SystemKind::Alert, .. })) {
        ServerMsg::SystemMsg { text, user, .. } => assert_eq!((&*text, &*user), ("fire drill", "root")),
        _ => unreachable!(),
    }
    assert_eq!(root.admin("kick bob 0"), "kicked bob");
    let last = bob.expect_closed();
    assert!(last.iter().any(|m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::Forbidden, .. })), "{last:?}");

    // A ban holds on every node, and so does lifting it.
    let mut carol = Client::login_new(n2.addr, WireFormat::Json, "carol");
    while root.admin("kick carol").starts_with("no user") {
        assert!(Instant::now() < end + DEADLINE, "n1 never saw carol");
        std::thread::sleep(Duration::from_millis(100));
    }
    let last = carol.expect_closed();
    assert!(last.iter().any(|m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::Banned, .. })), "{last:?}");
    let (_c, reply) = try_login(n1.addr, "carol");
    assert!(matches!(reply, ServerMsg::LoginReject { code: ErrorCode::Banned, .. }), "{reply:?}");
    // The ban crosses on its own subject: asked until n2 has it (bounded).
    let end = Instant::now() + DEADLINE;
    loop {
        let (_c, reply) = try_login(n2.addr, "carol");
        if matches!(reply, ServerMsg::LoginReject { code: ErrorCode::Banned, .. }) {
            break;
        }
        assert!(Instant::now() < end, "carol was never banned on n2: {reply:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(root.admin("unban carol"), "unbanned carol");
    let end = Instant::now() + DEADLINE;
    loop {
        let (_c, reply) = try_login(n2.addr, "carol");
        if matches!(reply, ServerMsg::LoginAck { .. }) {
            break;
        }
        assert!(Instant::now() < end, "carol stayed banned on n2: {reply:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop((n1, n2));
}

#[test]
fn nodes_make_the_buckets_again_when_nats_comes_back_empty() {
    let Some(mut nats) = NatsServer::start("cluster::nodes_make_the_buckets_again_when_nats_comes_back_empty") else {
        return;
    };
    let (n1, n2) = (node(&nats, "n1"), node(&nats, "n2"));
    let _alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    nats.restart(true);
    n1.process.wait_for("made it again");
    // The renewals write alice's claim again: n2 refuses her name (asked until it does), and
    // new names are granted again.
    let end = Instant::now() + DEADLINE + Duration::from_secs(TTL_S);
    loop {
        let (_c, reply) = try_login(n2.addr, "alice");
        if matches!(reply, ServerMsg::LoginReject { code: ErrorCode::UsernameTaken, .. }) {
            break;
        }
        assert!(Instant::now() < end, "alice's claim never came back: {reply:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_c, reply) = try_login(n2.addr, "carol");
    assert!(matches!(reply, ServerMsg::LoginAck { .. }), "{reply:?}");
}

/// A TCP relay from a loopback port to nats-server that the test can cut (every relayed
/// connection closed, new ones refused) and restore: a network partition of one node.
struct Partition {
    port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Partition {
    fn start(to: u16) -> Partition {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (cut, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (c, s) = (cut.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) if !c.load(Ordering::SeqCst) => {
                        if let Ok(server) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], to))) {
                            pump(&client, &server, &c, &s);
                            pump(&server, &client, &c, &s);
                        }
                    }
                    Ok(_) => {} // cut: dropped at once
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Partition { port, cut, stop }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` on a thread until either closes, or the partition is cut or stopped.
fn pump(from: &TcpStream, to: &TcpStream, cut: &Arc<AtomicBool>, stop: &Arc<AtomicBool>) {
    let (mut from, mut to) = (from.try_clone().expect("clone"), to.try_clone().expect("clone"));
    let (cut, stop) = (cut.clone(), stop.clone());
    from.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while !cut.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        let _ = from.shutdown(std::net::Shutdown::Both);
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

#[test]
fn a_node_cut_off_serves_locally_refuses_what_it_cannot_log_and_catches_up() {
    let Some(nats) = NatsServer::start("cluster::a_node_cut_off_keeps_serving_locally") else {
        return;
    };
    let partition = Partition::start(nats.port);
    let (n1, n2) = (node_at(&partition.url(), "n1", &[]), node(&nats, "n2"));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let mut dave = Client::login_new(n1.addr, WireFormat::Json, "dave");
    let mut bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    until_room_route(&mut bob, &mut dave, "route");

    partition.cut.store(true, Ordering::SeqCst);
    n1.process.wait_for("cluster: lost NATS");
    // A new login is refused at once (its name cannot be confirmed), and so is a room message
    // (the log cannot take it): an error, never an acknowledgement of something not kept.
    let (_c, reply) = try_login(n1.addr, "erin");
    assert!(matches!(reply, ServerMsg::LoginReject { code: ErrorCode::Internal, .. }), "{reply:?}");
    alice.say("not kept");
    assert_eq!(alice.recv_error(), ErrorCode::Internal);
    // Local users still reach each other privately.
    alice.send(&ClientMsg::PrivateMsg { to: "dave".into(), text: "still here".into() });
    dave.recv_until(|m| matches!(m, ServerMsg::PrivateMsgDelivery { text, .. } if text == "still here"));
    // What n2 says meanwhile reaches dave once n1 is back (read from the log).
    bob.say("while you were away");
    bob.recv_until(|m| matches!(m, ServerMsg::RoomMsgAck { .. }));
    // n1 cannot renew alice's claim: it expires, and n2 grants the name (asked until it does).
    let end = Instant::now() + DEADLINE + Duration::from_secs(TTL_S);
    let _alice2 = loop {
        let (c, reply) = try_login(n2.addr, "alice");
        if matches!(reply, ServerMsg::LoginAck { .. }) {
            break c;
        }
        assert!(Instant::now() < end, "n2 never granted alice: {reply:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Back on the bus, n1 finds the name taken and closes its alice; dave stays.
    partition.cut.store(false, Ordering::SeqCst);
    let last = alice.expect_closed();
    assert!(last.iter().any(|m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::UsernameTaken, .. })), "{last:?}");
    let heard = room_msgs(&collect_until(&mut dave, &["while you were away"]));
    assert_eq!(heard, vec![("bob".into(), "while you were away".into())], "once, and nothing refused");
    dave.sync();
    assert!(n1.process.log().contains("a local user's name was taken by another node"), "{}", n1.process.log());
}

#[test]
fn a_node_with_another_ttl_runs_on_the_clusters() {
    let Some(nats) = NatsServer::start("cluster::a_node_with_another_ttl_runs_on_the_clusters") else {
        return;
    };
    let _n1 = node(&nats, "n1");
    let dir = TempDir::new("n3");
    let url = nats.url();
    let args = [
        "--port",
        "0",
        "--no-tls",
        "--history",
        "memory",
        "--cluster",
        &url,
        "--node",
        "n3",
        "--cluster-name-ttl",
        "30",
    ];
    let n3 = ServerProcess::start(dir.path(), &args);
    let line = n3.wait_for("cluster: the names bucket expires claims after");
    assert!(line.contains(&format!("after {TTL_S} s, not 30 s: using {TTL_S} s")), "{line}");
    n3.wait_for("cluster: joined through NATS");
}
