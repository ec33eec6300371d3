//! The open-loop schedule: when each message *should* be sent (wrk2's model).
//!
//! Every bot sends at a constant rate, whatever the server does. Bot `b`'s `k`-th message has the
//! intended send time
//!
//! ```text
//!   start + phase(b) + k * interval        phase(b) = b * interval / bots
//! ```
//!
//! so the bots are staggered evenly over one interval and the whole run sends at a smooth total
//! rate. A bot that falls behind (busy thread, full socket) sends late but keeps the intended time
//! in the message stamp, so the delay shows up as latency instead of silently lowering the load
//! ("coordinated omission"). Times here are nanoseconds relative to the start of sending.
//!
//! Which messages are private, and which bot a private message goes to, is a pure function of
//! `(bot, k)`: the same scenario always produces the same traffic.

/// Kind of the `k`-th message of a bot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ROOM_MSG to the bot's room.
    Room,
    /// PRIVATE_MSG; `pick` chooses the target among the bots that joined (see [`pick_target`]).
    Private { pick: u64 },
}

/// The schedule of a run. Cheap to copy; every thread holds one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Number of bots.
    bots: u32,
    /// Nanoseconds between two messages of one bot.
    interval_ns: f64,
    /// Sends intended before this offset are warm-up: delivered and checked, not timed.
    warmup_ns: u64,
    /// Sends intended at or after this offset are not made.
    end_ns: u64,
    /// Share of private messages, 0..=1.
    private_share: f64,
}

impl Schedule {
    /// A schedule for `bots` bots at `per_bot_rate` messages/s each.
    pub fn new(bots: u32, per_bot_rate: f64, warmup_ns: u64, duration_ns: u64, private_share: f64) -> Self {
        assert!(bots > 0 && per_bot_rate > 0.0 && per_bot_rate.is_finite());
        Schedule {
            bots,
            interval_ns: 1e9 / per_bot_rate,
            warmup_ns,
            end_ns: warmup_ns + duration_ns,
            private_share: if bots < 2 { 0.0 } else { private_share.clamp(0.0, 1.0) },
        }
    }

    /// Intended send offset of bot `bot`'s `k`-th message, in ns after the start of sending.
    pub fn offset_ns(&self, bot: u32, k: u32) -> u64 {
        let phase = bot as f64 * self.interval_ns / self.bots as f64;
        (phase + k as f64 * self.interval_ns).round() as u64
    }

    /// How many messages bot `bot` sends in the whole run (warm-up included).
    /// Bots outside the schedule (listeners, `bot >= bots`) send nothing.
    pub fn count(&self, bot: u32) -> u32 {
        if bot >= self.bots {
            return 0;
        }
        let phase = bot as f64 * self.interval_ns / self.bots as f64;
        let guess = ((self.end_ns as f64 - phase) / self.interval_ns).ceil().max(0.0);
        let mut k = guess.min(u32::MAX as f64) as u32;
        while k > 0 && self.offset_ns(bot, k - 1) >= self.end_ns {
            k -= 1;
        }
        while k < u32::MAX && self.offset_ns(bot, k) < self.end_ns {
            k += 1;
        }
        k
    }

    /// Total messages over all bots.
    pub fn total(&self) -> u64 {
        (0..self.bots).map(|b| self.count(b) as u64).sum()
    }

    /// True when a send intended at `offset_ns` falls in the measured window.
    pub fn is_measured(&self, offset_ns: u64) -> bool {
        offset_ns >= self.warmup_ns && offset_ns < self.end_ns
    }

    /// Start of the measured window (end of warm-up), ns after the start of sending.
    pub fn warmup_ns(&self) -> u64 {
        self.warmup_ns
    }

    /// End of sending, ns after the start of sending.
    pub fn end_ns(&self) -> u64 {
        self.end_ns
    }

    /// Nanoseconds between two messages of one bot.
    pub fn interval_ns(&self) -> f64 {
        self.interval_ns
    }

    /// Room or private, and for private the target pick.
    pub fn kind(&self, bot: u32, k: u32) -> Kind {
        if self.private_share <= 0.0 {
            return Kind::Room;
        }
        let h = mix(((bot as u64) << 32) | k as u64);
        // Top 53 bits as a uniform number in [0, 1).
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        if u < self.private_share {
            Kind::Private { pick: mix(h ^ 0x5bd1_e995) }
        } else {
            Kind::Room
        }
    }
}

/// The private-message target for `pick` among `ready` (the bots that joined, ascending), never
/// `from` itself. `None` when no other bot is there.
pub fn pick_target(ready: &[u32], from: u32, pick: u64) -> Option<u32> {
    let n = ready.len();
    let own = ready.binary_search(&from).ok();
    let others = n - usize::from(own.is_some());
    if others == 0 {
        return None;
    }
    let mut i = (pick % others as u64) as usize;
    if let Some(o) = own {
        if i >= o {
            i += 1;
        }
    }
    Some(ready[i])
}

/// splitmix64 finaliser: a cheap, well-mixed hash for deterministic choices.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
