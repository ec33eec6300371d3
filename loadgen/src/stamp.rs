//! The stamp a bot writes at the front of every chat text, and reads back on delivery.
//!
//! ```text
//!   ~<bot>.<seq>.<intended>.<actual>~xxxxxxxx...      (lower-case hex, padded with 'x')
//! ```
//!
//! `bot` and `seq` identify the message (loss and duplicate checks); `intended` is the scheduled
//! send time and `actual` the moment the bot issued the send, both in ns since the run's shared
//! clock base (one process, one monotonic clock). Plain ASCII: identical bytes in binary and JSON,
//! no JSON escaping, parsed without allocating.

use std::fmt::Write;

/// What a stamp carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Sending bot's id.
    pub bot: u32,
    /// The sender's message number (index in its schedule).
    pub seq: u32,
    /// Intended send time, ns since the clock base.
    pub intended_ns: u64,
    /// Actual send time, ns since the clock base.
    pub actual_ns: u64,
}

/// Longest possible stamp: 5 delimiters + 8 + 8 + 16 + 16 hex digits.
pub const MAX_STAMP_LEN: usize = 5 + 8 + 8 + 16 + 16;

impl Stamp {
    /// Replaces `out` with the stamp padded with `x` to `payload` bytes (or just the stamp when it
    /// is longer than that).
    pub fn write_text(&self, payload: usize, out: &mut String) {
        out.clear();
        // Writing to a String cannot fail.
        let _ = write!(out, "~{:x}.{:x}.{:x}.{:x}~", self.bot, self.seq, self.intended_ns, self.actual_ns);
        let pad = payload.saturating_sub(out.len());
        out.extend(std::iter::repeat_n('x', pad));
    }

    /// Reads a stamp from the front of a delivered text. `None` if it is not one of ours.
    pub fn parse(text: &str) -> Option<Stamp> {
        let b = text.as_bytes();
        if b.first() != Some(&b'~') {
            return None;
        }
        let mut fields = [0u64; 4];
        let mut i = 1;
        for (n, f) in fields.iter_mut().enumerate() {
            let start = i;
            let mut v: u64 = 0;
            while i < b.len() && i - start <= 16 {
                let d = match b[i] {
                    c @ b'0'..=b'9' => c - b'0',
                    c @ b'a'..=b'f' => c - b'a' + 10,
                    _ => break,
                };
                v = (v << 4) | d as u64;
                i += 1;
            }
            let sep = if n == 3 { b'~' } else { b'.' };
            if i == start || i - start > 16 || b.get(i) != Some(&sep) {
                return None;
            }
            *f = v;
            i += 1;
        }
        Some(Stamp {
            bot: u32::try_from(fields[0]).ok()?,
            seq: u32::try_from(fields[1]).ok()?,
            intended_ns: fields[2],
            actual_ns: fields[3],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let s = Stamp { bot: 5999, seq: 12, intended_ns: 123_456_789_012, actual_ns: 123_456_799_999 };
        let mut t = String::new();
        s.write_text(100, &mut t);
        assert_eq!(t.len(), 100);
        assert!(t.ends_with("xxx"));
        assert_eq!(Stamp::parse(&t), Some(s));
        s.write_text(4, &mut t);
        assert_eq!(Stamp::parse(&t), Some(s));
        let max = Stamp { bot: u32::MAX, seq: u32::MAX, intended_ns: u64::MAX, actual_ns: u64::MAX };
        max.write_text(0, &mut t);
        assert_eq!(t.len(), MAX_STAMP_LEN);
        assert_eq!(Stamp::parse(&t), Some(max));
    }

    #[test]
    fn foreign_text_is_not_a_stamp() {
        for t in ["", "hello", "~", "~1.2.3~", "~1.2.3.4", "~1.2.3.4.", "~g.1.1.1~", "~11111111111111111.1.1.1~"] {
            assert_eq!(Stamp::parse(t), None, "{t:?}");
        }
    }
}
