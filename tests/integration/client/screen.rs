//! `chat-client` on a real terminal: tmux runs it in a detached session of known size; the test
//! types with `send-keys` and reads the screen with `capture-pane`. Without tmux these tests
//! print a skip notice, or fail when `CHATPROTO_REQUIRE_TMUX=1` (as CI sets it).
//!
//! Keys are mostly sent one at a time, each waited for on screen, as a person types them; one
//! test sends a whole line in one write, as a paste without bracketed paste arrives (rustyline
//! 17 took such keys only at the next key press; see the README's client section).

use super::CLIENT_BIN;
use crate::support::{server, Client, WireFormat, PROCESS_DEADLINE};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// A private tmux server (its own socket, `-L`) with one session running one command; the
/// server is killed through that socket on drop, so no other tmux is touched.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` (with `env` set) in a detached 100x30 session, or returns `None` after
    /// printing a skip notice when tmux is missing (a failure under `CHATPROTO_REQUIRE_TMUX=1`).
    fn start(env: &[(&str, Option<&str>)], command: &[&str]) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            let required = std::env::var_os("CHATPROTO_REQUIRE_TMUX").is_some_and(|v| v == "1");
            assert!(!required, "tmux is not installed but CHATPROTO_REQUIRE_TMUX=1: install tmux");
            eprintln!("SKIPPED: tmux is not installed; the terminal-screen tests did not run");
            return None;
        }
        static N: AtomicU64 = AtomicU64::new(0);
        let socket = format!("chatproto-it-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &socket, "-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "30", "--"]);
        cmd.arg("env");
        for (k, v) in env {
            match v {
                Some(v) => cmd.arg(format!("{k}={v}")),
                None => cmd.args(["-u", k]),
            };
        }
        cmd.args(command).env("TERM", "xterm");
        let out = cmd.output().expect("run tmux");
        assert!(out.status.success(), "tmux new-session failed: {}", String::from_utf8_lossy(&out.stderr));
        Some(Tmux { socket })
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux").args(["-L", &self.socket]).args(args).output().expect("run tmux")
    }

    /// The screen as text; with `escapes`, with colour attributes as escape sequences.
    fn screen(&self, escapes: bool) -> String {
        let args: &[&str] = if escapes { &["capture-pane", "-p", "-e"] } else { &["capture-pane", "-p"] };
        String::from_utf8_lossy(&self.tmux(args).stdout).into_owned()
    }

    /// Waits (bounded) until the screen satisfies `pred`; returns it.
    #[track_caller]
    fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            let screen = self.screen(false);
            if pred(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "the screen never showed {what}:\n{screen}");
            thread::sleep(Duration::from_millis(30));
        }
    }

    /// The cursor's column.
    fn cursor_x(&self) -> usize {
        let out = self.tmux(&["display-message", "-p", "#{cursor_x}"]);
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(usize::MAX)
    }

    /// Types `text` (ASCII) one key at a time, each waited for on the prompt line (its text and
    /// the cursor after it, so a space counts too), as a person types.
    #[track_caller]
    fn type_keys(&self, prompt_before: &str, text: &str) {
        let mut typed = prompt_before.to_string();
        for c in text.chars() {
            self.tmux(&["send-keys", "-l", &c.to_string()]);
            typed.push(c);
            let want = typed.trim_end().to_string();
            let deadline = Instant::now() + PROCESS_DEADLINE;
            while !(last_line(&self.screen(false)) == want && self.cursor_x() == typed.len()) {
                let screen = self.screen(false);
                assert!(Instant::now() < deadline, "the prompt never showed {typed:?}:\n{screen}");
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// The last non-blank line of a screen.
fn last_line(screen: &str) -> &str {
    screen.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim_end()
}

#[test]
fn a_half_typed_line_survives_incoming_messages() {
    let srv = server();
    let (host, port) = (srv.addr.ip().to_string(), srv.addr.port().to_string());
    let Some(tmux) = Tmux::start(&[("NO_COLOR", None)], &[CLIENT_BIN, "alice", &host, &port]) else { return };
    tmux.wait_screen("the welcome", |s| s.contains("Welcome, alice!") && last_line(s) == ">");
    tmux.type_keys("> ", "half typ");
    let mut bob = Client::login_new(srv.addr, WireFormat::Binary, "bob");
    for i in 1..=3 {
        bob.say(&format!("incoming {i}"));
    }
    let screen = tmux.wait_screen("bob's messages", |s| s.contains("bob: incoming 3"));
    assert_eq!(last_line(&screen), "> half typ", "the typed line is intact, below the messages:\n{screen}");
    let lines: Vec<&str> = screen.lines().collect();
    let prompt_at = lines.iter().rposition(|l| l.starts_with("> half typ")).expect("prompt");
    let third_at = lines.iter().position(|l| l.ends_with("bob: incoming 3")).expect("message");
    assert!(third_at < prompt_at, "messages print above the input line:\n{screen}");
    // Finish the line: it is sent whole.
    tmux.type_keys("> half typ", "ed");
    tmux.tmux(&["send-keys", "Enter"]);
    let got = bob.recv_until(|m| matches!(m, crate::support::ServerMsg::RoomMsg { from, .. } if from == "alice"));
    assert!(matches!(got, crate::support::ServerMsg::RoomMsg { ref text, .. } if text == "half typed"), "{got:?}");
    // Tab completes a command word.
    tmux.type_keys("> ", "/jo");
    tmux.tmux(&["send-keys", "Tab"]);
    tmux.wait_screen("the completed command", |s| last_line(s) == "> /join");
    // Up recalls the line typed before.
    tmux.tmux(&["send-keys", "Up"]);
    tmux.wait_screen("the recalled line", |s| last_line(s) == "> half typed");
}

#[test]
fn a_line_arriving_in_one_read_is_taken_whole() {
    let srv = server();
    let (host, port) = (srv.addr.ip().to_string(), srv.addr.port().to_string());
    let Some(tmux) = Tmux::start(&[("NO_COLOR", None)], &[CLIENT_BIN, "alice", &host, &port]) else { return };
    tmux.wait_screen("the welcome", |s| s.contains("Welcome, alice!") && last_line(s) == ">");
    let mut bob = Client::login_new(srv.addr, WireFormat::Binary, "bob");
    // The whole line and its Enter in one send-keys: one write to the terminal.
    tmux.tmux(&["send-keys", "pasted in one go", "Enter"]);
    let got = bob.recv_until(|m| matches!(m, crate::support::ServerMsg::RoomMsg { from, .. } if from == "alice"));
    assert!(
        matches!(got, crate::support::ServerMsg::RoomMsg { ref text, .. } if text == "pasted in one go"),
        "{got:?}"
    );
    tmux.wait_screen("an empty prompt again", |s| {
        last_line(s) == ">" || last_line(s).ends_with("alice: pasted in one go")
    });
}

#[test]
fn colours_on_a_terminal_and_none_under_no_color() {
    let srv = server();
    let (host, port) = (srv.addr.ip().to_string(), srv.addr.port().to_string());
    let Some(colour) = Tmux::start(&[("NO_COLOR", None)], &[CLIENT_BIN, "alice", &host, &port]) else { return };
    let Some(plain) = Tmux::start(&[("NO_COLOR", Some("1"))], &[CLIENT_BIN, "carol", &host, &port]) else { return };
    for t in [&colour, &plain] {
        t.wait_screen("the welcome", |s| s.contains("Welcome,") && last_line(s) == ">");
    }
    let mut bob = Client::login_new(srv.addr, WireFormat::Binary, "bob");
    bob.send(&crate::support::ClientMsg::PrivateMsg { to: "alice".into(), text: "psst".into() });
    bob.send(&crate::support::ClientMsg::PrivateMsg { to: "carol".into(), text: "psst".into() });
    for t in [&colour, &plain] {
        t.wait_screen("the private message", |s| s.contains("[PM from bob] psst"));
    }
    let coloured = colour.screen(true);
    assert!(coloured.contains("\x1b[35m"), "private messages are magenta:\n{coloured:?}");
    assert!(coloured.contains("\x1b[36m"), "notices are cyan:\n{coloured:?}");
    let bare = plain.screen(true);
    for sgr in ["\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[35m", "\x1b[36m"] {
        assert!(!bare.contains(sgr), "NO_COLOR: no {sgr:?} on screen:\n{bare:?}");
    }
    assert!(bare.contains("[PM from bob] psst"));
}

#[test]
fn a_kick_leaves_the_terminal_as_it_was() {
    let mut cfg = crate::support::ServerConfig::loopback();
    cfg.services.admin_user = Some("root".into());
    cfg.services.admin_password = Some("hunter22".into());
    let srv = crate::support::spawn(cfg).expect("server");
    let script = format!("{CLIENT_BIN} alice {} {}; echo exit=$?; stty -a; sleep 60", srv.addr.ip(), srv.addr.port());
    let Some(tmux) = Tmux::start(&[("NO_COLOR", Some("1"))], &["sh", "-c", &script]) else { return };
    tmux.wait_screen("the welcome", |s| s.contains("Welcome, alice!") && last_line(s) == ">");
    tmux.type_keys("> ", "half");
    let mut root = Client::connect(srv.addr, WireFormat::Json);
    let login =
        crate::support::ClientMsg::Login { username: "root".into(), credential: Some("hunter22".into()), since: None };
    root.send(&login);
    root.recv_until(|m| matches!(m, crate::support::ServerMsg::LoginAck { .. }));
    root.send(&crate::support::ClientMsg::Admin { command: "kick alice 1m".into() });
    let screen = tmux.wait_screen("the exit and stty", |s| s.contains("exit=1") && s.contains("speed"));
    assert!(screen.contains("banned by an administrator for 60 s") && screen.contains("not reconnecting"), "{screen}");
    // The editor's raw mode is undone: line editing and echo are back on.
    let words: Vec<&str> = screen.split_whitespace().collect();
    assert!(words.contains(&"icanon") && words.contains(&"echo"), "terminal left in raw mode:\n{screen}");
}
