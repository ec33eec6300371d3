//! The server's counters after a known exchange: every figure is checked against what the
//! clients themselves counted.

use crate::support::{
    is_notice, raw, server, wait_for_stats, Client, ClientMsg, ErrorCode, RunningServer, StatsSnapshot, SystemKind,
    WireFormat,
};

/// Three logged-in clients (binary, JSON, binary), their presence notices drained.
fn three_clients(server: &RunningServer) -> Vec<Client> {
    let mut clients = vec![
        Client::login_new(server.addr, WireFormat::Binary, "alice"),
        Client::login_new(server.addr, WireFormat::Json, "bob"),
        Client::login_new(server.addr, WireFormat::Binary, "carol"),
    ];
    for c in &mut clients {
        c.sync();
    }
    clients
}

/// Waits until the server's frame and byte counters equal the clients' own tallies (all
/// clients have synced, so nothing is in flight), and returns that snapshot.
fn settled(server: &RunningServer, clients: &[Client]) -> StatsSnapshot {
    let sum = |f: fn(&Client) -> u64| clients.iter().map(f).sum::<u64>();
    let (frames_in, bytes_in) = (sum(|c| c.frames_sent), sum(|c| c.bytes_sent));
    let (frames_out, bytes_out) = (sum(|c| c.frames_received), sum(|c| c.bytes_received));
    wait_for_stats(server, "frames and bytes equal to the clients' tallies", |s| {
        s.frames_in == frames_in && s.bytes_in == bytes_in && s.bytes_out == bytes_out && s.frames_out == frames_out
    })
}

/// Two room messages (two recipients each), one private message, one bad frame.
fn exchange(clients: &mut [Client]) {
    clients[0].say("one");
    clients[0].sync();
    clients[1].say("two");
    clients[1].sync();
    clients[0].send(&ClientMsg::PrivateMsg { to: "carol".into(), text: "psst".into() });
    clients[0].sync();
    clients[2].send_raw(&raw::frame(0x7f, 0, b""));
    assert_eq!(clients[2].recv_error(), ErrorCode::UnknownType);
    for c in clients.iter_mut() {
        c.sync();
    }
}

#[test]
fn counters_match_what_the_clients_saw() {
    let server = server();
    let mut clients = three_clients(&server);
    let before = settled(&server, &clients);
    assert_eq!(before.logins, 3);
    exchange(&mut clients);
    let s = settled(&server, &clients);
    assert!(s.bytes_in > 0 && s.bytes_out > 0 && s.frames_in > 0);
    assert_eq!(s.logins, 3);
    assert_eq!(s.room_msgs, 2);
    assert_eq!(s.deliveries - before.deliveries, 4, "two room messages, two recipients each");
    assert_eq!(s.private_msgs, 1);
    assert_eq!(s.protocol_errors, 1);
    assert_eq!((s.connections_open, s.connections_total, s.tls_connections), (3, 3, 0));
    assert_eq!((s.slow_consumer_disconnects, s.accept_refusals), (0, 0));

    // A disconnect: one connection fewer, and a notice to each of the two others.
    let carol = clients.pop().expect("carol");
    carol.shutdown();
    drop(carol);
    for c in &mut clients {
        c.recv_until(|m| is_notice(m, SystemKind::Disconnect, "carol"));
    }
    let after = wait_for_stats(&server, "carol gone", |s| s.connections_open == 2);
    assert_eq!(after.frames_out, s.frames_out + 2);
    assert_eq!(after.connections_total, 3);
}

#[test]
fn deliveries_count_room_message_recipients_only() {
    let server = server();
    let mut clients = three_clients(&server);
    exchange(&mut clients);
    let s = settled(&server, &clients);
    // Two room messages, two recipients each; the three logins' join notices are not deliveries.
    assert_eq!(s.deliveries, 4, "{s:?}");
}
