//! Issue 16, item 2: replies bigger than the outbound cap. List replies come in pages (a `next`
//! cursor, sent back as `after`), and the slow-consumer check judges what a reader leaves
//! unread, not the size of what the server chose to send: the asker of a huge list or replay is
//! served, a reader that reads nothing is still cut.

use crate::support::{
    have_fds, raw_connect_small_rcvbuf, server_with, unlimited_config, wait_for_stats, Client, ClientMsg, ErrorCode,
    Msg, ServerConfig, ServerMsg, TempDir, WireFormat, DEADLINE,
};
use std::time::Instant;

const FORMATS: [WireFormat; 2] = [WireFormat::Binary, WireFormat::Json];

/// Asks for a list page by page (`ask` builds the request for a cursor) until a reply has no
/// `next`; returns the pages' entries (`entries` takes them out of a reply) and the page count.
/// Bounded: at most `max_pages` pages.
fn all_pages<T>(
    c: &mut Client,
    max_pages: usize,
    ask: impl Fn(Option<String>) -> ClientMsg<'static>,
    entries: impl Fn(Msg) -> (Vec<T>, Option<String>),
) -> (Vec<T>, usize) {
    let mut all = Vec::new();
    let mut after = None;
    for page in 1..=max_pages {
        c.send(&ask(after.take()));
        let reply = c.recv_until(|m| {
            matches!(
                m,
                ServerMsg::ListFiles { .. }
                    | ServerMsg::ListRooms { .. }
                    | ServerMsg::ListUsers { .. }
                    | ServerMsg::ErrorMsg { .. }
            )
        });
        if let ServerMsg::ErrorMsg { code, text } = reply {
            panic!("page {page}: {code:?}: {text}");
        }
        let (mut got, next) = entries(reply);
        all.append(&mut got);
        match next {
            Some(cursor) => after = Some(cursor),
            None => return (all, page),
        }
    }
    panic!("more than {max_pages} pages");
}

/// Writes `count` stored files of one byte with long (250-byte) names into `dir`, the way the
/// file store keeps them (data file plus JSON sidecar), so the server loads them at start.
fn file_fixture(dir: &std::path::Path, count: u64) {
    std::fs::create_dir_all(dir).expect("files dir");
    let sha = "a".repeat(64);
    for i in 0..count {
        let id = 0x1000_0000 + i;
        std::fs::write(dir.join(format!("{id:016x}")), b"x").expect("data file");
        let name = format!("{}-{i:05}.txt", "中".repeat(80));
        let meta = serde_json::json!({
            "id": id, "name": name, "size": 1, "from": "uploader", "room": "general", "sha256": sha, "ts_ms": 1_000 + i,
        });
        std::fs::write(dir.join(format!("{id:016x}.json")), meta.to_string()).expect("sidecar");
    }
}

/// 3,600 files with long names made LIST_FILES over 1 MB in JSON and every `/files` cut the asker off
/// as a slow consumer. Now the list comes in pages and the asker stays connected.
#[test]
fn thousands_of_long_file_names_are_listed_in_pages_and_the_asker_stays() {
    const FILES: u64 = 3_600;
    let dir = TempDir::new("paged-files");
    let mut cfg = ServerConfig::loopback();
    cfg.services.data_dir = dir.path().join("data");
    file_fixture(&cfg.services.data_dir.join("files"), FILES);
    let server = server_with(cfg);
    for f in FORMATS {
        let mut c = Client::login_new(server.addr, f, &format!("asker-{}", f.name()));
        c.sync();
        let ask = |after: Option<String>| ClientMsg::ListFiles { after: after.map(Into::into) };
        let entries = |m: Msg| match m {
            ServerMsg::ListFiles { files, next, .. } => {
                assert!(files.len() <= 500, "a page holds at most --list-page entries");
                (files.into_iter().map(|e| (e.id, e.name.len())).collect(), next.map(|n| n.to_string()))
            }
            other => panic!("{other:?}"),
        };
        let (files, pages) = all_pages(&mut c, 200, ask, entries);
        assert_eq!(files.len() as u64, FILES, "{f:?}: every file, once");
        let ids: std::collections::BTreeSet<u64> = files.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len() as u64, FILES);
        assert!(files.iter().all(|(_, len)| *len > 240), "the long names arrive whole");
        assert!(pages > 5, "{f:?}: {pages} pages");
        // Still connected and served.
        c.send(&ClientMsg::Time);
        assert!(matches!(c.recv_until(|m| matches!(m, ServerMsg::Time { .. })), ServerMsg::Time { .. }));
    }
    // A cursor that names no file is refused clearly, and the connection carries on.
    let mut c = Client::login_new(server.addr, WireFormat::Json, "cursor");
    c.send(&ClientMsg::ListFiles { after: Some("not a file".into()) });
    assert_eq!(c.recv_error(), ErrorCode::Malformed);
    c.sync();
    assert_eq!(server.handle.stats().slow_consumer_disconnects, 0);
}

/// 8,200 rooms did the same to a JSON LIST_ROOMS. The same shape, smaller: 150 rooms with long
/// names under a 4 KiB outbound cap and 2 KiB pages; the whole list arrives in both formats,
/// and a v1.0 request (no cursor) gets the first page.
#[test]
fn many_rooms_are_listed_in_pages_under_a_small_cap() {
    const ROOMS: usize = 150;
    if !have_fds(4 * ROOMS as u64 + 64) {
        return;
    }
    let mut cfg = unlimited_config();
    cfg.max_outbound_bytes = 4 * 1024;
    cfg.services.list_page.bytes = 2 * 1024;
    let server = server_with(cfg);
    let mut members = Vec::new();
    for i in 0..ROOMS {
        let mut c = Client::login_new(server.addr, FORMATS[i % 2], &format!("m{i}"));
        c.join(&format!("room-long-name-for-paging-{i:04}"));
        members.push(c);
    }
    for f in FORMATS {
        let mut c = Client::login_new(server.addr, f, &format!("lister-{}", f.name()));
        c.sync();
        let ask = |after: Option<String>| ClientMsg::ListRooms { after: after.map(Into::into) };
        let entries = |m: Msg| match m {
            ServerMsg::ListRooms { rooms, next } => {
                (rooms.into_iter().map(|(n, k)| (n.to_string(), k)).collect(), next.map(|n| n.to_string()))
            }
            other => panic!("{other:?}"),
        };
        let (rooms, pages) = all_pages(&mut c, 100, ask, entries);
        assert_eq!(rooms.len(), ROOMS + 1, "{f:?}: every room and general");
        assert!(rooms.windows(2).all(|w| w[0].0 < w[1].0), "sorted, none twice");
        assert!(rooms.iter().filter(|(n, _)| n.starts_with("room-")).all(|(_, k)| *k == 1));
        assert!(pages >= 3, "{f:?}: {pages} pages");
        // LIST_USERS pages the same way: general holds the two listers at most.
        c.send(&ClientMsg::ListUsers { after: None });
        assert!(matches!(
            c.recv_until(|m| matches!(m, ServerMsg::ListUsers { .. })),
            ServerMsg::ListUsers { next: None, .. }
        ));
    }
    assert_eq!(server.handle.stats().slow_consumer_disconnects, 0);
}

/// A 50-message history replay of escaped control text is about 2.4 MB of JSON: far over a
/// 64 KiB cap, but a reader that reads gets all of it.
#[test]
fn a_replay_far_over_the_cap_reaches_a_reader_that_reads() {
    let mut cfg = unlimited_config();
    cfg.max_outbound_bytes = 64 * 1024;
    cfg.services.history_len = 50;
    let server = server_with(cfg);
    let mut writer = Client::login_new(server.addr, WireFormat::Binary, "writer");
    let text = "\u{1}".repeat(8 * 1024);
    for _ in 0..50 {
        writer.say(&text);
    }
    let acks = writer.sync().iter().filter(|m| matches!(m, ServerMsg::RoomMsgAck { .. })).count();
    assert_eq!(acks, 50);
    let mut reader = Client::login_new(server.addr, WireFormat::Json, "reader");
    let replayed = reader
        .sync()
        .iter()
        .filter(|m| matches!(m, ServerMsg::RoomMsg { history: true, text: t, .. } if *t == text))
        .count();
    assert_eq!(replayed, 50, "the whole replay");
    assert_eq!(server.handle.stats().slow_consumer_disconnects, 0);
}

/// A client that never reads is still cut off: once its backlog has been over the cap for the
/// grace with nothing taken (or at the hard cap at once), while a reader in the same room gets
/// everything.
#[test]
fn a_client_that_never_reads_is_still_cut_off() {
    let mut cfg = unlimited_config();
    cfg.max_outbound_bytes = 64 * 1024;
    cfg.outbound_burst = 1024 * 1024;
    // The default grace (2 s): the observer, a reader on a busy machine, must never look stuck.
    let server = server_with(cfg);
    let mut sloth = Client::from_tcp(raw_connect_small_rcvbuf(server.addr, 4096), WireFormat::Binary);
    sloth.login("sloth");
    sloth.sync();
    let mut observer = Client::login_new(server.addr, WireFormat::Json, "observer");
    observer.sync();
    let mut flooder = Client::login_new(server.addr, WireFormat::Binary, "flooder");
    let obs = std::thread::spawn(move || {
        let deadline = Instant::now() + DEADLINE * 4;
        let mut n = 0;
        loop {
            match observer.recv_by(deadline) {
                Ok(ServerMsg::RoomMsg { text, .. }) if text == "done" => return Ok(n),
                Ok(ServerMsg::RoomMsg { .. }) => n += 1,
                Ok(ServerMsg::ErrorMsg { code, text }) => return Err(format!("observer got {code:?}: {text}")),
                Ok(_) => {}
                Err(e) => return Err(format!("observer after {n}: {e}")),
            }
        }
    });
    let frame = flooder.encode(&ClientMsg::RoomMsg { text: "f".repeat(1024).into() });
    let batch: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * 16).collect();
    let (mut sent, deadline) = (0, Instant::now() + DEADLINE * 3);
    while server.handle.stats().slow_consumer_disconnects == 0 && sent < 20_000 && Instant::now() < deadline {
        flooder.send_raw(&batch);
        sent += 16;
        flooder.sync();
    }
    wait_for_stats(&server, "the sloth cut off", |s| s.slow_consumer_disconnects == 1);
    flooder.say("done");
    assert_eq!(obs.join().expect("observer"), Ok(sent), "the reader got the whole flood");
    let last = sloth.expect_closed();
    assert!(
        last.iter().any(|m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::SlowConsumer, .. })),
        "the sloth is told why: {:?}",
        last.last()
    );
}
