//! Fault suite: every case runs on loopback beside a [`pair::Pair`] of normal clients (binary and
//! JSON) that keep exchanging numbered messages, and ends by checking that the pair received every
//! one of them exactly once, in order. Run them alone with `cargo test --test integration faults::`.
//!
//! Map of the suite:
//! - [`pair`]: the two background chatters and their end-of-test check.
//! - [`bad_bytes`]: 4 GiB length prefix, truncated frames, bad magic, bad UTF-8, garbage JSON.
//! - [`disconnects`]: disconnect mid-frame, half-close, reset (RST).
//! - [`load`]: 1,000 slowloris connections, 100 clients that never read while a room floods, a
//!   flood from one client, a connection storm.
//! - [`limits`]: per-address and total connection caps, login timeout, idle PING, rate limit.
//! - [`tls`]: garbage on a TLS server.
//! - [`emfile`]: the server (a child process) runs out of file descriptors, and recovers.
//!
//! Every wait is bounded ([`crate::support::DEADLINE`]), every load loop is bounded in count, and no
//! assertion is about timing.

mod bad_bytes;
mod disconnects;
mod emfile;
mod limits;
mod load;
mod pair;
mod tls;
