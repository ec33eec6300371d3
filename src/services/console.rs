//! The admin command set, shared by the server's console (stdin) and clients logged in as the
//! admin (ADMIN messages): parse a line into an [`AdminCommand`]; the hub executes it.
//!
//! | Command         | Does                                                        |
//! |-----------------|-------------------------------------------------------------|
//! | `users`         | every online user, by room                                  |
//! | `rooms`         | every room and its member count                             |
//! | `alert TEXT`    | SYSTEM_MSG `alert` to everyone on every shard               |
//! | `kick USER`     | disconnects USER (ERROR_MSG FORBIDDEN first)                |
//! | `time`          | the server's clock                                          |
//! | `stats`         | connections, messages/s, bytes/s, slow-consumer disconnects |
//! | `help`          | this list                                                   |
//!
//! The console ([`spawn_console`]) reads lines from stdin, sends each command to shard 0 as
//! [`Done::Console`] through the shard's inbox and waker, and prints the reply it gets back.

use crate::services::{Done, Services};
use std::io::{BufRead, Write};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::Duration;

/// Help text for the admin command set.
pub const ADMIN_HELP: &str =
    "admin commands: users | rooms | alert TEXT | kick USER [BAN: 90s, 5m, 2h, 1d; 0 = no ban] | unban USER | time | stats | help";

/// How long `kick USER` bans the name when no duration is given.
pub const DEFAULT_BAN: Duration = Duration::from_secs(300);

/// How long the console waits for the server's answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// One admin command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    /// List online users by room.
    Users,
    /// List rooms and member counts.
    Rooms,
    /// Broadcast an alert to everyone.
    Alert(String),
    /// Disconnect a user and refuse the name for a while (zero: no ban).
    Kick(String, Duration),
    /// Lift a ban.
    Unban(String),
    /// The server's clock.
    Time,
    /// Live counters.
    Stats,
    /// The command list.
    Help,
}

/// Why a command line was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error("unknown admin command {0:?}; {ADMIN_HELP}")]
    Unknown(String),
    #[error("`{0}` needs an argument: {1}")]
    Missing(&'static str, &'static str),
}

/// Parses one command line (a leading `/` is allowed, so `/users` works on the console too).
pub fn parse(line: &str) -> Result<AdminCommand, AdminError> {
    let line = line.trim().trim_start_matches('/');
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let need = |name, what| if rest.is_empty() { Err(AdminError::Missing(name, what)) } else { Ok(rest.to_string()) };
    Ok(match word.to_ascii_lowercase().as_str() {
        "users" | "who" | "list" => AdminCommand::Users,
        "rooms" => AdminCommand::Rooms,
        "alert" | "broadcast" => AdminCommand::Alert(need("alert", "the alert text")?),
        "kick" => {
            let rest = need("kick", "the user name")?;
            match rest.rsplit_once(char::is_whitespace).and_then(|(u, d)| Some((u.trim(), parse_duration(d)?))) {
                Some((user, ban)) => AdminCommand::Kick(user.to_string(), ban),
                None => AdminCommand::Kick(rest, DEFAULT_BAN),
            }
        }
        "unban" => AdminCommand::Unban(need("unban", "the user name")?),
        "time" => AdminCommand::Time,
        "stats" => AdminCommand::Stats,
        "help" | "?" | "" => AdminCommand::Help,
        other => return Err(AdminError::Unknown(other.to_string())),
    })
}

/// `90`, `90s`, `5m`, `2h`, `1d` as a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (n, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, ""), |i| s.split_at(i));
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(secs)?))
}

/// `2023-11-14 22:13:20.000 UTC` for milliseconds since the Unix epoch (civil-from-days, no
/// time-zone database needed).
pub fn format_utc(ts_ms: u64) -> String {
    let (days, ms) = ((ts_ms / 86_400_000) as i64, ts_ms % 86_400_000);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{milli:03} UTC")
}

/// A console command on its way to shard 0, with where to send the answer.
#[derive(Debug)]
pub struct AdminRequest {
    /// The command.
    pub command: AdminCommand,
    /// Receives the answer text.
    pub reply: Sender<String>,
}

/// Runs one command through shard 0 and waits (bounded) for its answer.
pub fn execute(services: &Services, command: AdminCommand) -> String {
    let (tx, rx) = channel();
    if !services.links().send(0, Done::Console(AdminRequest { command, reply: tx })) {
        return "the server is not running".to_string();
    }
    rx.recv_timeout(REPLY_TIMEOUT).unwrap_or_else(|_| "no answer from the server".to_string())
}

/// Reads commands from `input` until it ends and writes each answer to `output`. A line that is
/// not UTF-8 is reported and skipped: one bad line never ends the console.
pub fn run_console(services: &Services, mut input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    let mut raw = Vec::new();
    for number in 1.. {
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            return Ok(());
        }
        let answer = match std::str::from_utf8(&raw) {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => match parse(line.trim_end_matches(['\n', '\r'])) {
                Ok(cmd) => execute(services, cmd),
                Err(e) => e.to_string(),
            },
            Err(e) => format!("line {number} ignored: it is not valid UTF-8 ({e})"),
        };
        writeln!(output, "{answer}")?;
        output.flush()?;
    }
    Ok(())
}

/// Starts the server console on its own thread: admin commands typed on stdin, answers on
/// stdout. The thread ends when stdin does.
pub fn spawn_console(services: Arc<Services>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("chat-console".into()).spawn(move || {
        let stdin = std::io::stdin();
        if let Err(e) = run_console(&services, stdin.lock(), std::io::stdout()) {
            tracing::warn!("console: {e}");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_command_set() {
        assert_eq!(parse("users"), Ok(AdminCommand::Users));
        assert_eq!(parse("/rooms"), Ok(AdminCommand::Rooms));
        assert_eq!(parse("alert  lunch is served "), Ok(AdminCommand::Alert("lunch is served".into())));
        assert_eq!(parse("KICK bob"), Ok(AdminCommand::Kick("bob".into(), DEFAULT_BAN)));
        assert_eq!(parse("kick bob 2m"), Ok(AdminCommand::Kick("bob".into(), Duration::from_secs(120))));
        assert_eq!(parse("kick bob 0"), Ok(AdminCommand::Kick("bob".into(), Duration::ZERO)));
        assert_eq!(parse("unban bob"), Ok(AdminCommand::Unban("bob".into())));
        assert_eq!(parse("time"), Ok(AdminCommand::Time));
        assert_eq!(parse("stats"), Ok(AdminCommand::Stats));
        assert_eq!(parse("kick"), Err(AdminError::Missing("kick", "the user name")));
        assert!(matches!(parse("reboot"), Err(AdminError::Unknown(_))));
    }

    #[test]
    fn a_line_that_is_not_utf8_is_reported_and_the_console_carries_on() {
        // Issue 16, item 9: one invalid-UTF-8 line used to end the console thread.
        let services = Services::default();
        let input: &[u8] = b"\xff\xfe oops\n\nbogus\n";
        let mut output = Vec::new();
        run_console(&services, input, &mut output).expect("console");
        let text = String::from_utf8(output).expect("utf-8 output");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("line 1 ignored: it is not valid UTF-8"), "{text}");
        assert_eq!(lines[1], parse("bogus").expect_err("unknown command").to_string());
    }

    #[test]
    fn formats_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(format_utc(1_700_000_000_123), "2023-11-14 22:13:20.123 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
    }
}
