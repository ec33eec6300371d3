//! The seed features over loopback: TIME, history (memory and SQLite, across a restart and a
//! SIGKILL of the real binary), passkey auth, accounts (argon2id + SQLite), the admin command
//! set, file sharing (upload, room notification, list, download; caps, quota, integrity, rooms,
//! shards, backpressure).

use crate::support::{
    self, server, server_with, AuthMode, Client, ClientMsg, ErrorCode, HistoryMode, Msg, ServerConfig, ServerMsg,
    ServerProcess, SystemKind, TempDir, WireFormat,
};

const FORMATS: [WireFormat; 2] = [WireFormat::Binary, WireFormat::Json];

/// Sends LOGIN with `credential` and returns the reply (LOGIN_ACK or LOGIN_REJECT).
fn login_reply(c: &mut Client, name: &str, credential: Option<&str>) -> Msg {
    c.send(&ClientMsg::Login { username: name.into(), credential: credential.map(Into::into) });
    c.name = name.to_string();
    c.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. }))
}

fn login_ok(addr: std::net::SocketAddr, f: WireFormat, name: &str, credential: Option<&str>) -> Client {
    let mut c = Client::connect(addr, f);
    let reply = login_reply(&mut c, name, credential);
    assert!(matches!(reply, ServerMsg::LoginAck { .. }), "{name}: {reply:?}");
    c
}

fn history_texts(frames: &[Msg]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|m| match m {
            ServerMsg::RoomMsg { text, history: true, .. } => Some(text.to_string()),
            _ => None,
        })
        .collect()
}

/// Says `text` and waits for its ROOM_MSG_ACK; returns the id.
fn say_acked(c: &mut Client, text: &str) -> u64 {
    c.say(text);
    match c.recv_until(|m| matches!(m, ServerMsg::RoomMsgAck { .. } | ServerMsg::ErrorMsg { .. })) {
        ServerMsg::RoomMsgAck { id, .. } => id,
        other => panic!("no ack for {text:?}: {other:?}"),
    }
}

#[test]
fn time_answers_with_the_server_clock() {
    let s = server();
    for f in FORMATS {
        let mut c = Client::login_new(s.addr, f, &format!("t{}", f.name()));
        c.send(&ClientMsg::Time);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        match c.recv_until(|m| matches!(m, ServerMsg::Time { .. })) {
            ServerMsg::Time { ts_ms } => assert!(ts_ms.abs_diff(now) < 60_000, "{ts_ms} vs {now}"),
            _ => unreachable!(),
        }
    }
    let mut anon = Client::connect(s.addr, WireFormat::Json);
    anon.send(&ClientMsg::Time);
    assert_eq!(anon.recv_error(), ErrorCode::NotLoggedIn);
}

#[test]
fn memory_history_is_replayed_flagged_on_login_and_join() {
    let mut cfg = ServerConfig::loopback();
    cfg.features.history_len = 50;
    let s = server_with(cfg);
    let mut alice = Client::login_new(s.addr, WireFormat::Binary, "alice");
    for t in ["one", "two", "three"] {
        say_acked(&mut alice, t);
    }
    alice.send(&ClientMsg::JoinRoom { room: "rust".into() });
    say_acked(&mut alice, "in rust");
    for f in FORMATS {
        let mut bob = Client::login_new(s.addr, f, &format!("bob{}", f.name()));
        assert_eq!(history_texts(&bob.sync()), ["one", "two", "three"]);
        bob.send(&ClientMsg::JoinRoom { room: "rust".into() });
        let frames = bob.sync();
        assert!(matches!(frames[0], ServerMsg::JoinRoom { .. }), "JOIN_ROOM comes before the history");
        assert_eq!(history_texts(&frames), ["in rust"]);
    }
}

fn features_config(tag: &str, dir: &TempDir) -> ServerConfig {
    let mut cfg = ServerConfig::loopback();
    cfg.features.data_dir = dir.path().join(tag);
    cfg.features.argon2_memory_kib = 1024; // fast hashing in debug builds
    cfg.features.history_len = 50;
    cfg
}

#[test]
fn history_length_is_configurable() {
    let dir = TempDir::new("histlen");
    let mut cfg = features_config("h", &dir);
    cfg.features.history_len = 2;
    let s = server_with(cfg);
    let mut alice = Client::login_new(s.addr, WireFormat::Json, "alice");
    for t in ["a", "b", "c", "d"] {
        say_acked(&mut alice, t);
    }
    let mut bob = Client::login_new(s.addr, WireFormat::Binary, "bob");
    assert_eq!(history_texts(&bob.sync()), ["c", "d"]);
}

#[test]
fn sqlite_history_acks_only_committed_messages_and_survives_a_restart() {
    let dir = TempDir::new("sqlite");
    let mut cfg = features_config("data", &dir);
    cfg.features.history = HistoryMode::Sqlite;
    cfg.shards = 2;
    let db = cfg.features.data_dir.join("history.db");
    let s = server_with(cfg.clone());
    let mut ids = Vec::new();
    let mut clients: Vec<Client> =
        (0..4).map(|i| Client::login_new(s.addr, FORMATS[i % 2], &format!("user{i}"))).collect();
    for round in 0..5 {
        for (i, c) in clients.iter_mut().enumerate() {
            ids.push(say_acked(c, &format!("m{round}-{i}")));
        }
    }
    // The promise: ROOM_MSG_ACK means committed. Another connection sees every acked message
    // while the server still runs, so killing it now would lose none of them.
    let probe = rusqlite::Connection::open(&db).expect("open the history db");
    let stored: i64 = probe.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0)).unwrap();
    assert_eq!(stored as usize, ids.len());
    drop(probe);
    drop(clients);
    s.stop().expect("stop");

    let s = server_with(cfg);
    let mut late = Client::login_new(s.addr, WireFormat::Binary, "late");
    let history = history_texts(&late.sync());
    assert_eq!(history.len(), 20);
    assert_eq!(history.first().map(String::as_str), Some("m0-0"));
    assert_eq!(history.last().map(String::as_str), Some("m4-3"));
    let new_id = say_acked(&mut late, "after the restart");
    assert!(ids.iter().all(|&old| old < new_id), "ids keep growing across restarts");
}

fn passkey_config(dir: &TempDir) -> ServerConfig {
    let mut cfg = features_config("pk", dir);
    cfg.features.auth = AuthMode::Passkey;
    cfg.features.passkey = Some("letmein-42".into());
    cfg.shards = 2;
    cfg
}

#[test]
fn a_wrong_passkey_is_rejected_and_sees_nothing() {
    let dir = TempDir::new("passkey");
    let s = server_with(passkey_config(&dir));
    let mut alice = login_ok(s.addr, WireFormat::Binary, "alice", Some("letmein-42"));
    say_acked(&mut alice, "before eve");
    for f in FORMATS {
        let mut eve = Client::connect(s.addr, f);
        for key in [Some("guess"), None, Some("")] {
            match login_reply(&mut eve, &format!("eve-{}", f.name()), key) {
                ServerMsg::LoginReject { code, .. } => assert_eq!(code, ErrorCode::AuthFailed),
                other => panic!("eve got {other:?}"),
            }
        }
        say_acked(&mut alice, "while eve waits");
        eve.say("let me in");
        let seen = eve.sync();
        assert!(
            seen.iter().all(|m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::NotLoggedIn, .. })),
            "eve saw {seen:?}"
        );
    }
    let mut bob = login_ok(s.addr, WireFormat::Json, "bob", Some("letmein-42"));
    assert_eq!(history_texts(&bob.sync()), ["before eve", "while eve waits", "while eve waits"]);
}

fn admin_config(dir: &TempDir) -> ServerConfig {
    let mut cfg = features_config("adm", dir);
    cfg.features.admin_user = Some("root".into());
    cfg.features.admin_password = Some("hunter22".into());
    cfg.shards = 2;
    cfg
}

/// Runs an admin command and returns the answer text.
fn admin(c: &mut Client, command: &str) -> String {
    c.send(&ClientMsg::Admin { command: command.into() });
    match c.recv_until(|m| matches!(m, ServerMsg::Admin { .. } | ServerMsg::ErrorMsg { .. })) {
        ServerMsg::Admin { text } => text.to_string(),
        other => panic!("admin {command:?}: {other:?}"),
    }
}

#[test]
fn admin_commands_from_a_client() {
    let dir = TempDir::new("admin");
    let s = server_with(admin_config(&dir));
    let mut impostor = Client::connect(s.addr, WireFormat::Json);
    assert!(matches!(login_reply(&mut impostor, "ROOT", Some("guess")), ServerMsg::LoginReject { .. }));
    let mut users: Vec<Client> = (0..6).map(|i| Client::login_new(s.addr, FORMATS[i % 2], &format!("u{i}"))).collect();
    users[1].send(&ClientMsg::JoinRoom { room: "rust".into() });
    users[1].sync();
    users[0].send(&ClientMsg::Admin { command: "users".into() });
    assert_eq!(users[0].recv_error(), ErrorCode::Forbidden);

    let mut root = login_ok(s.addr, WireFormat::Binary, "root", Some("hunter22"));
    let list = admin(&mut root, "users");
    assert!(list.starts_with("7 users online"), "{list}");
    assert!(list.contains("rust: u1"), "{list}");
    assert!(admin(&mut root, "rooms").contains("rust: 1 users"));
    assert!(admin(&mut root, "time").starts_with("server time: 20"));
    assert!(admin(&mut root, "stats").contains("connections"));
    assert!(admin(&mut root, "reboot").contains("unknown admin command"));

    // The alert reaches everyone, on both shards, in every room.
    assert_eq!(admin(&mut root, "alert fire drill at 3"), "alert sent to 7 users");
    for u in &mut users {
        match u.recv_until(|m| matches!(m, ServerMsg::SystemMsg { kind: SystemKind::Alert, .. })) {
            ServerMsg::SystemMsg { text, user, .. } => assert_eq!((&*text, &*user), ("fire drill at 3", "root")),
            _ => unreachable!(),
        }
    }
    assert_eq!(admin(&mut root, "kick u3"), "kicked u3");
    let last = users[3].expect_closed();
    assert!(last.iter().any(|m| matches!(m, ServerMsg::ErrorMsg { code: ErrorCode::Forbidden, .. })), "{last:?}");
    assert!(admin(&mut root, "kick nobody").contains("no user"));
}

fn accounts_config(dir: &TempDir) -> ServerConfig {
    let mut cfg = features_config("acc", dir);
    cfg.features.auth = AuthMode::Accounts;
    cfg.shards = 2;
    cfg
}

fn register_reply(c: &mut Client, name: &str, password: &str) -> Msg {
    c.send(&ClientMsg::Register { username: name.into(), password: password.into() });
    c.recv_until(|m| matches!(m, ServerMsg::LoginAck { .. } | ServerMsg::LoginReject { .. }))
}

#[test]
fn accounts_register_login_and_refuse_duplicates() {
    let dir = TempDir::new("accounts");
    let s = server_with(accounts_config(&dir));
    let mut observer = Client::connect(s.addr, WireFormat::Json);
    assert!(matches!(register_reply(&mut observer, "obs", "observer password"), ServerMsg::LoginAck { .. }));
    let mut a = Client::connect(s.addr, WireFormat::Binary);
    assert!(matches!(register_reply(&mut a, "alice", "short"), ServerMsg::LoginReject { .. }));
    assert!(matches!(register_reply(&mut a, "alice", "correct horse"), ServerMsg::LoginAck { .. }));
    drop(a);
    // Wait until the server has seen alice leave: until then her name is still online.
    observer.recv_until(
        |m| matches!(m, ServerMsg::SystemMsg { kind: SystemKind::Disconnect, user, .. } if user == "alice"),
    );
    let mut dup = Client::connect(s.addr, WireFormat::Json);
    match register_reply(&mut dup, "ALICE", "another password") {
        ServerMsg::LoginReject { code, .. } => assert!(matches!(code, ErrorCode::UsernameTaken)),
        other => panic!("duplicate registration: {other:?}"),
    }
    let mut open = Client::connect(s.addr, WireFormat::Json);
    match login_reply(&mut open, "alice", None) {
        ServerMsg::LoginReject { code, .. } => assert_eq!(code, ErrorCode::AuthFailed),
        other => panic!("no password: {other:?}"),
    }
    assert!(matches!(login_reply(&mut open, "alice", Some("wrong password")), ServerMsg::LoginReject { .. }));
    let mut ok = login_ok(s.addr, WireFormat::Binary, "alice", Some("correct horse"));
    ok.say("hi");
    ok.sync();
}

#[test]
fn login_attempts_are_throttled_per_user() {
    let dir = TempDir::new("throttle");
    let s = server_with(accounts_config(&dir));
    let mut observer = Client::connect(s.addr, WireFormat::Json);
    assert!(matches!(register_reply(&mut observer, "obs", "observer password"), ServerMsg::LoginAck { .. }));
    let mut c = Client::connect(s.addr, WireFormat::Json);
    assert!(matches!(register_reply(&mut c, "bob", "bob's password"), ServerMsg::LoginAck { .. }));
    drop(c);
    // Wait until the server has seen bob leave: until then the name is still taken.
    observer
        .recv_until(|m| matches!(m, ServerMsg::SystemMsg { kind: SystemKind::Disconnect, user, .. } if user == "bob"));
    let mut attacker = Client::connect(s.addr, WireFormat::Binary);
    let mut codes = Vec::new();
    for i in 0..7 {
        match login_reply(&mut attacker, "bob", Some(&format!("guess {i}"))) {
            ServerMsg::LoginReject { code, .. } => codes.push(code),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(codes.iter().filter(|c| **c == ErrorCode::AuthFailed).count(), 5, "{codes:?}");
    assert_eq!(codes.last(), Some(&ErrorCode::RateLimited));
    // Even the right password waits out the window now.
    assert!(matches!(login_reply(&mut attacker, "bob", Some("bob's password")), ServerMsg::LoginReject { .. }));
}

// ---------------------------------------------------------------------------------------------
// File sharing
// ---------------------------------------------------------------------------------------------

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Chunk size the tests upload with.
const TEST_CHUNK: usize = 32 * 1024;

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

fn upload(c: &mut Client, name: &str, data: &[u8]) -> Result<u64, Refusal> {
    match upload_claiming(c, name, data, sha256(data))? {
        ServerMsg::FileAvailable { id, .. } => Ok(id),
        _ => unreachable!(),
    }
}

/// Downloads file `id`: the bytes, checked in order and against FILE_DONE's digest.
fn download(c: &mut Client, id: u64) -> Result<Vec<u8>, Refusal> {
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

fn list_files(c: &mut Client) -> Vec<(u64, String, u64, String)> {
    c.send(&ClientMsg::ListFiles);
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
    cfg.features.data_dir = data_dir.clone();
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
    cfg.features.max_file_size = 1000;
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
    cfg.features.files_quota = 100_000;
    let s = server_with(cfg);
    let mut c = Client::login_new(s.addr, WireFormat::Binary, "hoarder");
    upload(&mut c, "one", &vec![1; 60_000]).expect("under the quota");
    let (code, text) = offer(&mut c, "two", 60_000, [0; 32]).expect_err("over the quota");
    assert_eq!(code, ErrorCode::FileRefused);
    assert!(text.contains("quota"), "{text}");
    // An upload in progress counts too, and an abandoned one gives its space back.
    let _pending = offer(&mut c, "three", 40_000, [0; 32]).expect("fits");
    let mut other = Client::login_new(s.addr, WireFormat::Json, "other");
    assert!(offer(&mut other, "four", 1, [0; 32]).is_err(), "the reservation counts");
    drop(c);
    other.recv_until(|m| support::is_notice(m, SystemKind::Disconnect, "hoarder"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match offer(&mut other, "four", 40_000, [0; 32]) {
            Ok(_) => break,
            Err(e) => assert!(std::time::Instant::now() < deadline, "space never freed: {e:?}"),
        }
    }
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
    carol.send(&ClientMsg::JoinRoom { room: "rust".into() });
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
    carol.send(&ClientMsg::JoinRoom { room: "general".into() });
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

/// Starts the real `chat-server` binary in `dir` with SQLite history on port 0 and waits
/// (bounded) until it listens. Dropping it sends SIGKILL: no shutdown path runs.
fn start_binary(dir: &std::path::Path) -> (ServerProcess, std::net::SocketAddr) {
    let net = ["--bind", "127.0.0.1", "--port", "0", "--no-tls", "--shards", "1"];
    let server = ServerProcess::start(dir, &[&net[..], &["--history", "sqlite", "--data-dir", "data"]].concat());
    let addr = server.wait_listening();
    (server, addr)
}

/// The documented promise of SQLite mode: ROOM_MSG_ACK means committed, so every acknowledged
/// message survives the process being killed without any chance to flush.
#[test]
fn acked_messages_survive_a_sigkill_of_the_server() {
    let dir = TempDir::new("sigkill");
    let texts: Vec<String> = (0..30).map(|i| format!("durable {i}")).collect();
    {
        let (_server, addr) = start_binary(dir.path());
        let mut alice = login_ok(addr, WireFormat::Binary, "alice", None);
        for t in &texts {
            say_acked(&mut alice, t);
        }
        // Dropping `server` sends SIGKILL: no shutdown path runs.
    }
    let (_server, addr) = start_binary(dir.path());
    let mut bob = login_ok(addr, WireFormat::Json, "bob", None);
    assert_eq!(history_texts(&bob.sync()), texts, "every acknowledged message is in the replayed history");
}
