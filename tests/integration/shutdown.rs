//! Graceful shutdown: every client hears why, then sees the stream end.

use crate::support::{
    server, server_with, tls_config, wait_for_stats, Client, Msg, ServerMsg, SystemKind, TempDir, WireFormat,
};
use std::net::TcpStream;

#[track_caller]
fn assert_shutdown_notice(frames: &[Msg], who: &str) {
    match frames {
        [ServerMsg::SystemMsg { kind: SystemKind::Info, text, .. }] => {
            assert!(text.contains("shutting down"), "{who}: {text:?}")
        }
        other => panic!("{who}: expected exactly the shutdown notice, got {other:?}"),
    }
}

#[test]
fn stop_tells_every_client_then_closes() {
    let dir = TempDir::new("shutdown");
    let server = server_with(tls_config(&dir));
    let addr = server.addr;
    let mut alice = Client::login_new(addr, WireFormat::Binary, "alice");
    let mut bob = Client::connect_tls(addr, WireFormat::Json, &dir.cert());
    bob.login("bob");
    let mut idle = Client::connect(addr, WireFormat::Json); // connected, never spoke
    let mut anon = Client::connect(addr, WireFormat::Binary); // spoke, never logged in
    anon.send(&crate::support::ClientMsg::Ping { token: 5 });
    assert_eq!(anon.recv(), ServerMsg::Pong { token: 5 });
    alice.sync();
    bob.sync();
    // Make sure the server has accepted the idle connection before stopping.
    wait_for_stats(&server, "four connections", |s| s.connections_open == 4);

    server.stop().expect("clean stop");

    assert_shutdown_notice(&alice.expect_closed(), "alice");
    assert_shutdown_notice(&bob.expect_closed(), "bob over TLS");
    assert_shutdown_notice(&idle.expect_closed(), "idle (JSON by default)");
    assert_shutdown_notice(&anon.expect_closed(), "not logged in");

    // Nobody is listening any more.
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed after stop");
}

#[test]
fn dropping_the_server_also_closes_clients() {
    let server = server();
    let mut alice = Client::login_new(server.addr, WireFormat::Binary, "alice");
    drop(server);
    assert_shutdown_notice(&alice.expect_closed(), "alice");
}
