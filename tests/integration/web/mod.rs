//! The browser app, in real headless Chromium driven over WebDriver ([`crate::support::webdriver`]):
//! two browser windows and one binary client in one room, against the real `chat-server` binary
//! (HTTP, the app's files and the WebSocket all on its one port). Everything is checked in the
//! page's DOM, waiting (bounded) for each condition; nothing is asserted about timing.
//!
//! Without Chromium and chromedriver the tests print a skip notice, unless
//! `CHATPROTO_REQUIRE_BROWSER=1` (CI sets it), which makes a missing browser a failure.

mod failover;
mod screenshots;
mod settings;

use crate::support::webdriver::{Browser, Session, ENTER, ESCAPE, TAB};
use crate::support::{Client, ClientMsg, Msg, ServerMsg, ServerProcess, TempDir, WireFormat};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;

/// Desktop and phone viewports, CSS pixels.
pub(crate) const DESKTOP: (u32, u32) = (1280, 800);
pub(crate) const PHONE: (u32, u32) = (390, 844);

/// Starts the real binary in `dir` (SQLite history, so history survives a restart) on `port`
/// (0: any); returns it and its address.
pub(crate) fn start_server(dir: &Path, port: u16) -> (ServerProcess, SocketAddr) {
    let port = port.to_string();
    let args = ["--bind", "127.0.0.1", "--port", &port, "--no-tls", "--shards", "1", "--history", "sqlite"];
    let server = ServerProcess::start(dir, &[&args[..], &["--data-dir", "data"]].concat());
    let addr = server.wait_listening();
    (server, addr)
}

/// Signs in through the form and waits for the chat to show, connected.
#[track_caller]
pub(crate) fn sign_in(page: &Session<'_>, url: &str, name: &str) {
    page.goto(url);
    page.wait("the sign-in form", "return document.documentElement.dataset.ready === 'true'", &[]);
    page.type_into("#signin-name", &format!("{name}{ENTER}"));
    wait_online(page, &format!("{name} signed in"));
}

#[track_caller]
fn wait_online(page: &Session<'_>, what: &str) {
    page.wait(
        what,
        "return !document.getElementById('app').hidden && document.getElementById('conn-status').dataset.state === 'online'",
        &[],
    );
}

/// Types a line into the message box and presses Enter.
#[track_caller]
pub(crate) fn say(page: &Session<'_>, text: &str) {
    page.type_into("#input", &format!("{text}{ENTER}"));
}

/// How many entries of the shown conversation have exactly this text.
const COUNT_TEXT: &str = "return [...document.querySelectorAll('#messages li .text')]\
    .filter(e => e.textContent === arguments[0]).length";

/// Waits until the shown conversation has a message with `text`.
#[track_caller]
pub(crate) fn wait_text(page: &Session<'_>, who: &str, text: &str) {
    page.wait(&format!("{text:?} at {who}"), COUNT_TEXT, &[json!(text)]);
}

fn count_text(page: &Session<'_>, text: &str) -> u64 {
    page.js(COUNT_TEXT, &[json!(text)]).as_u64().unwrap_or(0)
}

/// The sender shown on the message with `text`.
fn sender_of(page: &Session<'_>, text: &str) -> String {
    let v = page.js(
        "const li = [...document.querySelectorAll('#messages li.msg')]\
             .find(li => li.querySelector('.text').textContent === arguments[0]);\
         return li ? li.querySelector('.from').textContent : null",
        &[json!(text)],
    );
    v.as_str().unwrap_or_default().to_string()
}

/// The data-id of every room message shown, in order (must have no repeats).
fn shown_ids(page: &Session<'_>) -> Vec<String> {
    let v = page.js("return [...document.querySelectorAll('#messages li.msg[data-id]')].map(li => li.dataset.id)", &[]);
    serde_json::from_value(v).unwrap_or_default()
}

#[track_caller]
fn assert_no_repeats(page: &Session<'_>, who: &str) {
    let ids = shown_ids(page);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{who} shows a message twice: {ids:?}");
}

/// The page saw no Content-Security-Policy violation (the app uses no inline script or style).
#[track_caller]
fn assert_csp_clean(page: &Session<'_>, who: &str) {
    let v = page.js("return document.documentElement.dataset.cspViolations || '0'", &[]);
    assert_eq!(v, json!("0"), "{who}: the page broke its Content-Security-Policy");
}

/// The binary client's next room message with `text` (skipping everything else).
#[track_caller]
fn recv_room_text(c: &mut Client, text: &str) -> Msg {
    c.recv_until(|m| matches!(m, ServerMsg::RoomMsg { text: t, .. } if t == text))
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Two browsers and a binary client chat in one room, privately, across rooms; a file goes from
/// a browser to the binary client (and back to a browser), checked by SHA-256; a reload shows
/// history once; a server restart on the same port is survived without repeating anything.
#[test]
fn two_browsers_and_a_binary_client_chat_share_files_and_survive_a_restart() {
    let Some(browser) = Browser::start() else { return };
    let dir = TempDir::new("web-e2e");
    let (server, addr) = start_server(dir.path(), 0);
    let url = format!("http://{addr}/");

    let alice = browser.session(DESKTOP.0, DESKTOP.1);
    let bob = browser.session(PHONE.0, PHONE.1);
    sign_in(&alice, &url, "alice");
    sign_in(&bob, &url, "bob");
    // Signed in, the keyboard is in the message box: type and press Enter.
    assert_eq!(alice.js("return document.activeElement.id", &[]), json!("input"));
    let mut carol = Client::login_new(addr, WireFormat::Binary, "carol");
    alice.wait(
        "carol in alice's member list",
        "return !!document.querySelector('#member-list [data-user=carol]')",
        &[],
    );

    // Messages every way: browser → browser + binary, and binary → both browsers.
    say(&alice, "hello from alice");
    wait_text(&bob, "bob", "hello from alice");
    assert_eq!(sender_of(&bob, "hello from alice"), "alice");
    match recv_room_text(&mut carol, "hello from alice") {
        ServerMsg::RoomMsg { from, history, .. } => assert!(from == "alice" && !history),
        _ => unreachable!(),
    }
    say(&bob, "hi from bob's phone");
    wait_text(&alice, "alice", "hi from bob's phone");
    recv_room_text(&mut carol, "hi from bob's phone");
    carol.say("carol <b>here</b> & there");
    wait_text(&alice, "alice", "carol <b>here</b> & there");
    wait_text(&bob, "bob", "carol <b>here</b> & there");
    assert_eq!(alice.js("return document.querySelectorAll('#messages b').length", &[]), json!(0), "text is escaped");
    // Alice's own message was acknowledged: it carries the server's id.
    alice.wait(
        "alice's message acknowledged",
        "return document.querySelectorAll('#messages li.msg.mine[data-id]').length",
        &[],
    );

    private_messages(&alice, &bob, &mut carol);
    rooms(&alice, &bob, &mut carol);
    files(&alice, &bob, &mut carol, dir.path());
    history_after_reload(&alice, &url);

    sha256_fallback(&bob);

    // The server restarts on the same port: both pages reconnect by themselves, say so, and
    // repeat nothing of the history they already show.
    let before = count_text(&alice, "hello from alice");
    drop(server);
    alice.wait(
        "alice notices the drop",
        "return document.getElementById('conn-status').dataset.state !== 'online'",
        &[],
    );
    let (_server, again) = start_server(dir.path(), addr.port());
    assert_eq!(again, addr);
    wait_online(&alice, "alice reconnected");
    wait_online(&bob, "bob reconnected");
    wait_text(&alice, "alice", "Reconnected.");
    let mut carol = Client::login_new(addr, WireFormat::Json, "carol");
    say(&alice, "after the restart");
    wait_text(&bob, "bob", "after the restart");
    recv_room_text(&mut carol, "after the restart");
    assert_eq!(count_text(&alice, "hello from alice"), before, "history shown once after the reconnect");
    for (page, who) in [(&alice, "alice"), (&bob, "bob")] {
        assert_no_repeats(page, who);
        assert_csp_clean(page, who);
    }
}

/// A private message from a browser (clicking a name), one from the binary client, and the
/// unread count on the conversation that is not shown.
fn private_messages(alice: &Session<'_>, bob: &Session<'_>, carol: &mut Client) {
    alice.click("#member-list button[data-user=bob]");
    alice.wait("the private conversation", "return document.getElementById('conv-title').textContent === '@bob'", &[]);
    say(alice, "psst, bob");
    wait_text(alice, "alice (echo)", "psst, bob");
    // Bob is in #general: the message waits behind an unread badge.
    bob.wait(
        "bob's unread badge",
        "const b = document.querySelector('#dm-list [data-dm=alice] .badge:not([hidden])'); return b && b.textContent",
        &[],
    );
    assert_eq!(count_text(bob, "psst, bob"), 0, "not in the room's conversation");
    bob.click("#nav-toggle");
    bob.click("#dm-list [data-dm=alice]");
    wait_text(bob, "bob", "psst, bob");
    assert_eq!(
        bob.js("return document.querySelector('#dm-list [data-dm=alice] .badge:not([hidden])')", &[]),
        Value::Null
    );
    // The binary client writes to alice privately.
    carol.send(&ClientMsg::PrivateMsg { to: "alice".into(), text: "carol to alice, privately".into() });
    alice.click("#dm-list [data-dm=carol]");
    wait_text(alice, "alice", "carol to alice, privately");
    // Back to the room for both.
    alice.click("#room-list [data-room=general]");
    bob.click("#nav-toggle");
    bob.click("#room-list [data-room=general]");
    wait_text(bob, "bob", "hello from alice");
}

/// Bob joins #rust with a command, carol follows; alice sees bob leave; bob comes back.
fn rooms(alice: &Session<'_>, bob: &Session<'_>, carol: &mut Client) {
    say(bob, "/join rust");
    bob.wait("bob in #rust", "return document.getElementById('conv-title').textContent === '#rust'", &[]);
    alice.wait("bob gone from alice's members", "return !document.querySelector('#member-list [data-user=bob]')", &[]);
    wait_text(alice, "alice", "bob left");
    carol.join("rust");
    wait_text(bob, "bob", "carol joined");
    carol.say("rustaceans only");
    wait_text(bob, "bob", "rustaceans only");
    assert_eq!(count_text(alice, "rustaceans only"), 0, "another room's message stays there");
    // The room list counts members.
    alice.click("#rooms-refresh");
    alice.wait(
        "#rust has 2 members",
        "const c = document.querySelector('#room-list [data-room=rust] .count'); return c && c.textContent === '2'",
        &[],
    );
    bob.click("#nav-toggle");
    bob.click("#room-list [data-room=general]");
    bob.wait("bob back in #general", "return document.getElementById('conv-title').textContent === '#general'", &[]);
    carol.join("general");
}

/// Alice shares a file from the browser; the binary client downloads it with the same SHA-256;
/// bob downloads it in his browser, which checks the SHA-256 itself.
fn files(alice: &Session<'_>, bob: &Session<'_>, carol: &mut Client, dir: &Path) {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let path = dir.join("report.bin");
    std::fs::write(&path, &data).expect("write the file to share");
    let want = sha256_hex(&data);

    alice.click("#files-toggle");
    alice.type_into("#file-input", path.to_str().expect("utf-8 temp path"));
    let id = alice.wait(
        "the upload confirmed",
        "const t = document.querySelector('.transfer[data-kind=upload]');\
         if (t && t.dataset.state === 'failed') return 'failed: ' + t.textContent;\
         return t && t.dataset.state === 'done' && t.dataset.id",
        &[],
    );
    let id: u64 = id.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("upload: {id}"));
    let offered = carol.recv_until(|m| matches!(m, ServerMsg::FileAvailable { id: got, .. } if *got == id));
    assert!(
        matches!(offered, ServerMsg::FileAvailable { ref name, size: 100_000, ref from, .. } if name == "report.bin" && from == "alice")
    );

    carol.send(&ClientMsg::FileGet { id });
    let mut got = Vec::new();
    let stored = loop {
        match carol.recv_until(|m| {
            matches!(m, ServerMsg::FileChunk { .. } | ServerMsg::FileDone { .. } | ServerMsg::ErrorMsg { .. })
        }) {
            ServerMsg::FileChunk { offset, data, .. } => {
                assert_eq!(offset, got.len() as u64);
                got.extend_from_slice(&data);
            }
            ServerMsg::FileDone { sha256, .. } => break sha256.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            other => panic!("download refused: {other:?}"),
        }
    };
    assert_eq!(sha256_hex(&got), want, "the binary client got the browser's bytes");
    assert_eq!(stored, want);

    // Bob's browser downloads it from the announcement in the room and checks the digest.
    bob.wait("the file announced to bob", "return document.querySelector('#messages li.file[data-file]')", &[]);
    bob.click(&format!("#messages li.file[data-file='{id}'] button"));
    let sha = bob.wait(
        "bob's download verified",
        "const t = document.querySelector('.transfer[data-kind=download]');\
         if (t && t.dataset.state === 'failed') return 'failed: ' + t.textContent;\
         return t && t.dataset.state === 'verified' && t.dataset.sha256",
        &[],
    );
    assert_eq!(sha, json!(want), "the browser computed the same SHA-256");
    assert_eq!(bob.downloaded("report.bin", data.len()), data, "the browser saved the same bytes");
    alice.click("#files-toggle");
}

/// The page's own SHA-256 (used where crypto.subtle is missing: plain http to a LAN address)
/// agrees with Rust's on the padding edge cases and on a multi-block input.
fn sha256_fallback(page: &Session<'_>) {
    for len in [0usize, 3, 55, 56, 63, 64, 65, 1000, 70_001] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let got = page.js_async(
            "const done = arguments[arguments.length - 1];\
             import('/sha256.js').then(m => done(m.sha256HexJs(new Uint8Array(arguments[0]))))",
            &[json!(data)],
        );
        assert_eq!(got, json!(sha256_hex(&data)), "the JS SHA-256 of {len} bytes");
    }
}

/// After a reload the page signs in again by itself, back in its room, and shows the room's
/// history once, marked as history.
fn history_after_reload(alice: &Session<'_>, url: &str) {
    alice.goto(url);
    wait_online(alice, "alice back after the reload");
    alice.wait(
        "history after the reload",
        "return [...document.querySelectorAll('#messages li.msg.history .text')]\
             .some(e => e.textContent === 'carol <b>here</b> & there')",
        &[],
    );
    for text in ["hello from alice", "hi from bob's phone", "carol <b>here</b> & there"] {
        assert_eq!(count_text(alice, text), 1, "{text:?} shown once after the reload");
    }
    assert_no_repeats(alice, "alice after the reload");
}

/// Over https the page talks `wss://` on the same port (a plain `ws://` would be blocked as mixed
/// content), beside a plaintext binary client.
#[test]
fn over_https_the_page_uses_wss_on_the_same_port() {
    let Some(browser) = Browser::start() else { return };
    let dir = TempDir::new("web-tls");
    let args = ["--bind", "127.0.0.1", "--port", "0", "--shards", "1", "--history", "memory"];
    let server = ServerProcess::start(dir.path(), &args);
    let addr = server.wait_listening();
    let page = browser.session(DESKTOP.0, DESKTOP.1);
    sign_in(&page, &format!("https://localhost:{}/", addr.port()), "sec");
    assert_eq!(page.js("return location.protocol", &[]), json!("https:"));
    assert_eq!(page.js("return isSecureContext", &[]), json!(true));
    let mut plain = Client::login_new(addr, WireFormat::Binary, "plain");
    say(&page, "over wss");
    recv_room_text(&mut plain, "over wss");
    plain.say("over tcp");
    wait_text(&page, "sec", "over tcp");
    assert_csp_clean(&page, "sec");
}

/// Types a name and a passkey or password into the sign-in form and submits it.
fn submit_sign_in(page: &Session<'_>, name: &str, secret: &str) {
    page.js(
        "document.getElementById('signin-name').value = ''; document.getElementById('signin-secret').value = ''",
        &[],
    );
    if secret.is_empty() {
        // An open server hides the secret field: Enter in the name submits.
        page.type_into("#signin-name", &format!("{name}{ENTER}"));
    } else {
        page.type_into("#signin-name", name);
        page.type_into("#signin-secret", &format!("{secret}{ENTER}"));
    }
}

/// The sign-in error shown next (the form clears the previous one on submit).
#[track_caller]
fn sign_in_error(page: &Session<'_>, what: &str) -> String {
    let v =
        page.wait(what, "const e = document.getElementById('signin-error'); return !e.hidden && e.textContent", &[]);
    page.js("document.getElementById('signin-error').hidden = true", &[]);
    v.as_str().unwrap_or_default().to_string()
}

/// Every way a sign-in can be refused is explained on the form; the admin gets the admin panel
/// and its commands work; nobody else sees it.
#[test]
fn sign_in_refusals_are_explained_and_the_admin_gets_the_admin_panel() {
    let Some(browser) = Browser::start() else { return };
    let dir = TempDir::new("web-auth");
    let args = [
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--no-tls",
        "--shards",
        "1",
        "--history",
        "memory",
        "--auth",
        "passkey",
        "--passkey",
        "sesame",
        "--admin-user",
        "root",
        "--admin-password",
        "rootpass1",
    ];
    let server = ServerProcess::start(dir.path(), &args);
    let url = format!("http://{}/", server.wait_listening());

    let page = browser.session(PHONE.0, PHONE.1);
    page.goto(&url);
    page.wait("the sign-in form", "return document.documentElement.dataset.ready === 'true'", &[]);
    submit_sign_in(&page, "a b", "");
    assert!(sign_in_error(&page, "a bad name").contains("cannot be used"));
    submit_sign_in(&page, "alice", "");
    assert!(sign_in_error(&page, "no passkey").contains("asks for a passkey or a password"));
    submit_sign_in(&page, "alice", "wrong");
    assert!(sign_in_error(&page, "a wrong passkey").contains("did not accept the passkey or password"));
    submit_sign_in(&page, "alice", "sesame");
    wait_online(&page, "alice with the passkey");

    let other = browser.session(DESKTOP.0, DESKTOP.1);
    other.goto(&url);
    other.wait("the sign-in form", "return document.documentElement.dataset.ready === 'true'", &[]);
    submit_sign_in(&other, "ALICE", "sesame");
    assert!(sign_in_error(&other, "a taken name").contains("That name is taken"));
    submit_sign_in(&other, "bob", "sesame");
    wait_online(&other, "bob with the passkey");
    // The form follows the server's settings (/config.json): a passkey field, no accounts.
    other.click("#sign-out");
    let form = "const f = (id) => document.getElementById(id); \
                return [f('register-button').hidden, f('signin-secret').hidden, \
                        document.querySelector('label[for=signin-secret]').textContent]";
    let shape = other.js(form, &[]);
    assert_eq!(shape, serde_json::json!([true, false, "Passkey"]), "the sign-in form on a passkey server");

    // The admin: the panel appears, its buttons and command box work.
    submit_sign_in(&other, "root", "rootpass1");
    wait_online(&other, "root signed in");
    other.wait("the admin panel", "return !document.getElementById('admin-panel').hidden", &[]);
    other.click("#admin-panel [data-admin=users]");
    other.wait("the users answer", "return document.getElementById('admin-output').textContent.includes('alice')", &[]);
    other.type_into("#admin-command", &format!("alert fire drill at noon{ENTER}"));
    wait_text(&page, "alice", "Alert from root: fire drill at noon");
    assert!(page.js("return document.getElementById('admin-panel').hidden", &[]) == json!(true), "not for alice");
    say(&page, "/admin users");
    page.wait("alice refused", "return [...document.querySelectorAll('#messages li.notice.error')].length", &[]);
    assert_csp_clean(&page, "alice");
    // A kicked user is told why and does not reconnect by itself.
    other.type_into("#admin-command", &format!("kick alice{ENTER}"));
    assert!(sign_in_error(&page, "alice kicked").contains("An administrator disconnected you"));
    page.wait("no reconnect", "return document.getElementById('conn-status').dataset.state === 'offline'", &[]);
    assert_csp_clean(&other, "root");
}

/// A join storm: the page accounts for every joiner, whether the server names each one
/// (SYSTEM_MSG) or sums them up (PRESENCE: "a, b and 23 others joined"), and its member list
/// ends up with everyone.
#[test]
fn a_join_storm_is_summed_up_and_every_member_is_listed() {
    const JOINERS: usize = 25;
    let Some(browser) = Browser::start() else { return };
    let dir = TempDir::new("web-storm");
    let (_server, addr) = start_server(dir.path(), 0);
    let page = browser.session(DESKTOP.0, DESKTOP.1);
    sign_in(&page, &format!("http://{addr}/"), "watcher");
    let clients: Vec<Client> =
        (0..JOINERS).map(|i| Client::login_new(addr, WireFormat::Binary, &format!("guest{i:02}"))).collect();
    let joined = page.wait(
        "every joiner accounted for",
        "const n = [...document.querySelectorAll('#messages li.notice[data-joined]')]\
             .reduce((sum, li) => sum + Number(li.dataset.joined), 0);\
         return n >= arguments[0] && n",
        &[json!(JOINERS)],
    );
    assert_eq!(joined, json!(JOINERS), "each join counted once");
    page.wait(
        "everyone in the member list",
        "return document.querySelectorAll('#member-list li').length === arguments[0]",
        &[json!(JOINERS + 1)],
    );
    drop(clients);
    page.wait("everyone gone again", "return document.querySelectorAll('#member-list li').length === 1", &[]);
}

/// "Earlier messages" pages back through the room's history (the resume extension's HISTORY),
/// each page above the messages shown, nothing twice; a server without scroll-back says so.
#[test]
fn earlier_messages_page_back_above_the_shown_ones() {
    let Some(browser) = Browser::start() else { return };
    let dir = TempDir::new("web-scrollback");
    let args = ["--bind", "127.0.0.1", "--port", "0", "--no-tls", "--shards", "1", "--history", "sqlite"];
    let server = ServerProcess::start(dir.path(), &[&args[..], &["--data-dir", "data", "--history-len", "3"]].concat());
    let addr = server.wait_listening();
    let mut ann = Client::login_new(addr, WireFormat::Binary, "ann");
    let texts: Vec<String> = (1..=7).map(|i| format!("line {i}")).collect();
    for t in &texts {
        ann.say(t);
        ann.recv_until(|m| matches!(m, ServerMsg::RoomMsgAck { .. }));
    }
    let page = browser.session(DESKTOP.0, DESKTOP.1);
    sign_in(&page, &format!("http://{addr}/"), "reader");
    wait_text(&page, "reader", "line 7");
    assert_eq!(count_text(&page, "line 4"), 0, "only the last 3 are replayed");
    let shown = "return [...document.querySelectorAll('#messages li.msg .text')].map(e => e.textContent)";
    let mut ended = false;
    for _page in 0..texts.len() {
        page.wait("the button", "return !document.getElementById('older-button').hidden", &[]);
        let before = page.js(shown, &[]);
        page.click("#older-button");
        let outcome = page.wait(
            "a page of earlier messages, or the word that there is none",
            "const t = [...document.querySelectorAll('#messages li.notice .text')].map(e => e.textContent);\
             if (t.some(x => x.includes('keeps no scroll-back'))) return 'none';\
             if (t.some(x => x.startsWith('Start of #'))) return 'end';\
             const n = document.querySelectorAll('#messages li.msg').length;\
             return n > arguments[0] && 'more'",
            &[json!(before.as_array().map_or(0, Vec::len))],
        );
        match outcome.as_str() {
            Some("none") => {
                // A server without the extension: the page hides the button and shows nothing new.
                assert_eq!(page.js(shown, &[]), before);
                page.wait("the button hidden", "return document.getElementById('older-button').hidden", &[]);
                return;
            }
            Some("end") => {
                ended = true;
                break;
            }
            _ => continue,
        }
    }
    assert!(ended, "paging back never reached the start");
    assert_eq!(page.js(shown, &[]), json!(texts), "every line once, oldest first");
    page.wait("the button hidden at the start", "return document.getElementById('older-button').hidden", &[]);
    assert_no_repeats(&page, "reader");
}

/// A page that comes back (a reload) while the server still holds its name waits, says so, and
/// signs in once the old session is gone, back in its room.
#[test]
fn a_reload_waits_for_the_old_session_to_end() {
    let Some(browser) = Browser::start() else { return };
    let dir = TempDir::new("web-taken");
    let (_server, addr) = start_server(dir.path(), 0);
    let url = format!("http://{addr}/");
    let page = browser.session(DESKTOP.0, DESKTOP.1);
    page.goto(&url);
    page.wait("the page", "return document.documentElement.dataset.ready === 'true'", &[]);
    // The "old session": a client holding the name, as a dead tab's connection would.
    let old = Client::login_new(addr, WireFormat::Binary, "zed");
    page.js("sessionStorage.setItem('chatproto.session', JSON.stringify({ name: 'zed', room: 'lab' }))", &[]);
    page.goto(&url);
    page.wait(
        "the page waiting for the name",
        "return document.getElementById('signin-status').textContent.includes('previous session')",
        &[],
    );
    old.close();
    wait_online(&page, "zed signed in once the name was free");
    page.wait("back in #lab", "return document.getElementById('conv-title').textContent === '#lab'", &[]);
}

/// On an accounts server: *Create account* registers and signs in; afterwards the password is
/// needed, and a wrong one is explained.
#[test]
fn an_account_is_created_from_the_page_and_its_password_checked() {
    let Some(browser) = Browser::start() else { return };
    let dir = TempDir::new("web-accounts");
    let args = ["--bind", "127.0.0.1", "--port", "0", "--no-tls", "--shards", "1", "--auth", "accounts"];
    let server =
        ServerProcess::start(dir.path(), &[&args[..], &["--history", "memory", "--data-dir", "data"]].concat());
    let page = browser.session(PHONE.0, PHONE.1);
    page.goto(&format!("http://{}/", server.wait_listening()));
    page.wait("the sign-in form", "return document.documentElement.dataset.ready === 'true'", &[]);
    let form = "return [document.getElementById('register-button').hidden, \
                document.querySelector('label[for=signin-secret]').textContent]";
    assert_eq!(page.js(form, &[]), serde_json::json!([false, "Password"]), "the form on an accounts server");
    page.type_into("#signin-name", "newbie");
    page.type_into("#signin-secret", "short");
    page.click("#register-button");
    assert!(sign_in_error(&page, "a short password").contains("8 characters or more"));
    page.type_into("#signin-secret", " enough");
    page.click("#register-button");
    wait_online(&page, "the new account signed in");
    page.click("#sign-out");
    submit_sign_in(&page, "newbie", "wrong password");
    assert!(sign_in_error(&page, "a wrong password").contains("did not accept the passkey or password"));
    submit_sign_in(&page, "newbie", "short enough");
    wait_online(&page, "signed in with the password");
}

/// The keyboard alone: the skip link leads to the message box, Tab walks on to Send, the phone's
/// drawer opens with the focus inside and Escape closes it, giving the focus back to the box.
#[test]
fn the_keyboard_alone_is_enough() {
    let Some(browser) = Browser::start() else { return };
    let dir = TempDir::new("web-keys");
    let (_server, addr) = start_server(dir.path(), 0);
    let page = browser.session(PHONE.0, PHONE.1);
    sign_in(&page, &format!("http://{addr}/"), "keys");
    let focused = "const e = document.activeElement; return e.id || e.textContent.trim()";
    assert_eq!(page.js(focused, &[]), json!("input"), "signed in, the box has the focus");
    page.press(TAB);
    assert_eq!(page.js(focused, &[]), json!("Send"));
    // Past the last control the focus goes round (through the browser) to the skip link.
    let mut at_skip = false;
    for _ in 0..3 {
        page.press(TAB);
        if page.js(focused, &[]) == json!("Skip to the message box") {
            at_skip = true;
            break;
        }
    }
    assert!(at_skip, "the skip link comes first");
    page.press(ENTER);
    assert_eq!(page.js(focused, &[]), json!("input"));
    page.click("#nav-toggle");
    page.wait(
        "the focus in the drawer",
        "return document.getElementById('sidebar').contains(document.activeElement)",
        &[],
    );
    page.press(ESCAPE);
    page.wait("the drawer closed", "return !document.getElementById('sidebar').classList.contains('open')", &[]);
    assert_eq!(page.js(focused, &[]), json!("input"));
    say(&page, "/join den");
    page.wait("in #den by keyboard", "return document.getElementById('conv-title').textContent === '#den'", &[]);
    // The focus is visible wherever it is: an outline on the focused control.
    page.press(TAB);
    let outline = page.js("return getComputedStyle(document.activeElement).outlineStyle", &[]);
    assert_eq!(outline, json!("solid"), "a visible focus ring");
}
