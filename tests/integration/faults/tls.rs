//! Garbage on a TLS server, beside a pair whose binary member speaks TLS: random bytes after a
//! handshake byte, an impossible record length, a stalled handshake, garbage records after a
//! good handshake. Each bad connection is closed (with an alert where TLS can send one); the
//! pair never notices.

use super::pair::Pair;
use crate::support::{
    client_connect, random_bytes, raw_connect, read_until_closed, server_with, tls_config, wait_for_stats, Client,
    ClientTrust, TempDir, WireFormat,
};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// First byte of a TLS alert record.
const ALERT: u8 = 0x15;

/// Sends `bytes` on a fresh connection and checks the server closes it. Returns what came back.
#[track_caller]
fn garbage(addr: SocketAddr, what: &str, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = raw_connect(addr);
    // The server may close before taking everything: a failed write is part of the outcome.
    let _ = tcp.write_all(bytes);
    let back = read_until_closed(&mut tcp).unwrap_or_else(|e| panic!("{what}: {e}"));
    if let Some(&first) = back.first() {
        assert_eq!(first, ALERT, "{what}: anything sent back is a TLS alert, got {:02x?}", &back[..back.len().min(16)]);
    }
    back
}

#[test]
fn garbage_tls_closes_only_that_connection() {
    let dir = TempDir::new("tls-garbage");
    let mut cfg = tls_config(&dir);
    cfg.tls.handshake_timeout = Duration::from_millis(500);
    let server = server_with(cfg);
    let ca = dir.cert();
    let pair = Pair::start_tls(server.addr, &ca);

    // A handshake record type, then noise.
    for seed in 1..=5u64 {
        let mut bytes = vec![0x16];
        bytes.extend(random_bytes(seed, 3000));
        garbage(server.addr, &format!("noise {seed}"), &bytes);
    }
    // A record header announcing 65,535 bytes (far over TLS's 16 KiB + expansion).
    garbage(server.addr, "oversized record", &[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00]);
    // A record header with a bogus version, and a well-sized but empty-bodied handshake.
    garbage(server.addr, "bad version", &[0x16, 0x7f, 0x7f, 0x00, 0x05, 1, 2, 3, 4, 5]);
    garbage(server.addr, "empty handshake", &[0x16, 0x03, 0x03, 0x00, 0x00]);
    // A stalled handshake: a partial record, then nothing (the handshake deadline closes it).
    garbage(server.addr, "stalled handshake", &[0x16, 0x03, 0x01, 0x00, 0x80, 0x01]);

    // A good handshake, then garbage application records on the raw socket.
    let tcp = raw_connect(server.addr);
    let mut raw: TcpStream = tcp.try_clone().expect("clone");
    let stream = client_connect(tcp, "localhost", &ClientTrust::CaFile(ca.clone())).expect("handshake");
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x40];
    record.extend(random_bytes(99, 0x40));
    let _ = raw.write_all(&record);
    read_until_closed(&mut raw).expect("closed after a garbage record");
    drop(stream);

    // A plaintext client on the same port is still welcome.
    let mut plain = Client::login_new(server.addr, WireFormat::Json, "plain");
    plain.sync();
    plain.close();
    wait_for_stats(&server, "only the pair left", |s| s.connections_open == 2);
    pair.finish();
}
