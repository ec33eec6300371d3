//! Fan-out cost: one room message to N members.
//!
//! `shared`: the server's way — encode once into a `Bytes`, push a refcounted clone onto each
//! member's queue, drain each queue with one vectored write. `per_recipient`: the seeds' way —
//! encode for every member and write each frame with its own call. Both write to `io::sink()`,
//! so the numbers are the user-space cost per delivery, not the kernel's.

use bytes::BytesMut;
use chatproto::net::buffer::OutQueue;
use chatproto::protocol::{ServerMsg, WireFormat};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::io::Write;
use std::time::Duration;

fn message(text: &str) -> ServerMsg<'_> {
    ServerMsg::RoomMsg {
        id: 42,
        ts_ms: 1_700_000_000_000,
        room: "general".into(),
        from: "alice".into(),
        text: text.into(),
        history: false,
    }
}

fn fanout(c: &mut Criterion) {
    let text = "x".repeat(64);
    let msg = message(&text);
    let mut group = c.benchmark_group("fanout");
    group.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    for members in [10usize, 100, 1000] {
        group.throughput(Throughput::Elements(members as u64));
        let mut queues: Vec<OutQueue> = (0..members).map(|_| OutQueue::default()).collect();
        let mut arena = BytesMut::with_capacity(64 * 1024);
        group.bench_with_input(BenchmarkId::new("shared_bytes_writev", members), &members, |b, _| {
            b.iter(|| {
                if arena.capacity() < 1024 {
                    arena.reserve(64 * 1024);
                }
                WireFormat::Binary.encode_server(&msg, &mut arena);
                let frame = arena.split().freeze();
                for q in queues.iter_mut() {
                    q.push(frame.clone(), usize::MAX).expect("no cap");
                }
                for q in queues.iter_mut() {
                    q.write_to(&mut std::io::sink()).expect("sink");
                }
            })
        });
        let mut buf = BytesMut::with_capacity(1024);
        group.bench_with_input(BenchmarkId::new("per_recipient_encode_write", members), &members, |b, &n| {
            b.iter(|| {
                for _ in 0..n {
                    buf.clear();
                    WireFormat::Binary.encode_server(&msg, &mut buf);
                    std::io::sink().write_all(&buf).expect("sink");
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
