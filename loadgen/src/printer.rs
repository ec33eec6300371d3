//! The once-a-second progress line on stderr: connects, sends and deliveries with their rates,
//! and the p99 of the latencies the threads handed over since the last line.

use std::io::Write;

use crate::shared::Shared;
use crate::stats::{new_hist, Percentiles};
use crate::timer::Clock;

/// The once-a-second progress line on stderr.
pub struct Printer {
    /// `--progress`: when off, every tick is a no-op.
    on: bool,
    /// The run's clock.
    clock: Clock,
    /// When the last line was printed.
    last: u64,
    /// Messages sent as of the last line (for the rate).
    last_sent: u64,
    /// Deliveries as of the last line (for the rate).
    last_delivered: u64,
}

impl Printer {
    /// A printer that prints only when `on`.
    pub fn new(on: bool, clock: Clock) -> Self {
        Printer { on, clock, last: clock.now_ns(), last_sent: 0, last_delivered: 0 }
    }

    /// Prints a line for phase `what` if a second has passed since the last.
    pub fn tick(&mut self, s: &Shared, what: &str) {
        if self.on && self.clock.now_ns() >= self.last + 1_000_000_000 {
            self.tick_force(s, what);
        }
    }

    /// Prints a line for phase `what` now.
    pub fn tick_force(&mut self, s: &Shared, what: &str) {
        if !self.on {
            return;
        }
        let now = self.clock.now_ns();
        let dt = (now - self.last).max(1) as f64 / 1e9;
        self.last = now;
        let sent = s.sum(|p| &p.sent_room) + s.sum(|p| &p.sent_private);
        let delivered = s.sum(|p| &p.delivered);
        let mut win = new_hist();
        for p in &s.progress {
            if let Ok(mut w) = p.window.lock() {
                let _ = win.add(&*w);
                w.reset();
            }
        }
        let p99 =
            if win.is_empty() { "-".to_string() } else { format!("{:.3} ms", Percentiles::of(&win).p99_us / 1000.0) };
        let line = format!(
            "[{:>7.1}s {what:>7}] connected {}/{} ready {} failed {} | sent {} ({:.0}/s) delivered {}/{} ({:.0}/s) | p99 {p99} | disconnects {}\n",
            now as f64 / 1e9,
            s.sum(|p| &p.connected),
            s.scenario.bots,
            s.sum(|p| &p.ready),
            s.sum(|p| &p.failed),
            sent,
            (sent - self.last_sent.min(sent)) as f64 / dt,
            delivered,
            s.sum(|p| &p.expected),
            (delivered - self.last_delivered.min(delivered)) as f64 / dt,
            s.sum(|p| &p.disconnects),
        );
        self.last_sent = sent;
        self.last_delivered = delivered;
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}
