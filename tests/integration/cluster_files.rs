//! Shared files across nodes joined through a real `nats-server -js`: a file stored on one node
//! is announced, listed and downloaded (same bytes, same SHA-256) on another, in both wire
//! formats; file ids never collide across nodes; a download of a file whose node died fails with
//! a clear error and the asking node carries on, and one whose node does not answer ends after
//! `--cluster-file-timeout`; a node that comes back with its data directory serves its files
//! again; after NATS loses its store the index is written again, so a node that joins later
//! lists and fetches older files.
//!
//! A node learns of another node's files shortly after they are stored (the index is a mirrored
//! key-value bucket), so listings are retried (bounded) until the file shows; what is asserted
//! after that is exact.

use crate::cluster::until_room_route;
use crate::features::files::{download, list_files, sha256, upload, TEST_CHUNK};
use crate::support::{
    http_get, node, node_with, Client, ErrorCode, NatsServer, Node, ServerMsg, TempDir, WireFormat, DEADLINE, TTL_S,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A node with a metrics endpoint on a free loopback port.
fn node_with_metrics(nats: &NatsServer, name: &str) -> Node {
    node_with(nats, name, &["--metrics", "127.0.0.1:0"])
}

/// Counter `name` on `n`'s metrics endpoint.
#[track_caller]
fn counter(n: &Node, name: &str) -> u64 {
    let line = n.process.wait_for("metrics at http://");
    let addr: SocketAddr =
        line.split("http://").nth(1).and_then(|u| u.split('/').next()).and_then(|a| a.parse().ok()).expect("address");
    let (status, _, body) = http_get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body);
    body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok()).expect(name)
}

/// `c`'s LIST_FILES, asked again (bounded) until it holds file `id`.
#[track_caller]
fn list_until(c: &mut Client, id: u64) -> Vec<(u64, String, u64, String)> {
    let end = Instant::now() + DEADLINE;
    loop {
        let listed = list_files(c);
        if listed.iter().any(|f| f.0 == id) {
            return listed;
        }
        assert!(Instant::now() < end, "{} never listed file {id}: {listed:?}", c.name);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Bytes with every value, over three chunks, the last one short.
fn sample(seed: usize) -> Vec<u8> {
    (0..(2 * TEST_CHUNK + 1000)).map(|i| ((i * 7 + seed) % 256) as u8).collect()
}

#[test]
fn a_file_stored_on_one_node_is_listed_and_downloaded_on_another_in_both_formats() {
    let Some(nats) = NatsServer::start("cluster_files::a_file_stored_on_one_node_is_listed_and_downloaded") else {
        return;
    };
    let (n1, n2) = (node_with_metrics(&nats, "n1"), node_with_metrics(&nats, "n2"));
    for f in [WireFormat::Binary, WireFormat::Json] {
        let other = if f == WireFormat::Binary { WireFormat::Json } else { WireFormat::Binary };
        let mut alice = Client::login_new(n1.addr, f, &format!("alice{}", f.name()));
        let mut bob = Client::login_new(n2.addr, other, &format!("bob{}", f.name()));
        until_room_route(&mut alice, &mut bob, "ping");
        until_room_route(&mut bob, &mut alice, "pong");

        let data = sample(0);
        let id = upload(&mut alice, "report.pdf", &data).expect("upload on n1");
        // The announcement crosses like a presence notice.
        match bob.recv_until(|m| matches!(m, ServerMsg::FileAvailable { .. })) {
            ServerMsg::FileAvailable { id: got, name, size, from, room } => assert_eq!(
                (got, &*name, size, &*from, &*room),
                (id, "report.pdf", data.len() as u64, &*alice.name, "general")
            ),
            _ => unreachable!(),
        }
        let listed = list_until(&mut bob, id);
        assert!(listed.contains(&(id, "report.pdf".into(), data.len() as u64, alice.name.clone())), "{listed:?}");
        // `download` checks FILE_DONE's SHA-256 against the bytes received.
        let got = download(&mut bob, id).expect("download on n2 of n1's file");
        assert_eq!(sha256(&got), sha256(&data));
        assert_eq!(got, data);

        // The other way, and ids from two nodes never share a slot.
        let back = sample(3);
        let id2 = upload(&mut bob, "back.bin", &back).expect("upload on n2");
        assert_ne!(id % 16, id2 % 16, "files of two nodes carry their nodes' id slots: {id} {id2}");
        let listed = list_until(&mut alice, id2);
        let ids: Vec<u64> = listed.iter().map(|f| f.0).collect();
        assert!(ids.contains(&id) && ids.contains(&id2), "one listing holds both nodes' files: {listed:?}");
        assert_eq!(download(&mut alice, id2).expect("download on n1 of n2's file"), back);
        // An empty file crosses too (no chunk, only FILE_DONE).
        let empty = upload(&mut alice, "empty", &[]).expect("empty upload");
        list_until(&mut bob, empty);
        assert_eq!(download(&mut bob, empty).expect("empty download"), Vec::<u8>::new());
        // Another room's file stays invisible.
        bob.join("elsewhere");
        bob.sync();
        let refused = download(&mut bob, id).expect_err("a file of another room");
        assert_eq!(refused.0, ErrorCode::FileRefused, "{refused:?}");
    }
    // Per format, each node fetched the other's three-chunk file and served its own (the empty
    // file needs no chunk).
    for n in [&n1, &n2] {
        assert_eq!(counter(n, "chatproto_cluster_file_chunks_fetched_total"), 6);
        assert_eq!(counter(n, "chatproto_cluster_file_chunks_served_total"), 6);
        assert_eq!(counter(n, "chatproto_cluster_file_fetches_failed_total"), 0);
    }
}

#[test]
fn a_download_from_a_dead_node_fails_clearly_and_the_node_carries_on() {
    let Some(nats) = NatsServer::start("cluster_files::a_download_from_a_dead_node_fails_clearly") else {
        return;
    };
    let (n1, n2) = (node(&nats, "n1"), node_with_metrics(&nats, "n2"));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    until_room_route(&mut alice, &mut bob, "ping");
    let data = sample(1);
    let id = upload(&mut alice, "doomed.bin", &data).expect("upload on n1");
    list_until(&mut bob, id);

    n1.process.signal(libc::SIGKILL);
    // At once (nobody answers on n1's subject) and after the TTL (n1 has left the directory):
    // either way an error naming the file and its node.
    let (code, text) = download(&mut bob, id).expect_err("n1 is dead");
    assert_eq!(code, ErrorCode::FileRefused, "{text}");
    assert!(text.contains(&format!("file {id}")) && text.contains("n1"), "{text}");
    // That one asked n1 and failed; once n1 has left the directory nothing is asked.
    assert_eq!(counter(&n2, "chatproto_cluster_file_fetches_failed_total"), 1);
    std::thread::sleep(Duration::from_secs(TTL_S + 1));
    let (code, text) = download(&mut bob, id).expect_err("n1 is dead");
    assert_eq!(code, ErrorCode::FileRefused, "{text}");
    assert!(text.contains(&format!("file {id} is stored on node n1, which is not reachable")), "{text}");
    assert_eq!(counter(&n2, "chatproto_cluster_file_fetches_failed_total"), 1);
    // Once n1 has left the directory its files are no longer listed.
    let end = Instant::now() + DEADLINE;
    while list_files(&mut bob).iter().any(|f| f.0 == id) {
        assert!(Instant::now() < end, "n1's file is still listed long after n1 died");
        std::thread::sleep(Duration::from_millis(100));
    }
    // n2 carries on: its own files work, and so do its users.
    let mine = sample(2);
    let own = upload(&mut bob, "mine.bin", &mine).expect("upload on n2");
    assert_eq!(download(&mut bob, own).expect("download on n2"), mine);
    let mut carol = Client::login_new(n2.addr, WireFormat::Binary, "carol");
    assert!(list_until(&mut carol, own).iter().all(|f| f.0 != id));
}

#[test]
fn a_node_that_comes_back_with_its_data_directory_serves_its_files_again() {
    let Some(nats) = NatsServer::start("cluster_files::a_node_that_comes_back_with_its_data_directory") else {
        return;
    };
    let data = TempDir::new("n1-data");
    let data_dir = data.path().to_str().expect("a UTF-8 path").to_string();
    let with_data = ["--data-dir", data_dir.as_str()];
    let (n1, n2) = (node_with(&nats, "n1", &with_data), node(&nats, "n2"));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    until_room_route(&mut alice, &mut bob, "ping");
    let kept = sample(4);
    let kept_id = upload(&mut alice, "kept.bin", &kept).expect("upload on n1");
    let lost_id = upload(&mut alice, "lost.bin", b"gone soon").expect("upload on n1");
    list_until(&mut bob, lost_id);

    // n1 dies; one of its files disappears from its disk before it comes back.
    n1.process.signal(libc::SIGKILL);
    drop(alice);
    drop(n1);
    for ext in ["", ".json"] {
        let path = data.path().join("files").join(format!("{lost_id:016x}{ext}"));
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
    }
    let _n1 = node_with(&nats, "n1", &with_data);
    // The lost file leaves the index (n1 drops its entries for files it no longer has); the
    // kept one is listed and downloadable again.
    let end = Instant::now() + DEADLINE;
    while list_files(&mut bob).iter().any(|f| f.0 == lost_id) {
        assert!(Instant::now() < end, "the file n1 lost is still listed after n1 came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    list_until(&mut bob, kept_id);
    assert_eq!(download(&mut bob, kept_id).expect("download after n1 came back"), kept);
    let (code, text) = download(&mut bob, lost_id).expect_err("the lost file");
    assert_eq!(code, ErrorCode::FileRefused, "{text}");
}

#[test]
fn the_file_index_is_written_again_when_nats_comes_back_empty() {
    let Some(mut nats) = NatsServer::start("cluster_files::the_file_index_is_written_again_when_nats_comes_back_empty")
    else {
        return;
    };
    let (n1, _n2) = (node(&nats, "n1"), node(&nats, "n2"));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let data = sample(5);
    let id = upload(&mut alice, "survivor.bin", &data).expect("upload on n1");

    // NATS loses its store: n1 makes the files bucket again and writes its entries again, so a
    // node that joins afterwards (and knows only what the bucket holds) lists and fetches it.
    nats.restart(true);
    n1.process.wait_for(&format!("bucket {} was made again", chatproto::cluster::nats::FILES_BUCKET));
    let n3 = node(&nats, "n3");
    let mut carol = Client::login_new(n3.addr, WireFormat::Json, "carol");
    list_until(&mut carol, id);
    assert_eq!(download(&mut carol, id).expect("download on n3 after NATS came back empty"), data);
}

#[test]
fn a_holder_that_does_not_answer_ends_the_download_after_the_timeout() {
    let Some(nats) = NatsServer::start("cluster_files::a_holder_that_does_not_answer_ends_the_download") else {
        return;
    };
    let (n1, n2) = (node(&nats, "n1"), node_with(&nats, "n2", &["--cluster-file-timeout", "1"]));
    let mut alice = Client::login_new(n1.addr, WireFormat::Binary, "alice");
    let mut bob = Client::login_new(n2.addr, WireFormat::Json, "bob");
    until_room_route(&mut alice, &mut bob, "ping");
    let data = sample(6);
    let id = upload(&mut alice, "slow.bin", &data).expect("upload on n1");
    list_until(&mut bob, id);

    // n1 stops (it is still in the directory, so n2 asks it): the chunk request times out.
    n1.process.signal(libc::SIGSTOP);
    let (code, text) = download(&mut bob, id).expect_err("n1 is stopped");
    n1.process.signal(libc::SIGCONT);
    assert_eq!(code, ErrorCode::FileRefused, "{text}");
    assert!(text.contains(&format!("file {id}: node n1, which stores it, did not answer within 1 s")), "{text}");
    // Resumed, it answers again (its late answer to the abandoned request is ignored).
    let end = Instant::now() + DEADLINE;
    let got = loop {
        match download(&mut bob, id) {
            Ok(got) => break got,
            Err(e) => assert!(Instant::now() < end, "n1 never served again: {e:?}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(got, data);
}
