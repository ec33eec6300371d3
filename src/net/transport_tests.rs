//! The transport over real loopback sockets: what each `Outcome` means for plain TCP and TLS,
//! the opening byte, and the wire counters. The client side is a blocking std stream (or a
//! rustls client on a thread); every wait is bounded.

use super::*;
use crate::net::tls::{client_connect, ClientTrust};
use bytes::Bytes;
use std::io::Write;
use std::net::{TcpListener, TcpStream as StdStream};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

/// Bound on every wait for the other side: attempts × pause.
const ATTEMPTS: usize = 2_000;
const PAUSE: Duration = Duration::from_millis(2);

/// A connected pair over loopback: the server's non-blocking mio socket and a blocking client
/// whose reads time out instead of hanging the test.
fn pair() -> (TcpStream, StdStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = StdStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    (TcpStream::from_std(server), client)
}

/// Calls `f` until it returns `Some`, pausing between attempts; panics after the bound.
fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..ATTEMPTS {
        if let Some(v) = f() {
            return v;
        }
        thread::sleep(PAUSE);
    }
    panic!("gave up waiting for {what}");
}

/// Reads plaintext until `want` bytes arrived (tolerating `WouldBlock` while they travel);
/// under TLS also flushes handshake records, as the event loop does on a writable edge.
fn read_n(t: &mut Transport, want: usize, wire: &mut WireCount) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    until("plaintext", || {
        match t.read(&mut buf, wire) {
            Outcome::Progress(n) => got.extend_from_slice(&buf[..n]),
            Outcome::WouldBlock => {
                let _ = t.flush(&mut OutQueue::default(), wire);
            }
            other => panic!("unexpected {other:?} after {} bytes", got.len()),
        }
        (got.len() >= want).then_some(())
    });
    got
}

/// A fresh directory under the system temp dir for one test's certificate files.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatproto-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn plain_read_makes_progress_then_would_block_when_drained() {
    let (sock, mut client) = pair();
    let mut t = Transport::new(sock);
    let mut wire = WireCount::default();
    let mut buf = [0u8; 64];
    assert!(matches!(t.read(&mut buf, &mut wire), Outcome::WouldBlock));
    client.write_all(b"hello").unwrap();
    assert_eq!(read_n(&mut t, 5, &mut wire), b"hello");
    assert!(matches!(t.read(&mut buf, &mut wire), Outcome::WouldBlock));
    assert_eq!(wire, WireCount { read: 5, written: 0 });
    assert!(!t.is_tls() && !t.is_handshaking() && !t.has_pending_output());
    assert_eq!(t.buffered(), 0);
}

#[test]
fn plain_read_reports_fin_after_the_peer_closes() {
    let (sock, mut client) = pair();
    let mut t = Transport::new(sock);
    let mut wire = WireCount::default();
    client.write_all(b"bye").unwrap();
    drop(client);
    assert_eq!(read_n(&mut t, 3, &mut wire), b"bye");
    let mut buf = [0u8; 64];
    until("fin", || match t.read(&mut buf, &mut wire) {
        Outcome::Fin => Some(()),
        Outcome::WouldBlock => None,
        other => panic!("expected Fin, got {other:?}"),
    });
    // The end of the stream stays the end.
    assert!(matches!(t.read(&mut buf, &mut wire), Outcome::Fin));
}

#[test]
fn plain_read_reports_reset_when_the_peer_aborts() {
    let (sock, client) = pair();
    let mut t = Transport::new(sock);
    let mut wire = WireCount::default();
    // SO_LINGER 0: closing sends RST instead of FIN.
    socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO)).unwrap();
    drop(client);
    let mut buf = [0u8; 64];
    until("reset", || match t.read(&mut buf, &mut wire) {
        Outcome::Reset(_) => Some(()),
        Outcome::WouldBlock => None,
        other => panic!("expected Reset, got {other:?}"),
    });
}

#[test]
fn flush_moves_the_queue_and_counts_it() {
    let (sock, mut client) = pair();
    let mut t = Transport::new(sock);
    let mut wire = WireCount::default();
    let mut q = OutQueue::default();
    let shared = Bytes::from_static(b"frame|");
    for _ in 0..3 {
        q.push(shared.clone(), 1024).unwrap();
    }
    q.push(Bytes::from_static(b"last\n"), 1024).unwrap();
    let total = q.queued();
    match t.flush(&mut q, &mut wire) {
        Outcome::Progress(n) => assert_eq!(n, total),
        other => panic!("expected Progress, got {other:?}"),
    }
    assert!(q.is_empty());
    assert_eq!(wire, WireCount { read: 0, written: total as u64 });
    // Nothing queued: nothing moves.
    assert!(matches!(t.flush(&mut q, &mut wire), Outcome::Progress(0)));
    let mut got = vec![0u8; total];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, b"frame|frame|frame|last\n");
}

#[test]
fn flush_to_a_peer_that_does_not_read_leaves_bytes_queued_then_delivers_them_all() {
    let (sock, mut client) = pair();
    let mut t = Transport::new(sock);
    let mut wire = WireCount::default();
    let mut q = OutQueue::default();
    let chunk = Bytes::from((0..64 * 1024).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let mut pushed = 0usize;
    // The kernel buffers a few MiB on loopback; 1,024 chunks (64 MiB) bound the loop.
    let stuck = (0..1024).any(|_| {
        q.push(chunk.clone(), usize::MAX).unwrap();
        pushed += chunk.len();
        match t.flush(&mut q, &mut wire) {
            Outcome::Progress(_) | Outcome::WouldBlock => !q.is_empty(),
            other => panic!("unexpected {other:?}"),
        }
    });
    assert!(stuck, "the socket took 64 MiB without the peer reading");
    assert_eq!(wire.written as usize + q.queued(), pushed);
    // No writable edge since: another flush moves nothing and loses nothing.
    let queued = q.queued();
    assert!(matches!(t.flush(&mut q, &mut wire), Outcome::Progress(0) | Outcome::WouldBlock));
    assert_eq!(q.queued(), queued);

    // The peer starts reading: every byte arrives, in order.
    let reader = thread::spawn(move || {
        let mut all = Vec::new();
        client.read_to_end(&mut all).unwrap();
        all
    });
    until("the queue to drain", || {
        match t.flush(&mut q, &mut wire) {
            Outcome::Progress(_) | Outcome::WouldBlock => {}
            other => panic!("unexpected {other:?}"),
        }
        q.is_empty().then_some(())
    });
    t.close(&mut wire);
    let all = reader.join().unwrap();
    assert_eq!(all.len(), pushed);
    assert_eq!(wire.written as usize, pushed);
    assert!(all.chunks(chunk.len()).all(|c| c == &chunk[..c.len()]));
}

#[test]
fn peek_opening_tells_nothing_tls_plain_and_closed_apart_without_consuming() {
    let (sock, mut client) = pair();
    let mut t = Transport::new(sock);
    assert_eq!(t.peek_opening().unwrap(), Opening::Nothing);
    client.write_all(&[TLS_HANDSHAKE]).unwrap();
    let o = until("tls byte", || Some(t.peek_opening().unwrap()).filter(|o| *o != Opening::Nothing));
    assert_eq!(o, Opening::Tls);
    // Peeking does not consume: the byte is still there to read.
    let mut wire = WireCount::default();
    assert_eq!(read_n(&mut t, 1, &mut wire), [TLS_HANDSHAKE]);

    let (sock, mut client) = pair();
    let mut t = Transport::new(sock);
    client.write_all(b"{\"type\":\"ping\"}\n").unwrap();
    let o = until("json byte", || Some(t.peek_opening().unwrap()).filter(|o| *o != Opening::Nothing));
    assert_eq!(o, Opening::Plain(b'{'));
    assert_eq!(t.peek_opening().unwrap(), Opening::Plain(b'{'));

    let (sock, client) = pair();
    let mut t = Transport::new(sock);
    drop(client);
    let o = until("close", || Some(t.peek_opening().unwrap()).filter(|o| *o != Opening::Nothing));
    assert_eq!(o, Opening::Closed);
}

#[test]
fn tls_round_trip_reads_plaintext_and_flushes_records() {
    let dir = temp_dir("tls-round-trip");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let (acceptor, source) = Acceptor::load_or_generate(&cert, &key).unwrap();
    assert_eq!(source, crate::net::tls::CertSource::Generated);
    // The second start finds the files it wrote.
    assert_eq!(Acceptor::load_or_generate(&cert, &key).unwrap().1, crate::net::tls::CertSource::Loaded);

    let (sock, client) = pair();
    let trust = ClientTrust::CaFile(cert.clone());
    let peer = thread::spawn(move || {
        let mut tls = client_connect(client, "localhost", &trust).unwrap();
        tls.write_all(b"hello over tls\n").unwrap();
        tls.flush().unwrap();
        let mut reply = [0u8; 5];
        tls.read_exact(&mut reply).unwrap();
        // Then the server's close_notify: a clean end of stream.
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).unwrap();
        (reply, rest)
    });

    let mut t = Transport::new(sock);
    let mut wire = WireCount::default();
    let o = until("client hello", || Some(t.peek_opening().unwrap()).filter(|o| *o != Opening::Nothing));
    assert_eq!(o, Opening::Tls);
    t.start_tls(&acceptor);
    assert!(t.is_tls() && t.is_handshaking());
    let got = read_n(&mut t, 15, &mut wire);
    assert_eq!(got, b"hello over tls\n");
    assert!(!t.is_handshaking());
    // Ciphertext crossed the socket both ways: more than the plaintext.
    assert!(wire.read > got.len() as u64 && wire.written > 0);

    let mut q = OutQueue::default();
    q.push(Bytes::from_static(b"pong\n"), 1024).unwrap();
    let before = wire.written;
    until("the reply to be written", || {
        match t.flush(&mut q, &mut wire) {
            Outcome::Progress(_) | Outcome::WouldBlock => {}
            other => panic!("unexpected {other:?}"),
        }
        (q.is_empty() && !t.has_pending_output()).then_some(())
    });
    assert!(wire.written - before > 5, "a record is longer than its plaintext");
    t.close(&mut wire);
    let (reply, rest) = peer.join().unwrap();
    assert_eq!(&reply, b"pong\n");
    assert!(rest.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_garbage_after_a_record_header_is_fatal_and_sends_an_alert() {
    let dir = temp_dir("tls-garbage");
    let (acceptor, _) = Acceptor::load_or_generate(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
    let (sock, mut client) = pair();
    let mut t = Transport::new(sock);
    t.start_tls(&acceptor);
    // A handshake record holding a ClientHello of four junk bytes.
    client.write_all(&[TLS_HANDSHAKE, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef]).unwrap();
    let mut wire = WireCount::default();
    let mut buf = [0u8; 64];
    until("fatal", || match t.read(&mut buf, &mut wire) {
        Outcome::Fatal(e) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            Some(())
        }
        Outcome::WouldBlock => None,
        other => panic!("expected Fatal, got {other:?}"),
    });
    assert_eq!(wire.read, 13);
    // The best-effort alert reached the client: an alert record (content type 21).
    assert!(wire.written > 0);
    let mut alert = [0u8; 1];
    client.read_exact(&mut alert).unwrap();
    assert_eq!(alert[0], 0x15);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fills the socket toward a client that does not read, lets the client take just enough for
/// the queue and a final `END` marker to enter the kernel, closes, and returns what the client
/// then reads to the end (or its error). The kernel still holds undelivered bytes at the close.
fn close_while_the_kernel_still_sends(client_sent_unread: bool) -> io::Result<Vec<u8>> {
    let (sock, mut client) = pair();
    let mut t = Transport::new(sock);
    let mut wire = WireCount::default();
    if client_sent_unread {
        // Say, a PING the server never reads because the connection is already closing.
        client.write_all(b"{\"type\":\"ping\"}\n").unwrap();
    }
    let mut q = OutQueue::default();
    let chunk = Bytes::from(vec![b'.'; 64 * 1024]);
    let stuck = (0..1024).any(|_| {
        q.push(chunk.clone(), usize::MAX).unwrap();
        let _ = t.flush(&mut q, &mut wire);
        !q.is_empty()
    });
    assert!(stuck);
    q.push_final(Bytes::from_static(b"END"));
    // The client reads 64 KiB at a time, only until our queue has entered the kernel.
    let mut got = Vec::new();
    let mut step = vec![0u8; 64 * 1024];
    for _ in 0..1024 {
        let _ = t.flush(&mut q, &mut wire);
        if q.is_empty() {
            break;
        }
        client.read_exact(&mut step).unwrap();
        got.extend_from_slice(&step);
    }
    assert!(q.is_empty());
    t.close(&mut wire);
    drop(t);
    client.read_to_end(&mut got)?;
    assert_eq!(got.len() as u64, wire.written);
    Ok(got)
}

#[test]
fn close_delivers_what_the_kernel_still_holds() {
    let got = close_while_the_kernel_still_sends(false).unwrap();
    assert!(got.ends_with(b"END"));
}

#[test]
fn close_delivers_what_the_kernel_still_holds_even_with_unread_input() {
    let got = close_while_the_kernel_still_sends(true).expect("the stream ends cleanly, not with a reset");
    assert!(got.ends_with(b"END"));
}
