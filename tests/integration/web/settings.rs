//! The page follows the server's public settings (`GET /config.json`): on a server with a small
//! frame limit, a browser upload is cut into chunks that fit it.

use super::{sign_in, ServerProcess, TempDir};
use crate::support::webdriver::Browser;

/// With `--max-frame 12000`, the default 32 KiB chunk (43 KiB in base64) would close the
/// connection; the page sizes its chunks from `max_frame` and the upload completes.
#[test]
fn uploads_fit_a_small_frame_limit() {
    let Some(browser) = Browser::start() else { return };
    let dir = TempDir::new("web-small-frames");
    let args = ["--bind", "127.0.0.1", "--port", "0", "--no-tls", "--shards", "1", "--history", "memory"];
    let server =
        ServerProcess::start(dir.path(), &[&args[..], &["--max-frame", "12000", "--data-dir", "data"]].concat());
    let addr = server.wait_listening();
    let data: Vec<u8> = (0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let path = dir.path().join("small-frames.bin");
    std::fs::write(&path, &data).expect("write the file to share");

    let alice = browser.session(1280, 800);
    sign_in(&alice, &format!("http://{addr}/"), "alice");
    alice.click("#files-toggle");
    alice.type_into("#file-input", path.to_str().expect("utf-8 temp path"));
    let state = alice.wait(
        "the upload settled",
        "const t = document.querySelector('.transfer[data-kind=upload]');\
         return t && ['done', 'failed'].includes(t.dataset.state) && t.dataset.state + ' ' + t.textContent",
        &[],
    );
    let state = state.as_str().unwrap_or_default().to_string();
    assert!(state.starts_with("done"), "the upload under a 12,000-byte frame limit: {state}");
}
