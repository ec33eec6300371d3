//! Accepting connections (with fd-exhaustion back-off), deadlines, and graceful shutdown.

use super::Server;
use crate::connection::{CloseReason, Connection};
use crate::net::{is_fd_exhaustion, is_transient_accept_error, would_block};
use crate::protocol::{ErrorCode, ServerMsg, SystemKind};
use crate::transport::Transport;
use mio::{Interest, Token};
use std::time::{Duration, Instant};

/// How long accepting pauses after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl Server {
    /// Accepts until the queue is empty (edge-triggered: no event comes for what is left).
    pub(super) fn accept_ready(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let (sock, peer) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if would_block(&e) => return,
                Err(e) if is_fd_exhaustion(&e) => {
                    // The pending connections stay in the kernel's queue; retry on a timer
                    // because no new readiness event will announce them.
                    self.totals.accept_refusals += 1;
                    if self.accept_paused_until.is_none() {
                        tracing::warn!("out of file descriptors ({e}); pausing accept for {ACCEPT_BACKOFF:?}");
                    }
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
                Err(e) if is_transient_accept_error(&e) => continue,
                Err(e) => {
                    tracing::error!("accept failed: {e}");
                    return;
                }
            };
            let _ = sock.set_nodelay(true);
            self.totals.connections_total += 1;
            if self.peers.conns.len() >= self.config.max_connections {
                self.totals.accept_refusals += 1;
                refuse_full(sock);
                continue;
            }
            let entry = self.peers.conns.vacant_entry();
            let key = entry.key();
            let mut conn = Connection::new(Transport::new(sock), peer, Instant::now());
            if let Err(e) = self.poll.registry().register(
                &mut conn.transport.sock,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::error!(%peer, "register failed: {e}");
                continue;
            }
            entry.insert(conn);
            tracing::debug!(%peer, key, "accepted");
        }
    }

    /// Resumes accepting after a back-off, and enforces login and handshake deadlines.
    pub(super) fn tick(&mut self) {
        let now = Instant::now();
        if self.accept_paused_until.is_some_and(|t| now >= t) {
            self.accept_paused_until = None;
            self.accept_ready();
        }
        if now.duration_since(self.last_tick) < super::TICK {
            return;
        }
        self.last_tick = now;
        let (login, handshake) = (self.config.login_timeout, self.config.tls.handshake_timeout);
        let expired: Vec<(usize, bool)> = self
            .peers
            .conns
            .iter()
            .filter(|(_, c)| c.session.is_none() && c.closing.is_none())
            .filter_map(|(k, c)| {
                let age = now.duration_since(c.opened);
                let hs = c.transport.is_handshaking() && age > handshake;
                (hs || age > login).then_some((k, hs))
            })
            .collect();
        for (key, in_handshake) in expired {
            if in_handshake {
                self.peers.conns[key].closing = Some(CloseReason::Timeout);
                self.peers.mark_dirty(key);
            } else {
                let text = format!("no login within {} s", login.as_secs());
                self.peers.close_with(key, CloseReason::Timeout, ErrorCode::Timeout, &text);
            }
        }
        if !self.peers.dirty.is_empty() {
            self.flush_and_close();
        }
    }

    /// Stops accepting, tells every client, flushes what it can, and closes everything.
    pub(super) fn shutdown(&mut self) {
        let _ = self.poll.registry().deregister(&mut self.listener);
        let notice = ServerMsg::SystemMsg {
            kind: SystemKind::Info,
            room: "".into(),
            user: "".into(),
            text: "the server is shutting down".into(),
        };
        let keys: Vec<usize> = self.peers.conns.iter().map(|(k, _)| k).collect();
        for &key in &keys {
            self.peers.send(key, &notice);
            if let Some(c) = self.peers.conns.get_mut(key) {
                c.closing.get_or_insert(CloseReason::Shutdown);
            }
        }
        self.flush_and_close();
        self.publish();
        tracing::info!("shut down; {} connections closed", keys.len());
    }
}

/// Tells a connection over the limit why it is refused, best effort, in JSON (the only format
/// a person at `nc` can read; binary clients see a non-ChatProto byte and report it).
fn refuse_full(mut sock: mio::net::TcpStream) {
    use std::io::Write;
    let mut buf = bytes::BytesMut::new();
    let msg = ServerMsg::ErrorMsg { code: ErrorCode::ServerFull, text: "the server is full".into() };
    crate::protocol::WireFormat::Json.encode_server(&msg, &mut buf);
    let _ = sock.write(&buf);
}
