//! TLS cost per message: the server's TLS pump (`chatproto::net::tls::TlsSession`, the one the event
//! loop drives) encrypting a shared ROOM_MSG frame into an in-memory "socket", and a rustls client
//! decrypting it — against the same frame written in plaintext. No sockets, no kernel: the
//! difference is the cost TLS adds per message, per side.

use bytes::{Bytes, BytesMut};
use chatproto::net::buffer::OutQueue;
use chatproto::net::tls::{client_config, Acceptor, ClientTrust, TlsSession};
use chatproto::net::WireCount;
use chatproto::protocol::{ServerMsg, WireFormat};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Duration;

/// One direction of an in-memory connection.
#[derive(Default)]
struct Pipe(VecDeque<u8>);

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.0.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The server's socket view: reads what the client wrote, writes what the client reads.
struct ServerSide<'a> {
    rx: &'a mut Pipe,
    tx: &'a mut Pipe,
}

impl Read for ServerSide<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.rx.read(buf)
    }
}

impl Write for ServerSide<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A handshaken server session and rustls client over two pipes.
struct Link {
    server: TlsSession,
    client: rustls::ClientConnection,
    to_server: Pipe,
    to_client: Pipe,
    wire: WireCount,
}

impl Link {
    fn new() -> Link {
        let dir = std::env::temp_dir().join(format!("chatproto-tls-bench-{}", std::process::id()));
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        let (acceptor, _) = Acceptor::load_or_generate(&cert, &key).expect("certificate");
        let config = client_config(&ClientTrust::CaFile(cert)).expect("client config");
        let name = "localhost".try_into().expect("server name");
        let client = rustls::ClientConnection::new(config, name).expect("client");
        let _ = std::fs::remove_dir_all(&dir);
        let mut link = Link {
            server: acceptor.session(),
            client,
            to_server: Pipe::default(),
            to_client: Pipe::default(),
            wire: WireCount::default(),
        };
        let mut buf = [0u8; 4096];
        for _ in 0..10 {
            let _ = link.client.write_tls(&mut link.to_server);
            let mut side = ServerSide { rx: &mut link.to_server, tx: &mut link.to_client };
            let _ = link.server.read(&mut side, &mut buf, &mut link.wire);
            let _ = link.server.flush(&mut side, &mut OutQueue::default(), &mut link.wire);
            let _ = link.client.read_tls(&mut link.to_client);
            link.client.process_new_packets().expect("handshake");
            if !link.client.is_handshaking() && !link.server.is_handshaking() {
                return link;
            }
        }
        panic!("the in-memory handshake did not finish");
    }

    /// Server encrypts one queued frame; returns the ciphertext length.
    fn server_send(&mut self, frame: &Bytes) -> usize {
        let mut q = OutQueue::default();
        q.push_final(frame.clone());
        let before = self.wire.written;
        let mut side = ServerSide { rx: &mut self.to_server, tx: &mut self.to_client };
        self.server.flush(&mut side, &mut q, &mut self.wire).expect("flush");
        (self.wire.written - before) as usize
    }

    /// Client decrypts everything waiting; returns the plaintext length.
    fn client_receive(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while !self.to_client.0.is_empty() {
            self.client.read_tls(&mut self.to_client).expect("read_tls");
            self.client.process_new_packets().expect("records");
            loop {
                match self.client.reader().read(buf) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        n
    }
}

fn frame(text_len: usize) -> Bytes {
    let text = "x".repeat(text_len);
    let msg = ServerMsg::RoomMsg {
        id: 7,
        ts_ms: 1_700_000_000_000,
        room: "general".into(),
        from: "alice".into(),
        text: text.into(),
        history: false,
    };
    let mut out = BytesMut::new();
    WireFormat::Binary.encode_server(&msg, &mut out);
    out.freeze()
}

fn tls_per_message(c: &mut Criterion) {
    let mut group = c.benchmark_group("tls_per_message");
    group.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    let mut buf = vec![0u8; 64 * 1024];
    for text_len in [64usize, 512, 4096] {
        let frame = frame(text_len);
        group.throughput(Throughput::Bytes(frame.len() as u64));
        let mut link = Link::new();
        group.bench_with_input(BenchmarkId::new("server_encrypt", text_len), &frame, |b, f| {
            b.iter(|| {
                let n = link.server_send(f);
                link.to_client.0.clear();
                n
            })
        });
        let mut link = Link::new();
        group.bench_with_input(BenchmarkId::new("encrypt_and_client_decrypt", text_len), &frame, |b, f| {
            b.iter(|| {
                link.server_send(f);
                link.client_receive(&mut buf)
            })
        });
        let mut sink = Pipe::default();
        group.bench_with_input(BenchmarkId::new("plaintext_write", text_len), &frame, |b, f| {
            b.iter(|| {
                let mut q = OutQueue::default();
                q.push_final(f.clone());
                let n = q.write_to(&mut sink).expect("write");
                sink.0.clear();
                n
            })
        });
    }
    group.finish();
}

criterion_group!(benches, tls_per_message);
criterion_main!(benches);
