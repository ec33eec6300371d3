//! A thousand clients in one room: all log in, one speaks, everyone else hears it.

use crate::support::{is_room_msg, raise_fd_limit, server, wait_for_stats, Client, ClientMsg, ServerMsg, WireFormat};
use std::time::{Duration, Instant};

const CLIENTS: usize = 1000;
const BATCH: usize = 100;
/// A guard against a server that is alive but hopelessly slow; not a performance assertion.
const OVERALL: Duration = Duration::from_secs(60);

#[track_caller]
fn guard(start: Instant, what: &str) {
    assert!(start.elapsed() < OVERALL, "scale test still {what} after {OVERALL:?}");
}

#[test]
fn a_thousand_clients_in_one_room() {
    let limit = raise_fd_limit();
    assert!(limit >= (2 * CLIENTS + 200) as u64, "RLIMIT_NOFILE hard limit {limit} is too low for this test");
    let server = server();
    let start = Instant::now();
    let mut clients: Vec<Client> = Vec::with_capacity(CLIENTS);
    while clients.len() < CLIENTS {
        guard(start, "logging in");
        let first = clients.len();
        let mut batch: Vec<Client> = (first..first + BATCH)
            .map(|i| {
                let format = if i % 2 == 0 { WireFormat::Binary } else { WireFormat::Json };
                let mut c = Client::connect(server.addr, format);
                c.name = format!("user{i:04}");
                c
            })
            .collect();
        for c in &mut batch {
            let name = c.name.clone();
            c.send(&ClientMsg::Login { username: name.as_str().into(), credential: None, since: None });
        }
        for c in &mut batch {
            match c.recv() {
                ServerMsg::LoginAck { username, .. } => assert_eq!(username, c.name),
                other => panic!("{}: {other:?}", c.name),
            }
        }
        clients.extend(batch);
    }
    // Every client has its LOGIN_ACK, so the server's counters for the logins are settled once
    // they show all of them (they are published together at the end of a loop turn).
    let before =
        wait_for_stats(&server, "every login", |s| s.logins == CLIENTS as u64 && s.connections_open == CLIENTS as u64);

    let text = "hello, all 999 of you";
    clients[0].say(text);
    match clients[0].recv_until(|m| matches!(m, ServerMsg::RoomMsgAck { .. })) {
        ServerMsg::RoomMsgAck { .. } => {}
        _ => unreachable!(),
    }
    for c in &mut clients[1..] {
        guard(start, "delivering");
        let m = c.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. }));
        assert!(is_room_msg(&m, text), "{}: {m:?}", c.name);
        assert!(matches!(&m, ServerMsg::RoomMsg { from, .. } if from == "user0000"));
    }
    let s = wait_for_stats(&server, "999 deliveries", |s| s.room_msgs == 1);
    assert_eq!(s.deliveries - before.deliveries, (CLIENTS - 1) as u64);
    assert_eq!(s.slow_consumer_disconnects, 0);

    // The room's member list is complete, across its pages (500 names a page by default).
    let (mut users, mut after, mut pages) = (Vec::new(), None, 0);
    loop {
        pages += 1;
        assert!(pages <= 10, "the list never ended");
        let c = &mut clients[CLIENTS - 1];
        c.send(&ClientMsg::ListUsers { after: after.take() });
        match c.recv_until(|m| matches!(m, ServerMsg::ListUsers { .. })) {
            ServerMsg::ListUsers { users: page, next, .. } => {
                users.extend(page.into_iter().map(|u| u.to_string()));
                match next {
                    Some(cursor) => after = Some(cursor),
                    None => break,
                }
            }
            _ => unreachable!(),
        }
    }
    let want: Vec<String> = (0..CLIENTS).map(|i| format!("user{i:04}")).collect();
    assert_eq!(users, want);
    assert_eq!(pages, 2, "1,000 names: two pages of 500");
}
