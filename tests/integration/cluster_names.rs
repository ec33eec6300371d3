//! User names and node names across a cluster (a real `nats-server -js`): a login storm on two
//! nodes grants each name exactly once; a second live node with a node's name refuses to start,
//! and a dead node's name is taken back by its successor.

use crate::cluster::until_room_route;
use crate::support::{node, Client, ClientMsg, NatsServer, ServerMsg, ServerProcess, TempDir, WireFormat, TTL_S};

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
