//! File sharing: upload, room notification, list, download; the size cap, the quota,
//! integrity, rooms, shards, and downloads paced by the reader.

use super::{features_config, FORMATS};
use crate::support::{
    self, server_with, Client, ClientMsg, ErrorCode, Msg, ServerMsg, SystemKind, TempDir, WireFormat,
};

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Chunk size the tests upload with.
pub(crate) const TEST_CHUNK: usize = 32 * 1024;

/// A refused transfer: the ERROR_MSG's code and text.
type Refusal = (ErrorCode, String);

fn refusal(m: Msg) -> Refusal {
    match m {
        ServerMsg::ErrorMsg { code, text } => (code, text.to_string()),
        other => panic!("expected ERROR_MSG, got {other:?}"),
    }
}

/// Offers `data` as `name` with digest `sha`; returns the upload id or the refusal.
fn offer(c: &mut Client, name: &str, size: u64, sha: [u8; 32]) -> Result<u64, Refusal> {
    c.send(&ClientMsg::FileOffer { name: name.into(), size, sha256: sha });
    match c.recv_until(|m| matches!(m, ServerMsg::FileAccept { .. } | ServerMsg::ErrorMsg { .. })) {
        ServerMsg::FileAccept { id } => Ok(id),
        other => Err(refusal(other)),
    }
}

/// Uploads `data` as `name`, claiming digest `sha`: waits for the FILE_AVAILABLE confirmation
/// (returned) or the refusal.
fn upload_claiming(c: &mut Client, name: &str, data: &[u8], sha: [u8; 32]) -> Result<Msg, Refusal> {
    let id = offer(c, name, data.len() as u64, sha)?;
    for (i, chunk) in data.chunks(TEST_CHUNK).enumerate() {
        let offset = (i * TEST_CHUNK) as u64;
        c.send(&ClientMsg::FileChunk { id, offset, data: chunk.into() });
    }
    c.send(&ClientMsg::FileDone { id, sha256: sha });
    let m = c.recv_until(|m| match m {
        ServerMsg::FileAvailable { id: got, .. } => *got == id,
        ServerMsg::ErrorMsg { .. } => true,
        _ => false,
    });
    match m {
        ServerMsg::FileAvailable { .. } => Ok(m),
        other => Err(refusal(other)),
    }
}

pub(crate) fn upload(c: &mut Client, name: &str, data: &[u8]) -> Result<u64, Refusal> {
    match upload_claiming(c, name, data, sha256(data))? {
        ServerMsg::FileAvailable { id, .. } => Ok(id),
        _ => unreachable!(),
    }
}

/// Downloads file `id`: the bytes, checked in order and against FILE_DONE's digest.
pub(crate) fn download(c: &mut Client, id: u64) -> Result<Vec<u8>, Refusal> {
    c.send(&ClientMsg::FileGet { id });
    let mut data = Vec::new();
    loop {
        match c.recv_until(|m| {
            matches!(m, ServerMsg::FileChunk { .. } | ServerMsg::FileDone { .. } | ServerMsg::ErrorMsg { .. })
        }) {
            ServerMsg::FileChunk { id: got, offset, data: d } => {
                assert_eq!((got, offset), (id, data.len() as u64), "chunks come in order");
                data.extend_from_slice(&d);
            }
            ServerMsg::FileDone { id: got, sha256: sha } => {
                assert_eq!(got, id);
                assert_eq!(sha, sha256(&data), "FILE_DONE carries the digest of what was sent");
                return Ok(data);
            }
            other => return Err(refusal(other)),
        }
    }
}

pub(crate) fn list_files(c: &mut Client) -> Vec<(u64, String, u64, String)> {
    c.send(&ClientMsg::ListFiles { after: None });
    match c.recv_until(|m| matches!(m, ServerMsg::ListFiles { .. })) {
        ServerMsg::ListFiles { files, .. } => {
            files.into_iter().map(|f| (f.id, f.name.to_string(), f.size, f.from.to_string())).collect()
        }
        _ => unreachable!(),
    }
}

/// Every file under `root`, recursively.
fn all_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Stored data files (not sidecars, not uploads in progress).
fn stored_files(data_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    all_files(&data_dir.join("files")).into_iter().filter(|p| p.extension().is_none()).collect()
}

#[test]
fn files_upload_notify_list_and_download_in_both_formats() {
    let dir = TempDir::new("files");
    let s = server_with(features_config("d", &dir));
    for f in FORMATS {
        let other = if f == WireFormat::Binary { WireFormat::Json } else { WireFormat::Binary };
        let mut alice = Client::login_new(s.addr, f, &format!("alice{}", f.name()));
        let mut bob = Client::login_new(s.addr, other, &format!("bob{}", f.name()));
        alice.sync();
        // Over three chunks, the last one short, with every byte value.
        let data: Vec<u8> = (0..(2 * TEST_CHUNK + 1000)).map(|i| (i * 7 % 256) as u8).collect();
        let id = upload(&mut alice, "report.pdf", &data).expect("upload");
        match bob.recv_until(|m| matches!(m, ServerMsg::FileAvailable { .. })) {
            ServerMsg::FileAvailable { id: got, name, size, from, room } => {
                assert_eq!(
                    (got, &*name, size, &*from, &*room),
                    (id, "report.pdf", data.len() as u64, &*alice.name, "general")
                );
            }
            _ => unreachable!(),
        }
        let listed = list_files(&mut bob);
        assert!(listed.contains(&(id, "report.pdf".into(), data.len() as u64, alice.name.clone())), "{listed:?}");
        assert_eq!(download(&mut bob, id).expect("download"), data);
        assert_eq!(download(&mut alice, id).expect("download by the uploader"), data);
        // An empty file works too.
        let empty = upload(&mut bob, "empty", &[]).expect("empty upload");
        assert_eq!(download(&mut alice, empty).expect("empty download"), Vec::<u8>::new());
    }
    assert_eq!(stored_files(&dir.path().join("d")).len(), 4);
}

#[test]
fn files_with_path_traversal_names_are_stored_under_generated_ids() {
    let dir = TempDir::new("traversal");
    let data_dir = dir.path().join("data").join("inner");
    let mut cfg = features_config("unused", &dir);
    cfg.services.data_dir = data_dir.clone();
    let s = server_with(cfg);
    let mut mallory = Client::login_new(s.addr, WireFormat::Json, "mallory");
    let names = ["../../etc/passwd", "../../../passwd", "/tmp/abs", "..\\..\\win.ini", "..", "a/../../b"];
    let mut ids = Vec::new();
    for name in names {
        ids.push(upload(&mut mallory, name, name.as_bytes()).expect("stored under an id"));
    }
    let listed: Vec<String> = list_files(&mut mallory).into_iter().map(|f| f.1).collect();
    assert_eq!(listed, ["passwd", "passwd", "abs", "win.ini", "file", "b"]);
    for name in &listed {
        assert!(!name.contains('/') && !name.contains('\\') && !name.starts_with('.'), "{name}");
    }
    // Nothing escaped data_dir/files, and everything there is named by id.
    for p in all_files(dir.path()) {
        assert!(p.starts_with(data_dir.join("files")), "{} escaped", p.display());
        let file = p.file_name().unwrap().to_str().unwrap();
        let stem = file.strip_suffix(".json").unwrap_or(file);
        assert!(stem.len() == 16 && stem.bytes().all(|b| b.is_ascii_hexdigit()), "{file}");
    }
    assert_eq!(stored_files(&data_dir).len(), names.len());
    for (id, name) in ids.into_iter().zip(names) {
        assert_eq!(download(&mut mallory, id).expect("download"), name.as_bytes());
    }
}

#[test]
fn files_over_the_size_cap_are_refused_with_a_clear_error() {
    let dir = TempDir::new("filecap");
    let mut cfg = features_config("d", &dir);
    cfg.services.max_file_size = 1000;
    let s = server_with(cfg);
    for f in FORMATS {
        let mut c = Client::login_new(s.addr, f, &format!("big{}", f.name()));
        let (code, text) = offer(&mut c, "big.iso", 1001, [0; 32]).expect_err("over the cap");
        assert_eq!(code, ErrorCode::FileRefused);
        assert!(text.contains("too large") && text.contains("1001") && text.contains("1000"), "{text}");
        // Exactly the cap is fine; the connection carries on.
        upload(&mut c, "ok.bin", &[1; 1000]).expect("at the cap");
        // Sending more than offered aborts the upload.
        let id = offer(&mut c, "liar", 10, [0; 32]).expect("offer");
        c.send(&ClientMsg::FileChunk { id, offset: 0, data: vec![0u8; 11].into() });
        let (code, text) = refusal(c.recv_until(|m| matches!(m, ServerMsg::ErrorMsg { .. })));
        assert_eq!(code, ErrorCode::FileRefused);
        assert!(text.contains("more data than"), "{text}");
        // The rest of an aborted upload, already on the wire, is dropped without more errors.
        c.send(&ClientMsg::FileChunk { id, offset: 11, data: vec![0u8; 5].into() });
        c.send(&ClientMsg::FileDone { id, sha256: [0; 32] });
        let frames = c.sync();
        assert!(!frames.iter().any(|m| matches!(m, ServerMsg::ErrorMsg { .. })), "{frames:?}");
    }
    assert_eq!(stored_files(&dir.path().join("d")).len(), 2);
}

#[test]
fn files_over_the_quota_are_refused() {
    let dir = TempDir::new("quota");
    let mut cfg = features_config("d", &dir);
    // Counted as the disk pays (issue 16, item 4): 60,000 bytes cost 61,440 + 4,096.
    cfg.services.files_quota = 110_000;
    let s = server_with(cfg);
    let mut c = Client::login_new(s.addr, WireFormat::Binary, "hoarder");
    upload(&mut c, "one", &vec![1; 60_000]).expect("under the quota");
    let (code, text) = offer(&mut c, "two", 60_000, [0; 32]).expect_err("over the quota");
    assert_eq!(code, ErrorCode::FileRefused);
    assert!(text.contains("quota"), "{text}");
    // An upload in progress counts too, and an abandoned one gives its space back.
    let _pending = offer(&mut c, "three", 36_000, [0; 32]).expect("fits");
    let mut other = Client::login_new(s.addr, WireFormat::Json, "other");
    assert!(offer(&mut other, "four", 1, [0; 32]).is_err(), "the reservation counts");
    drop(c);
    other.recv_until(|m| support::is_notice(m, SystemKind::Disconnect, "hoarder"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match offer(&mut other, "four", 36_000, [0; 32]) {
            Ok(_) => break,
            Err(e) => assert!(std::time::Instant::now() < deadline, "space never freed: {e:?}"),
        }
    }
}

/// Issue 16, item 4: 20,000 one-byte files used 20 KB of quota but 158 MB of disk and 40,000
/// directory entries. Each file now costs its size in 4 KiB blocks plus a block for its
/// metadata, and one user's file count is bounded; honest uploads carry on.
#[test]
fn many_tiny_files_hit_the_per_user_bound_and_the_block_quota() {
    let dir = TempDir::new("tiny");
    let mut cfg = features_config("d", &dir);
    cfg.services.max_files_per_user = 20;
    cfg.services.files_quota = 30 * 8192;
    let s = server_with(cfg);
    let mut spammer = Client::login_new(s.addr, WireFormat::Binary, "spammer");
    for i in 0..20 {
        upload(&mut spammer, &format!("tiny{i}"), b"x").expect("under the per-user bound");
    }
    let (code, text) = offer(&mut spammer, "tiny20", 1, sha256(b"x")).expect_err("over the per-user bound");
    assert_eq!(code, ErrorCode::FileRefused);
    assert!(text.contains("too many files") && text.contains("at most 20 per user"), "{text}");
    // Another user still uploads, until 30 one-byte files (30 bytes of content) fill the quota.
    let mut honest = Client::login_new(s.addr, WireFormat::Json, "honest");
    for i in 0..10 {
        upload(&mut honest, &format!("notes{i}.txt"), b"y").expect("honest upload");
    }
    let (code, text) = offer(&mut honest, "one more", 1, sha256(b"y")).expect_err("the quota is full");
    assert_eq!(code, ErrorCode::FileRefused);
    assert!(text.contains("8192 bytes on disk") && text.contains("quota"), "{text}");
    assert_eq!(stored_files(&dir.path().join("d")).len(), 30);
}

#[test]
fn corrupted_uploads_are_refused_and_nothing_is_stored() {
    let dir = TempDir::new("corrupt");
    let s = server_with(features_config("d", &dir));
    for f in FORMATS {
        let mut c = Client::login_new(s.addr, f, &format!("c{}", f.name()));
        let data = vec![42u8; 5000];
        let (code, text) = upload_claiming(&mut c, "x.bin", &data, sha256(b"something else")).expect_err("bad digest");
        assert_eq!(code, ErrorCode::FileRefused);
        assert!(text.contains("integrity"), "{text}");
        assert!(list_files(&mut c).is_empty());
    }
    let d = dir.path().join("d");
    assert!(all_files(&d.join("files")).is_empty(), "{:?}", all_files(&d.join("files")));
}

#[test]
fn files_are_visible_only_in_their_room() {
    let dir = TempDir::new("fileroom");
    let s = server_with(features_config("d", &dir));
    let mut alice = Client::login_new(s.addr, WireFormat::Binary, "alice");
    let mut carol = Client::login_new(s.addr, WireFormat::Json, "carol");
    carol.send(&ClientMsg::JoinRoom { room: "rust".into(), since: None });
    carol.recv_until(|m| matches!(m, ServerMsg::JoinRoom { .. }));
    let id = upload(&mut alice, "secret.txt", b"general only").expect("upload");
    let frames = carol.sync();
    assert!(!frames.iter().any(|m| matches!(m, ServerMsg::FileAvailable { .. })), "{frames:?}");
    assert!(list_files(&mut carol).is_empty());
    let (code, text) = download(&mut carol, id).expect_err("another room's file");
    assert_eq!(code, ErrorCode::FileRefused);
    assert!(text.contains(&format!("no file {id}")), "{text}");
    let (code, _) = download(&mut carol, 12345).expect_err("unknown id");
    assert_eq!(code, ErrorCode::FileRefused);
    // Joining the room makes it visible.
    carol.send(&ClientMsg::JoinRoom { room: "general".into(), since: None });
    assert_eq!(list_files(&mut carol).len(), 1);
    assert_eq!(download(&mut carol, id).expect("now visible"), b"general only");
}

#[test]
fn file_notifications_cross_shards() {
    let dir = TempDir::new("fileshards");
    let mut cfg = features_config("d", &dir);
    cfg.shards = 2;
    let s = server_with(cfg);
    // Log in until both shards hold members.
    let mut clients = Vec::new();
    loop {
        let per_shard: Vec<u64> = s.handle.shard_stats().iter().map(|st| st.logins).collect();
        if clients.len() >= 3 && per_shard.iter().all(|&n| n >= 1) {
            break;
        }
        assert!(clients.len() < 64, "the kernel never spread connections over the shards: {per_shard:?}");
        let i = clients.len();
        clients.push(Client::login_new(s.addr, FORMATS[i % 2], &format!("s{i:02}")));
        support::wait_for_stats(&s, "the login counted", |st| st.logins == clients.len() as u64);
    }
    let data = support::random_bytes(0xF11E_5A4D, 3 * TEST_CHUNK);
    let id = upload(&mut clients[0], "shared.bin", &data).expect("upload");
    for c in &mut clients[1..] {
        match c.recv_until(|m| matches!(m, ServerMsg::FileAvailable { .. })) {
            ServerMsg::FileAvailable { id: got, .. } => assert_eq!(got, id),
            _ => unreachable!(),
        }
    }
    let last = clients.len() - 1;
    assert_eq!(download(&mut clients[last], id).expect("download"), data);
}

#[test]
fn downloads_follow_the_reader_instead_of_filling_its_queue() {
    let dir = TempDir::new("filebp");
    let mut cfg = features_config("d", &dir);
    // A download queued all at once would be cut off as a slow consumer.
    cfg.max_outbound_bytes = 256 * 1024;
    let s = server_with(cfg);
    let mut up = Client::login_new(s.addr, WireFormat::Binary, "up");
    let data = support::random_bytes(0xF11E_0B16, 3 * 1024 * 1024);
    // Paced like the terminal client: the rate limit counts chunks.
    let id = offer(&mut up, "big.bin", data.len() as u64, sha256(&data)).expect("offer");
    for (i, chunk) in data.chunks(TEST_CHUNK).enumerate() {
        up.send(&ClientMsg::FileChunk { id, offset: (i * TEST_CHUNK) as u64, data: chunk.into() });
    }
    up.send(&ClientMsg::FileDone { id, sha256: sha256(&data) });
    up.recv_until(|m| matches!(m, ServerMsg::FileAvailable { .. }));
    for f in FORMATS {
        let mut down = Client::login_new(s.addr, f, &format!("down{}", f.name()));
        down.send(&ClientMsg::FileGet { id });
        // Not reading for a while: the server must wait, not queue 3 MiB (or cut us off).
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut got = Vec::new();
        loop {
            match down.recv_until(|m| matches!(m, ServerMsg::FileChunk { .. } | ServerMsg::FileDone { .. })) {
                ServerMsg::FileChunk { data, .. } => got.extend_from_slice(&data),
                ServerMsg::FileDone { sha256: sha, .. } => {
                    assert_eq!(sha, sha256(&data));
                    break;
                }
                _ => unreachable!(),
            }
        }
        assert!(got == data, "the download is complete and intact");
    }
}

#[test]
fn shared_files_survive_a_restart() {
    let dir = TempDir::new("filerestart");
    let cfg = features_config("d", &dir);
    let s = server_with(cfg.clone());
    let mut c = Client::login_new(s.addr, WireFormat::Binary, "keeper");
    let data = support::random_bytes(0xF11E_4EE9, 50_000);
    let id = upload(&mut c, "keep.bin", &data).expect("upload");
    drop(c);
    s.stop().expect("stop");
    let s = server_with(cfg);
    let mut c = Client::login_new(s.addr, WireFormat::Json, "reader");
    assert_eq!(list_files(&mut c), [(id, "keep.bin".to_string(), 50_000, "keeper".to_string())]);
    assert_eq!(download(&mut c, id).expect("download after restart"), data);
}
