//! The seed features on the hub's side: authenticated login (open, passkey, accounts, admin),
//! history recording and replay, the results of off-loop work, and the admin command set.
//!
//! Nothing here blocks: password checks go to the accounts worker and come back as
//! [`Done::Auth`]; history writes go to the writer thread and come back as [`Done::Durable`].

use super::{fold, slot, Hub};
use crate::admin::{format_utc, parse, AdminCommand, ADMIN_HELP};
use crate::auth::{AuthJob, AuthMode};
use crate::connection::{CloseReason, Peers};
use crate::directory::{Frames, Remote};
use crate::features::Done;
use crate::history::{AckTo, Entry};
use crate::protocol::validate::check_username;
use crate::protocol::{ErrorCode, ServerMsg, SystemKind, WireFormat};
use std::sync::Arc;
use std::time::Instant;

/// Shortest password accepted at registration, in bytes.
pub const MIN_PASSWORD: usize = 8;

fn reject(peers: &mut Peers, key: usize, code: ErrorCode, reason: &str) {
    peers.send(key, &ServerMsg::LoginReject { code, reason: reason.into() });
}

/// Closes `key` as kicked by an administrator.
pub(super) fn kick(peers: &mut Peers, key: usize) {
    // CloseReason has no "kicked" kind yet; an administrative close is closest to a shutdown.
    peers.close_with(key, CloseReason::Shutdown, ErrorCode::Forbidden, "you were disconnected by an administrator");
}

impl Hub {
    /// LOGIN or REGISTER from a connection not yet logged in: authenticate per the server's mode.
    /// Nothing but LOGIN_ACK / LOGIN_REJECT reaches the connection until this succeeds.
    pub(super) fn login_request(
        &mut self,
        peers: &mut Peers,
        key: usize,
        username: &str,
        credential: Option<&str>,
        register: bool,
    ) {
        if self.pending_auth.contains_key(&key) {
            return reject(peers, key, ErrorCode::AuthFailed, "a login is already being checked");
        }
        if let Err(e) = check_username(username) {
            return reject(peers, key, ErrorCode::InvalidUsername, &format!("invalid user name: {e}"));
        }
        let folded = fold(&mut self.fold_buf, username).to_string();
        let mode = self.features.auth;
        let admin = self.features.is_admin_name(&folded);
        if mode != AuthMode::Open || admin {
            let Some(ip) = peers.conns.get(key).map(|c| c.peer.ip()) else { return };
            if let Err(wait) = self.features.throttle.check(&folded, ip, Instant::now()) {
                let reason = format!("too many login attempts; try again in {} s", wait.as_secs().max(1));
                return reject(peers, key, ErrorCode::RateLimited, &reason);
            }
        }
        if register && (admin || mode != AuthMode::Accounts) {
            let why = if admin {
                "that name is reserved"
            } else {
                "this server has no accounts (REGISTER needs --auth accounts)"
            };
            return reject(peers, key, ErrorCode::AuthFailed, why);
        }
        if admin {
            return match credential {
                Some(c) if self.features.admin_password_ok(c) => self.finish_login(peers, key, username, true),
                _ => reject(peers, key, ErrorCode::AuthFailed, "wrong user name or password"),
            };
        }
        match mode {
            AuthMode::Open => self.finish_login(peers, key, username, false),
            AuthMode::Passkey => match (credential, self.features.passkey()) {
                (Some(c), Some(k)) if crate::auth::secret_eq(c, k) => self.finish_login(peers, key, username, false),
                _ => reject(peers, key, ErrorCode::AuthFailed, "wrong passkey"),
            },
            AuthMode::Accounts => self.check_account(peers, key, username, &folded, credential, register),
        }
    }

    /// Accounts mode: cheap checks here, then the password goes to the accounts worker.
    fn check_account(
        &mut self,
        peers: &mut Peers,
        key: usize,
        username: &str,
        folded: &str,
        password: Option<&str>,
        register: bool,
    ) {
        let Some(password) = password.filter(|p| !p.is_empty()) else {
            return reject(peers, key, ErrorCode::AuthFailed, "a password is required");
        };
        if register && password.len() < MIN_PASSWORD {
            let reason = format!("the password must be at least {MIN_PASSWORD} bytes");
            return reject(peers, key, ErrorCode::AuthFailed, &reason);
        }
        if self.dir.find_user(folded).is_some() {
            return reject(peers, key, ErrorCode::UsernameTaken, &format!("{username:?} is already online"));
        }
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        let job = AuthJob {
            shard: self.shard,
            key,
            nonce,
            register,
            username: username.to_string(),
            password: password.to_string(),
        };
        match self.features.accounts() {
            Some(accounts) if accounts.submit(job) => {
                self.pending_auth.insert(key, nonce);
            }
            _ => reject(peers, key, ErrorCode::Internal, "the accounts service is not available"),
        }
    }

    /// Acts on the result of off-loop work.
    pub(super) fn done(&mut self, peers: &mut Peers, done: Done) {
        match done {
            Done::Auth(v) => {
                if self.pending_auth.get(&v.key) != Some(&v.nonce) {
                    return; // the connection went away (its key may be someone else's now)
                }
                self.pending_auth.remove(&v.key);
                match v.result {
                    Ok(()) => {
                        self.features.throttle.succeeded(&v.username);
                        self.finish_login(peers, v.key, &v.username, false);
                    }
                    Err((code, reason)) => reject(peers, v.key, code, &reason),
                }
            }
            Done::Durable(d) => {
                for (key, user, id, ts_ms) in d.acks {
                    if peers.conns.get(key).and_then(|c| c.name()) != Some(&*user) {
                        continue;
                    }
                    if d.ok {
                        peers.send(key, &ServerMsg::RoomMsgAck { id, ts_ms });
                    } else {
                        peers.send_error(key, ErrorCode::Internal, &format!("message {id} could not be stored"));
                    }
                }
            }
            Done::Console(req) => {
                let answer = self.run_admin(peers, "console", req.command);
                let _ = req.reply.send(answer);
            }
            Done::File(done) => self.file_done_from_worker(peers, done),
        }
    }

    /// Stores a room message in the history. In memory mode it is acknowledged at once; in SQLite
    /// mode the acknowledgement waits for the writer's commit ([`Done::Durable`]).
    pub(super) fn record(
        &mut self,
        peers: &mut Peers,
        key: usize,
        (id, ts_ms): (u64, u64),
        room: Arc<str>,
        from: Arc<str>,
        text: &str,
    ) {
        if !self.features.history.is_kept() {
            // No replay and no database: nothing to copy, the message is simply accepted.
            return peers.send(key, &ServerMsg::RoomMsgAck { id, ts_ms });
        }
        let entry = Entry { id, ts_ms, room, from: from.clone(), text: text.into() };
        let queued = self.features.history.append(entry, AckTo { shard: self.shard, key, user: from });
        if !self.features.history.is_durable() {
            peers.send(key, &ServerMsg::RoomMsgAck { id, ts_ms });
        } else if !queued {
            peers.send_error(key, ErrorCode::Internal, &format!("message {id} could not be stored"));
        }
    }

    /// Sends `key` the recent messages of `room`, flagged as history.
    pub(super) fn replay(&mut self, peers: &mut Peers, key: usize, room: &str) {
        for e in self.features.history.recent(room) {
            let msg = ServerMsg::RoomMsg {
                id: e.id,
                ts_ms: e.ts_ms,
                room: (&*e.room).into(),
                from: (&*e.from).into(),
                text: (&*e.text).into(),
                history: true,
            };
            peers.send(key, &msg);
        }
    }

    /// ADMIN from a client: only the admin's sessions may run commands.
    pub(super) fn admin_from_client(&mut self, peers: &mut Peers, key: usize, line: &str) {
        if !self.admins.contains(&key) {
            return peers.send_error(key, ErrorCode::Forbidden, "admin commands need the admin login");
        }
        let by = peers.conns.get(key).and_then(|c| c.name()).unwrap_or("admin").to_string();
        let text = match parse(line) {
            Ok(cmd) => self.run_admin(peers, &by, cmd),
            Err(e) => e.to_string(),
        };
        peers.send(key, &ServerMsg::Admin { text: text.into() });
    }

    /// Executes an admin command for `by` (a user name, or "console") and returns the answer.
    pub(super) fn run_admin(&mut self, peers: &mut Peers, by: &str, cmd: AdminCommand) -> String {
        match cmd {
            AdminCommand::Users => {
                let rooms = self.dir.users_by_room();
                let mut s = format!("{} users online", self.dir.online());
                for (room, users) in rooms.iter().filter(|(_, u)| !u.is_empty()) {
                    s += &format!("\n  {room}: {}", users.iter().map(|u| &**u).collect::<Vec<_>>().join(", "));
                }
                s
            }
            AdminCommand::Rooms => {
                let rooms = self.dir.rooms();
                let mut s = format!("{} rooms", rooms.len());
                rooms.iter().for_each(|(r, n)| s += &format!("\n  {r}: {n} users"));
                s
            }
            AdminCommand::Alert(text) => {
                let n = self.alert(peers, by, &text);
                format!("alert sent to {n} users")
            }
            AdminCommand::Kick(user) => self.kick_user(peers, &user),
            AdminCommand::Time => format!("server time: {} ({} ms)", format_utc(self.now_ms), self.now_ms),
            AdminCommand::Stats => self.stats_text(),
            AdminCommand::Help => ADMIN_HELP.to_string(),
        }
    }

    /// SYSTEM_MSG `alert` to every logged-in user on every shard; returns how many are online.
    fn alert(&mut self, peers: &mut Peers, by: &str, text: &str) -> usize {
        let msg = ServerMsg::SystemMsg { kind: SystemKind::Alert, room: "".into(), user: by.into(), text: text.into() };
        let frames =
            Frames { binary: peers.encode(WireFormat::Binary, &msg), json: peers.encode(WireFormat::Json, &msg) };
        self.deliver_all(peers, &frames);
        for (shard, out) in self.outbox.iter_mut().enumerate() {
            if shard != self.shard {
                out.push(Remote::All { frames: frames.clone() });
            }
        }
        self.dir.online()
    }

    /// Queues `frames` for every logged-in local connection.
    pub(super) fn deliver_all(&mut self, peers: &mut Peers, frames: &Frames) {
        let keys: Vec<(usize, WireFormat)> =
            peers.conns.iter().filter(|(_, c)| c.session.is_some()).map(|(k, c)| (k, c.reply_format())).collect();
        for (key, format) in keys {
            let frame = [&frames.binary, &frames.json][slot(format)].clone();
            peers.push(key, frame);
        }
    }

    fn kick_user(&mut self, peers: &mut Peers, user: &str) -> String {
        let folded = fold(&mut self.fold_buf, user);
        let Some(e) = self.dir.find_user(folded) else { return format!("no user named {user:?} is online") };
        if e.shard == self.shard {
            kick(peers, e.key);
        } else {
            self.outbox[e.shard].push(Remote::Kick { key: e.key, user: e.name.clone() });
        }
        format!("kicked {}", e.name)
    }

    fn stats_text(&mut self) -> String {
        let source = self.stats_source.clone();
        let Some(now) = source.map(|f| f()).or_else(|| self.features.stats()) else {
            let c = self.counters;
            return format!(
                "this shard only (no server-wide counters wired): {} users, {} logins, {} room messages",
                self.online(),
                c.logins,
                c.room_msgs
            );
        };
        let at = Instant::now();
        let (since, before) = self.last_stats.unwrap_or((self.features.started, Default::default()));
        self.last_stats = Some((at, now));
        let secs = at.duration_since(since).as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        format!(
            "connections {} open ({} total), users {}, rooms {}\n\
             room messages {:.1}/s, frames in {:.1}/s, bytes in {:.0}/s, bytes out {:.0}/s (over the last {secs:.1} s)\n\
             slow-consumer disconnects {}, rate-limited {}, uptime {} s",
            now.connections_open,
            now.connections_total,
            self.dir.online(),
            self.dir.rooms().len(),
            rate(now.room_msgs, before.room_msgs),
            rate(now.frames_in, before.frames_in),
            rate(now.bytes_in, before.bytes_in),
            rate(now.bytes_out, before.bytes_out),
            now.slow_consumer_disconnects,
            now.rate_limited,
            self.features.started.elapsed().as_secs()
        )
    }
}
