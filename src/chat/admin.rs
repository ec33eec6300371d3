//! Admin commands, from the admin's client or the server console: users, rooms, alert, kick,
//! time, stats.

use super::{fold, Hub, Outbox};
use crate::cluster::Remote;
use crate::protocol::{ErrorCode, ServerMsg, SystemKind};
use crate::services::console::{format_utc, parse, AdminCommand, ADMIN_HELP};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Closes `key` as kicked by an administrator: ERROR_MSG BANNED with the ban's length, or
/// FORBIDDEN when there is no ban.
pub(super) fn kick<O: Outbox>(out: &mut O, key: usize, ban: Duration) {
    if ban.is_zero() {
        return out.close(key, ErrorCode::Forbidden, "you were disconnected by an administrator");
    }
    let text =
        format!("you were kicked and banned by an administrator for {} s; do not reconnect before", ban.as_secs());
    out.close(key, ErrorCode::Banned, &text);
}

impl Hub {
    /// ADMIN from a client: only the admin's sessions may run commands.
    pub(super) fn admin_from_client<O: Outbox>(&mut self, out: &mut O, key: usize, line: &str) {
        let Some(session) = self.sessions.get(key).filter(|s| s.admin) else {
            return out.send_error(key, ErrorCode::Forbidden, "admin commands need the admin login");
        };
        let by = session.name.to_string();
        let text = match parse(line) {
            Ok(cmd) => self.run_admin(out, &by, cmd),
            Err(e) => e.to_string(),
        };
        out.send(key, &ServerMsg::Admin { text: text.into() });
    }

    /// Executes an admin command for `by` (a user name, or "console") and returns the answer.
    /// Commands that change anything are logged at info with who ran them.
    pub(super) fn run_admin<O: Outbox>(&mut self, out: &mut O, by: &str, cmd: AdminCommand) -> String {
        let answer = self.admin_command(out, by, &cmd);
        if matches!(cmd, AdminCommand::Alert(_) | AdminCommand::Kick(..) | AdminCommand::Unban(_)) {
            tracing::info!("admin {by}: {cmd:?}: {answer}");
        }
        answer
    }

    fn admin_command<O: Outbox>(&mut self, out: &mut O, by: &str, cmd: &AdminCommand) -> String {
        match cmd {
            AdminCommand::Users => {
                let rooms = self.backplane.users_by_room();
                let mut s = format!("{} users online", self.backplane.online());
                for (room, users) in rooms.iter().filter(|(_, u)| !u.is_empty()) {
                    s += &format!("\n  {room}: {}", users.iter().map(|u| &**u).collect::<Vec<_>>().join(", "));
                }
                s
            }
            AdminCommand::Rooms => {
                let rooms = self.backplane.rooms();
                let mut s = format!("{} rooms", rooms.len());
                rooms.iter().for_each(|(r, n)| s += &format!("\n  {r}: {n} users"));
                s
            }
            AdminCommand::Alert(text) => {
                let n = self.alert(out, by, text);
                format!("alert sent to {n} users")
            }
            AdminCommand::Kick(user, ban) => self.kick_user(out, user, *ban),
            AdminCommand::Unban(user) => {
                let folded: Arc<str> = fold(&mut self.fold_buf, user).into();
                // Other nodes keep their own ban lists (the other shards share this one).
                self.relay.everyone(|| Remote::Ban { user: folded.clone(), ban: Duration::ZERO });
                match self.services.bans.unban(&folded, Instant::now()) {
                    true => format!("unbanned {user}"),
                    false => format!("{user} was not banned"),
                }
            }
            AdminCommand::Time => format!("server time: {} ({} ms)", format_utc(self.now_ms), self.now_ms),
            AdminCommand::Stats => self.stats_text(),
            AdminCommand::Help => ADMIN_HELP.to_string(),
        }
    }

    /// SYSTEM_MSG `alert` to every logged-in user on every shard; returns how many are online.
    fn alert<O: Outbox>(&mut self, out: &mut O, by: &str, text: &str) -> usize {
        let msg = ServerMsg::SystemMsg { kind: SystemKind::Alert, room: "".into(), user: by.into(), text: text.into() };
        let frames = out.encode_both(&msg);
        self.deliver_all(out, &frames);
        self.relay.everyone(|| Remote::All { frames: frames.clone() });
        self.backplane.online()
    }

    /// Bans `user`'s name for `ban` (none when zero) and disconnects them if online.
    fn kick_user<O: Outbox>(&mut self, out: &mut O, user: &str, ban: Duration) -> String {
        let normalized = crate::protocol::validate::normalize_name(user);
        let folded = fold(&mut self.fold_buf, &normalized).to_string();
        if !ban.is_zero() {
            self.services.bans.ban(&folded, ban, Instant::now());
            let user: Arc<str> = folded.as_str().into();
            self.relay.everyone(|| Remote::Ban { user: user.clone(), ban });
        }
        let banned = if ban.is_zero() { String::new() } else { format!(", banned for {} s", ban.as_secs()) };
        let Some(e) = self.backplane.locate(&folded) else {
            return format!("no user named {user:?} is online{banned}");
        };
        if e.shard == self.shard {
            kick(out, e.key, ban);
        } else {
            self.relay.to(e.shard, Remote::Kick { key: e.key, user: e.name.clone(), ban });
        }
        format!("kicked {}{banned}", e.name)
    }

    fn stats_text(&mut self) -> String {
        let Some(now) = self.services.stats() else {
            let c = self.counters;
            return format!(
                "this shard only (no server-wide counters wired): {} users, {} logins, {} room messages",
                self.online(),
                c.logins,
                c.room_msgs
            );
        };
        let at = Instant::now();
        let (since, before) = self.last_stats.unwrap_or((self.services.started, Default::default()));
        self.last_stats = Some((at, now));
        let secs = at.duration_since(since).as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        format!(
            "connections {} open ({} total; binary {}, json {}, websocket {} of which {} TLS; TLS {}), users {}, rooms {}\n\
             room messages {:.1}/s, frames in {:.1}/s, bytes in {:.0}/s, bytes out {:.0}/s (over the last {secs:.1} s)\n\
             slow-consumer disconnects {}, rate-limited {}, uptime {} s",
            now.connections_open,
            now.connections_total,
            now.open_binary,
            now.open_json,
            now.open_websocket,
            now.open_websocket_tls,
            now.open_tls,
            self.backplane.online(),
            self.backplane.rooms().len(),
            rate(now.room_msgs, before.room_msgs),
            rate(now.frames_in, before.frames_in),
            rate(now.bytes_in, before.bytes_in),
            rate(now.bytes_out, before.bytes_out),
            now.slow_consumer_disconnects,
            now.rate_limited,
            self.services.started.elapsed().as_secs()
        )
    }
}
