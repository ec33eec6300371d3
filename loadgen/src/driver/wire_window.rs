//! The bytes a thread's sockets moved during the measured window alone.

use crate::stats::Counters;
use crate::transport::WireBytes;

/// Snapshots of the thread's byte counters at the measured window's two edges (warm-up end and
/// schedule end, relative to the start of sending), taken by the first loop iteration past each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireWindow {
    /// Counters when the warm-up ended; `None` until then.
    at_start: Option<WireBytes>,
    /// Counters when the schedule ended; `None` until then (the run may stop first).
    at_end: Option<WireBytes>,
}

impl WireWindow {
    /// Takes the snapshots whose edge `since_start` (ns after the start of sending) has passed.
    pub fn observe(&mut self, since_start: u64, wire: WireBytes, warmup_ns: u64, end_ns: u64) {
        if self.at_start.is_none() && since_start >= warmup_ns {
            self.at_start = Some(wire);
        }
        if self.at_end.is_none() && since_start >= end_ns {
            self.at_end = Some(wire);
        }
    }

    /// The earliest edge not yet snapshotted, on the clock, so the loop wakes up for it.
    pub fn next_edge(&self, start: u64, warmup_ns: u64, end_ns: u64) -> Option<u64> {
        let first = self.at_start.is_none().then_some(start + warmup_ns);
        let second = self.at_end.is_none().then_some(start + end_ns);
        first.into_iter().chain(second).min()
    }

    /// Writes the whole run's bytes (`wire`) and the window's into `c`. The window is left at zero
    /// when sending never got past the warm-up; a window cut short ends at `wire`.
    pub fn finish(&self, wire: WireBytes, c: &mut Counters) {
        c.bytes_written = wire.written;
        c.bytes_read = wire.read;
        let (a, b) = (self.at_start.unwrap_or_default(), self.at_end.unwrap_or(wire));
        if self.at_start.is_some() {
            c.bytes_written_measured = b.written - a.written;
            c.bytes_read_measured = b.read - a.read;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(read: u64, written: u64) -> WireBytes {
        WireBytes { read, written }
    }

    #[test]
    fn the_window_is_the_difference_between_its_edges() {
        let mut win = WireWindow::default();
        assert_eq!(win.next_edge(1_000, 100, 300), Some(1_100));
        win.observe(50, w(1, 1), 100, 300);
        win.observe(120, w(10, 20), 100, 300);
        assert_eq!(win.next_edge(1_000, 100, 300), Some(1_300));
        win.observe(200, w(15, 25), 100, 300);
        win.observe(310, w(40, 70), 100, 300);
        win.observe(400, w(99, 99), 100, 300);
        assert_eq!(win.next_edge(1_000, 100, 300), None);
        let mut c = Counters::default();
        win.finish(w(100, 200), &mut c);
        assert_eq!((c.bytes_read, c.bytes_written), (100, 200));
        assert_eq!((c.bytes_read_measured, c.bytes_written_measured), (30, 50));
    }

    #[test]
    fn a_run_cut_short_ends_the_window_at_the_last_counts() {
        let mut win = WireWindow::default();
        win.observe(150, w(10, 20), 100, 300);
        let mut c = Counters::default();
        win.finish(w(60, 90), &mut c);
        assert_eq!((c.bytes_read_measured, c.bytes_written_measured), (50, 70));
        let mut c = Counters::default();
        WireWindow::default().finish(w(60, 90), &mut c);
        assert_eq!((c.bytes_read, c.bytes_read_measured, c.bytes_written_measured), (60, 0, 0));
    }
}
