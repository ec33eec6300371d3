//! How the terminal client shows each server message: pure functions from a [`ServerMsg`] to
//! the text to print, so that every format is unit-tested.
//!
//! ```text
//! [general] bob: hi                 live room message
//! [general] (history) bob: hi       replayed on joining
//! [PM from bob] hi                  private message to me
//! [PM to bob] hi                    the server's echo of a private message I sent
//! * alice joined general            SYSTEM_MSG presence notices
//! * a, b and 48 others joined general  PRESENCE (a join storm, coalesced)
//! ! error (UNKNOWN_USER): text      ERROR_MSG
//! ```

use super::style::Kind;
use crate::protocol::{ErrorCode, FileEntry, ServerMsg, SystemKind};
use std::borrow::Cow;
use std::fmt::Write as _;

/// What kind of line `msg` makes for the user `me`, which decides its colour.
pub fn kind_of(msg: &ServerMsg<'_>, me: &str) -> Kind {
    match msg {
        ServerMsg::RoomMsg { from, .. } if from.as_ref() == me => Kind::Own,
        ServerMsg::PrivateMsgDelivery { .. } => Kind::Pm,
        ServerMsg::SystemMsg { kind: SystemKind::Alert, .. } => Kind::Alert,
        ServerMsg::LoginReject { .. } | ServerMsg::ErrorMsg { .. } | ServerMsg::ReplayEnd { .. } => Kind::Error,
        ServerMsg::HistoryEnd { .. } => Kind::Notice,
        ServerMsg::SystemMsg { .. }
        | ServerMsg::JoinRoom { .. }
        | ServerMsg::Time { .. }
        | ServerMsg::FileAvailable { .. }
        | ServerMsg::LoginAck { .. } => Kind::Notice,
        _ => Kind::Plain,
    }
}

/// The text to print for `msg`, seen by the user `me`; `None` for messages with nothing to show
/// (ROOM_MSG_ACK, PING, PONG). Multi-line results (lists) contain `\n` but no trailing newline.
///
/// A ROOM_MSG_ACK shows nothing here because it lacks the text; the interactive client prints
/// the acknowledged message itself from what it sent (see [`own_message`]).
pub fn render(msg: &ServerMsg<'_>, me: &str) -> Option<String> {
    let s = match msg {
        ServerMsg::LoginAck { username, room } => {
            format!("Welcome, {username}! You are in room '{room}'; type /help for commands.")
        }
        ServerMsg::LoginReject { code, reason, .. } => {
            format!("! login rejected ({}): {reason}", code_name(*code))
        }
        ServerMsg::RoomMsg { room, from, text, history, .. } => {
            let tag = if *history { " (history)" } else { "" };
            format!("[{room}]{tag} {from}: {text}")
        }
        ServerMsg::PrivateMsgDelivery { from, to, text, .. } => {
            if from.as_ref() == me {
                format!("[PM to {to}] {text}")
            } else {
                format!("[PM from {from}] {text}")
            }
        }
        ServerMsg::JoinRoom { room } => format!("* you are now in '{room}'"),
        ServerMsg::ListUsers { room, users, .. } => render_users(room, users, me),
        ServerMsg::ListRooms { rooms, .. } => render_rooms(rooms),
        ServerMsg::SystemMsg { kind, room, user, text } => render_system(*kind, room, user, text),
        ServerMsg::Presence { room, joined, joined_more, left, left_more } => {
            render_presence(room, (joined, *joined_more), (left, *left_more))
        }
        ServerMsg::ErrorMsg { code, text } => format!("! error ({}): {text}", code_name(*code)),
        ServerMsg::Time { ts_ms } => format!("* server time: {}", crate::services::console::format_utc(*ts_ms)),
        ServerMsg::Admin { text } => format!("[admin] {text}"),
        ServerMsg::FileAvailable { id, name, size, from, room } => file_available(*id, name, *size, from, room, None),
        ServerMsg::ListFiles { room, files, .. } => render_files(room, files, |id| id.to_string()),
        // File transfers are driven (and their progress shown) by the client's transfer code.
        ServerMsg::FileAccept { .. } | ServerMsg::FileChunk { .. } | ServerMsg::FileDone { .. } => return None,
        ServerMsg::RoomMsgAck { .. } | ServerMsg::Ping { .. } | ServerMsg::Pong { .. } => return None,
        ServerMsg::ReplayEnd { room, lost, gap, .. } => return gap.then(|| replay_gap(room, *lost)),
        ServerMsg::HistoryEnd { room, count, more, .. } => history_end(room, *count, *more),
    };
    Some(s)
}

/// `* bob shared file 1234567890123456 'a.txt' (1.5 KiB) in general; /get 3456 to download`:
/// with `short`, the short id to type; without, the id.
pub fn file_available(id: u64, name: &str, size: u64, from: &str, room: &str, short: Option<&str>) -> String {
    let get = short.map_or_else(|| id.to_string(), str::to_string);
    format!("* {from} shared file {id} '{name}' ({}) in {room}; /get {get} to download", human_size(size))
}

/// `Files in general (2):` then one line per file, numbered for `/get #N`, with the id to
/// type that `short` gives: `  #1  3456  notes.txt  1.2 KiB  from bob`.
pub fn render_files(room: &str, files: &[FileEntry<'_>], short: impl Fn(u64) -> String) -> String {
    let mut s = format!("Files in {room} ({}):", files.len());
    if files.is_empty() {
        s.push_str(" none");
    }
    let shorts: Vec<String> = files.iter().map(|f| short(f.id)).collect();
    let width = shorts.iter().map(String::len).max().unwrap_or(0);
    for (i, (f, id)) in files.iter().zip(&shorts).enumerate() {
        let _ = write!(s, "\n  #{:<3} {id:>width$}  {}  {}  from {}", i + 1, f.name, human_size(f.size), f.from);
    }
    if !files.is_empty() {
        s.push_str("\n  (/get #N, /get ID or /get NAME)");
    }
    s
}

/// What REPLAY_END with the gap flag means to the user: messages of `room` from while they
/// were away that the server's history no longer holds (`lost` of them, where known).
pub fn replay_gap(room: &str, lost: u64) -> String {
    match lost {
        0 => format!("! gap: some messages of {room} from while you were away are no longer in the server's history"),
        1 => format!("! gap: 1 message of {room} from while you were away is no longer in the server's history"),
        n => format!("! gap: {n} messages of {room} from while you were away are no longer in the server's history"),
    }
}

/// The line closing a `/history` page: how many earlier messages came, and whether there are more.
fn history_end(room: &str, count: u64, more: bool) -> String {
    match (count, more) {
        (0, _) => format!("* no earlier messages in {room}"),
        (n, true) => format!("* {n} earlier messages of {room} above; /history for more"),
        (n, false) => format!("* {n} earlier messages of {room} above; that is the start of its history"),
    }
}

/// `512 B`, `1.5 KiB`, `3.0 MiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The line for a room message I sent, once the server acknowledged it: same format as
/// everyone else's messages, so my own lines read like the room's.
pub fn own_message(room: &str, me: &str, text: &str) -> String {
    format!("[{room}] {me}: {text}")
}

/// The greeting printed on connecting: what LOGIN_ACK shows for `me` in `room`.
pub fn welcome(me: &str, room: &str) -> String {
    let ack = ServerMsg::LoginAck { username: me.into(), room: room.into() };
    render(&ack, me).unwrap_or_default()
}

/// The line after an ERROR_MSG that refused one of my room messages, naming it by its start.
pub fn not_delivered(text: &str) -> String {
    format!("  (your message \"{}\" was not delivered)", preview(text))
}

/// The start of a long message, for notices about it: at most 40 characters, then `...`.
pub fn preview(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// `Users in general (3): alice (you), bob, carol`
fn render_users(room: &str, users: &[impl AsRef<str>], me: &str) -> String {
    let mut s = format!("Users in {room} ({}): ", users.len());
    for (i, u) in users.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(u.as_ref());
        if u.as_ref() == me {
            s.push_str(" (you)");
        }
    }
    if users.is_empty() {
        s.push_str("nobody");
    }
    s
}

/// `Rooms (2):` then one aligned line per room: `  general    3 users`.
fn render_rooms(rooms: &[(impl AsRef<str>, u32)]) -> String {
    let mut s = format!("Rooms ({}):", rooms.len());
    let width = rooms.iter().map(|(r, _)| r.as_ref().chars().count()).max().unwrap_or(0);
    for (room, n) in rooms {
        let room = room.as_ref();
        let pad = width - room.chars().count();
        let noun = if *n == 1 { "user" } else { "users" };
        let _ = write!(s, "\n  {room}{:pad$}  {n} {noun}", "");
    }
    s
}

/// Presence notices are built from kind, user and room; the server's text is the fallback
/// (and the body of INFO and ALERT notices).
fn render_system(kind: SystemKind, room: &str, user: &str, text: &str) -> String {
    if user.is_empty() || matches!(kind, SystemKind::Info | SystemKind::Alert) {
        return match kind {
            SystemKind::Alert => format!("*** ALERT: {text}"),
            _ => format!("* {text}"),
        };
    }
    match kind {
        SystemKind::Join => format!("* {user} joined {room}"),
        SystemKind::Leave => format!("* {user} left {room}"),
        SystemKind::Disconnect => format!("* {user} disconnected from {room}"),
        _ => format!("* {text}"),
    }
}

/// A coalesced PRESENCE notice: `* alice, bob and 48 others joined general; carol left`.
fn render_presence(room: &str, joined: (&[Cow<'_, str>], u64), left: (&[Cow<'_, str>], u64)) -> String {
    let joined = names_and_more(joined.0, joined.1);
    let left = names_and_more(left.0, left.1);
    match (joined.is_empty(), left.is_empty()) {
        (false, true) => format!("* {joined} joined {room}"),
        (true, false) => format!("* {left} left {room}"),
        _ => format!("* {joined} joined {room}; {left} left"),
    }
}

/// `alice`, `alice and bob`, `a, b and c`, `alice, bob and 48 others`, `7 users`; empty for none.
fn names_and_more(names: &[Cow<'_, str>], more: u64) -> String {
    match (names, more) {
        ([], 0) => String::new(),
        ([], n) => format!("{n} users"),
        ([one], 0) => one.to_string(),
        ([rest @ .., last], 0) => format!("{} and {last}", rest.join(", ")),
        (some, 1) => format!("{} and 1 other", some.join(", ")),
        (some, n) => format!("{} and {n} others", some.join(", ")),
    }
}

/// The error code's protocol name, e.g. `USERNAME_TAKEN`, derived from the variant name so that
/// codes added later get a name without touching this function.
pub fn code_name(code: ErrorCode) -> String {
    let debug = format!("{code:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cow<'_, str> {
        Cow::Borrowed(s)
    }

    fn show(m: ServerMsg<'_>) -> String {
        render(&m, "alice").expect("should render")
    }

    #[test]
    fn coalesced_presence_reads_like_a_sentence() {
        let p = |joined: &[&'static str], joined_more, left: &[&'static str], left_more| {
            show(ServerMsg::Presence {
                room: c("general"),
                joined: joined.iter().map(|s| c(s)).collect(),
                joined_more,
                left: left.iter().map(|s| c(s)).collect(),
                left_more,
            })
        };
        assert_eq!(p(&["alice", "bob"], 48, &[], 0), "* alice, bob and 48 others joined general");
        assert_eq!(p(&["alice"], 1, &[], 0), "* alice and 1 other joined general");
        assert_eq!(p(&["a", "b", "c"], 0, &[], 0), "* a, b and c joined general");
        assert_eq!(p(&[], 0, &["carol"], 0), "* carol left general");
        assert_eq!(p(&["dave"], 0, &[], 7), "* dave joined general; 7 users left");
    }

    #[test]
    fn files() {
        let m = ServerMsg::FileAvailable { id: 7, name: c("a.txt"), size: 1536, from: c("bob"), room: c("general") };
        assert_eq!(show(m), "* bob shared file 7 'a.txt' (1.5 KiB) in general; /get 7 to download");
        let long = file_available(1_234_567_890_123_456, "a", 1, "bob", "general", Some("3456"));
        assert_eq!(long, "* bob shared file 1234567890123456 'a' (1 B) in general; /get 3456 to download");
        let files = vec![FileEntry { id: 7, name: c("a.txt"), size: 10, from: c("bob") }];
        assert_eq!(
            show(ServerMsg::ListFiles { room: c("general"), files, next: None }),
            "Files in general (1):\n  #1   7  a.txt  10 B  from bob\n  (/get #N, /get ID or /get NAME)"
        );
        assert_eq!(show(ServerMsg::ListFiles { room: c("x"), files: vec![], next: None }), "Files in x (0): none");
        assert_eq!(render(&ServerMsg::FileAccept { id: 1 }, "alice"), None);
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn room_messages() {
        let msg = |history| ServerMsg::RoomMsg {
            id: 1,
            ts_ms: 0,
            room: c("general"),
            from: c("bob"),
            text: c("hi"),
            history,
        };
        assert_eq!(show(msg(false)), "[general] bob: hi");
        assert_eq!(show(msg(true)), "[general] (history) bob: hi");
        assert_eq!(own_message("general", "alice", "yo"), "[general] alice: yo");
    }

    #[test]
    fn private_messages_by_direction() {
        let to_me = ServerMsg::PrivateMsgDelivery { ts_ms: 0, from: c("bob"), to: c("alice"), text: c("hi") };
        assert_eq!(show(to_me), "[PM from bob] hi");
        let echo = ServerMsg::PrivateMsgDelivery { ts_ms: 0, from: c("alice"), to: c("bob"), text: c("hi") };
        assert_eq!(show(echo), "[PM to bob] hi");
    }

    #[test]
    fn login_and_join() {
        let ack = show(ServerMsg::LoginAck { username: c("alice"), room: c("general") });
        assert!(ack.contains("alice") && ack.contains("general") && ack.contains("/help"), "{ack}");
        let rej = ServerMsg::LoginReject { code: ErrorCode::UsernameTaken, reason: c("in use"), retry_ms: None };
        assert_eq!(show(rej), "! login rejected (USERNAME_TAKEN): in use");
        assert_eq!(show(ServerMsg::JoinRoom { room: c("tech") }), "* you are now in 'tech'");
    }

    #[test]
    fn system_kinds() {
        let sys = |kind, user, text| ServerMsg::SystemMsg { kind, room: c("general"), user: c(user), text: c(text) };
        assert_eq!(show(sys(SystemKind::Join, "bob", "")), "* bob joined general");
        assert_eq!(show(sys(SystemKind::Leave, "bob", "")), "* bob left general");
        assert_eq!(show(sys(SystemKind::Disconnect, "bob", "x")), "* bob disconnected from general");
        assert_eq!(show(sys(SystemKind::Info, "", "welcome")), "* welcome");
        assert_eq!(show(sys(SystemKind::Alert, "admin", "reboot at 5")), "*** ALERT: reboot at 5");
        // No user: fall back to the server's text.
        assert_eq!(show(sys(SystemKind::Join, "", "someone came")), "* someone came");
    }

    #[test]
    fn errors() {
        let e = ServerMsg::ErrorMsg { code: ErrorCode::UnknownUser, text: c("no such user: zed") };
        assert_eq!(show(e), "! error (UNKNOWN_USER): no such user: zed");
        assert_eq!(code_name(ErrorCode::RateLimited), "RATE_LIMITED");
        assert_eq!(code_name(ErrorCode::Internal), "INTERNAL");
        assert_eq!(code_name(ErrorCode::BadUtf8), "BAD_UTF8");
    }

    #[test]
    fn lists() {
        let users = ServerMsg::ListUsers { room: c("general"), users: vec![c("alice"), c("bob")], next: None };
        assert_eq!(show(users), "Users in general (2): alice (you), bob");
        let empty = ServerMsg::ListUsers { room: c("x"), users: vec![], next: None };
        assert_eq!(show(empty), "Users in x (0): nobody");
        let rooms = ServerMsg::ListRooms { rooms: vec![(c("general"), 3), (c("tech"), 1)], next: None };
        assert_eq!(show(rooms), "Rooms (2):\n  general  3 users\n  tech     1 user");
        assert_eq!(show(ServerMsg::ListRooms { rooms: vec![], next: None }), "Rooms (0):");
    }

    #[test]
    fn own_lines() {
        assert_eq!(welcome("alice", "general"), "Welcome, alice! You are in room 'general'; type /help for commands.");
        assert_eq!(not_delivered("hi"), "  (your message \"hi\" was not delivered)");
        let long = not_delivered(&"x".repeat(41));
        assert_eq!(long, format!("  (your message \"{}...\" was not delivered)", "x".repeat(40)));
    }

    #[test]
    fn resume_and_scroll_back_markers() {
        let end = |gap, lost| ServerMsg::ReplayEnd { room: c("general"), last: 9, lost, gap };
        assert_eq!(render(&end(false, 0), "alice"), None, "a complete replay needs no line");
        assert_eq!(
            show(end(true, 12)),
            "! gap: 12 messages of general from while you were away are no longer in the server's history"
        );
        assert!(show(end(true, 0)).starts_with("! gap: some messages of general"));
        assert_eq!(kind_of(&end(true, 1), "alice"), Kind::Error);
        let page = |count, more| ServerMsg::HistoryEnd { room: c("general"), before: 50, count, more };
        assert_eq!(show(page(50, true)), "* 50 earlier messages of general above; /history for more");
        assert_eq!(show(page(3, false)), "* 3 earlier messages of general above; that is the start of its history");
        assert_eq!(show(page(0, false)), "* no earlier messages in general");
    }

    #[test]
    fn kinds_decide_colours() {
        let room =
            |from| ServerMsg::RoomMsg { id: 1, ts_ms: 0, room: c("g"), from: c(from), text: c("x"), history: false };
        assert_eq!(kind_of(&room("alice"), "alice"), Kind::Own);
        assert_eq!(kind_of(&room("bob"), "alice"), Kind::Plain);
        let pm = ServerMsg::PrivateMsgDelivery { ts_ms: 0, from: c("bob"), to: c("alice"), text: c("hi") };
        assert_eq!(kind_of(&pm, "alice"), Kind::Pm);
        let err = ServerMsg::ErrorMsg { code: ErrorCode::UnknownUser, text: c("x") };
        assert_eq!(kind_of(&err, "alice"), Kind::Error);
        let alert = ServerMsg::SystemMsg { kind: SystemKind::Alert, room: c(""), user: c(""), text: c("x") };
        assert_eq!(kind_of(&alert, "alice"), Kind::Alert);
        let join = ServerMsg::SystemMsg { kind: SystemKind::Join, room: c("g"), user: c("bob"), text: c("") };
        assert_eq!(kind_of(&join, "alice"), Kind::Notice);
    }

    #[test]
    fn silent_messages() {
        assert_eq!(render(&ServerMsg::RoomMsgAck { id: 1, ts_ms: 2 }, "alice"), None);
        assert_eq!(render(&ServerMsg::Ping { token: 1 }, "alice"), None);
        assert_eq!(render(&ServerMsg::Pong { token: 1 }, "alice"), None);
    }
}
