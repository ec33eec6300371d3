//! How a line looks on screen: its timestamp (local `HH:MM`) and its colour.
//!
//! Pure functions, so the colour decision and the formats are unit-tested; the printer in
//! `app/terminal.rs` applies them. Colour is on only when standard output is a terminal,
//! `NO_COLOR` is not set (any value, even empty, turns it off) and `TERM` is not `dumb`.

use std::ffi::OsStr;

/// What a line is, which decides its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Other people's room messages, lists, help: the terminal's own colour.
    Plain,
    /// Room messages I sent (green).
    Own,
    /// Private messages, either way (magenta).
    Pm,
    /// Notices: presence, joins, reconnecting, file progress (cyan).
    Notice,
    /// Errors and refusals (red).
    Error,
    /// Admin alerts and kicks (bold red).
    Alert,
}

impl Kind {
    /// The kind of a line the client writes itself, from its first character: `! ` lines are
    /// errors, `* `, `↑ ` and `↓ ` lines notices, `*** ` alerts.
    pub fn of_local(text: &str) -> Kind {
        if text.starts_with("***") {
            Kind::Alert
        } else if text.starts_with('!') {
            Kind::Error
        } else if text.starts_with(['*', '↑', '↓']) {
            Kind::Notice
        } else {
            Kind::Plain
        }
    }

    /// The SGR parameters that start this kind's colour; `None` for [`Kind::Plain`].
    fn sgr(self) -> Option<&'static str> {
        match self {
            Kind::Plain => None,
            Kind::Own => Some("32"),
            Kind::Pm => Some("35"),
            Kind::Notice => Some("36"),
            Kind::Error => Some("31"),
            Kind::Alert => Some("1;31"),
        }
    }
}

/// Whether to colour output: `NO_COLOR` unset, `TERM` not `dumb`, standard output a terminal.
/// The arguments are the two variables' values and the terminal test, so the rule is testable.
pub fn color_wanted(no_color: Option<&OsStr>, term: Option<&OsStr>, stdout_is_tty: bool) -> bool {
    no_color.is_none() && term != Some(OsStr::new("dumb")) && stdout_is_tty
}

/// [`color_wanted`] for this process's environment and standard output.
pub fn color_from_env() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR");
    let term = std::env::var_os("TERM");
    color_wanted(no_color.as_deref(), term.as_deref(), std::io::stdout().is_terminal())
}

/// How lines are decorated: decided once at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Use ANSI colours.
    pub color: bool,
    /// Start each line with the local `HH:MM`.
    pub timestamps: bool,
}

impl Style {
    /// No colour, no timestamps: the text exactly as rendered.
    pub const BARE: Style = Style { color: false, timestamps: false };

    /// The text to print for one entry (which may span several lines): the time `clock` on the
    /// first line and the continuation lines indented to match, all in the kind's colour with
    /// the time dimmed. No trailing newline.
    pub fn format(&self, kind: Kind, clock: &str, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 16);
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            if self.timestamps {
                match (i, self.color) {
                    (0, true) => out.push_str(&format!("\x1b[2m{clock}\x1b[0m ")),
                    (0, false) => out.push_str(&format!("{clock} ")),
                    _ => out.push_str(&" ".repeat(clock.chars().count() + 1)),
                }
            }
            match kind.sgr().filter(|_| self.color) {
                Some(sgr) => out.push_str(&format!("\x1b[{sgr}m{line}\x1b[0m")),
                None => out.push_str(line),
            }
        }
        out
    }
}

/// Local time of day `HH:MM` for milliseconds since the Unix epoch, with the date in front
/// (`MM-DD HH:MM`) when it is not today: a replayed message from yesterday says so. The time
/// zone is the system's, as `localtime_r` sees it (UTC if that fails).
pub fn clock(ts_ms: u64) -> String {
    let (then, today) = (local(ts_ms), local(now_ms()));
    if (then.year, then.yday) == (today.year, today.yday) {
        format!("{:02}:{:02}", then.hour, then.min)
    } else {
        format!("{:02}-{:02} {:02}:{:02}", then.month, then.mday, then.hour, then.min)
    }
}

/// The parts of a local time [`clock`] shows.
struct LocalTime {
    year: i32,
    yday: i32,
    month: i32,
    mday: i32,
    hour: i32,
    min: i32,
}

fn local(ts_ms: u64) -> LocalTime {
    let secs = (ts_ms / 1000) as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        let (h, m) = ((ts_ms / 3_600_000 % 24) as i32, (ts_ms / 60_000 % 60) as i32);
        let day = (ts_ms / 86_400_000) as i32;
        return LocalTime { year: 0, yday: day, month: 0, mday: 0, hour: h, min: m };
    }
    LocalTime {
        year: tm.tm_year,
        yday: tm.tm_yday,
        month: tm.tm_mon + 1,
        mday: tm.tm_mday,
        hour: tm.tm_hour,
        min: tm.tm_min,
    }
}

/// Milliseconds since the Unix epoch now, for lines that carry no time of their own.
pub fn now_ms() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_is_off_under_no_color_dumb_terminals_and_pipes() {
        let os = |s| Some(OsStr::new(s));
        assert!(color_wanted(None, os("xterm-256color"), true));
        assert!(color_wanted(None, None, true));
        assert!(!color_wanted(os("1"), os("xterm"), true), "NO_COLOR=1");
        assert!(!color_wanted(os(""), os("xterm"), true), "NO_COLOR set but empty still counts");
        assert!(!color_wanted(None, os("xterm"), false), "stdout not a terminal");
        assert!(!color_wanted(None, os("dumb"), true));
    }

    #[test]
    fn kinds_of_local_lines() {
        assert_eq!(Kind::of_local("! not connected"), Kind::Error);
        assert_eq!(Kind::of_local("* reconnecting"), Kind::Notice);
        assert_eq!(Kind::of_local("↓ a.txt: 10%"), Kind::Notice);
        assert_eq!(Kind::of_local("*** ALERT: x"), Kind::Alert);
        assert_eq!(Kind::of_local("Rooms (1):"), Kind::Plain);
    }

    #[test]
    fn formats_with_and_without_colour_and_time() {
        assert_eq!(Style::BARE.format(Kind::Error, "12:34", "! x"), "! x");
        let plain = Style { color: false, timestamps: true };
        assert_eq!(plain.format(Kind::Own, "09:05", "[general] me: hi"), "09:05 [general] me: hi");
        assert_eq!(plain.format(Kind::Plain, "09:05", "Rooms (1):\n  general"), "09:05 Rooms (1):\n        general");
        let color = Style { color: true, timestamps: true };
        assert_eq!(color.format(Kind::Error, "09:05", "! x"), "\x1b[2m09:05\x1b[0m \x1b[31m! x\x1b[0m");
        assert_eq!(color.format(Kind::Plain, "09:05", "hi"), "\x1b[2m09:05\x1b[0m hi");
        let no_time = Style { color: true, timestamps: false };
        assert_eq!(no_time.format(Kind::Pm, "", "[PM from bob] yo"), "\x1b[35m[PM from bob] yo\x1b[0m");
        assert!(!plain.format(Kind::Alert, "00:00", "*** ALERT").contains('\x1b'));
    }

    #[test]
    fn clock_is_hours_and_minutes_with_the_date_when_not_today() {
        let c = clock(now_ms());
        assert_eq!(c.len(), 5, "{c}");
        assert_eq!(&c[2..3], ":");
        let (h, m): (u32, u32) = (c[..2].parse().expect("hours"), c[3..].parse().expect("minutes"));
        assert!(h < 24 && m < 60, "{c}");
        let old = clock(now_ms() - 3 * 86_400_000);
        assert_eq!(old.len(), 11, "{old}");
        assert_eq!((&old[2..3], &old[5..6], &old[8..9]), ("-", " ", ":"), "{old}");
    }
}
