//! Staying connected: when the connection drops, reconnect with back-off (1 s, doubling to 30 s,
//! with jitter; at most 4 s while the name is refused as taken), trying each server of the list
//! in turn, log in again and rejoin the room,
//! while typed lines still work (`/quit`).
//!
//! Resuming: the login asks for the landing room's messages after the last id seen there, and
//! the JOIN_ROOM back to the room we were in asks for that room's messages after the last id
//! seen in it; the server replays only those, then REPLAY_END says whether anything was lost
//! (docs/PROTOCOL.md, "Resume"). Until then, what belongs to the landing room (we are only
//! passing through) is not shown. A replayed message already shown is dropped (`rooms.rs`).

use super::terminal::Input;
use super::Connected;
use super::{App, Ending, Flow};
use crate::client::ClientError;
use crate::protocol::{ClientMsg, ErrorCode, ServerMsg};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A reconnection on its way back to `room`.
#[derive(Debug)]
pub(super) struct Resume {
    /// The room we were in.
    room: String,
    /// Replayed messages of `room` received so far.
    replayed: u64,
    /// A REPLAY_END for `room` will come (we sent "since"); otherwise the JOIN_ROOM reply ends it.
    awaiting_end: bool,
}

/// Back-off between reconnection attempts: 1 s, doubling, at most 30 s.
pub(super) struct Backoff {
    /// The un-jittered delay of the next attempt. Invariant: `FIRST <= next <= MAX`.
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    /// The longest delay; also how long a connection must last for the back-off to start over.
    const MAX: Duration = Duration::from_secs(30);
    /// The longest delay while the name is refused as taken: that clears by itself soon (the
    /// server notices the lost connection; on a cluster, the dead node's claim expires within
    /// `--cluster-name-ttl`), so the client comes back within about this long of it.
    const TAKEN_MAX: Duration = Duration::from_secs(4);

    pub(super) fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    /// The un-jittered delay sequence: 1, 2, 4, 8, 16, 30, 30, ... seconds.
    fn next_base(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        base
    }

    /// The next delays stay at most `max`.
    fn cap(&mut self, max: Duration) {
        self.next = self.next.min(max).max(Self::FIRST);
    }

    /// The delay before the next attempt, shortened by up to 10% of jitter so that many
    /// clients dropped together by a server restart do not all return in the same instant.
    fn next_delay(&mut self) -> Duration {
        let base = self.next_base();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        base - base / 10 * (nanos % 1000) / 1000
    }
}

/// What a failed (but retried) reconnection prints. A refused name is expected for a while:
/// the server may not have noticed the old connection is gone, or, on a cluster, the node that
/// died still holds the name until its claim expires (`--cluster-name-ttl`).
fn failed_line(e: &ClientError) -> String {
    match e {
        ClientError::LoginRejected { code: ErrorCode::UsernameTaken, .. } => format!(
            "! reconnect failed: {e}; still held by the lost session (on a cluster, by the node that died, until its hold expires); retrying"
        ),
        _ => format!("! reconnect failed: {e}"),
    }
}

impl App {
    /// The connection ended unexpectedly. Returns how the session ends if the client should stop.
    pub(super) fn on_closed(&mut self, e: ClientError) -> Option<Ending> {
        self.session = None;
        self.outstanding.clear();
        let kicked = self.kicked.take();
        if kicked.is_some() || !self.config.reconnect {
            // The session ends: the last lines go straight to the terminal.
            self.out.finish();
        }
        self.drop_transfers();
        self.out.line(&format!("! disconnected: {e}"));
        if let Some(reason) = kicked {
            self.out.line(&format!("*** removed by an administrator: {reason}; not reconnecting"));
            return Some(Ending::Lost);
        }
        if !self.config.reconnect {
            return Some(Ending::Lost);
        }
        // A connection that stayed up a while starts the back-off over; one that drops right
        // after each login keeps doubling it.
        if self.connected_at.elapsed() >= Backoff::MAX {
            self.backoff = Backoff::new();
        }
        self.reconnect_loop()
    }

    /// Reconnects with back-off until it works, the user quits, or the failure is permanent.
    fn reconnect_loop(&mut self) -> Option<Ending> {
        loop {
            let delay = self.backoff.next_delay();
            self.out.line(&format!("* reconnecting in {:.1} s (type /quit to give up)", delay.as_secs_f32()));
            if self.wait(delay) == Flow::Quit {
                return Some(Ending::Quit);
            }
            let since = self.rooms.newest(&self.landing);
            match super::open(&self.config, false, self.server, since) {
                Ok(conn) => {
                    self.resume(conn);
                    return None;
                }
                Err(e) if e.is_transient() => {
                    self.out.line(&failed_line(&e));
                    if matches!(e, ClientError::LoginRejected { code: ErrorCode::UsernameTaken, .. }) {
                        self.backoff.cap(Backoff::TAKEN_MAX);
                    }
                }
                Err(e) => {
                    self.out.finish();
                    self.out.line(&format!("! giving up: {}", e.describe(self.config.opts.tls.as_ref())));
                    return Some(Ending::Lost);
                }
            }
        }
    }

    /// Waits `delay` while still answering typed lines (so /quit works while offline).
    fn wait(&mut self, delay: Duration) -> Flow {
        let until = Instant::now() + delay;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Err(RecvTimeoutError::Timeout) => return Flow::Continue,
                Err(RecvTimeoutError::Disconnected) | Ok(Input::Eof) => return Flow::Quit,
                Ok(Input::Line(line)) => {
                    if self.on_line(&line) == Flow::Quit {
                        return Flow::Quit;
                    }
                }
                Ok(Input::Net(_)) | Ok(Input::Upload(_)) => {}
            }
        }
    }

    /// Logged in again (resuming the landing room after its last id seen): go back to the room
    /// we were in, asking for what came after the last id seen there.
    fn resume(&mut self, conn: Connected) {
        let room = std::mem::replace(&mut self.room, conn.info.room.clone());
        self.landing = conn.info.room;
        self.me = conn.info.username;
        self.server = conn.index;
        self.out.line(&format!("* reconnected to {} as {}", conn.opts.addr_string(), self.me));
        self.attach(conn.client);
        let since = self.rooms.newest(&room);
        if room != self.room {
            self.send(ClientMsg::JoinRoom { room: room.clone().into(), since });
            self.resuming = Some(Resume { room, replayed: 0, awaiting_end: since.is_some() });
        } else if since.is_some() {
            self.resuming = Some(Resume { room, replayed: 0, awaiting_end: true });
        }
    }

    /// While going back to our room after a reconnection: true for what belongs to another room
    /// (the landing room's replay, presence and messages), which is not shown; the JOIN_ROOM
    /// reply ends a resume that expects no REPLAY_END.
    pub(super) fn hidden_while_resuming(&mut self, msg: &ServerMsg<'static>) -> bool {
        let Some(r) = self.resuming.as_mut() else { return false };
        match msg {
            ServerMsg::RoomMsg { room, .. } => *room != r.room,
            ServerMsg::SystemMsg { room, .. } | ServerMsg::ReplayEnd { room, .. } => {
                !room.is_empty() && *room != r.room
            }
            ServerMsg::JoinRoom { room } if *room == r.room && !r.awaiting_end => {
                self.resuming = None;
                false
            }
            _ => false,
        }
    }

    /// A replayed message of `room` was shown: counted for the resume's summary.
    pub(super) fn count_replayed(&mut self, room: &str) {
        if let Some(r) = self.resuming.as_mut().filter(|r| r.room == room) {
            r.replayed += 1;
        }
    }

    /// REPLAY_END for `room`: the end of a resume says how it went (a gap is shown by the
    /// message's own line).
    pub(super) fn replay_ended(&mut self, room: &str) -> Option<String> {
        let r = self.resuming.take_if(|r| r.room == room)?;
        Some(match r.replayed {
            0 => format!("* back in {room}; nothing new while you were away"),
            1 => format!("* back in {room}; 1 message from while you were away is above"),
            n => format!("* back in {room}; {n} messages from while you were away are above"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        let mut b = Backoff::new();
        let secs: Vec<u64> = (0..8).map(|_| b.next_base().as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        let mut b = Backoff::new();
        let d = b.next_delay();
        assert!(d <= Duration::from_secs(1) && d >= Duration::from_millis(900), "{d:?}");
    }

    #[test]
    fn a_name_still_held_is_retried_at_most_every_four_seconds() {
        let mut b = Backoff::new();
        let mut secs = Vec::new();
        for _ in 0..5 {
            secs.push(b.next_base().as_secs());
            b.cap(Backoff::TAKEN_MAX);
        }
        assert_eq!(secs, [1, 2, 4, 4, 4]);
    }

    #[test]
    fn a_name_still_held_is_explained_as_expected() {
        let taken = ClientError::LoginRejected { code: ErrorCode::UsernameTaken, reason: "taken".into() };
        assert!(failed_line(&taken).contains("still held"), "{}", failed_line(&taken));
        assert!(!failed_line(&ClientError::Closed).contains("held"));
    }
}

#[cfg(test)]
mod resume_tests {
    use super::*;
    use crate::protocol::SystemKind;

    fn msg(room: &str, id: u64, history: bool) -> ServerMsg<'static> {
        let (room, text) = (room.to_string().into(), format!("m{id}").into());
        ServerMsg::RoomMsg { id, ts_ms: 0, room, from: "bob".into(), text, history }
    }

    #[test]
    fn going_back_hides_the_landing_room_and_reports_the_gap() {
        let mut a = super::super::tests::app();
        a.rooms.first_sight("tech", 5);
        a.resuming = Some(Resume { room: "tech".into(), replayed: 0, awaiting_end: true });
        a.on_message(msg("general", 40, true));
        let join =
            ServerMsg::SystemMsg { kind: SystemKind::Join, room: "general".into(), user: "x".into(), text: "".into() };
        a.on_message(join);
        a.on_message(ServerMsg::ReplayEnd { room: "general".into(), last: 40, lost: 0, gap: false });
        assert!(a.out.take().is_empty(), "the landing room is only passed through");
        a.on_message(ServerMsg::JoinRoom { room: "tech".into() });
        a.on_message(msg("tech", 5, true));
        a.on_message(msg("tech", 6, true));
        a.on_message(ServerMsg::ReplayEnd { room: "tech".into(), last: 6, lost: 2, gap: true });
        let lines = a.out.take();
        assert_eq!(lines[..2], ["* you are now in 'tech'", "[tech] (history) bob: m6"]);
        assert!(lines[2].starts_with("! gap: 2 messages of tech"), "{lines:?}");
        assert_eq!(lines[3], "* back in tech; 1 message from while you were away is above");
        assert!(a.resuming.is_none());
        // Live messages of the room show as usual afterwards.
        a.on_message(msg("tech", 7, false));
        assert_eq!(a.out.take(), ["[tech] bob: m7"]);
    }

    #[test]
    fn without_since_the_join_reply_ends_the_resume() {
        let mut a = super::super::tests::app();
        a.resuming = Some(Resume { room: "tech".into(), replayed: 0, awaiting_end: false });
        a.on_message(msg("general", 1, true));
        a.on_message(ServerMsg::JoinRoom { room: "tech".into() });
        assert!(a.resuming.is_none());
        a.on_message(msg("general", 2, false));
        assert_eq!(a.out.take(), ["* you are now in 'tech'", "[general] bob: m2"]);
    }
}
