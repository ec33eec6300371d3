//! Uploads that go quiet (issue 16, item 3): the idle deadline aborts them and frees their
//! reservation. Time is handed to the hub, so the deadline is tested without waiting.

use super::*;
use std::time::Duration;

/// Services with file sharing on, in a fresh directory under the temp dir.
fn file_services(tag: &str) -> (Arc<Services>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("chat-files-{tag}-{}", std::process::id()));
    let mut config = ServerConfig::loopback();
    config.services.files = true;
    config.services.data_dir = dir.clone();
    config.services.upload_idle = Duration::from_secs(30);
    (Services::start(&config).expect("file services"), dir)
}

fn offer(size: u64) -> ClientMsg<'static> {
    ClientMsg::FileOffer { name: "notes.txt".into(), size, sha256: [7; 32] }
}

/// Moves the hub's clock to `NOW + ms` and runs its per-turn work.
fn at(w: &mut World, ms: u64) {
    w.hubs[0].set_now(NOW + ms);
    w.hubs[0].on_turn(&mut w.outs[0]);
}

#[test]
fn an_upload_that_goes_quiet_is_aborted_and_its_space_freed() {
    let (services, dir) = file_services("idle");
    let mut w = World::with(1, services.clone(), 0);
    let store = services.files.as_ref().expect("files on");
    w.enter(0, 1, "alice", BIN);
    w.send(0, 1, offer(1000));
    let Some(ServerMsg::FileAccept { id }) = w.take(0, 1).into_iter().next() else { panic!("no FILE_ACCEPT") };
    let cost = crate::services::files::disk_cost(1000);
    assert_eq!(store.usage(), (0, cost), "the offer reserves what the disk will pay");

    at(&mut w, 29_999);
    assert_eq!(w.take(0, 1), [], "not idle long enough yet");
    // A chunk is activity: the deadline counts from it.
    w.send(0, 1, ClientMsg::FileChunk { id, offset: 0, data: vec![1u8; 100].into() });
    at(&mut w, 29_999 + 29_999);
    assert_eq!(w.take(0, 1), []);
    at(&mut w, 29_999 + 30_000);
    let why = format!("upload {id} aborted: nothing received for 30 s");
    assert_eq!(w.take(0, 1), [error(ErrorCode::FileRefused, &why)]);
    assert_eq!(store.usage(), (0, 0), "the reservation is freed");
    // Late chunks of the aborted upload are dropped without a word; a new offer works.
    w.send(0, 1, ClientMsg::FileChunk { id, offset: 100, data: vec![1u8; 100].into() });
    assert_eq!(w.take(0, 1), []);
    w.send(0, 1, offer(10));
    assert!(matches!(w.take(0, 1).as_slice(), [ServerMsg::FileAccept { .. }]));
    drop(w);
    let _ = std::fs::remove_dir_all(dir);
}
