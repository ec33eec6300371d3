//! Accepting connections (with fd-exhaustion back-off), deadlines, and graceful shutdown.

use super::Server;
use crate::chat::Outbox;
use crate::conn::limits::TokenBucket;
use crate::conn::{CloseReason, Connection, Phase};
use crate::net::transport::Transport;
use crate::net::{is_fd_exhaustion, is_transient_accept_error, would_block};
use crate::protocol::{ErrorCode, ServerMsg, SystemKind};
use mio::{Interest, Token};
use std::io::Write;
use std::time::{Duration, Instant};

/// How often the summary line is logged.
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// A PING token: the send time in ms, which a client may echo for round-trip measurement.
fn now_token() -> u64 {
    super::now_ms()
}

/// Fd-exhaustion warnings are logged at most this often.
const FD_WARNING_EVERY: Duration = Duration::from_secs(10);

/// How long accepting pauses after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl Server {
    /// Accepts until the queue is empty (edge-triggered: no event comes for what is left).
    pub(super) fn accept_ready(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((sock, peer)) => self.admit(sock, peer),
                Err(e) if would_block(&e) => return,
                Err(e) if is_fd_exhaustion(&e) => return self.out_of_fds(&e),
                Err(e) if is_transient_accept_error(&e) => continue,
                Err(e) => {
                    tracing::error!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Out of file descriptors: the pending connections stay in the kernel's queue, and
    /// accepting retries on a timer because no new readiness event will announce them.
    fn out_of_fds(&mut self, e: &std::io::Error) {
        self.totals.accept_refusals += 1;
        let now = Instant::now();
        if self.last_fd_warning.is_none_or(|t| now.duration_since(t) >= FD_WARNING_EVERY) {
            self.last_fd_warning = Some(now);
            tracing::warn!(
                "out of file descriptors ({e}); accept retries every {ACCEPT_BACKOFF:?} \
                 (logged at most every {FD_WARNING_EVERY:?}; refusals so far: {})",
                self.totals.accept_refusals
            );
        }
        self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
    }

    /// Takes in an accepted socket, or refuses it (server full, too many from its address).
    fn admit(&mut self, sock: mio::net::TcpStream, peer: std::net::SocketAddr) {
        let _ = sock.set_nodelay(true);
        self.totals.connections_total += 1;
        if self.peers.conns.len() >= self.config.max_connections {
            self.totals.accept_refusals += 1;
            return self.refuse(sock, "the server is full");
        }
        let ip = peer.ip();
        let counted = !(self.config.exempt_loopback && ip.is_loopback());
        if counted && !self.per_address.admit(ip, self.config.max_per_address) {
            self.totals.accept_refusals += 1;
            return self.refuse(sock, "too many connections from your address");
        }
        let entry = self.peers.conns.vacant_entry();
        let key = entry.key();
        let now = Instant::now();
        let bucket = TokenBucket::new(&self.config.rate_limit, now);
        let mut conn = Connection::new(Transport::new(sock), peer, now, bucket, counted);
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut conn.transport().sock, Token(key), interest) {
            tracing::error!(%peer, "register failed: {e}");
            if counted {
                self.per_address.release(ip);
            }
            return;
        }
        entry.insert(conn);
        tracing::debug!(%peer, key, "accepted");
    }

    /// Tells a connection over a limit why it is refused, best effort, and drops it.
    fn refuse(&mut self, mut sock: mio::net::TcpStream, why: &str) {
        let frame = self.peers.refusal(why);
        let _ = sock.write(&frame);
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
        self.totals.queued_bytes = self.peers.conns.iter().map(|(_, c)| c.queued() as u64).sum();
        self.idle_check(now);
        self.log_summary(now);
        let (login, handshake) = (self.config.login_timeout, self.config.tls.handshake_timeout);
        // Closing connections whose last frames could not be written in time: close them now.
        let lingering: Vec<usize> =
            self.peers.conns.iter().filter(|(_, c)| c.lingered_out(now)).map(|(k, _)| k).collect();
        lingering.into_iter().for_each(|k| self.peers.mark_dirty(k));
        let expired: Vec<(usize, bool)> = self
            .peers
            .conns
            .iter()
            .filter(|(_, c)| c.phase() == Phase::Opening)
            .filter_map(|(k, c)| {
                let age = now.duration_since(c.opened());
                let hs = c.is_handshaking() && age > handshake;
                (hs || age > login).then_some((k, hs))
            })
            .collect();
        for (key, in_handshake) in expired {
            if in_handshake {
                self.peers.start_closing(key, CloseReason::Timeout);
            } else {
                let text = format!("no login within {login:?}");
                self.peers.close_with(key, CloseReason::Timeout, ErrorCode::Timeout, &text);
            }
        }
        if self.peers.has_dirty() {
            self.flush_and_close();
        }
    }

    /// Pings connections that went quiet, and closes those that stayed quiet.
    fn idle_check(&mut self, now: Instant) {
        let (ping_after, close_after) = (self.config.idle_ping, self.config.idle_timeout);
        let mut ping = Vec::new();
        let mut close = Vec::new();
        for (key, c) in self.peers.conns.iter().filter(|(_, c)| c.phase() == Phase::Chatting) {
            let (quiet, ping_sent) = c.quiet(now);
            if quiet > close_after {
                close.push(key);
            } else if quiet > ping_after && !ping_sent {
                ping.push(key);
            }
        }
        for key in ping {
            self.peers.conns[key].pinged();
            self.peers.send(key, &ServerMsg::Ping { token: now_token() });
        }
        for key in close {
            let text = format!("nothing received for {close_after:?}");
            self.peers.close_with(key, CloseReason::Timeout, ErrorCode::Timeout, &text);
        }
    }

    /// One info line per interval with what changed; silent when nothing happened.
    fn log_summary(&mut self, now: Instant) {
        let (at, before) = self.last_summary;
        let secs = now.duration_since(at).as_secs_f64();
        if secs < SUMMARY_EVERY.as_secs_f64() {
            return;
        }
        let t = self.totals;
        if t.frames_in != before.frames_in || t.connections_total != before.connections_total {
            let rate = |a: u64, b: u64| (a - b) as f64 / secs;
            tracing::info!(
                connections = t.connections_open,
                users = self.hub.online(),
                msgs_per_s = format!("{:.0}", rate(t.frames_in, before.frames_in)),
                deliveries_per_s = format!("{:.0}", rate(t.deliveries, before.deliveries)),
                in_kib_per_s = format!("{:.1}", rate(t.bytes_in, before.bytes_in) / 1024.0),
                out_kib_per_s = format!("{:.1}", rate(t.bytes_out, before.bytes_out) / 1024.0),
                slow_consumers = t.slow_consumer_disconnects,
                rate_limited = t.rate_limited,
                "summary"
            );
        }
        self.last_summary = (now, t);
    }

    /// Stops accepting, tells every client, flushes what it can, and closes everything.
    pub(super) fn shutdown(&mut self) {
        let _ = self.poll.registry().deregister(&mut self.listener);
        self.hub.set_quiet();
        let notice = ServerMsg::SystemMsg {
            kind: SystemKind::Info,
            room: "".into(),
            user: "".into(),
            text: "the server is shutting down".into(),
        };
        let keys: Vec<usize> = self.peers.conns.iter().map(|(k, _)| k).collect();
        for &key in &keys {
            self.peers.send(key, &notice);
            self.peers.start_closing(key, CloseReason::Shutdown);
        }
        self.flush_and_close();
        self.publish();
        tracing::info!("shut down; {} connections closed", keys.len());
    }
}
