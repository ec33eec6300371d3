//! The README's screenshots of the web app, taken in headless Chromium: desktop (1280×800) and
//! phone (390×844) widths, light and dark. Not part of the normal run (it writes into the
//! source tree); refresh them with
//! `cargo test --test integration web::screenshots -- --ignored`.

use super::{say, sign_in, start_server, wait_text, DESKTOP, PHONE};
use crate::support::webdriver::{Browser, Session};
use crate::support::{Client, ClientMsg, ServerMsg, TempDir, WireFormat};
use std::path::PathBuf;

fn save(page: &Session<'_>, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).expect("create docs/screenshots");
    let png = page.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(dir.join(name), png).expect("write the screenshot");
}

/// Takes the light and dark shots of one page.
fn both_schemes(page: &Session<'_>, name: &str) {
    page.color_scheme(false);
    save(page, &format!("{name}-light.png"));
    page.color_scheme(true);
    save(page, &format!("{name}-dark.png"));
    page.color_scheme(false);
}

#[test]
#[ignore = "writes docs/screenshots/; run by hand to refresh them"]
fn screenshots() {
    let Some(browser) = Browser::start() else { return };
    let dir = TempDir::new("web-shots");
    let (_server, addr) = start_server(dir.path(), 0);
    let url = format!("http://{addr}/");

    let signin = browser.session(PHONE.0, PHONE.1);
    signin.goto(&url);
    signin.wait("the sign-in form", "return document.documentElement.dataset.ready === 'true'", &[]);
    both_schemes(&signin, "signin-phone");
    drop(signin);

    let mut grace = Client::login_new(addr, WireFormat::Binary, "grace");
    grace.say("Standup in 5 minutes, room 2.14");
    let alice = browser.session(DESKTOP.0, DESKTOP.1);
    let bob = browser.session(PHONE.0, PHONE.1);
    sign_in(&alice, &url, "alice");
    sign_in(&bob, &url, "bob");
    let mut dan = Client::login_new(addr, WireFormat::Json, "dan");
    say(&alice, "Morning! The build is green again.");
    wait_text(&bob, "bob", "Morning! The build is green again.");
    say(&bob, "Nice. I'll deploy after lunch.");
    wait_text(&alice, "alice", "Nice. I'll deploy after lunch.");
    dan.say("Can someone share the release notes?");
    wait_text(&alice, "alice", "Can someone share the release notes?");

    let notes = dir.path().join("release-notes-1.4.txt");
    std::fs::write(&notes, "chatproto 1.4\n- a browser app\n".repeat(400)).expect("write the file");
    alice.click("#files-toggle");
    alice.type_into("#file-input", notes.to_str().expect("utf-8 path"));
    alice.wait(
        "the upload",
        "const t = document.querySelector('.transfer[data-kind=upload]'); return t && t.dataset.state === 'done'",
        &[],
    );
    wait_text(&bob, "bob", "alice shared release-notes-1.4.txt (11.7 KiB)");
    dan.send(&ClientMsg::PrivateMsg { to: "alice".into(), text: "Thanks! Lunch at 12?".into() });
    alice.wait(
        "dan's private message",
        "return document.querySelector('#dm-list [data-dm=dan] .badge:not([hidden])')",
        &[],
    );
    grace.join("design");
    dan.say("Got it, thanks alice");
    wait_text(&alice, "alice", "Got it, thanks alice");
    dan.recv_until(|m| matches!(m, ServerMsg::RoomMsg { .. }));
    alice.click("#rooms-refresh");
    alice.wait("the design room listed", "return document.querySelector('#room-list [data-room=design]')", &[]);
    alice.js("document.activeElement.blur()", &[]);
    both_schemes(&alice, "desktop");
    bob.js("document.activeElement.blur()", &[]);
    both_schemes(&bob, "phone");
    bob.click("#nav-toggle");
    both_schemes(&bob, "phone-menu");
}
