//! Admin commands, from the admin's client or the server console: users, rooms, alert, kick,
//! time, stats.

use super::{fold, Hub, Outbox};
use crate::cluster::Remote;
use crate::protocol::{ErrorCode, ServerMsg, SystemKind};
use crate::services::console::{format_utc, parse, AdminCommand, ADMIN_HELP};
use std::time::Instant;

/// Closes `key` as kicked by an administrator.
pub(super) fn kick<O: Outbox>(out: &mut O, key: usize) {
    out.close(key, ErrorCode::Forbidden, "you were disconnected by an administrator");
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
    pub(super) fn run_admin<O: Outbox>(&mut self, out: &mut O, by: &str, cmd: AdminCommand) -> String {
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
                let n = self.alert(out, by, &text);
                format!("alert sent to {n} users")
            }
            AdminCommand::Kick(user) => self.kick_user(out, &user),
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

    fn kick_user<O: Outbox>(&mut self, out: &mut O, user: &str) -> String {
        let folded = fold(&mut self.fold_buf, user);
        let Some(e) = self.backplane.locate(folded) else { return format!("no user named {user:?} is online") };
        if e.shard == self.shard {
            kick(out, e.key);
        } else {
            self.relay.to(e.shard, Remote::Kick { key: e.key, user: e.name.clone() });
        }
        format!("kicked {}", e.name)
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
