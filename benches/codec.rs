//! Codec throughput: encode and decode of the hottest messages, binary vs JSON.
//!
//! - `encode/*`: a server ROOM_MSG (room "general", from "alice", 64- and 512-byte texts) and a
//!   client ROOM_MSG, encoded into one reused `BytesMut` (cleared each iteration), so the numbers
//!   are encoding cost, not allocation.
//! - `decode/*`: the same frames decoded from a byte slice (borrowed where the format allows).
//!
//! Throughput is the encoded frame length, so reports show bytes/s per format.
//! Run: `cargo bench --bench codec` (about a minute), or add `-- --quick` for a rough pass.

use bytes::BytesMut;
use chatproto::protocol::{ClientMsg, Limits, ServerMsg, WireFormat};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::borrow::Cow;
use std::time::Duration;

const FORMATS: [WireFormat; 2] = [WireFormat::Binary, WireFormat::Json];
const TEXT_LENS: [usize; 2] = [64, 512];

/// Chat-like text of exactly `len` bytes (ASCII, no JSON escapes).
fn text(len: usize) -> String {
    "the quick brown fox jumps over the lazy dog. ".chars().cycle().take(len).collect()
}

fn server_room_msg(text: &str) -> ServerMsg<'_> {
    ServerMsg::RoomMsg {
        id: 1_234_567,
        ts_ms: 1_700_000_000_000,
        room: Cow::Borrowed("general"),
        from: Cow::Borrowed("alice"),
        text: Cow::Borrowed(text),
        history: false,
    }
}

fn client_room_msg(text: &str) -> ClientMsg<'_> {
    ClientMsg::RoomMsg { text: Cow::Borrowed(text) }
}

fn encoded_server(f: WireFormat, m: &ServerMsg<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    f.encode_server(m, &mut out);
    out.to_vec()
}

fn encoded_client(f: WireFormat, m: &ClientMsg<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    f.encode_client(m, &mut out);
    out.to_vec()
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for len in TEXT_LENS {
        let t = text(len);
        let (sm, cm) = (server_room_msg(&t), client_room_msg(&t));
        for f in FORMATS {
            let mut out = BytesMut::with_capacity(4096);

            g.throughput(Throughput::Bytes(encoded_server(f, &sm).len() as u64));
            g.bench_with_input(BenchmarkId::new(format!("server_room_msg/{}", f.name()), len), &sm, |b, m| {
                b.iter(|| {
                    out.clear();
                    f.encode_server(black_box(m), &mut out);
                    black_box(out.len())
                })
            });

            g.throughput(Throughput::Bytes(encoded_client(f, &cm).len() as u64));
            g.bench_with_input(BenchmarkId::new(format!("client_room_msg/{}", f.name()), len), &cm, |b, m| {
                b.iter(|| {
                    out.clear();
                    f.encode_client(black_box(m), &mut out);
                    black_box(out.len())
                })
            });
        }
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("decode");
    for len in TEXT_LENS {
        let t = text(len);
        for f in FORMATS {
            let bytes = encoded_server(f, &server_room_msg(&t));
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            g.bench_with_input(BenchmarkId::new(format!("server_room_msg/{}", f.name()), len), &bytes, |b, buf| {
                b.iter(|| {
                    let (m, used) = f.decode_server(black_box(buf), &limits).unwrap().unwrap();
                    black_box(&m);
                    used
                })
            });

            let bytes = encoded_client(f, &client_room_msg(&t));
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            g.bench_with_input(BenchmarkId::new(format!("client_room_msg/{}", f.name()), len), &bytes, |b, buf| {
                b.iter(|| {
                    let (m, used) = f.decode_client(black_box(buf), &limits).unwrap().unwrap();
                    black_box(&m);
                    used
                })
            });
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = encode, decode }
criterion_main!(benches);
