//! Admission: LOGIN and REGISTER per the server's auth mode (open, passkey, accounts, admin),
//! the accounts worker's verdict, claiming the name, and forgetting a connection that leaves.
//!
//! Nothing here blocks: password checks go to the accounts worker and come back as
//! [`Done::Auth`](crate::services::Done::Auth).

use super::session::Session;
use super::{fold, Hub, Outbox};
use crate::cluster::{Claim, UserEntry};
use crate::config::AuthMode;
use crate::protocol::validate::{check_username, normalize_name, DEFAULT_ROOM};
use crate::protocol::{ErrorCode, ServerMsg, SystemKind};
use crate::services::accounts::{secret_eq, AuthJob, AuthVerdict};
use std::sync::Arc;
use std::time::Instant;

/// Shortest password accepted at registration, in bytes.
pub const MIN_PASSWORD: usize = 8;

/// A login waiting for the backplane's verdict on its name ([`Claim::Pending`]).
#[derive(Debug)]
pub(super) struct PendingLogin {
    /// The name as the user wrote it.
    name: Arc<str>,
    /// Logged in as the administrator.
    admin: bool,
    /// Replay history after this id.
    since: Option<u64>,
}

/// Refuses a login whose name claim was not granted.
fn claim_refused<O: Outbox>(out: &mut O, key: usize, username: &str, verdict: Claim) {
    match verdict {
        Claim::Unavailable => {
            reject(out, key, ErrorCode::Internal, "the cluster cannot confirm the name now; try again shortly")
        }
        _ => reject(out, key, ErrorCode::UsernameTaken, &format!("the name {username:?} is taken")),
    }
}

fn reject<O: Outbox>(out: &mut O, key: usize, code: ErrorCode, reason: &str) {
    out.send(key, &ServerMsg::LoginReject { code, reason: reason.into(), retry_ms: None });
}

impl Hub {
    /// LOGIN or REGISTER from a connection not yet logged in: authenticate per the server's mode.
    /// Nothing but LOGIN_ACK / LOGIN_REJECT reaches the connection until this succeeds.
    pub(super) fn login_request<O: Outbox>(
        &mut self,
        out: &mut O,
        key: usize,
        username: &str,
        credential: Option<&str>,
        (register, since): (bool, Option<u64>),
    ) {
        if self.pending_auth.contains_key(&key) || self.pending_claims.contains_key(&key) {
            return reject(out, key, ErrorCode::AuthFailed, "a login is already being checked");
        }
        // The name as people see it: `Ａｌｉｃｅ` logs in as `Alice`.
        let normalized = normalize_name(username);
        let username: &str = &normalized;
        if let Err(e) = check_username(username) {
            return reject(out, key, ErrorCode::InvalidUsername, &format!("invalid user name: {e}"));
        }
        let folded = fold(&mut self.fold_buf, username).to_string();
        if let Some(left) = self.services.bans.remaining(&folded, Instant::now()) {
            let secs = left.as_secs() + 1;
            let reason = format!("{username} is banned by an administrator for {secs} more s; do not reconnect before");
            let reject = ServerMsg::LoginReject {
                code: ErrorCode::Banned,
                reason: reason.into(),
                retry_ms: Some(left.as_millis() as u64),
            };
            return out.send(key, &reject);
        }
        let mode = self.services.auth;
        let admin = self.services.is_admin_name(&folded);
        if mode != AuthMode::Open || admin {
            let Some(ip) = out.peer_ip(key) else { return };
            if let Err(wait) = self.services.throttle.check(&folded, ip, Instant::now()) {
                let reason = format!("too many login attempts; try again in {} s", wait.as_secs().max(1));
                return reject(out, key, ErrorCode::RateLimited, &reason);
            }
        }
        if register && (admin || mode != AuthMode::Accounts) {
            let why = if admin {
                "that name is reserved"
            } else {
                "this server has no accounts (REGISTER needs --auth accounts)"
            };
            return reject(out, key, ErrorCode::AuthFailed, why);
        }
        if admin {
            return match credential {
                Some(c) if self.services.admin_password_ok(c) => self.finish_login(out, key, username, true, since),
                _ => reject(out, key, ErrorCode::AuthFailed, "wrong user name or password"),
            };
        }
        match mode {
            AuthMode::Open => self.finish_login(out, key, username, false, since),
            AuthMode::Passkey => match (credential, self.services.passkey()) {
                (Some(c), Some(k)) if secret_eq(c, k) => self.finish_login(out, key, username, false, since),
                _ => reject(out, key, ErrorCode::AuthFailed, "wrong passkey"),
            },
            AuthMode::Accounts => self.check_account(out, key, (username, &folded), credential, (register, since)),
        }
    }

    /// Accounts mode: cheap checks here, then the password goes to the accounts worker.
    fn check_account<O: Outbox>(
        &mut self,
        out: &mut O,
        key: usize,
        (username, folded): (&str, &str),
        password: Option<&str>,
        (register, since): (bool, Option<u64>),
    ) {
        let Some(password) = password.filter(|p| !p.is_empty()) else {
            return reject(out, key, ErrorCode::AuthFailed, "a password is required");
        };
        if register && password.len() < MIN_PASSWORD {
            let reason = format!("the password must be at least {MIN_PASSWORD} bytes");
            return reject(out, key, ErrorCode::AuthFailed, &reason);
        }
        if self.backplane.locate(folded).is_some() {
            return reject(out, key, ErrorCode::UsernameTaken, &format!("{username:?} is already online"));
        }
        let Some(ip) = out.peer_ip(key) else { return };
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        let job = AuthJob {
            shard: self.shard,
            key,
            nonce,
            ip,
            register,
            username: username.to_string(),
            password: password.to_string(),
            since,
        };
        match self.services.accounts().map(|a| a.submit(job)) {
            Some(Ok(())) => {
                self.pending_auth.insert(key, nonce);
            }
            Some(Err(refused)) => reject(out, key, refused.code, &refused.reason),
            None => reject(out, key, ErrorCode::Internal, "the accounts service is not available"),
        }
    }

    /// The accounts worker's verdict on a pending login.
    pub(super) fn auth_verdict<O: Outbox>(&mut self, out: &mut O, v: AuthVerdict) {
        if self.pending_auth.get(&v.key) != Some(&v.nonce) {
            return; // the connection went away (its key may be someone else's now)
        }
        self.pending_auth.remove(&v.key);
        match v.result {
            Ok(()) => self.finish_login(out, v.key, &v.username, false, v.since),
            Err((code, reason)) => reject(out, v.key, code, &reason),
        }
    }

    /// Logs `key` in as `username` once authenticated: claims the name (a cluster may answer
    /// later, through [`Hub::claim_verdict`]), then admits the user.
    fn finish_login<O: Outbox>(&mut self, out: &mut O, key: usize, username: &str, admin: bool, since: Option<u64>) {
        if let Err(e) = check_username(username) {
            return reject(out, key, ErrorCode::InvalidUsername, &format!("invalid user name: {e}"));
        }
        let name: Arc<str> = username.into();
        let folded = fold(&mut self.fold_buf, username);
        match self.backplane.claim(folded, UserEntry { name: name.clone(), shard: self.shard, key }) {
            Claim::Granted => self.admit(out, key, name, admin, since),
            Claim::Pending => {
                self.pending_claims.insert(key, PendingLogin { name, admin, since });
            }
            verdict => claim_refused(out, key, username, verdict),
        }
    }

    /// The backplane's later verdict on a [`Claim::Pending`] name claim.
    pub(super) fn claim_verdict<O: Outbox>(&mut self, out: &mut O, key: usize, user: &str, verdict: Claim) {
        if !matches!(self.pending_claims.get(&key), Some(p) if *p.name == *user) {
            return; // the connection went away; `disconnect` released the name
        }
        let Some(p) = self.pending_claims.remove(&key) else { return };
        match verdict {
            Claim::Granted => self.admit(out, key, p.name, p.admin, p.since),
            verdict => {
                let folded = fold(&mut self.fold_buf, &p.name);
                self.backplane.release(folded);
                claim_refused(out, key, &p.name, verdict);
            }
        }
    }

    /// Admits `key` as `name`, whose claim was granted: enters the default room, acknowledges,
    /// replays the room's history (after id `since`, if given), tells the room.
    fn admit<O: Outbox>(&mut self, out: &mut O, key: usize, name: Arc<str>, admin: bool, since: Option<u64>) {
        let folded = fold(&mut self.fold_buf, &name);
        if let Some(ip) = out.peer_ip(key).filter(|_| admin || self.services.auth != AuthMode::Open) {
            // The credential was right: the name's failed attempts from here are forgiven, so
            // a user who logs in often is never throttled for succeeding.
            self.services.throttle.succeeded(folded, ip);
        }
        self.local_users.insert(folded.into(), key);
        let (room, membership) = self.enter_room(key, &name, DEFAULT_ROOM);
        let id = self.next_nonce;
        self.next_nonce += 1;
        self.sessions.insert(key, Session { name: name.clone(), membership, admin, id });
        out.logged_in(key);
        self.counters.logins += 1;
        out.send(key, &ServerMsg::LoginAck { username: (&*name).into(), room: DEFAULT_ROOM.into() });
        let canonical = self.rooms.room(room).name.clone();
        self.start_replay(out, key, canonical, since);
        self.presence(out, room, key, SystemKind::Join, &name);
    }

    /// Forgets connection `key`: leaves its room with a disconnect notice and frees its name.
    /// Call when the connection starts closing; calling it again does nothing.
    pub fn disconnect<O: Outbox>(&mut self, out: &mut O, key: usize) {
        self.pending_auth.remove(&key);
        if let Some(p) = self.pending_claims.remove(&key) {
            let folded = fold(&mut self.fold_buf, &p.name);
            self.backplane.release(folded);
        }
        self.drop_transfers(key);
        let Some(session) = self.sessions.get(key) else { return };
        let (name, m) = (session.name.clone(), session.membership);
        self.leave_room(out, key, m, SystemKind::Disconnect);
        let folded = fold(&mut self.fold_buf, &name);
        self.local_users.remove(folded);
        self.backplane.release(folded);
        self.sessions.remove(key);
    }
}
