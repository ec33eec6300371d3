//! Staying connected: when the connection drops, reconnect with back-off (1 s, doubling to 30 s,
//! with jitter), trying each server of the list in turn, log in again and rejoin the room,
//! while typed lines still work (`/quit`). Messages replayed on rejoining that were already
//! shown are dropped (see `rooms.rs`).

use super::terminal::Input;
use super::Connected;
use super::{App, Ending, Flow};
use crate::client::ClientError;
use crate::protocol::ClientMsg;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Back-off between reconnection attempts: 1 s, doubling, at most 30 s.
pub(super) struct Backoff {
    /// The un-jittered delay of the next attempt. Invariant: `FIRST <= next <= MAX`.
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    /// The longest delay; also how long a connection must last for the back-off to start over.
    const MAX: Duration = Duration::from_secs(30);

    pub(super) fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    /// The un-jittered delay sequence: 1, 2, 4, 8, 16, 30, 30, ... seconds.
    fn next_base(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        base
    }

    /// The delay before the next attempt, shortened by up to 10% of jitter so that many
    /// clients dropped together by a server restart do not all return in the same instant.
    fn next_delay(&mut self) -> Duration {
        let base = self.next_base();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        base - base / 10 * (nanos % 1000) / 1000
    }
}

impl App {
    /// The connection ended unexpectedly. Returns how the session ends if the client should stop.
    pub(super) fn on_closed(&mut self, e: ClientError) -> Option<Ending> {
        self.session = None;
        self.outstanding.clear();
        self.drop_transfers();
        self.out.line(&format!("! disconnected: {e}"));
        if let Some(reason) = self.kicked.take() {
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
            match super::open(&self.config, false, self.server, self.rooms.newest(&self.room)) {
                Ok(conn) => {
                    self.resume(conn);
                    return None;
                }
                Err(e) if e.is_transient() => self.out.line(&format!("! reconnect failed: {e}")),
                Err(e) => {
                    self.out.line(&format!("! giving up: {e}"));
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

    /// Logged in again: rejoin the room we were in and resume.
    fn resume(&mut self, conn: Connected) {
        let room = std::mem::replace(&mut self.room, conn.info.room);
        self.me = conn.info.username;
        self.server = conn.index;
        self.out.line(&format!("* reconnected to {} as {}", conn.opts.addr_string(), self.me));
        self.attach(conn.client);
        if room != self.room {
            self.send(ClientMsg::JoinRoom { room: room.into(), since: None });
        }
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
}
