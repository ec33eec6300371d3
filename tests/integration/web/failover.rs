//! The page moves to another node of a cluster when its own dies: two nodes joined through a
//! real `nats-server -js`, each advertising its address (`--advertise 127.0.0.1`, completed with
//! its port), so `/config.json` lists both and each accepts a WebSocket from a page the other
//! served. The page is opened on node A; A is SIGKILLed (its own PID); the page reconnects to
//! B by itself (after A's name claim expires, `TTL_S`), says so, and chats with a binary client
//! on B, showing nothing twice.
//!
//! Not asserted yet (see the report of this branch): exactly-once across the fail-over. History
//! is still per node and ids are ordered only per node, so the resume on B ("since" an id A
//! stamped) is not exact; once room messages go through the cluster-wide log, a message sent
//! on B while the page is away must appear exactly once after it is back.

use super::{assert_csp_clean, assert_no_repeats, count_text, recv_room_text, say, sign_in, wait_text, DESKTOP};
use crate::support::webdriver::{Browser, Session};
use crate::support::{http_get, node_with, Client, NatsServer, ServerMsg, WireFormat, DEADLINE};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What bob says while the page has no node.
const AWAY: [&str; 3] = ["while away 1", "while away 2", "while away 3"];

/// The `servers` list of `GET /config.json` on `addr`.
fn listed(addr: SocketAddr) -> Vec<String> {
    let (status, _, body) = http_get(addr, b"GET /config.json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    let site: Value = serde_json::from_slice(&body).expect("config.json is JSON");
    serde_json::from_value(site["servers"].clone()).expect("a servers list")
}

/// Waits (bounded) until node `addr` lists exactly `want`, in that order.
#[track_caller]
fn wait_listed(addr: SocketAddr, want: &[String]) {
    let end = Instant::now() + DEADLINE;
    while listed(addr) != want {
        assert!(Instant::now() < end, "{addr} lists {:?}, not {want:?}", listed(addr));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status of a WebSocket upgrade on `addr` from a page at `origin` that is refused (a
/// granted one is not read to its end: the connection stays open).
fn upgrade_from(addr: SocketAddr, origin: &str) -> u16 {
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    http_get(addr, req.as_bytes()).0
}

/// The connection status line: its state, the node it names, its text.
fn status(page: &Session<'_>) -> (String, String, String) {
    let v = page.js(
        "const b = document.getElementById('conn-status'); return [b.dataset.state, b.dataset.server, b.textContent]",
        &[],
    );
    let s = |i: usize| v[i].as_str().unwrap_or_default().to_string();
    (s(0), s(1), s(2))
}

/// Bob (binary, on B) says numbered words until the page (on A) shows one: the route is up.
#[track_caller]
fn until_page_hears(bob: &mut Client, page: &Session<'_>) -> String {
    let end = Instant::now() + DEADLINE;
    for n in 0.. {
        let word = format!("route check {n}");
        bob.say(&word);
        // Returns once the page shows it, or after 300 ms.
        page.wait(
            "a route check (or a short wait)",
            "return [...document.querySelectorAll('#messages li .text')]\
                .some(e => e.textContent === arguments[0]) || Date.now() > arguments[1]",
            &[json!(word), json!(now_ms() + 300)],
        );
        if count_text(page, &word) > 0 {
            bob.sync();
            return word;
        }
        assert!(Instant::now() < end, "the page on A never heard bob on B");
    }
    unreachable!()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[test]
fn the_page_moves_to_another_node_when_its_node_is_killed() {
    let Some(nats) = NatsServer::start("the_page_moves_to_another_node_when_its_node_is_killed") else { return };
    let Some(browser) = Browser::start() else { return };
    let a = node_with(&nats, "a", &["--advertise", "127.0.0.1"]);
    let b = node_with(&nats, "b", &["--advertise", "127.0.0.1"]);
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    // Each node lists itself first, then the others.
    wait_listed(a.addr, &[a_addr.clone(), b_addr.clone()]);
    wait_listed(b.addr, &[b_addr.clone(), a_addr.clone()]);
    // A page from elsewhere still may not open a WebSocket on a node.
    assert_eq!(upgrade_from(b.addr, "http://127.0.0.1:1"), 403, "an origin that is not a node");

    let page = browser.session(DESKTOP.0, DESKTOP.1);
    sign_in(&page, &format!("http://{a_addr}/"), "alice");
    assert_eq!(status(&page).1, a_addr, "the status names the node: {:?}", status(&page));
    let mut bob = Client::login_new(b.addr, WireFormat::Binary, "bob");
    let heard = until_page_hears(&mut bob, &page);
    say(&page, "before the kill");
    recv_room_text(&mut bob, "before the kill");
    // Acknowledged on A (the log has it), so the page knows its id and will not show it again.
    page.wait(
        "alice's message acknowledged",
        "return [...document.querySelectorAll('#messages li.msg.mine[data-id] .text')]\
            .some(e => e.textContent === 'before the kill')",
        &[],
    );

    a.process.signal(libc::SIGKILL);
    // Sent while the page is on no node (B refuses alice's name until A's claim expires).
    for text in AWAY {
        bob.say(text);
    }
    page.wait(
        "the page back online on node B",
        "const b = document.getElementById('conn-status');\
         return b.dataset.state === 'online' && b.dataset.server === arguments[0] && !document.getElementById('app').hidden",
        &[json!(b_addr)],
    );
    wait_text(&page, "alice", "Reconnected.");
    let (_, server, text) = status(&page);
    assert!(server == b_addr && text.contains(&b_addr), "the status line names node B: {text:?}");

    say(&page, "after the fail-over");
    match recv_room_text(&mut bob, "after the fail-over") {
        ServerMsg::RoomMsg { from, history, .. } => assert!(from == "alice" && !history),
        _ => unreachable!(),
    }
    bob.say("welcome back");
    wait_text(&page, "alice", "welcome back");
    for text in [heard.as_str(), "before the kill", "after the fail-over", "welcome back"] {
        assert_eq!(count_text(&page, text), 1, "{text:?} shown once");
    }
    // Exactly once: the resume on B asks the cluster-wide log for what came after the last id
    // the page saw on A.
    for text in AWAY {
        assert_eq!(count_text(&page, text), 1, "{text:?} sent while away, shown once");
    }
    assert_no_repeats(&page, "alice");
    assert_csp_clean(&page, "alice");
    // B no longer lists the dead node once its entry has expired.
    wait_listed(b.addr, &[b_addr]);
}
