//! A one-shot `timerfd` registered in the event loop, and the run's shared clock.
//!
//! mio's poll timeout has millisecond granularity (rounded up), which would make every send up to
//! a millisecond late, and that lateness would be charged to the server as latency. A timerfd
//! wakes the loop with nanosecond resolution instead, and incoming data still wakes it at once.
//! Threads also ask the kernel for a 1 µs timer slack ([`tighten_timer_slack`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The run's clock: nanoseconds since one `Instant`, shared by every thread.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Clock { base: Instant::now() }
    }

    /// Nanoseconds since the base.
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A non-blocking one-shot monotonic timer.
pub struct Timer {
    fd: OwnedFd,
    armed_for: Option<u64>,
}

impl Timer {
    /// Creates a disarmed timer.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked and then owned.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(Timer { fd: unsafe { OwnedFd::from_raw_fd(fd) }, armed_for: None })
    }

    /// Fires once after `after` (at least 1 ns). Re-arming replaces the previous deadline.
    /// `key` identifies the deadline so that re-arming for the same one is free.
    pub fn arm(&mut self, key: u64, after: Duration) -> io::Result<()> {
        if self.armed_for == Some(key) {
            return Ok(());
        }
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec { tv_sec: after.as_secs() as libc::time_t, tv_nsec: after.subsec_nanos() as _ },
        };
        // SAFETY: valid fd and a fully initialised itimerspec.
        let r = unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed_for = Some(key);
        Ok(())
    }

    /// Clears the expiry count after the timer fired (edge-triggered polling needs it drained).
    pub fn drain(&mut self) {
        let mut buf = [0u8; 8];
        // SAFETY: reading 8 bytes into an 8-byte buffer. WouldBlock and errors are fine to ignore.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        self.armed_for = None;
    }

    /// The descriptor, for registering with mio's `SourceFd`.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Asks for 1 µs timer slack on this thread (the default is 50 µs). Best effort.
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and only affects this thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0) };
}
