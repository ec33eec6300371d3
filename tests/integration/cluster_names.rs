//! User names and node names across a cluster (a real `nats-server -js`): a login storm on two
//! nodes grants each name exactly once; a second live node with a node's name refuses to start,
//! and a dead node's name is taken back by its successor.

use crate::cluster::until_room_route;
use crate::support::{
    node, node_with, Client, ClientMsg, ErrorCode, NatsServer, ServerMsg, ServerProcess, TempDir, WireFormat, DEADLINE,
    TTL_S,
};
use std::time::{Duration, Instant};

#[test]
fn a_login_storm_on_two_nodes_grants_each_name_once() {
    let Some(nats) = NatsServer::start("cluster_names::a_login_storm_on_two_nodes_grants_each_name_once") else {
        return;
    };
    let nodes = [node(&nats, "n1"), node(&nats, "n2")];
    const NAMES: usize = 150;
    // Every name asked on both nodes at once, before any answer is read.
    let mut clients: Vec<(usize, Client)> = Vec::new();
    for i in 0..NAMES {
        for node in &nodes {
            let mut c = Client::connect(node.addr, WireFormat::Binary);
            c.send(&ClientMsg::Login { username: format!("user{i}").into(), credential: None, since: None });
            clients.push((i, c));
        }
    }
    let mut granted = vec![0; NAMES];
    for (i, c) in &mut clients {
        let reply = c.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. }));
        if matches!(reply, ServerMsg::LoginAck { .. }) {
            granted[*i] += 1;
        }
    }
    let wrong: Vec<(usize, u32)> = granted.iter().copied().enumerate().filter(|&(_, g)| g != 1).collect();
    assert!(wrong.is_empty(), "names granted other than once: {wrong:?}");
}

#[test]
fn a_second_node_with_a_live_nodes_name_refuses_to_start_and_a_dead_ones_name_is_taken_back() {
    let Some(nats) = NatsServer::start("cluster_names::a_second_node_with_a_live_nodes_name") else {
        return;
    };
    let n1 = node(&nats, "n1");
    let dir = TempDir::new("twin");
    let ttl = TTL_S.to_string();
    let args = ["--port", "0", "--no-tls", "--cluster", &nats.url(), "--node", "n1", "--cluster-name-ttl", &ttl];
    let mut twin = ServerProcess::start(dir.path(), &args);
    let status = twin.wait_exit();
    assert!(!status.success(), "{status:?}");
    assert!(twin.log().contains("another node named \"n1\" is running"), "{:?}", twin.log());
    // Once n1 is gone (no more renewals), a node of that name starts in its place.
    n1.process.signal(libc::SIGKILL);
    drop(n1);
    let (back, other) = (node(&nats, "n1"), node(&nats, "n2"));
    let mut a = Client::login_new(back.addr, WireFormat::Json, "a");
    let mut b = Client::login_new(other.addr, WireFormat::Json, "b");
    until_room_route(&mut a, &mut b, "back");
}

#[test]
fn a_dead_nodes_users_are_announced_as_gone_once_its_entry_expires() {
    let Some(nats) = NatsServer::start("cluster_names::a_dead_nodes_users_are_announced_as_gone") else {
        return;
    };
    let (n1, n2) = (node(&nats, "n1"), node(&nats, "n2"));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let _dave = Client::login_new(n1.addr, WireFormat::Json, "dave");
    let mut carol = Client::login_new(n2.addr, WireFormat::Json, "carol");
    until_room_route(&mut alice, &mut carol, "here");
    // n2 has seen n1's entry (its users in the lists) before n1 dies.
    let end = Instant::now() + DEADLINE;
    while !crate::cluster::lists(&mut carol).0.contains(&"dave".to_string()) {
        assert!(Instant::now() < end, "n2 never listed n1's users");
        std::thread::sleep(Duration::from_millis(100));
    }
    n1.process.signal(libc::SIGKILL);
    let deadline = Instant::now() + DEADLINE + Duration::from_secs(TTL_S);
    let mut gone: Vec<String> = Vec::new();
    while !(gone.contains(&"alice".to_string()) && gone.contains(&"dave".to_string())) {
        match carol.recv_by(deadline) {
            Ok(ServerMsg::Presence { room, left, .. }) if room == "general" => {
                gone.extend(left.iter().map(|n| n.to_string()));
            }
            Ok(_) => {}
            Err(e) => panic!("carol was never told n1's users left ({e}); heard {gone:?}"),
        }
    }
    gone.sort();
    assert_eq!(gone, ["alice", "dave"], "each once");
}

/// REGISTER (`register`) or LOGIN with a password on `addr`; the reply.
fn account(addr: std::net::SocketAddr, name: &str, password: &str, register: bool) -> (Client, ServerMsg<'static>) {
    let mut c = Client::connect(addr, WireFormat::Json);
    c.send(&match register {
        true => ClientMsg::Register { username: name.into(), password: password.into() },
        false => ClientMsg::Login { username: name.into(), credential: Some(password.into()), since: None },
    });
    let reply = c.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. }));
    (c, reply)
}

#[test]
fn accounts_are_shared_by_every_node() {
    let Some(nats) = NatsServer::start("cluster_names::accounts_are_shared_by_every_node") else {
        return;
    };
    let accounts = ["--auth", "accounts"];
    let (n1, n2) = (node_with(&nats, "n1", &accounts), node_with(&nats, "n2", &accounts));
    let (alice, reply) = account(n1.addr, "Alice", "correct horse", true);
    assert!(matches!(reply, ServerMsg::LoginAck { .. }), "{reply:?}");
    drop(alice);
    // The account exists on every node: not again, under any case...
    let (_c, reply) = account(n2.addr, "ALICE", "another password", true);
    assert!(matches!(reply, ServerMsg::LoginReject { code: ErrorCode::UsernameTaken, .. }), "{reply:?}");
    // ...a wrong password is refused, and the right one logs in (once n1 let the name go:
    // until then the name is "already online").
    let end = Instant::now() + DEADLINE;
    // (`None`: logged in.)
    for (password, want) in [("wrong horse", Some(ErrorCode::AuthFailed)), ("correct horse", None)] {
        loop {
            match account(n2.addr, "alice", password, false).1 {
                ServerMsg::LoginAck { .. } if want.is_none() => break,
                ServerMsg::LoginReject { code, .. } if Some(code) == want => break,
                ServerMsg::LoginReject { code: ErrorCode::UsernameTaken, .. } => {}
                other => panic!("{password}: {other:?}"),
            }
            assert!(Instant::now() < end, "alice's name was never let go on n1");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
