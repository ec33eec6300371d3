//! Backpressure: the outbound cap cuts off readers that fall behind, never readers that keep up.

use crate::support::{server_with, unlimited_config, Client, ClientMsg, ServerMsg, WireFormat, DEADLINE};
use std::time::Instant;

/// `observer` reads on its own thread until it has seen `expect` room messages; returns how
/// many it got, or the error that stopped it.
fn read_in_background(mut observer: Client, expect: usize) -> std::thread::JoinHandle<Result<usize, String>> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + DEADLINE * 2;
        let mut n = 0;
        while n < expect {
            match observer.recv_by(deadline) {
                Ok(ServerMsg::RoomMsg { .. }) => n += 1,
                Ok(ServerMsg::ErrorMsg { code, text }) => return Err(format!("after {n} messages: {code:?}: {text}")),
                Ok(_) => {}
                Err(e) => return Err(format!("after {n} messages: {e}")),
            }
        }
        Ok(n)
    })
}

/// One client writes `count` messages of 1 KiB in a single write; a reader that keeps up (on
/// its own thread, its socket buffers empty when the burst starts) must get all of them.
fn burst_reaches_a_prompt_reader(max_outbound: usize, count: usize) {
    let mut cfg = unlimited_config();
    cfg.max_outbound_bytes = max_outbound;
    let server = server_with(cfg);
    let mut observer = Client::login_new(server.addr, WireFormat::Binary, "observer");
    let mut flooder = Client::login_new(server.addr, WireFormat::Binary, "flooder");
    observer.sync();
    let reader = read_in_background(observer, count);
    let frame = flooder.encode(&ClientMsg::RoomMsg { text: "b".repeat(1024).into() });
    let burst: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * count).collect();
    // Write from a thread while this one drains the acks, so neither side can block the other.
    let mut writer = flooder.writer_clone();
    let w = std::thread::spawn(move || std::io::Write::write_all(&mut writer, &burst));
    let mut acks = 0;
    while acks < count {
        match flooder.try_recv() {
            Ok(ServerMsg::RoomMsgAck { .. }) => acks += 1,
            Ok(other) => panic!("flooder got {other:?} after {acks} acks"),
            Err(e) => panic!("flooder after {acks} acks: {e}"),
        }
    }
    w.join().expect("writer thread").expect("burst written");
    let got = reader.join().expect("reader thread");
    let stats = server.handle.stats();
    assert_eq!(got, Ok(count), "a reader that keeps up gets the whole burst; stats: {stats:?}");
    assert_eq!(stats.slow_consumer_disconnects, 0);
}

#[test]
fn a_burst_smaller_than_the_cap_reaches_a_prompt_reader() {
    burst_reaches_a_prompt_reader(1024 * 1024, 200);
}

#[test]
fn a_burst_larger_than_the_cap_reaches_a_prompt_reader() {
    // 200 KiB in one write, cap 64 KiB: the reader has nothing buffered when the burst starts.
    burst_reaches_a_prompt_reader(64 * 1024, 200);
}

#[test]
fn a_large_burst_reaches_a_prompt_reader_with_the_default_cap() {
    burst_reaches_a_prompt_reader(crate::support::ServerConfig::default().max_outbound_bytes, 4000);
}
