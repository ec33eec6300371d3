//! History on the chat side: recording room messages (which acknowledges them) and replaying a
//! room's recent messages to a member who joins it.

use super::{Hub, Outbox};
use crate::protocol::{ErrorCode, ServerMsg};
use crate::services::history::{Ack, AckTo, DurableAcks, Entry};
use std::sync::Arc;

impl Hub {
    /// Stores a room message in the history. Without a durable store it is acknowledged at
    /// once; with one the acknowledgement waits for the store ([`Hub::durable`]).
    pub(super) fn record<O: Outbox>(
        &mut self,
        out: &mut O,
        key: usize,
        (id, ts_ms): (u64, u64),
        room: Arc<str>,
        from: Arc<str>,
        text: &str,
    ) {
        let history = &self.services.history;
        if !history.is_kept() {
            // No replay and no database: nothing to copy, the message is simply accepted.
            return out.send(key, &ServerMsg::RoomMsgAck { id, ts_ms });
        }
        let Some(session) = self.sessions.get(key).map(|s| s.id) else { return };
        let entry = Entry { id, ts_ms, room, from, text: text.into() };
        let queued = history.append(entry, AckTo { shard: self.shard, key, session });
        if !history.is_durable() {
            out.send(key, &ServerMsg::RoomMsgAck { id, ts_ms });
        } else if !queued {
            out.send_error(key, ErrorCode::Internal, &format!("message {id} could not be stored"));
        }
    }

    /// The store made these messages durable (or failed to): acknowledge their senders, if they
    /// are still in the session that sent them.
    pub(super) fn durable<O: Outbox>(&mut self, out: &mut O, d: DurableAcks) {
        for Ack { to, id, ts_ms } in d.acks {
            let key = to.key;
            if self.sessions.get(key).map(|s| s.id) != Some(to.session) {
                continue;
            }
            if d.ok {
                out.send(key, &ServerMsg::RoomMsgAck { id, ts_ms });
            } else {
                out.send_error(key, ErrorCode::Internal, &format!("message {id} could not be stored"));
            }
        }
    }

    /// Sends `key` the recent messages of `room`, flagged as history.
    pub(super) fn replay<O: Outbox>(&mut self, out: &mut O, key: usize, room: &str) {
        for e in self.services.history.recent(room) {
            let msg = ServerMsg::RoomMsg {
                id: e.id,
                ts_ms: e.ts_ms,
                room: (&*e.room).into(),
                from: (&*e.from).into(),
                text: (&*e.text).into(),
                history: true,
            };
            out.send(key, &msg);
        }
    }
}
