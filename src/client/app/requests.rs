//! Matching the server's replies to our requests. The server answers every request, in order,
//! with one reply or one ERROR_MSG; matching them up lets the client show its own room messages
//! once accepted and say which message an error dropped.

use std::collections::VecDeque;

/// A request sent and not yet answered.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Req {
    /// A room message, kept so it can be shown once acknowledged. (Its room is the current
    /// room when the ack arrives: replies come in order, so any earlier join is done by then.)
    Room {
        /// The text as sent.
        text: String,
    },
    /// Any other request (join, private message, lists).
    Other,
}

/// Requests sent and not yet answered, oldest first.
#[derive(Default)]
pub(super) struct Outstanding {
    /// Oldest first. Invariant: `queue.len() <= Outstanding::MAX`.
    queue: VecDeque<Req>,
}

impl Outstanding {
    /// Bound on remembered requests, so a server that does not answer cannot grow it forever.
    const MAX: usize = 1024;

    /// Remembers a request just sent, forgetting the oldest one when full.
    pub(super) fn push(&mut self, req: Req) {
        if self.queue.len() >= Self::MAX {
            self.queue.pop_front();
        }
        self.queue.push_back(req);
    }

    /// A reply arrived: returns the oldest request of its kind (`room` for ROOM_MSG_ACK),
    /// dropping older requests of the other kind, which can then never be answered.
    pub(super) fn answered(&mut self, room: bool) -> Option<Req> {
        while let Some(req) = self.queue.pop_front() {
            if matches!(req, Req::Room { .. }) == room {
                return Some(req);
            }
        }
        None
    }

    /// An ERROR_MSG arrived: it answers the oldest request.
    pub(super) fn failed(&mut self) -> Option<Req> {
        self.queue.pop_front()
    }

    /// The connection is gone: no reply will come for anything sent on it.
    pub(super) fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::render::preview;

    #[test]
    fn replies_match_requests_in_order() {
        let room = |t: &str| Req::Room { text: t.into() };
        let mut o = Outstanding::default();
        o.push(room("a"));
        o.push(Req::Other);
        o.push(room("b"));
        o.push(room("c"));
        assert_eq!(o.answered(true), Some(room("a")));
        assert_eq!(o.answered(false), Some(Req::Other));
        assert_eq!(o.failed(), Some(room("b")));
        assert_eq!(o.answered(true), Some(room("c")));
        assert_eq!(o.answered(true), None);
        // A reply of the other kind skips requests that can no longer be answered.
        o.push(Req::Other);
        o.push(room("d"));
        assert_eq!(o.answered(true), Some(room("d")));
        assert_eq!(preview("short"), "short");
        assert_eq!(preview(&"é".repeat(50)), format!("{}...", "é".repeat(40)));
    }

    #[test]
    fn a_silent_server_cannot_grow_the_queue() {
        let mut o = Outstanding::default();
        for i in 0..Outstanding::MAX + 5 {
            o.push(Req::Room { text: i.to_string() });
        }
        assert_eq!(o.queue.len(), Outstanding::MAX);
        assert_eq!(o.failed(), Some(Req::Room { text: "5".into() }));
        o.clear();
        assert_eq!(o.failed(), None);
    }
}
